/**
 * decide(state, now, settings) → decisions. Pure: the leader's shell passes `now` in,
 * appends the journal drafts (fenced), and sends the jobs, in order.
 *
 * Level-triggered: each pass re-reads the whole state and asks what should be true
 * (registered nodes, journaled health, one healthy primary, replicas following it),
 * so a lost or duplicated message is corrected on a later pass.
 */
import type { Evidence, JournalDraft } from '../events/journal.js';
import type { ReplicationPeer } from '../events/observation.js';
import { lsnDiff, parseLsn } from './lsn.js';
import type { Settings } from './settings.js';
import type { ClusterState, NodeInfo, Operation, PendingCommand, SoftNode } from './state.js';

export type JobAction = 'promote' | 'demote' | 'follow' | 'rejoin' | 'unfence' | 'sync' | 'restart';

export interface JobSpec {
  node: string;
  action: JobAction;
  operationId: string;
  /** the primary to follow (follow, rejoin), or to hand over to (demote) */
  upstream?: { id: string; host: string; port: number };
  /** sync: synchronous_standby_names = <method> <count> (<names>) */
  sync?: { names: string[]; count: number; method: 'FIRST' | 'ANY' };
}

export type Decision = { type: 'append'; entry: JournalDraft } | { type: 'job'; job: JobSpec };

export interface Verdict {
  healthy: boolean;
  reason: string;
}

export function isSilent(soft: SoftNode | undefined, now: number, s: Settings): boolean {
  return !soft || now - soft.receivedAt > s.agentTimeoutMs;
}

export function addressOf(n: Pick<NodeInfo, 'host' | 'port'>): string {
  return `${n.host}:${n.port}`;
}

export function evidenceOf(state: ClusterState, id: string, now: number): Evidence {
  const soft = state.soft[id];
  if (!soft) return { node: id, receivedAt: 0, reachable: false, error: 'no-observation' };
  const o = soft.obs;
  const ev: Evidence = {
    node: id,
    receivedAt: soft.receivedAt,
    reachable: o.reachable,
    process: o.process,
    role: o.role,
    lsn: o.lsn,
    timeline: o.timeline,
    silentMs: Math.max(0, now - soft.receivedAt),
  };
  if (o.error) ev.error = o.error;
  if (o.peer) ev.peer = o.peer;
  return ev;
}

/** What the other agents see of `target` from their hosts. */
export function peerViews(state: ClusterState, target: string, now: number, s: Settings): { voters: number; unreachable: number; refused: number; reachable: number } {
  let voters = 0;
  let unreachable = 0;
  let refused = 0;
  let reachable = 0;
  for (const id of Object.keys(state.nodes)) {
    if (id === target) continue;
    voters++;
    const soft = state.soft[id];
    if (isSilent(soft, now, s) || !soft?.obs.peer || soft.obs.peer.node !== target) continue;
    if (soft.obs.peer.reachable) reachable++;
    else {
      unreachable++;
      if (soft.obs.peer.error === 'refused') refused++;
    }
  }
  return { voters, unreachable, refused, reachable };
}

