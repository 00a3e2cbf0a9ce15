/**
 * The Redis engine on the engine seam (src/engines/types.ts): positions, the probe as a
 * NodeProbe, the node actions, and process control of a managed node with the
 * empty-restart rule built in.
 *
 * Registered in src/engines/index.ts: the agent runs it through the seam (agent/).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ReplicationPeer } from '../../events/observation.js';
import type { ActionResult, Connection, Engine, EngineAction, EngineLog, ManagedNode, ManagedSpec, NodeActions, NodeOptions, NodeProbe, Prober, RedisServerOptions, RejoinHow, StopMode, SyncSpec, Upstream } from '../types.js';
import { Fencer, follow, promote, readReplication, setMinReplicasToWrite } from './actions.js';
import { RedisConn, type RedisAddress } from './conn.js';
import { RedisProber, type RedisProbe } from './probe.js';
import { dataIntact, RedisProcess, RedisProcessError } from './process.js';
import { isProcessAlive, isProcessStopped } from '../../os/process.js';
import { offsetPositions } from './position.js';

export { offsetPositions } from './position.js';

const address = (c: Connection): RedisAddress => ({ host: c.host, port: c.port, password: c.password, username: c.user && c.user !== 'default' ? c.user : undefined });

/** A RedisProbe in the seam's engine-neutral shape (pure). */
export function toNodeProbe(p: RedisProbe): NodeProbe {
  const standbys: ReplicationPeer[] | undefined =
    p.role === 'primary'
      ? (p.replication?.replicas ?? []).map((r) => ({
          // Redis replicas have no name of their own: the fold maps ip:port to node ids
          // (src/core/standby-names.ts; a managed node announces its configured host)
          name: `${r.ip}:${r.port}`,
          state: r.state === 'online' ? 'streaming' : r.state,
          replayLsn: String(r.offset),
          flushLsn: String(r.offset),
          // (the seconds since its last ACK, sent once a second: no replay lag; the replica's own link tells that)
          replayLagMs: null,
          syncState: 'async',
          replyAgeMs: r.lagSeconds === null ? null : r.lagSeconds * 1000,
        }))
      : undefined;
  const out: NodeProbe = {
    reachable: p.reachable,
    role: p.role,
    timeline: null,
    lsn: p.offset === null ? null : String(p.offset),
    replayLsn: p.offset === null ? null : String(p.offset),
    replayDelayMs: p.role === 'replica' ? p.lagMs : null,
    upstream: p.upstream,
    walReceiver: p.role === 'replica' ? (p.replication?.linkStatus === 'up' ? 'streaming' : (p.replication?.syncInProgress ? 'sync' : 'connect')) : null,
  };
  if (p.error) out.error = p.error;
  if (p.errorMessage) out.errorMessage = p.errorMessage;
  if (standbys) out.standbys = standbys;
  if (p.reachable && p.replid) out.history = p.replid;
  if (p.reachable && p.replication?.replid2) out.historyPrev = p.replication.replid2;
  return out;
}

class RedisSeamProber implements Prober {
  private readonly inner: RedisProber;
  constructor(conn: Connection, timeoutMs: number, onLost?: () => void) {
    this.inner = new RedisProber(address(conn), timeoutMs, onLost);
  }
  async probe(): Promise<NodeProbe> {
    return toNodeProbe(await this.inner.probe());
  }
  async close(): Promise<void> {
    this.inner.close();
  }
}

/** Actions on a running Redis node. Each is idempotent. */
export class RedisNodeActions implements NodeActions {
  private fencer: Fencer | null = null;
  /** the count the leader's last sync job set (synchronous mode): what an unfence returns to, before the configured baseline */
  private syncCount: number | null = null;
  constructor(
    private readonly conn: Connection,
    readonly nodeId: string,
    private readonly fenceLeaseMs = 3_000,
    private readonly server: RedisServerOptions = {},
  ) {}

