/**
 * The leader's part of one cluster's runtime: while it holds the lease, decide (pure)
 * and carry the decisions out, in order: the fenced journal append, the routing table,
 * then the jobs (BullMQ); snapshots of the fold. A deposed leader's appends are refused
 * by the Lua script that checks the lease first.
 *
 *   leader: decide(now) ──▶ fenced append ──▶ routing table ──▶ jobs (BullMQ)
 */
import { performance } from 'node:perf_hooks';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { redisTimeMs } from '../src/bus/clock.js';
import { appendFenced } from '../src/bus/journal.js';
import { jobIdFor } from '../src/bus/keys.js';
import { Lease, leaseConnectionOptions } from '../src/bus/lease.js';
import { LeaseLostError, scripted } from '../src/bus/scripts.js';
import { publishedPrimary } from '../src/core/agent-rules.js';
import { decide, type Decision, type JobSpec } from '../src/core/decide.js';
import { evolve } from '../src/core/evolve.js';
import { electsItself } from '../src/engines/traits.js';
import { SNAPSHOT_EVERY, toSnapshot } from '../src/core/snapshot.js';
import type { JournalDraft, JournalEntry } from '../src/events/journal.js';
import { ClusterFollower, type ClusterRuntimeOptions } from './follower.js';

/** at most this often, a leader waiting on a node's report asks its agent to probe now */
const PROBE_ASK_EVERY_MS = 25;

export class ClusterLeader extends ClusterFollower {
  readonly lease: Lease;
  /** the lease's own connection: every call bounded by a commandTimeout, never behind a stream read */
  protected readonly leaseConn: Redis;
  protected readonly queues = new Map<string, Queue>();
  protected deciding: Promise<void> | null = null;
  protected decideAgain = false;
  protected chained = 0;
  protected lastPublished = '';
  /** set while a new leader reads the journal to its end: it decides nothing until then */
  protected catchingUp = false;

  constructor(opts: ClusterRuntimeOptions) {
    super(opts);
    this.leaseConn = new Redis(opts.redisUrl, { ...opts.redisOptions, ...leaseConnectionOptions(opts.leaseTtlMs) });
    this.leaseConn.on('error', (err) => this.log.debug({ err: err.message }, 'redis error'));
    this.lease = new Lease(this.leaseConn, this.k, opts.coordinatorId, opts.leaseTtlMs);
    this.lease.renewEveryMs = opts.leaseRenewMs;
  }

  get isLeader(): boolean {
    return this.lease.isLeader();
  }

  /** Run decide soon (coalesced; one pass at a time). */
  override kick(): void {
    if (this.stopping || !this.ready || this.catchingUp || !this.lease.isLeader()) return;
    if (this.deciding) {
      this.decideAgain = true;
      return;
    }
    this.deciding = this.decidePass()
      .catch((err: unknown) => {
        if (err instanceof LeaseLostError) {
          this.log.warn('append refused: the lease is no longer ours');
          this.lease.drop();
        } else this.log.error({ err: (err as Error).message }, 'decide pass failed');
      })
      .finally(() => {
        this.deciding = null;
        if (this.decideAgain) {
          this.decideAgain = false;
          this.kick();
        }
      });
  }

  protected async decidePass(): Promise<void> {
    const rejects = this.pendingRejects.splice(0);
    const decisions: Decision[] = rejects.map((entry) => ({ type: 'append', entry }));
    const fold = this.lastFold;
    decisions.push(...decide(this.state, this.clock.now(), this.settings));
    if (decisions.length > 0) {
      await this.act(decisions, { decidedAt: Date.now(), foldedAt: fold?.at ?? null, obsId: fold?.obsId ?? null });
      // what was just journaled may enable the next step at once; decide quiesces, and
      // a bound keeps a rule that does not from spinning (the tick goes on anyway)
      if (++this.chained < 8) this.decideAgain = true;
    } else this.chained = 0;
    await this.publishRouting();
    await this.askForProbe();
  }

  protected probeAskedAt = 0;

