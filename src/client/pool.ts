/**
 * `ReplicatedPool`: a node-postgres `Pool` that follows a switchyard routing table.
 * Reads go to replicas (per read preference, lag limits, warm-up and load balancing),
 * writes and transactions to the primary; read-your-writes by WAL position; a circuit
 * breaker per node; without the control plane it keeps the last table and, past a
 * staleness limit, finds the primary itself with `pg_is_in_recovery()`.
 *
 * This file is the shell (the pg.Pool interface, options, lifecycle, scopes, stats);
 * the parts: `topology.ts` (nodes kept in step with the table), `router.ts` (which node),
 * `execute.ts` (run, account, retry), `session.ts` (pinned sessions, `connect()`'s
 * client), `follower.ts` (SSE / long-poll), `select.ts` (the pure selection rules).
 *
 * Hot path: `query(text, values)` of a read is a cached classification, a cached
 * candidate list (rebuilt only when the table, a breaker or the lag figures change)
 * and the node pool's own `query`, with one `.then` for accounting.
 */
import pg from 'pg';
import type { RoutingTable } from '../core/routing.js';
import { parseQueryArgs, settle } from './args.js';
import { classifierReady, initClassifier } from './classify.js';
import { ConsistencyScope, decodeToken, encodeToken, scopes } from './consistency.js';
import { NoPrimaryError, RoutingUnavailableError } from './errors.js';
import type { NodeStats, PoolStats, QueryErrorEvent, QueryExecutedEvent, RoutingChangedEvent } from './events.js';
import { Executor } from './execute.js';
import { RoutingFollower } from './follower.js';
import { ClientMetrics } from './metrics.js';
import type { Node } from './node.js';
import { readRules, resolveOptions, type QueryContext, type ReplicatedPoolOptions, type ResolvedOptions } from './options.js';
import { Router } from './router.js';
import { Sessions } from './session.js';
import { Topology } from './topology.js';

export type { LoadBalancing, QueryContext, ReadPreference, ReplicatedPoolOptions, RoleTimeouts } from './options.js';
export type { NodeStats, PoolStats, QueryErrorEvent, QueryExecutedEvent, RoutingChangedEvent } from './events.js';

/**
 * A drop-in `pg.Pool` over the nodes the routing table names.
 * (`instanceof pg.Pool` holds, so ORMs that test for a pool treat it as one.)
 */
export class ReplicatedPool extends pg.Pool {
  private readonly o: ResolvedOptions;
  private readonly topo: Topology;
  private readonly router: Router;
  private readonly exec: Executor;
  private readonly sessions: Sessions;
  private readonly follower: RoutingFollower;
  private readonly poolScope = new ConsistencyScope();
  private readonly readyPromise: Promise<void>;
  private resolveReady!: () => void;
  private closed = false;
  private readonly discoveryTimer: NodeJS.Timeout;
  private readonly classifierLoading: Promise<void>;

  constructor(options: ReplicatedPoolOptions) {
    super({ max: 0 });
    const o = (this.o = resolveOptions(options));
    const metrics = o.metrics ? new ClientMetrics(o.metrics) : null;
    const scope = (): ConsistencyScope | null => scopes.getStore() ?? (o.readYourWrites === false ? null : this.poolScope);
    this.readyPromise = new Promise<void>((r) => (this.resolveReady = r));
    this.follower = new RoutingFollower(
      { urls: o.urls, cluster: o.cluster, transport: o.transport, refreshMs: o.refreshMs, requestTimeoutMs: 2000, headers: o.headers },
      (t, source) => {
        this.topo.apply(t, source);
        metrics?.generation.set(t.generation);
        this.resolveReady();
      },
      (err, url) => this.emit('routing-error', { url, error: err }),
    );
    this.topo = new Topology(o, this, this.follower, (n) => this.wire(n));
    this.router = new Router(o, readRules(o), this.topo, scope, () => this.ready());
    this.exec = new Executor(o, this.topo, this.router, this, metrics, scope);
    this.sessions = new Sessions(o, this.topo, this.router, this.exec, this);
    this.follower.start();
    // PostgreSQL's parser (WASM) loads once per process; until it has, statements go to the primary
    this.classifierLoading = initClassifier().catch((err: unknown) => {
      this.emit('error', err);
    });
    this.discoveryTimer = setInterval(() => {
      if (!this.closed && this.topo.stale) void this.topo.discover();
    }, Math.max(250, Math.min(1000, o.staleAfterMs / 2)));
    this.discoveryTimer.unref();
  }