  async promote(hooks: { promoted?: () => void } = {}): Promise<ActionResult> {
    const r = await promote(address(this.conn));
    if (!r.alreadyMaster) hooks.promoted?.();
    // the fork point: the offset of the old history it had when promoted
    return {
      message: r.alreadyMaster ? 'already the master' : `promoted at offset ${r.before.offset} of ${r.before.replid.slice(0, 8)}`,
      position: String(r.before.offset),
      ...(r.alreadyMaster ? { alreadyPrimary: true } : {}),
    };
  }

  /**
   * Switchover, on the old master: stop taking writes (the renewed CLIENT PAUSE WRITE of
   * a fence) and report its offset then: the target is promoted once it has applied it,
   * so no acknowledged write is lost. The node follows the target on the next job.
   */
  async demote(up: Upstream): Promise<ActionResult> {
    await this.fence();
    const c = await RedisConn.connect(address(this.conn), 2_000);
    try {
      const r = await readReplication(c);
      if (r.role !== 'master') return { message: `already a replica (of ${r.masterHost ?? '?'}:${r.masterPort ?? '?'})` };
      return { message: `writes paused at offset ${r.masterOffset} for ${up.id} to catch up`, position: String(r.masterOffset) };
    } finally {
      c.close();
    }
  }

  fenceHeld(): boolean {
    return this.fencer?.fenced ?? false;
  }

  close(): void {
    this.fencer?.stop();
    this.fencer = null;
  }

  async fence(): Promise<void> {
    this.fencer ??= new Fencer(address(this.conn), { leaseMs: this.fenceLeaseMs });
    await this.fencer.fence();
  }

  /**
   * Take writes again: lift the pause, and return `min-replicas-to-write` to what the
   * config (or the leader's synchronous mode) says, not the fence's value (a node
   * started refusing writes runs with `min-replicas-to-write 1`).
   */
  async unfence(): Promise<void> {
    if (this.fencer) {
      await this.fencer.unfence();
      this.fencer = null;
    } else {
      const c = await RedisConn.connect(address(this.conn), 2_000);
      try {
        await c.call('CLIENT', 'UNPAUSE');
      } finally {
        c.close();
      }
    }
    await setMinReplicasToWrite(address(this.conn), this.syncCount ?? this.server.minReplicasToWrite ?? 0, this.server.minReplicasMaxLag ?? 10);
  }

  async follow(up: Upstream): Promise<string> {
    const r = await follow(address(this.conn), up);
    return r.changed ? `REPLICAOF ${up.host} ${up.port} (${up.id})` : `already a replica of ${up.id}`;
  }

  /** Redis has no synchronous replication: `min-replicas-to-write <count>` makes the master refuse writes unless that many replicas are connected and acking. */
  async sync(spec: SyncSpec): Promise<ActionResult> {
    await setMinReplicasToWrite(address(this.conn), spec.count, this.server.minReplicasMaxLag ?? 10);
    this.syncCount = spec.count;
    return { message: `min-replicas-to-write ${spec.count} (Redis acknowledges asynchronously; use WAIT for per-write acknowledgement)` };
  }

  async inRecovery(): Promise<boolean | null> {
    try {
      const c = await RedisConn.connect(address(this.conn), 2_000);
      try {
        return (await readReplication(c)).role === 'replica';
      } finally {
        c.close();
      }
    } catch {
      return null;
    }
  }
}

interface NodeState {
  /** the upstream to start as a replica of; null: start as a master */
  upstream: Upstream | null;
  /** this node has run as a master (so an empty restart as master would wipe its replicas) */
  wasMaster: boolean;
  /** start with min-replicas-to-write 1: a master with no replica refuses writes from its first instant */
  readOnly: boolean;
}

/**
 * A managed Redis node. Its role at start comes from `<dir>/switchyard-node.json`,
 * written by writeStandbyConfig / makeStandbyOf / setReadOnlyOnDisk. The empty-restart
 * rule holds here: a node that has run as a master, has no data on disk and was not
 * given an upstream refuses to start (REDIS_EMPTY_RESTART).
 */
