/**
 * Actions on a running PostgreSQL node over the configured connection. Each is
 * idempotent: a job delivered twice does no harm.
 */
import { performance } from 'node:perf_hooks';
import type pg from 'pg';
import type { ActionResult, Connection, NodeActions, SyncSpec, Upstream } from '../types.js';
import { replicationConninfo } from './connection.js';
import { withClient } from './probe.js';

function quoteLiteral(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}

/** `FIRST 2 ("a", "b")`: the value of synchronous_standby_names for `spec`. */
export function syncStandbyNames(spec: SyncSpec): string {
  const method = spec.method === 'ANY' ? 'ANY' : 'FIRST';
  return `${method} ${spec.count} (${spec.names.map((n) => `"${n.replace(/"/g, '')}"`).join(', ')})`;
}

/** Where a timeline forked off its parent: the last line of its history file. */
export async function forkLsnOf(c: pg.Client, timeline: number): Promise<string | null> {
  const file = `pg_wal/${timeline.toString(16).toUpperCase().padStart(8, '0')}.history`;
  const r = await c.query<{ h: string }>('SELECT pg_read_file($1) AS h', [file]);
  return forkOfHistory(r.rows[0]?.h);
}

/** The fork point in a timeline history file: its last line's LSN. */
export function forkOfHistory(history: string | null | undefined): string | null {
  return /\t([0-9A-F]+\/[0-9A-F]+)\t[^\n]*\n?$/.exec(history ?? '')?.[1] ?? null;
}

/** how long a promotion waits for recovery to end after pg_promote, and how often it looks */
const PROMOTE_WAIT_MS = 60_000;
const PROMOTE_POLL_MS = 5;

/** Make new transactions read-only (or not) and, when fencing, end the sessions that could still write. */
export async function setReadOnly(conn: Connection, on: boolean, timeoutMs = 2_000): Promise<void> {
  await withClient(conn, timeoutMs, async (c) => {
    await c.query(on ? 'ALTER SYSTEM SET default_transaction_read_only = on' : 'ALTER SYSTEM RESET default_transaction_read_only');
    await c.query('SELECT pg_reload_conf()');
    if (on) {
      await c.query(
        // a role without superuser (the least-privilege agent, docs/operations.md) may end
        // only non-superuser sessions: asking for a superuser's would fail the whole fence
        "SELECT pg_terminate_backend(a.pid) FROM pg_stat_activity a LEFT JOIN pg_roles r ON r.oid = a.usesysid WHERE a.backend_type = 'client backend' AND a.pid <> pg_backend_pid() AND a.usename IS NOT NULL AND a.application_name <> 'switchyard-agent' AND (r.rolsuper IS NOT TRUE OR (SELECT rolsuper FROM pg_roles WHERE rolname = current_user))",
      );
    }
  });
}

/**
 * synchronous_standby_names on the primary; waits (up to 5 s) until the walsenders apply
 * it, and answers the LSN from which every commit waits for them. Throws 'not-primary'
 * (as an Error whose message starts with it) on a standby.
 */
export async function setSyncStandbys(conn: Connection, spec: SyncSpec): Promise<ActionResult & { position: string }> {
  const value = syncStandbyNames(spec);
  return withClient(conn, 5_000, async (c) => {
    const rec = await c.query<{ rec: boolean }>('SELECT pg_is_in_recovery() AS rec');
    if (rec.rows[0]?.rec) throw new NotPrimaryError('synchronous_standby_names is set on the primary only');
    await c.query(`ALTER SYSTEM SET synchronous_standby_names = ${quoteLiteral(value)}`);
    await c.query('SELECT pg_reload_conf()');
    const deadline = Date.now() + 5_000;
    for (;;) {
      const r = await c.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_replication WHERE application_name = ANY($1) AND state = 'streaming' AND sync_state IN ('sync', 'quorum')", [spec.names]);
      const streaming = await c.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_replication WHERE application_name = ANY($1) AND state = 'streaming'", [spec.names]);
      if ((r.rows[0]?.n ?? 0) >= (streaming.rows[0]?.n ?? 0) || Date.now() > deadline) break;
      await new Promise((res) => setTimeout(res, 20));
    }
    const lsn = await c.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn');
    return { message: `synchronous_standby_names = ${value}`, position: lsn.rows[0]!.lsn };
  });
}

/** The action runs on a primary only. */
export class NotPrimaryError extends Error {
  readonly code = 'not-primary';
}

/** The actions of one PostgreSQL node (`Engine.node(conn)`). */
export class PostgresActions implements NodeActions {
  constructor(
    private readonly conn: Connection,
    /** application_name a standby reports (the node id) */
    private readonly appName: string,
    /** the replication connection's user, password, sslmode (default: `conn`'s) */
    private readonly replication: Connection = conn,
  ) {}

