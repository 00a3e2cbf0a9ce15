/**
 * Observations: what an agent saw of its node (and of the current primary, from its
 * host), appended to `sy:{c}:obs` on every probe. Every probe is also the agent's
 * heartbeat. Observations are soft state: the newest one per node is all that counts,
 * and `(bootId, seq)` lets the pure layer drop stale or reordered ones.
 */
import { Type, type Static } from '@sinclair/typebox';
import { JOB_CODE_LIST } from '../errors.js';

export const ProbeError = Type.Union([
  Type.Literal('refused'), // nothing listens: definitive
  Type.Literal('timeout'), // ambiguous: pause, overload, network
  Type.Literal('auth'),
  Type.Literal('starting'), // the server answers "starting up" / "shutting down"
  Type.Literal('other'),
]);
export type ProbeError = Static<typeof ProbeError>;

/** A zone label (an availability zone, a rack, a data centre): what clients match their own zone against. */
export const Zone = Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_.-]{1,64}$' });

export const NodeRole = Type.Union([Type.Literal('primary'), Type.Literal('replica'), Type.Literal('unknown')]);
export type NodeRole = Static<typeof NodeRole>;

/** What the agent knows of its node's process, when it manages (or watches) it. */
export const ProcessState = Type.Union([
  Type.Literal('running'),
  Type.Literal('dead'), // the postmaster exited / pid gone: definitive
  Type.Literal('stopped'), // SIGSTOP'd: alive, not dead
  Type.Literal('starting'),
  Type.Literal('unmanaged'), // the agent does not manage the process
]);
export type ProcessState = Static<typeof ProcessState>;

/** A standby as the primary sees it in pg_stat_replication. */
export const ReplicationPeer = Type.Object({
  name: Type.String({ maxLength: 128 }), // application_name = node id
  state: Type.String({ maxLength: 32 }),
  replayLsn: Type.Union([Type.String({ maxLength: 32 }), Type.Null()]),
  flushLsn: Type.Union([Type.String({ maxLength: 32 }), Type.Null()]),
  replayLagMs: Type.Union([Type.Number(), Type.Null()]),
  syncState: Type.String({ maxLength: 16 }),
  /** ms since the standby's last reply: a standby cut off stays 'streaming' until wal_sender_timeout */
  replyAgeMs: Type.Optional(Type.Union([Type.Number(), Type.Null()])),
});
export type ReplicationPeer = Static<typeof ReplicationPeer>;

/** What an agent sees of the current primary from its own host. */
export const PeerView = Type.Object({
  node: Type.String({ maxLength: 128 }),
  reachable: Type.Boolean(),
  error: Type.Optional(ProbeError),
});
export type PeerView = Static<typeof PeerView>;

/**
 * MongoDB only: what the member's `hello` and `replSetGetStatus` said beyond the
 * engine-neutral fields (src/engines/mongo/observation.ts). Optional: other engines'
 * observations, and those written before it, stay valid.
 */
const NullableString = (maxLength: number) => Type.Union([Type.String({ maxLength }), Type.Null()]);
export const MongoFields = Type.Object({
  /** its own state: PRIMARY, SECONDARY, RECOVERING, ROLLBACK, ARBITER, ... */
  state: Type.String({ maxLength: 32 }),
  secondary: Type.Optional(Type.Boolean()),
  arbiterOnly: Type.Optional(Type.Boolean()),
  setName: NullableString(128),
  setVersion: Type.Union([Type.Integer(), Type.Null()]),
  /** hex of the electionId (a primary's) */
  electionId: NullableString(24),
  term: Type.Union([Type.Integer(), Type.Null()]),
  /** ms since epoch of its last write (hello lastWrite.lastWriteDate) */
  lastWriteDate: Type.Union([Type.Number(), Type.Null()]),
  hosts: Type.Array(Type.String({ maxLength: 300 }), { maxItems: 64 }),
  passives: Type.Optional(Type.Array(Type.String({ maxLength: 300 }), { maxItems: 64 })),
  arbiters: Type.Optional(Type.Array(Type.String({ maxLength: 300 }), { maxItems: 64 })),
  primary: NullableString(300),
  me: NullableString(300),
  tags: Type.Optional(Type.Record(Type.String({ maxLength: 64 }), Type.String({ maxLength: 256 }))),
  /** the members as replSetGetStatus lists them */
  members: Type.Array(Type.Object({ name: Type.String({ maxLength: 300 }), state: Type.String({ maxLength: 32 }), health: Type.Number(), lagMs: Type.Union([Type.Number(), Type.Null()]) }), { maxItems: 64 }),
  /** the agent's probe interval: the heartbeat of the server-selection staleness formula */
  probeIntervalMs: Type.Optional(Type.Integer({ minimum: 1 })),
});
export type MongoFields = Static<typeof MongoFields>;

