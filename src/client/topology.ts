/**
 * The nodes the pool knows and what role each plays, kept in step with the routing
 * table (as the MongoDB driver's topology is with its server descriptions): a table
 * in → node pools made, re-roled or retired → `routing-changed` when routing moved →
 * waiters woken. Without the control plane (past `staleAfterMs`), it asks the known
 * nodes `pg_is_in_recovery()` itself.
 */
import pg from 'pg';
import { parseLsn } from '../core/lsn.js';
import type { RoutingTable } from '../core/routing.js';
import type { Emitter, RoutingChangedEvent } from './events.js';
import type { TableSource } from './follower.js';
import { Node } from './node.js';
import { nodeConfig, type ResolvedOptions } from './options.js';

type TableNode = { draining?: boolean; zone?: string };

export class Topology {
  readonly nodes = new Map<string, Node>();
  primary: Node | null = null;
  replicas: Node[] = [];
  table: RoutingTable | null = null;
  /** bumped whenever what a read may use changes; cached candidate lists follow it */
  version = 0;
  /** until when some replica is still warming up (0: none) */
  warmUntil = 0;
  /** the primary the pool found itself while the control plane was out of reach */
  discovered: Node | null = null;
  closed = false;
  private discovering: Promise<void> | null = null;
  private readonly waiters = new Set<() => void>();
  /** nodes that left the table and whose pools have not ended yet */
  private readonly retiring = new Set<Node>();

  constructor(
    private readonly o: ResolvedOptions,
    private readonly events: Emitter,
    /** when a coordinator last answered, and the last error (the follower) */
    private readonly freshness: { readonly lastOkAt: number; readonly lastError: Error | null },
    /** a node pool was made: the pool wires its events */
    private readonly onNode: (n: Node) => void,
  ) {}

  /** the primary, if statements may go there now */
  usablePrimary(): Node | null {
    const p = this.primary;
    if (!p || p.removed || p.view.draining || !p.view.healthy) return null;
    if (!p.breaker.peek(Date.now())) return null;
    return p;
  }

  private ensureNode(id: string, host: string, port: number, role: 'primary' | 'replica', now: number): Node {
    let n = this.nodes.get(id);
    if (n && (n.host !== host || n.port !== port)) {
      this.retire(n);
      n = undefined;
    }
    if (!n) {
      n = new Node(id, host, port, role, nodeConfig(this.o, role), this.o.breakerOptions, now);
      n.view.weight = this.o.weights?.[id] ?? 1;
      this.onNode(n);
      this.nodes.set(id, n);
    } else if (n.view.role !== role) {
      // timeouts follow the role for the connections it opens from now on
      const cfg = nodeConfig(this.o, role);
      const opts = n.pool.options as pg.PoolConfig;
      opts.connectionTimeoutMillis = cfg.connectionTimeoutMillis;
      opts.query_timeout = cfg.query_timeout;
    }
    n.view.role = role;
    n.removed = false;
    return n;
  }

  /** drain a node that left the table: what was sent there finishes (bounded), then its pool closes */
  private retire(n: Node): void {
    if (n.removed) return;
    this.nodes.delete(n.id);
    this.retiring.add(n);
    void n.retire(this.o.drainTimeoutMs).then(() => this.retiring.delete(n));
  }

