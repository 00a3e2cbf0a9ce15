/**
 * The follower's part of one cluster's runtime: every coordinator follows the
 * observation, journal and command streams into the pure fold (`evolve`), keeps the
 * routing projection and its version, and serves both (API, SSE). Only the lease holder
 * decides (leader.ts); the lease itself is cluster.ts.
 *
 *   XREAD obs+log+cmd ──▶ evolve ──▶ state ──▶ routing projection ──▶ API, PUBLISH
 */
import { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';
import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import { readJournal, readStream, toRecords, type JournalRecord } from '../src/bus/journal.js';
import { keys, type ClusterKeys } from '../src/bus/keys.js';
import { RedisClock } from '../src/bus/redis-clock.js';
import { Tracer } from '../src/bus/trace.js';
import { JournalCheckpoints } from '../src/core/checkpoints.js';
import { evolve } from '../src/core/evolve.js';
import { announce, routingTable, type Announcement, type RoutingTable } from '../src/core/routing.js';
import { withDefaults, type Settings } from '../src/core/settings.js';
import { fromSnapshot, journalLayer } from '../src/core/snapshot.js';
import { initialState, type ClusterState, type CoreEvent, type Engine } from '../src/core/state.js';
import type { JournalDraft } from '../src/events/journal.js';
import type { Command } from '../src/events/observation.js';
import { parseCommand, parseObsEntry } from '../src/events/parse.js';

/** Slow poll of the streams, in case a writer does not PUBLISH its wake-up. */
const POLL_MS = 250;

export interface ClusterRuntimeOptions {
  name: string;
  engine: Engine;
  settings?: Partial<Settings>;
  coordinatorId: string;
  redisUrl: string;
  leaseTtlMs: number;
  tickMs: number;
  log: Logger;
  /** ACL user, password, TLS of the coordination store */
  redisOptions?: RedisOptions;
  /** time between lease renewals (default leaseTtlMs / 3) */
  leaseRenewMs?: number | undefined;
}

export class ClusterFollower extends EventEmitter {
  state: ClusterState;
  table: RoutingTable;
  /** the table's version (ETag, SSE id): the generation and the lag figures last announced */
  version = '0';
  protected announced: Announcement | null = null;
  readonly settings: Settings;
  readonly k: ClusterKeys;
  protected readonly redis: Redis;
  protected readonly reader: Redis;
  protected obsId = '$';
  protected cmdId = '$';
  protected stopping = false;
  protected followLoop: Promise<void> | null = null;
  protected log: Logger;
  protected readonly tracer: Tracer;
  /** when the newest batch of observations was folded, and the last of their ids (for the trace) */
  protected lastFold: { at: number; obsId: string } | null = null;
  /** Redis's clock: journal `at`, receivedAt and decide's `now` (one clock for every coordinator) */
  readonly clock: RedisClock;
  ready = false;
  /** the folded journal every so many entries, for the topology as of a past id (API ?at=) */
  readonly checkpoints = new JournalCheckpoints();
  protected foldedSinceCheckpoint = 0;

  constructor(protected readonly opts: ClusterRuntimeOptions) {
    super();
    this.setMaxListeners(0);
    this.log = opts.log.child({ cluster: opts.name });
    this.k = keys(opts.name);
    this.settings = withDefaults(opts.settings);
    this.state = initialState(opts.name, opts.engine);
    this.table = routingTable(this.state);
    this.redis = new Redis(opts.redisUrl, { ...opts.redisOptions, maxRetriesPerRequest: 2, connectTimeout: 2000, lazyConnect: true });
    this.reader = new Redis(opts.redisUrl, { ...opts.redisOptions, maxRetriesPerRequest: null, connectTimeout: 2000, lazyConnect: true });
    for (const r of [this.redis, this.reader]) r.on('error', (err) => this.log.debug({ err: err.message }, 'redis error'));
    this.tracer = new Tracer(this.redis, this.k.trace, `coordinator:${opts.coordinatorId}`);
    this.clock = new RedisClock(this.redis);
  }

  get name(): string {
    return this.opts.name;
  }

  /** Run decide soon: the leader's (leader.ts); a follower decides nothing. */
  kick(): void {}

  /**
   * Load the state: the newest snapshot, the journal after it, then the newest
   * observations; then follow the streams.
   */
  protected async load(): Promise<void> {
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
        this.checkpoints.add(restored.logId, restored);
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
    // commands: from the last one the journal answered, so that one no coordinator has seen
    // yet is not dropped (those answered since are skipped by the fold: handledCommands);
    // a journal that never answered one: only new ones
    const lastCmd = await readStream(this.redis, this.k.cmd, 'newest', 1);
    this.cmdId = this.state.commandsReadTo ?? lastCmd[0]?.[0] ?? '0-0';
    const now = this.clock.now();
    for (const [id, value] of recent.reverse()) this.applyObsEntry(id, value, now, false);
    this.refreshTable();
    this.ready = true;
    this.followLoop = this.follow();
  }

  /* ------------------------------------------------------------- following */

  /**
   * Follow the three streams. Reads go through range-1 (Lua), which never sends an
   * oversized entry; writers PUBLISH on sy:{c}:wake after appending, and a slow poll
   * covers a writer that does not (or a lost message).
   */
  protected async follow(): Promise<void> {
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
        const now = this.clock.now();
        for (const r of toRecords(log)) this.applyJournalRecord(r);
        for (const [id, value] of cmd) {
          this.cmdId = id;
          this.applyCommand(id, value, now);
        }
        for (const [id, value] of obs) {
          this.obsId = id;
          this.applyObsEntry(id, value, now, true);
        }
        if (obs.length > 0) this.lastFold = { at: Date.now(), obsId: this.obsId };
        this.refreshTable();
        this.kick();
      } catch (err) {
        if (this.stopping) return;
        this.log.warn({ err: (err as Error).message }, 'stream read failed; retrying');
        await sleep(200);
      }
    }
  }

  protected lastReadAt = performance.now();

  /** Has it read the streams lately? A stale view must not route writes (the API answers 503). */
  get fresh(): boolean {
    return performance.now() - this.lastReadAt < this.settings.staleAfterMs;
  }

  protected woken = false;
  protected wakeWaiter: (() => void) | null = null;

  protected onWake(): void {
    this.woken = true;
    const w = this.wakeWaiter;
    this.wakeWaiter = null;
    w?.();
  }

  protected sleepUntilWoken(ms: number): Promise<void> {
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

  protected applyJournalRecord(r: JournalRecord): void {
    if (r.entry) {
      this.state = evolve(this.state, { kind: 'journal', id: r.id, entry: r.entry });
    } else {
      // a journal entry we cannot read: skip it, move the cursor past it
      this.log.error({ id: r.id, reason: r.rejected }, 'unreadable journal entry skipped');
      this.state = { ...this.state, logId: r.id };
    }
    this.noteJournalFolded();
  }

  protected noteJournalFolded(): void {
    if (++this.foldedSinceCheckpoint < this.checkpoints.every) return;
    this.foldedSinceCheckpoint = 0;
    this.checkpoints.add(this.state.logId, journalLayer(this.state));
  }

  protected applyObsEntry(id: string, value: string, receivedAt: number, live: boolean): void {
    const p = parseObsEntry(value);
    if (!p.ok) {
      this.log.warn({ id, reason: p.reason }, 'observation rejected');
      if (live) this.pendingRejects.push({ type: 'entry.rejected', stream: this.k.obs, id, reason: p.reason });
      return;
    }
    const ev: CoreEvent = p.value.type === 'obs' ? { kind: 'obs', id, receivedAt, entry: p.value } : { kind: 'job.result', id, receivedAt, entry: p.value };
    this.state = evolve(this.state, ev);
  }

  protected pendingRejects: JournalDraft[] = [];

  protected applyCommand(id: string, value: string, receivedAt: number): void {
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

  protected refreshTable(): void {
    const prev = this.table;
    this.table = routingTable(this.state);
    // a new generation, or lag moved past the hysteresis: a new version (ETag, SSE event)
    const next = announce(this.announced, this.table, Date.now());
    if (!next) return;
    this.announced = next;
    this.version = next.version;
    this.emit('routing', this.table);
    if (this.ready && prev.generation !== this.table.generation) this.tracer.mark('routing.changed', { generation: this.table.generation, primary: this.table.primary?.id ?? null, writable: this.table.writable });
  }

  /** Wait until the table's version differs from `version`, or `ms` pass. */
  waitForChange(version: string, ms: number): Promise<RoutingTable | null> {
    if (this.version !== version) return Promise.resolve(this.table);
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

}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
