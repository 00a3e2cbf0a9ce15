/**
 * Pinned sessions: a connection leased from one node for a transaction or a client from
 * `connect()`. Taking the lease (and its first statement, BEGIN) is retried on the node
 * the next table names, since nothing has run yet; a lease on a draining or departed
 * node is released after `drainTimeoutMs`.
 *
 * `RoutedClient` is the client `connect()` hands out, a pg.PoolClient look-alike: a lazy
 * one routes its reads like the pool until a write, BEGIN or SET pins it to the primary.
 */
import { EventEmitter } from 'node:events';
import pg from 'pg';
import { parseQueryArgs, settle } from './args.js';
import { ClientError, isNodeFailure, isPoolEnded, provesNotRun } from './errors.js';
import type { Emitter } from './events.js';
import { TX_CONTROL, TX_END, type Executor } from './execute.js';
import type { Node } from './node.js';
import type { QueryContext, ResolvedOptions } from './options.js';
import type { Router } from './router.js';
import type { Topology } from './topology.js';

const BEGIN = /^\s*(begin|start\s+transaction)\b/i;

export class Sessions {
  constructor(
    private readonly o: ResolvedOptions,
    private readonly topo: Topology,
    private readonly router: Router,
    readonly exec: Executor,
    private readonly events: Emitter,
  ) {}

  /** A pinned connection on the primary (or a replica), with `first` (BEGIN …) run on it. */
  async lease(role: 'primary' | 'replica', first?: string): Promise<{ node: Node; client: pg.PoolClient; result?: pg.QueryResult }> {
    // nothing has run until `first` (BEGIN) succeeds: a node failure here is retried on
    // the node the next table names, for up to holdWritesMs
    const deadline = Date.now() + this.o.holdWritesMs;
    let exclude: Node | null = null;
    for (;;) {
      const n: Node = role === 'primary' ? await this.router.writeNode() : await this.router.slowRead({ type: 'read' }, exclude);
      let got: pg.PoolClient | null = null;
      try {
        const client = await n.checkout();
        got = client;
        // the node left the table while the lease waited for a connection: nothing ran, choose again
        if (n.removed && !this.topo.closed && Date.now() < deadline) {
          client.release();
          got = null;
          continue;
        }
        const result = first === undefined ? undefined : await client.query(first);
        n.leased.add(client);
        return { node: n, client, result };
      } catch (err) {
        got?.release(err as Error);
        // the node left the table after it was chosen (its pool closed): choose again
        if (isPoolEnded(err) && n.removed && !this.topo.closed && Date.now() < deadline) continue;
        if (!isNodeFailure(err) || Date.now() >= deadline || this.topo.closed) throw err;
        this.exec.nodeFailed(n, err as Error);
        this.exec.retries++;
        exclude = n;
        if (role === 'primary') await this.topo.whilePrimary(n, deadline);
      }
    }
  }

  unlease(n: Node, client: pg.PoolClient, err?: Error | boolean): void {
    if (!n.leased.delete(client)) return;
    client.release(err);
    this.events.emit('release', err instanceof Error ? err : undefined, client);
  }

  /** BEGIN, `fn(client)`, COMMIT (ROLLBACK on a throw); the WAL position is recorded after COMMIT. */
  async transaction<T>(fn: (client: pg.PoolClient) => Promise<T>, opts: { readOnly?: boolean; isolation?: 'read committed' | 'repeatable read' | 'serializable' }): Promise<T> {
    const kind = opts.readOnly ? 'read' : 'write';
    const { node, client } = await this.lease(opts.readOnly ? 'replica' : 'primary', `BEGIN${opts.isolation ? ` ISOLATION LEVEL ${opts.isolation.toUpperCase()}` : ''}${opts.readOnly ? ' READ ONLY' : ''}`);
    const t0 = this.exec.begin(node);
    let broken: Error | undefined;
    try {
      let out: T;
      try {
        out = await fn(client);
      } catch (err) {
        await client.query('ROLLBACK').catch((e: Error) => (broken = e));
        throw err;
      }
      await client.query('COMMIT');
      if (!opts.readOnly) await this.exec.recordWrite(client);
      this.exec.end(node, kind, t0, null);
      return out;
    } catch (err) {
      if (isNodeFailure(err)) broken = err as Error;
      this.exec.end(node, kind, -1, err as Error);
      throw err;
    } finally {
      this.unlease(node, client, broken);
    }
  }

