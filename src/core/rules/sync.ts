/**
 * Rule: sync. Synchronous mode keeps the journaled synchronous standbys (the failover
 * candidates) holding every acknowledged commit. Pure.
 */
import type { ReplicationPeer } from '../../events/observation.js';
import { codecOf, comparePositions, reached } from '../positions.js';
import type { Settings } from '../settings.js';
import type { ClusterState, NodeInfo } from '../state.js';
import { isSilent, type Decision, type Pass } from './pass.js';

/** With a healthy primary, keep its synchronous standbys as the mode asks. */
export function syncRule({ state, now, s, out }: Pass): void {
  const primary = state.primary ? state.nodes[state.primary] : undefined;
  if (s.synchronous && primary && primary.healthy && !state.paused) maintainSync(state, primary, now, s, out);
}

/**
 * Synchronous mode: keep one journaled synchronous standby J that holds every
 * acknowledged commit, and fail over only to it.
 *
 *   J = []   → ask FIRST 1 (D); once D has flushed past the LSN it was applied at: J = [D]
 *   J = [D]  → FIRST 1 (D), steady
 *   J = [S]  and S no longer streaming → FIRST 2 (S, D): commits need both; once D has
 *              flushed past the LSN that was applied at, J = [D], then FIRST 1 (D)
 *
 * At every moment every acknowledged commit is on the journaled standby.
 */
function maintainSync(state: ClusterState, primary: NodeInfo, now: number, s: Settings, out: Decision[]): void {
  const pObs = state.soft[primary.id]?.obs;
  if (!pObs || isSilent(state.soft[primary.id], now, s) || pObs.role !== 'primary') return;
  const standbys = new Map((pObs.standbys ?? []).map((x) => [x.name, x]));
  const usable = (id: string | undefined): boolean => !!id && id !== primary.id && !!state.nodes[id]?.healthy && standbys.get(id)?.state === 'streaming';
  if (s.synchronous === 'quorum') {
    maintainQuorum(state, primary, standbys, usable, now, s, out);
    return;
  }
  const j = state.sync;
  let d: string | undefined = j.length === 1 && usable(j[0]) ? j[0] : undefined;
  if (!d) {
    const best = Object.values(state.nodes)
      .filter((n) => n.priority > 0 && usable(n.id))
      .sort((a, b) => comparePositions(codecOf(state), standbys.get(b.id)?.flushLsn, standbys.get(a.id)?.flushLsn) || b.priority - a.priority || (a.id < b.id ? -1 : 1));
    d = best[0]?.id;
  }
  if (!d) return; // nothing to make synchronous: commits wait for J, or stay asynchronous
  const want = j.length === 1 && j[0] !== d ? { names: [j[0]!, d], count: 2 } : { names: [d], count: 1 };
  const req = state.syncRequest;
  const same = !!req && req.node === primary.id && req.method === 'FIRST' && req.count === want.count && req.names.length === want.names.length && req.names.every((x, i) => x === want.names[i]);
  const stale = !!req && now - req.at > s.jobRetryMs && (req.failed !== null || req.appliedLsn === null);
  if (!same || stale) {
    const operationId = `sync-${now.toString(36)}`;
    out.push({ type: 'append', entry: { type: 'sync.requested', operationId, node: primary.id, names: want.names, count: want.count, method: 'FIRST', jobId: '' } });
    out.push({ type: 'job', job: { node: primary.id, action: 'sync', operationId, sync: { ...want, method: 'FIRST' } } });
    return;
  }
  if (!req.appliedLsn || (j.length === 1 && j[0] === d)) return;
  if (reached(codecOf(state), standbys.get(d)?.flushLsn, req.appliedLsn) === true) {
    const reason = j.length ? `${d} replaces ${j[0]}: it has flushed every commit acknowledged before` : `${d} has flushed every commit acknowledged before`;
    out.push({ type: 'append', entry: { type: 'sync.changed', names: [d], reason } });
  }
}

/**
 * Quorum mode: `ANY 1 (D)` with D every usable standby; the journaled set J is what a
 * failover needs (all of it reachable; the one with the most WAL is promoted).
 *
 *   D ⊄ J  → first journal J ∪ D (a superset is always safe), then ask ANY 1 (D)
 *   applied at LSN L, and some member of D has flushed past L → J = D
 *
 * A commit acknowledged before the change is at or below L, so on the member that has
 * flushed past it; one acknowledged after is on some member of D.
 */
function maintainQuorum(
  state: ClusterState,
  primary: NodeInfo,
  standbys: Map<string, ReplicationPeer>,
  usable: (id: string | undefined) => boolean,
  now: number,
  s: Settings,
  out: Decision[],
): void {
  const d = Object.values(state.nodes)
    .filter((n) => n.priority > 0 && usable(n.id))
    .map((n) => n.id)
    .sort();
  if (d.length === 0) return;
  const j = state.sync;
  const missing = d.filter((id) => !j.includes(id));
  if (missing.length > 0 && j.length > 0) {
    const union = [...new Set([...j, ...d])].sort();
    out.push({ type: 'append', entry: { type: 'sync.changed', names: union, reason: `quorum grows: ${missing.join(', ')} may acknowledge commits from now on` } });
    return;
  }
  const req = state.syncRequest;
  const same = !!req && req.node === primary.id && req.method === 'ANY' && req.count === 1 && req.names.length === d.length && req.names.every((x, i) => x === d[i]);
  const stale = !!req && now - req.at > s.jobRetryMs && (req.failed !== null || req.appliedLsn === null);
  if (!same || stale) {
    const operationId = `sync-${now.toString(36)}`;
    out.push({ type: 'append', entry: { type: 'sync.requested', operationId, node: primary.id, names: d, count: 1, method: 'ANY', jobId: '' } });
    out.push({ type: 'job', job: { node: primary.id, action: 'sync', operationId, sync: { names: d, count: 1, method: 'ANY' } } });
    return;
  }
  if (!req.appliedLsn || (j.length === d.length && j.every((x, i) => x === d[i]))) return;
  const codec = codecOf(state);
  if (d.some((id) => reached(codec, standbys.get(id)?.flushLsn, req.appliedLsn) === true)) {
    out.push({ type: 'append', entry: { type: 'sync.changed', names: d, reason: `quorum of ${d.join(', ')}: one of them has flushed every commit acknowledged before` } });
  }
}