  /** A table from the control plane (newer or equal generation, the follower sees to that). */
  apply(t: RoutingTable, source: TableSource): void {
    if (this.closed) return;
    const now = Date.now();
    const prev = this.table;
    const routingChanged = !prev || prev.generation !== t.generation || prev.primary?.id !== t.primary?.id || prev.epoch !== t.epoch || drainingOf(prev) !== drainingOf(t);
    this.table = t;
    const seen = new Set<string>();
    let primary: Node | null = null;
    if (t.primary) {
      const p = t.primary as RoutingTable['primary'] & TableNode;
      primary = this.ensureNode(p.id, p.host, p.port, 'primary', now);
      primary.view.healthy = true;
      primary.view.draining = p.draining === true;
      primary.view.zone = p.zone ?? null;
      primary.view.lagMs = 0;
      primary.view.lagBytes = 0;
      seen.add(primary.id);
      if (primary.view.draining) primary.startDrain(this.o.drainTimeoutMs);
      else primary.stopDrain();
    }
    const replicas: Node[] = [];
    for (const r of t.replicas as Array<RoutingTable['replicas'][number] & TableNode>) {
      const had = this.nodes.get(r.id);
      const wasUsable = had ? had.view.role === 'replica' && had.view.healthy : false;
      const n = this.ensureNode(r.id, r.host, r.port, 'replica', now);
      // a replica that (re)joins warms up from now
      if (r.healthy && !wasUsable) n.view.joinedAt = now;
      n.view.healthy = r.healthy;
      n.view.draining = r.draining === true;
      n.view.zone = r.zone ?? null;
      n.view.lagMs = r.lagMs;
      n.view.lagBytes = r.lagBytes;
      const lsn = parseLsn(r.replayLsn);
      // the highest replay position known (a check may have seen further than the table)
      if (lsn !== null && (n.view.replayLsn === null || lsn > n.view.replayLsn || routingChanged)) n.view.replayLsn = lsn;
      if (n.view.draining) n.startDrain(this.o.drainTimeoutMs);
      else n.stopDrain();
      seen.add(r.id);
      replicas.push(n);
    }
    for (const n of [...this.nodes.values()]) if (!seen.has(n.id)) this.retire(n);
    this.primary = primary;
    this.replicas = replicas;
    if (this.o.warmupMs > 0) {
      this.warmUntil = 0;
      for (const r of replicas) this.warmUntil = Math.max(this.warmUntil, r.view.joinedAt + this.o.warmupMs);
    }
    // a table from the control plane replaces what discovery found
    if (this.discovered) this.discovered = null;
    this.version++;
    // first the statements held for this table, then the bookkeeping
    this.wake();
    if (routingChanged) this.events.emit('routing-changed', { generation: t.generation, primary: t.primary?.id ?? null, previousPrimary: prev?.primary?.id ?? null, source, table: t } satisfies RoutingChangedEvent);
    if (this.o.keepWarm) {
      primary?.warm();
      for (const r of replicas) if (r.view.healthy) r.warm();
    }
  }

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }

  /** wait (up to `ms`) for the next table or discovery result */
  nextChange(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.waiters.add(done);
    });
  }

  /** Hold (up to `deadline`) while `n` is still the usable primary: a write that failed there waits for the next one. */
  async whilePrimary(n: Node, deadline: number): Promise<void> {
    while (this.usablePrimary() === n && Date.now() < deadline && !this.closed) {
      if (this.stale) void this.discover();
      await this.nextChange(Math.min(250, deadline - Date.now()));
    }
  }

  /** no coordinator has answered for longer than `staleAfterMs` */
  get stale(): boolean {
    // without refreshes a quiet stream proves nothing either way: only a failing one counts
    if (this.table === null || (this.o.refreshMs === 0 && this.freshness.lastError === null)) return false;
    return Date.now() - this.freshness.lastOkAt > this.o.staleAfterMs;
  }

  /**
   * The control plane is out of reach: ask every known node `pg_is_in_recovery()`, as
   * libpq's target_session_attrs=read-write does. Exactly one node out of recovery is
   * the primary; none or several: no primary (never guess between two).
   */
  discover(): Promise<void> {
    if (this.discovering) return this.discovering;
    this.discovering = (async () => {
      const known = [...this.nodes.values()];
      const answers = await Promise.all(known.map(async (n) => {
        const c = new pg.Client({ ...this.o.connection, host: n.host, port: n.port, connectionTimeoutMillis: 1000, query_timeout: 1000 });
        c.on('error', () => {});
        try {
          await c.connect();
          const r = await c.query<{ rec: boolean; ro: string }>("SELECT pg_is_in_recovery() AS rec, current_setting('default_transaction_read_only') AS ro");
          return { n, writable: r.rows[0]!.rec === false && r.rows[0]!.ro !== 'on', up: true };
        } catch {
          return { n, writable: false, up: false };
        } finally {
          await c.end().catch(() => {});
        }
      }));
      if (!this.stale) return;
      const writable = answers.filter((a) => a.writable);
      const found = writable.length === 1 ? writable[0]!.n : null;
      for (const a of answers) {
        a.n.view.healthy = a.up;
        a.n.view.role = a.n === found ? 'primary' : 'replica';
      }
      const before = this.discovered?.id ?? this.primary?.id ?? null;
      this.discovered = found;
      this.primary = found;
      this.replicas = known.filter((n) => n !== found);
      this.version++;
      this.wake();
      if ((found?.id ?? null) !== before) this.events.emit('routing-changed', { generation: this.table?.generation ?? -1, primary: found?.id ?? null, previousPrimary: before, source: 'discovery', table: this.table } satisfies RoutingChangedEvent);
    })().finally(() => {
      this.discovering = null;
    });
    return this.discovering;
  }

  /** Stop: wake every waiter, release every lease, close every node's pool. */
  async close(): Promise<void> {
    this.closed = true;
    this.wake();
    await Promise.all([...this.nodes.values(), ...this.retiring].map((n) => n.close()));
    await this.discovering?.catch(() => {});
  }
}

function drainingOf(t: RoutingTable): string {
  const ids: string[] = [];
  const p = t.primary as { id: string; draining?: boolean } | null;
  if (p?.draining) ids.push(p.id);
  for (const r of t.replicas as Array<{ id: string; draining?: boolean }>) if (r.draining) ids.push(r.id);
  return ids.join(',');
}
