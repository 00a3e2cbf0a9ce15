/**
 * How `switchyard ctl` prints what the API answers: times, sizes, the routing table,
 * the history and an operation's explain. Pure: no I/O, `now` passed in.
 */
import { lsnDiff } from '../core/lsn.js';
import { POSITION_CODECS } from '../engines/positions.js';

/* ------------------------------------------------------------------ format */

/** The one time format: ISO 8601, UTC, milliseconds. */
export function fmtTime(t: string | number | null | undefined): string {
  if (t === null || t === undefined) return '-';
  const d = new Date(t);
  return Number.isNaN(d.getTime()) ? String(t) : d.toISOString();
}

export function fmtAgo(t: string | number, now = Date.now()): string {
  const ms = Math.max(0, now - new Date(t).getTime());
  if (ms < 1_000) return `${ms} ms ago`;
  if (ms < 120_000) return `${Math.round(ms / 1000)} s ago`;
  if (ms < 7_200_000) return `${Math.round(ms / 60_000)} min ago`;
  return `${Math.round(ms / 3_600_000)} h ago`;
}

export function fmtBytes(n: number | null | undefined): string {
  if (n === null || n === undefined) return '?';
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

/** Columns, left-aligned, two spaces apart; the last one is not padded. */
export function columns(rows: string[][], indent = '  '): string[] {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  return rows.map((r) => indent + r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd());
}

/** A journal field as text. */
export function str(v: unknown): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return v.toString();
  return JSON.stringify(v) ?? '';
}

/** The scalar fields of a journal entry, `k=v`, for one line of text. */
export function summarize(data: Record<string, unknown>): string {
  const parts: string[] = [];
  for (const [k, v] of Object.entries(data)) {
    if (k === 'epoch' || k === 'jobId') continue;
    if (k === 'evidence' && Array.isArray(v)) {
      parts.push(`evidence=[${v.length} node${v.length === 1 ? '' : 's'}]`);
      continue;
    }
    if (v === null || v === undefined || typeof v === 'object') continue;
    parts.push(typeof v === 'string' && /\s/.test(v) ? `${k}="${v}"` : `${k}=${str(v)}`);
  }
  return parts.join(' ');
}

export interface TableNode {
  id: string;
  host: string;
  port: number;
  role: 'primary' | 'replica';
  phase: string;
  healthy: boolean;
  reason: string;
  zone?: string;
}

export interface Table {
  cluster: string;
  engine: string;
  generation: number;
  epoch: number;
  writable: boolean;
  updatedAt: string;
  primary: { id: string; host: string; port: number; zone?: string } | null;
  replicas: Array<{ id: string; host: string; port: number; healthy: boolean; lagBytes: number | null; lagMs: number | null; sync: boolean; stalenessMs?: number | null; zone?: string }>;
  phase?: string;
  paused?: boolean;
  blocked?: string | null;
  nodes?: TableNode[];
}

const PHASE_WORDS: Record<string, string> = {
  bootstrapping: 'bootstrapping (no primary yet)',
  healthy: 'healthy',
  degraded: 'degraded (a replica is down)',
  'primary-down': 'primary down (no primary taking writes)',
  'failing-over': 'failing over',
  'switching-over': 'switching over',
};

