/** Config schemas of the two daemons, shared with the sandbox that writes them. */
import { Type, type Static } from '@sinclair/typebox';

const Name = Type.String({ pattern: '^[A-Za-z0-9_.-]{1,64}$' });
const RedisUrl = Type.String({ pattern: '^rediss?://', description: 'redis://host:port' });

export const Settings = Type.Object(
  {
    failAfterMs: Type.Optional(Type.Integer({ minimum: 0 })),
    refusedFailAfterMs: Type.Optional(Type.Integer({ minimum: 0 })),
    agentTimeoutMs: Type.Optional(Type.Integer({ minimum: 100 })),
    maxLagOnFailoverBytes: Type.Optional(Type.Integer({ minimum: 0 })),
    promoteTimeoutMs: Type.Optional(Type.Integer({ minimum: 100 })),
    cooldownMs: Type.Optional(Type.Integer({ minimum: 0 })),
    jobRetryMs: Type.Optional(Type.Integer({ minimum: 100 })),
    fenceAfterMs: Type.Optional(Type.Integer({ minimum: 500 })),
    fenceMarginMs: Type.Optional(Type.Integer({ minimum: 0 })),
    peerRefusedAfterMs: Type.Optional(Type.Integer({ minimum: 0 })),
    synchronous: Type.Optional(Type.Union([Type.Boolean(), Type.Literal('quorum')])),
    policy: Type.Optional(Type.Union([Type.Literal('failover'), Type.Literal('restart-first')])),
  },
  { additionalProperties: false },
);

export const AgentConfig = Type.Object(
  {
    cluster: Name,
    node: Name,
    redis: RedisUrl,
    engine: Type.Literal('postgres', { default: 'postgres' }),
    host: Type.String({ default: '127.0.0.1', minLength: 1 }),
    port: Type.Integer({ minimum: 1, maximum: 65535 }),
    priority: Type.Integer({ minimum: 0, maximum: 1000, default: 100 }),
    /** never promote this node (reported as priority 0) */
    noFailover: Type.Boolean({ default: false }),
    /** When set, the agent manages the node's process: starts, restarts, rejoins it. */
    dataDir: Type.Optional(Type.String({ minLength: 1 })),
    pgBin: Type.Optional(Type.String()),
    user: Type.String({ default: 'postgres' }),
    password: Type.Optional(Type.String()),
    database: Type.String({ default: 'postgres' }),
    probeIntervalMs: Type.Integer({ minimum: 20, default: 250 }),
    probeTimeoutMs: Type.Integer({ minimum: 50, default: 1000 }),
    /** a primary that cannot reach Redis this long, with no replica connected, refuses writes */
    fenceAfterMs: Type.Integer({ minimum: 500, default: 4000 }),
    logLevel: Type.String({ default: 'info' }),
  },
  { additionalProperties: false },
);
export type AgentConfig = Static<typeof AgentConfig>;

export const ClusterConfig = Type.Object(
  {
    name: Name,
    engine: Type.Literal('postgres', { default: 'postgres' }),
    settings: Type.Optional(Settings),
  },
  { additionalProperties: false },
);

export const CoordinatorConfig = Type.Object(
  {
    id: Name,
    redis: RedisUrl,
    clusters: Type.Array(ClusterConfig, { minItems: 1 }),
    api: Type.Object(
      { host: Type.String({ default: '127.0.0.1' }), port: Type.Integer({ minimum: 0, maximum: 65535, default: 7400 }) },
      { additionalProperties: false, default: {} },
    ),
    adminToken: Type.Optional(Type.String({ minLength: 8 })),
    leaseTtlMs: Type.Integer({ minimum: 500, default: 3000 }),
    tickMs: Type.Integer({ minimum: 10, default: 100 }),
    logLevel: Type.String({ default: 'info' }),
  },
  { additionalProperties: false },
);
export type CoordinatorConfig = Static<typeof CoordinatorConfig>;
