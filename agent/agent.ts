/**
 * The sidecar: probe loop (its node, and the current primary from this host),
 * publisher (XADD to sy:{c}:obs), job worker (BullMQ queue of its node), and, given a
 * data directory, the keeper of its node's process.
 */
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { Worker, UnrecoverableError, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { keys, type ClusterKeys } from '../src/bus/keys.js';
import { connectRedis } from '../src/errors.js';
import { redisTimeMs } from '../src/bus/clock.js';
import { epochOfLeaseValue } from '../src/bus/lease.js';
import type { AgentConfig } from '../src/config/schemas.js';
import type { JobResult, Observation, PeerView, ProbeError } from '../src/events/observation.js';
import { PostgresProber, withClient, type PgTarget } from '../src/engines/postgres/probe.js';
import { ManagedPostgres, type Upstream } from './managed.js';
import { isProcessStopped } from '../src/sandbox/proc.js';

export interface JobData {
  epoch: number;
  operationId: string;
  action: 'promote' | 'demote' | 'follow' | 'rejoin' | 'unfence' | 'sync' | 'restart';
  node: string;
  upstream?: Upstream;
  sync?: { names: string[]; count: number; method?: 'FIRST' | 'ANY' };
  /** the leader's wall clock after which the job is stale (its decision would have been retried) */
  expiresAt?: number;
}

/** A job refused on purpose: reported with a code, never retried. */
export class JobRefused extends UnrecoverableError {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(`${code}: ${message}`);
  }
}

const OBS_MAXLEN = 10_000;
/** how long a node this agent promoted may be primary before the leader names it (then it fences) */
const PROMOTED_GRACE_MS = 30_000;