export function renderList(t: Table, now = Date.now()): string[] {
  const out: string[] = [];
  const flags = [t.writable ? 'writable' : 'NOT WRITABLE', ...(t.paused ? ['PAUSED'] : [])];
  out.push(`cluster ${t.cluster} (${t.engine})  phase: ${PHASE_WORDS[t.phase ?? ''] ?? t.phase ?? '?'}  ${flags.join('  ')}`);
  if (t.paused) out.push('  paused: no automatic failover until `switchyard ctl resume`');
  if (t.blocked) out.push(`  failover blocked: ${t.blocked}`);
  // a healthy node whose agent is silent: nothing is wrong with it yet, but nothing runs on it
  for (const n of t.nodes ?? []) {
    if (n.healthy && /agent silent/.test(n.reason)) out.push(`  attention: ${n.id}'s agent is silent (${n.reason}): no job runs on ${n.id} until it is back`);
  }
  out.push(`  generation ${t.generation}, epoch ${t.epoch}; last change ${fmtTime(t.updatedAt)} (${fmtAgo(t.updatedAt, now)}); read ${fmtTime(now)}`);
  out.push('');
  const replicas = new Map(t.replicas.map((r) => [r.id, r]));
  const nodes: TableNode[] =
    t.nodes ??
    // an older coordinator: only what the table's primary and replicas say
    [
      ...(t.primary ? [{ ...t.primary, role: 'primary' as const, phase: 'primary', healthy: true, reason: 'primary' }] : []),
      ...t.replicas.map((r) => ({ id: r.id, host: r.host, port: r.port, role: 'replica' as const, phase: r.healthy ? 'replica' : 'replica-down', healthy: r.healthy, reason: r.healthy ? 'streaming' : 'unhealthy', ...(r.zone !== undefined ? { zone: r.zone } : {}) })),
    ];
  // a ZONE column only when some node has one (agents' `zone`): a cluster without zones keeps its columns
  const zones = nodes.some((n) => n.zone !== undefined);
  const rows = [['NODE', 'ROLE', 'PHASE', 'ADDRESS', ...(zones ? ['ZONE'] : []), 'LAG', 'SYNC', 'REASON']];
  for (const n of nodes) {
    const r = replicas.get(n.id);
    // an unhealthy replica's last figures say nothing about now: no "lag 0" for it
    // (a MongoDB set's replicas carry server-selection staleness instead of bytes)
    const lag = n.role === 'primary' || !r ? '' : !r.healthy ? '-' : r.stalenessMs !== undefined ? `stale ${r.stalenessMs ?? '?'} ms, ${r.lagMs ?? '?'} ms` : `${fmtBytes(r.lagBytes)}, ${r.lagMs ?? '?'} ms`;
    const role = t.primary?.id === n.id ? 'primary' : n.role === 'primary' ? 'primary (down)' : 'replica';
    rows.push([n.id, role, n.phase, `${n.host}:${n.port}`, ...(zones ? [n.zone ?? '-'] : []), lag, r?.sync ? 'sync' : '', n.reason]);
  }
  if (nodes.length === 0) out.push('  no nodes registered yet');
  else out.push(...columns(rows));
  return out;
}

export interface HistoryItem {
  id: string;
  kind: 'failover' | 'switchover';
  from: string | null;
  to: string;
  reason: string;
  startedAt: string;
  finishedAt: string | null;
  durationMs: number | null;
  lostBytes: number;
  outcome: string;
  lossMeasured?: boolean;
}

function lost(h: HistoryItem): string {
  if (h.kind === 'switchover') return '0 B';
  // a replica set's own election (MongoDB): no WAL to measure; unreplicated writes are rolled back (the reason says so)
  if (h.reason.startsWith('elected by the set')) return h.reason.includes('rolled back') ? 'rolled back' : '-';
  return `${fmtBytes(h.lostBytes)}${h.lossMeasured ? '' : ' (estimated)'}`;
}

export function renderHistory(items: HistoryItem[]): string[] {
  if (items.length === 0) return ['no failovers or switchovers yet'];
  const rows = [['ID', 'KIND', 'FROM', 'TO', 'STARTED', 'DURATION', 'LOST', 'OUTCOME', 'REASON']];
  for (const h of items) {
    rows.push([h.id, h.kind, h.from ?? '-', h.to, fmtTime(h.startedAt), h.durationMs === null ? '-' : `${h.durationMs} ms`, lost(h), h.outcome, h.reason]);
  }
  return columns(rows, '');
}

export interface Evidence {
  node: string;
  reachable: boolean;
  error?: string;
  process?: string;
  role?: string;
  lsn?: string | null;
  timeline?: number | null;
  silentMs?: number;
  receivedAt?: number;
}

export interface Explain {
  operation: HistoryItem;
  evidence: Evidence[];
  entries: Array<{ id: string; type: string; at: string; data: Record<string, unknown> }>;
}

