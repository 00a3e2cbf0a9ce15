/**
 * `GET /`: the dashboard for the person on call, one self-contained page (inline CSS
 * and JS, no external assets: coordinators often run without internet access).
 *
 * Per cluster: the phase (healthy, degraded, primary down, failing over, …), PAUSED,
 * why a failover is blocked, every registered node (down ones too) with role, phase,
 * lag, sync flag and reason, the leader; each replica's lag over the last 15 minutes
 * as a chart; the failovers and switchovers with durations and loss, where a click on
 * one shows its explanation (decision, evidence, steps with times); and the journal
 * as a live timeline. With several clusters, a list of them on top.
 *
 * Live, without reload: it follows `routing/stream` (SSE), polls `events?after=` every
 * second (new entries refresh the history), `lag?after=` every sample interval, and
 * the routing table every 2 s (lag changes within the hysteresis bump no version).
 * The script is in dashboard-script.ts.
 *
 * Everything inserted server-side is HTML-escaped; the initial data travels as JSON in
 * a non-executable script element with `<`, `>` and `&` escaped; the script builds the
 * DOM with textContent only. A per-response nonce lets the page run under a strict CSP.
 */
import { randomBytes } from 'node:crypto';
import type { RoutingTable } from '../core/routing.js';
import { DASHBOARD_SCRIPT } from './dashboard-script.js';

export interface DashboardCluster {
  name: string;
  engine: string;
  paused: boolean;
  leader: string | null;
  servedByLeader: boolean;
  table: RoutingTable;
}

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
}

