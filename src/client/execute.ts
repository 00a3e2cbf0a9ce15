/**
 * Running one statement: classify it (cached per text), send it to the node the router
 * picks, account for it (breaker, latency, events, metrics), and retry what may be
 * retried: a read once on another node after a node failure or a conflict with
 * recovery; a write only when the error proves it never ran, on the primary the next
 * table names.
 */
import { performance } from 'node:perf_hooks';
import type pg from 'pg';
import { parseLsn } from '../core/lsn.js';
import { classifierReady, classifyQuery } from './classify.js';
import { routeContexts, type ConsistencyScope } from './consistency.js';
import { ClientError, isConnectionLost, isNodeFailure, isPoolEnded, isRecoveryConflict, provesNotRun } from './errors.js';
import type { Emitter, QueryErrorEvent, QueryExecutedEvent } from './events.js';
import type { ClientMetrics } from './metrics.js';
import type { Node } from './node.js';
import type { QueryContext, ResolvedOptions } from './options.js';
import type { Router } from './router.js';
import type { Topology } from './topology.js';

/** how many times a read is sent elsewhere because its node left the table meanwhile */
const MAX_REROUTES = 3;

/** transaction control: always the primary, never cached as a read */
export const TX_CONTROL = /^\s*(begin|start\s+transaction|commit|end|rollback|abort|savepoint|release|prepare\s+transaction|commit\s+prepared|rollback\s+prepared)\b/i;
/** the statements that end a transaction (not `ROLLBACK TO` a savepoint) */
export const TX_END = /^\s*(commit|end|rollback|abort)\b(?!\s+to\b)/i;
export const LSN_SQL = 'SELECT pg_current_wal_insert_lsn()::text AS lsn';

export function textOf(q: string | pg.QueryConfig): string {
  return typeof q === 'string' ? q : q.text;
}

export class Executor {
  retries = 0;
  coalesced = 0;
  private readonly kinds = new Map<string, 'read' | 'write'>();
  private readonly inflightReads = new Map<string, Promise<pg.QueryResult>>();
  private readonly writeFunctions: { writeFunctions: string[] } | undefined;
  /** `nearest` routes by measured latency: time every statement (else only for listeners and metrics) */
  private measureLatency: boolean;

  constructor(
    private readonly o: ResolvedOptions,
    private readonly topo: Topology,
    private readonly router: Router,
    private readonly events: Emitter,
    private readonly metrics: ClientMetrics | null,
    /** the read-your-writes scope in effect (null: none) */
    readonly scope: () => ConsistencyScope | null,
  ) {
    this.writeFunctions = o.writeFunctions?.length ? { writeFunctions: o.writeFunctions } : undefined;
    this.measureLatency = o.readPreference === 'nearest';
  }

  classify(text: string, ctx: QueryContext | undefined): 'read' | 'write' {
    if (ctx?.type) return ctx.type;
    // hot path: one Map lookup per statement text
    let kind = this.kinds.get(text);
    if (kind === undefined) {
      // before the parser has loaded (a query before ready()): the primary, and nothing cached
      if (!classifierReady()) return 'write';
      kind = TX_CONTROL.test(text) ? 'write' : classifyQuery(text, this.writeFunctions).kind;
      if (this.kinds.size >= 5000) this.kinds.clear();
      this.kinds.set(text, kind);
    }
    return kind;
  }

  /** a statement is sent to `n`: → its start time (-1: nobody measures) */
  begin(n: Node): number {
    n.view.inflight++;
    // the first statement past openMs is the half-open probe: no other goes there meanwhile
    if (n.breaker.state !== 'closed' && n.breaker.begin(Date.now())) this.topo.version++;
    return this.listenerWantsTiming() ? performance.now() : -1;
  }

  private listenerWantsTiming(): boolean {
    return this.measureLatency || this.metrics !== null || this.events.listenerCount('query-executed') > 0;
  }

