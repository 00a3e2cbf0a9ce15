/**
 * The Redis candidate rule (pure): among healthy replicas that may be promoted
 * (priority > 0), those on the current replication history; the highest offset wins,
 * within `maxLagBytes` of the best position known for the old master; ties by priority
 * (higher first), then by id.
 */

export interface RedisCandidateInput {
  id: string;
  healthy: boolean;
  priority: number;
  replid: string | null;
  offset: number | null;
}

export interface CandidateChoice {
  id: string | null;
  reason: string;
  /** per excluded node, why */
  excluded: Record<string, string>;
}

/**
 * @param currentReplid the history the cluster is on: the master's replid as last seen
 * @param masterOffset  the old master's last known offset (null: unknown, judge by the replicas)
 */
export function chooseRedisCandidate(nodes: RedisCandidateInput[], currentReplid: string | null, masterOffset: number | null, maxLagBytes: number): CandidateChoice {
  const excluded: Record<string, string> = {};
  const ok: Array<RedisCandidateInput & { offset: number }> = [];
  for (const n of nodes) {
    if (!n.healthy) excluded[n.id] = 'not healthy';
    else if (n.priority <= 0) excluded[n.id] = 'priority 0';
    else if (n.offset === null || n.replid === null) excluded[n.id] = 'offset unknown';
    else if (currentReplid !== null && n.replid !== currentReplid) excluded[n.id] = `on another history (${n.replid.slice(0, 8)}, not ${currentReplid.slice(0, 8)})`;
    else ok.push({ ...n, offset: n.offset });
  }
  if (ok.length === 0) return { id: null, reason: 'no replica qualifies', excluded };
  const best = Math.max(...ok.map((n) => n.offset));
  const reference = masterOffset !== null ? Math.max(masterOffset, best) : best;
  const within = ok.filter((n) => {
    if (reference - n.offset <= maxLagBytes) return true;
    excluded[n.id] = `${reference - n.offset} bytes behind (limit ${maxLagBytes})`;
    return false;
  });
  if (within.length === 0) return { id: null, reason: `every replica is more than ${maxLagBytes} bytes behind`, excluded };
  within.sort((a, b) => b.offset - a.offset || b.priority - a.priority || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const top = within[0]!;
  for (const n of within.slice(1)) excluded[n.id] = n.offset < top.offset ? `offset ${n.offset} < ${top.offset}` : 'lost the tie-break';
  return { id: top.id, reason: `highest offset ${top.offset} on the current history`, excluded };
}