/** The health a node should have in the journal, from what its agent (and its peers) report. */
export function observedHealth(state: ClusterState, id: string, now: number, s: Settings): Verdict {
  const soft = state.soft[id];
  const isPrimary = id === state.primary;
  if (isPrimary) {
    // asked to step down (a switchover that then failed or was aborted, perhaps after it
    // did): what it reported before, and what its peers see of its port, no longer tell
    const n = state.nodes[id];
    const asked = n?.demotionAskedAt ?? null;
    if (asked !== null && (n!.promotedAt === null || n!.promotedAt < asked) && (!soft || soft.receivedAt <= asked || isSilent(soft, now, s))) {
      return { healthy: false, reason: 'asked to step down: awaiting its next report' };
    }
  }
  if (isSilent(soft, now, s)) {
    // peers reaching its port say nothing of its role: they vouch for a primary whose
    // agent last reported it taking writes (or that this coordinator never heard from)
    const last = soft?.obs;
    const wasPrimary = !last || (last.reachable && last.role === 'primary' && !last.fenced && last.process !== 'dead' && last.process !== 'stopped');
    if (isPrimary && wasPrimary) {
      const peers = peerViews(state, id, now, s);
      if (peers.reachable > 0 && peers.reachable > peers.unreachable) return { healthy: true, reason: 'agent silent; peers reach it' };
    }
    return { healthy: false, reason: soft ? 'agent silent' : 'no observation yet' };
  }
  const o = soft!.obs;
  if (o.process === 'dead') return { healthy: false, reason: 'process exited' };
  if (o.process === 'stopped') return { healthy: false, reason: 'process stopped' };
  if (!o.reachable) return { healthy: false, reason: `unreachable: ${o.error ?? 'unknown'}` };
  if (isPrimary) {
    if (o.role === 'primary' && o.fenced) return { healthy: false, reason: 'fenced: refuses writes after losing Redis' };
    if (o.role === 'primary') return { healthy: true, reason: 'primary' };
    // its newest report predates its promotion: wait for the next one
    const promotedAt = state.nodes[id]?.promotedAt ?? null;
    if (promotedAt !== null && soft!.receivedAt <= promotedAt) return { healthy: true, reason: 'promoted; awaiting its next report' };
    return { healthy: false, reason: `expected primary, reports ${o.role}` };
  }
  if (o.role === 'primary') return { healthy: false, reason: `claims primary while ${state.primary ?? 'none'} is the primary` };
  if (o.role !== 'replica') return { healthy: false, reason: 'role unknown' };
  if (o.walReceiver !== 'streaming') return { healthy: false, reason: `replica not streaming (${o.walReceiver ?? 'no wal receiver'})` };
  const primary = state.primary ? state.nodes[state.primary] : undefined;
  if (primary && o.upstream && o.upstream !== addressOf(primary)) return { healthy: false, reason: `follows ${o.upstream}, not the primary` };
  return { healthy: true, reason: 'streaming' };
}

export interface PrimaryVerdict {
  failed: boolean;
  definitive: boolean;
  reason: string;
}

/**
 * Has the primary failed? Definitive evidence (the postmaster exited, connection
 * refused) fails fast; ambiguous evidence (timeout, stopped) waits failAfterMs; a silent
 * agent needs a majority of the other agents to see the primary unreachable.
 */