  /** a new node pool: its events become the pool's */
  private wire(node: Node): void {
    node.pool.on('error', (err) => {
      if (this.listenerCount('error') > 0) this.emit('error', err, node);
    });
    node.pool.on('connect', (c) => {
      // a checked-out connection can receive a FATAL between statements (shutdown, failover):
      // the next statement on it fails; the error must not take the process down
      c.on('error', () => {});
      this.emit('connect', c);
    });
    node.pool.on('remove', (c) => this.emit('remove', c));
  }

  // ---------------------------------------------------------------- routing table

  /** Resolves on the first routing table (or RoutingUnavailableError after `timeoutMs`). */
  ready(timeoutMs = 10_000): Promise<void> {
    if (this.topo.table && classifierReady()) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        const why = this.follower.lastError ? `: ${this.follower.lastError.message}` : '';
        reject(new RoutingUnavailableError(`no routing table for cluster ${this.o.cluster} from ${this.o.urls.join(', ')} within ${timeoutMs} ms${why}`));
      }, timeoutMs);
      void Promise.all([this.readyPromise, this.classifierLoading]).then(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /** the cluster this pool follows */
  get cluster(): string {
    return this.o.cluster;
  }

  /** the routing table in use (null before the first) */
  get routingTable(): RoutingTable | null {
    return this.topo.table;
  }

  // ---------------------------------------------------------------- the pg.Pool interface

  /**
   * `query(text, values?)`, `query(config)` (a `route: QueryContext` in the config
   * overrides routing), and the callback forms.
   */
  /* eslint-disable @typescript-eslint/no-explicit-any */
  override query<R extends pg.QueryResultRow = any, I = any[]>(queryTextOrConfig: string | (pg.QueryConfig<I> & { route?: QueryContext }), values?: pg.QueryConfigValues<I>): Promise<pg.QueryResult<R>>;
  override query<R extends pg.QueryResultRow = any, I = any[]>(queryTextOrConfig: string | pg.QueryConfig<I>, callback: (err: Error, result: pg.QueryResult<R>) => void): void;
  override query<R extends pg.QueryResultRow = any, I = any[]>(queryText: string, values: pg.QueryConfigValues<I>, callback: (err: Error, result: pg.QueryResult<R>) => void): void;
  override query<T extends pg.Submittable>(queryStream: T): T;
  // the pg.Pool overloads, in one implementation
  override query(...args: any[]): any {
    /* eslint-enable @typescript-eslint/no-explicit-any */
    const q = parseQueryArgs(args, 'ReplicatedPool');
    if (q.kind === 'submittable') {
      // a Submittable (cursor, stream): on the primary's pool, as pg would run it
      const n = this.topo.usablePrimary();
      if (!n) throw new NoPrimaryError(`cluster ${this.o.cluster}: no primary for a streaming query`);
      return n.pool.query(q.submittable);
    }
    if (q.kind === 'invalid') return settle(Promise.reject(q.error), q.cb);
    return settle(this.exec.route(q.query, q.values, q.route), q.cb);
  }

  /* eslint-disable @typescript-eslint/no-explicit-any */
  override on(event: 'query-executed', fn: (e: QueryExecutedEvent) => void): this;
  override on(event: 'query-error', fn: (e: QueryErrorEvent) => void): this;
  override on(event: 'routing-changed', fn: (e: RoutingChangedEvent) => void): this;
  override on(event: 'node-ejected' | 'node-restored', fn: (e: { nodeId: string; role?: string; reason?: string }) => void): this;
  override on(event: 'routing-error', fn: (e: { url: string; error: Error }) => void): this;
  override on(event: 'error' | 'release', fn: (err: Error, client: pg.PoolClient) => void): this;
  override on(event: 'connect' | 'acquire' | 'remove', fn: (client: pg.PoolClient) => void): this;
  override on(event: string | symbol, fn: (...args: any[]) => void): this {
    /* eslint-enable @typescript-eslint/no-explicit-any */
    return super.on(event as 'connect', fn);
  }

  /** Routing overrides for a few statements: `db.using({ type: 'read', preferredNode: 'pg2' }).query(…)`. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  using(ctx: QueryContext): { query: <R extends pg.QueryResultRow = any>(text: string, values?: unknown[]) => Promise<pg.QueryResult<R>> } {
    return { query: (text, values) => this.exec.route(text, values, ctx) };
  }

  /**
   * A client. By default its reads are routed like the pool's until the first write,
   * BEGIN or SET, which pins it to the primary until release(); `{ readOnly: true }`
   * pins it to a replica (per the read preference).
   */
  override connect(opts?: { readOnly?: boolean }): Promise<pg.PoolClient>;
  override connect(callback: (err: Error | undefined, client: pg.PoolClient | undefined, done: (release?: unknown) => void) => void): void;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  override connect(...args: any[]): any {
    const cb = typeof args[0] === 'function' ? (args[0] as (err: Error | undefined, client: pg.PoolClient | undefined, done: (release?: unknown) => void) => void) : undefined;
    const opts = (cb ? undefined : args[0]) as { readOnly?: boolean } | undefined;
    const p = this.sessions.checkout(opts?.readOnly === true);
    if (cb) {
      p.then((c) => cb(undefined, c, (e?: unknown) => c.release(e as Error | undefined)), (e: Error) => cb(e, undefined, () => {}));
      return undefined;
    }
    return p;
  }

  /**
   * A transaction on the primary: BEGIN, `fn(client)`, COMMIT (ROLLBACK on a throw).
   * Its WAL position is recorded after COMMIT for read-your-writes.
   * `{ readOnly: true }` runs it on a replica (BEGIN READ ONLY).
   */
  transaction<T>(fn: (client: pg.PoolClient) => Promise<T>, opts: { readOnly?: boolean; isolation?: 'read committed' | 'repeatable read' | 'serializable' } = {}): Promise<T> {
    return this.sessions.transaction(fn, opts);
  }

  /** Close every node's pool and stop following the routing table. */
  override end(): Promise<void>;
  override end(callback: () => void): void;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  override end(...args: any[]): any {
    const cb = typeof args[0] === 'function' ? (args[0] as () => void) : undefined;
    const p = this.close();
    if (cb) {
      void p.then(cb, cb);
      return undefined;
    }
    return p;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const self = this as unknown as { ending: boolean; ended: boolean };
    self.ending = true;
    clearInterval(this.discoveryTimer);
    const stopping = this.follower.stop();
    await this.topo.close();
    await stopping;
    self.ended = true;
  }

  // ---------------------------------------------------------------- read-your-writes

  /** A token carrying this scope's last write position (for a cookie or a job argument). */
  consistencyToken(): string {
    const scope = scopes.getStore() ?? this.poolScope;
    return encodeToken(this.o.cluster, scope, Date.now());
  }

  /** Run `fn` in a read-your-writes scope that starts from `token` (from any process). */
  withToken<T>(token: string | null | undefined, fn: () => T): T {
    const scope = token ? decodeToken(this.o.cluster, token, Date.now()) : new ConsistencyScope();
    return scopes.run(scope, fn);
  }

  /** Run `fn` in a fresh read-your-writes scope of its own (one per request). */
  withScope<T>(fn: () => T): T {
    return scopes.run(new ConsistencyScope(), fn);
  }

  // ---------------------------------------------------------------- observability

  stats(): PoolStats {
    const nodes: Record<string, NodeStats> = {};
    for (const n of this.topo.nodes.values()) {
      nodes[n.id] = {
        role: n.view.role,
        healthy: n.view.healthy,
        draining: n.view.draining,
        breaker: n.breaker.state,
        queries: n.queries,
        errors: n.errors,
        inflight: n.view.inflight,
        latencyMs: n.view.latencyMs === null ? null : Math.round(n.view.latencyMs * 1000) / 1000,
        lagMs: n.view.lagMs,
        totalCount: n.pool.totalCount,
        idleCount: n.pool.idleCount,
      };
    }
    return { generation: this.topo.table?.generation ?? -1, primary: this.topo.primary?.id ?? null, stale: this.topo.stale, discoveredPrimary: this.topo.discovered?.id ?? null, coalesced: this.exec.coalesced, retries: this.exec.retries, nodes };
  }

  /** the sum of a pg.Pool counter over the node pools */
  private count(k: 'totalCount' | 'idleCount' | 'waitingCount' | 'expiredCount'): number {
    let s = 0;
    for (const n of this.topo.nodes.values()) s += n.pool[k];
    return s;
  }
}

// pg.Pool's counters are accessors on its prototype; ours sum the node pools
type Counted = { count(k: string): number };
Object.defineProperties(ReplicatedPool.prototype, {
  totalCount: { get(this: Counted) { return this.count('totalCount'); }, configurable: true },
  idleCount: { get(this: Counted) { return this.count('idleCount'); }, configurable: true },
  waitingCount: { get(this: Counted) { return this.count('waitingCount'); }, configurable: true },
  expiredCount: { get(this: Counted) { return this.count('expiredCount'); }, configurable: true },
});