export const ObservationV1 = Type.Object({
  type: Type.Literal('obs'),
  v: Type.Literal(1),
  node: Type.String({ minLength: 1, maxLength: 128 }),
  bootId: Type.String({ minLength: 1, maxLength: 64 }),
  seq: Type.Integer({ minimum: 0 }),
  /** this boot's number (a Redis counter per node, taken at agent start): orders boots without clocks */
  bootSeq: Type.Optional(Type.Integer({ minimum: 1 })),
  /** agent wall clock, ms since epoch: informational, never compared across hosts */
  at: Type.Number(),
  host: Type.String({ maxLength: 255 }),
  port: Type.Integer({ minimum: 1, maximum: 65535 }),
  priority: Type.Integer({ minimum: 0, maximum: 1000 }),
  /** the node's zone label from the agent's config (e.g. `eu-west-1a`), for clients' `nearest` reads; absent: none configured */
  zone: Type.Optional(Zone),
  reachable: Type.Boolean(),
  error: Type.Optional(ProbeError),
  errorMessage: Type.Optional(Type.String({ maxLength: 500 })),
  process: ProcessState,
  role: NodeRole,
  timeline: Type.Union([Type.Integer(), Type.Null()]),
  /** primary: pg_current_wal_lsn(); replica: receive LSN (newest WAL it holds) */
  lsn: Type.Union([Type.String({ maxLength: 32 }), Type.Null()]),
  replayLsn: Type.Union([Type.String({ maxLength: 32 }), Type.Null()]),
  /** replica: ms since the last replayed transaction when replay is behind, else 0 */
  replayDelayMs: Type.Union([Type.Number(), Type.Null()]),
  upstream: Type.Union([Type.String({ maxLength: 300 }), Type.Null()]),
  walReceiver: Type.Union([Type.String({ maxLength: 32 }), Type.Null()]),
  /** primary only: its standbys */
  standbys: Type.Optional(Type.Array(ReplicationPeer, { maxItems: 64 })),
  peer: Type.Optional(PeerView),
  /** highest leader epoch this agent has seen on a job */
  epochSeen: Type.Integer({ minimum: 0 }),
  /** the agent made its node refuse writes (it lost Redis with no replica connected) */
  fenced: Type.Optional(Type.Boolean()),
  /**
   * the end of WAL the agent found on disk (pg_waldump) after its node died as a
   * primary: what a failover lost is measured against it
   */
  walEnd: Type.Optional(Type.String({ maxLength: 32 })),
  /** primary on a timeline > 1: where that timeline forked off (its history file) */
  forkLsn: Type.Optional(Type.String({ maxLength: 32 })),
  /**
   * the agent keeps its node out of rotation, and why (e.g. a former primary that
   * pg_rewind could not rejoin while re-cloning is off): only an operator brings it back
   */
  outOfRotation: Type.Optional(Type.String({ maxLength: 500 })),
  /**
   * the agent's own fenceAfterMs: a primary whose agent cannot reach Redis this long fences
   * itself. The core waits for the largest of this and its own setting (plus the margin).
   */
  fenceAfterMs: Type.Optional(Type.Integer({ minimum: 0 })),
  /** a promote job is running (its operation id): a report of the node as a replica may be overtaken */
  promoting: Type.Optional(Type.String({ maxLength: 128 })),
  /**
   * the replication history the node's position is on, where the engine names one (Redis
   * `master_replid`): positions compare only on one history, so a failover promotes only a
   * replica on the primary's (see src/core/rules/candidate.ts)
   */
  history: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
  /** the history this one continues up to its fork, where the engine tells it (Redis `master_replid2` of a promoted node) */
  historyPrev: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
  /** MongoDB: the set as this member sees it */
  mongo: Type.Optional(MongoFields),
});
export type Observation = Static<typeof ObservationV1>;

/** The actions a job asks of an agent (the engine seam's actions that run as jobs). */
/** (`switchover`: an engine that elects itself steers a planned hand-over on the old primary's agent: MongoDB replSetStepDown) */
/** (`freeze`: pause/resume of such a set freezes/unfreezes elections on its secondaries: MongoDB replSetFreeze) */
export const JOB_ACTIONS = ['promote', 'demote', 'follow', 'rejoin', 'fence', 'unfence', 'sync', 'restart', 'switchover', 'freeze'] as const;
export type JobActionName = (typeof JOB_ACTIONS)[number];

/** An agent's report of a job it ran (or refused). */
export const JobResultV1 = Type.Object({
  type: Type.Literal('job.result'),
  v: Type.Literal(1),
  node: Type.String({ minLength: 1, maxLength: 128 }),
  bootId: Type.String({ minLength: 1, maxLength: 64 }),
  at: Type.Number(),
  jobId: Type.String({ maxLength: 256 }),
  epoch: Type.Integer({ minimum: 0 }),
  operationId: Type.String({ maxLength: 128 }),
  action: Type.Union(JOB_ACTIONS.map((a) => Type.Literal(a))),
  ok: Type.Boolean(),
  /** why it was refused or failed: a code of the catalogue's JOB_CODES (src/errors.ts), e.g. 'stale-epoch' */
  code: Type.Optional(Type.Union(JOB_CODE_LIST.map((c) => Type.Literal(c)))),
  message: Type.Optional(Type.String({ maxLength: 1000 })),
  durationMs: Type.Number({ minimum: 0 }),
  /** demote: the shutdown checkpoint LSN a switchover target must reach */
  lsn: Type.Optional(Type.String({ maxLength: 32 })),
  /** promote: the timeline the node is on once promoted */
  timeline: Type.Optional(Type.Integer({ minimum: 1 })),
});
export type JobResult = Static<typeof JobResultV1>;

/**
 * An operator's request (`sy:{c}:cmd`), written by any coordinator's API and carried
 * out by the leader's decide. The journal entry it leads to names its id.
 */
export const CommandV1 = Type.Object({
  type: Type.Literal('command'),
  v: Type.Literal(1),
  id: Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9_.-]+$' }),
  action: Type.Union([Type.Literal('pause'), Type.Literal('resume'), Type.Literal('switchover'), Type.Literal('failover')]),
  to: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
  /** pause of a set that elects itself (MongoDB): no secondary may be elected for this long (replSetFreeze) */
  freezeSecs: Type.Optional(Type.Integer({ minimum: 1, maximum: 86_400 })),
  by: Type.String({ maxLength: 128 }),
  at: Type.Number(),
});
export type Command = Static<typeof CommandV1>;

export const ObsStreamEntry = Type.Union([ObservationV1, JobResultV1]);
export type ObsStreamEntry = Static<typeof ObsStreamEntry>;
