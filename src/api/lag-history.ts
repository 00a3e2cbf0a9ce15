/**
 * Replication lag over time, for the dashboard's chart: every `everyMs` a sample of
 * each cluster's routing table (each replica's lagMs and lagBytes; null while the
 * replica is unhealthy or its lag unknown), kept for `windowMs` (15 minutes). In
 * memory only: a coordinator that just started has only what it has seen since.
 */
import type { ApiCluster } from './types.js';

export interface LagPoint {
  lagMs: number | null;
  lagBytes: number | null;
}

export interface LagSample {
  /** ms since the epoch */
  at: number;
  /** per replica id */
  replicas: Record<string, LagPoint>;
}

export const LAG_WINDOW_MS = 15 * 60_000;

export class LagHistory {
  private samples = new Map<string, LagSample[]>();
  private timer: NodeJS.Timeout | null = null;
  readonly windowMs: number;
  readonly everyMs: number;

  constructor(
    private clusters: ReadonlyMap<string, ApiCluster>,
    opts: { windowMs?: number | undefined; everyMs?: number | undefined } = {},
  ) {
    this.windowMs = opts.windowMs ?? LAG_WINDOW_MS;
    this.everyMs = opts.everyMs ?? 2_000;
    if (!Number.isInteger(this.everyMs) || this.everyMs < 100) throw new RangeError(`lagSampleMs: expected an integer ≥ 100, got ${this.everyMs}`);
    if (!Number.isInteger(this.windowMs) || this.windowMs < this.everyMs) throw new RangeError(`lag window: expected an integer ≥ lagSampleMs (${this.everyMs}), got ${this.windowMs}`);
  }

  start(): void {
    if (this.timer) return;
    this.sample();
    this.timer = setInterval(() => this.sample(), this.everyMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Take one sample of every cluster, and forget what fell out of the window. */
  sample(now = Date.now()): void {
    for (const c of this.clusters.values()) {
      const replicas: Record<string, LagPoint> = {};
      const known = c.fresh !== false;
      for (const r of c.table.replicas) {
        // an unhealthy replica's last figures say nothing about now
        const usable = known && r.healthy;
        replicas[r.id] = { lagMs: usable ? r.lagMs : null, lagBytes: usable ? r.lagBytes : null };
      }
      let list = this.samples.get(c.name);
      if (!list) this.samples.set(c.name, (list = []));
      list.push({ at: now, replicas });
      const oldest = now - this.windowMs;
      let drop = 0;
      while (drop < list.length && list[drop]!.at < oldest) drop++;
      if (drop) list.splice(0, drop);
    }
  }

  /** The samples of `cluster` taken after `afterMs` (all in the window by default), oldest first. */
  since(cluster: string, afterMs = 0): LagSample[] {
    const list = this.samples.get(cluster) ?? [];
    let i = list.length;
    while (i > 0 && list[i - 1]!.at > afterMs) i--;
    return list.slice(i);
  }
}