  /**
   * A switchover catching up waits on the target's next report that it has the old
   * primary's last LSN: ask its agent to probe now instead of at its next interval.
   */
  protected async askForProbe(): Promise<void> {
    const op = this.state.operation;
    if (!op || op.phase !== 'catching-up' || !this.lease.isLeader()) return;
    const now = performance.now();
    if (now - this.probeAskedAt < PROBE_ASK_EVERY_MS) return;
    this.probeAskedAt = now;
    await this.redis.publish(this.k.probe, op.to);
  }

  /**
   * Carry decisions out: every append of the pass in one fenced script call, in order,
   * then the routing table (clients wait on it to write again), then the jobs, in order.
   * A job is sent only once the entry that asked for it is journaled; a pass that ends
   * an operation (promotion.succeeded, follow requests, failover.completed) no longer
   * waits for the follow jobs to be queued before the new primary is routed.
   */
  protected async act(decisions: Decision[], when: { decidedAt: number; foldedAt: number | null; obsId: string | null } = { decidedAt: Date.now(), foldedAt: null, obsId: null }): Promise<void> {
    let batch: JournalEntry[] = [];
    const flush = async (): Promise<void> => {
      if (batch.length === 0) return;
      const token = this.lease.token;
      if (!token || !this.lease.isLeader()) throw new LeaseLostError('lease deadline passed');
      const entries = batch;
      batch = [];
      const ids = await appendFenced(this.redis, this.k, token, entries);
      const at = Date.now();
      entries.forEach((entry, i) => {
        // the job an entry asks for carries the entry's id: an agent refuses one older than the newest it acted on
        const jobId = (entry as { jobId?: string }).jobId;
        if (jobId && ids[i]) this.askedBy.set(jobId, ids[i]);
        this.log.info({ type: entry.type, id: ids[i], ...summary(entry) }, 'journaled');
        if (TRACED.has(entry.type)) {
          const e = entry as { operationId?: string; node?: string };
          this.tracer.mark('journaled', { type: entry.type, logId: ids[i], operationId: e.operationId ?? null, node: e.node ?? null, ...when }, at);
        }
        this.state = evolve(this.state, { kind: 'journal', id: ids[i]!, entry });
        this.noteJournalFolded();
      });
      this.refreshTable();
      // a new routing table goes out before anything else this pass does (jobs to the
      // other nodes, a snapshot): clients wait on it to write again
      await this.publishRouting();
      this.sinceSnapshot += entries.length;
      if (this.sinceSnapshot >= SNAPSHOT_EVERY) await this.writeSnapshot();
    };
    const jobs: JobSpec[] = [];
    for (const d of decisions) {
      if (d.type === 'append') batch.push(this.complete(d.entry));
      else jobs.push(d.job);
    }
    await flush();
    for (const job of jobs) await this.sendJob(job);
  }

  /** Fill the envelope (and deterministic job ids) of a draft. */
  protected complete(draft: JournalDraft): JournalEntry {
    const epoch = this.lease.epoch;
    const d = { ...draft } as JournalDraft & { jobId?: string };
    if (d.type === 'promotion.requested') d.jobId = jobIdFor(epoch, d.operationId, 'promote', d.node);
    if (d.type === 'follow.requested') d.jobId = jobIdFor(epoch, d.operationId, d.action, d.node);
    if (d.type === 'demotion.requested') d.jobId = jobIdFor(epoch, d.operationId, electsItself(this.state.engine) ? 'switchover' : 'demote', d.node);
    if (d.type === 'unfence.requested') d.jobId = jobIdFor(epoch, d.operationId, 'unfence', d.node);
    if (d.type === 'restart.requested') d.jobId = jobIdFor(epoch, d.operationId, 'restart', d.node);
    if (d.type === 'fence.requested') d.jobId = jobIdFor(epoch, d.operationId, 'fence', d.node);
    if (d.type === 'sync.requested') d.jobId = jobIdFor(epoch, d.operationId, 'sync', d.node);
    return { ...d, v: 1, at: this.clock.now(), epoch };
  }

