/**
 * Rule: bootstrap. With no primary journaled and no operation in flight, adopt the one
 * node that reports itself primary; with several claimants adopt none and journal why. Pure.
 */
import { append, evidenceOf, isSilent, type Pass } from './pass.js';

/** Stops the pass once it adopted a primary: the rest is decided on the next pass, from the new primary. */
export function bootstrapRule({ state, now, s, out }: Pass): boolean {
  if (state.primary || state.operation) return false;
  const claimants = Object.keys(state.nodes).filter((id) => {
    const soft = state.soft[id];
    return !isSilent(soft, now, s) && soft!.obs.reachable && soft!.obs.role === 'primary';
  });
  if (claimants.length === 1) {
    append(out, { type: 'node.role-changed', node: claimants[0]!, role: 'primary', reason: 'bootstrap: the only node reporting primary' });
    return true;
  }
  if (claimants.length > 1) {
    const reason = `several nodes claim primary (${claimants.sort().join(', ')}): not adopting any`;
    if (state.blocked !== reason) {
      append(out, { type: 'failover.blocked', primary: null, reason, evidence: claimants.map((c) => evidenceOf(state, c, now)) });
    }
  }
  return false;
}
