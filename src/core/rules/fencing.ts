/**
 * Whether a deposed primary must be fenced before anyone is promoted, and whether it is
 * fenced yet. Pure.
 */
import type { Settings } from '../settings.js';
import type { ClusterState } from '../state.js';
import { capLeaseMs, isSilent, leaseMs, peerViews, restartPending } from './pass.js';

/**
 * Must the old primary be fenced before a failover promotes anyone? null when it cannot
 * take a write anyway: its live agent reports its postmaster gone (or nothing listening on
 * its port), a majority of peers get connection refused, or its lease has run out (its
 * agent silent for fenceAfterMs plus the margin: an isolated primary has fenced itself).
 * Else the reason a fence job is needed.
 *
 *   primary failed ──dead / refused / lease over──▶ promoting
 *        └──────────alive or in doubt─────────────▶ fencing ──fenced / dead──▶ promoting
 */
export function fenceNeeded(state: ClusterState, id: string, now: number, s: Settings): string | null {
  return fenceDone(state, id, null, now, s) === null ? `${id} may still take writes: its agent fences it first` : null;
}

/**
 * Is the deposed primary surely unable to take writes? The reason, or null. `since`: only
 * reports received after it count (the fencing phase's start), null for any.
 */
export function fenceDone(state: ClusterState, id: string, since: number | null, now: number, s: Settings): string | null {
  const soft = state.soft[id];
  const silentMs = soft ? now - soft.receivedAt : Number.POSITIVE_INFINITY;
  if (silentMs > s.peerRefusedAfterMs) {
    const peers = peerViews(state, id, now, s);
    if (peers.voters > 0 && peers.refused >= Math.floor(peers.voters / 2) + 1) return 'a majority of peers get connection refused from it';
    // peers still reach it: it is up and its agent is gone, and nothing fences it
    const upAndAgentGone = peers.reachable > 0 && peers.reachable >= peers.unreachable;
    if (!upAndAgentGone) {
      // its agent fences it fenceAfterMs after its last report, but not while a standby
      // replies (selfFenceCapMs at most). When every other node's agent reports it
      // unreachable (or its own postmaster dead), no standby replies unseen: the lease
      // counts from when the last peer lost it too. Else only from its last report, for
      // the longest self-fence. Never heard from (a restarted leader): its agent has not
      // reached Redis since this leader listens, and every peer report it holds is newer.
      const from = soft ? soft.receivedAt : peers.lostAt;
      if (from !== null && allPeersLostIt(state, id, now, s) && now - Math.max(from, peers.lostAt ?? from) >= leaseMs(state, id, s)) {
        return soft ? `its agent silent for ${silentMs} ms: its lease is over (it fenced itself)` : 'no observation of it: its lease is over';
      }
      if (from !== null && now - from >= capLeaseMs(state, id, s)) {
        return soft ? `its agent silent for ${silentMs} ms: past its longest self-fence, its lease is over (it fenced itself)` : `no observation of it, and its peers lost it ${now - from} ms ago: its lease is over`;
      }
    }
    if (!soft) return null;
  }
  if (!soft) return null;
  if (isSilent(soft, now, s)) return null;
  const o = soft.obs;
  const fresh = since === null || soft.receivedAt > since;
  if (!fresh) return null;
  // (a restart in place asked and not yet seen to take effect may have started it since)
  if (restartPending(state, id) !== null) return null;
  if (o.process === 'dead') return 'its agent reports the postmaster gone';
  if (!o.reachable && o.error === 'refused') return 'its agent gets connection refused: nothing listens';
  if (since !== null && o.reachable && o.role === 'primary' && o.fenced) return 'its agent reports it read-only';
  // (not a report of it as a replica: one taken before a promotion may arrive after it; its
  // agent's fence job answers at once for a standby)
  return null;
}

/**
 * Does every other node's agent report `id` unreachable from its host (or its own
 * postmaster dead)? Then no standby can be replying to it unseen. A silent agent's node
 * may still stream from it.
 */
function allPeersLostIt(state: ClusterState, id: string, now: number, s: Settings): boolean {
  let lost = 0;
  for (const other of Object.keys(state.nodes)) {
    if (other === id) continue;
    const soft = state.soft[other];
    if (isSilent(soft, now, s) || !soft) return false;
    if (soft.obs.process === 'dead') continue;
    const peer = soft.obs.peer;
    if (!peer || peer.node !== id || peer.reachable) return false;
    lost++;
  }
  return lost > 0;
}
