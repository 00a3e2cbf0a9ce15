/**
 * One cluster as one coordinator runs it: follow both streams into the pure fold,
 * hold (or wait for) the lease, and, while leader, decide and act. Every instance
 * keeps hot state and serves it; only the lease holder decides.
 *
 *   XREAD obs+log ──▶ evolve ──▶ state ──▶ routing projection ──▶ API, PUBLISH
 *                                  │
 *                          leader: decide(now) ──▶ fenced append ──▶ jobs (BullMQ)
 */
import { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { appendFenced, readJournal, readStream, toRecords, type JournalRecord } from '../src/bus/journal.js';
import { jobIdFor, keys, type ClusterKeys } from '../src/bus/keys.js';
import { Lease } from '../src/bus/lease.js';
import { connectRedis } from '../src/errors.js';
import { redisTimeMs } from '../src/bus/clock.js';
import { LeaseLostError, scripted } from '../src/bus/scripts.js';
import { decide, type Decision, type JobSpec } from '../src/core/decide.js';
import { evolve } from '../src/core/evolve.js';
import { fromSnapshot, SNAPSHOT_EVERY, toSnapshot } from '../src/core/snapshot.js';
import { routingTable, type RoutingTable } from '../src/core/routing.js';
import { withDefaults, type Settings } from '../src/core/settings.js';
import { initialState, type ClusterState, type CoreEvent, type Engine } from '../src/core/state.js';
import type { JournalDraft, JournalEntry } from '../src/events/journal.js';
import { parseCommand, parseObsEntry } from '../src/events/parse.js';
import type { Command } from '../src/events/observation.js';

/** Slow poll of the streams, in case a writer does not PUBLISH its wake-up. */
const POLL_MS = 250;
/** A view not refreshed from Redis for this long is stale: it names no primary to anyone. */
const STALE_AFTER_MS = 2_000;

export interface ClusterRuntimeOptions {
  name: string;
  engine: Engine;
  settings?: Partial<Settings>;
  coordinatorId: string;
  redisUrl: string;
  leaseTtlMs: number;
  tickMs: number;
  log: Logger;
}

export class ClusterRuntime extends EventEmitter {
  state: ClusterState;
  table: RoutingTable;
  readonly settings: Settings;
  readonly k: ClusterKeys;
  readonly lease: Lease;
  private readonly redis: Redis;
  private readonly reader: Redis;
  private readonly queues = new Map<string, Queue>();
  private obsId = '$';
  private cmdId = '$';
  private stopping = false;
  private deciding: Promise<void> | null = null;
  private decideAgain = false;
  private chained = 0;
  private timers: NodeJS.Timeout[] = [];
  private followLoop: Promise<void> | null = null;
  private lastPublished = '';
  private log: Logger;
  ready = false;

  constructor(private readonly opts: ClusterRuntimeOptions) {
    super();
    this.setMaxListeners(0);
    this.log = opts.log.child({ cluster: opts.name });
    this.k = keys(opts.name);
    this.settings = withDefaults(opts.settings);
    this.state = initialState(opts.name, opts.engine);
    this.table = routingTable(this.state);
    this.redis = new Redis(opts.redisUrl, { maxRetriesPerRequest: 2, connectTimeout: 2000, lazyConnect: true });
    this.reader = new Redis(opts.redisUrl, { maxRetriesPerRequest: null, connectTimeout: 2000, lazyConnect: true });
    for (const r of [this.redis, this.reader]) r.on('error', (err) => this.log.debug({ err: err.message }, 'redis error'));
    this.lease = new Lease(this.redis, this.k, opts.coordinatorId, opts.leaseTtlMs);
  }

  get name(): string {
    return this.opts.name;
  }

  get isLeader(): boolean {
    return this.lease.isLeader();
  }

  async start(): Promise<void> {
    await connectRedis(this.redis, this.opts.redisUrl);
    await connectRedis(this.reader, this.opts.redisUrl);
    // the reader only listens for wake-ups; reads go through range-1 on the main connection
    this.reader.on('message', () => this.onWake());
    await this.reader.subscribe(this.k.wake);
    // the newest snapshot, the journal after it, then the newest observations
    const snap = await this.redis.get(this.k.snapshot);
    if (snap) {
      let parsed: unknown = null;
      try {
        parsed = JSON.parse(snap);
      } catch {
        // unreadable: fold the whole journal instead
      }
      const restored = fromSnapshot(parsed, this.opts.name);
      if (restored) {
        this.state = restored;
        this.log.info({ logId: restored.logId }, 'snapshot loaded');
      } else this.log.warn('snapshot unreadable or of another version: folding the whole journal');
    }
    for (;;) {
      const batch = await readJournal(this.redis, this.k, this.state.logId, 1000);
      if (batch.length === 0) break;
      for (const r of batch) this.applyJournalRecord(r);
    }
    const recent = await readStream(this.redis, this.k.obs, 'newest', 500);
    this.obsId = recent[0]?.[0] ?? '0-0';
    // commands: only new ones; an old command is either answered in the journal or stale
    const lastCmd = await readStream(this.redis, this.k.cmd, 'newest', 1);
    this.cmdId = lastCmd[0]?.[0] ?? '0-0';
    const now = Date.now();
    for (const [id, value] of recent.reverse()) this.applyObsEntry(id, value, now, false);
    this.refreshTable();
    this.ready = true;
    this.followLoop = this.follow();
    this.timers.push(setInterval(() => void this.leaseTick(), Math.max(100, Math.floor(this.opts.leaseTtlMs / 3))));
    this.timers.push(setInterval(() => this.kick(), this.opts.tickMs));
    await this.leaseTick();
  }

  /* ------------------------------------------------------------- following */

  /**
   * Follow the three streams. Reads go through range-1 (Lua), which never sends an
   * oversized entry; writers PUBLISH on sy:{c}:wake after appending, and a slow poll
   * covers a writer that does not (or a lost message).
   */
  private async follow(): Promise<void> {
    while (!this.stopping) {
      try {
        this.woken = false;
        // fresh as of when the read was sent: a reply held up by a pause says nothing newer
        const sentAt = performance.now();
        const [obs, log, cmd] = await Promise.all([
          readStream(this.redis, this.k.obs, this.obsId, 1000),
          readStream(this.redis, this.k.log, this.state.logId, 1000),
          readStream(this.redis, this.k.cmd, this.cmdId, 1000),
        ]);
        this.lastReadAt = sentAt;
        if (obs.length + log.length + cmd.length === 0) {
          if (!this.woken) await this.sleepUntilWoken(POLL_MS);
          continue;
        }
        const now = Date.now();
        for (const r of toRecords(log)) this.applyJournalRecord(r);
        for (const [id, value] of cmd) {
          this.cmdId = id;
          this.applyCommand(id, value, now);
        }
        for (const [id, value] of obs) {
          this.obsId = id;
          this.applyObsEntry(id, value, now, true);
        }
        this.refreshTable();
        this.kick();
      } catch (err) {
        if (this.stopping) return;
        this.log.warn({ err: (err as Error).message }, 'stream read failed; retrying');
        await sleep(200);
      }
    }
  }

  private lastReadAt = performance.now();

  /** Has it read the streams lately? A stale view must not route writes (the API answers 503). */
  get fresh(): boolean {
    return performance.now() - this.lastReadAt < STALE_AFTER_MS;
  }

  private woken = false;
  private wakeWaiter: (() => void) | null = null;

  private onWake(): void {
    this.woken = true;
    const w = this.wakeWaiter;
    this.wakeWaiter = null;
    w?.();
  }

  private sleepUntilWoken(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.wakeWaiter = null;
        resolve();
      }, ms);
      this.wakeWaiter = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  private applyJournalRecord(r: JournalRecord): void {
    if (r.entry) {
      this.state = evolve(this.state, { kind: 'journal', id: r.id, entry: r.entry });
    } else {
      // a journal entry we cannot read: skip it, move the cursor past it
      this.log.error({ id: r.id, reason: r.rejected }, 'unreadable journal entry skipped');
      this.state = { ...this.state, logId: r.id };
    }
  }

  private applyObsEntry(id: string, value: string, receivedAt: number, live: boolean): void {
    const p = parseObsEntry(value);
    if (!p.ok) {
      this.log.warn({ id, reason: p.reason }, 'observation rejected');
      if (live) this.pendingRejects.push({ type: 'entry.rejected', stream: this.k.obs, id, reason: p.reason });
      return;
    }
    const ev: CoreEvent = p.value.type === 'obs' ? { kind: 'obs', id, receivedAt, entry: p.value } : { kind: 'job.result', id, receivedAt, entry: p.value };
    this.state = evolve(this.state, ev);
  }

  private pendingRejects: JournalDraft[] = [];

  private applyCommand(id: string, value: string, receivedAt: number): void {
    const p = parseCommand(value);
    if (!p.ok) {
      this.log.warn({ id, reason: p.reason }, 'command rejected');
      this.pendingRejects.push({ type: 'entry.rejected', stream: this.k.cmd, id, reason: p.reason });
      return;
    }
    this.state = evolve(this.state, { kind: 'command', id, receivedAt, entry: p.value });
  }

  /** Queue an operator's command (any coordinator may; the leader carries it out). */
  async submit(command: Command): Promise<string> {
    const [[err, id]] = (await this.redis.multi().xadd(this.k.cmd, 'MAXLEN', '~', 1000, '*', 'e', JSON.stringify(command)).publish(this.k.wake, '1').exec())! as [[Error | null, string]];
    if (err) throw err;
    return id;
  }

  private refreshTable(): void {
    const prev = this.table;
    this.table = routingTable(this.state);
    if (prev.generation !== this.table.generation) this.emit('routing', this.table);
  }

  /* --------------------------------------------------------------- leading */

  private async leaseTick(): Promise<void> {
    if (this.stopping) return;
    try {
      const outcome = await this.lease.tick();
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

  private catchingUp = false;

  private async catchUpJournal(): Promise<void> {
    for (;;) {
      const batch = await readJournal(this.redis, this.k, this.state.logId, 1000);
      if (batch.length === 0) return;
      for (const r of batch) this.applyJournalRecord(r);
      this.refreshTable();
    }
  }

  /** Run decide soon (coalesced; one pass at a time). */
  kick(): void {
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

  private async decidePass(): Promise<void> {
    const rejects = this.pendingRejects.splice(0);
    const decisions: Decision[] = rejects.map((entry) => ({ type: 'append', entry }));
    decisions.push(...decide(this.state, Date.now(), this.settings));
    if (decisions.length > 0) {
      await this.act(decisions);
      // what was just journaled may enable the next step at once; decide quiesces, and
      // a bound keeps a rule that does not from spinning (the tick goes on anyway)
      if (++this.chained < 8) this.decideAgain = true;
    } else this.chained = 0;
    await this.publishRouting();
  }

  /** Carry decisions out in order: consecutive appends go in one fenced script call. */
  private async act(decisions: Decision[]): Promise<void> {
    let batch: JournalEntry[] = [];
    const flush = async (): Promise<void> => {
      if (batch.length === 0) return;
      const token = this.lease.token;
      if (!token || !this.lease.isLeader()) throw new LeaseLostError('lease deadline passed');
      const entries = batch;
      batch = [];
      const ids = await appendFenced(this.redis, this.k, token, entries);
      entries.forEach((entry, i) => {
        this.log.info({ type: entry.type, id: ids[i], ...summary(entry) }, 'journaled');
        this.state = evolve(this.state, { kind: 'journal', id: ids[i]!, entry });
      });
      this.sinceSnapshot += entries.length;
      if (this.sinceSnapshot >= SNAPSHOT_EVERY) await this.writeSnapshot();
      this.refreshTable();
    };
    for (const d of decisions) {
      if (d.type === 'append') {
        batch.push(this.complete(d.entry));
      } else {
        await flush();
        await this.sendJob(d.job);
      }
    }
    await flush();
  }

  /** Fill the envelope (and deterministic job ids) of a draft. */
  private complete(draft: JournalDraft): JournalEntry {
    const epoch = this.lease.epoch;
    const d = { ...draft } as JournalDraft & { jobId?: string };
    if (d.type === 'promotion.requested') d.jobId = jobIdFor(epoch, d.operationId, 'promote', d.node);
    if (d.type === 'follow.requested') d.jobId = jobIdFor(epoch, d.operationId, d.action, d.node);
    if (d.type === 'demotion.requested') d.jobId = jobIdFor(epoch, d.operationId, 'demote', d.node);
    if (d.type === 'unfence.requested') d.jobId = jobIdFor(epoch, d.operationId, 'unfence', d.node);
    if (d.type === 'restart.requested') d.jobId = jobIdFor(epoch, d.operationId, 'restart', d.node);
    if (d.type === 'sync.requested') d.jobId = jobIdFor(epoch, d.operationId, 'sync', d.node);
    return { ...d, v: 1, at: Date.now(), epoch };
  }

  private queue(node: string): Queue {
    let q = this.queues.get(node);
    if (!q) {
      q = new Queue(node, { connection: this.redis, prefix: this.k.queuePrefix });
      q.on('error', (err) => this.log.warn({ err: err.message, node }, 'queue error'));
      this.queues.set(node, q);
    }
    return q;
  }

  private async sendJob(job: JobSpec): Promise<void> {
    if (!this.lease.isLeader()) throw new LeaseLostError('lease deadline passed');
    const epoch = this.lease.epoch;
    const jobId = jobIdFor(epoch, job.operationId, job.action, job.node);
    // a job delivered late (BullMQ redelivers; an agent comes back) must not act on an
    // operation that is over: it expires when the decision that sent it would be retried
    const ttl = job.action === 'follow' || job.action === 'rejoin' || job.action === 'sync' ? this.settings.jobRetryMs : this.settings.promoteTimeoutMs;
    // Redis's clock, which the agent reads too: hosts' clocks need not agree
    const redisNow = await redisTimeMs(this.redis);
    await this.queue(job.node).add(
      job.action,
      { epoch, operationId: job.operationId, action: job.action, node: job.node, upstream: job.upstream, sync: job.sync, expiresAt: redisNow + ttl },
      { jobId, attempts: 1, removeOnComplete: { count: 500 }, removeOnFail: { count: 500 } },
    );
    this.log.info({ jobId, node: job.node, action: job.action }, 'job sent');
  }

  private sinceSnapshot = 0;

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

  private async publishRouting(): Promise<void> {
    if (!this.lease.isLeader() || !this.lease.token) return;
    const json = JSON.stringify(this.table);
    const p = this.state.primary ? this.state.nodes[this.state.primary] : undefined;
    const primaryJson = p ? JSON.stringify({ id: p.id, host: p.host, port: p.port }) : '';
    const key = json + primaryJson;
    if (key === this.lastPublished) return;
    const r = await scripted(this.redis).syRouting(this.k.leader, this.k.routing, this.k.primary, this.lease.token, json, this.k.routingChannel, primaryJson);
    if (r === 1) this.lastPublished = key;
  }

  /** Wait until the table's generation differs from `generation`, or `ms` pass. */
  waitForChange(generation: number, ms: number): Promise<RoutingTable | null> {
    if (this.table.generation !== generation) return Promise.resolve(this.table);
    return new Promise((resolve) => {
      const onRouting = (t: RoutingTable): void => {
        clearTimeout(timer);
        resolve(t);
      };
      const timer = setTimeout(() => {
        this.off('routing', onRouting);
        resolve(null);
      }, ms);
      this.once('routing', onRouting);
    });
  }

  async readJournal(after: string, limit: number): Promise<JournalRecord[]> {
    return readJournal(this.redis, this.k, after, limit);
  }

  async stop(): Promise<void> {
    this.stopping = true;
    for (const t of this.timers) clearInterval(t);
    await this.deciding?.catch(() => {});
    await this.writeSnapshot().catch(() => {});
    await this.lease.release().catch(() => {});
    this.reader.disconnect();
    this.onWake();
    await this.followLoop?.catch(() => {});
    for (const q of this.queues.values()) await q.close().catch(() => {});
    this.redis.disconnect();
  }
}

function summary(e: JournalEntry): Record<string, unknown> {
  const { type: _t, v: _v, at: _a, evidence: _e, ...rest } = e as JournalEntry & { evidence?: unknown };
  return rest;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