export class ManagedRedis implements ManagedNode {
  readonly dataDir: string;
  /** a Redis node is never re-cloned into a new directory: nothing is ever kept aside */
  readonly keptAside: string | null = null;
  private readonly proc: RedisProcess;
  private adopted: number | null = null;
  private exitHandlers: Array<(code: number | null, signal: NodeJS.Signals | null) => void> = [];
  private stopping = false;

  constructor(
    private readonly spec: ManagedSpec,
    private readonly log: EngineLog,
  ) {
    this.dataDir = path.resolve(spec.dataDir);
    this.proc = new RedisProcess({
      host: spec.listen ?? spec.connection.host,
      port: spec.connection.port,
      dir: this.dataDir,
      password: spec.connection.password,
      appendonly: spec.redisServer?.appendonly ?? false,
      appendfsync: spec.redisServer?.appendfsync,
      save: spec.redisServer?.save,
      announceHost: spec.connection.host,
    });
    this.proc.on('exit', (code: number | null, signal: NodeJS.Signals | null) => {
      if (this.stopping) return;
      this.log.warn({ code, signal }, 'redis-server exited');
      for (const fn of this.exitHandlers) fn(code, signal);
    });
  }

  private get stateFile(): string {
    return path.join(this.dataDir, 'switchyard-node.json');
  }

  private readState(): NodeState {
    try {
      return { upstream: null, wasMaster: false, readOnly: false, ...(JSON.parse(fs.readFileSync(this.stateFile, 'utf8')) as Partial<NodeState>) };
    } catch {
      return { upstream: null, wasMaster: false, readOnly: false };
    }
  }

  private writeState(patch: Partial<NodeState>): void {
    fs.mkdirSync(this.dataDir, { recursive: true });
    const next = { ...this.readState(), ...patch };
    fs.writeFileSync(this.stateFile + '.tmp', JSON.stringify(next));
    fs.renameSync(this.stateFile + '.tmp', this.stateFile);
  }

  get pid(): number | null {
    return this.adopted ?? this.proc.pid;
  }

  get pidFile(): string {
    return this.proc.pidFile;
  }

  processState(): 'running' | 'stopped' | 'dead' {
    if (this.adopted !== null) {
      if (!isProcessAlive(this.adopted)) return 'dead';
      return isProcessStopped(this.adopted) ? 'stopped' : 'running';
    }
    const s = this.proc.state();
    return s === 'starting' ? 'running' : s;
  }

  isRunning(): boolean {
    return this.processState() !== 'dead';
  }

  /** A Redis node needs nothing on disk to start (a new node is empty; start() creates its directory): always true. */
  exists(): boolean {
    return true;
  }

  isStandby(): boolean {
    return this.readState().upstream !== null;
  }

  onExit(fn: (code: number | null, signal: NodeJS.Signals | null) => void): void {
    this.exitHandlers.push(fn);
  }

  async start(): Promise<void> {
    const st = this.readState();
    const intact = dataIntact({ dir: this.dataDir, appendonly: this.spec.redisServer?.appendonly ?? false });
    if (st.upstream === null && st.wasMaster && !intact) {
      throw new RedisProcessError(
        'REDIS_EMPTY_RESTART',
        `node ${this.spec.nodeId} ran as a master and its data did not survive: starting it empty as a master would wipe its replicas; start it as a replica of the current primary (writeStandbyConfig) instead`,
      );
    }
    this.stopping = false;
    this.adopted = null;
    const server = this.spec.redisServer ?? {};
    const minReplicas = st.readOnly ? Math.max(1, server.minReplicasToWrite ?? 0) : (server.minReplicasToWrite ?? 0);
    this.proc.spec.extraArgs = ['--min-replicas-to-write', String(minReplicas), '--min-replicas-max-lag', String(server.minReplicasMaxLag ?? 10)];
    await this.proc.start(st.upstream);
    if (st.upstream === null) this.writeState({ wasMaster: true });
    this.log.info({ pid: this.proc.pid, upstream: st.upstream?.id ?? null, readOnly: st.readOnly }, 'redis-server started');
  }

