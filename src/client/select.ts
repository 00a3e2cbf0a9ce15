/**
 * Which node a statement goes to: read preferences, lag limits, warm-up and load
 * balancing. Pure: the pool passes in the nodes as it sees them, the time and a random
 * source; nothing here does I/O or reads the clock.
 */
export type ReadPreference = 'primary' | 'primaryPreferred' | 'secondary' | 'secondaryPreferred' | 'nearest';
export type LoadBalancing = 'round-robin' | 'least-connections' | 'random' | 'weighted' | 'least-lag';

export const READ_PREFERENCES: readonly ReadPreference[] = ['primary', 'primaryPreferred', 'secondary', 'secondaryPreferred', 'nearest'];
export const LOAD_BALANCING: readonly LoadBalancing[] = ['round-robin', 'least-connections', 'random', 'weighted', 'least-lag'];

/** One node as the pool sees it now. */
export interface NodeView {
  id: string;
  role: 'primary' | 'replica';
  healthy: boolean;
  draining: boolean;
  zone: string | null;
  lagMs: number | null;
  lagBytes: number | null;
  /** the highest replay LSN known for it (routing table or a check), as a number */
  replayLsn: number | null;
  /** when it (re)joined the routing table, ms */
  joinedAt: number;
  /** statements in flight on it now */
  inflight: number;
  /** smoothed round-trip time, ms (null: not measured yet) */
  latencyMs: number | null;
  /** the breaker lets a statement through */
  available: boolean;
  weight: number;
}

export interface ReadRules {
  readPreference: ReadPreference;
  loadBalancing: LoadBalancing;
  maxLagMs?: number | undefined;
  maxLagBytes?: number | undefined;
  /** the app's zone: `nearest` (and every preference, as a tie-break) prefers nodes there */
  zone?: string | undefined;
  /** a replica that just joined ramps its share up over this period */
  warmupMs: number;
  /** `nearest`: nodes within this many ms of the fastest one share the load */
  localThresholdMs: number;
  /** read-your-writes: the replica must have replayed up to here */
  minLsn?: number | null | undefined;
  /** a node to use if it qualifies */
  preferredNode?: string | undefined;
}

export type Choice = { node: NodeView; why: string } | { node: null; why: string; lagging: NodeView[] };

/** Replicas that may take a read under these rules, without the LSN rule (returned apart). */
export function eligibleReplicas(replicas: readonly NodeView[], rules: ReadRules): NodeView[] {
  const out: NodeView[] = [];
  for (const r of replicas) {
    if (!r.healthy || r.draining || !r.available) continue;
    if (rules.maxLagMs !== undefined && (r.lagMs === null || r.lagMs > rules.maxLagMs)) continue;
    if (rules.maxLagBytes !== undefined && (r.lagBytes === null || r.lagBytes > rules.maxLagBytes)) continue;
    out.push(r);
  }
  return out;
}

function usablePrimary(p: NodeView | null): NodeView | null {
  return p && p.healthy && !p.draining && p.available ? p : null;
}

/** Share of a warming replica, 0.05..1. */
export function warmFactor(n: NodeView, now: number, warmupMs: number): number {
  if (warmupMs <= 0 || n.role === 'primary') return 1;
  const age = now - n.joinedAt;
  if (age >= warmupMs) return 1;
  return Math.max(0.05, age / warmupMs);
}

export interface Balancer {
  /** round-robin cursor; the pool keeps it across calls */
  rr: number;
}

/** Pick one of `cands` (non-empty) by the strategy, with warm-up weights. */
export function balance(cands: readonly NodeView[], strategy: LoadBalancing, now: number, warmupMs: number, b: Balancer, rand: () => number): NodeView {
  if (cands.length === 1) return cands[0]!;
  let warming = false;
  if (warmupMs > 0) for (const c of cands) if (c.role === 'replica' && now - c.joinedAt < warmupMs) warming = true;
  if (strategy === 'random' && !warming) return cands[Math.floor(rand() * cands.length)]!;
  if (strategy === 'weighted' || warming) {
    let total = 0;
    for (const c of cands) total += Math.max(0, c.weight) * warmFactor(c, now, warmupMs);
    if (total <= 0) return cands[b.rr++ % cands.length]!;
    let x = rand() * total;
    for (const c of cands) {
      x -= Math.max(0, c.weight) * warmFactor(c, now, warmupMs);
      if (x < 0) return c;
    }
    return cands[cands.length - 1]!;
  }
  if (strategy === 'least-connections' || strategy === 'least-lag') {
    const score = strategy === 'least-connections' ? (n: NodeView) => n.inflight : (n: NodeView) => n.lagBytes ?? n.lagMs ?? Number.MAX_SAFE_INTEGER;
    let best = Infinity;
    for (const c of cands) best = Math.min(best, score(c));
    // ties share the load round-robin
    const start = b.rr++;
    for (let i = 0; i < cands.length; i++) {
      const c = cands[(start + i) % cands.length]!;
      if (score(c) === best) return c;
    }
  }
  return cands[b.rr++ % cands.length]!;
}

