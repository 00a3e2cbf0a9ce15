/**
 * Rules: reconcile. A self-fenced primary that is still the journal's primary takes
 * writes again, and every other node is a replica of the primary (follow, or rejoin for
 * a node that claims primary or whose process is gone). Level-triggered: a job is
 * re-sent after jobRetryMs while its effect is not seen. Pure.
 */
import { rejoinRows, type RejoinEvent, type RejoinPhase } from '../machine.js';
import { promotionInDoubt } from './failure.js';
import { addressOf, append, isSilent, job, upstreamOf, type Pass } from './pass.js';

/** A self-fenced primary that is still the primary (and no promotion in doubt beside it) is unfenced. */
export function unfenceRule({ state, now, s, out }: Pass): void {
  const primary = state.primary ? state.nodes[state.primary] : undefined;
  const pSoft = primary ? state.soft[primary.id] : undefined;
  if (!primary || !pSoft || isSilent(pSoft, now, s) || !pSoft.obs.fenced || pSoft.obs.role !== 'primary' || !pSoft.obs.reachable || promotionInDoubt(state, now, s)) return;
  const p = primary.pending;
  if (p && p.action === 'unfence' && now - p.at < s.jobRetryMs) return;
  const operationId = `unfence-${primary.id}-${now.toString(36)}`;
  append(out, { type: 'unfence.requested', operationId, node: primary.id, jobId: '' });
  job(out, { node: primary.id, action: 'unfence', operationId });
}

/**
 * With a healthy primary, every other node whose agent reports follows it: the node's
 * rejoin phase (a request for this primary pending or not), then the first row of
 * REJOIN_TRANSITIONS (src/core/machine.ts) whose event holds.
 */
export function followRule({ state, now, s, out }: Pass): void {
  const primary = state.primary ? state.nodes[state.primary] : undefined;
  if (!primary || !primary.healthy) return;
  for (const n of Object.values(state.nodes)) {
    if (n.id === primary.id) continue;
    const soft = state.soft[n.id];
    if (isSilent(soft, now, s)) continue;
    const o = soft!.obs;
    const offPrimary = o.role === 'primary' || o.process === 'dead';
    const wrongUpstream = !offPrimary && o.role === 'replica' && o.upstream !== null && o.upstream !== addressOf(primary);
    const phase: RejoinPhase = n.pending && n.pending.upstream === primary.id ? 'rejoining' : 'start';
    const holds: Record<RejoinEvent, boolean> = {
      'off-primary': offPrimary,
      'wrong-upstream': wrongUpstream,
      'retry-due': (offPrimary || wrongUpstream) && !!n.pending && now - n.pending.at >= s.jobRetryMs,
    };
    const row = rejoinRows(phase).find((t) => holds[t.event]);
    if (!row) continue;
    const action = offPrimary ? 'rejoin' : 'follow';
    const operationId = `fix-${n.id}-${now.toString(36)}`;
    for (const step of row.decisions) {
      if (step !== 'follow.requested') continue;
      append(out, { type: 'follow.requested', operationId, node: n.id, upstream: primary.id, action, jobId: '' });
      job(out, { node: n.id, action, operationId, upstream: upstreamOf(primary) });
    }
  }
}
