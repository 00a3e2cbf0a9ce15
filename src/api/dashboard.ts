/**
 * `GET /`: the dashboard, one self-contained page (inline CSS and JS, no external
 * assets: coordinators often run without internet access). Per cluster: the topology
 * (primary, replicas with health, lag and sync flag), the routing generation,
 * paused / leader, and the journal as a live timeline. Live: it follows
 * `routing/stream` (SSE) and polls `events?after=<cursor>` every second (and the
 * routing table every 2 s: lag changes do not bump the generation, so the stream
 * does not carry them).
 *
 * Everything inserted server-side is HTML-escaped; the initial data travels as JSON in
 * a non-executable script element with `<`, `>` and `&` escaped; the script builds the
 * DOM with textContent only. A per-response nonce lets the page run under a strict CSP.
 */
import { randomBytes } from 'node:crypto';
import type { RoutingTable } from '../core/routing.js';

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

export function dashboard(opts: { coordinatorId: string; clusters: DashboardCluster[] }): { html: string; csp: string } {
  const nonce = randomBytes(16).toString('base64');
  const sections = opts.clusters
    .map(
      (c) => `<section class="cluster">
  <header><h2>${escapeHtml(c.name)}</h2><span class="meta">${escapeHtml(c.engine)} · generation ${c.table.generation}</span><span class="badges"></span></header>
  <div class="grid"><div class="topology"><p class="muted">loading…</p></div><div><h3>events</h3><ol class="timeline"></ol></div></div>
</section>`,
    )
    .join('\n');
  const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>switchyard · ${escapeHtml(opts.coordinatorId)}</title>
<style nonce="${nonce}">${CSS}</style>
</head>
<body>
<h1>switchyard <span class="meta">coordinator ${escapeHtml(opts.coordinatorId)}</span> <span id="live" class="badge">connecting</span></h1>
${sections || '<p class="muted">this coordinator serves no clusters</p>'}
<script type="application/json" id="init">${jsonForScript(opts.clusters)}</script>
<script nonce="${nonce}">${JS}</script>
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
@media (max-width: 800px) { .grid { grid-template-columns: 1fr; } }
.badge { font-size: .75rem; border-radius: 1em; padding: .1em .6em; border: 1px solid currentColor; font-weight: 600; }
.ok { color: var(--ok); } .bad { color: var(--bad); } .warn { color: var(--warn); }
table { border-collapse: collapse; width: 100%; } th, td { text-align: left; padding: .25rem .5rem; border-bottom: 1px solid var(--line); white-space: nowrap; }
th { color: var(--mut); font-weight: 500; font-size: .8rem; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.primary { font-size: 1rem; margin: .3rem 0 .6rem; }
.timeline { list-style: none; padding: 0; margin: 0; max-height: 340px; overflow-y: auto; font-size: .85rem; }
.timeline li { padding: .2rem 0; border-bottom: 1px solid var(--line); }
.timeline time { color: var(--mut); margin-right: .5rem; font-variant-numeric: tabular-nums; }
.timeline .type { font-weight: 600; margin-right: .5rem; } .timeline .data { color: var(--mut); word-break: break-word; }
`;

// Plain ES2020 in the browser; builds the DOM with textContent only (no innerHTML).
const JS = `
(function () {
  'use strict';
  var MAX_EVENTS = 200;
  var init = JSON.parse(document.getElementById('init').textContent);
  var live = document.getElementById('live');
  var sections = document.querySelectorAll('section.cluster');
  var open = 0;

  function h(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function base(name) { return 'v1/clusters/' + encodeURIComponent(name); }
  function num(v, unit) { return v === null || v === undefined ? '?' : v + (unit || ''); }
  function setLive() {
    live.textContent = open === state.length ? 'live' : open ? 'partly live' : 'reconnecting';
    live.className = 'badge ' + (open === state.length ? 'ok' : 'warn');
  }

  var state = init.map(function (c, i) {
    return { summary: c, table: c.table, cursor: '0-0', events: [], el: sections[i], open: false };
  });

  function renderHeader(s) {
    var header = s.el.querySelector('header');
    header.querySelector('.meta').textContent = s.table.engine + ' · generation ' + s.table.generation + ' · epoch ' + s.table.epoch;
    var b = header.querySelector('.badges');
    b.replaceChildren();
    b.append(h('span', 'badge ' + (s.table.writable ? 'ok' : 'bad'), s.table.writable ? 'writable' : 'not writable'));
    if (s.summary.paused) b.append(' ', h('span', 'badge warn', 'paused'));
    b.append(' ', h('span', 'badge', 'leader ' + (s.summary.leader || 'none')));
    if (s.summary.servedByLeader) b.append(' ', h('span', 'badge ok', 'this coordinator leads'));
  }

  function renderTopology(s) {
    var t = s.table;
    var box = s.el.querySelector('.topology');
    box.replaceChildren();
    var p = h('div', 'primary');
    p.append(h('b', null, 'primary '));
    if (t.primary) p.append(h('span', 'ok', t.primary.id), h('span', 'muted', t.primary.host + ':' + t.primary.port));
    else p.append(h('span', 'bad', 'none: no node may take writes'));
    box.append(p);
    var table = h('table');
    var head = h('tr');
    ['replica', 'address', 'health', 'lag bytes', 'lag ms', 'replay LSN', 'sync'].forEach(function (x) { head.append(h('th', null, x)); });
    table.append(head);
    t.replicas.forEach(function (r) {
      var tr = h('tr');
      tr.append(h('td', null, r.id), h('td', null, r.host + ':' + r.port), h('td', r.healthy ? 'ok' : 'bad', r.healthy ? 'healthy' : 'unhealthy'),
        h('td', 'num', num(r.lagBytes)), h('td', 'num', num(r.lagMs)), h('td', null, r.replayLsn || '?'), h('td', null, r.sync ? 'sync' : 'async'));
      table.append(tr);
    });
    if (!t.replicas.length) { var none = h('tr'); var td = h('td', 'muted', 'no replicas'); td.colSpan = 7; none.append(td); table.append(none); }
    box.append(table, h('p', 'muted', 'table updated ' + new Date(t.updatedAt).toLocaleString()));
  }

  function summarize(data) {
    var parts = [];
    Object.keys(data || {}).forEach(function (k) {
      var v = data[k];
      if (k === 'evidence' || v === null || typeof v === 'object') return;
      parts.push(k + '=' + v);
    });
    var s = parts.join(' ');
    return s.length > 240 ? s.slice(0, 240) + '…' : s;
  }

  function renderEvents(s) {
    var ol = s.el.querySelector('.timeline');
    ol.replaceChildren();
    for (var i = s.events.length - 1; i >= 0; i--) {
      var e = s.events[i];
      var li = h('li');
      var tm = h('time', null, new Date(e.at).toLocaleTimeString());
      tm.dateTime = e.at;
      li.append(tm, h('span', 'type', e.type), h('span', 'data', summarize(e.data)));
      ol.append(li);
    }
    if (!s.events.length) ol.append(h('li', 'muted', 'no events yet'));
  }

  function render(s) { renderHeader(s); renderTopology(s); }

  function getJson(url) {
    return fetch(url, { headers: { accept: 'application/json' }, cache: 'no-store' }).then(function (r) {
      if (!r.ok) throw new Error(url + ': ' + r.status);
      return r.json();
    });
  }

  function refreshSummaries() {
    return getJson('v1/clusters').then(function (list) {
      list.forEach(function (c) {
        state.forEach(function (s) { if (s.summary.name === c.name) { Object.assign(s.summary, c); renderHeader(s); } });
      });
    }).catch(function () {});
  }

  function follow(s) {
    var es = new EventSource(base(s.summary.name) + '/routing/stream');
    es.addEventListener('routing', function (ev) { s.table = JSON.parse(ev.data); render(s); });
    es.onopen = function () { if (!s.open) { s.open = true; open++; setLive(); } };
    es.onerror = function () { if (s.open) { s.open = false; open--; setLive(); } };
  }

  // poll the journal: page forward until caught up, then every second
  function poll(s) {
    getJson(base(s.summary.name) + '/events?limit=500&after=' + encodeURIComponent(s.cursor)).then(function (r) {
      s.cursor = r.next;
      if (r.events.length) {
        s.events = s.events.concat(r.events).slice(-MAX_EVENTS);
        renderEvents(s);
        refreshSummaries();
      }
      setTimeout(function () { poll(s); }, r.events.length === 500 ? 0 : 1000);
    }).catch(function () { setTimeout(function () { poll(s); }, 3000); });
  }

  // the stream sends a table per new generation; lag is refreshed without one, so poll it
  function refreshLag(s) {
    getJson(base(s.summary.name) + '/routing').then(function (t) { if (t.generation >= s.table.generation) { s.table = t; renderTopology(s); } }).catch(function () {});
  }

  state.forEach(function (s) { render(s); renderEvents(s); follow(s); poll(s); setInterval(function () { refreshLag(s); }, 2000); });
  setInterval(refreshSummaries, 10000);
  setLive();
})();
`;