export function primaryVerdict(state: ClusterState, now: number, s: Settings): PrimaryVerdict {
  const id = state.primary;
  if (!id) return { failed: false, definitive: false, reason: 'no primary' };
  const soft = state.soft[id];
  // A silent agent is not a dead primary: only the peers can tell. Never heard from
  // (a coordinator that started during the outage) counts as silent for long.
  const silentMs = soft ? now - soft.receivedAt : Number.POSITIVE_INFINITY;
  if (!soft || isSilent(soft, now, s) || silentMs > s.peerRefusedAfterMs) {
    const peers = peerViews(state, id, now, s);
    const majority = Math.floor(peers.voters / 2) + 1;
    const enough = peers.voters > 0;
    // nothing listens on its port: nothing can take writes, no need to wait for its lease
    if (enough && peers.refused >= majority && silentMs > s.peerRefusedAfterMs) {
      return { failed: true, definitive: true, reason: `agent silent and a majority of peers get connection refused from the primary` };
    }
    if (soft && !isSilent(soft, now, s)) {
      // not silent for long yet: fall through to what the agent last said
    } else if (enough && peers.unreachable >= majority) {
      // the primary may be partitioned and still up: it fences itself fenceAfterMs after
      // losing Redis; its lease ends a margin later
      if (silentMs < s.fenceAfterMs + s.fenceMarginMs) {
        return { failed: false, definitive: false, reason: 'agent silent and a majority of peers cannot reach the primary: waiting for its lease to end' };
      }
      return { failed: true, definitive: false, reason: 'agent silent, its lease over, and a majority of peers cannot reach the primary' };
    } else {
      return { failed: false, definitive: false, reason: 'agent silent; no majority of peers that cannot reach it' };
    }
  }
  if (!soft) return { failed: false, definitive: false, reason: 'no observation of the primary yet' };
  const o = soft.obs;
  const downFor = soft.unreachableSince === null ? 0 : now - soft.unreachableSince;
  if (o.process === 'dead') {
    return downFor >= s.refusedFailAfterMs
      ? { failed: true, definitive: true, reason: 'postmaster exited' }
      : { failed: false, definitive: true, reason: 'postmaster exited; waiting refusedFailAfterMs' };
  }
  if (!o.reachable && o.error === 'refused') {
    return downFor >= s.refusedFailAfterMs
      ? { failed: true, definitive: true, reason: 'connection refused' }
      : { failed: false, definitive: true, reason: 'connection refused; waiting refusedFailAfterMs' };
  }
  if (soft.unreachableSince !== null) {
    const why = o.process === 'stopped' ? 'process stopped' : `unreachable (${o.error ?? 'unknown'})`;
    return downFor >= s.failAfterMs
      ? // no duration in a failed verdict's reason: it ends up in failover.blocked, which is deduplicated by reason
        { failed: true, definitive: false, reason: `${why} for at least failAfterMs (${s.failAfterMs} ms)` }
      : { failed: false, definitive: false, reason: `${why} for ${downFor} ms < failAfterMs` };
  }
  if (o.role !== 'primary') {
    // it answers, but not as a primary (demoted by hand, a switchover that went wrong).
    // A report from before its promotion says nothing (observedHealth waits for the next
    // one too), and the wrong role counts from the promotion at the earliest.
    const promotedAt = state.nodes[id]?.promotedAt ?? null;
    if (promotedAt !== null && soft.receivedAt <= promotedAt) return { failed: false, definitive: false, reason: 'promoted; awaiting its next report' };
    const wrongFor = now - Math.max(soft.roleSince, promotedAt ?? soft.roleSince);
    return wrongFor >= s.failAfterMs
      ? { failed: true, definitive: false, reason: `the primary reports role ${o.role} for at least failAfterMs (${s.failAfterMs} ms)` }
      : { failed: false, definitive: false, reason: `the primary reports role ${o.role}` };
  }
  return { failed: false, definitive: false, reason: 'healthy' };
}

export type CandidateChoice = { ok: true; node: string; lostBytes: number } | { ok: false; reason: string };

/**
 * Candidate rules: reachable replica with a live agent, priority > 0, newest timeline,
 * highest received LSN, within maxLagOnFailoverBytes of the old primary's last known
 * LSN; ties by priority (higher first), then id. A node that a failed operation from
 * this primary promoted after all counts too, as it reports itself: a primary.
 */
