/**
 * Rules: failure. Has the primary failed (definitive evidence fast, ambiguous evidence
 * after failAfterMs, a silent agent only on its peers' word)? Then restart it in place,
 * start a failover, or journal why neither may happen. Pure.
 */
import type { Settings } from '../settings.js';
import type { ClusterState } from '../state.js';
import { chooseCandidate, unsettledPositions } from './candidate.js';
import { startOperation } from './operation.js';
import { append, capLeaseMs, evidenceAround, isSilent, job, leaseMs, peerViews, type Pass } from './pass.js';

/**
 * A node asked to promote by an operation that did not confirm it (failed, timed out): it
 * may be a primary taking writes all the same. Until it reports after the request (a
 * replica, gone, read-only), or its lease runs out, nothing else may be made writable
 * (no restart in place, no new promotion of another node, no unfence). The reason, or null.
 */
export function promotionInDoubt(state: ClusterState, now: number, s: Settings, claimantsCount = true): string | null {
  for (const n of Object.values(state.nodes)) {
    const asked = n.promotionAskedAt ?? null;
    if (asked === null || n.id === state.primary) continue;
    if (state.operation && state.operation.to === n.id) continue;
    if (n.promotedAt !== null && n.promotedAt >= asked) continue;
    const soft = state.soft[n.id];
    // never heard from (a coordinator restarted since, with no soft state): a lease after
    // the request, as for a silent one
    if (!soft) {
      if (now - asked >= capLeaseMs(state, n.id, s)) continue;
      return `${n.id} was asked to promote and has not reported since: it may be a primary (waiting for its report or its lease)`;
    }
    // silent past its lease, counted from the operation's end at the earliest: a promote job
    // fetched before then may still be running; once promoted, a node whose agent cannot
    // reach Redis fences itself within its lease (its longest: standbys may follow it and reply)
    if (now - Math.max(soft.receivedAt, asked) >= capLeaseMs(state, n.id, s)) continue;
    if (soft.receivedAt > asked) {
      const o = soft.obs;
      if (o.process === 'dead' || (o.reachable && ((o.role === 'replica' && !o.promoting) || o.fenced))) continue;
      // it says so: a failover may adopt it (chooseCandidate); nothing else may be made writable beside it
      if (o.reachable && o.role === 'primary' && !claimantsCount) continue;
      if (!o.reachable && o.error === 'refused') continue;
    }
    return `${n.id} was asked to promote and has not reported since: it may be a primary (waiting for its report or its lease)`;
  }
  return null;
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
      // losing Redis, but not while a standby replies: counted from its agent's last report
      // and from when the last peer lost it, whichever is later; its lease ends a margin later
      const leaseFrom = Math.max(soft ? soft.receivedAt : Number.NEGATIVE_INFINITY, peers.lostAt ?? Number.NEGATIVE_INFINITY);
      if (now - leaseFrom < leaseMs(state, id, s)) {
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

/**
 * With an operation in flight, or paused, nothing automatic starts: stop the pass here.
 *
 *   paused, primary failed ──▶ failover.blocked "paused: …" (once per reason)
 *
 * A pause stops automatic failover, but an outage it blocks is journaled with its
 * evidence, as any other blocked failover.
 */
export function holdRule({ state, now, s, out }: Pass): boolean {
  if (!state.operation && state.paused) {
    const verdict = primaryVerdict(state, now, s);
    if (verdict.failed) {
      const from = state.primary!;
      const reason = `paused: primary ${from} failed (${verdict.reason}); no automatic failover until resumed (or fail over by hand)`;
      if (state.blocked !== reason) append(out, { type: 'failover.blocked', primary: from, reason, evidence: evidenceAround(state, from, now) });
    }
  }
  return !!state.operation || state.paused;
}

/**
 * The primary failed: restart it in place (restart-first, or as the last resort when no
 * failover is possible), or fail over to the best candidate, or journal why not
 * (failover.blocked, once per reason). Stops the pass when the primary failed.
 */
export function failureRule({ state, now, s, out }: Pass): boolean {
  const verdict = primaryVerdict(state, now, s);
  if (!verdict.failed) return false;
  const from = state.primary!;
  const evidence = evidenceAround(state, from, now);
  const blocked = (reason: string): void => {
    if (state.blocked !== reason) append(out, { type: 'failover.blocked', primary: from, reason, evidence });
  };
  // a crashed primary whose agent is alive can be restarted in place: first, under the
  // restart-first policy; as the last resort, when no failover is possible
  const pSoft = state.soft[from];
  const restartable = !!pSoft && !isSilent(pSoft, now, s) && pSoft.obs.process === 'dead';
  const pending = state.nodes[from]?.pending;
  const restartAsked = pending?.action === 'restart' ? pending.at : null;
  const restart = (reason: string): true => {
    if (restartAsked !== null && now - restartAsked < s.jobRetryMs) return true;
    // never beside another node that may take writes (a late promotion)
    const claimant = promotionInDoubt(state, now, s, true);
    if (claimant) {
      blocked(`primary ${from} failed (${verdict.reason}); no restart in place: ${claimant}`);
      return true;
    }
    const operationId = `restart-${from}-${now.toString(36)}`;
    append(out, { type: 'restart.requested', operationId, node: from, reason, jobId: '' });
    job(out, { node: from, action: 'restart', operationId });
    return true;
  };
  const doubt = promotionInDoubt(state, now, s, false);
  if (doubt) {
    blocked(`primary ${from} failed (${verdict.reason}); ${doubt}`);
    return true;
  }
  if (s.policy === 'restart-first' && restartable && (restartAsked === null || now - restartAsked < s.failAfterMs)) {
    return restart('restart-first: the primary crashed; restarting it in place before failing over');
  }
  if (state.lastFailoverAt !== null && now - state.lastFailoverAt < s.cooldownMs) {
    blocked(`primary ${from} failed (${verdict.reason}) but the cooldown since the last failover has not passed`);
    return restartable ? restart('no failover possible (cooldown): restarting the crashed primary in place') : true;
  }
  // the replicas' positions from before the primary stopped are lower bounds: wait (at most
  // agentTimeoutMs, typically one probe interval) for reports that hold their final ones.
  // Not journaled: the next reports end it.
  if (unsettledPositions(state, now, s).length > 0) return true;
  const choice = chooseCandidate(state, now, s);
  if (!choice.ok) {
    blocked(`primary ${from} failed (${verdict.reason}); ${choice.reason}`);
    return restartable ? restart('no failover candidate: restarting the crashed primary in place') : true;
  }
  const operationId = `fo-${state.opSeq + 1}`;
  // the table's start row journals it, then the first step: fence, or promote at once
  startOperation(
    { state, now, s, out },
    {
      type: 'failover.started',
      operationId,
      kind: 'failover',
      from,
      to: choice.node,
      reason: verdict.reason,
      manual: false,
      lostBytes: choice.lostBytes,
      evidence,
      deposed: from,
    },
  );
  return true;
}
