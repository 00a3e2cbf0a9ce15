/**
 * Response schemas of the routing API (TypeBox), for the OpenAPI document. They
 * describe the answers; they do not shape them: the app serializes with plain
 * JSON.stringify, so a field the core adds is never dropped by a stale schema (the
 * unit tests check the answers against these schemas instead).
 */
import { Type, type SchemaOptions, type TSchema } from '@sinclair/typebox';
import type { FastifySchema } from 'fastify';

/** A route schema with the OpenAPI extras the generator reads (Fastify ignores them). */
export interface DocumentedSchema extends FastifySchema {
  summary?: string;
  description?: string;
  tags?: string[];
  security?: Array<Record<string, string[]>>;
}

/** Type a route schema that carries OpenAPI extras (avoids excess-property errors). */
export function doc(schema: DocumentedSchema): FastifySchema {
  return schema;
}

const Nullable = <T extends TSchema>(t: T, opts?: SchemaOptions) => Type.Union([t, Type.Null()], opts);
const NodeId = Type.String({ description: 'node id' });
/** absent when the node's agent has no zone configured: tables of clusters without zones keep their shape */
const Zone = Type.String({ description: "the zone label of the node's agent (`zone` in its config): clients with a zone prefer nodes in it" });

export const RoutingReplica = Type.Object({
  id: NodeId,
  host: Type.String(),
  port: Type.Integer(),
  healthy: Type.Boolean(),
  lagBytes: Nullable(Type.Integer({ description: "bytes behind the primary's LSN; null while unknown" })),
  lagMs: Nullable(Type.Number({ description: 'replay lag in ms; null while unknown' })),
  replayLsn: Nullable(Type.String()),
  sync: Type.Boolean({ description: 'a synchronous (or quorum) standby of the primary' }),
  zone: Type.Optional(Zone),
  lastWriteDate: Type.Optional(Nullable(Type.String({ format: 'date-time', description: "MongoDB: the member's last write (hello lastWrite.lastWriteDate)" }))),
  stalenessMs: Type.Optional(Nullable(Type.Number({ description: 'MongoDB: server-selection staleness in ms (the spec formula); null when the member is not routable as a secondary' }))),
});

export const RoutingNode = Type.Object({
  id: NodeId,
  host: Type.String(),
  port: Type.Integer(),
  role: Type.Union([Type.Literal('primary'), Type.Literal('replica')], { description: "the journal's view of its role" }),
  phase: Type.String({ description: 'node phase: unknown, primary, primary-down, replica, replica-down, promoting, demoting (docs/state-machine.md)' }),
  healthy: Type.Boolean(),
  reason: Type.String({ description: 'why it is in its phase, as journaled (streaming, agent silent, unreachable: refused, …)' }),
  zone: Type.Optional(Zone),
});

export const RoutingTable = Type.Object(
  {
    cluster: Type.String(),
    engine: Type.String(),
    generation: Type.Integer({ description: 'changes only when the journal changes what the table says' }),
    epoch: Type.Integer({ description: 'highest lease epoch seen in the journal' }),
    writable: Type.Boolean(),
    updatedAt: Type.String({ format: 'date-time' }),
    primary: Nullable(
      Type.Object({
        id: NodeId,
        host: Type.String(),
        port: Type.Integer(),
        zone: Type.Optional(Zone),
        draining: Type.Optional(Type.Literal(true, { description: 'a switchover will demote it shortly: start no new transaction there (writable is false); those in flight may finish' })),
        lastWriteDate: Type.Optional(Nullable(Type.String({ format: 'date-time', description: "MongoDB: the primary's last write" }))),
      }),
      { description: 'null while no node may take writes (but the old primary, marked draining, at the start of a switchover)' },
    ),
    replicas: Type.Array(RoutingReplica),
    setName: Type.Optional(Nullable(Type.String({ description: "MongoDB: the replica set's name" }))),
    phase: Type.Optional(Type.String({ description: 'cluster phase: bootstrapping, healthy, degraded, primary-down, failing-over, switching-over (docs/state-machine.md)' })),
    paused: Type.Optional(Type.Boolean({ description: 'automatic failover is paused' })),
    blocked: Type.Optional(Nullable(Type.String({ description: 'why a failover is blocked, until one starts or the primary recovers' }))),
    nodes: Type.Optional(Type.Array(RoutingNode, { description: 'every registered node, down ones included, with its phase and reason: for operators, not for routing' })),
  },
  { description: 'the routing table; its ETag (an opaque version: "<generation>.<lag digest>") changes with routing and with lag past the hysteresis' },
);