export function chooseCandidate(state: ClusterState, now: number, s: Settings, only?: string): CandidateChoice {
  const old = state.primary;
  // the newest observation of a failed primary has no LSN: use the last one it reported
  const oldLsn = old ? state.soft[old]?.lastLsn ?? null : null;
  const rejected: string[] = [];
  const eligible: Array<{ id: string; tl: number; lsn: number; prio: number }> = [];
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
    else {
      const lsn = o.lsn ?? o.replayLsn;
      const lag = lsnDiff(oldLsn, lsn);
      // (reasons carry no changing numbers: a blocked failover is journaled once per reason)
      // (in synchronous mode the journaled standby holds every acknowledged commit: its lag is unacknowledged WAL)
      if (oldLsn !== null && lsn === null && !syncOnly) rejected.push(`${n.id}: LSN unknown`);
      else if (lag !== null && lag > s.maxLagOnFailoverBytes && !syncOnly) rejected.push(`${n.id}: more than maxLagOnFailoverBytes (${s.maxLagOnFailoverBytes}) behind`);
      else eligible.push({ id: n.id, tl: o.timeline ?? 0, lsn: parseLsn(lsn) ?? 0, prio: n.priority });
    }
  }
  if (eligible.length === 0) {
    return { ok: false, reason: rejected.length ? `no candidate: ${rejected.join('; ')}` : 'no candidate: no replicas' };
  }
  eligible.sort((a, b) => b.tl - a.tl || b.lsn - a.lsn || b.prio - a.prio || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  // quorum: a target chosen by hand must be the one with the most WAL
  if (s.synchronous === 'quorum' && only && syncOnly) {
    const most = Math.max(0, ...[...syncOnly].map((id) => parseLsn(state.soft[id]?.obs.lsn ?? state.soft[id]?.obs.replayLsn) ?? 0));
    if ((eligible[0]?.lsn ?? 0) < most) return { ok: false, reason: `no candidate: quorum mode and ${only} has less WAL than another synchronous standby` };
  }
  const best = eligible[0]!;
  const bestObs = state.soft[best.id]?.obs;
  return { ok: true, node: best.id, lostBytes: lsnDiff(oldLsn, bestObs?.lsn ?? bestObs?.replayLsn) ?? 0 };
}

function upstreamOf(n: NodeInfo): { id: string; host: string; port: number } {
  return { id: n.id, host: n.host, port: n.port };
}

