/**
 * One clock for the whole cluster: Redis's (`TIME`), as every coordinator and agent reads
 * it. Sampled now and then and advanced with the local monotonic clock in between, so
 * reading it costs no round trip; the error is half a round trip plus the drift since the
 * last sample. The core compares only times from this clock (journal `at`, `receivedAt`,
 * phase deadlines): never wall clocks stamped on different hosts.
 */
import { performance } from 'node:perf_hooks';
import { redisTimeMs } from './clock.js';

export class RedisClock {
  private base = 0;
  private sampledAt = 0;

  constructor(private readonly redis: { time(): Promise<Array<string | number>> }) {}

  /** Read Redis's TIME (half the round trip added). */
  async sync(): Promise<void> {
    const t0 = performance.now();
    const ms = await redisTimeMs(this.redis);
    const t1 = performance.now();
    this.base = ms + (t1 - t0) / 2;
    this.sampledAt = t1;
  }

  get synced(): boolean {
    return this.sampledAt !== 0;
  }

  /** Redis's time now, in ms since the epoch (the local wall clock until the first sync). */
  now(): number {
    if (this.sampledAt === 0) return Date.now();
    return Math.round(this.base + (performance.now() - this.sampledAt));
  }
}
