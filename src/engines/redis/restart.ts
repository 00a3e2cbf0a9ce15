/**
 * The empty-restart rule (pure).
 *
 * Without persistence a restarted Redis is an empty dataset. Started as a master, its
 * replicas reconnect, find a new replication id, full-resync the empty set and wipe
 * their own copies: the whole cluster's data is gone. So a crashed node restarts:
 *
 *   - as a replica of the current primary, when another node holds that role;
 *   - as a master only with its data intact (persistence on and a data file on disk)
 *     and only while it is still the cluster's primary;
 *   - otherwise not at all: it waits for the coordinators to promote a replica, then
 *     starts as that replica's replica.
 */

export interface RestartInput {
  self: string;
  /** the cluster's current primary as the journal has it (may be this node, even while it is down) */
  currentPrimary: { id: string; host: string; port: number } | null;
  /** persistence is on (appendonly) and a data file is on disk */
  dataIntact: boolean;
}

export type RestartPlan =
  | { start: 'replica'; of: { id: string; host: string; port: number }; reason: string }
  | { start: 'master'; reason: string }
  | { start: 'wait'; reason: string };

export function restartPlan(i: RestartInput): RestartPlan {
  const p = i.currentPrimary;
  if (p && p.id !== i.self) return { start: 'replica', of: p, reason: `${p.id} is the primary: rejoin as its replica` };
  if (i.dataIntact) return { start: 'master', reason: p ? 'still the primary, with its data intact' : 'no primary recorded; data intact' };
  return {
    start: 'wait',
    reason: p
      ? 'was the primary and its data did not survive: an empty master would wipe its replicas; wait for a replica to be promoted'
      : 'no primary recorded and no data on disk: wait for the coordinators',
  };
}
