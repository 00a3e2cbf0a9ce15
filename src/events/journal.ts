/**
 * The journal (`sy:{c}:log`): facts that change the topology, and every decision with
 * its evidence. Topology = fold(journal). Only the lease holder appends, through a Lua
 * script that checks the lease (see src/bus/lua/append-2.lua).
 */
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { Zone } from './observation.js';

const Id = Type.String({ minLength: 1, maxLength: 128 });
const OpId = Type.String({ minLength: 1, maxLength: 128 });

function entry<T extends string, P extends Record<string, TSchema>>(type: T, props: P) {
  return Type.Object({
    type: Type.Literal(type),
    v: Type.Literal(1),
    /** the leader's wall clock, ms since epoch */
    at: Type.Number(),
    /** the lease epoch of the leader that wrote it */
    epoch: Type.Integer({ minimum: 0 }),
    ...props,
  });
}

/** A compact copy of an observation, kept as evidence with a decision. */
export const Evidence = Type.Object({
  node: Id,
  receivedAt: Type.Number(),
  reachable: Type.Boolean(),
  error: Type.Optional(Type.String({ maxLength: 32 })),
  process: Type.Optional(Type.String({ maxLength: 32 })),
  role: Type.Optional(Type.String({ maxLength: 16 })),
  lsn: Type.Optional(Type.Union([Type.String({ maxLength: 32 }), Type.Null()])),
  timeline: Type.Optional(Type.Union([Type.Integer(), Type.Null()])),
  peer: Type.Optional(Type.Unknown()),
  silentMs: Type.Optional(Type.Number()),
});
export type Evidence = Static<typeof Evidence>;

export const LeaderChanged = entry('leader.changed', { coordinator: Type.String({ maxLength: 128 }) });
export const NodeRegistered = entry('node.registered', {
  node: Id,
  host: Type.String({ maxLength: 255 }),
  port: Type.Integer({ minimum: 1, maximum: 65535 }),
  priority: Type.Integer({ minimum: 0, maximum: 1000 }),
  /** the zone label its agent reports; absent when none is configured (and in entries written before zones) */
  zone: Type.Optional(Zone),
});
export const NodeRemoved = entry('node.removed', { node: Id, reason: Type.String({ maxLength: 500 }) });
export const HealthChanged = entry('node.health-changed', {
  node: Id,
  healthy: Type.Boolean(),
  reason: Type.String({ maxLength: 500 }),
});
export const RoleChanged = entry('node.role-changed', {
  node: Id,
  role: Type.Union([Type.Literal('primary'), Type.Literal('replica')]),
  reason: Type.String({ maxLength: 500 }),
});
export const FailoverStarted = entry('failover.started', {
  operationId: OpId,
  kind: Type.Union([Type.Literal('failover'), Type.Literal('switchover')]),
  from: Type.Union([Id, Type.Null()]),
  to: Id,
  reason: Type.String({ maxLength: 500 }),
  manual: Type.Boolean(),
  /** the operator's command that started it, if any */
  commandId: Type.Optional(OpId),
  /** … and its id in the command stream: a restarted coordinator reads commands after the last one consumed */
  commandStreamId: Type.Optional(Type.String({ maxLength: 64 })),
  lostBytes: Type.Integer({ minimum: 0 }),
  evidence: Type.Array(Evidence, { maxItems: 64 }),
  /**
   * failover: the old primary, deposed. It must not take a write from here on: the
   * leader fences it (fence.requested) before it promotes anyone, unless it is known dead
   * or its lease has run out. Absent in journals written before fence-before-promote.
   */
  deposed: Type.Optional(Type.Union([Id, Type.Null()])),
});
/**
 * Failover: the deposed primary's agent is asked to fence it (read-only and end its
 * sessions, or SIGKILL the whole instance when it does not answer) before the promotion.
 */
export const FenceRequested = entry('fence.requested', { operationId: OpId, node: Id, reason: Type.String({ maxLength: 500 }), jobId: Type.String() });
export const PromotionRequested = entry('promotion.requested', { operationId: OpId, node: Id, jobId: Type.String() });
export const PromotionSucceeded = entry('promotion.succeeded', {
  operationId: OpId,
  node: Id,
  timeline: Type.Union([Type.Integer(), Type.Null()]),
  /** where the new timeline forked off the old one (its history file) */
  forkLsn: Type.Optional(Type.Union([Type.String({ maxLength: 32 }), Type.Null()])),
});
/**
 * What a failover lost, measured once the old primary's agent read its end of WAL
 * from disk: the WAL between the new timeline's fork point and that end.
 */
