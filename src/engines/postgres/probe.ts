/**
 * Probing a local PostgreSQL: one round trip per probe over a persistent connection.
 * A dropped connection is reported at once (`onLost`), so a postmaster's death is
 * noticed without waiting for the next probe.
 *
 * Every query the agent sends is bounded twice: `query_timeout` on the client (a hung
 * server or a frozen backend cannot hold the caller past it) and `statement_timeout` on
 * the server (the statement is cancelled there too, and `lock_timeout` bounds a wait on
 * a lock), both from the caller's timeout.
 */
import pg from 'pg';
import type { ProbeError, ReplicationPeer } from '../../events/observation.js';
import type { Connection } from '../types.js';
import { pgClientConfig } from './connection.js';

/** The configured connection to a node (host, port, user, password or passfile, database, sslmode). */
export type PgTarget = Connection;

export interface PgProbe {
  reachable: boolean;
  error?: ProbeError;
  errorMessage?: string;
  role: 'primary' | 'replica' | 'unknown';
  timeline: number | null;
  lsn: string | null;
  replayLsn: string | null;
  replayDelayMs: number | null;
  upstream: string | null;
  walReceiver: string | null;
  standbys?: ReplicationPeer[];
  /** default_transaction_read_only is on (a fenced primary) */
  readOnly?: boolean;
}

const PROBE_SQL = `
SELECT r.rec,
  CASE WHEN r.rec THEN pg_last_wal_receive_lsn()::text ELSE pg_current_wal_lsn()::text END AS lsn,
  CASE WHEN r.rec THEN pg_last_wal_replay_lsn()::text ELSE pg_current_wal_lsn()::text END AS replay,
  CASE WHEN NOT r.rec THEN NULL
       WHEN pg_last_wal_receive_lsn() IS NULL OR pg_last_wal_receive_lsn() <= pg_last_wal_replay_lsn() THEN 0
       ELSE floor(extract(epoch FROM now() - pg_last_xact_replay_timestamp()) * 1000) END AS delay_ms,
  CASE WHEN r.rec THEN (SELECT received_tli FROM pg_stat_wal_receiver)
       ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int END AS tli,
  CASE WHEN r.rec AND (SELECT received_tli FROM pg_stat_wal_receiver) IS NULL
       THEN greatest((SELECT timeline_id FROM pg_control_checkpoint()),
                     (SELECT nullif(min_recovery_end_timeline, 0) FROM pg_control_recovery())) END AS disk_tli,
  pg_postmaster_start_time()::text AS started,
  (SELECT status FROM pg_stat_wal_receiver) AS wr_status,
  (SELECT sender_host || ':' || sender_port FROM pg_stat_wal_receiver WHERE sender_host IS NOT NULL) AS sender,
  current_setting('primary_conninfo') AS conninfo,
  current_setting('default_transaction_read_only') = 'on' AS ro,
  CASE WHEN r.rec THEN NULL ELSE (SELECT json_agg(json_build_object(
      'name', application_name, 'state', state, 'replayLsn', replay_lsn::text, 'flushLsn', flush_lsn::text,
      'replayLagMs', floor(extract(epoch FROM replay_lag) * 1000), 'syncState', sync_state,
      'replyAgeMs', floor(extract(epoch FROM now() - reply_time) * 1000)))
    FROM pg_stat_replication) END AS standbys
FROM (SELECT pg_is_in_recovery() AS rec) r`;

/** `host=a port=5432 user=x` → "a:5432" (the upstream a standby is set to follow). */
export function upstreamFromConninfo(conninfo: string | null | undefined): string | null {
  if (!conninfo) return null;
  const host = /(?:^|\s)host\s*=\s*'?([^'\s]+)'?/.exec(conninfo)?.[1];
  const port = /(?:^|\s)port\s*=\s*'?(\d+)'?/.exec(conninfo)?.[1] ?? '5432';
  return host ? `${host}:${port}` : null;
}

export function classifyPgError(err: unknown): { error: ProbeError; message: string } {
  const e = err as { code?: string; message?: string };
  const message = (e.message ?? String(err)).slice(0, 400);
  const code = e.code ?? '';
  if (code === 'ECONNREFUSED') return { error: 'refused', message };
  if (code === 'ETIMEDOUT' || /timeout/i.test(message)) return { error: 'timeout', message };
  if (code === '28P01' || code === '28000') return { error: 'auth', message };
  if (code === '57P03') return { error: 'starting', message };
  return { error: 'other', message };
}

/** a nullable SQL number → number | null */
function num(v: unknown): number | null {
  return v === null || v === undefined ? null : Number(v);
}

