/**
 * createRedisClient: an ioredis client that follows switchyard's routing table.
 *
 *   const redis = createRedisClient({ routing: 'http://127.0.0.1:7400', cluster: 'cache' });
 *   await redis.set('k', 'v');
 *   const ro = createRedisClient({ routing, cluster: 'cache', role: 'replica' });
 *
 * The table comes from `GET /v1/clusters/:c/routing` and then the Server-Sent Events of
 * `/v1/clusters/:c/routing/stream`; when the address for the role changes, the client
 * reconnects there (ioredis resends the commands that had no answer yet). While a
 * failover is under way the table names no primary: the client keeps retrying its last
 * address (which is dead or fenced: writes are held, then refused) until the new one
 * is published.
 *
 * This is ioredis itself (same methods and events); see docs/redis.md for the failover
 * pitfalls of any ioredis client (resent non-idempotent commands, NOSCRIPT, READONLY).
 */
import * as net from 'node:net';
import * as tls from 'node:tls';
import { Redis, type RedisOptions } from 'ioredis';
import type { RoutingReplica, RoutingTable } from '../core/routing.js';

export interface RedisClientOptions {
  /** a coordinator's API URL, or several (tried in turn) */
  routing: string | string[];
  cluster: string;
  /** 'primary' (default): reads and writes on the master; 'replica': reads on a healthy replica (the least lagging) */
  role?: 'primary' | 'replica';
  /** replica role: with no healthy replica, read from the primary instead of waiting (default true) */
  replicaFallbackToPrimary?: boolean;
  /** more ioredis options (password, db, tls, …); host and port come from the routing table */
  redis?: Omit<RedisOptions, 'host' | 'port' | 'lazyConnect' | 'sentinels'>;
  /** bearer token, when the API asks for one */
  token?: string;
  /** wait between reconnects of the routing stream (ms, default 250) */
  streamRetryMs?: number;
}

export interface RoutedRedis extends Redis {
  /** the routing table the client acts on */
  readonly routingTable: RoutingTable | null;
  /** the node the client is pointed at */
  readonly target: { id: string; host: string; port: number } | null;
}

/** The node a client of `role` should use in `table` (pure). */
export function pickRedisTarget(table: RoutingTable, role: 'primary' | 'replica', fallbackToPrimary = true): { id: string; host: string; port: number } | null {
  if (role === 'primary') return table.primary;
  const healthy = table.replicas.filter((r) => r.healthy);
  if (healthy.length === 0) return fallbackToPrimary ? table.primary : null;
  const lag = (r: RoutingReplica): number => r.lagBytes ?? Number.MAX_SAFE_INTEGER;
  const best = [...healthy].sort((a, b) => lag(a) - lag(b) || (a.id < b.id ? -1 : 1))[0]!;
  return { id: best.id, host: best.host, port: best.port };
}

/**
 * READONLY (a write reached a replica: the old master after a failover) → reconnect
 * and resend; ioredis asks the routing table's current address on reconnect.
 */
export function reconnectOnReadonly(err: Error): boolean | 1 | 2 {
  return err.message.startsWith('READONLY') ? 2 : false;
}

