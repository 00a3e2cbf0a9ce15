/**
 * The engine seam: what a database engine (PostgreSQL, Redis, MongoDB) gives the agent
 * and the core. The core decides on the engine-neutral parts only (reachable, role,
 * timeline or term, positions compared through the engine's `position` codec); the
 * agent runs the actions an engine declares and manages its node's process through it.
 *
 * Adding an engine: implement `Engine` in `src/engines/<name>/`, register it in
 * `src/engines/index.ts`, and give the sandbox an arrangement for it. Nothing else in
 * `src/core/` changes.
 *
 * This file is types only: no I/O, importable by the pure core.
 */
import type { MongoFields, NodeRole, ProbeError, ProcessState, ReplicationPeer } from '../events/observation.js';

/** The engines switchyard knows by name (the `engine` field of configs, routing tables and sandbox.json). */
export type EngineName = 'postgres' | 'redis' | 'mongodb';

/* ------------------------------------------------------------------ positions */

/**
 * A position in a node's replication stream, as the engine writes it in observations:
 * PostgreSQL LSN `"16/B374D848"`, Redis replication offset `"123456"`, MongoDB optime
 * `"<term>:<seconds>.<increment>"`. Positions are strings on the wire so that
 * observations and journal entries stay engine-neutral; only the engine's codec reads them.
 */
export type Position = string;

/** Reads and compares an engine's positions. Pure: the core may use it. */
export interface PositionCodec {
  /** The unit `distance` counts in: WAL bytes (PostgreSQL), offset bytes (Redis), seconds (MongoDB optime). */
  readonly unit: 'bytes' | 'seconds';
  /** True when `p` is a well-formed position of this engine. */
  valid(p: string): boolean;
  /** < 0 when a is behind b, 0 when equal, > 0 when a is ahead; null when either is malformed. */
  compare(a: Position, b: Position): number | null;
  /** How far `a` is ahead of `b` in `unit`, never negative; null when either is unknown or malformed. */
  distance(a: Position | null | undefined, b: Position | null | undefined): number | null;
}

/* ------------------------------------------------------------------ probe */

/**
 * One probe of a node: the engine-neutral part of an observation. The agent adds its
 * own identity, process state, peer view and clock, and publishes it.
 */
export interface NodeProbe {
  /** the server answered the probe */
  reachable: boolean;
  /** why it did not: 'refused' is definitive, 'timeout' ambiguous */
  error?: ProbeError;
  errorMessage?: string;
  role: NodeRole;
  /** PostgreSQL timeline, MongoDB term; null where the engine has none (Redis: replication id generations are not ordered) */
  timeline: number | null;
  /** primary: its write position; replica: the newest position it has received */
  lsn: Position | null;
  /** replica: the position it has applied (equals `lsn` where the engine does not tell them apart) */
  replayLsn: Position | null;
  /** replica: ms since the last applied write when it is behind, else 0 */
  replayDelayMs: number | null;
  /** replica: "host:port" it follows */
  upstream: string | null;
  /** replica: state of its replication link ('streaming', 'connect', ...) */
  walReceiver: string | null;
  /** primary: its replicas as it sees them */
  standbys?: ReplicationPeer[];
  /** the node refuses writes on switchyard's say-so (fenced) */
  readOnly?: boolean;
  /** the replication history `lsn` is on, where the engine names one (Redis `master_replid`) */
  history?: string;
  /** the history this one continues up to its fork (Redis `master_replid2` of a promoted node) */
  historyPrev?: string;
  /** MongoDB: what hello and replSetGetStatus said beyond the fields above (published as the observation's `mongo`) */
  mongo?: MongoFields;
}

/** A persistent probe of one node; `onLost` fires when its connection drops (a crash is seen at once). */
export interface Prober {
  probe(): Promise<NodeProbe>;
  close(): Promise<void>;
}

/* ------------------------------------------------------------------ actions */

/**
 * What the coordinator can ask of a node. An engine declares which it supports; the
 * core never sends an unsupported one (MongoDB elects itself: no `promote` on failover,
 * `switchover` steps instead).
 *
 * - promote: make a replica the primary (idempotent: a primary answers "already primary")
 * - demote: switchover, old primary: stop taking writes, report the position the target must reach, become a replica of it
 * - follow: a replica follows another upstream
 * - rejoin: a former primary becomes a replica of the new one (rewind; re-clone only when configured)
 * - fence: refuse writes now and end write sessions (or kill a node that does not answer)
 * - unfence: take writes again (the journal's primary only)
 * - restart: start a crashed node in place as it is
 * - sync: set which replicas must acknowledge a commit
 * - switchover: the engine runs a planned hand-over itself (MongoDB `replSetStepDown`)
 */
export type EngineAction = 'promote' | 'demote' | 'follow' | 'rejoin' | 'fence' | 'unfence' | 'restart' | 'sync' | 'switchover';