  /** a statement sent with begin() finished: `err` null for a success */
  end(n: Node, kind: 'read' | 'write', t0: number, err: Error | null, retried = false, willRetry = false): void {
    if (err) this.failed(n, kind, err, willRetry);
    else this.done(n, kind, t0, retried);
  }

  private done(n: Node, kind: 'read' | 'write', t0: number, retried: boolean): void {
    n.view.inflight--;
    n.queries++;
    if (n.breaker.state !== 'closed' && n.breaker.success()) this.restored(n);
    if (t0 >= 0) {
      const wantEvent = this.events.listenerCount('query-executed') > 0;
      const durationMs = performance.now() - t0;
      n.view.latencyMs = n.view.latencyMs === null ? durationMs : n.view.latencyMs * 0.8 + durationMs * 0.2;
      this.metrics?.observe(n.id, n.view.role, kind, durationMs);
      if (wantEvent) this.events.emit('query-executed', { nodeId: n.id, role: n.view.role, kind, durationMs, retried } satisfies QueryExecutedEvent);
    }
  }

  private failed(n: Node | null, kind: 'read' | 'write', err: Error, willRetry: boolean): void {
    if (n) {
      n.view.inflight--;
      if (isNodeFailure(err)) this.nodeFailed(n, err);
      else {
        n.errors++;
        // the probe got an answer (an SQL error): the node is up
        if (n.breaker.state === 'half-open' && n.breaker.success()) this.restored(n);
      }
    }
    this.metrics?.error(n?.id ?? 'none', n?.view.role ?? 'none', kind);
    if (this.events.listenerCount('query-error') > 0) this.events.emit('query-error', { nodeId: n?.id ?? null, role: n?.view.role ?? null, kind, error: err, willRetry } satisfies QueryErrorEvent);
  }

  private restored(n: Node): void {
    this.topo.version++;
    this.events.emit('node-restored', { nodeId: n.id });
  }

  /** a node failure counts against the node's breaker; opening it ejects the node for `openMs` */
  nodeFailed(n: Node, err: Error): void {
    n.errors++;
    if (isConnectionLost(err)) n.distrust();
    if (n.breaker.failure(Date.now())) {
      this.topo.version++;
      this.events.emit('node-ejected', { nodeId: n.id, role: n.view.role, reason: err.message });
      const t = setTimeout(() => this.topo.version++, this.o.breakerOptions.openMs + 1);
      t.unref();
    }
  }

  /** After a write on `client` (the primary): record its WAL position in the scope, for read-your-writes. */
  async recordWrite(client: pg.PoolClient, scope = this.scope()): Promise<void> {
    if (!scope) return;
    const l = await client.query<{ lsn: string }>(LSN_SQL).catch(() => null);
    const lsn = parseLsn(l?.rows[0]?.lsn);
    if (lsn !== null) scope.wrote(lsn, Date.now(), this.o.consistencyTtlMs);
  }

  route(q: string | pg.QueryConfig, values: unknown[] | undefined, ctx: QueryContext | undefined): Promise<pg.QueryResult> {
    if (this.topo.closed) return Promise.reject(new ClientError('POOL_ENDED', 'ReplicatedPool: query after end()'));
    if (ctx === undefined) ctx = routeContexts.getStore();
    else if (ctx.readPreference === 'nearest') this.measureLatency = true;
    const kind = this.classify(textOf(q), ctx);
    if (kind === 'write') return this.runWrite(q, values);
    if (this.o.coalesce) return this.coalescedRead(q, values, ctx);
    return this.read(q, values, ctx);
  }

  private read(q: string | pg.QueryConfig, values: unknown[] | undefined, ctx: QueryContext | undefined): Promise<pg.QueryResult> {
    if (ctx === undefined) {
      const scope = this.scope();
      if (scope === null || scope.lsn === null) {
        const n = this.router.fastRead();
        if (n) return this.runRead(n, q, values, ctx, false);
      }
    }
    return this.router.slowRead(ctx, null).then((n) => this.runRead(n, q, values, ctx, false));
  }

