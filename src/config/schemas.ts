/**
 * Config schemas of the two daemons: one TypeBox schema each, with a description and
 * a default for every field (required fields say so). Extra keywords the loader and
 * the docs read:
 *   env     the SWITCHYARD_* variable that sets the field (the environment wins over the file)
 *   secret  never logged (pino redaction paths are derived from it)
 *   live    can change on SIGHUP without a restart
 * docs/configuration.md is generated from these schemas (`npm run docs`); a test fails
 * when the two differ. To add a field: add it here with description, default and env.
 */
import { Type, type Static } from '@sinclair/typebox';
import { DEFAULT_SETTINGS } from '../core/settings.js';

const Name = (description: string, env?: string) => Type.String({ pattern: '^[A-Za-z0-9_.-]{1,64}$', description, ...(env ? { env } : {}) });
const LogLevel = Type.Union(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)), {
  default: 'info',
  description: 'pino log level',
  env: 'SWITCHYARD_LOG_LEVEL',
  live: true,
});

/** Paths of a secret on disk: read at start-up (and on SIGHUP), never from the command line. */
const File = (description: string, env: string) => Type.Optional(Type.String({ minLength: 1, description, env }));

/** The coordination store (Redis): URL, ACL user, password, TLS. Shared by both daemons. */
const storeFields = {
  redis: Type.String({
    pattern: '^rediss?://',
    default: 'redis://127.0.0.1:6379',
    description: 'the coordination Redis: redis://host:port, or rediss://host:port for TLS (credentials belong in redisUser/redisPassword, not here)',
    env: 'SWITCHYARD_REDIS',
  }),
  redisUser: Type.Optional(Type.String({ minLength: 1, default: 'default', description: 'Redis ACL user', env: 'SWITCHYARD_REDIS_USER' })),
  redisPassword: Type.Optional(Type.String({ minLength: 1, description: 'Redis ACL password (prefer redisPasswordFile; default: none)', env: 'SWITCHYARD_REDIS_PASSWORD', secret: true })),
  redisPasswordFile: File('file holding the Redis password (one line; default: none)', 'SWITCHYARD_REDIS_PASSWORD_FILE'),
  redisTls: Type.Optional(
    Type.Object(
      {
        caFile: File('CA certificate (PEM) that signed the Redis server certificate (default: the system CAs)', 'SWITCHYARD_REDIS_TLS_CA_FILE'),
        certFile: File('client certificate (PEM), for Redis with tls-auth-clients (default: none)', 'SWITCHYARD_REDIS_TLS_CERT_FILE'),
        keyFile: File('client key (PEM) (default: none)', 'SWITCHYARD_REDIS_TLS_KEY_FILE'),
        servername: Type.Optional(Type.String({ description: 'name to verify in the server certificate (default: the URL host)', env: 'SWITCHYARD_REDIS_TLS_SERVERNAME' })),
      },
      { additionalProperties: false, description: 'TLS to Redis; used with a rediss:// URL (default: none)' },
    ),
  ),
};