  /** A client for connect(): lazy (routed until pinned), pinned to the primary, or read-only on a replica. */
  async checkout(readOnly: boolean): Promise<pg.PoolClient> {
    if (this.topo.closed) throw new ClientError('POOL_ENDED', 'ReplicatedPool: connect after end()');
    const client = new RoutedClient(this, readOnly ? 'replica' : this.o.connectPinning === 'primary' ? 'primary' : 'lazy');
    if (readOnly || this.o.connectPinning === 'primary') await client.bind();
    this.events.emit('acquire', client);
    return client as unknown as pg.PoolClient;
  }
}

export class RoutedClient extends EventEmitter {
  private node: Node | null = null;
  private client: pg.PoolClient | null = null;
  private inTx = false;
  private wrote = false;
  private released = false;

  constructor(
    private readonly s: Sessions,
    private readonly mode: 'lazy' | 'primary' | 'replica',
  ) {
    super();
  }

  async bind(): Promise<pg.PoolClient> {
    if (this.client) return this.client;
    const { node, client } = await this.s.lease(this.mode === 'replica' ? 'replica' : 'primary');
    this.pin(node, client);
    return client;
  }

  private pin(node: Node, client: pg.PoolClient): void {
    this.node = node;
    this.client = client;
    client.on('error', this.forward);
  }

  private readonly forward = (err: Error): void => {
    if (this.listenerCount('error') > 0) this.emit('error', err);
  };

  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  query(...args: any[]): any {
    const q = parseQueryArgs(args, 'client');
    if (q.kind === 'submittable') {
      // cursors and streams need the connection itself
      if (!this.client) throw new ClientError('BAD_OPTION', 'a streaming query needs a pinned client: connect({ readOnly: true }) or run a statement that pins it first');
      return this.client.query(q.submittable);
    }
    if (q.kind === 'invalid') return settle(Promise.reject(q.error), q.cb);
    return settle(this.run(q.query, q.values, q.route), q.cb);
  }

  private async run(q: string | pg.QueryConfig, values: unknown[] | undefined, route: QueryContext | undefined): Promise<pg.QueryResult> {
    if (this.released) throw new Error('switchyard: query on a released client');
    const exec = this.s.exec;
    const text = typeof q === 'string' ? q : q.text;
    if (!this.client && this.mode === 'lazy' && exec.classify(text, route) === 'read') return exec.route(q, values, route);
    const isTxControl = TX_CONTROL.test(text);
    const kind = this.mode === 'replica' ? 'read' : exec.classify(text, undefined);
    if (!this.client && BEGIN.test(text)) {
      // BEGIN opens the pinned session: taken with the connection, retried on the next primary if the node fails
      const { node, client, result } = await this.s.lease(this.mode === 'replica' ? 'replica' : 'primary', text);
      this.pin(node, client);
      this.inTx = true;
      exec.end(node, kind, exec.begin(node), null);
      return result!;
    }
    const fresh = !this.client;
    const client = await this.bind();
    const n = this.node!;
    const t0 = exec.begin(n);
    let res: pg.QueryResult;
    try {
      res = await client.query(q as string, values);
    } catch (err) {
      exec.end(n, kind, -1, err as Error);
      // the first statement of a new pinned session never reached the server: once more, on a new connection
      if (!fresh || !provesNotRun(err)) throw err;
      client.off('error', this.forward);
      this.s.unlease(n, client, err as Error);
      this.client = null;
      this.node = null;
      return this.run(q, values, route);
    }
    exec.end(n, kind, t0, null);
    if (/^\s*(begin|start)\b/i.test(text)) this.inTx = true;
    else if (!isTxControl && kind === 'write') this.wrote = true;
    if (this.mode !== 'replica' && this.wrote) {
      if (TX_END.test(text)) {
        this.inTx = false;
        this.wrote = false;
        await exec.recordWrite(client);
      } else if (!this.inTx) {
        this.wrote = false;
        await exec.recordWrite(client);
      }
    } else if (TX_END.test(text)) this.inTx = false;
    return res;
  }

  release(err?: Error | boolean): void {
    if (this.released) return;
    this.released = true;
    if (this.client && this.node) {
      this.client.off('error', this.forward);
      this.s.unlease(this.node, this.client, err);
    }
  }

  escapeIdentifier(s: string): string {
    return pg.escapeIdentifier(s);
  }

  escapeLiteral(s: string): string {
    return pg.escapeLiteral(s);
  }

  /** node id this client is pinned to (null: not pinned yet) */
  get nodeId(): string | null {
    return this.node?.id ?? null;
  }
}