  private runRead(n: Node, q: string | pg.QueryConfig, values: unknown[] | undefined, ctx: QueryContext | undefined, retried: boolean, rerouted = 0): Promise<pg.QueryResult> {
    const t0 = this.begin(n);
    return n.pool.query(q as string, values).then(
      (res) => {
        this.done(n, 'read', t0, retried);
        return res;
      },
      (err: Error) => {
        if (isPoolEnded(err) && n.removed && !this.topo.closed && rerouted < MAX_REROUTES) {
          // the node left the table after it was chosen: nothing ran there, choose again
          n.view.inflight--;
          return this.router.slowRead(ctx, n).then((next) => this.runRead(next, q, values, ctx, retried, rerouted + 1));
        }
        const retry = !retried && (isNodeFailure(err) || isRecoveryConflict(err));
        this.failed(n, 'read', err, retry);
        if (!retry) throw err;
        this.retries++;
        // once more, on another node
        return this.router.slowRead(ctx, n).then((next) => this.runRead(next, q, values, ctx, true));
      },
    );
  }

  /**
   * A write on the primary. `holdUntil` is set once an attempt failed in a way that proves
   * the statement never ran (a refused connect, a read-only node, …): from then on it is
   * sent again, to the primary the table names by then, until holdWritesMs has passed.
   */
  private async runWrite(q: string | pg.QueryConfig, values: unknown[] | undefined, holdUntil: number | null = null, rerouted = 0, attempt = 0): Promise<pg.QueryResult> {
    const n = await this.router.writeNode();
    const scope = this.scope();
    const t0 = this.begin(n);
    try {
      const c = await n.checkout();
      if (n.removed && !this.topo.closed && rerouted < MAX_REROUTES) {
        // the node left the table while the write waited for a connection: nothing ran, and
        // it is no primary of ours any more: the write goes to the primary the table names
        c.release();
        n.view.inflight--;
        return this.runWrite(q, values, holdUntil, rerouted + 1, attempt);
      }
      let res: pg.QueryResult;
      let bad: Error | undefined;
      try {
        res = await c.query(q as string, values);
        // the WAL position after the commit, on the same connection (read-your-writes)
        if (scope) await this.recordWrite(c, scope);
      } catch (err) {
        if (isNodeFailure(err)) bad = err as Error;
        throw err;
      } finally {
        c.release(bad);
      }
      this.done(n, 'write', t0, holdUntil !== null);
      return res;
    } catch (err) {
      const until = holdUntil ?? Date.now() + this.o.holdWritesMs;
      const retry = provesNotRun(err) && Date.now() < until && !this.topo.closed;
      this.failed(n, 'write', err as Error, retry);
      if (!retry) throw err;
      this.retries++;
      // it never ran: again, on the primary the table names by then; the same node again
      // after a short backoff (a primary restarted in place keeps its name), until the hold ends
      await this.topo.whilePrimary(n, Math.min(until, Date.now() + Math.min(1000, 100 * 2 ** attempt)));
      return this.runWrite(q, values, until, 0, attempt + 1);
    }
  }

  private coalescedRead(q: string | pg.QueryConfig, values: unknown[] | undefined, ctx: QueryContext | undefined): Promise<pg.QueryResult> {
    // same SQL, same parameters, same node class (the read preference decides the class)
    const cls = ctx?.requiresConsistency ? 'primary' : (ctx?.readPreference ?? this.router.rules.readPreference);
    const scope = this.scope();
    const key = `${cls}\u0000${scope?.lsn ?? ''}\u0000${typeof q === 'string' ? q : JSON.stringify({ t: q.text, n: q.name, r: (q as { rowMode?: string }).rowMode })}\u0000${JSON.stringify(values ?? (typeof q === 'string' ? null : q.values ?? null))}`;
    const running = this.inflightReads.get(key);
    if (running) {
      this.coalesced++;
      this.metrics?.coalesced.inc();
      return running;
    }
    const p = this.read(q, values, ctx).finally(() => this.inflightReads.delete(key));
    this.inflightReads.set(key, p);
    return p;
  }
}