/**
 * A replica's timeline: the one its WAL receiver last received on, or, once the receiver
 * is gone (the primary died), the one it last reported for this same postmaster run, and
 * never less than the timeline on disk (last restartpoint, minimum recovery point). The
 * on-disk values alone lag: a standby that switched timelines keeps its old restartpoint
 * until the next one (checkpoint_timeout). The probe reads the on-disk values (two reads
 * of pg_control) only while no receiver runs. After a restart of the standby nothing
 * remembered is trusted (its data directory may have been replaced).
 */
export function replicaTimeline(received: number | null, remembered: number | null, onDisk: number | null): number | null {
  const known = [received ?? remembered, onDisk].filter((t): t is number => t !== null && t > 0);
  return known.length === 0 ? null : Math.max(...known);
}

export class PostgresProber {
  private client: pg.Client | null = null;
  private connecting: Promise<pg.Client> | null = null;
  /** the WAL receiver's last timeline, and the postmaster run (start time) it was seen in */
  private received: { started: string; tli: number } | null = null;

  constructor(
    private readonly target: PgTarget,
    private readonly timeoutMs: number,
    /** called once when an open connection drops (the server died or restarted) */
    private readonly onLost: () => void = () => {},
  ) {}

  private async connect(): Promise<pg.Client> {
    if (this.client) return this.client;
    if (this.connecting) return this.connecting;
    const client = new pg.Client({
      ...pgClientConfig(this.target),
      ...bounded(this.timeoutMs),
      application_name: 'switchyard-agent',
      keepAlive: true,
    });
    let lost = false;
    const drop = (): void => {
      if (lost) return;
      lost = true;
      if (this.client === client) {
        this.client = null;
        this.onLost();
      }
      client.end().catch(() => {});
    };
    client.on('error', drop);
    client.on('end', drop);
    this.connecting = client.connect().then(
      () => {
        this.connecting = null;
        this.client = client;
        return client;
      },
      (err: unknown) => {
        this.connecting = null;
        lost = true;
        client.end().catch(() => {});
        throw err;
      },
    );
    return this.connecting;
  }

  async probe(): Promise<PgProbe> {
    try {
      const client = await this.connect();
      const res = await client.query(PROBE_SQL);
      const row = res.rows[0] as Record<string, unknown>;
      const rec = row.rec === true;
      const sender = (row.sender as string | null) ?? null;
      const probe: PgProbe = {
        reachable: true,
        role: rec ? 'replica' : 'primary',
        timeline: rec ? this.replicaTimeline(num(row.tli), num(row.disk_tli), String(row.started)) : num(row.tli),
        lsn: (row.lsn as string | null) ?? null,
        replayLsn: (row.replay as string | null) ?? null,
        replayDelayMs: row.delay_ms === null || row.delay_ms === undefined ? null : Math.max(0, Number(row.delay_ms)),
        upstream: rec ? (sender ?? upstreamFromConninfo(row.conninfo as string)) : null,
        walReceiver: rec ? ((row.wr_status as string | null) ?? null) : null,
      };
      if (!rec) probe.standbys = ((row.standbys as ReplicationPeer[] | null) ?? []).slice(0, 64);
      if (row.ro === true) probe.readOnly = true;
      return probe;
    } catch (err) {
      // a failed query leaves the connection in doubt: start over next time
      const c = this.client;
      this.client = null;
      if (c) c.end().catch(() => {});
      const { error, message } = classifyPgError(err);
      return { reachable: false, error, errorMessage: message, role: 'unknown', timeline: null, lsn: null, replayLsn: null, replayDelayMs: null, upstream: null, walReceiver: null };
    }
  }

  private replicaTimeline(received: number | null, onDisk: number | null, started: string): number | null {
    if (this.received?.started !== started) this.received = null;
    if (received !== null && received > 0) this.received = { started, tli: received };
    return replicaTimeline(received, this.received?.tli ?? null, onDisk);
  }

  async close(): Promise<void> {
    const c = this.client;
    this.client = null;
    if (c) await c.end().catch(() => {});
  }
}

/** Connection options that bound the connect and every query, client side and server side. */
export function bounded(timeoutMs: number): Pick<pg.ClientConfig, 'connectionTimeoutMillis' | 'query_timeout' | 'statement_timeout' | 'lock_timeout'> {
  return { connectionTimeoutMillis: timeoutMs, query_timeout: timeoutMs, statement_timeout: timeoutMs, lock_timeout: timeoutMs };
}

/**
 * Run statements on a fresh connection (for actions). `timeoutMs` bounds the connect and
 * each query (client `query_timeout`, server `statement_timeout` and `lock_timeout`).
 */
export async function withClient<T>(target: PgTarget, timeoutMs: number, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({
    ...pgClientConfig(target),
    ...bounded(timeoutMs),
    application_name: 'switchyard-agent',
  });
  client.on('error', () => {});
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => {});
  }
}