/** What a node's last report said about it, briefly: `process dead, unreachable (refused)`. */
export function describeEvidence(e: Evidence): string {
  if ((e.silentMs ?? 0) > 0 && e.error === 'no-observation') return `no report from its agent for ${e.silentMs} ms`;
  const parts = [e.process && e.process !== 'running' ? `process ${e.process}` : null, e.reachable ? `reachable, role ${e.role ?? '?'}` : `unreachable (${e.error ?? 'unknown'})`];
  return parts.filter(Boolean).join(', ');
}

/**
 * Positions of an engine other than PostgreSQL (told apart by their form: a Redis offset, a
 * MongoDB optime "term:secs.inc"), read through the engine's codec: why `e` was not chosen
 * over `c`, or null (PostgreSQL LSNs, or nothing to say).
 */
function otherPositions(c: string, e: string, manual: boolean): string | null {
  const codec = Object.entries(POSITION_CODECS).find(([name, k]) => name !== 'postgres' && k.valid(c) && k.valid(e))?.[1];
  if (!codec) return null;
  const cmp = codec.compare(c, e) ?? 0;
  const d = codec.distance(c, e);
  if (cmp > 0) return `behind: position ${e} < ${c}${d === null ? '' : ` (${codec.unit === 'bytes' ? fmtBytes(d) : `${String(d)} s`})`}`;
  return cmp === 0 ? `as far as the chosen node (position ${e})${manual ? '' : ': the tie went by priority, then name'}` : null;
}

/** Why `chosen` and not each other node, from the evidence the decision recorded. */
export function whyNotOthers(op: HistoryItem, evidence: Evidence[], manual = false): string[] {
  const c = evidence.find((e) => e.node === op.to);
  const out: string[] = [];
  for (const e of evidence) {
    if (e.node === op.to || e.node === op.from) continue;
    let why: string;
    if ((e.silentMs ?? 0) > 0 && e.error === 'no-observation') why = 'no report from its agent';
    else if (!e.reachable) why = `unreachable (${e.error ?? 'unknown'})`;
    else if (e.process === 'dead' || e.process === 'stopped') why = `process ${e.process}`;
    else if (e.role && e.role !== 'replica') why = `role ${e.role}`;
    else if (c && (e.timeline ?? 0) < (c.timeline ?? 0)) why = `older timeline (${e.timeline ?? '?'} < ${c.timeline ?? '?'})`;
    else if (c && e.lsn && c.lsn && otherPositions(c.lsn, e.lsn, manual)) why = otherPositions(c.lsn, e.lsn, manual)!;
    else if (c && e.lsn && c.lsn && (lsnDiff(c.lsn, e.lsn) ?? 0) > 0) why = `behind: LSN ${e.lsn} < ${c.lsn} (${fmtBytes(lsnDiff(c.lsn, e.lsn))})`;
    // an operator's request may have named the node: only an automatic choice is a tie-break
    else if (c && e.lsn && c.lsn && e.lsn === c.lsn) why = `as far as ${op.to} (LSN ${e.lsn})${manual ? '' : ': the tie went by priority, then name'}`;
    else why = op.kind === 'switchover' ? `not chosen (the operator or the candidate rules picked ${op.to})` : 'not eligible';
    out.push(`${e.node}: ${why}`);
  }
  return out;
}

export function renderExplain(x: Explain): string[] {
  const op = x.operation;
  const out: string[] = [];
  const how = op.outcome === 'running' ? 'running' : `${op.outcome}${op.durationMs === null ? '' : ` in ${op.durationMs} ms`}`;
  out.push(`${op.kind} ${op.id}: ${op.from ?? '(no primary)'} → ${op.to}, ${how}${op.kind === 'failover' ? `, lost ${lost(op)}` : ''}`);
  const started = x.entries.find((e) => e.type === 'failover.started');
  const elected = started ? undefined : x.entries.find((e) => e.type === 'set.changed' && e.data.fact === 'election');
  if (elected) out.push(...electionLines(op, elected.data));
  else out.push(...decisionLines(x, op, started));
  out.push(...renderSteps(x, Date.parse(op.startedAt)));
  return out;
}