export const FailoverLoss = entry('failover.loss', {
  operationId: OpId,
  node: Id,
  walEnd: Type.String({ maxLength: 32 }),
  forkLsn: Type.String({ maxLength: 32 }),
  lostBytes: Type.Integer({ minimum: 0 }),
});
export const PromotionFailed = entry('promotion.failed', {
  operationId: OpId,
  node: Id,
  reason: Type.String({ maxLength: 1000 }),
});
export const FollowRequested = entry('follow.requested', {
  operationId: OpId,
  node: Id,
  upstream: Id,
  action: Type.Union([Type.Literal('follow'), Type.Literal('rejoin')]),
  jobId: Type.String(),
});
export const FailoverCompleted = entry('failover.completed', {
  operationId: OpId,
  /** which operation ended: failover.* entries cover switchovers too (absent in entries written before it was added) */
  kind: Type.Optional(Type.Union([Type.Literal('failover'), Type.Literal('switchover')])),
  outcome: Type.Union([Type.Literal('success'), Type.Literal('failed'), Type.Literal('aborted')]),
  durationMs: Type.Number({ minimum: 0 }),
  reason: Type.String({ maxLength: 500 }),
});
export const FailoverBlocked = entry('failover.blocked', {
  primary: Type.Union([Id, Type.Null()]),
  reason: Type.String({ maxLength: 1000 }),
  evidence: Type.Array(Evidence, { maxItems: 64 }),
});
export const NodeFenced = entry('node.fenced', { node: Id, reason: Type.String({ maxLength: 500 }) });
export const Paused = entry('cluster.paused', {
  by: Type.String({ maxLength: 128 }),
  commandId: Type.Optional(OpId),
  commandStreamId: Type.Optional(Type.String({ maxLength: 64 })),
  /** a set that elects itself: elections frozen on its secondaries for this long (replSetFreeze) */
  freezeSecs: Type.Optional(Type.Integer({ minimum: 1 })),
});
export const Resumed = entry('cluster.resumed', { by: Type.String({ maxLength: 128 }), commandId: Type.Optional(OpId), commandStreamId: Type.Optional(Type.String({ maxLength: 64 })) });
/** An operator's command that cannot be carried out, and why. */
export const CommandRejected = entry('command.rejected', {
  commandId: OpId,
  action: Type.String({ maxLength: 32 }),
  reason: Type.String({ maxLength: 1000 }),
  commandStreamId: Type.Optional(Type.String({ maxLength: 64 })),
});
/** The leader asks the agent of a crashed primary to start it again in place. */
export const RestartRequested = entry('restart.requested', { operationId: OpId, node: Id, reason: Type.String({ maxLength: 500 }), jobId: Type.String() });
/** The leader asks a self-fenced primary to take writes again (it is still the journal's primary). */
export const UnfenceRequested = entry('unfence.requested', { operationId: OpId, node: Id, jobId: Type.String() });
/**
 * Synchronous mode: the leader asks the primary to set synchronous_standby_names to
 * `FIRST <count> (<names>)`.
 */
export const SyncRequested = entry('sync.requested', {
  operationId: OpId,
  node: Id,
  names: Type.Array(Id, { minItems: 1, maxItems: 64 }),
  count: Type.Integer({ minimum: 1, maximum: 64 }),
  /** FIRST (priority) or ANY (quorum); FIRST when absent */
  method: Type.Optional(Type.Union([Type.Literal('FIRST'), Type.Literal('ANY')])),
  jobId: Type.String(),
});
/**
 * Synchronous mode: the standbys that hold every acknowledged commit, the only failover
 * candidates (empty: none established, no automatic failover).
 */