export function createRedisClient(opts: RedisClientOptions): RoutedRedis {
  const urls = (Array.isArray(opts.routing) ? opts.routing : [opts.routing]).map((u) => u.replace(/\/+$/, ''));
  if (urls.length === 0) throw new Error('createRedisClient: routing must name at least one coordinator URL');
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(opts.cluster)) throw new Error(`createRedisClient: invalid cluster name ${JSON.stringify(opts.cluster)}`);
  const role = opts.role ?? 'primary';
  let table: RoutingTable | null = null;
  let target: { id: string; host: string; port: number } | null = null;
  let closed = false;
  let abort: AbortController | null = null;
  let firstResolve: (() => void) | null = null;
  const first = new Promise<void>((resolve) => (firstResolve = resolve));

  /** ioredis asks its connector for a stream on every (re)connect: the routing table's current address. */
  class RoutedConnector {
    connecting = false;
    stream: net.Socket | null = null;
    firstError: Error | undefined;
    constructor(private readonly options: RedisOptions) {}
    check(): boolean {
      return true;
    }
    async connect(): Promise<net.Socket> {
      this.connecting = true;
      this.firstError = undefined;
      await first;
      if (!this.connecting || !target) throw new Error('Connection is closed.');
      const { host, port } = target;
      const s = this.options.tls ? tls.connect({ ...this.options.tls, host, port }) : net.createConnection({ host, port });
      s.once('error', (err) => (this.firstError = err));
      this.stream = s;
      return s;
    }
    disconnect(): void {
      this.connecting = false;
      const s = this.stream;
      if (s) {
        const timer = setTimeout(() => s.destroy(), 2_000);
        s.once('close', () => clearTimeout(timer));
        s.end();
      }
    }
  }

  const redis = new Redis({
    retryStrategy: (times) => Math.min(50 * times, 500),
    reconnectOnError: role === 'primary' ? reconnectOnReadonly : undefined,
    ...opts.redis,
    // the address comes from the routing table (RoutedConnector)
    Connector: RoutedConnector as unknown as RedisOptions['Connector'],
  }) as RoutedRedis;

  Object.defineProperty(redis, 'routingTable', { get: () => table });
  Object.defineProperty(redis, 'target', { get: () => target });

  const apply = (t: RoutingTable): void => {
    if (table && t.generation < table.generation && t.epoch <= table.epoch) return; // an older table from a lagging coordinator
    table = t;
    const next = pickRedisTarget(t, role, opts.replicaFallbackToPrimary ?? true);
    if (!next) return; // nothing to move to yet: keep the last address
    if (target && next.host === target.host && next.port === target.port) return;
    const moved = target !== null;
    target = next;
    firstResolve?.();
    firstResolve = null;
    if (moved && redis.status !== 'end') {
      redis.emit('switchyard:moved', next);
      redis.disconnect(true);
    }
  };

  const headers = (): Record<string, string> => (opts.token ? { authorization: `Bearer ${opts.token}` } : {});
  const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

  const follow = async (): Promise<void> => {
    for (let i = 0; !closed; i++) {
      const base = urls[i % urls.length]!;
      const path = `${base}/v1/clusters/${encodeURIComponent(opts.cluster)}/routing`;
      try {
        abort = new AbortController();
        const now = await fetch(path, { headers: headers(), signal: abort.signal });
        if (now.ok) apply((await now.json()) as RoutingTable);
        const res = await fetch(`${path}/stream`, { headers: { ...headers(), accept: 'text/event-stream' }, signal: abort.signal });
        if (!res.ok || !res.body) throw new Error(`routing stream answered ${res.status}`);
        const decoder = new TextDecoder();
        let buf = '';
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
          buf += decoder.decode(chunk, { stream: true });
          for (let end = buf.indexOf('\n\n'); end >= 0; end = buf.indexOf('\n\n')) {
            const block = buf.slice(0, end);
            buf = buf.slice(end + 2);
            let event = 'message';
            const data: string[] = [];
            for (const line of block.split('\n')) {
              if (line.startsWith('event:')) event = line.slice(6).trim();
              else if (line.startsWith('data:')) data.push(line.slice(5).trimStart());
            }
            if (event === 'routing' && data.length > 0) {
              try {
                apply(JSON.parse(data.join('\n')) as RoutingTable);
              } catch {
                // a malformed event: skip it
              }
            }
          }
        }
      } catch {
        // coordinator gone or stream cut: try the next one
      }
      if (!closed) await sleep(opts.streamRetryMs ?? 250);
    }
  };
  void follow();

  const stopFollowing = (): void => {
    closed = true;
    abort?.abort();
    firstResolve?.();
  };
  redis.once('end', stopFollowing);
  const quit = redis.quit.bind(redis);
  redis.quit = ((callback?: (err?: Error | null, res?: 'OK') => void) => {
    stopFollowing();
    return quit(callback);
  });
  const disconnect = redis.disconnect.bind(redis);
  redis.disconnect = (reconnect = false): void => {
    if (!reconnect) stopFollowing();
    disconnect(reconnect);
  };
  return redis;
}
