/**
 * The per-cluster leader lease with a fencing epoch. The holder stops acting at
 * (monotonic time the acquire/renew was *sent* + TTL − margin), whatever Redis says
 * later: a paused or partitioned leader can only ever under-estimate its lease.
 */
import type { Redis } from 'ioredis';
import { performance } from 'node:perf_hooks';
import type { ClusterKeys } from './keys.js';
import { scripted } from './scripts.js';

export type LeaseOutcome = 'acquired' | 'renewed' | 'follower' | 'lost';

export class Lease {
  token: string | null = null;
  epoch = 0;
  holder: string | null = null;
  private deadline = 0;

  constructor(
    private readonly redis: Redis,
    private readonly k: ClusterKeys,
    readonly coordinatorId: string,
    readonly ttlMs: number,
    readonly marginMs = Math.min(500, Math.floor(ttlMs / 5)),
    private readonly clock: () => number = () => performance.now(),
  ) {}

  /** Try to acquire or renew. Never throws for a lost lease; network errors propagate. */
  async tick(): Promise<LeaseOutcome> {
    const sentAt = this.clock();
    const had = this.token;
    const [code, value] = await scripted(this.redis).syLease(this.k.leader, this.k.epoch, this.coordinatorId, this.ttlMs, this.token ?? '');
    if (code === 1 || code === 2) {
      this.token = value;
      this.holder = this.coordinatorId;
      this.epoch = Number(value.split(':')[0]);
      this.deadline = sentAt + this.ttlMs - this.marginMs;
      return code === 2 ? 'acquired' : 'renewed';
    }
    this.token = null;
    this.deadline = 0;
    this.holder = value.slice(value.indexOf(':') + 1);
    const seen = Number(value.split(':')[0]);
    if (Number.isFinite(seen)) this.epoch = Math.max(this.epoch, seen);
    return had ? 'lost' : 'follower';
  }

  isLeader(): boolean {
    return this.token !== null && this.clock() < this.deadline;
  }

  /** Forget the lease locally (e.g. the deadline passed without a renewal). */
  drop(): void {
    this.token = null;
    this.deadline = 0;
  }

  async release(): Promise<void> {
    const token = this.token;
    this.drop();
    if (token) await scripted(this.redis).syRelease(this.k.leader, token);
  }
}

/** The epoch in a lease value `<epoch>:<id>`, or 0. */
export function epochOfLeaseValue(value: string | null): number {
  if (!value) return 0;
  const n = Number(value.split(':')[0]);
  return Number.isFinite(n) ? n : 0;
}
