/**
 * Which node a statement goes to, over the topology: the fast path for a plain read
 * (a cached candidate list), the slow path with every rule (per-query overrides,
 * read-your-writes with one quick replay check), and the primary for a write, held
 * up to `holdWritesMs` while a failover or switchover names the next one.
 */
import type pg from 'pg';
import { parseLsn } from '../core/lsn.js';
import type { ConsistencyScope } from './consistency.js';
import { NoPrimaryError, NoReplicaError } from './errors.js';
import type { Node } from './node.js';
import type { QueryContext, ResolvedOptions } from './options.js';
import { balance, chooseRead, eligibleReplicas, inZone, type Balancer, type NodeView, type ReadRules } from './select.js';
import type { Topology } from './topology.js';

export class Router {
  private readonly bal: Balancer = { rr: 0 };
  private cachedVersion = -1;
  private cachedCands: NodeView[] = [];

  constructor(
    private readonly o: ResolvedOptions,
    readonly rules: ReadRules,
    private readonly topo: Topology,
    /** the read-your-writes scope in effect (null: none) */
    private readonly scope: () => ConsistencyScope | null,
    /** resolves on the first table */
    private readonly ready: () => Promise<void>,
  ) {}

  private readCandidates(): NodeView[] {
    if (this.cachedVersion !== this.topo.version) {
      const views: NodeView[] = [];
      const now = Date.now();
      for (const n of this.topo.replicas) {
        n.view.available = n.breaker.peek(now);
        views.push(n.view);
      }
      // (the app's zone first, as chooseRead's replica pick does: the fast path must not bypass it)
      this.cachedCands = inZone(eligibleReplicas(views, this.rules), this.rules.zone);
      this.cachedVersion = this.topo.version;
    }
    return this.cachedCands;
  }

  /** the fast path: default rules, nothing to wait for → a node, else null (take the slow path) */
  fastRead(): Node | null {
    if (this.rules.readPreference !== 'secondaryPreferred' && this.rules.readPreference !== 'secondary') return null;
    if (this.topo.warmUntil > 0 && Date.now() < this.topo.warmUntil) return null;
    const cands = this.readCandidates();
    if (cands.length === 0) return null;
    const v = balance(cands, this.rules.loadBalancing, 0, 0, this.bal, Math.random);
    return this.topo.nodes.get(v.id) ?? null;
  }

  private rulesFor(ctx: QueryContext | undefined, minLsn: number | null): ReadRules {
    if (!ctx && minLsn === null) return this.rules;
    return {
      ...this.rules,
      readPreference: ctx?.readPreference ?? this.rules.readPreference,
      maxLagMs: ctx?.maxLagMs ?? this.rules.maxLagMs,
      maxLagBytes: ctx?.maxLagBytes ?? this.rules.maxLagBytes,
      preferredNode: ctx?.preferredNode,
      minLsn,
    };
  }

  /** the slow path: every rule, read-your-writes (with one quick replay check), overrides */
  async slowRead(ctx: QueryContext | undefined, exclude: Node | null, holdUntil?: number): Promise<Node> {
    const topo = this.topo;
    if (!topo.table && !topo.discovered) await this.ready();
    if (ctx?.requiresConsistency) return this.writeNode();
    const now = Date.now();
    const scope = this.scope();
    let minLsn = scope ? scope.required(now) : null;
    const views: NodeView[] = [];
    for (const n of topo.replicas) {
      n.view.available = n !== exclude && n.breaker.peek(now);
      views.push(n.view);
    }
    if (minLsn !== null && scope) {
      // GitLab: the mark is dropped once every replica has caught up
      const elig = eligibleReplicas(views, this.rules);
      if (elig.length > 0 && elig.every((r) => r.replayLsn !== null && r.replayLsn >= minLsn!)) {
        scope.clear();
        minLsn = null;
      }
    }
    const p = topo.usablePrimary();
    const pv = p && p !== exclude ? p.view : null;
    if (pv) pv.available = true;
    const rules = this.rulesFor(ctx, minLsn);
    const choice = chooseRead(pv, views, rules, now, this.bal, Math.random);
    if (choice.node) return topo.nodes.get(choice.node.id) ?? this.writeNode();
    // read-your-writes: one quick check of the least lagging replica before the primary
    if (choice.lagging.length > 0 && minLsn !== null) {
      const best = [...choice.lagging].sort((a, b) => (b.replayLsn ?? -1) - (a.replayLsn ?? -1))[0]!;
      const n = topo.nodes.get(best.id);
      const version = topo.version;
      if (n) {
        const lsn = await replayCheck(n);
        // a table that came in meanwhile may have retired `n` or the primary: choose again on it
        if (topo.version !== version) return this.slowRead(ctx, exclude, holdUntil);
        if (lsn !== null && lsn >= minLsn) return n;
      }
      if (pv) return p!;
    }
    // nothing qualifies now (a failover or switchover in flight): hold the read for the next table
    if (holdUntil === undefined) holdUntil = Date.now() + this.o.holdWritesMs;
    if (Date.now() < holdUntil && !topo.closed) {
      if (topo.stale) void topo.discover();
      await topo.nextChange(Math.min(250, holdUntil - Date.now()));
      return this.slowRead(ctx, exclude, holdUntil);
    }
    if (rules.readPreference === 'secondary') throw new NoReplicaError(`cluster ${this.o.cluster}: ${choice.why}`);
    throw new NoPrimaryError(`cluster ${this.o.cluster}: ${choice.why}`);
  }

  /** the primary now, or after a wait of up to holdWritesMs (failover, switchover, draining) */
  writeNode(): Node | Promise<Node> {
    const p = this.topo.usablePrimary();
    if (p) return p;
    return this.waitForPrimary();
  }

  private async waitForPrimary(): Promise<Node> {
    const topo = this.topo;
    if (!topo.table && !topo.discovered) await this.ready();
    const deadline = Date.now() + this.o.holdWritesMs;
    for (;;) {
      const p = topo.usablePrimary();
      if (p) return p;
      const left = deadline - Date.now();
      if (left <= 0 || topo.closed) break;
      if (topo.stale) void topo.discover();
      await topo.nextChange(Math.min(left, 250));
    }
    const t = topo.table;
    const cur = topo.primary;
    const why = cur?.view.draining ? `primary ${cur.id} is draining (switchover) and no new primary was named` : cur && !cur.breaker.peek(Date.now()) ? `primary ${cur.id}: circuit open` : t && !t.writable ? 'the routing table has no writable primary (failover in progress?)' : 'no primary known';
    throw new NoPrimaryError(`cluster ${this.o.cluster}: ${why} after holding the write ${this.o.holdWritesMs} ms`);
  }
}

/** the replica's replay LSN now (quick; null when it does not answer) */
async function replayCheck(n: Node): Promise<number | null> {
  try {
    const r = await n.pool.query<{ lsn: string | null }>({ text: 'SELECT pg_last_wal_replay_lsn()::text AS lsn', query_timeout: 500 } as pg.QueryConfig);
    const lsn = parseLsn(r.rows[0]?.lsn);
    if (lsn !== null && (n.view.replayLsn === null || lsn > n.view.replayLsn)) n.view.replayLsn = lsn;
    return lsn;
  } catch {
    return null;
  }
}
