/**
 * The Redis engine's actions. Each is idempotent: running it twice leaves the node as
 * running it once does, so an at-least-once job can carry it.
 *
 *   promote      REPLICAOF NO ONE                  (replica → master, keeps its data)
 *   follow       REPLICAOF host port               (re-point / rejoin as a replica)
 *   fence        CLIENT PAUSE <ms> WRITE, renewed  (a deposed or isolated master refuses writes)
 *   unfence      CLIENT UNPAUSE
 *   switchover   FAILOVER TO host port (6.2+), or: pause writes, wait for the offset, promote, re-point
 */
import { RedisConn, RedisConnError, type RedisAddress, type Reply } from './conn.js';
import { lossBytes, parseReplication, type Replication } from './info.js';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export class RedisActionError extends Error {
  constructor(
    readonly code: 'REDIS_PROMOTE_FAILED' | 'REDIS_FOLLOW_FAILED' | 'REDIS_SWITCHOVER_TIMEOUT' | 'REDIS_SWITCHOVER_FAILED' | 'REDIS_CATCHUP_TIMEOUT',
    message: string,
  ) {
    super(message);
  }
}

async function withConn<T>(address: RedisAddress, timeoutMs: number, fn: (c: RedisConn) => Promise<T>): Promise<T> {
  const conn = await RedisConn.connect(address, timeoutMs);
  try {
    return await fn(conn);
  } finally {
    conn.close();
  }
}

export async function readReplication(conn: RedisConn): Promise<Replication> {
  const text = await conn.call('INFO', 'replication');
  if (typeof text !== 'string') throw new RedisConnError('EPROTO', 'INFO replication did not answer a string');
  return parseReplication(text);
}

export interface PromoteResult {
  /** the node's history and offset just before REPLICAOF NO ONE: what it had of the old master */
  before: { replid: string; offset: number; role: 'master' | 'replica' };
  /** its new history after promotion */
  after: { replid: string; offset: number };
  alreadyMaster: boolean;
}

/** REPLICAOF NO ONE; a master already is one (idempotent). Reports the position at promotion. */
export function promote(address: RedisAddress, timeoutMs = 2_000): Promise<PromoteResult> {
  return withConn(address, timeoutMs, async (c) => {
    const before = await readReplication(c);
    if (before.role === 'master') {
      return { before: { replid: before.replid, offset: before.offset, role: 'master' }, after: { replid: before.replid, offset: before.offset }, alreadyMaster: true };
    }
    const r = await c.call('REPLICAOF', 'NO', 'ONE');
    if (r !== 'OK') throw new RedisActionError('REDIS_PROMOTE_FAILED', `REPLICAOF NO ONE on ${address.host}:${address.port} answered ${JSON.stringify(r)}`);
    const after = await readReplication(c);
    if (after.role !== 'master') throw new RedisActionError('REDIS_PROMOTE_FAILED', `${address.host}:${address.port} still reports role ${after.role} after REPLICAOF NO ONE`);
    return { before: { replid: before.replid, offset: before.offset, role: 'replica' }, after: { replid: after.replid, offset: after.offset }, alreadyMaster: false };
  });
}

/** REPLICAOF host port; a no-op when the node already follows that master. */
export function follow(address: RedisAddress, master: { host: string; port: number }, timeoutMs = 2_000): Promise<{ changed: boolean }> {
  return withConn(address, timeoutMs, async (c) => {
    const now = await readReplication(c);
    if (now.role === 'replica' && now.masterHost === master.host && now.masterPort === master.port) return { changed: false };
    const r = await c.call('REPLICAOF', master.host, master.port);
    if (typeof r !== 'string' || !r.startsWith('OK')) throw new RedisActionError('REDIS_FOLLOW_FAILED', `REPLICAOF ${master.host} ${master.port} on ${address.host}:${address.port} answered ${JSON.stringify(r)}`);
    return { changed: true };
  });
}

/** CLIENT PAUSE <ms> WRITE: writes block (they are not refused: they wait) until it lapses or UNPAUSE. */
export async function pauseWrites(conn: RedisConn, ms: number): Promise<void> {
  await conn.call('CLIENT', 'PAUSE', Math.max(1, Math.round(ms)), 'WRITE');
}

/** min-replicas-to-write: with n > 0 a master refuses writes (NOREPLICAS) unless n replicas ack within max-lag. */
export async function setMinReplicasToWrite(address: RedisAddress, n: number, maxLagSeconds = 10, timeoutMs = 2_000): Promise<void> {
  await withConn(address, timeoutMs, async (c) => {
    await c.call('CONFIG', 'SET', 'min-replicas-max-lag', maxLagSeconds);
    await c.call('CONFIG', 'SET', 'min-replicas-to-write', n);
  });
}

/**
 * Fences a master: `CLIENT PAUSE <leaseMs> WRITE`, renewed every `leaseMs / 3` while
 * the fence lasts. A pause that is not renewed lapses by itself, so a fencer that dies
 * leaves the node writable again only after `leaseMs` (and the agent that owns it is
 * then dead too, which the coordinators see). `onFrozen` is called when the server does
 * not answer a renewal: a frozen server cannot be paused, only killed.
 */
export class Fencer {
  private timer: NodeJS.Timeout | null = null;
  private conn: RedisConn | null = null;
  private active = false;
  private renewing: Promise<void> = Promise.resolve();
  /** renewals that got an answer */
  renewals = 0;

  constructor(
    private readonly address: RedisAddress,
    private readonly opts: { leaseMs?: number; timeoutMs?: number; onFrozen?: (err: Error) => void } = {},
  ) {}

  get fenced(): boolean {
    return this.active;
  }