  async inRecovery(): Promise<boolean | null> {
    return withClient(this.conn, 5_000, (c) => c.query<{ rec: boolean }>('SELECT pg_is_in_recovery() AS rec'))
      .then((r) => r.rows[0]?.rec ?? null)
      .catch(() => null);
  }

  /**
   * pg_promote, then drop a fenced primary's read-only setting and a former primary's
   * synchronous standbys. pg_promote(wait => true) looks every 100 ms whether recovery
   * ended: this asks without waiting and looks every few ms instead (the promotion itself
   * is the same). Answers where the new timeline forked off, and the timeline.
   */
  async promote(hooks: { promoted?: () => void } = {}): Promise<ActionResult> {
    return withClient(this.conn, 5_000, async (c) => {
      const rec = await c.query<{ rec: boolean }>('SELECT pg_is_in_recovery() AS rec');
      if (!rec.rows[0]?.rec) return { message: 'already primary', alreadyPrimary: true };
      const res = await c.query<{ ok: boolean }>('SELECT pg_promote(false) AS ok');
      if (!res.rows[0]?.ok) throw new Error('pg_promote returned false');
      const deadline = performance.now() + PROMOTE_WAIT_MS;
      for (;;) {
        const r = await c.query<{ rec: boolean }>('SELECT pg_is_in_recovery() AS rec');
        if (!r.rows[0]?.rec) break;
        if (performance.now() > deadline) throw new Error(`still in recovery ${PROMOTE_WAIT_MS} ms after pg_promote`);
        await new Promise((res) => setTimeout(res, PROMOTE_POLL_MS));
      }
      hooks.promoted?.();
      // A node fenced while it was a primary keeps default_transaction_read_only in
      // postgresql.auto.conf, and a former primary its synchronous_standby_names: a new
      // primary starts without either (the leader sets synchronous standbys up again).
      // Only after the promotion, and only if needed: a reload just before pg_promote can
      // leave the startup process asleep for wal_retrieve_retry_interval (5 s).
      // One round trip: those settings, the new timeline, and its history file (where it forked off).
      const after = await c.query<{ stale: number; tli: number; history: string | null }>(
        `SELECT (SELECT count(*)::int FROM pg_file_settings WHERE name IN ('default_transaction_read_only', 'synchronous_standby_names') AND sourcefile LIKE '%postgresql.auto.conf') AS stale,
                t.tli,
                pg_read_file('pg_wal/' || lpad(upper(to_hex(t.tli)), 8, '0') || '.history', 0, 1048576, true) AS history
           FROM (SELECT ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int AS tli) t`,
      );
      const row = after.rows[0];
      if ((row?.stale ?? 0) > 0) {
        await c.query('ALTER SYSTEM RESET default_transaction_read_only');
        await c.query('ALTER SYSTEM RESET synchronous_standby_names');
        await c.query('SELECT pg_reload_conf()');
      }
      const fork = row && row.tli > 1 ? forkOfHistory(row.history) : null;
      return { message: 'promoted', ...(fork ? { position: fork } : {}), ...(row ? { timeline: row.tli } : {}) };
    });
  }

  /** A CHECKPOINT before a planned stop: the shutdown checkpoint then has little to write. */
  async checkpoint(): Promise<void> {
    await withClient(this.conn, 5_000, (c) => c.query('CHECKPOINT'));
  }

  forkOf(timeline: number): Promise<string | null> {
    return withClient(this.conn, 2_000, (c) => forkLsnOf(c, timeline));
  }

  fence(): Promise<void> {
    return setReadOnly(this.conn, true);
  }

  unfence(): Promise<void> {
    return setReadOnly(this.conn, false);
  }

  /** Point a running standby at `up` (primary_conninfo is reloadable since PostgreSQL 13). */
  async follow(up: Upstream): Promise<string> {
    const conninfo = replicationConninfo(this.replication, up, this.appName);
    await withClient(this.conn, 5_000, async (c) => {
      const cur = await c.query<{ v: string }>("SELECT current_setting('primary_conninfo') AS v");
      if (cur.rows[0]?.v === conninfo) return;
      await c.query(`ALTER SYSTEM SET primary_conninfo = ${quoteLiteral(conninfo)}`);
      await c.query('SELECT pg_reload_conf()');
    });
    return `following ${up.id}`;
  }

  sync(spec: SyncSpec): Promise<ActionResult> {
    return setSyncStandbys(this.conn, spec);
  }
}
