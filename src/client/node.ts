/**
 * One database node as the pool holds it: its own pg.Pool, its breaker, what the
 * selection rules see of it (`view`), and the sessions leased on it, which a drain
 * (switchover, the node leaving the table) gives a bounded time to finish.
 */
import pg from 'pg';
import { Breaker, type BreakerOptions } from './breaker.js';
import type { NodeView } from './select.js';

export class Node {
  readonly view: NodeView;
  readonly pool: pg.Pool;
  readonly breaker: Breaker;
  queries = 0;
  errors = 0;
  removed = false;
  /** clients checked out through connect() / transaction() */
  readonly leased = new Set<pg.PoolClient>();
  /** connections opened here so far, and how many of them predate the last connection-level failure */
  private opened = 0;
  private suspectUpTo = 0;
  private readonly born = new WeakMap<pg.Client, number>();
  private drainTimer: NodeJS.Timeout | null = null;
  private warming = false;
  /** the pool's end(), once asked for (it is asked for once) */
  private ending: Promise<void> | null = null;
  /** the node left the table: resolves when its pool has ended */
  private retiring: Promise<void> | null = null;
  /** a retirement still waiting for the pool to go quiet: end it now */
  private stopRetiring: (() => void) | null = null;

  constructor(
    readonly id: string,
    readonly host: string,
    readonly port: number,
    role: 'primary' | 'replica',
    config: pg.PoolConfig,
    breaker: BreakerOptions,
    now: number,
  ) {
    this.pool = new pg.Pool({ ...config, host, port });
    this.pool.on('connect', (c) => this.born.set(c, ++this.opened));
    this.breaker = new Breaker(breaker);
    this.view = { id, role, healthy: true, draining: false, zone: null, lagMs: null, lagBytes: null, replayLsn: null, joinedAt: now, inflight: 0, latencyMs: null, available: true, weight: 1 };
  }

  /**
   * A connection-level failure here (reset, terminated, refused): the connections opened
   * before it are likely dead too (a killed server closes them all, and the pool learns
   * of each only when its socket says so). checkout() does not hand them out again.
   */
  distrust(): void {
    this.suspectUpTo = this.opened;
  }

  /**
   * A connection for a write or a lease: never one opened before the last connection-level
   * failure (it is destroyed instead), so that a write after a crash meets a refused
   * connect, which proves it never ran and may go to the next primary, not a dead socket,
   * which proves nothing.
   */
  async checkout(): Promise<pg.PoolClient> {
    for (;;) {
      const c = await this.pool.connect();
      if ((this.born.get(c) ?? Infinity) > this.suspectUpTo) return c;
      c.release(true);
    }
  }

  /** Open one connection ahead of need (none is open yet), so the first statement needs no handshake. */
  warm(): void {
    if (this.removed || this.warming || this.pool.totalCount > 0 || this.pool.ending) return;
    this.warming = true;
    this.pool.connect().then(
      (c) => {
        this.warming = false;
        c.release();
      },
      () => {
        // the node is down or refusing: the statements that need it will say so
        this.warming = false;
      },
    );
  }

  /** Leased sessions get `ms` to finish, then they are released with an error. */
  startDrain(ms: number): void {
    if (this.drainTimer || this.leased.size === 0) return;
    this.drainTimer = setTimeout(() => {
      this.drainTimer = null;
      this.cutLeases(ms);
    }, ms);
    this.drainTimer.unref();
  }

  /** the sessions still leased here are released with an error (their connections destroyed) */
  private cutLeases(ms: number): void {
    for (const c of this.leased) c.release(new Error(`switchyard: node ${this.id} drained after ${ms} ms`));
    this.leased.clear();
  }

  /** The drain is called off (the node is back in use); a removed node keeps draining. */
  stopDrain(): void {
    if (this.drainTimer && !this.removed) {
      clearTimeout(this.drainTimer);
      this.drainTimer = null;
    }
  }

  /** no request waits for a connection and none is checked out (or being opened for one) */
  get quiet(): boolean {
    return this.pool.waitingCount === 0 && this.pool.totalCount === this.pool.idleCount;
  }

  /**
   * The node left the table. Nothing new is routed here (the caller saw to that), but
   * what was sent before is served: leases get `ms` to finish (then they are released
   * with an error), and the pool is closed once it is quiet, or after `ms` anyway.
   * (Ending a pg.Pool at once would leave the requests queued for a connection
   * unanswered until connectionTimeoutMillis.) Resolves when the pool has ended.
   */
  retire(ms: number): Promise<void> {
    this.removed = true;
    this.startDrain(ms);
    if (this.ending) return this.ending;
    this.retiring ??= new Promise<void>((resolve) => {
      let done = false;
      const check = (): void => {
        if (!done && this.quiet) finish();
      };
      // 'release' and 'remove' come before the pool's own bookkeeping: look right after it;
      // a queued request timing out or a failed connect says nothing: the poll sees those
      const soon = (): void => {
        setImmediate(check);
      };
      const poll = setInterval(check, 50);
      const deadline = setTimeout(() => {
        // a lease served after the node left (it was queued before) gets no more time than the others
        this.cutLeases(ms);
        finish();
      }, ms);
      poll.unref();
      deadline.unref();
      const finish = (): void => {
        done = true;
        clearInterval(poll);
        clearTimeout(deadline);
        this.pool.off('release', soon);
        this.pool.off('remove', soon);
        this.stopRetiring = null;
        void this.endPool().then(resolve);
      };
      this.stopRetiring = finish;
      this.pool.on('release', soon);
      this.pool.on('remove', soon);
      check();
    });
    return this.retiring;
  }

  private endPool(): Promise<void> {
    this.ending ??= this.pool.end().catch(() => {});
    return this.ending;
  }

  /** Release every lease and close the pool (a retirement still waiting closes it now). */
  async close(): Promise<void> {
    if (this.drainTimer) clearTimeout(this.drainTimer);
    this.drainTimer = null;
    for (const c of this.leased) c.release();
    this.leased.clear();
    this.stopRetiring?.();
    await this.endPool();
  }
}