export const Settings = Type.Object(
  {
    failAfterMs: Type.Optional(Type.Integer({ minimum: 0, default: DEFAULT_SETTINGS.failAfterMs, description: 'a primary unreachable for an ambiguous reason (timeout, stopped process) is failed over after this long', env: 'SWITCHYARD_FAIL_AFTER_MS', live: true })),
    refusedFailAfterMs: Type.Optional(Type.Integer({ minimum: 0, default: DEFAULT_SETTINGS.refusedFailAfterMs, description: 'a primary with definitive evidence of death (connection refused, postmaster gone) is failed over after this long', env: 'SWITCHYARD_REFUSED_FAIL_AFTER_MS', live: true })),
    agentTimeoutMs: Type.Optional(Type.Integer({ minimum: 100, default: DEFAULT_SETTINGS.agentTimeoutMs, description: 'an agent silent this long no longer counts', env: 'SWITCHYARD_AGENT_TIMEOUT_MS', live: true })),
    maxLagOnFailoverBytes: Type.Optional(Type.Integer({ minimum: 0, default: DEFAULT_SETTINGS.maxLagOnFailoverBytes, description: 'a replica further behind than this is not a failover candidate', env: 'SWITCHYARD_MAX_LAG_ON_FAILOVER_BYTES', live: true })),
    promoteTimeoutMs: Type.Optional(Type.Integer({ minimum: 100, default: DEFAULT_SETTINGS.promoteTimeoutMs, description: 'a promotion not confirmed within this long is failed', env: 'SWITCHYARD_PROMOTE_TIMEOUT_MS', live: true })),
    cooldownMs: Type.Optional(Type.Integer({ minimum: 0, default: DEFAULT_SETTINGS.cooldownMs, description: 'minimum time between two automatic failovers', env: 'SWITCHYARD_COOLDOWN_MS', live: true })),
    jobRetryMs: Type.Optional(Type.Integer({ minimum: 100, default: DEFAULT_SETTINGS.jobRetryMs, description: 'a follow/rejoin job that has not taken effect is sent again after this long', env: 'SWITCHYARD_JOB_RETRY_MS', live: true })),
    fenceAfterMs: Type.Optional(Type.Integer({ minimum: 500, default: DEFAULT_SETTINGS.fenceAfterMs, description: "an isolated primary's agent fences its node after this long; must equal the agents' fenceAfterMs", env: 'SWITCHYARD_FENCE_AFTER_MS', live: true })),
    fenceMarginMs: Type.Optional(Type.Integer({ minimum: 0, default: DEFAULT_SETTINGS.fenceMarginMs, description: "a silent primary's lease is over this long after fenceAfterMs (clock drift, the fencing itself)", env: 'SWITCHYARD_FENCE_MARGIN_MS', live: true })),
    peerRefusedAfterMs: Type.Optional(Type.Integer({ minimum: 0, default: DEFAULT_SETTINGS.peerRefusedAfterMs, description: 'a silent primary refused by a majority of peers this long is failed over without waiting for its lease', env: 'SWITCHYARD_PEER_REFUSED_AFTER_MS', live: true })),
    synchronous: Type.Optional(Type.Union([Type.Boolean(), Type.Literal('quorum')], { default: DEFAULT_SETTINGS.synchronous, description: "synchronous replication: false, true (FIRST 1) or 'quorum' (ANY 1)", env: 'SWITCHYARD_SYNCHRONOUS' })),
    policy: Type.Optional(Type.Union([Type.Literal('failover'), Type.Literal('restart-first')], { default: DEFAULT_SETTINGS.policy, description: "'failover' a crashed primary at once, or 'restart-first' in place", env: 'SWITCHYARD_POLICY', live: true })),
    switchoverDrainMs: Type.Optional(Type.Integer({ minimum: 0, maximum: 60_000, default: DEFAULT_SETTINGS.switchoverDrainMs, description: 'a switchover marks the old primary draining this long before demoting it, so clients stop sending it new transactions', env: 'SWITCHYARD_SWITCHOVER_DRAIN_MS', live: true })),
    promotedGraceMs: Type.Optional(Type.Integer({ minimum: 0, default: DEFAULT_SETTINGS.promotedGraceMs, description: "a node its agent promoted may stay primary this long while the leader's published primary still predates the operation", env: 'SWITCHYARD_PROMOTED_GRACE_MS', live: true })),
    staleAfterMs: Type.Optional(Type.Integer({ minimum: 100, default: DEFAULT_SETTINGS.staleAfterMs, description: 'a coordinator that has not read the streams this long names no primary to anyone (the API answers 503)', env: 'SWITCHYARD_STALE_AFTER_MS', live: true })),
  },
  { additionalProperties: false, default: {}, description: 'failure-detection and failover settings of this cluster' },
);