  protected queue(node: string): Queue {
    let q = this.queues.get(node);
    if (!q) {
      q = new Queue(node, { connection: this.redis, prefix: this.k.queuePrefix });
      q.on('error', (err) => this.log.warn({ err: err.message, node }, 'queue error'));
      this.queues.set(node, q);
    }
    return q;
  }

  /** job id → stream id of the journal entry that asked for it (this pass's appends) */
  protected readonly askedBy = new Map<string, string>();

  protected async sendJob(job: JobSpec): Promise<void> {
    if (!this.lease.isLeader()) throw new LeaseLostError('lease deadline passed');
    const epoch = this.lease.epoch;
    const jobId = jobIdFor(epoch, job.operationId, job.action, job.node);
    const journalId = this.askedBy.get(jobId);
    this.askedBy.delete(jobId);
    // a job delivered late (BullMQ redelivers; an agent comes back) must not act on an
    // operation that is over: it expires when the decision that sent it would be retried
    // (a promote job may start only in the first half of its operation's promoteTimeoutMs:
    // one that starts has the other half to finish before the operation may end unconfirmed)
    const ttl = job.action === 'follow' || job.action === 'rejoin' || job.action === 'sync' ? this.settings.jobRetryMs : job.action === 'promote' ? Math.floor(this.settings.promoteTimeoutMs / 2) : this.settings.promoteTimeoutMs;
    // Redis's clock, which the agent reads too: hosts' clocks need not agree
    const redisNow = await redisTimeMs(this.redis);
    await this.queue(job.node).add(
      job.action,
      { epoch, operationId: job.operationId, action: job.action, node: job.node, upstream: job.upstream, sync: job.sync, ...(job.freezeSecs !== undefined ? { freezeSecs: job.freezeSecs } : {}), expiresAt: redisNow + ttl, ...(journalId ? { journalId } : {}) },
      { jobId, attempts: 1, removeOnComplete: { count: 500 }, removeOnFail: { count: 500 } },
    );
    this.log.info({ jobId, node: job.node, action: job.action }, 'job sent');
    this.tracer.mark('job.sent', { jobId, node: job.node, action: job.action, operationId: job.operationId });
  }

  protected sinceSnapshot = 0;

  /** Store the folded journal (fenced: only the lease holder writes it). */
  async writeSnapshot(): Promise<boolean> {
    const token = this.lease.token;
    if (!token || !this.lease.isLeader()) return false;
    const r = await scripted(this.redis).sySnapshot(this.k.leader, this.k.snapshot, token, JSON.stringify(toSnapshot(this.state)));
    if (r === 1) {
      this.sinceSnapshot = 0;
      this.log.info({ logId: this.state.logId }, 'snapshot written');
    }
    return r === 1;
  }

  protected async publishRouting(): Promise<void> {
    if (!this.lease.isLeader() || !this.lease.token) return;
    const json = JSON.stringify(this.table);
    // the journal's primary, and during a failover the node it deposed (its agent fences it at once)
    const p = publishedPrimary(this.state, { now: this.clock.now(), settings: this.settings });
    const primaryJson = p ? JSON.stringify(p) : '';
    const key = json + primaryJson;
    if (key === this.lastPublished) return;
    const r = await scripted(this.redis).syRouting(this.k.leader, this.k.routing, this.k.primary, this.lease.token, json, this.k.routingChannel, primaryJson);
    if (r === 1) {
      this.lastPublished = key;
      this.tracer.mark('routing.published', { generation: this.table.generation, primary: this.table.primary?.id ?? null, writable: this.table.writable });
    }
  }

}

/** journal entries whose timing the trace records (the steps of an operation) */
const TRACED = new Set<string>([
  'failover.started',
  'promotion.requested',
  'promotion.succeeded',
  'promotion.failed',
  'demotion.requested',
  'demotion.succeeded',
  'restart.requested',
  'failover.completed',
  'failover.blocked',
  'follow.requested',
]);

function summary(e: JournalEntry): Record<string, unknown> {
  const { type: _t, v: _v, at: _a, evidence: _e, ...rest } = e as JournalEntry & { evidence?: unknown };
  return rest;
}
