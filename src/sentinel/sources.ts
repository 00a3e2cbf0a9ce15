/**
 * Where a Sentinel endpoint learns the routing table, and how the coordinators serving
 * it find each other (for `SENTINEL sentinels`).
 */
import { EventEmitter } from 'node:events';
import { Redis, type RedisOptions } from 'ioredis';
import { keys } from '../bus/keys.js';
import type { RoutingTable } from '../core/routing.js';
import type { RoutingSource, SentinelPeer } from './server.js';

/** A table set by hand: for embedding and for tests. */
export class StaticRoutingSource implements RoutingSource {
  private readonly ee = new EventEmitter();
  /** set by tests to play a coordinator cut off from the coordination Redis */
  isStale = false;
  constructor(private table: RoutingTable | null = null) {}
  stale(): boolean {
    return this.isStale;
  }
  current(): RoutingTable | null {
    return this.table;
  }
  set(table: RoutingTable): void {
    this.table = table;
    this.ee.emit('t', table);
  }
  subscribe(fn: (t: RoutingTable) => void): () => void {
    this.ee.on('t', fn);
    return () => this.ee.off('t', fn);
  }
}

/** A coordinator's cluster runtime: it holds the current table and emits 'routing' on every new one. */
export function runtimeRoutingSource(rt: EventEmitter & { table: RoutingTable; fresh?: boolean }): RoutingSource {
  return {
    current: () => rt.table,
    stale: () => rt.fresh === false,
    subscribe(fn) {
      rt.on('routing', fn);
      return () => rt.off('routing', fn);
    },
  };
}

/**
 * The coordination Redis: `GET sy:{c}:routing`, then every table the leader PUBLISHes.
 * Re-read every `refreshMs`; a view not refreshed for `staleAfterMs` names no primary.
 */
export class CoordinationRoutingSource implements RoutingSource {
  private readonly ee = new EventEmitter();
  private table: RoutingTable | null = null;
  private fresh = 0;
  private readonly redis: Redis;
  private readonly sub: Redis;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    redisUrl: string,
    private readonly cluster: string,
    private readonly opts: { refreshMs?: number; staleAfterMs?: number; redisOptions?: RedisOptions } = {},
  ) {
    // redisOptions: the coordination store's login and TLS (storeOptions of the config)
    this.redis = new Redis(redisUrl, { ...opts.redisOptions, lazyConnect: true, maxRetriesPerRequest: 1, connectTimeout: 2_000 });
    this.sub = new Redis(redisUrl, { ...opts.redisOptions, lazyConnect: true, maxRetriesPerRequest: null, connectTimeout: 2_000 });
    for (const r of [this.redis, this.sub]) r.on('error', () => {});
  }

  async start(): Promise<void> {
    const k = keys(this.cluster);
    await this.redis.connect();
    await this.sub.connect();
    this.sub.on('message', (_ch: string, msg: string) => this.accept(msg));
    await this.sub.subscribe(k.routingChannel);
    await this.refresh();
    this.timer = setInterval(() => void this.refresh(), this.opts.refreshMs ?? 1_000);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.redis.disconnect();
    this.sub.disconnect();
  }

  current(): RoutingTable | null {
    if (!this.table) return null;
    if (this.stale()) return { ...this.table, primary: null, writable: false };
    return this.table;
  }

  stale(): boolean {
    return Date.now() - this.fresh > (this.opts.staleAfterMs ?? 3_000);
  }

  subscribe(fn: (t: RoutingTable) => void): () => void {
    this.ee.on('t', fn);
    return () => this.ee.off('t', fn);
  }

  private async refresh(): Promise<void> {
    try {
      const raw = await this.redis.get(keys(this.cluster).routing);
      if (raw) this.accept(raw);
    } catch {
      // stays stale
    }
  }

  private accept(raw: string): void {
    let t: RoutingTable;
    try {
      t = JSON.parse(raw) as RoutingTable;
    } catch {
      return;
    }
    if (typeof t !== 'object' || t === null || typeof t.generation !== 'number') return;
    this.fresh = Date.now();
    const changed = !this.table || this.table.generation !== t.generation || this.table.primary?.port !== t.primary?.port || this.table.primary?.host !== t.primary?.host;
    this.table = t;
    if (changed) this.ee.emit('t', t);
  }
}

/**
 * The coordinators' Sentinel endpoints, registered in the coordination Redis
 * (`sy:{c}:sentinels`, a hash of id → {host, port, at}), `at` on Redis's own clock so
 * that every reader judges freshness on one clock.
 */
export class SentinelRegistry {
  private readonly redis: Redis;
  private timer: NodeJS.Timeout | null = null;
  private cached: SentinelPeer[] = [];
  private readonly key: string;

  constructor(
    redisUrl: string,
    cluster: string,
    private readonly self: SentinelPeer,
    private readonly opts: { everyMs?: number; ttlMs?: number; redisOptions?: RedisOptions } = {},
  ) {
    // redisOptions: the coordination store's login and TLS (storeOptions of the config)
    this.redis = new Redis(redisUrl, { ...opts.redisOptions, lazyConnect: true, maxRetriesPerRequest: 1, connectTimeout: 2_000 });
    this.redis.on('error', () => {});
    this.key = `sy:{${cluster}}:sentinels`;
  }

  async start(): Promise<void> {
    await this.redis.connect();
    await this.beat();
    this.timer = setInterval(() => {
      if (!this.beating) this.beating = this.beat().finally(() => (this.beating = null));
    }, this.opts.everyMs ?? 2_000);
    this.timer.unref();
  }

  private beating: Promise<void> | null = null;
  private stopped = false;

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    // a beat in flight would write our entry back after the HDEL
    await this.beating;
    await this.redis.hdel(this.key, this.self.id).catch(() => 0);
    this.redis.disconnect();
  }

  /** The other coordinators' endpoints seen alive within the TTL. */
  peers(): SentinelPeer[] {
    return this.cached;
  }

  private async beat(): Promise<void> {
    try {
      const [sec, usec] = await this.redis.time();
      const now = Number(sec) * 1000 + Math.floor(Number(usec) / 1000);
      if (this.stopped) return;
      await this.redis.hset(this.key, this.self.id, JSON.stringify({ host: this.self.host, port: this.self.port, at: now }));
      const all = await this.redis.hgetall(this.key);
      const ttl = this.opts.ttlMs ?? 10_000;
      const out: SentinelPeer[] = [];
      for (const [id, v] of Object.entries(all)) {
        if (id === this.self.id) continue;
        try {
          const e = JSON.parse(v) as { host: string; port: number; at: number };
          if (now - e.at <= ttl) out.push({ id, host: e.host, port: e.port });
        } catch {
          // skip a malformed entry
        }
      }
      this.cached = out.sort((a, b) => (a.id < b.id ? -1 : 1));
    } catch {
      // keep the last list
    }
  }
}