  private get leaseMs(): number {
    return this.opts.leaseMs ?? 3_000;
  }

  /** Pause writes now (resolves once the server has accepted the first pause) and keep renewing. */
  async fence(): Promise<void> {
    this.active = true;
    await this.renew();
    if (this.timer === null && this.active) {
      this.timer = setInterval(() => {
        this.renewing = this.renew().catch(() => {});
      }, Math.max(50, Math.floor(this.leaseMs / 3)));
      this.timer.unref();
    }
  }

  /** Stop renewing and lift the pause (CLIENT UNPAUSE). */
  async unfence(): Promise<void> {
    this.active = false;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.renewing;
    try {
      const c = await this.connection();
      await c.call('CLIENT', 'UNPAUSE');
    } finally {
      this.drop();
    }
  }

  /** Stop renewing without lifting the pause (it lapses by itself): for shutdown. */
  stop(): void {
    this.active = false;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.drop();
  }

  private async renew(): Promise<void> {
    if (!this.active) return;
    try {
      const c = await this.connection();
      await pauseWrites(c, this.leaseMs);
      this.renewals++;
    } catch (err) {
      this.drop();
      if ((err as RedisConnError).code === 'ETIMEDOUT') this.opts.onFrozen?.(err as Error);
      throw err;
    }
  }

  private async connection(): Promise<RedisConn> {
    if (this.conn && !this.conn.closed) return this.conn;
    this.conn = await RedisConn.connect(this.address, this.opts.timeoutMs ?? 1_000);
    return this.conn;
  }

  private drop(): void {
    this.conn?.close();
    this.conn = null;
  }
}

/** Wait until `replica` has applied `offset` of history `replid` (its slave_repl_offset). */
export async function waitForOffset(replica: RedisAddress, replid: string, offset: number, timeoutMs: number): Promise<Replication> {
  const deadline = Date.now() + timeoutMs;
  return withConn(replica, Math.min(timeoutMs, 2_000), async (c) => {
    for (;;) {
      const r = await readReplication(c);
      if (r.replid === replid && r.offset >= offset) return r;
      if (Date.now() >= deadline) throw new RedisActionError('REDIS_CATCHUP_TIMEOUT', `${replica.host}:${replica.port} reached offset ${r.offset} of ${r.replid.slice(0, 8)}, not ${offset} of ${replid.slice(0, 8)}, within ${timeoutMs} ms`);
      await sleep(5);
    }
  });
}

export interface SwitchoverResult {
  method: 'FAILOVER' | 'manual';
  /** the old master's offset when writes stopped; the target had all of it */
  offset: number;
  durationMs: number;
}

/**
 * Planned switchover from `master` to `target` with zero acknowledged writes lost.
 * FAILOVER TO host port (6.2+): the master pauses writes, waits for the target to
 * catch up, hands over with PSYNC FAILOVER and becomes its replica. Without FAILOVER:
 * pause writes, wait for the offset, promote, re-point the old master.
 * The other replicas are re-pointed by the caller (`follow`).
 */
export async function switchover(
  master: RedisAddress,
  target: { host: string; port: number; password?: string | undefined },
  opts: { timeoutMs?: number; useFailoverCommand?: boolean } = {},
): Promise<SwitchoverResult> {
  const timeoutMs = opts.timeoutMs ?? 5_000;
  const t0 = Date.now();
  if (opts.useFailoverCommand !== false) {
    try {
      return await withConn(master, 2_000, async (c) => {
        const before = await readReplication(c);
        await c.call('FAILOVER', 'TO', target.host, target.port, 'TIMEOUT', timeoutMs);
        for (;;) {
          const r = await readReplication(c);
          if (r.role === 'replica' && r.failoverState === 'no-failover') return { method: 'FAILOVER' as const, offset: r.offset, durationMs: Date.now() - t0 };
          if (r.role === 'master' && r.failoverState === 'no-failover' && Date.now() - t0 > 50) {
            throw new RedisActionError('REDIS_SWITCHOVER_FAILED', `FAILOVER TO ${target.host}:${target.port} was aborted (the master kept its role at offset ${r.offset}, from ${before.offset})`);
          }
          if (Date.now() - t0 > timeoutMs + 2_000) throw new RedisActionError('REDIS_SWITCHOVER_TIMEOUT', `FAILOVER TO ${target.host}:${target.port} did not finish within ${timeoutMs} ms`);
          await sleep(5);
        }
      });
    } catch (err) {
      // "ERR unknown command" on Redis < 6.2: fall back to the manual steps
      if (!/unknown command|unknown subcommand/i.test((err as Error).message)) throw err;
    }
  }
  return withConn(master, 2_000, async (c) => {
    await pauseWrites(c, timeoutMs + 1_000);
    try {
      const r = await readReplication(c);
      await waitForOffset(target, r.replid, r.masterOffset, timeoutMs);
      await promote(target);
      await c.call('REPLICAOF', target.host, target.port);
      return { method: 'manual' as const, offset: r.masterOffset, durationMs: Date.now() - t0 };
    } finally {
      await c.call('CLIENT', 'UNPAUSE').catch(() => {});
    }
  });
}

/** Measured loss of a failover: the old master's last offset beyond what the promoted replica had. */
export function measuredLoss(oldMaster: { replid: string; offset: number } | null, promoted: PromoteResult): number | null {
  if (!oldMaster) return null;
  return lossBytes(oldMaster, { replid: promoted.before.replid, offset: promoted.before.offset });
}

/** Run one command on a node (for callers that need something the actions do not cover). */
export function command(address: RedisAddress, timeoutMs: number, ...args: Array<string | number>): Promise<Reply> {
  return withConn(address, timeoutMs, (c) => c.call(...args));
}
