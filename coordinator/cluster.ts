/**
 * One cluster as one coordinator runs it: follow both streams into the pure fold
 * (follower.ts), hold (or wait for) the lease (here), and, while leader, decide and act
 * (leader.ts). Every instance keeps hot state and serves it; only the lease holder decides.
 *
 *   XREAD obs+log ──▶ evolve ──▶ state ──▶ routing projection ──▶ API, PUBLISH
 *                                  │
 *                          leader: decide(now) ──▶ fenced append ──▶ jobs (BullMQ)
 */
import type { LeaseOutcome } from '../src/bus/lease.js';
import { readJournal } from '../src/bus/journal.js';
import { connectRedis } from '../src/errors.js';
import { ClusterLeader } from './leader.js';

export type { ClusterRuntimeOptions } from './follower.js';

/** Published on the wake channel by a leader that has released its lease. */
const LEASE_RELEASED = 'lease-released';

export class ClusterRuntime extends ClusterLeader {
  private timers: NodeJS.Timeout[] = [];

  async start(): Promise<void> {
    await connectRedis(this.redis, this.opts.redisUrl);
    await connectRedis(this.reader, this.opts.redisUrl);
    await connectRedis(this.leaseConn, this.opts.redisUrl);
    await this.clock.sync();
    // the reader only listens for wake-ups; reads go through range-1 on the main connection
    this.reader.on('message', (_channel: string, message: string) => {
      // a leader leaving (SIGTERM) says so: contend at once instead of at the next renewal
      if (message === LEASE_RELEASED && !this.lease.isLeader()) this.lease.nudge();
      this.onWake();
    });
    await this.reader.subscribe(this.k.wake);
    await this.load();
    this.timers.push(setInterval(() => this.kick(), this.opts.tickMs));
    // the first attempt before start() returns; then one at a time, never overlapping
    let first: LeaseOutcome | null = null;
    try {
      first = await this.lease.tick();
      await this.onLease(first);
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'lease tick failed');
    }
    this.lease.keep((outcome, err) => {
      if (outcome) void this.onLease(outcome);
      else if (!this.stopping) this.log.warn({ err: err?.message }, 'lease tick failed');
    }, this.lease.nextDelayMs(first));
  }

  /* --------------------------------------------------------------- the lease */

  private async onLease(outcome: LeaseOutcome): Promise<void> {
    if (this.stopping) return;
    // re-sample Redis's clock, beside the renewal, never before it (a failure keeps the
    // last sample running on the monotonic clock)
    void this.clock.sync().catch(() => {});
    try {
      if (outcome === 'acquired') {
        this.log.info({ epoch: this.lease.epoch }, 'lease acquired: leading');
        // Read the journal to its end before the first append: the predecessor can append
        // no more (fenced), and an entry of ours with a higher id would make the fold skip
        // any of its entries not read yet.
        this.catchingUp = true;
        try {
          await this.catchUpJournal();
        } finally {
          this.catchingUp = false;
        }
        await this.act([{ type: 'append', entry: { type: 'leader.changed', coordinator: this.opts.coordinatorId } }]);
        this.lastPublished = '';
        this.kick();
      } else if (outcome === 'lost') {
        this.log.warn({ holder: this.lease.holder }, 'lease lost: following');
      }
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'lease tick failed');
    }
  }

  /** A new leader reads the journal to its end before its first append. */
  private async catchUpJournal(): Promise<void> {
    for (;;) {
      const batch = await readJournal(this.redis, this.k, this.state.logId, 1000);
      if (batch.length === 0) return;
      for (const r of batch) this.applyJournalRecord(r);
      this.refreshTable();
    }
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.lease.stopKeeping();
    for (const t of this.timers) clearInterval(t);
    await this.deciding?.catch(() => {});
    await this.writeSnapshot().catch(() => {});
    const held = this.lease.token !== null;
    await this.lease.release().catch(() => {});
    if (held) await this.redis.publish(this.k.wake, LEASE_RELEASED).catch(() => {});
    this.reader.disconnect();
    this.leaseConn.disconnect();
    this.onWake();
    await this.followLoop?.catch(() => {});
    for (const q of this.queues.values()) await q.close().catch(() => {});
    this.redis.disconnect();
  }
}