export const ENGINE_ACTIONS: readonly EngineAction[] = ['promote', 'demote', 'follow', 'rejoin', 'fence', 'unfence', 'restart', 'sync', 'switchover'];

/** The node a replica should follow. */
export interface Upstream {
  id: string;
  host: string;
  port: number;
}

/** Which replicas must acknowledge a commit: `<method> <count> (<names>)`. */
export interface SyncSpec {
  names: string[];
  count: number;
  method?: 'FIRST' | 'ANY';
}

/** What an action reports back (the job result's message and position). */
export interface ActionResult {
  message: string;
  /** promote: where the new history forked off; demote: the position the target must reach; sync: from where commits wait */
  position?: Position;
  /** promote: the new timeline or term (where the engine has one), known before the node's next report */
  timeline?: number;
  /** promote: the node was a primary already (a duplicate job) */
  alreadyPrimary?: boolean;
}

/**
 * How the agent and the engine reach a node: the configured connection, used for every
 * connection switchyard makes (probes, actions, the source of a rewind, replication).
 */
export interface Connection {
  host: string;
  port: number;
  user: string;
  password?: string | undefined;
  /** a libpq-style passfile (PostgreSQL); where the password is not given inline */
  passfile?: string | undefined;
  /** the user standbys stream as and pg_basebackup logs in as (PostgreSQL; a role with REPLICATION); default: `user` */
  replicationUser?: string | undefined;
  /** its password, when not in the passfile (used only with replicationUser) */
  replicationPassword?: string | undefined;
  database: string;
  /** 'disable' | 'prefer' | 'require' | 'verify-ca' | 'verify-full' */
  sslmode?: string | undefined;
  /** CA certificate (PEM file) for verify-ca / verify-full */
  sslrootcert?: string | undefined;
  /** client certificate and key (PEM files) */
  sslcert?: string | undefined;
  sslkey?: string | undefined;
}

/** Actions on a running node, over its connection. Each is idempotent. */
export interface NodeActions {
  /** `promoted` is called the moment the node takes writes, before any clean-up the action does after */
  promote(hooks?: { promoted?: () => void }): Promise<ActionResult>;
  /**
   * Switchover on the old primary, without stopping the process (Redis): stop taking
   * writes, and report the position the target must reach. The node becomes the
   * target's replica on the follow job that comes after the target's promotion. Absent:
   * the agent stops the managed node and starts it as a standby (PostgreSQL).
   */
  demote?(up: Upstream): Promise<ActionResult>;
  /** flush to disk before a planned stop (PostgreSQL CHECKPOINT) */
  checkpoint?(): Promise<void>;
  /** where timeline `timeline` forked off its parent (PostgreSQL history file); null when unknown */
  forkOf?(timeline: number): Promise<Position | null>;
  /**
   * The fence this object holds right now, for engines whose fence is a lease the agent
   * renews (Redis CLIENT PAUSE) and that the server cannot report itself.
   */
  fenceHeld?(): boolean;
  /** stop any renewal this object runs (agent shutdown); a held fence then lapses by itself */
  close?(): void;
  /** refuse writes and end the sessions that could still write */
  fence(): Promise<void>;
  unfence(): Promise<void>;
  /** point a running replica at `up` (no restart where the engine allows) */
  follow(up: Upstream): Promise<string>;
  sync(spec: SyncSpec): Promise<ActionResult>;
  /** the engine is a replica right now (false when it is a primary or unreachable) */
  inRecovery(): Promise<boolean | null>;
  /**
   * A planned hand-over steered from this node, for an engine that elects itself (MongoDB:
   * replSetStepDown, the target's priority raised): done once `to` is the primary;
   * idempotent (`to` already primary: done).
   */
  switchover?(to: Upstream): Promise<ActionResult>;
  /** pause/resume of an engine that elects itself: no member may be elected for `secs` (0: again) */
  freezeElections?(secs: number): Promise<ActionResult>;
}

/* ------------------------------------------------------------------ process control */

/** How a managed node is stopped: 'fast' lets it finish (PostgreSQL ships its WAL); 'immediate' does not. */
export type StopMode = 'fast' | 'immediate';

/** What rejoining a former primary did. */
export type RejoinHow = 'rewound' | 'recloned' | 'restarted';

/**
 * The agent's hold on a node's process when it is given a data directory: start, watch,
 * stop, adopt after an agent restart, kill, and the engine's own recovery steps.
 */
