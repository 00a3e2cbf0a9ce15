/**
 * Rule: health, as the routing table will show it. Each node's verdict from what its
 * agent (and, for a silent primary's agent, its peers) report; journaled when it
 * changes, or when the reason is worth an operator's attention. Pure.
 */
import { electsItself } from '../../engines/traits.js';
import type { Settings } from '../settings.js';
import type { ClusterState } from '../state.js';
import { addressOf, append, isSilent, OUT_OF_ROTATION, peerViews, type Pass, type Verdict } from './pass.js';

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
  if (o.outOfRotation) return { healthy: false, reason: `${OUT_OF_ROTATION}${o.outOfRotation}` };
  if (o.process === 'dead') return { healthy: false, reason: 'process exited' };
  if (o.process === 'stopped') return { healthy: false, reason: 'process stopped' };
  if (!o.reachable) return { healthy: false, reason: `unreachable: ${o.error ?? 'unknown'}` };
  if (electsItself(state.engine)) return setMemberHealth(state, id, isPrimary);
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

/**
 * A member of a set that elects itself (reachable, its agent reporting): the primary is
 * healthy while it reports primary and is not a stale one (an older election); a secondary
 * while it reports SECONDARY, whichever member it syncs from (chained replication is normal).
 */
function setMemberHealth(state: ClusterState, id: string, isPrimary: boolean): Verdict {
  const o = state.soft[id]!.obs;
  const state_ = o.mongo?.state ?? o.role;
  const stale = state.setView?.set.members[`${o.host}:${String(o.port)}`]?.stale === true;
  if (o.role === 'primary' && stale) return { healthy: false, reason: `stale primary: its election (${o.mongo?.electionId ?? 'none'}) is older than the set's` };
  if (isPrimary) {
    if (o.role === 'primary') return { healthy: true, reason: 'primary' };
    const promotedAt = state.nodes[id]?.promotedAt ?? null;
    if (promotedAt !== null && state.soft[id]!.receivedAt <= promotedAt) return { healthy: true, reason: 'elected; awaiting its next report' };
    return { healthy: false, reason: `expected primary, reports ${state_}` };
  }
  if (o.role === 'primary') return { healthy: false, reason: `claims primary while ${state.primary ?? 'none'} is the primary` };
  if (state_ === 'SECONDARY' || (!o.mongo && o.role === 'replica')) return { healthy: true, reason: 'secondary' };
  return { healthy: false, reason: `member ${state_.toLowerCase()}` };
}

/**
 * A reason worth a journal entry even when the health flag stays as it is, so that
 * operators see it: a node's first verdict after it registered (say, an agent that
 * cannot reach its database), and an agent going silent or coming back (a primary
 * whose agent is silent stays routable while its peers reach it, but it shows).
 */
export function reasonNewsworthy(journaled: string, observed: string): boolean {
  if (journaled === observed) return false;
  if (journaled === 'registered') return true;
  return journaled.startsWith('agent silent') !== observed.startsWith('agent silent');
}

/** Journal each node's observed health where it differs from the journal's. */
export function healthRule({ state, now, s, out }: Pass): void {
  for (const id of Object.keys(state.nodes)) {
    const v = observedHealth(state, id, now, s);
    const n = state.nodes[id]!;
    // an agent keeping its node out of rotation is journaled with its reason even when the node was already unhealthy
    const newlyOut = !v.healthy && v.reason.startsWith(OUT_OF_ROTATION) && v.reason !== n.healthReason;
    if (v.healthy !== n.healthy || newlyOut || reasonNewsworthy(n.healthReason, v.reason)) append(out, { type: 'node.health-changed', node: id, healthy: v.healthy, reason: v.reason });
  }
}