/** An election a replica set held by itself (MongoDB): no decision of ours, the set's own evidence. */
function electionLines(op: HistoryItem, d: Record<string, unknown>): string[] {
  const out = [`  decision: none of switchyard's: ${op.reason}`];
  out.push(`  elected:  ${op.to} (${str(d.member)}, term ${str(d.term ?? '?')}, electionId ${str(d.electionId ?? '?')})`);
  if (op.from) out.push(`  former:   ${op.from}, last seen as primary at ${fmtTime(op.startedAt)}`);
  out.push(`  evidence: ${str(d.evidence)}`);
  return out;
}

/** The decision behind an operation switchyard started: what the failed primary said, the chosen node, why not the others. */
function decisionLines(x: Explain, op: HistoryItem, started: Explain['entries'][number] | undefined): string[] {
  const out: string[] = [];
  const manual = started?.data.manual === true;
  // a failover: what the failed primary's last report said, once (the others' are below)
  const prim = op.kind === 'failover' ? x.evidence.find((e) => e.node === op.from) : undefined;
  // its last report, unless the reason already says all it said ("connection refused" ~ "unreachable (refused)")
  const saidAlready = !!prim && !prim.reachable && !!prim.error && op.reason.includes(prim.error) && (!prim.process || prim.process === 'running' || op.reason.includes(prim.process));
  const at = prim?.receivedAt ? ` at ${fmtTime(prim.receivedAt)}` : '';
  const seen = !prim ? '' : saidAlready ? (at ? ` (reported by ${prim.node}'s agent${at})` : '') : ` (${prim.node}'s agent reported${at}: ${describeEvidence(prim)})`;
  out.push(`  decision: ${op.kind === 'failover' && !manual && op.from ? `the primary ${op.from} failed: ${op.reason}` : op.reason}${seen}`);
  const c = x.evidence.find((e) => e.node === op.to);
  const cand = c ? [c.timeline != null ? `timeline ${c.timeline}` : null, c.lsn ? `LSN ${c.lsn}` : null].filter(Boolean).join(', ') : '';
  out.push(`  chosen:   ${op.to}${cand ? ` (${cand})` : ''}`);
  const others = whyNotOthers(op, x.evidence, manual);
  if (others.length) {
    out.push('  others:');
    for (const o of others) out.push(`    ${o}`);
  }
  return out;
}

function renderSteps(x: Explain, t0: number): string[] {
  const out: string[] = [];
  out.push('  steps:');
  const rows = x.entries.map((e) => {
    const d = e.data;
    let what: string;
    switch (e.type) {
      case 'failover.started':
        what = `${str(d.from ?? '-')} → ${str(d.to)}`;
        break;
      case 'promotion.succeeded':
        what = `${str(d.node)}${d.timeline != null ? ` on timeline ${str(d.timeline)}` : ''}${d.forkLsn ? `, forked at ${str(d.forkLsn)}` : ''}`;
        break;
      case 'failover.completed':
        what = `${str(d.outcome)}: ${str(d.reason)}`;
        break;
      case 'failover.loss':
        what = `${fmtBytes(d.lostBytes as number)} lost (${str(d.node)}'s end of WAL ${str(d.walEnd)}, fork ${str(d.forkLsn)})`;
        break;
      case 'set.changed':
        what = `${str(d.fact)} ${str(d.member)}${d.term != null ? ` (term ${str(d.term)})` : ''}`;
        break;
      case 'follow.requested':
        what = `${str(d.node)} ${str(d.action)}s ${str(d.upstream)}`;
        break;
      default:
        what = [d.node, d.reason].filter((v) => typeof v === 'string').join(': ');
    }
    return [fmtTime(e.at), `+${Date.parse(e.at) - t0} ms`, e.type, what];
  });
  out.push(...columns(rows, '    '));
  return out;
}

/* -------------------------------------------------------------- commands */