export function decide(state: ClusterState, now: number, s: Settings): Decision[] {
  const out: Decision[] = [];
  const append = (entry: JournalDraft): void => {
    out.push({ type: 'append', entry });
  };

  // 1. registration: every node that reports is known, with its current address
  for (const [id, soft] of Object.entries(state.soft)) {
    const n = state.nodes[id];
    const o = soft.obs;
    if (!n || n.host !== o.host || n.port !== o.port || n.priority !== o.priority) {
      append({ type: 'node.registered', node: id, host: o.host, port: o.port, priority: o.priority });
    }
  }

  // 2. bootstrap: adopt the one node that reports itself primary
  if (!state.primary && !state.operation) {
    const claimants = Object.keys(state.nodes).filter((id) => {
      const soft = state.soft[id];
      return !isSilent(soft, now, s) && soft!.obs.reachable && soft!.obs.role === 'primary';
    });
    if (claimants.length === 1) {
      append({ type: 'node.role-changed', node: claimants[0]!, role: 'primary', reason: 'bootstrap: the only node reporting primary' });
      return out; // decide the rest on the next pass, from the new primary
    }
    if (claimants.length > 1) {
      const reason = `several nodes claim primary (${claimants.sort().join(', ')}): not adopting any`;
      if (state.blocked !== reason) {
        append({ type: 'failover.blocked', primary: null, reason, evidence: claimants.map((c) => evidenceOf(state, c, now)) });
      }
    }
  }

  // 3. an operation in flight: see it through. When it concludes, stop here: health
  // is judged on the next pass, against the new primary.
  const op = state.operation;
  if (op && progressOperation(state, op, now, s, out)) return out;

  // 4. health, as the routing table will show it
  for (const id of Object.keys(state.nodes)) {
    const v = observedHealth(state, id, now, s);
    const n = state.nodes[id]!;
    if (v.healthy !== n.healthy) append({ type: 'node.health-changed', node: id, healthy: v.healthy, reason: v.reason });
  }

  // 4b. what a finished failover lost, once the old primary's agent read its end of WAL.
  // Only an end of the timeline that failover left: reported after it finished (an older
  // report may predate a restart in place that wrote more), by a node not promoted since
  // (its end of WAL is then of its own newer timeline).
  const recent = state.history.slice(-5);
  for (const [i, h] of recent.entries()) {
    if (h.kind !== 'failover' || h.outcome !== 'success' || h.lossMeasured || !h.from || !h.finishedAt) continue;
    const soft = state.soft[h.from];
    const walEnd = soft?.obs.walEnd;
    if (!walEnd || soft.receivedAt <= Date.parse(h.finishedAt)) continue;
    if (recent.slice(i + 1).some((x) => x.to === h.from)) continue;
    // the fork point from the promote job's result, or else from the new primary's own
    // reports (a promotion confirmed by its role before the job's result arrived)
    const toObs = state.soft[h.to]?.obs;
    const laterOps = recent.slice(i + 1).some((x) => x.to === h.to || x.from === h.to);
    const forkLsn = h.forkLsn ?? (!laterOps && toObs?.role === 'primary' ? toObs.forkLsn : undefined);
    if (!forkLsn) continue;
    append({ type: 'failover.loss', operationId: h.id, node: h.from, walEnd, forkLsn, lostBytes: lsnDiff(walEnd, forkLsn) ?? 0 });
  }

  // 5. operators' commands, oldest first; one operation at a time, and one change of
  // state per pass: the next command is judged against what this one did
  for (const cmd of Object.values(state.commands).sort((a, b) => a.receivedAt - b.receivedAt || (a.id < b.id ? -1 : 1))) {
    if (carryOut(state, cmd, now, s, out)) return out;
  }

  if (op || state.paused) return out;

  // 6. has the primary failed?
  const verdict = primaryVerdict(state, now, s);
  if (verdict.failed) {
    const from = state.primary!;
    const evidence = [from, ...Object.keys(state.nodes).filter((id) => id !== from).sort()].map((id) => evidenceOf(state, id, now));
    // a crashed primary whose agent is alive can be restarted in place: first, under the
    // restart-first policy; as the last resort, when no failover is possible
    const pSoft = state.soft[from];
    const restartable = !!pSoft && !isSilent(pSoft, now, s) && pSoft.obs.process === 'dead';
    const pending = state.nodes[from]?.pending;
    const restartAsked = pending?.action === 'restart' ? pending.at : null;
    const restart = (reason: string): Decision[] => {
      if (restartAsked !== null && now - restartAsked < s.jobRetryMs) return out;
      const operationId = `restart-${from}-${now.toString(36)}`;
      append({ type: 'restart.requested', operationId, node: from, reason, jobId: '' });
      out.push({ type: 'job', job: { node: from, action: 'restart', operationId } });
      return out;
    };
    if (s.policy === 'restart-first' && restartable && (restartAsked === null || now - restartAsked < s.failAfterMs)) {
      return restart('restart-first: the primary crashed; restarting it in place before failing over');
    }
    if (state.lastFailoverAt !== null && now - state.lastFailoverAt < s.cooldownMs) {
      const reason = `primary ${from} failed (${verdict.reason}) but the cooldown since the last failover has not passed`;
      if (state.blocked !== reason) append({ type: 'failover.blocked', primary: from, reason, evidence });
      return restartable ? restart('no failover possible (cooldown): restarting the crashed primary in place') : out;
    }
    const choice = chooseCandidate(state, now, s);
    if (!choice.ok) {
      const reason = `primary ${from} failed (${verdict.reason}); ${choice.reason}`;
      if (state.blocked !== reason) append({ type: 'failover.blocked', primary: from, reason, evidence });
      return restartable ? restart('no failover candidate: restarting the crashed primary in place') : out;
    }
    const operationId = `fo-${state.opSeq + 1}`;
    append({
      type: 'failover.started',
      operationId,
      kind: 'failover',
      from,
      to: choice.node,
      reason: verdict.reason,
      manual: false,
      lostBytes: choice.lostBytes,
      evidence,
    });
    append({ type: 'promotion.requested', operationId, node: choice.node, jobId: '' });
    out.push({ type: 'job', job: { node: choice.node, action: 'promote', operationId } });
    return out;
  }

  // 7. reconcile: a self-fenced primary that is still the primary takes writes again …
  const primary = state.primary ? state.nodes[state.primary] : undefined;
  const pSoft = primary ? state.soft[primary.id] : undefined;
  if (primary && pSoft && !isSilent(pSoft, now, s) && pSoft.obs.fenced && pSoft.obs.role === 'primary' && pSoft.obs.reachable) {
    const p = primary.pending;
    if (!(p && p.action === 'unfence' && now - p.at < s.jobRetryMs)) {
      const operationId = `unfence-${primary.id}-${now.toString(36)}`;
      append({ type: 'unfence.requested', operationId, node: primary.id, jobId: '' });
      out.push({ type: 'job', job: { node: primary.id, action: 'unfence', operationId } });
    }
  }
  // … synchronous mode keeps one synchronous standby …
  if (s.synchronous && primary && primary.healthy && !state.paused) maintainSync(state, primary, now, s, out);
  // … and every other node is a replica of the primary
  if (primary && state.nodes[primary.id]?.healthy) {
    for (const n of Object.values(state.nodes)) {
      if (n.id === primary.id) continue;
      const soft = state.soft[n.id];
      if (isSilent(soft, now, s)) continue;
      const o = soft!.obs;
      let action: 'follow' | 'rejoin' | null = null;
      if (o.role === 'primary' || o.process === 'dead') action = 'rejoin';
      else if (o.role === 'replica' && o.upstream !== null && o.upstream !== addressOf(primary)) action = 'follow';
      if (!action) continue;
      if (n.pending && n.pending.upstream === primary.id && now - n.pending.at < s.jobRetryMs) continue;
      const operationId = `fix-${n.id}-${now.toString(36)}`;
      append({ type: 'follow.requested', operationId, node: n.id, upstream: primary.id, action, jobId: '' });
      out.push({ type: 'job', job: { node: n.id, action, operationId, upstream: upstreamOf(primary) } });
    }
  }
  return out;
}