export const AgentConfig = Type.Object(
  {
    cluster: Name('the database cluster this node belongs to (required)', 'SWITCHYARD_CLUSTER'),
    node: Name('this node\'s id, unique in the cluster (required)', 'SWITCHYARD_NODE'),
    ...storeFields,
    engine: Type.Union([Type.Literal('postgres'), Type.Literal('redis'), Type.Literal('mongodb')], { default: 'postgres', description: 'database engine of the node (redis: see docs/redis.md; mongodb: observe-only, no dataDir, see docs/mongodb.md)', env: 'SWITCHYARD_ENGINE' }),
    host: Type.String({ default: '127.0.0.1', minLength: 1, description: 'address of the node as other hosts and clients reach it', env: 'SWITCHYARD_PG_HOST' }),
    port: Type.Integer({ minimum: 1, maximum: 65535, default: 5432, description: 'port of the node', env: 'SWITCHYARD_PG_PORT' }),
    priority: Type.Integer({ minimum: 0, maximum: 1000, default: 100, description: 'failover preference among equals; 0 never promotes this node', env: 'SWITCHYARD_PRIORITY' }),
    noFailover: Type.Boolean({ default: false, description: 'never promote this node (reported as priority 0)', env: 'SWITCHYARD_NO_FAILOVER' }),
    zone: Type.Optional(
      Type.String({
        pattern: '^[A-Za-z0-9_.-]{1,64}$',
        description: "this node's zone (availability zone, rack or data centre), e.g. eu-west-1a: up to 64 letters, digits, '.', '_' or '-'. The routing table carries it; a client with the same zone reads there first (readPreference nearest) (default: none)",
        env: 'SWITCHYARD_ZONE',
      }),
    ),
    dataDir: Type.Optional(Type.String({ minLength: 1, description: "when set, the agent manages the node's process: starts, restarts, rejoins it (default: unmanaged)", env: 'SWITCHYARD_DATA_DIR' })),
    pgBin: Type.Optional(Type.String({ minLength: 1, description: 'directory of the PostgreSQL server binaries (initdb, postgres, pg_rewind...) (default: PG_BIN, pg_config --bindir, /usr/lib/postgresql/<newest>/bin)', env: 'SWITCHYARD_PG_BIN' })),
    listen: Type.Optional(Type.String({ minLength: 1, description: "listen_addresses a re-cloned or rewound node keeps (default: the one in its own postgresql.conf)", env: 'SWITCHYARD_PG_LISTEN' })),
    user: Type.String({ default: 'postgres', description: 'user the agent logs in as: PostgreSQL role (see docs/operations.md for the least-privilege role); for engine redis an ACL user, default `default`', env: 'SWITCHYARD_PG_USER' }),
    password: Type.Optional(Type.String({ description: 'PostgreSQL password (prefer passwordFile; default: none)', env: 'SWITCHYARD_PG_PASSWORD', secret: true })),
    passwordFile: File('file holding the PostgreSQL password (default: none)', 'SWITCHYARD_PG_PASSWORD_FILE'),
    passfile: File('a libpq passfile (host:port:db:user:password) read for every connection, replication and pg_rewind included (default: none)', 'SWITCHYARD_PG_PASSFILE'),
    replicationUser: Type.Optional(Type.String({ minLength: 1, description: "PostgreSQL user the standbys stream as (primary_conninfo) and pg_basebackup logs in as: a role with REPLICATION, so the agent's own role needs none (default: user)", env: 'SWITCHYARD_PG_REPLICATION_USER' })),
    replicationPassword: Type.Optional(Type.String({ description: "replicationUser's password (prefer replicationPasswordFile, or its line in the passfile; default: none)", env: 'SWITCHYARD_PG_REPLICATION_PASSWORD', secret: true })),
    replicationPasswordFile: File("file holding replicationUser's password (default: none)", 'SWITCHYARD_PG_REPLICATION_PASSWORD_FILE'),
    database: Type.String({ default: 'postgres', description: 'database the agent connects to', env: 'SWITCHYARD_PG_DATABASE' }),
    sslmode: Type.Optional(
      Type.Union([Type.Literal('disable'), Type.Literal('require'), Type.Literal('verify-ca'), Type.Literal('verify-full')], {
        default: 'disable',
        description: "TLS to PostgreSQL, as libpq's sslmode (node-postgres has no 'prefer': use require, or verify-full with sslrootcert, in production)",
        env: 'SWITCHYARD_PG_SSLMODE',
      }),
    ),
    sslrootcert: File('CA certificate (PEM) for verify-ca / verify-full (default: none)', 'SWITCHYARD_PG_SSLROOTCERT'),
    sslcert: File('client certificate (PEM) (default: none)', 'SWITCHYARD_PG_SSLCERT'),
    sslkey: File('client key (PEM) (default: none)', 'SWITCHYARD_PG_SSLKEY'),
    rejoin: Type.Optional(
      Type.Object(
        { reclone: Type.Boolean({ default: false, description: 'a former primary that pg_rewind cannot rejoin is re-cloned (its old data directory kept aside); off: it stays out of rotation, data untouched', env: 'SWITCHYARD_RECLONE' }) },
        { additionalProperties: false, description: 'how a former primary rejoins (default: no re-clone)' },
      ),
    ),
    redisServer: Type.Optional(
      Type.Object(
        {
          appendonly: Type.Boolean({ default: false, description: 'appendonly yes: a crashed master restarts as the master with its data; off, it is never restarted as a master (it would be empty and wipe its replicas) but rejoins as a replica (docs/redis.md)', env: 'SWITCHYARD_REDIS_APPENDONLY' }),
          appendfsync: Type.Union([Type.Literal('always'), Type.Literal('everysec'), Type.Literal('no')], { default: 'everysec', description: 'appendfsync with appendonly: always loses no acknowledged write in a crash of the host; everysec up to a second', env: 'SWITCHYARD_REDIS_APPENDFSYNC' }),
          save: Type.String({ default: '', maxLength: 200, pattern: '^(\\s*\\d+\\s+\\d+)*\\s*$', description: 'RDB save schedule, pairs of seconds and changes ("3600 1 300 100"); "" none. A snapshot alone does not let a crashed master restart as the master (it is older than its replicas)', env: 'SWITCHYARD_REDIS_SAVE' }),
          minReplicasToWrite: Type.Integer({ minimum: 0, maximum: 64, default: 0, description: 'min-replicas-to-write of the master when not fenced: an unfence returns to it (a synchronous-mode count from the leader wins)', env: 'SWITCHYARD_REDIS_MIN_REPLICAS_TO_WRITE' }),
          minReplicasMaxLag: Type.Integer({ minimum: 1, maximum: 3600, default: 10, description: 'min-replicas-max-lag, seconds', env: 'SWITCHYARD_REDIS_MIN_REPLICAS_MAX_LAG' }),
        },
        { additionalProperties: false, description: 'engine redis, managed node (dataDir): how the agent runs redis-server (default: no persistence, min-replicas-to-write 0)' },
      ),
    ),
    probeIntervalMs: Type.Integer({ minimum: 20, default: 250, description: 'time between two probes of the node (each is also the heartbeat)', env: 'SWITCHYARD_PROBE_INTERVAL_MS', live: true }),
    probeTimeoutMs: Type.Integer({ minimum: 50, default: 1000, description: 'a probe not answered within this long is a timeout', env: 'SWITCHYARD_PROBE_TIMEOUT_MS' }),
    fenceAfterMs: Type.Integer({ minimum: 500, default: 4000, description: 'a primary that cannot reach Redis this long, with no replica replying, refuses writes (twice this long even while one replies); must equal the coordinators\' settings.fenceAfterMs', env: 'SWITCHYARD_FENCE_AFTER_MS' }),
    logLevel: LogLevel,
  },
  { additionalProperties: false },
);
export type AgentConfig = Static<typeof AgentConfig>;

