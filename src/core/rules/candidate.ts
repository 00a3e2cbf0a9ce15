/** Rule: candidate. Which node a failover promotes, or why none may be. Pure. */
import { bytesAhead, codecOf, comparePositions, newestPosition } from '../positions.js';
import type { Settings } from '../settings.js';
import type { ClusterState } from '../state.js';
import { isSilent } from './pass.js';
import { ackedByReplicas } from '../../engines/traits.js';

export type CandidateChoice = { ok: true; node: string; lostBytes: number } | { ok: false; reason: string };

/**
 * Candidate rules: reachable replica with a live agent, priority > 0, newest timeline,
 * highest received LSN, within maxLagOnFailoverBytes of the old primary's last known
 * LSN; ties by priority (higher first), then id. A node that a failed operation from
 * this primary promoted after all counts too, as it reports itself: a primary.
 *
 * Where the engine names replication histories (Redis `master_replid`), only a replica on
 * the old primary's last known history qualifies: offsets on another history (a replica
 * resynced from an empty master, one left on an older history) count different bytes.
 */
export function chooseCandidate(state: ClusterState, now: number, s: Settings, only?: string): CandidateChoice {
  const old = state.primary;
  // the newest observation of a failed primary has no LSN: use the last one it reported
  const oldLsn = old ? state.soft[old]?.lastLsn ?? null : null;
  const oldHistory = old ? state.soft[old]?.lastHistory ?? null : null;
  const rejected: string[] = [];
  const codec = codecOf(state);
  const eligible: Array<{ id: string; tl: number; pos: string | null; prio: number }> = [];
  const syncOnly = s.synchronous ? new Set(state.sync) : null;
  // nodes promoted at our request by an operation from this primary that then failed (the
  // result lost, or too late): one may report primary now. It holds the newest timeline:
  // adopting it (its promote job answers 'already primary') forks no further history.
  const promotedAt = old ? (state.nodes[old]?.promotedAt ?? null) : null;
  const latePromoted = new Set(
    state.history.filter((h) => h.outcome === 'failed' && h.from === old && h.to !== old && (promotedAt === null || Date.parse(h.startedAt) >= promotedAt)).map((h) => h.to),
  );
  if (syncOnly && syncOnly.size === 0) return { ok: false, reason: 'no candidate: synchronous mode and no synchronous standby is established' };
  if (s.synchronous === 'quorum' && syncOnly) {
    // ANY 1: an acknowledged commit is on at least one of them; only the one with the
    // most WAL among all of them surely has every one
    const away = [...syncOnly].filter((id) => {
      const soft = state.soft[id];
      return isSilent(soft, now, s) || !soft!.obs.reachable || soft!.obs.role !== 'replica';
    });
    if (away.length > 0) return { ok: false, reason: `no candidate: quorum mode needs every synchronous standby, and ${away.sort().join(', ')} cannot be reached` };
  }
  for (const n of Object.values(state.nodes)) {
    if (n.id === old) continue;
    if (only && n.id !== only) continue;
    if (syncOnly && !syncOnly.has(n.id)) {
      rejected.push(`${n.id}: not a synchronous standby`);
      continue;
    }
    const soft = state.soft[n.id];
    if (isSilent(soft, now, s)) {
      rejected.push(`${n.id}: agent silent`);
      continue;
    }
    const o = soft!.obs;
    if (n.priority <= 0) rejected.push(`${n.id}: priority 0`);
    else if (!o.reachable || o.process === 'dead' || o.process === 'stopped') rejected.push(`${n.id}: unreachable`);
    else if (o.role !== 'replica' && !(o.role === 'primary' && latePromoted.has(n.id))) rejected.push(`${n.id}: role ${o.role}`);
    else if (!onHistory(oldHistory, o.history, o.historyPrev)) rejected.push(`${n.id}: on another replication history than ${old ?? 'the primary'}`);
    else {
      const lsn = o.lsn ?? o.replayLsn;
      const lag = bytesAhead(codec, oldLsn, lsn);
      // (reasons carry no changing numbers: a blocked failover is journaled once per reason)
      // (in synchronous mode the journaled standby holds every acknowledged commit: its lag is unacknowledged WAL)
      if (oldLsn !== null && lsn === null && !syncOnly) rejected.push(`${n.id}: LSN unknown`);
      else if (lag !== null && lag > s.maxLagOnFailoverBytes && !syncOnly) rejected.push(`${n.id}: more than maxLagOnFailoverBytes (${s.maxLagOnFailoverBytes}) behind`);
      else eligible.push({ id: n.id, tl: o.timeline ?? 0, pos: lsn, prio: n.priority });
    }
  }
  if (eligible.length === 0) {
    return { ok: false, reason: rejected.length ? `no candidate: ${rejected.join('; ')}` : 'no candidate: no replicas' };
  }
  eligible.sort((a, b) => b.tl - a.tl || comparePositions(codec, b.pos, a.pos) || b.prio - a.prio || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  // quorum: a target chosen by hand must be the one with the most WAL
  if (s.synchronous === 'quorum' && only && syncOnly) {
    const most = newestPosition(codec, [...syncOnly].map((id) => state.soft[id]?.obs.lsn ?? state.soft[id]?.obs.replayLsn));
    if (comparePositions(codec, eligible[0]?.pos, most) < 0) return { ok: false, reason: `no candidate: quorum mode and ${only} has less WAL than another synchronous standby` };
  }
  const best = eligible[0]!;
  const bestObs = state.soft[best.id]?.obs;
  return { ok: true, node: best.id, lostBytes: bytesAhead(codec, oldLsn, bestObs?.lsn ?? bestObs?.replayLsn) ?? 0 };
}

/**
 * Is a replica on history `id` (continuing `prev`) on the old primary's history `ref`?
 * The same history, or one forked off it (a node promoted from it, or following one). Not
 * the history the primary itself continues: a replica still on that one may hold bytes
 * past the fork that the primary's history never had (a former master's lost writes).
 * Unknown on either side: yes (engines without histories, agents from before).
 */
export function onHistory(ref: { id: string; prev: string | null } | null, id: string | undefined, prev: string | undefined): boolean {
  if (!ref || !id) return true;
  return id === ref.id || prev === ref.id;
}

/**
 * Replicas whose newest report may not hold their final position yet: a failover waits
 * for them before it picks a candidate (see failureRule). Pure.
 *
 * A replica's reported position is only a lower bound while the primary may still send to
 * it: the primary's death is reported at once, but each replica's newest report may be
 * up to a probe interval old, taken while the writes the clients saw acknowledged (Redis
 * `WAIT`, PostgreSQL's asynchronous commit) were still arriving. Comparing such reports
 * picks a replica at random among those that were streaming, and promoting one that was
 * behind throws away what the others had (a Redis replica then full-resyncs from it).
 *
 * So, once the primary is reported unreachable, a replica's position counts only from a
 * report that came after that one in the observation stream (one total order) and that
 *   - was begun after it: the agent's previous report came after it too (an agent probes
 *     one at a time), or
 *   - shows the replica cut off from its upstream (not streaming): nothing more arrives.
 * Only replicas a failover could promote are waited for (live agent, priority > 0,
 * reachable, a replica), and for at most agentTimeoutMs from the primary's first
 * unreachable report: after that the reports are judged as they are. It costs a failover
 * about one probe interval.
 *
 * Engines whose writes are acknowledged by replicas outside the core's synchronous mode
 * (Redis `WAIT`, see ackedByReplicas), and synchronous quorum mode (ANY 1: the standby
 * with the most WAL is the one to promote): elsewhere nothing waits (a synchronous FIRST
 * standby holds every acknowledged commit; an asynchronous failover journals its loss).
 */
export function unsettledPositions(state: ClusterState, now: number, s: Settings): string[] {
  // PostgreSQL in quorum mode (ANY 1) too: an acknowledged commit is on at least one
  // standby, and only the one truly furthest ahead surely holds every one
  if (!ackedByReplicas(state.engine) && s.synchronous !== 'quorum') return [];
  const old = state.primary;
  const ps = old ? state.soft[old] : undefined;
  const since = ps?.unreachableArrival ?? null;
  if (!old || !ps || since === null || ps.unreachableSince === null || now - ps.unreachableSince >= s.agentTimeoutMs) return [];
  const waiting: string[] = [];
  for (const n of Object.values(state.nodes)) {
    if (n.id === old || n.priority <= 0) continue;
    const soft = state.soft[n.id];
    if (!soft || isSilent(soft, now, s)) continue;
    const o = soft.obs;
    if (!o.reachable || o.process === 'dead' || o.process === 'stopped' || o.role !== 'replica') continue;
    const after = (soft.arrival ?? 0) > since;
    const begunAfter = after && (soft.prevArrival ?? 0) > since;
    const cutOff = after && o.walReceiver !== 'streaming';
    if (!begunAfter && !cutOff) waiting.push(n.id);
  }
  return waiting.sort();
}