/**
 * Drive the operation in flight one step. Returns true when it concluded this pass.
 *
 *   switchover:  demoting ──demote ok──▶ catching-up ──target has the LSN──▶ promoting ──▶ done
 *                   │ fails / times out: aborted, the primary keeps its role
 *                   catching-up times out: retarget to the old primary (roll back), aborted once it is promoted again
 *   failover:    promoting ──promoted──▶ follow/rejoin jobs, done
 *                   │ fails / times out: failed
 */
function progressOperation(state: ClusterState, op: Operation, now: number, s: Settings, out: Decision[]): boolean {
  const append = (entry: JournalDraft): void => {
    out.push({ type: 'append', entry });
  };
  const finish = (outcome: 'success' | 'failed' | 'aborted', reason: string): true => {
    append({ type: 'failover.completed', operationId: op.id, outcome, durationMs: Math.max(0, now - op.startedAt), reason: reason.slice(0, 500) });
    return true;
  };
  if (op.phase === 'demoting') {
    const r = op.demoteResult;
    if (r?.ok) {
      append({ type: 'demotion.succeeded', operationId: op.id, node: op.from!, lsn: r.lsn ?? null });
      return false;
    }
    // aborted with the demotion unconfirmed: it may have stepped down after all (a job is
    // delivered at least once). The routing table would turn writable again on its
    // journaled health: it is unhealthy until it reports after the abort.
    const rejudge = (): void => {
      const from = op.from ? state.nodes[op.from] : undefined;
      if (from && from.id === state.primary && from.healthy) append({ type: 'node.health-changed', node: from.id, healthy: false, reason: 'switchover aborted: awaiting its next report' });
    };
    if (r) {
      rejudge();
      return finish('aborted', `demotion of ${op.from} failed (${r.code ?? 'error'}: ${r.message ?? ''}); it keeps its role`);
    }
    if (now - op.phaseAt > s.promoteTimeoutMs) {
      rejudge();
      return finish('aborted', `demotion of ${op.from} not confirmed within promoteTimeoutMs`);
    }
    // a new leader since the request: its predecessor may have died before sending the job
    const target = state.nodes[op.to];
    if (op.requestEpoch < state.epoch && op.from && target) {
      append({ type: 'demotion.requested', operationId: op.id, node: op.from, jobId: '' });
      out.push({ type: 'job', job: { node: op.from, action: 'demote', operationId: op.id, upstream: upstreamOf(target) } });
    }
    return false;
  }
  if (op.phase === 'catching-up') {
    const target = state.soft[op.to];
    const have = parseLsn(target?.obs.lsn);
    const need = parseLsn(op.demoteLsn);
    if (need === null || (have !== null && have >= need)) {
      append({ type: 'promotion.requested', operationId: op.id, node: op.to, jobId: '' });
      out.push({ type: 'job', job: { node: op.to, action: 'promote', operationId: op.id } });
      return false;
    }
    if (now - op.phaseAt > s.promoteTimeoutMs && op.from) {
      const reason = `${op.to} did not reach ${op.demoteLsn} within promoteTimeoutMs: rolling back to ${op.from}`;
      append({ type: 'operation.retargeted', operationId: op.id, to: op.from, reason });
      append({ type: 'promotion.requested', operationId: op.id, node: op.from, jobId: '' });
      out.push({ type: 'job', job: { node: op.from, action: 'promote', operationId: op.id } });
    }
    return false;
  }
  const candSoft = state.soft[op.to];
  const seenPrimary = !!candSoft && candSoft.receivedAt >= op.phaseAt && candSoft.obs.reachable && candSoft.obs.role === 'primary';
  if (!op.promoteResult && !seenPrimary && op.requestEpoch < state.epoch && now - op.phaseAt <= s.promoteTimeoutMs) {
    // a new leader since the request: its predecessor may have died before sending the
    // job. Promotion is idempotent; the old job, if it arrives, is refused (stale epoch).
    append({ type: 'promotion.requested', operationId: op.id, node: op.to, jobId: '' });
    out.push({ type: 'job', job: { node: op.to, action: 'promote', operationId: op.id } });
    return false;
  }
  if (op.promoteResult?.ok || seenPrimary) {
    const target = state.nodes[op.to];
    // (the candidate's timeline as it reports it once promoted; unknown until then)
    const timeline = candSoft?.obs.role === 'primary' ? candSoft.obs.timeline : null;
    append({ type: 'promotion.succeeded', operationId: op.id, node: op.to, timeline, forkLsn: op.promoteResult?.lsn ?? candSoft?.obs.forkLsn ?? null });
    if (target) {
      const demoted = op.kind === 'switchover' && op.demoteLsn !== null;
      for (const id of Object.keys(state.nodes).sort()) {
        if (id === op.to) continue;
        const action = id === op.from && !demoted ? 'rejoin' : 'follow';
        append({ type: 'follow.requested', operationId: op.id, node: id, upstream: op.to, action, jobId: '' });
        out.push({ type: 'job', job: { node: id, action, operationId: op.id, upstream: upstreamOf(target) } });
      }
    }
    // a switchover rolled back to its old primary did not happen: the primary keeps its role
    if (op.to === op.from) return finish('aborted', `rolled back: ${op.to} promoted again`);
    return finish('success', `${op.to} promoted`);
  }
  if (op.promoteResult && !op.promoteResult.ok) {
    const why = `${op.promoteResult.code ?? 'error'}: ${op.promoteResult.message ?? ''}`.slice(0, 900);
    append({ type: 'promotion.failed', operationId: op.id, node: op.to, reason: why });
    return finish('failed', why);
  }
  if (now - op.phaseAt > s.promoteTimeoutMs) {
    const why = `promotion not confirmed within promoteTimeoutMs (${s.promoteTimeoutMs} ms)`;
    append({ type: 'promotion.failed', operationId: op.id, node: op.to, reason: why });
    return finish('failed', why);
  }
  return false;
}

