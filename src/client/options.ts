/**
 * `ReplicatedPool`'s options: what the app may set, checked once (a clear error naming
 * the option and the value), with the defaults filled in; and the pg.Pool settings of
 * one node's pool by role.
 */
import type pg from 'pg';
import type { BreakerOptions } from './breaker.js';
import { ClientError } from './errors.js';
import type { MetricsOptions } from './metrics.js';
import { LOAD_BALANCING, READ_PREFERENCES, type LoadBalancing, type ReadPreference, type ReadRules } from './select.js';

export type { LoadBalancing, ReadPreference } from './select.js';

/** Per-query routing overrides (the seed's `QueryContext`). */
export interface QueryContext {
  /** force the statement kind instead of classifying it */
  type?: 'read' | 'write';
  /** a read that must see every committed write: the primary */
  requiresConsistency?: boolean;
  /** use this node if it qualifies */
  preferredNode?: string;
  readPreference?: ReadPreference;
  maxLagMs?: number;
  maxLagBytes?: number;
}

export interface RoleTimeouts {
  /** connect timeout, ms */
  connectMs?: number;
  /** statement timeout (client side, node-postgres `query_timeout`), ms */
  statementMs?: number;
}

export interface ReplicatedPoolOptions {
  /** one or more coordinator API URLs */
  routing: string | string[];
  cluster: string;
  /** how to log in (host and port come from the routing table) */
  connection?: Omit<pg.PoolConfig, 'host' | 'port'>;
  readPreference?: ReadPreference;
  loadBalancing?: LoadBalancing;
  maxLagMs?: number;
  maxLagBytes?: number;
  /** the app's zone, matched against the nodes' `zone` labels */
  zone?: string;
  /** `weighted` balancing: weight per node id (default 1) */
  weights?: Record<string, number>;
  /** a replica that joined ramps up its share over this period, ms (default 0: off) */
  warmupMs?: number;
  /** `nearest`: latency window over the fastest node, ms (default 15) */
  localThresholdMs?: number;
  /** connections per node (default 10) */
  max?: number;
  idleTimeoutMillis?: number;
  /** keep one idle connection open to every healthy node, so a newly named primary needs no handshake (default true) */
  keepWarm?: boolean;
  timeouts?: { primary?: RoleTimeouts; replica?: RoleTimeouts };
  breaker?: Partial<BreakerOptions>;
  /** read-your-writes in the pool's scope (default true) */
  readYourWrites?: boolean;
  /** how long a write mark (and a token) lasts, ms (default 30000) */
  consistencyTtlMs?: number;
  /** SSE (default) or long-polling */
  transport?: 'sse' | 'poll';
  /** plain GET of the table for lag figures, ms (default 1000) */
  refreshMs?: number;
  /** no coordinator answered for this long: find the primary by asking the nodes, ms (default 5000) */
  staleAfterMs?: number;
  /** writes wait this long for a primary (failover, switchover) before NoPrimaryError, ms (default 5000) */
  holdWritesMs?: number;
  /** in-flight transactions on a draining or departed node get this long, ms (default 5000) */
  drainTimeoutMs?: number;
  /** identical concurrent reads share one execution (default false) */
  coalesce?: boolean;
  /** extra functions the classifier treats as writes */
  writeFunctions?: string[];
  /** a client from connect(): 'first-write' (reads routed until the first write, BEGIN or SET pins it to the primary; default) or 'primary' (pinned at once) */
  connectPinning?: 'first-write' | 'primary';
  /** prom-client metrics on the app's registry */
  metrics?: MetricsOptions;
  /** headers for the routing API (e.g. Authorization) */
  headers?: Record<string, string>;
}

type Defaulted = 'readPreference' | 'loadBalancing' | 'warmupMs' | 'localThresholdMs' | 'consistencyTtlMs' | 'staleAfterMs' | 'holdWritesMs' | 'drainTimeoutMs' | 'connectPinning' | 'keepWarm' | 'refreshMs' | 'transport';