/** The candidates in `zone`, or all of them when none is there (or no zone is set). */
export function inZone(cands: NodeView[], zone: string | undefined): NodeView[] {
  if (!zone) return cands;
  const same = cands.filter((c) => c.zone === zone);
  return same.length > 0 ? same : cands;
}

function nearest(cands: NodeView[], rules: ReadRules): NodeView[] {
  const local = inZone(cands, rules.zone);
  let min = Infinity;
  for (const c of local) if (c.latencyMs !== null) min = Math.min(min, c.latencyMs);
  if (min === Infinity) return local;
  return local.filter((c) => c.latencyMs === null || c.latencyMs <= min + rules.localThresholdMs);
}

/**
 * Where a read goes. `lagging` (when no node is chosen) lists replicas that qualify
 * except for read-your-writes: the pool may check one of them before giving up on replicas.
 */
export function chooseRead(primary: NodeView | null, replicas: readonly NodeView[], rules: ReadRules, now: number, b: Balancer, rand: () => number): Choice {
  const p = usablePrimary(primary);
  const eligible = eligibleReplicas(replicas, rules);
  const minLsn = rules.minLsn ?? null;
  const caughtUp = minLsn === null ? eligible : eligible.filter((r) => r.replayLsn !== null && r.replayLsn >= minLsn);
  const lagging = minLsn === null ? [] : eligible.filter((r) => r.replayLsn === null || r.replayLsn < minLsn);
  if (rules.preferredNode !== undefined) {
    if (p && p.id === rules.preferredNode && rules.readPreference !== 'secondary') return { node: p, why: 'preferred node' };
    const r = caughtUp.find((x) => x.id === rules.preferredNode);
    if (r) return { node: r, why: 'preferred node' };
  }
  const pickReplica = (): NodeView | null => {
    if (caughtUp.length === 0) return null;
    const local = rules.zone ? inZone(caughtUp, rules.zone) : caughtUp;
    return balance(local, rules.loadBalancing, now, rules.warmupMs, b, rand);
  };
  switch (rules.readPreference) {
    case 'primary':
      return p ? { node: p, why: 'readPreference primary' } : { node: null, why: 'no writable primary', lagging: [] };
    case 'primaryPreferred': {
      if (p) return { node: p, why: 'readPreference primaryPreferred' };
      const r = pickReplica();
      return r ? { node: r, why: 'primary unavailable' } : { node: null, why: 'no primary and no replica qualifies', lagging };
    }
    case 'secondary': {
      const r = pickReplica();
      return r ? { node: r, why: 'readPreference secondary' } : { node: null, why: replicaWhy(replicas, eligible, minLsn), lagging };
    }
    case 'secondaryPreferred': {
      const r = pickReplica();
      if (r) return { node: r, why: 'readPreference secondaryPreferred' };
      if (lagging.length > 0) return { node: null, why: replicaWhy(replicas, eligible, minLsn), lagging };
      return p ? { node: p, why: minLsn !== null && eligible.length > 0 ? 'read-your-writes: no replica caught up' : 'no replica qualifies' } : { node: null, why: 'no primary and no replica qualifies', lagging };
    }
    case 'nearest': {
      const all = p ? [p, ...caughtUp] : caughtUp;
      if (all.length === 0) return { node: null, why: 'no node qualifies', lagging };
      const near = nearest(all, rules);
      return { node: balance(near, rules.loadBalancing, now, rules.warmupMs, b, rand), why: 'readPreference nearest' };
    }
  }
}

function replicaWhy(all: readonly NodeView[], eligible: NodeView[], minLsn: number | null): string {
  if (all.length === 0) return 'no replica in the routing table';
  if (eligible.length === 0) return `no replica qualifies (${all.map((r) => `${r.id}: ${!r.healthy ? 'unhealthy' : r.draining ? 'draining' : !r.available ? 'circuit open' : `lag ${r.lagMs ?? '?'} ms / ${r.lagBytes ?? '?'} B`}`).join(', ')})`;
  return minLsn !== null ? 'read-your-writes: no replica has replayed the last write yet' : 'no replica qualifies';
}
