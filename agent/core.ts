/**
 * The agent's base: its identity, its connections to the coordination Redis, the state
 * the probe loop, the process supervisor and the job worker share, and what they all
 * use: the observation of the node, publishing it, the leader's published primary and
 * the peer view. The layers above: probe-loop.ts (probes, heartbeats, self-fencing),
 * supervisor.ts (the node's process), jobs.ts (the coordinator's jobs), agent.ts (start, stop).
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Worker } from 'bullmq';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { keys, type ClusterKeys } from '../src/bus/keys.js';
import { Tracer } from '../src/bus/trace.js';
import type { AgentConfig } from '../src/config/schemas.js';
import { storeOptions } from '../src/config/connect.js';
import type { Observation, PeerView } from '../src/events/observation.js';
import { getEngine } from '../src/engines/index.js';
import type { Connection, Engine, ManagedNode, NodeActions, Prober, Upstream } from '../src/engines/types.js';
import { parsePublishedPrimary, promotingAtPublish, type PublishedPrimary } from '../src/core/agent-rules.js';
import { tcpCheck } from './peer.js';

const OBS_MAXLEN = 10_000;

export abstract class AgentCore {
  readonly bootId = `${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
  protected seq = 0;
  /** this boot's number, from a Redis counter (boot order without wall clocks) */
  protected bootSeq: number | null = null;
  /** highest leader epoch seen, on a job or in the lease */
  epochSeen = 0;
  protected readonly k: ClusterKeys;
  protected readonly redis: Redis;
  protected readonly tracer: Tracer;
  /** listens for the leader's requests to probe now (sy:{c}:probe) */
  protected sub: Redis | null = null;
  protected worker: Worker | null = null;
  protected workerConn: Redis | null = null;
  /** the node's engine (the seam: src/engines/types.ts) */
  readonly engine: Engine;
  protected readonly prober: Prober;
  /** the engine's actions on this node (one object: a Redis fence is a lease it renews) */
  protected readonly node: NodeActions;
  readonly managed: ManagedNode | null;
  protected timer: NodeJS.Timeout | null = null;
  protected stopping = false;
  protected probing: Promise<void> | null = null;
  protected probeAgain = false;
  /** a job that changes the process is running: don't restart it behind its back */
  protected busy = false;
  protected restartTimer: NodeJS.Timeout | null = null;
  protected restartDelayMs = 200;
  /** work a job left running after it reported (a demoted primary starting as a standby): the next job waits for it */
  protected afterJob: Promise<void> | null = null;
  /** the end of WAL read from disk after the node died as a primary (reported until it is a primary again) */
  protected walEnd: string | null = null;
  protected walEndRead: Promise<void> | null = null;
  /** bumped when the node starts again in place: a read of the end of WAL begun before then is void */
  protected walEndGen = 0;
  /** the journal's primary, as published by the leader */
  primaryId: string | null = null;
  /** why the node stays out of rotation (a rejoin it cannot do without discarding data), reported in every observation */
  outOfRotation: string | null = null;
  protected primaryAddr: Upstream | null = null;
  /** the published key as last read: the primary, and during a failover the deposed node */
  protected published: PublishedPrimary | null = null;
  /** the journal id of the newest job acted on */
  protected newestJournalId: string | null = null;
  /** the newest observation of a reachable server (what a fence judges when the probe itself is stuck) */
  protected lastReachableObs: Observation | null = null;
  /** set when a promote job promoted the node, until the leader names it the primary */
  protected promotion: { operationId: string; at: number; seenPublished: boolean } | null = null;
  /** the operation whose promote job is running (reported: a replica report may be overtaken by it) */
  protected promoting: string | null = null;
  fenced = false;

  constructor(
    readonly cfg: AgentConfig,
    protected readonly log: Logger,
  ) {
    this.k = keys(cfg.cluster);
    // fail fast when Redis is away: the probe loop must keep its rhythm to fence in time
    this.redis = new Redis(cfg.redis, { ...storeOptions(cfg), maxRetriesPerRequest: 1, enableOfflineQueue: false, lazyConnect: true, connectTimeout: 1000, commandTimeout: 1000 });
    this.redis.on('error', (err) => this.log.debug({ err: err.message }, 'redis error'));
    this.tracer = new Tracer(this.redis, this.k.trace, `agent:${cfg.node}`);
    this.engine = getEngine(cfg.engine);
    this.prober = this.engine.prober(this.target(), cfg.probeTimeoutMs, () => {
      this.tracer.mark('probe.connection-lost', { node: cfg.node });
      this.probeNow();
    });
    this.node = this.engine.node(this.target(), cfg.node, { redisServer: cfg.redisServer });
    this.managed =
      cfg.dataDir && this.engine.managed
        ? this.engine.managed({ nodeId: cfg.node, dataDir: cfg.dataDir, connection: this.target(), binDir: cfg.pgBin, listen: cfg.listen, reclone: cfg.rejoin?.reclone ?? false, redisServer: cfg.redisServer }, log)
        : null;
  }

  target(): Connection {
    const c = this.cfg;
    return { host: c.host, port: c.port, user: c.user, password: c.password, passfile: c.passfile, replicationUser: c.replicationUser, replicationPassword: c.replicationPassword, sslmode: c.sslmode, sslrootcert: c.sslrootcert, sslcert: c.sslcert, sslkey: c.sslkey, database: c.database };
  }

  /** what the node's server process is called in reports */
  protected get serverName(): string {
    return this.engine.name === 'postgres' ? 'postmaster' : `${this.engine.name} server`;
  }

  /** Probe at once (the connection dropped, the process exited): the probe loop. */
  abstract probeNow(): void;

  protected async refreshPrimary(): Promise<void> {
    try {
      const p = parsePublishedPrimary(await this.redis.get(this.k.primary));
      this.published = p;
      this.primaryId = p?.id ?? null;
      this.primaryAddr = p ? { id: p.id, host: p.host, port: p.port } : null;
      const own = this.promotion;
      if (own && p?.operation?.id === own.operationId) own.seenPublished = true;
      // named the primary: the promotion is the journal's now
      if (p?.id === this.cfg.node && !p.deposed) this.promotion = null;
    } catch {
      // Redis unreachable: keep what we knew
    }
  }

  /** when each observation was begun (performance.now()): the guard ages its standbys' reply ages by the time since */
  protected readonly observedAt = new WeakMap<Observation, number>();

  async observe(): Promise<Observation> {
    const begun = performance.now();
    const m = this.managed;
    const processState = m ? m.processState() : 'unmanaged';
    const none = { role: 'unknown' as const, timeline: null, lsn: null, replayLsn: null, replayDelayMs: null, upstream: null, walReceiver: null };
    // a dead or stopped server is known without a probe (a stopped one would only time out)
    const p =
      processState === 'dead'
        ? { reachable: false, error: 'refused' as const, errorMessage: `${this.serverName} not running`, ...none }
        : processState === 'stopped'
          ? { reachable: false, error: 'timeout' as const, errorMessage: `${this.serverName} stopped (SIGSTOP)`, ...none }
          : await this.prober.probe();
    this.reportReachability(p.reachable, p.error, p.errorMessage);
    const obs: Observation = {
      type: 'obs',
      v: 1,
      node: this.cfg.node,
      bootId: this.bootId,
      seq: ++this.seq,
      ...(this.bootSeq !== null ? { bootSeq: this.bootSeq } : {}),
      at: Date.now(),
      host: this.cfg.host,
      port: this.cfg.port,
      priority: this.cfg.noFailover ? 0 : this.cfg.priority,
      ...(this.cfg.zone !== undefined ? { zone: this.cfg.zone } : {}),
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
      fenceAfterMs: this.cfg.fenceAfterMs,
    };
    if (p.error) obs.error = p.error;
    if (p.errorMessage) obs.errorMessage = p.errorMessage;
    if ('standbys' in p && p.standbys) obs.standbys = p.standbys;
    if ('history' in p && p.history) obs.history = p.history;
    if ('historyPrev' in p && p.historyPrev) obs.historyPrev = p.historyPrev;
    // (MongoDB: the set as this member sees it; the probe interval is the staleness formula's heartbeat)
    if (p.mongo) obs.mongo = { ...p.mongo, probeIntervalMs: this.cfg.probeIntervalMs };
    // (a Redis fence is the agent's own renewed CLIENT PAUSE: the server cannot report it)
    if (p.role === 'primary' && (p.readOnly || this.node.fenceHeld?.())) obs.fenced = true;
    if (this.walEnd) obs.walEnd = this.walEnd;
    if (this.outOfRotation) obs.outOfRotation = this.outOfRotation.slice(0, 500);
    if (p.role === 'primary' && p.timeline !== null && p.timeline > 1) {
      const fork = await this.forkLsn(p.timeline);
      if (fork) obs.forkLsn = fork;
    }
    const peer = await this.peerView();
    if (peer) obs.peer = peer;
    // read once the observation is complete: a promote job that started while the probe
    // and the peer check ran (up to their timeouts) makes its "replica" out of date
    this.markPromoting(obs, begun);
    this.observedAt.set(obs, begun);
    return obs;
  }

  /** Say in the observation which promotion overtakes it: the one running, or one begun since `begun` (performance.now()). */
  protected markPromoting(obs: Observation, begun: number): void {
    const op = promotingAtPublish(begun, this.promoting, this.promotion);
    if (op) obs.promoting = op;
  }

  protected unreachableLogged: { what: string; at: number } | null = null;

  /**
   * An agent that cannot reach its database says so in its log: at the first failure,
   * when the error changes, and then at most every 30 s; and once when it is back.
   */
  protected reportReachability(reachable: boolean, error: string | undefined, message: string | undefined): void {
    const now = performance.now();
    if (reachable) {
      if (this.unreachableLogged) this.log.info({ port: this.cfg.port }, 'database reachable again');
      this.unreachableLogged = null;
      return;
    }
    const what = `${error ?? 'unknown'}: ${message ?? ''}`;
    const last = this.unreachableLogged;
    if (last && last.what === what && now - last.at < 30_000) return;
    this.unreachableLogged = { what, at: now };
    this.log.warn({ host: this.cfg.host, port: this.cfg.port, error, message }, `cannot reach the database at ${this.cfg.host}:${this.cfg.port}: ${message ?? error ?? 'unknown error'}`);
  }

  protected forkCache: { timeline: number; lsn: string | null } | null = null;

  /** Where a timeline forked off its parent (read once per timeline; engines with timelines only). */
  protected async forkLsn(timeline: number): Promise<string | null> {
    if (this.forkCache?.timeline === timeline) return this.forkCache.lsn;
    const lsn = this.node.forkOf ? await this.node.forkOf(timeline).catch(() => null) : null;
    this.forkCache = { timeline, lsn };
    return lsn;
  }

  /** Publish an observation now, from the job worker (the probe loop may be waiting on its timer). */
  protected async publishNow(): Promise<void> {
    try {
      await this.append(JSON.stringify(await this.observe()));
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'could not publish an observation');
    }
  }

  /** XADD to the observation stream and wake the coordinators, in one round trip. */
  protected async append(json: string): Promise<void> {
    const res = await this.redis.multi().xadd(this.k.obs, 'MAXLEN', '~', OBS_MAXLEN, '*', 'e', json).publish(this.k.wake, '1').exec();
    const err = res?.find(([e]) => e)?.[0];
    if (err) throw err;
  }

  /** Can this host reach the current primary's port? (Not probed for ourselves.) */
  protected async peerView(): Promise<PeerView | null> {
    const p = this.primaryAddr;
    if (!p || p.id === this.cfg.node) return null;
    const error = await tcpCheck(p.host, p.port, Math.min(this.cfg.probeTimeoutMs, 1000), this.engine.hello);
    return error ? { node: p.id, reachable: false, error } : { node: p.id, reachable: true };
  }
}