export const ClusterSummary = Type.Object({
  name: Type.String(),
  engine: Type.String(),
  primary: Nullable(NodeId),
  generation: Type.Integer(),
  paused: Type.Boolean(),
  leader: Nullable(Type.String({ description: 'the coordinator the journal names leader' })),
  servedByLeader: Type.Boolean({ description: 'this coordinator holds the lease' }),
});
export const ClusterList = Type.Array(ClusterSummary);

export const JournalEvent = Type.Object({
  id: Type.String({ description: 'stream id, usable as ?after=' }),
  type: Type.String(),
  at: Type.String({ format: 'date-time' }),
  data: Type.Record(Type.String(), Type.Unknown(), { description: "the entry's fields besides type, at and v" }),
});
export const EventsPage = Type.Object({
  events: Type.Array(JournalEvent),
  next: Type.String({ description: 'the cursor for the next page (?after=)' }),
});

export const HistoryItem = Type.Object({
  id: Type.String(),
  kind: Type.Union([Type.Literal('failover'), Type.Literal('switchover')]),
  from: Nullable(NodeId),
  to: NodeId,
  reason: Type.String(),
  startedAt: Type.String({ format: 'date-time' }),
  finishedAt: Nullable(Type.String({ format: 'date-time' })),
  durationMs: Nullable(Type.Number()),
  lostBytes: Type.Integer({ minimum: 0, description: 'estimated at the decision from the last observed LSNs; measured once the old primary’s end of WAL is known (lossMeasured)' }),
  outcome: Type.Union([Type.Literal('running'), Type.Literal('success'), Type.Literal('failed'), Type.Literal('aborted')]),
  forkLsn: Type.Optional(Nullable(Type.String({ description: 'where the new primary’s timeline forked off' }))),
  lossMeasured: Type.Optional(Type.Boolean()),
});
export const History = Type.Array(HistoryItem);

export const HealthAnswer = Type.Object({
  ok: Type.Boolean(),
  node: NodeId,
  role: Type.Union([Type.Literal('primary'), Type.Literal('replica')]),
  reason: Type.String(),
  generation: Type.Integer(),
});

export const OperationAccepted = Type.Object({
  operationId: Type.Union([Type.String(), Type.Null()], { description: 'the operation the leader started: fo-N (failover) or so-N (switchover), the id `ctl explain` and /history use; null while not answered' }),
  commandId: Type.String({ description: "the command's own id (cmd-…), journaled with the operation" }),
  accepted: Type.Boolean({ description: 'the leader carried the command out within 3 s; false: queued, not answered yet' }),
});

export const PauseState = Type.Object({
  paused: Type.Boolean(),
  commandId: Type.Optional(Type.String()),
});

export const Liveness = Type.Object({ ok: Type.Literal(true), coordinator: Type.String() });
export const Readiness = Type.Object({ ok: Type.Boolean(), notReady: Type.Optional(Type.Array(Type.String())) });

export const OperationExplain = Type.Object({
  operation: HistoryItem,
  evidence: Type.Array(Type.Unknown(), { description: 'the observations behind the decision' }),
  entries: Type.Array(JournalEvent),
});

export const TopologyAt = Type.Object({
  at: Type.String({ description: 'stream id of the last journal entry folded' }),
  topology: Type.Record(Type.String(), Type.Unknown(), { description: 'the folded topology (journal layer)' }),
  routing: RoutingTable,
});

export const LagHistory = Type.Object({
  cluster: Type.String(),
  windowMs: Type.Integer({ description: 'how far back samples are kept (15 minutes)' }),
  intervalMs: Type.Integer({ description: 'time between samples' }),
  samples: Type.Array(
    Type.Object({
      at: Type.Integer({ description: 'ms since the epoch' }),
      replicas: Type.Record(Type.String(), Type.Object({ lagMs: Nullable(Type.Number()), lagBytes: Nullable(Type.Integer()) }), { description: 'per replica id; null while unhealthy or unknown' }),
    }),
    { description: 'oldest first' },
  ),
});

export const OpenApiDocument = Type.Object({ openapi: Type.String(), info: Type.Unknown(), paths: Type.Unknown() }, { description: 'the OpenAPI 3.1 document' });

/** Schemas the OpenAPI document shows once, under components/schemas. */
export const COMPONENTS = { RoutingTable, RoutingReplica, RoutingNode, ClusterSummary, JournalEvent, HistoryItem };

export const text = (type: string, description: string) => ({ description, content: { [type]: { schema: Type.String() } } });