export const ClusterConfig = Type.Object(
  {
    name: Name('the cluster\'s name (required)'),
    engine: Type.Union([Type.Literal('postgres'), Type.Literal('redis'), Type.Literal('mongodb')], { default: 'postgres', description: 'database engine', env: 'SWITCHYARD_ENGINE' }),
    settings: Type.Optional(Settings),
    nodes: Type.Optional(
      Type.Array(Type.String({ minLength: 1 }), {
        description: 'host[:port] of each node, primary first (from DATABASE_PRIMARY_HOST + DATABASE_REPLICA_HOSTS); only `switchyard check --connect` reads it: agents register their nodes themselves (default: none)',
      }),
    ),
    mongodb: Type.Optional(
      Type.Object(
        {
          hosts: Type.Optional(Type.Array(Type.String(), { description: 'replica-set members host:port (MONGODB_HOSTS) (default: none)' })),
          replicaSet: Type.Optional(Type.String({ description: 'replica-set name (MONGODB_REPLICA_SET) (default: none)' })),
        },
        { additionalProperties: false, description: 'accepted for the MongoDB engine; not read by the PostgreSQL engine (default: none)' },
      ),
    ),
    sentinel: Type.Optional(
      Type.Object(
        {
          sentinels: Type.Optional(Type.Array(Type.String(), { description: 'Sentinel endpoints host:port (REDIS_SENTINELS) (default: none)' })),
          masterName: Type.Optional(Type.String({ description: 'master name served over the Sentinel protocol (REDIS_MASTER_NAME) (default: the cluster name)' })),
        },
        { additionalProperties: false, description: 'accepted for the Redis engine; not read by the PostgreSQL engine (default: none)' },
      ),
    ),
  },
  { additionalProperties: false },
);