/**
 * An operator's command: carry it out, or journal why not. Returns true when it changed
 * the state the rest of this pass would judge (paused, resumed, an operation started).
 */
function carryOut(state: ClusterState, cmd: PendingCommand, now: number, s: Settings, out: Decision[]): boolean {
  const append = (entry: JournalDraft): void => {
    out.push({ type: 'append', entry });
  };
  const reject = (reason: string): false => {
    append({ type: 'command.rejected', commandId: cmd.id, action: cmd.action, reason });
    return false;
  };
  switch (cmd.action) {
    case 'pause':
      if (state.paused) return reject('already paused');
      append({ type: 'cluster.paused', by: cmd.by, commandId: cmd.id });
      return true;
    case 'resume':
      if (!state.paused) return reject('not paused');
      append({ type: 'cluster.resumed', by: cmd.by, commandId: cmd.id });
      return true;
    case 'switchover':
    case 'failover': {
      if (state.operation) return reject(`operation ${state.operation.id} is in flight`);
      if (cmd.to !== undefined && !state.nodes[cmd.to]) return reject(`no node ${cmd.to}`);
      // health as observed now, not as last journaled: this pass may be journaling a change
      const primary = state.primary ? state.nodes[state.primary] : undefined;
      const primaryUp = !!primary && observedHealth(state, primary.id, now, s).healthy;
      if (cmd.action === 'switchover') {
        if (!primary || !primaryUp) return reject('no healthy primary to switch over from: use failover --to NODE');
        if (cmd.to === primary.id) return reject(`${cmd.to} is already the primary`);
        if (cmd.to !== undefined && !observedHealth(state, cmd.to, now, s).healthy) return reject(`${cmd.to} is not a healthy replica`);
      } else {
        if (cmd.to === undefined) return reject('failover needs a target (to)');
        if (primaryUp) return reject(`the primary ${primary.id} is healthy: use switchover`);
      }
      const choice = chooseCandidate(state, now, s, cmd.to);
      if (!choice.ok) return reject(choice.reason);
      const from = state.primary;
      const evidence = [...(from ? [from] : []), ...Object.keys(state.nodes).filter((id) => id !== from).sort()].map((id) => evidenceOf(state, id, now));
      append({
        type: 'failover.started',
        operationId: cmd.id,
        kind: cmd.action,
        from,
        to: choice.node,
        reason: `${cmd.action} requested by ${cmd.by}`,
        manual: true,
        commandId: cmd.id,
        lostBytes: cmd.action === 'switchover' ? 0 : choice.lostBytes,
        evidence,
      });
      if (cmd.action === 'switchover') {
        const target = state.nodes[choice.node]!;
        append({ type: 'demotion.requested', operationId: cmd.id, node: from!, jobId: '' });
        out.push({ type: 'job', job: { node: from!, action: 'demote', operationId: cmd.id, upstream: upstreamOf(target) } });
      } else {
        append({ type: 'promotion.requested', operationId: cmd.id, node: choice.node, jobId: '' });
        out.push({ type: 'job', job: { node: choice.node, action: 'promote', operationId: cmd.id } });
      }
      return true;
    }
  }
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
      .sort((a, b) => (parseLsn(standbys.get(b.id)?.flushLsn) ?? 0) - (parseLsn(standbys.get(a.id)?.flushLsn) ?? 0) || b.priority - a.priority || (a.id < b.id ? -1 : 1));
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
  const flushed = parseLsn(standbys.get(d)?.flushLsn);
  const need = parseLsn(req.appliedLsn);
  if (flushed !== null && need !== null && flushed >= need) {
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
  const need = parseLsn(req.appliedLsn);
  const best = Math.max(...d.map((id) => parseLsn(standbys.get(id)?.flushLsn) ?? 0));
  if (need !== null && best >= need) {
    out.push({ type: 'append', entry: { type: 'sync.changed', names: d, reason: `quorum of ${d.join(', ')}: one of them has flushed every commit acknowledged before` } });
  }
}