export class Agent {
  readonly bootId = `${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
  private seq = 0;
  /** highest leader epoch seen, on a job or in the lease */
  epochSeen = 0;
  private readonly k: ClusterKeys;
  private readonly redis: Redis;
  private worker: Worker | null = null;
  private workerConn: Redis | null = null;
  private readonly prober: PostgresProber;
  readonly managed: ManagedPostgres | null;
  private timer: NodeJS.Timeout | null = null;
  private stopping = false;
  private probing: Promise<void> | null = null;
  private probeAgain = false;
  /** a job that changes the process is running: don't restart it behind its back */
  private busy = false;
  private restartTimer: NodeJS.Timeout | null = null;
  private restartDelayMs = 200;
  /** the end of WAL read from disk after the node died as a primary (reported until it is a primary again) */
  private walEnd: string | null = null;
  private walEndRead: Promise<void> | null = null;
  /** the journal's primary, as published by the leader */
  primaryId: string | null = null;
  private primaryAddr: Upstream | null = null;

  constructor(
    readonly cfg: AgentConfig,
    private readonly log: Logger,
  ) {
    this.k = keys(cfg.cluster);
    // fail fast when Redis is away: the probe loop must keep its rhythm to fence in time
    this.redis = new Redis(cfg.redis, { maxRetriesPerRequest: 1, enableOfflineQueue: false, lazyConnect: true, connectTimeout: 1000, commandTimeout: 1000 });
    this.redis.on('error', (err) => this.log.debug({ err: err.message }, 'redis error'));
    this.prober = new PostgresProber(this.target(), cfg.probeTimeoutMs, () => this.probeNow());
    this.managed = cfg.dataDir ? new ManagedPostgres(cfg.dataDir, cfg.port, cfg.node, cfg.user, log) : null;
  }

  target(): PgTarget {
    return { host: this.cfg.host, port: this.cfg.port, user: this.cfg.user, password: this.cfg.password, database: this.cfg.database };
  }

  async start(): Promise<void> {
    await connectRedis(this.redis, this.cfg.redis);
    this.epochSeen = epochOfLeaseValue(await this.redis.get(this.k.leader));
    await this.refreshPrimary();
    if (this.managed) {
      this.managed.onExit(() => this.onNodeExit());
      await this.bootNode();
    }
    this.workerConn = new Redis(this.cfg.redis, { maxRetriesPerRequest: null });
    this.workerConn.on('error', (err) => this.log.debug({ err: err.message }, 'worker redis error'));
    this.worker = new Worker(this.cfg.node, (job: Job<JobData>) => this.runJob(job), {
      connection: this.workerConn,
      prefix: this.k.queuePrefix,
      concurrency: 1,
      autorun: true,
    });
    this.worker.on('error', (err) => this.log.warn({ err: err.message }, 'worker error'));
    this.schedule(0);
    this.log.info({ node: this.cfg.node, bootId: this.bootId, managed: !!this.managed }, 'agent started');
  }

  /** Start the node the right way: a former primary never comes back as a second primary. */
  private async bootNode(): Promise<void> {
    const m = this.managed!;
    const running = m.runningPid();
    if (running) {
      m.adopt(running);
      return;
    }
    if (!m.exists()) throw new Error(`data directory ${m.dataDir} holds no PostgreSQL cluster`);
    if (!m.isStandby() && this.primaryId && this.primaryId !== this.cfg.node) {
      // The published primary may lag a promotion of this very node: never rewind on our
      // own say-so. Start it refusing writes; the leader rejoins it, or unfences it if it
      // is the journal's primary after all.
      this.log.warn({ primary: this.primaryId }, 'this node was a primary and another node is published as the primary: starting it read-only for the leader to decide');
      m.setReadOnlyOnDisk(true);
    }
    await m.start();
  }

  private onNodeExit(): void {
    this.probeNow();
    if (this.stopping || this.busy) return;
    const m = this.managed!;
    if (m.isStandby()) {
      // a replica: safe to restart in place
      const delay = this.restartDelayMs;
      this.restartDelayMs = Math.min(5_000, this.restartDelayMs * 2);
      this.restartTimer = setTimeout(() => {
        this.restartTimer = null;
        if (this.stopping || this.busy || m.isRunning()) return;
        m.start().then(
          () => {
            this.restartDelayMs = 200;
            this.probeNow();
          },
          (err: unknown) => this.log.error({ err: (err as Error).message }, 'restart of the replica failed'),
        );
      }, delay);
    } else {
      // a primary: the coordinator decides (failover, then a rejoin job for us). Meanwhile
      // read our end of WAL: what a failover loses is measured against it.
      this.log.warn('the primary postmaster died: waiting for the coordinator (no restart in place)');
      this.walEndRead = m
        .walEnd()
        .then((end) => {
          this.walEnd = end;
          this.log.info({ walEnd: end }, 'end of WAL on disk');
          this.probeNow();
        })
        .catch((err: unknown) => this.log.warn({ err: (err as Error).message }, 'could not read the end of WAL'));
    }
  }

  private async refreshPrimary(): Promise<void> {
    try {
      const raw = await this.redis.get(this.k.primary);
      const p = raw ? (JSON.parse(raw) as Upstream) : null;
      this.primaryId = p?.id ?? null;
      this.primaryAddr = p ? { id: p.id, host: p.host, port: p.port } : null;
    } catch {
      // Redis unreachable: keep what we knew
    }
  }

  /* ---------------------------------------------------------------- probes */

  private schedule(delay: number): void {
    if (this.stopping) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      this.runProbe();
    }, delay);
  }

  /** Probe at once (the connection dropped, the process exited). */
  probeNow(): void {
    if (this.stopping) return;
    if (this.probing) {
      this.probeAgain = true;
      return;
    }
    this.schedule(0);
  }

  private runProbe(): void {
    if (this.probing) {
      this.probeAgain = true;
      return;
    }
    this.probing = this.probeOnce()
      .catch((err: unknown) => this.log.warn({ err: (err as Error).message }, 'probe failed'))
      .finally(() => {
        this.probing = null;
        if (this.probeAgain) {
          this.probeAgain = false;
          this.schedule(0);
        } else {
          this.schedule(this.cfg.probeIntervalMs);
        }
      });
  }

  async observe(): Promise<Observation> {
    const m = this.managed;
    const processState = m ? (m.isRunning() ? (isProcessStopped(m.pid!) ? 'stopped' : 'running') : 'dead') : 'unmanaged';
    const none = { role: 'unknown' as const, timeline: null, lsn: null, replayLsn: null, replayDelayMs: null, upstream: null, walReceiver: null };
    // a dead or stopped postmaster is known without a probe (a stopped one would only time out)
    const p =
      processState === 'dead'
        ? { reachable: false, error: 'refused' as const, errorMessage: 'postmaster not running', ...none }
        : processState === 'stopped'
          ? { reachable: false, error: 'timeout' as const, errorMessage: 'postmaster stopped (SIGSTOP)', ...none }
          : await this.prober.probe();
    const obs: Observation = {
      type: 'obs',
      v: 1,
      node: this.cfg.node,
      bootId: this.bootId,
      seq: ++this.seq,
      at: Date.now(),
      host: this.cfg.host,
      port: this.cfg.port,
      priority: this.cfg.noFailover ? 0 : this.cfg.priority,
      reachable: p.reachable,
      process: processState,
      role: p.role,
      timeline: p.timeline,
      lsn: p.lsn,
      replayLsn: p.replayLsn,
      replayDelayMs: p.replayDelayMs,
      upstream: p.upstream,
      walReceiver: p.walReceiver,
      epochSeen: this.epochSeen,
    };
    if (p.error) obs.error = p.error;
    if (p.errorMessage) obs.errorMessage = p.errorMessage;
    if ('standbys' in p && p.standbys) obs.standbys = p.standbys;
    if ('readOnly' in p && p.readOnly && p.role === 'primary') obs.fenced = true;
    if (this.walEnd) obs.walEnd = this.walEnd;
    if (p.role === 'primary' && p.timeline !== null && p.timeline > 1) {
      const fork = await this.forkLsn(p.timeline);
      if (fork) obs.forkLsn = fork;
    }
    const peer = await this.peerView();
    if (peer) obs.peer = peer;
    return obs;
  }

  private async probeOnce(): Promise<void> {
    let obs = await this.observe();
    // the lease is judged before any Redis call of this probe: those may each take their
    // full timeout when Redis is away, which would make the fence late
    if (performance.now() - this.lastRedisOk >= this.cfg.fenceAfterMs && (await this.maybeFence(obs))) obs = await this.observe();
    await this.refreshPrimary();
    if ((await this.fenceIfDeposed(obs)) || this.killIfDeposedAndHung(obs)) obs = await this.observe();
    // the setting itself says whether the node is fenced (it survives agent restarts)
    if (obs.reachable) this.fenced = obs.fenced === true;
    try {
      await this.append(JSON.stringify(obs));
      this.lastRedisOk = performance.now();
    } catch (err) {
      if (await this.maybeFence(obs)) this.probeNow();
      throw err;
    }
  }

  /* -------------------------------------------------------------- fencing */

  /** monotonic time of the last observation Redis accepted (our primary lease, as the coordinators see it) */
  private lastRedisOk = performance.now();
  fenced = false;

  /**
   * Self-fencing: a primary that cannot reach Redis for fenceAfterMs, and sees none of
   * its replicas connected, refuses writes. By then the coordinators may fail it over
   * (they wait fenceAfterMs plus a margin after its last observation).
   */
  private async maybeFence(obs: Observation): Promise<boolean> {
    if (this.fenced || obs.role !== 'primary' || !obs.reachable) return false;
    const lostFor = performance.now() - this.lastRedisOk;
    if (lostFor < this.cfg.fenceAfterMs) return false;
    // a standby cut off with us stays 'streaming' until wal_sender_timeout: count only those
    // that replied lately (their replies come every wal_receiver_status_interval, or sooner)
    const connected = (obs.standbys ?? []).filter((s) => s.state === 'streaming' && (s.replyAgeMs === undefined || s.replyAgeMs === null || s.replyAgeMs < this.cfg.fenceAfterMs)).length;
    if (connected > 0) return false;
    this.log.error({ lostForMs: Math.round(lostFor), fenceAfterMs: this.cfg.fenceAfterMs }, 'lost Redis with no replica connected: fencing the primary (read-only)');
    await this.setReadOnly(true);
    this.fenced = true;
    return true;
  }

  /** set when a promote job promoted the node, until the leader names it the primary */
  private promotedAt: number | null = null;

  /**
   * A primary that comes back (SIGCONT, an agent restart, a healed partition) after the
   * leader made another node the primary refuses writes at once, before its rejoin job
   * runs. A node this agent just promoted is exempt until the leader publishes it.
   */
  private async fenceIfDeposed(obs: Observation): Promise<boolean> {
    if (this.fenced || !obs.reachable || obs.role !== 'primary' || !this.primaryId || this.primaryId === this.cfg.node) {
      if (this.primaryId === this.cfg.node) this.promotedAt = null;
      return false;
    }
    if (this.promotedAt !== null && performance.now() - this.promotedAt < PROMOTED_GRACE_MS) return false;
    this.log.error({ primary: this.primaryId }, 'another node is the primary: this one refuses writes until the leader rejoins it');
    await this.setReadOnly(true).catch((err: unknown) => this.log.warn({ err: (err as Error).message }, 'fencing failed'));
    this.fenced = true;
    return true;
  }

  /**
   * A deposed primary that does not answer (stopped, hung) cannot be made read-only, and
   * would take the writes queued on its sockets the moment it runs again: kill it and
   * every backend. Its data directory is a primary's; its rejoin job rewinds it.
   */
  private killIfDeposedAndHung(obs: Observation): boolean {
    const m = this.managed;
    if (!m || !this.primaryId || this.primaryId === this.cfg.node || m.isStandby() || !m.isRunning()) return false;
    if (this.promotedAt !== null && performance.now() - this.promotedAt < PROMOTED_GRACE_MS) return false;
    const pid = m.pid!;
    const hung = isProcessStopped(pid) || (!obs.reachable && obs.error === 'timeout');
    if (!hung) return false;
    this.log.error({ primary: this.primaryId, pid }, 'another node is the primary and this one does not answer: killing it before it can take a write');
    m.killTree();
    return true;
  }

  /** default_transaction_read_only for new transactions, and end the sessions that could still write. */
  private async setReadOnly(on: boolean): Promise<void> {
    await withClient(this.target(), 2_000, async (c) => {
      await c.query(on ? 'ALTER SYSTEM SET default_transaction_read_only = on' : 'ALTER SYSTEM RESET default_transaction_read_only');
      await c.query('SELECT pg_reload_conf()');
      if (on) {
        await c.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() AND usename IS NOT NULL AND application_name <> 'switchyard-agent'");
      }
    });
  }

  private forkCache: { timeline: number; lsn: string | null } | null = null;

  /** Where a timeline forked off its parent: the last line of its history file (read once per timeline). */
  private async forkLsn(timeline: number): Promise<string | null> {
    if (this.forkCache?.timeline === timeline) return this.forkCache.lsn;
    const file = `pg_wal/${timeline.toString(16).toUpperCase().padStart(8, '0')}.history`;
    const lsn = await withClient(this.target(), 2_000, (c) => c.query<{ h: string }>('SELECT pg_read_file($1) AS h', [file]))
      .then((r) => /\t([0-9A-F]+\/[0-9A-F]+)\t[^\n]*\n?$/.exec(r.rows[0]?.h ?? '')?.[1] ?? null)
      .catch(() => null);
    this.forkCache = { timeline, lsn };
    return lsn;
  }

  /** Publish an observation now, from the job worker (the probe loop may be waiting on its timer). */
  private async publishNow(): Promise<void> {
    try {
      await this.append(JSON.stringify(await this.observe()));
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'could not publish an observation');
    }
  }

  /** XADD to the observation stream and wake the coordinators, in one round trip. */
  private async append(json: string): Promise<void> {
    const res = await this.redis.multi().xadd(this.k.obs, 'MAXLEN', '~', OBS_MAXLEN, '*', 'e', json).publish(this.k.wake, '1').exec();
    const err = res?.find(([e]) => e)?.[0];
    if (err) throw err;
  }

  /** Can this host reach the current primary's port? (Not probed for ourselves.) */
  private async peerView(): Promise<PeerView | null> {
    const p = this.primaryAddr;
    if (!p || p.id === this.cfg.node) return null;
    const error = await tcpCheck(p.host, p.port, Math.min(this.cfg.probeTimeoutMs, 1000));
    return error ? { node: p.id, reachable: false, error } : { node: p.id, reachable: true };
  }

  /* ------------------------------------------------------------------ jobs */

  private async report(job: Job<JobData>, ok: boolean, startedAt: number, code?: string, message?: string, lsn?: string): Promise<void> {
    const r: JobResult = {
      type: 'job.result',
      v: 1,
      node: this.cfg.node,
      bootId: this.bootId,
      at: Date.now(),
      jobId: job.id ?? '',
      epoch: job.data.epoch,
      operationId: job.data.operationId,
      action: job.data.action,
      ok,
      durationMs: Date.now() - startedAt,
    };
    if (code) r.code = code;
    if (message) r.message = message.slice(0, 1000);
    if (lsn) r.lsn = lsn;
    await this.append(JSON.stringify(r)).catch(() => {});
  }

  /** Fencing: refuse a job from an older epoch, and re-check the lease before an irreversible act. */
  async checkEpoch(data: JobData, irreversible: boolean): Promise<void> {
    if (!Number.isInteger(data.epoch) || data.epoch < this.epochSeen) {
      throw new JobRefused('stale-epoch', `job epoch ${data.epoch} is older than epoch ${this.epochSeen} already seen`);
    }
    this.epochSeen = data.epoch;
    if (irreversible) {
      const current = epochOfLeaseValue(await this.redis.get(this.k.leader));
      if (current !== data.epoch) {
        this.epochSeen = Math.max(this.epochSeen, current);
        throw new JobRefused('lease-changed', `the lease is at epoch ${current}, the job carries ${data.epoch}`);
      }
    }
  }

  async runJob(job: Job<JobData>): Promise<string> {
    const started = Date.now();
    const data = job.data;
    this.log.info({ jobId: job.id, action: data.action, epoch: data.epoch }, 'job received');
    try {
      if (data.node !== this.cfg.node) throw new JobRefused('wrong-node', `job for ${data.node} sent to ${this.cfg.node}`);
      if (typeof data.expiresAt === 'number') {
        // expiresAt is on Redis's clock (the leader's host clock may differ from ours)
        const now = await redisTimeMs(this.redis);
        if (now > data.expiresAt) throw new JobRefused('expired', `job expired ${now - data.expiresAt} ms ago: its operation is over or was retried`);
      }
      await this.checkEpoch(data, data.action !== 'follow' && data.action !== 'sync');
      let outcome: string;
      let lsn: string | undefined;
      switch (data.action) {
        case 'promote': {
          const r = await this.promote();
          outcome = r.message;
          lsn = r.lsn;
          break;
        }
        case 'demote': {
          const r = await this.demote(requireUpstream(data));
          outcome = r.message;
          lsn = r.lsn ?? undefined;
          break;
        }
        case 'follow':
          outcome = await this.follow(requireUpstream(data));
          break;
        case 'rejoin':
          outcome = await this.rejoin(requireUpstream(data));
          break;
        case 'sync': {
          const r = await this.setSync(data);
          outcome = r.message;
          lsn = r.lsn;
          break;
        }
        case 'restart':
          outcome = await this.restartInPlace();
          break;
        case 'unfence':
          await this.setReadOnly(false);
          this.fenced = false;
          outcome = 'unfenced: taking writes again';
          break;
        default:
          throw new JobRefused('unknown-action', `unknown action ${String((data as { action: unknown }).action)}`);
      }
      this.log.info({ jobId: job.id, outcome, ms: Date.now() - started }, 'job done');
      await this.report(job, true, started, undefined, outcome, lsn);
      this.probeNow();
      return outcome;
    } catch (err) {
      const code = err instanceof JobRefused ? err.code : 'failed';
      this.log.warn({ jobId: job.id, code, err: (err as Error).message }, 'job refused or failed');
      await this.report(job, false, started, code, (err as Error).message);
      this.probeNow();
      if (err instanceof UnrecoverableError) throw err;
      throw new UnrecoverableError((err as Error).message);
    }
  }

  private async promote(): Promise<{ message: string; lsn?: string }> {
    return withClient(this.target(), 5_000, async (c) => {
      const rec = await c.query<{ rec: boolean }>('SELECT pg_is_in_recovery() AS rec');
      this.promotedAt = performance.now();
      if (!rec.rows[0]?.rec) {
        // promoted before (a duplicate job), maybe fenced since: the leader wants it writable
        if (this.fenced) {
          await this.setReadOnly(false);
          this.fenced = false;
        }
        return { message: 'already primary' };
      }
      const res = await c.query<{ ok: boolean }>('SELECT pg_promote(true, 60) AS ok');
      if (!res.rows[0]?.ok) throw new Error('pg_promote returned false');
      // A node fenced while it was a primary keeps default_transaction_read_only in
      // postgresql.auto.conf, and a former primary its synchronous_standby_names: a new
      // primary starts without either (the leader sets synchronous standbys up again).
      // Only after the promotion, and only if needed: a reload just before pg_promote can
      // leave the startup process asleep for wal_retrieve_retry_interval (5 s).
      const stale = await c.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM pg_file_settings WHERE name IN ('default_transaction_read_only', 'synchronous_standby_names') AND sourcefile LIKE '%postgresql.auto.conf'",
      );
      if ((stale.rows[0]?.n ?? 0) > 0) {
        await c.query('ALTER SYSTEM RESET default_transaction_read_only');
        await c.query('ALTER SYSTEM RESET synchronous_standby_names');
        await c.query('SELECT pg_reload_conf()');
      }
      this.walEnd = null;
      // where the new timeline forked off (also what its reports carry from now on)
      const tli = await c.query<{ tli: number }>("SELECT ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int AS tli");
      const fork = tli.rows[0] ? await this.forkLsn(tli.rows[0].tli) : null;
      return fork ? { message: 'promoted', lsn: fork } : { message: 'promoted' };
    });
  }

  /**
   * Switchover, on the old primary: stop taking writes (a fast shutdown: sessions end,
   * walsenders ship every WAL record to the connected standbys before they exit), report
   * the shutdown checkpoint's LSN, and come back as a standby of the target.
   */
  private async demote(up: Upstream): Promise<{ message: string; lsn: string | null }> {
    const m = this.managed;
    if (!m) throw new JobRefused('unmanaged', 'demote needs an agent that manages its node (dataDir)');
    if (m.isRunning() && m.isStandby()) return { message: `already a standby: ${await this.follow(up)}`, lsn: null };
    this.busy = true;
    try {
      if (m.isRunning()) {
        await withClient(this.target(), 5_000, (c) => c.query('CHECKPOINT')).catch((err: unknown) => this.log.warn({ err: (err as Error).message }, 'checkpoint before demotion failed'));
        await m.stop('fast');
      }
      const lsn = await m.checkpointLsn();
      m.writeStandbyConfig(up);
      await m.start();
      return { message: `demoted: standby of ${up.id}`, lsn };
    } finally {
      this.busy = false;
    }
  }

  /**
   * Synchronous mode, on the primary: set synchronous_standby_names, wait until the
   * walsenders apply it (pg_stat_replication shows the named standbys as sync), and
   * report the LSN from which every commit waits for them.
   */
  private async setSync(data: JobData): Promise<{ message: string; lsn: string }> {
    const sync = data.sync;
    if (!sync || !Array.isArray(sync.names) || sync.names.length === 0 || !Number.isInteger(sync.count)) throw new JobRefused('bad-job', 'sync needs { names, count }');
    const method = sync.method === 'ANY' ? 'ANY' : 'FIRST';
    const value = `${method} ${sync.count} (${sync.names.map((n) => `"${n.replace(/"/g, '')}"`).join(', ')})`;
    return withClient(this.target(), 5_000, async (c) => {
      const rec = await c.query<{ rec: boolean }>('SELECT pg_is_in_recovery() AS rec');
      if (rec.rows[0]?.rec) throw new JobRefused('not-primary', 'synchronous_standby_names is set on the primary only');
      await c.query(`ALTER SYSTEM SET synchronous_standby_names = ${quoteLiteral(value)}`);
      await c.query('SELECT pg_reload_conf()');
      const deadline = Date.now() + 5_000;
      for (;;) {
        const r = await c.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_replication WHERE application_name = ANY($1) AND state = 'streaming' AND sync_state IN ('sync', 'quorum')", [sync.names]);
        const streaming = await c.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_replication WHERE application_name = ANY($1) AND state = 'streaming'", [sync.names]);
        if ((r.rows[0]?.n ?? 0) >= (streaming.rows[0]?.n ?? 0) || Date.now() > deadline) break;
        await new Promise((res) => setTimeout(res, 20));
      }
      const lsn = await c.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn');
      return { message: `synchronous_standby_names = ${value}`, lsn: lsn.rows[0]!.lsn };
    });
  }

  /** The leader asks: start the crashed primary again as it is (no failover possible, or restart-first). */
  private async restartInPlace(): Promise<string> {
    const m = this.managed;
    if (!m) throw new JobRefused('unmanaged', 'restart needs an agent that manages its node (dataDir)');
    if (m.isRunning()) return 'already running';
    await this.walEndRead;
    this.busy = true;
    try {
      this.walEnd = null;
      await m.start();
      return 'restarted in place';
    } finally {
      this.busy = false;
    }
  }

  private async follow(up: Upstream): Promise<string> {
    const rec = await withClient(this.target(), 5_000, (c) => c.query<{ rec: boolean }>('SELECT pg_is_in_recovery() AS rec')).catch(() => null);
    if (rec && !rec.rows[0]?.rec) {
      // a primary asked to follow: that is a rejoin (demote), which re-checks the lease
      await this.checkEpoch({ epoch: this.epochSeen, operationId: '', action: 'rejoin', node: this.cfg.node }, true);
      return this.rejoin(up);
    }
    if (!rec && this.managed && !this.managed.isRunning()) return this.rejoin(up);
    const conninfo = this.managed ? this.managed.conninfo(up) : defaultConninfo(up, this.cfg.user, this.cfg.node);
    await withClient(this.target(), 5_000, async (c) => {
      const cur = await c.query<{ v: string }>("SELECT current_setting('primary_conninfo') AS v");
      if (cur.rows[0]?.v === conninfo) return;
      await c.query(`ALTER SYSTEM SET primary_conninfo = ${quoteLiteral(conninfo)}`);
      await c.query('SELECT pg_reload_conf()');
    });
    return `following ${up.id}`;
  }

  private async rejoin(up: Upstream): Promise<string> {
    const m = this.managed;
    if (!m) throw new JobRefused('unmanaged', 'rejoin needs an agent that manages its node (dataDir)');
    // the end of WAL must be read before pg_rewind rewrites it
    await this.walEndRead;
    this.busy = true;
    try {
      if (m.isRunning()) {
        const rec = await withClient(this.target(), 5_000, (c) => c.query<{ rec: boolean }>('SELECT pg_is_in_recovery() AS rec')).catch(() => null);
        if (rec?.rows[0]?.rec && m.isStandby()) {
          // already a standby: just point it at the primary
          this.busy = false;
          return this.follow(up);
        }
        await m.stop('fast');
      }
      let how = 'restarted';
      if (!m.isStandby()) {
        // a former primary, however it stopped (crashed, stopped here, killed when hung):
        // read and report its end of WAL before pg_rewind or a re-clone discards the tail
        if (!this.walEnd) {
          this.walEnd = await m.walEnd().catch(() => null);
          this.log.info({ walEnd: this.walEnd }, 'end of WAL on disk, before rewinding');
        }
        if (this.walEnd) await this.publishNow();
        how = await m.makeStandbyOf(up);
      } else m.writeStandbyConfig(up);
      await m.start();
      return `rejoined ${up.id} (${how})`;
    } finally {
      this.busy = false;
    }
  }

  async stop(): Promise<void> {
    this.stopping = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.restartTimer) clearTimeout(this.restartTimer);
    await this.worker?.close().catch(() => {});
    this.workerConn?.disconnect();
    await this.probing?.catch(() => {});
    await this.prober.close();
    if (this.managed) await this.managed.stop('fast').catch((err: unknown) => this.log.warn({ err: (err as Error).message }, 'stopping postgres'));
    this.redis.disconnect();
  }
}

function requireUpstream(data: JobData): Upstream {
  const u = data.upstream;
  if (!u || typeof u.host !== 'string' || !Number.isInteger(u.port)) throw new JobRefused('bad-job', `${data.action} needs an upstream {id, host, port}`);
  return u;
}

function defaultConninfo(up: Upstream, user: string, appName: string): string {
  return `host=${up.host} port=${up.port} user=${user} application_name=${appName}`;
}

function quoteLiteral(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}

/** PostgreSQL's SSLRequest: length 8, code 80877103. A live server answers one byte ('S' or 'N'). */
const SSL_REQUEST = Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]);

/**
 * Is a PostgreSQL server alive at host:port? null when it answers, else why not. A TCP
 * connect alone is not enough: the kernel completes it for a stopped (frozen) server,
 * so the check waits for the server's own answer to an SSLRequest.
 */
export function tcpCheck(host: string, port: number, timeoutMs: number): Promise<ProbeError | null> {
  return new Promise((resolve) => {
    const sock = net.connect({ host, port });
    let settled = false;
    const done = (r: ProbeError | null): void => {
      if (settled) return;
      settled = true;
      sock.destroy();
      resolve(r);
    };
    sock.setTimeout(timeoutMs, () => done('timeout'));
    sock.once('connect', () => sock.write(SSL_REQUEST));
    sock.once('data', () => done(null));
    sock.once('end', () => done('other'));
    sock.once('error', (err: NodeJS.ErrnoException) => done(err.code === 'ECONNREFUSED' ? 'refused' : 'other'));
  });
}