export const AlertEvent = Type.Union(
  ['failover.started', 'failover.completed', 'failover.failed', 'node.fenced', 'loss.measured', 'cluster.paused', 'cluster.resumed', 'node.unhealthy', 'node.healthy'].map((e) => Type.Literal(e)),
);

export const Webhook = Type.Object(
  {
    name: Name('name of this sink, in logs and the delivery cursor (required)'),
    kind: Type.Union([Type.Literal('slack'), Type.Literal('pagerduty'), Type.Literal('generic')], { default: 'generic', description: "payload format: Slack incoming webhook, PagerDuty Events API v2, or the journal entry as JSON" }),
    url: Type.Optional(Type.String({ pattern: '^https?://', description: 'where to POST (Slack webhook URLs are secrets: prefer urlFile) (default: PagerDuty\'s events endpoint for kind pagerduty)', secret: true })),
    urlFile: Type.Optional(Type.String({ minLength: 1, description: 'file holding the URL (default: none)' })),
    routingKey: Type.Optional(Type.String({ description: 'PagerDuty integration (routing) key (default: none)', secret: true })),
    routingKeyFile: Type.Optional(Type.String({ minLength: 1, description: 'file holding the routing key (default: none)' })),
    events: Type.Array(AlertEvent, {
      default: ['failover.started', 'failover.completed', 'failover.failed', 'node.fenced', 'loss.measured', 'node.unhealthy', 'node.healthy'],
      description: 'which events to send',
    }),
    unhealthyAfterMs: Type.Integer({ minimum: 0, default: 30_000, description: 'node.unhealthy is sent once a node has been unhealthy this long (node.healthy resolves it)' }),
    timeoutMs: Type.Integer({ minimum: 100, default: 5000, description: 'one delivery attempt may take this long' }),
    retries: Type.Integer({ minimum: 0, maximum: 20, default: 5, description: 'attempts after the first, with exponential backoff' }),
    backoffMs: Type.Integer({ minimum: 10, default: 500, description: 'first backoff; doubles with each retry' }),
  },
  { additionalProperties: false },
);

export const AdminToken = Type.Object(
  {
    name: Name('who this token is: journaled as `by` with every command (required)'),
    token: Type.Optional(Type.String({ minLength: 16, description: 'the token (prefer tokenFile) (default: none)', secret: true })),
    tokenFile: Type.Optional(Type.String({ minLength: 1, description: 'file holding the token (default: none)' })),
  },
  { additionalProperties: false },
);

