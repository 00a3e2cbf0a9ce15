/**
 * The seed's environment variable names, accepted where they mean the same thing as a
 * switchyard setting. A SWITCHYARD_* variable for the same setting wins over its alias.
 * docs/configuration.md lists them (generated from this table).
 */
import type { DaemonKind } from './load.js';

type Json = Record<string, unknown>;

export interface Alias {
  alias: string;
  daemons: DaemonKind[];
  /** the SWITCHYARD_* variable it stands for, if one */
  target?: string;
  /** what it sets, for the docs */
  sets: string;
  /** false: accepted and kept in the config, but only a later engine reads it */
  meaningful: boolean;
  note: string;
  apply(raw: Json, value: string, mark: (path: string) => void): void;
}

const list = (v: string): string[] => v.split(',').map((x) => x.trim()).filter(Boolean);
const num = (v: string): unknown => (v.trim() !== '' && Number.isFinite(Number(v)) ? Number(v) : v);

/** Each cluster of a coordinator config (creating `clusters` from SWITCHYARD_CLUSTER later if absent). */
function eachCluster(raw: Json, fn: (c: Json, i: number) => void): void {
  if (!Array.isArray(raw.clusters)) raw.clusters = [{}];
  (raw.clusters as Json[]).forEach((c, i) => fn(c, i));
}

function sub(o: Json, key: string): Json {
  if (!o[key] || typeof o[key] !== 'object') o[key] = {};
  return o[key] as Json;
}

export const ALIASES: Alias[] = [
  {
    alias: 'HEALTH_CHECK_INTERVAL_MS',
    daemons: ['agent'],
    target: 'SWITCHYARD_PROBE_INTERVAL_MS',
    sets: 'probeIntervalMs',
    meaningful: true,
    note: 'how often the node is checked',
    apply: (raw, v, mark) => {
      raw.probeIntervalMs = num(v);
      mark('probeIntervalMs');
    },
  },
  {
    alias: 'FAILOVER_TIMEOUT_MS',
    daemons: ['coordinator'],
    target: 'SWITCHYARD_FAIL_AFTER_MS',
    sets: 'clusters[*].settings.failAfterMs',
    meaningful: true,
    note: 'how long an unresponsive primary is waited for before a failover',
    apply: (raw, v, mark) =>
      eachCluster(raw, (c, i) => {
        sub(c, 'settings').failAfterMs = num(v);
        mark(`clusters[${i}].settings.failAfterMs`);
      }),
  },
  {
    alias: 'REPLICATION_LAG_THRESHOLD_MS',
    daemons: ['coordinator'],
    target: 'SWITCHYARD_DEFAULT_MAX_LAG_MS',
    sets: 'api.defaultMaxLagMs',
    meaningful: true,
    note: 'a replica lagging more is reported unhealthy by /health?role=replica (HAProxy stops sending it reads); clients set their own maxLagMs',
    apply: (raw, v, mark) => {
      sub(raw, 'api').defaultMaxLagMs = num(v);
      mark('api.defaultMaxLagMs');
    },
  },
  {
    alias: 'DATABASE_PRIMARY_HOST',
    daemons: ['coordinator'],
    sets: 'clusters[*].nodes (first)',
    meaningful: true,
    note: 'the nodes `switchyard check --connect` checks; the topology itself comes from the agents',
    apply: (raw, v, mark) =>
      eachCluster(raw, (c, i) => {
        const rest = Array.isArray(c.nodes) ? (c.nodes as string[]).slice(1) : [];
        c.nodes = [v.trim(), ...rest];
        mark(`clusters[${i}].nodes`);
      }),
  },
  {
    alias: 'DATABASE_REPLICA_HOSTS',
    daemons: ['coordinator'],
    sets: 'clusters[*].nodes (after the first)',
    meaningful: true,
    note: 'comma-separated host[:port]; as DATABASE_PRIMARY_HOST',
    apply: (raw, v, mark) =>
      eachCluster(raw, (c, i) => {
        const first = Array.isArray(c.nodes) ? (c.nodes as string[]).slice(0, 1) : [];
        c.nodes = [...first, ...list(v)];
        mark(`clusters[${i}].nodes`);
      }),
  },
  {
    alias: 'MONGODB_HOSTS',
    daemons: ['coordinator'],
    sets: 'clusters[*].mongodb.hosts',
    meaningful: false,
    note: 'for the MongoDB engine; the PostgreSQL engine ignores it',
    apply: (raw, v, mark) =>
      eachCluster(raw, (c, i) => {
        sub(c, 'mongodb').hosts = list(v);
        mark(`clusters[${i}].mongodb.hosts`);
      }),
  },
  {
    alias: 'MONGODB_REPLICA_SET',
    daemons: ['coordinator'],
    sets: 'clusters[*].mongodb.replicaSet',
    meaningful: false,
    note: 'for the MongoDB engine; the PostgreSQL engine ignores it',
    apply: (raw, v, mark) =>
      eachCluster(raw, (c, i) => {
        sub(c, 'mongodb').replicaSet = v.trim();
        mark(`clusters[${i}].mongodb.replicaSet`);
      }),
  },
  {
    alias: 'REDIS_SENTINELS',
    daemons: ['coordinator'],
    sets: 'clusters[*].sentinel.sentinels',
    meaningful: false,
    note: 'for the Redis engine; the PostgreSQL engine ignores it',
    apply: (raw, v, mark) =>
      eachCluster(raw, (c, i) => {
        sub(c, 'sentinel').sentinels = list(v);
        mark(`clusters[${i}].sentinel.sentinels`);
      }),
  },
  {
    alias: 'REDIS_MASTER_NAME',
    daemons: ['coordinator'],
    sets: 'clusters[*].sentinel.masterName',
    meaningful: false,
    note: 'for the Redis engine; the PostgreSQL engine ignores it',
    apply: (raw, v, mark) =>
      eachCluster(raw, (c, i) => {
        sub(c, 'sentinel').masterName = v.trim();
        mark(`clusters[${i}].sentinel.masterName`);
      }),
  },
];

export function aliasesFor(kind: DaemonKind): Alias[] {
  return ALIASES.filter((a) => a.daemons.includes(kind));
}