/** The options with their defaults, and the routing URLs as a list. */
export type ResolvedOptions = Required<Pick<ReplicatedPoolOptions, Defaulted>> & ReplicatedPoolOptions & { urls: string[]; breakerOptions: BreakerOptions };

/** Check the app's options (a ClientError naming the option and the value) and fill in the defaults. */
export function resolveOptions(options: ReplicatedPoolOptions): ResolvedOptions {
  const urls = Array.isArray(options.routing) ? options.routing : [options.routing];
  if (urls.length === 0 || urls.some((u) => typeof u !== 'string' || !/^https?:\/\//.test(u))) throw new ClientError('BAD_OPTION', `routing: expected one or more http(s) URLs, got ${JSON.stringify(options.routing)}`);
  if (!options.cluster || typeof options.cluster !== 'string') throw new ClientError('BAD_OPTION', `cluster: expected a cluster name, got ${JSON.stringify(options.cluster)}`);
  if (options.readPreference !== undefined && !READ_PREFERENCES.includes(options.readPreference)) throw new ClientError('BAD_OPTION', `readPreference: ${JSON.stringify(options.readPreference)} is not one of ${READ_PREFERENCES.join(', ')}`);
  if (options.loadBalancing !== undefined && !LOAD_BALANCING.includes(options.loadBalancing)) throw new ClientError('BAD_OPTION', `loadBalancing: ${JSON.stringify(options.loadBalancing)} is not one of ${LOAD_BALANCING.join(', ')}`);
  for (const k of ['maxLagMs', 'maxLagBytes', 'warmupMs', 'staleAfterMs', 'holdWritesMs', 'drainTimeoutMs', 'consistencyTtlMs', 'refreshMs', 'max'] as const) {
    const v = options[k];
    if (v !== undefined && (typeof v !== 'number' || !Number.isFinite(v) || v < 0)) throw new ClientError('BAD_OPTION', `${k}: expected a number ≥ 0, got ${JSON.stringify(v)}`);
  }
  if (options.transport !== undefined && options.transport !== 'sse' && options.transport !== 'poll') throw new ClientError('BAD_OPTION', `transport: expected 'sse' or 'poll', got ${JSON.stringify(options.transport)}`);
  return {
    readPreference: 'secondaryPreferred',
    loadBalancing: 'round-robin',
    warmupMs: 0,
    localThresholdMs: 15,
    consistencyTtlMs: 30_000,
    staleAfterMs: 5000,
    holdWritesMs: 5000,
    drainTimeoutMs: 5000,
    connectPinning: 'first-write',
    keepWarm: true,
    refreshMs: 1000,
    transport: 'sse',
    ...stripUndefined(options),
    urls,
    breakerOptions: { failures: options.breaker?.failures ?? 3, openMs: options.breaker?.openMs ?? 2000 },
  };
}

function stripUndefined<T extends object>(o: T): T {
  const out = {} as T;
  for (const [k, v] of Object.entries(o)) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
}

/** The pool's read rules (the per-query overrides start from these). */
export function readRules(o: ResolvedOptions): ReadRules {
  return {
    readPreference: o.readPreference,
    loadBalancing: o.loadBalancing,
    maxLagMs: o.maxLagMs,
    maxLagBytes: o.maxLagBytes,
    zone: o.zone,
    warmupMs: o.warmupMs,
    localThresholdMs: o.localThresholdMs,
  };
}

/** One node's pg.Pool settings: the login, the connection cap and the role's timeouts. */
export function nodeConfig(o: ResolvedOptions, role: 'primary' | 'replica'): pg.PoolConfig {
  const t = o.timeouts?.[role];
  const max = o.max ?? 10;
  const cfg: pg.PoolConfig = { ...o.connection, max };
  // the warm connection outlives the idle timeout
  if (o.keepWarm && max > 0) cfg.min = 1;
  if (o.idleTimeoutMillis !== undefined) cfg.idleTimeoutMillis = o.idleTimeoutMillis;
  cfg.connectionTimeoutMillis = t?.connectMs ?? o.connection?.connectionTimeoutMillis ?? 5000;
  if (t?.statementMs !== undefined) cfg.query_timeout = t.statementMs;
  return cfg;
}