export const CoordinatorConfig = Type.Object(
  {
    id: Name('this coordinator\'s id, unique among coordinators (required)', 'SWITCHYARD_COORDINATOR_ID'),
    ...storeFields,
    clusters: Type.Array(ClusterConfig, { minItems: 1, description: 'clusters this coordinator follows and may lead (required; SWITCHYARD_CLUSTER=a,b names them)', env: 'SWITCHYARD_CLUSTER' }),
    api: Type.Object(
      {
        host: Type.String({ default: '127.0.0.1', description: 'address the API listens on', env: 'SWITCHYARD_API_HOST' }),
        port: Type.Integer({ minimum: 0, maximum: 65535, default: 7400, description: 'port the API listens on', env: 'SWITCHYARD_API_PORT' }),
        bodyLimitBytes: Type.Optional(Type.Integer({ minimum: 64, default: 16_384, description: 'largest request body accepted (413 above)', env: 'SWITCHYARD_API_BODY_LIMIT_BYTES' })),
        adminRateLimit: Type.Optional(Type.Integer({ minimum: 1, default: 30, description: 'admin requests per client address per minute (429 above)', env: 'SWITCHYARD_API_ADMIN_RATE_LIMIT', live: true })),
        defaultMaxLagMs: Type.Optional(Type.Integer({ minimum: 0, description: 'health checks with role=replica and no maxLagMs use this lag limit (alias REPLICATION_LAG_THRESHOLD_MS) (default: none)', env: 'SWITCHYARD_DEFAULT_MAX_LAG_MS', live: true })),
      },
      { additionalProperties: false, default: {}, description: 'the routing API' },
    ),
    adminToken: Type.Optional(Type.String({ minLength: 16, description: 'one admin token, named "admin" (prefer adminTokens) (default: none)', env: 'SWITCHYARD_ADMIN_TOKEN', secret: true })),
    adminTokenFile: File('file holding one admin token, named "admin" (default: none)', 'SWITCHYARD_ADMIN_TOKEN_FILE'),
    adminTokens: Type.Optional(Type.Array(AdminToken, { description: 'named admin tokens; without any, admin routes answer 403 (default: none)' })),
    readToken: Type.Optional(Type.String({ minLength: 16, description: 'when set, the read routes (clusters, routing, events, history, explain, topology) need it or an admin token; health checks, /healthz and /metrics stay open (default: open)', env: 'SWITCHYARD_READ_TOKEN', secret: true })),
    readTokenFile: File('file holding the read token (default: none)', 'SWITCHYARD_READ_TOKEN_FILE'),
    leaseTtlMs: Type.Integer({ minimum: 500, default: 3000, description: "the leader's lease; a crashed leader is replaced within this long", env: 'SWITCHYARD_LEASE_TTL_MS' }),
    leaseRenewMs: Type.Optional(Type.Integer({ minimum: 50, description: 'time between two lease renewals (default: leaseTtlMs / 3)', env: 'SWITCHYARD_LEASE_RENEW_MS' })),
    redisTimeoutMs: Type.Optional(Type.Integer({ minimum: 100, default: 1000, description: 'the time one Redis call may take, as the lease timing check assumes it (a renewal retried once must fit in the lease); keep it above your Redis latency at its worst', env: 'SWITCHYARD_REDIS_TIMEOUT_MS' })),
    tickMs: Type.Integer({ minimum: 10, default: 100, description: 'time between two decision passes of the leader', env: 'SWITCHYARD_TICK_MS' }),
    webhooks: Type.Optional(Type.Array(Webhook, { description: 'alert sinks on journal events; only the leader sends (default: none)', live: true })),
    logLevel: LogLevel,
  },
  { additionalProperties: false },
);
export type CoordinatorConfig = Static<typeof CoordinatorConfig>;
export type ClusterConfig = Static<typeof ClusterConfig>;
export type WebhookConfig = Static<typeof Webhook>;