export interface ManagedNode {
  readonly dataDir: string;
  /** the server's pid while it runs (started here or adopted) */
  readonly pid: number | null;
  /** 'running', 'stopped' (SIGSTOP), or 'dead' */
  processState(): Exclude<ProcessState, 'starting' | 'unmanaged'>;
  isRunning(): boolean;
  /** the data directory holds a node of this engine */
  exists(): boolean;
  /** the data directory is set up as a replica */
  isStandby(): boolean;
  /** called when the process exits without being asked to */
  onExit(fn: (code: number | null, signal: NodeJS.Signals | null) => void): void;
  /** start the server and wait until it answers on the configured connection */
  start(): Promise<void>;
  stop(mode?: StopMode): Promise<void>;
  /**
   * A server already running on this data directory (after an agent restart): its pid,
   * only after verifying the process really is this directory's server (never a stale
   * pid file naming an unrelated process); null when there is none.
   */
  findRunning(): number | null;
  adopt(pid: number): void;
  /** SIGKILL the server and every process under it */
  killTree(): void;
  /** keep a stopped former primary from taking writes when it starts (fenced on disk) */
  setReadOnlyOnDisk(on: boolean): void;
  /** a stopped node: configure it to replicate from `up` */
  writeStandbyConfig(up: Upstream): void;
  /**
   * What the engine can tell about a dead node: the end of its log on disk (PostgreSQL:
   * end of WAL; Redis: offset of its AOF/RDB). What a failover lost is measured against it.
   */
  endOfLog(): Promise<Position | null>;
  /** switchover: the position a stopped old primary reached (PostgreSQL: shutdown checkpoint) */
  stoppedPosition(): Promise<Position | null>;
  /** turn a stopped former primary into a replica of `up` (rewind; re-clone only when allowed) */
  makeStandbyOf(up: Upstream): Promise<RejoinHow>;
  /** after a promotion: the node starts as a primary from now on (engines whose start-up role lives outside the server: Redis) */
  markPrimary?(): void;
  /** after a live follow: the node starts as a replica of `up` from now on (same engines) */
  recordUpstream?(up: Upstream): void;
  /** where the last re-clone put the former data directory (switchyard never removes it), or null */
  readonly keptAside: string | null;
}

/** What an agent tells the engine about its node. */
export interface ManagedSpec {
  nodeId: string;
  dataDir: string;
  /** the connection the agent uses for its own node (port, user, password...) */
  connection: Connection;
  /** address the server listens on (kept through re-clones) */
  listen?: string | undefined;
  /** the engine's binaries directory (PostgreSQL: pgBin); found once when absent */
  binDir?: string | undefined;
  /** re-clone a former primary whose rewind failed (its old data is kept aside, never removed) */
  reclone?: boolean;
  /** Redis: how the agent runs its redis-server (persistence, the min-replicas baseline) */
  redisServer?: RedisServerOptions | undefined;
}

/** How a managed redis-server runs (the agent config's `redisServer`); unset fields take their defaults. */
export interface RedisServerOptions {
  /** appendonly yes: a crashed master restarts with its data (default false) */
  appendonly?: boolean;
  /** appendfsync always | everysec | no (default everysec) */
  appendfsync?: 'always' | 'everysec' | 'no';
  /** the RDB save schedule ("3600 1 300 100"); "" none (default) */
  save?: string;
  /** min-replicas-to-write when not fenced (default 0): an unfence returns to it */
  minReplicasToWrite?: number;
  /** min-replicas-max-lag, seconds (default 10) */
  minReplicasMaxLag?: number;
}

/** What the agent config says of a node that its actions need (engine-specific parts). */
export interface NodeOptions {
  redisServer?: RedisServerOptions | undefined;
}

/* ------------------------------------------------------------------ the engine */

export interface Engine {
  readonly name: EngineName;
  readonly position: PositionCodec;
  /** the actions this engine supports; the agent refuses the others (job code 'unsupported') */
  readonly supports: ReadonlySet<EngineAction>;
  /** the engine elects its own primary (MongoDB): switchyard observes, routes and steers switchovers */
  readonly electsItself: boolean;
  /** a running former primary rejoins in place (Redis: REPLICAOF), without a stop and a rewind */
  readonly rejoinsRunning?: boolean;
  /**
   * Bytes the server itself answers (the peer view: a TCP connect alone proves nothing,
   * the kernel completes it for a frozen server). PostgreSQL: an SSLRequest; Redis: PING.
   */
  readonly hello?: Uint8Array;
  /** a persistent probe of the node at `conn`; `onLost` fires when its connection drops */
  prober(conn: Connection, timeoutMs: number, onLost?: () => void): Prober;
  /** actions on the node at `conn`; `nodeId` is what it reports to its primary as a replica */
  node(conn: Connection, nodeId: string, opts?: NodeOptions): NodeActions;
  /** process control for a node whose data directory the agent manages (absent: unmanaged only) */
  managed?(spec: ManagedSpec, log: EngineLog): ManagedNode;
}

/** The few logger methods an engine uses (pino's Logger fits). */
export interface EngineLog {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}
