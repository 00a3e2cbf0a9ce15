/**
 * The per-cluster leader lease with a fencing epoch. The holder stops acting at
 * (monotonic time the acquire/renew was *sent* + TTL − margin), whatever Redis says
 * later: a paused or partitioned leader can only ever under-estimate its lease.
 *
 * Every call is bounded and none overlaps another: the lease should have a Redis
 * connection of its own, with a `commandTimeout` (see `leaseConnectionOptions`), so that
 * a renewal never queues behind a slow stream read; `tick()` never sends a second
 * script call while one is in flight (it hands back the one in flight); and `keep()`
 * schedules the next attempt only after the previous one settled.
 */
import type { Redis, RedisOptions } from 'ioredis';
import { performance } from 'node:perf_hooks';
import type { ClusterKeys } from './keys.js';
import { scripted } from './scripts.js';

export type LeaseOutcome = 'acquired' | 'renewed' | 'follower' | 'lost';

/** How long one lease call may take: a sixth of the TTL (500 ms for 3 s), at least 100 ms. */
export function leaseCommandTimeoutMs(ttlMs: number): number {
  return Math.max(100, Math.floor(ttlMs / 6));
}

/** ioredis options for the lease's own connection: every command bounded, no queueing while disconnected. */
export function leaseConnectionOptions(ttlMs: number): RedisOptions {
  const t = leaseCommandTimeoutMs(ttlMs);
  return { commandTimeout: t, connectTimeout: Math.max(t, 2000), maxRetriesPerRequest: 0, enableOfflineQueue: false, lazyConnect: true };
}

export class Lease {
  token: string | null = null;
  epoch = 0;
  holder: string | null = null;
  private deadline = 0;
  /** the attempt in flight, if any: a second tick() joins it instead of overlapping it */
  private inflight: Promise<LeaseOutcome> | null = null;
  /** the holder's lease as Redis last told a follower (ms), to try again right when it ends */
  private holderTtlMs: number | null = null;
  /** how many script calls were sent, and the most ever in flight at once (1, by construction) */
  readonly stats = { attempts: 0, inFlight: 0, maxInFlight: 0 };

  constructor(
    private readonly redis: Redis,
    private readonly k: ClusterKeys,
    readonly coordinatorId: string,
    readonly ttlMs: number,
    readonly marginMs = Math.min(500, Math.floor(ttlMs / 5)),
    private readonly clock: () => number = () => performance.now(),
  ) {}

  /** Try to acquire or renew. Never throws for a lost lease; network errors and timeouts propagate. */
  tick(): Promise<LeaseOutcome> {
    if (this.inflight) return this.inflight;
    const p = this.attempt().finally(() => {
      if (this.inflight === p) this.inflight = null;
    });
    this.inflight = p;
    return p;
  }

  private async attempt(): Promise<LeaseOutcome> {
    this.stats.attempts++;
    this.stats.maxInFlight = Math.max(this.stats.maxInFlight, ++this.stats.inFlight);
    try {
      const sentAt = this.clock();
      const had = this.token;
      const [code, value] = await scripted(this.redis).syLease(this.k.leader, this.k.epoch, this.coordinatorId, this.ttlMs, this.token ?? '');
      if (code === 1 || code === 2) {
        this.token = value;
        this.holder = this.coordinatorId;
        this.epoch = Number(value.split(':')[0]);
        this.deadline = sentAt + this.ttlMs - this.marginMs;
        this.holderTtlMs = null;
        return code === 2 ? 'acquired' : 'renewed';
      }
      this.token = null;
      this.deadline = 0;
      this.holder = value.slice(value.indexOf(':') + 1);
      const seen = Number(value.split(':')[0]);
      if (Number.isFinite(seen)) this.epoch = Math.max(this.epoch, seen);
      // when does the holder's lease run out? Try again right then, not a tick later
      const pttl = await this.redis.pttl(this.k.leader).catch(() => null);
      this.holderTtlMs = typeof pttl === 'number' ? pttl : null;
      return had ? 'lost' : 'follower';
    } finally {
      this.stats.inFlight--;
    }
  }

  /**
   * When to try next after `outcome` (null: the attempt failed): a holder renews every
   * TTL/3; a failed attempt is retried soon; a follower tries again just after the
   * holder's lease runs out, or within TTL/3.
   */
  nextDelayMs(outcome: LeaseOutcome | null): number {
    const every = this.renewEveryMs ?? Math.max(50, Math.floor(this.ttlMs / 3));
    if (outcome === null) return Math.min(every, 100);
    if (outcome === 'acquired' || outcome === 'renewed') return every;
    const left = this.holderTtlMs;
    if (left === null) return every;
    if (left < 0) return 0; // gone already (-2), or no expiry (-1: not ours to judge; retry)
    return Math.min(every, left + 2);
  }

  /** time between renewals (default TTL / 3); the config checks it against the TTL */
  renewEveryMs: number | undefined = undefined;

  private keeping: NodeJS.Timeout | null = null;
  private kept = false;

  /**
   * Acquire and renew until `stopKeeping()`: one attempt at a time, the next scheduled
   * only when the last one settled. `onOutcome` is told each outcome (null and the
   * error when the attempt failed); it must not block (renewals do not wait for it).
   */
  keep(onOutcome: (outcome: LeaseOutcome | null, err?: Error) => void, firstDelayMs = 0): void {
    this.kept = true;
    const run = async (): Promise<void> => {
      this.keeping = null;
      let outcome: LeaseOutcome | null = null;
      let error: Error | undefined;
      try {
        outcome = await this.tick();
      } catch (err) {
        error = err as Error;
      }
      try {
        onOutcome(outcome, error);
      } catch {
        // the listener's problem, not the lease's
      }
      if (this.kept) this.keeping = setTimeout(() => void run(), this.nextDelayMs(outcome));
    };
    this.runKept = run;
    this.keeping = setTimeout(() => void run(), firstDelayMs);
  }

  /** Try now instead of at the scheduled time (e.g. the holder said it released the lease). */
  nudge(): void {
    if (!this.kept || !this.keeping) return; // an attempt is in flight: the next one follows it
    clearTimeout(this.keeping);
    this.keeping = null;
    this.keeping = setTimeout(() => void this.runKept?.(), 0);
  }

  private runKept: (() => Promise<void>) | null = null;

  stopKeeping(): void {
    this.kept = false;
    if (this.keeping) clearTimeout(this.keeping);
    this.keeping = null;
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