/** JSON safe to embed in a `<script type="application/json">` element. */
export function jsonForScript(v: unknown): string {
  return JSON.stringify(v).replace(/[<>&\u2028\u2029]/g, (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

function section(c: DashboardCluster): string {
  return `<section class="cluster">
  <header><h2>${escapeHtml(c.name)}</h2><span class="meta">${escapeHtml(c.engine)} · generation ${c.table.generation}</span><span class="badges"></span></header>
  <div class="grid"><div class="topology"><p class="muted">loading…</p></div><div><h3>events</h3><ol class="timeline"></ol></div></div>
  <div class="grid even">
    <div class="lag"><h3>replication lag, last 15 minutes <span class="unit"><button type="button" data-unit="ms" class="on">ms</button><button type="button" data-unit="bytes">bytes</button></span></h3>
      <svg class="chart" viewBox="0 0 640 180" role="img" aria-label="replication lag per replica over the last 15 minutes"></svg><ul class="legend"></ul></div>
    <div><h3>failovers and switchovers <span class="muted">(click one to explain it)</span></h3>
      <table class="history"><thead><tr><th>started (UTC)</th><th>operation</th><th>from → to</th><th>duration</th><th>loss</th><th>outcome</th></tr></thead><tbody></tbody></table></div>
  </div>
  <div class="explain" hidden></div>
</section>`;
}

/** `readTokenRequired`: the data routes need a read token; the page asks for it (kept in sessionStorage) and long-polls instead of SSE */
export function dashboard(opts: { coordinatorId: string; clusters: DashboardCluster[]; readTokenRequired?: boolean }): { html: string; csp: string } {
  const nonce = randomBytes(16).toString('base64');
  const sections = opts.clusters.map(section).join('\n');
  const list =
    opts.clusters.length > 1
      ? `<nav id="clusters"><h3>clusters</h3><table><thead><tr><th>cluster</th><th>engine</th><th>primary</th><th>phase</th><th>writes</th><th>failover</th><th>leader</th></tr></thead><tbody></tbody></table></nav>`
      : '';
  const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>switchyard · ${escapeHtml(opts.coordinatorId)}</title>
<style nonce="${nonce}">${CSS}</style>
</head>
<body data-read-token="${opts.readTokenRequired ? 'required' : 'none'}">
<h1>switchyard <span class="meta">coordinator ${escapeHtml(opts.coordinatorId)}</span> <span id="live" class="badge">connecting</span></h1>
<div id="token" hidden><p class="why warn"></p><label>read token <input type="password" autocomplete="off"></label> <button type="button">open</button></div>
${list}
${sections || '<p class="muted">this coordinator serves no clusters</p>'}
<script type="application/json" id="init">${jsonForScript(opts.clusters)}</script>
<script nonce="${nonce}">${DASHBOARD_SCRIPT}</script>
</body>
</html>
`;
  const csp = [
    "default-src 'none'",
    `script-src 'nonce-${nonce}'`,
    `style-src 'nonce-${nonce}'`,
    "connect-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
  return { html, csp };
}

const CSS = `
:root { color-scheme: light dark; --ok: #1a7f37; --bad: #cf222e; --warn: #9a6700; --mut: #6e7781; --line: #d0d7de44; }
body { font: 14px/1.45 system-ui, sans-serif; margin: 1.5rem; max-width: 1200px; }
h1 { font-size: 1.3rem; } h2 { font-size: 1.1rem; margin: 0; display: inline; } h3 { font-size: .9rem; margin: .2rem 0; color: var(--mut); }
.meta, .muted { color: var(--mut); font-weight: normal; font-size: .9rem; margin-left: .5rem; }
.cluster { border: 1px solid var(--line); border-radius: 8px; padding: 1rem; margin: 1rem 0; }
.cluster > header { display: flex; align-items: baseline; gap: .5rem; flex-wrap: wrap; }
.grid { display: grid; grid-template-columns: minmax(0, 3fr) minmax(0, 2fr); gap: 1.5rem; margin-top: .8rem; }
.grid.even { grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); }
@media (max-width: 800px) { .grid, .grid.even { grid-template-columns: 1fr; } }
.badge { font-size: .75rem; border-radius: 1em; padding: .1em .6em; border: 1px solid currentColor; font-weight: 600; }
.ok { color: var(--ok); } .bad { color: var(--bad); } .warn { color: var(--warn); }
table { border-collapse: collapse; width: 100%; } th, td { text-align: left; padding: .25rem .5rem; border-bottom: 1px solid var(--line); white-space: nowrap; }
th { color: var(--mut); font-weight: 500; font-size: .8rem; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.wrap { white-space: normal; word-break: break-word; }
.primary { font-size: 1rem; margin: .3rem 0 .6rem; }
.timeline { list-style: none; padding: 0; margin: 0; max-height: 340px; overflow-y: auto; font-size: .85rem; }
.timeline li { padding: .2rem 0; border-bottom: 1px solid var(--line); }
.timeline time { color: var(--mut); margin-right: .5rem; font-variant-numeric: tabular-nums; }
.timeline .type { font-weight: 600; margin-right: .5rem; } .timeline .data { color: var(--mut); word-break: break-word; }
.chart { width: 100%; height: auto; display: block; }
.chart text { font-size: 11px; fill: var(--mut); } .chart .grid-line { stroke: var(--mut); stroke-opacity: .25; stroke-width: 1; }
.chart .series { fill: none; stroke-width: 1.6; stroke-linejoin: round; }
.legend { list-style: none; padding: 0; margin: .2rem 0 0; display: flex; flex-wrap: wrap; gap: .3rem 1rem; font-size: .85rem; }
.legend .swatch { font-weight: 900; margin-right: .3rem; }
.unit button, .explain button.close { font: inherit; font-size: .75rem; border: 1px solid var(--line); background: none; color: inherit; border-radius: 4px; padding: 0 .4rem; cursor: pointer; margin-left: .2rem; }
.unit button.on { border-color: currentColor; font-weight: 600; }
table.history td { white-space: normal; } .grid > div { min-width: 0; overflow-x: auto; }
table.history tbody tr { cursor: pointer; } table.history tbody tr:hover, table.history tbody tr.selected { background: #8881; }
table.history tbody tr:focus { outline: 2px solid var(--mut); }
.explain { border-top: 1px solid var(--line); margin-top: 1rem; padding-top: .6rem; }
.explain h3 { color: inherit; font-size: 1rem; } .explain dl { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; margin: .4rem 0; }
.explain dt { color: var(--mut); } .explain dd { margin: 0; }
#token { border: 1px solid var(--line); border-radius: 8px; padding: .6rem 1rem; } #token input { font: inherit; }
nav#clusters { margin: 1rem 0; } nav#clusters button { font: inherit; font-weight: 600; background: none; border: none; color: inherit; padding: 0; cursor: pointer; text-decoration: underline; }
`;
