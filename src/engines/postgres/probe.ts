/**
 * Probing a local PostgreSQL: one round trip per probe over a persistent connection.
 * A dropped connection is reported at once (`onLost`), so a postmaster's death is
 * noticed without waiting for the next probe.
 */
import pg from 'pg';
import type { ProbeError, ReplicationPeer } from '../../events/observation.js';

export interface PgTarget {
  host: string;
  port: number;
  user: string;
  password?: string | undefined;
  database: string;
}

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
  CASE WHEN r.rec THEN coalesce((SELECT received_tli FROM pg_stat_wal_receiver), (SELECT timeline_id FROM pg_control_checkpoint()))
       ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int END AS tli,
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

export class PostgresProber {
  private client: pg.Client | null = null;
  private connecting: Promise<pg.Client> | null = null;

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
      host: this.target.host,
      port: this.target.port,
      user: this.target.user,
      password: this.target.password,
      database: this.target.database,
      connectionTimeoutMillis: this.timeoutMs,
      query_timeout: this.timeoutMs,
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
        timeline: row.tli === null || row.tli === undefined ? null : Number(row.tli),
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

  async close(): Promise<void> {
    const c = this.client;
    this.client = null;
    if (c) await c.end().catch(() => {});
  }
}

/** Run one statement on a fresh connection (for actions). */
export async function withClient<T>(target: PgTarget, timeoutMs: number, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({
    host: target.host,
    port: target.port,
    user: target.user,
    password: target.password,
    database: target.database,
    connectionTimeoutMillis: timeoutMs,
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