  async stop(mode: StopMode = 'fast'): Promise<void> {
    this.stopping = true;
    if (this.adopted !== null) {
      this.killTree();
      return;
    }
    if (mode === 'immediate') await this.proc.kill();
    else await this.proc.stop();
  }

  findRunning(): number | null {
    let pid: number;
    try {
      pid = Number(fs.readFileSync(this.proc.pidFile, 'utf8').trim());
    } catch {
      return null;
    }
    if (!Number.isInteger(pid) || pid <= 1) return null;
    try {
      const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      const cwd = fs.readlinkSync(`/proc/${pid}/cwd`);
      // this directory's redis-server, never a stale pid file naming another process
      if (!cmd.includes('redis-server') || !cmd.includes(`:${this.spec.connection.port}`) || path.resolve(cwd) !== this.dataDir) return null;
    } catch {
      return null;
    }
    return isProcessAlive(pid) ? pid : null;
  }

  adopt(pid: number): void {
    this.adopted = pid;
  }

  killTree(): void {
    const pid = this.pid;
    if (pid === null) return;
    for (const target of [pid, -pid]) {
      try {
        process.kill(target, 'SIGKILL');
      } catch {
        // gone
      }
    }
  }

  setReadOnlyOnDisk(on: boolean): void {
    this.writeState({ readOnly: on });
  }

  /**
   * After this node was promoted: it starts as a master from now on, and, having been
   * one, never again empty as a master (the agent calls this once promote succeeded).
   */
  markPrimary(): void {
    this.writeState({ upstream: null, wasMaster: true, readOnly: false });
  }

  recordUpstream(up: Upstream): void {
    this.writeStandbyConfig(up);
  }

  writeStandbyConfig(up: Upstream): void {
    this.writeState({ upstream: { id: up.id, host: up.host, port: up.port }, readOnly: false });
  }

  /** Without persistence a dead node's offset is gone with it: null (loss is then measured from the last observation). */
  async endOfLog(): Promise<string | null> {
    return null;
  }

  async stoppedPosition(): Promise<string | null> {
    return null;
  }

  /** A Redis replica needs no rewind: it resyncs from its master (partially when it can). */
  async makeStandbyOf(up: Upstream): Promise<RejoinHow> {
    this.writeStandbyConfig(up);
    return 'restarted';
  }
}

/**
 * Not 'switchover' (the job an engine that elects itself runs, MongoDB): a Redis
 * switchover is the coordinators' steps, journaled one by one: demote (pause writes,
 * report the offset), promote once the target has it, follow. `FAILOVER TO` is the
 * library's `switchover()` in actions.ts, for callers outside the coordinators.
 */
const SUPPORTED: ReadonlySet<EngineAction> = new Set<EngineAction>(['promote', 'demote', 'follow', 'rejoin', 'fence', 'unfence', 'restart', 'sync']);

export const redisEngine = {
  name: 'redis',
  position: offsetPositions,
  supports: SUPPORTED,
  electsItself: false,
  rejoinsRunning: true,
  /** an inline PING: the server answers +PONG (or -NOAUTH: an answer all the same) */
  hello: Uint8Array.from(Buffer.from('PING\r\n')),
  prober: (conn: Connection, timeoutMs: number, onLost?: () => void) => new RedisSeamProber(conn, timeoutMs, onLost),
  node: (conn: Connection, nodeId: string, opts?: NodeOptions) => new RedisNodeActions(conn, nodeId, 3_000, opts?.redisServer ?? {}),
  managed: (spec: ManagedSpec, log: EngineLog) => new ManagedRedis(spec, log),
} satisfies Engine;