export const SyncChanged = entry('sync.changed', { names: Type.Array(Id, { maxItems: 64 }), reason: Type.String({ maxLength: 500 }) });
/** Switchover: the old primary is asked to stop taking writes and step down. */
export const DemotionRequested = entry('demotion.requested', { operationId: OpId, node: Id, jobId: Type.String() });
/** Switchover: the old primary is down; the target must reach `lsn` before it is promoted. */
export const DemotionSucceeded = entry('demotion.succeeded', {
  operationId: OpId,
  node: Id,
  lsn: Type.Union([Type.String({ maxLength: 32 }), Type.Null()]),
});
/** An operation changes its target (a switchover whose target could not catch up rolls back to the old primary). */
export const OperationRetargeted = entry('operation.retargeted', { operationId: OpId, to: Id, reason: Type.String({ maxLength: 500 }) });
/**
 * A replica set that elects itself (MongoDB): a change switchyard observed, with its
 * evidence (the facts of src/engines/mongo/topology.ts). `election` names the new primary
 * (the journal adopts it), `step-down` the primary that no longer is one; `stale-primary`
 * a member claiming primary with an older (electionId, setVersion): never routed.
 */
export const SetChanged = entry('set.changed', {
  fact: Type.Union(['election', 'step-down', 'stale-primary', 'member-added', 'member-removed', 'member-stuck', 'set-name-mismatch'].map((f) => Type.Literal(f))),
  /** the member's address (host:port) */
  member: Type.String({ maxLength: 300 }),
  /** the registered node at that address, if any */
  node: Type.Union([Id, Type.Null()]),
  /** election: the former primary's address */
  previous: Type.Optional(Type.Union([Type.String({ maxLength: 300 }), Type.Null()])),
  electionId: Type.Optional(Type.Union([Type.String({ maxLength: 24 }), Type.Null()])),
  setVersion: Type.Optional(Type.Union([Type.Integer(), Type.Null()])),
  term: Type.Optional(Type.Union([Type.Integer(), Type.Null()])),
  /** step-down, member-stuck: the state it reports */
  state: Type.Optional(Type.String({ maxLength: 32 })),
  /** member-stuck: for how long, ms */
  forMs: Type.Optional(Type.Number({ minimum: 0 })),
  /** election: the members by the new primary's word, and the set's name */
  hosts: Type.Optional(Type.Array(Type.String({ maxLength: 300 }), { maxItems: 64 })),
  setName: Type.Optional(Type.String({ maxLength: 128 })),
  /** election: a change of primary the set made by itself is a history item (a failover, fo-N); its id, when the former primary was last seen as primary (ms), and why */
  operationId: Type.Optional(Type.String({ maxLength: 64 })),
  since: Type.Optional(Type.Number({ minimum: 0 })),
  reason: Type.Optional(Type.String({ maxLength: 500 })),
  /** one-off facts (stale primary, stuck member, set-name mismatch): journaled once per key */
  key: Type.Optional(Type.String({ maxLength: 400 })),
  evidence: Type.String({ maxLength: 1000 }),
});
export const EntryRejected = entry('entry.rejected', {
  stream: Type.String({ maxLength: 128 }),
  id: Type.String({ maxLength: 64 }),
  reason: Type.String({ maxLength: 1000 }),
});

export const JournalEntry = Type.Union([
  LeaderChanged,
  NodeRegistered,
  NodeRemoved,
  HealthChanged,
  RoleChanged,
  FailoverStarted,
  FenceRequested,
  PromotionRequested,
  PromotionSucceeded,
  PromotionFailed,
  FollowRequested,
  FailoverCompleted,
  FailoverBlocked,
  NodeFenced,
  Paused,
  Resumed,
  EntryRejected,
  CommandRejected,
  DemotionRequested,
  DemotionSucceeded,
  OperationRetargeted,
  UnfenceRequested,
  SyncRequested,
  SyncChanged,
  RestartRequested,
  FailoverLoss,
  SetChanged,
]);
export type JournalEntry = Static<typeof JournalEntry>;
export type JournalType = JournalEntry['type'];
export type JournalOf<T extends JournalType> = Extract<JournalEntry, { type: T }>;

/** A journal entry without the envelope the shell fills in (at, epoch, v). */
export type JournalDraft = JournalEntry extends infer E
  ? E extends JournalEntry
    ? Omit<E, 'at' | 'epoch' | 'v'>
    : never
  : never;
