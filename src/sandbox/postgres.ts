/**
 * How the sandbox (and the tests) arrange PostgreSQL nodes on loopback, using the
 * engine's own process control (src/engines/postgres/): initdb a primary configured for
 * streaming replication on 127.0.0.1, and thin adapters with the harness's call shapes.
 * Nothing here is product code: the agent never imports src/sandbox/ (a lint rule checks).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { SwitchyardError } from '../errors.js';
import { cloneReplica as engineClone } from '../engines/postgres/clone.js';
import { chownToPg, prepareDataDir } from '../engines/postgres/owner.js';
import { waitReady as engineWaitReady, type WaitReadyOptions as EngineWaitReadyOptions } from '../engines/postgres/process.js';
import { runPgTool } from '../engines/postgres/tools.js';
import pg from 'pg';
import { pgClientConfig } from '../engines/postgres/connection.js';
import type { Connection } from '../engines/types.js';

export { spawnPostgres, stopPostgres, defaultLogFile, type SpawnPostgresOptions } from '../engines/postgres/process.js';
export { runPgTool } from '../engines/postgres/tools.js';
export { confString } from '../engines/postgres/conf.js';
export { conninfoValue } from '../engines/postgres/connection.js';
export type { StopMode } from '../engines/types.js';

export interface InitPrimaryOptions {
  dataDir: string;
  port: number;
  /** superuser name, default 'postgres' */
  user?: string;
  /**
   * The superuser's password: every connection, replication included, then authenticates
   * with scram-sha-256. Without it: trust on loopback.
   */
  password?: string;
}

/**
 * initdb a new primary in `dataDir` (which must not exist or be empty) and configure it
 * for streaming replication on 127.0.0.1:port, TCP only; trust on loopback, or
 * scram-sha-256 for every connection when a password is given.
 */
export async function initPrimary(opts: InitPrimaryOptions): Promise<void> {
  const dataDir = path.resolve(opts.dataDir);
  const user = opts.user ?? 'postgres';
  const method = opts.password !== undefined ? 'scram-sha-256' : 'trust';
  try {
    prepareDataDir(dataDir);
  } catch (err) {
    if (err instanceof SwitchyardError && err.code === 'DATA_DIR_EXISTS') throw new SwitchyardError('DATA_DIR_EXISTS', `${err.message} --dir`);
    throw err;
  }
  const args = ['-D', dataDir, '-U', user, `--auth=${method}`, '-E', 'UTF8', '--locale=C'];
  let pwDir: string | null = null;
  try {
    if (opts.password !== undefined) {
      // initdb reads the superuser's password from a file the postgres user can read
      pwDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sy-pw-'));
      fs.chmodSync(pwDir, 0o711);
      const pwFile = path.join(pwDir, 'pw');
      fs.writeFileSync(pwFile, opts.password + '\n', { mode: 0o600 });
      chownToPg(pwFile);
      args.push(`--pwfile=${pwFile}`);
    }
    await runPgTool('initdb', args, { cwd: path.dirname(dataDir), timeoutMs: 120_000, errorCode: 'INITDB_FAILED' });
  } finally {
    if (pwDir) fs.rmSync(pwDir, { recursive: true, force: true });
  }

  const conf = [
    '',
    '# --- switchyard sandbox ---',
    "listen_addresses = '127.0.0.1'",
    `port = ${opts.port}`,
    "unix_socket_directories = ''",
    "password_encryption = 'scram-sha-256'",
    'wal_level = replica',
    'max_wal_senders = 10',
    'max_replication_slots = 10',
    'hot_standby = on',
    'hot_standby_feedback = on',
    'wal_log_hints = on',
    "wal_keep_size = '256MB'",
    "shared_buffers = '32MB'",
    'max_connections = 50',
    'logging_collector = off',
    'log_min_messages = warning',
    "wal_receiver_status_interval = '1s'",
    "wal_sender_timeout = '5s'",
    "wal_receiver_timeout = '5s'",
    '',
  ].join('\n');
  fs.appendFileSync(path.join(dataDir, 'postgresql.conf'), conf);

  const hba = [
    `# switchyard sandbox: ${method} on loopback only (TCP; no unix socket is configured)`,
    '# TYPE  DATABASE     USER  ADDRESS        METHOD',
    `local   all          all                  ${method}`,
    `host    all          all   127.0.0.1/32   ${method}`,
    `host    all          all   ::1/128        ${method}`,
    `host    replication  all   127.0.0.1/32   ${method}`,
    `host    replication  all   ::1/128        ${method}`,
    '',
  ].join('\n');
  fs.writeFileSync(path.join(dataDir, 'pg_hba.conf'), hba);
  chownToPg(path.join(dataDir, 'pg_hba.conf'));
}

export interface CloneReplicaOptions {
  primaryHost: string;
  primaryPort: number;
  dataDir: string;
  port: number;
  /** application_name the standby reports to the primary (pg_stat_replication) */
  appName: string;
  /** replication user, default 'postgres' */
  user?: string;
  password?: string;
  /** a libpq passfile instead of the password (then primary_conninfo names the file, not the password) */
  passfile?: string;
  /** the replication user pg_basebackup and primary_conninfo use (default: user) */
  replicationUser?: string;
}

/** pg_basebackup a streaming standby of the primary (the engine's clone, with the harness's options). */
export async function cloneReplica(opts: CloneReplicaOptions): Promise<void> {
  const source: Connection = { host: opts.primaryHost, port: opts.primaryPort, user: opts.user ?? 'postgres', password: opts.password, passfile: opts.passfile, replicationUser: opts.replicationUser, database: 'postgres' };
  await engineClone({ source, dataDir: opts.dataDir, port: opts.port, appName: opts.appName });
}

export interface WaitReadyOptions extends Omit<EngineWaitReadyOptions, 'timeoutMs'> {
  /** user to connect as, default 'postgres' */
  user?: string;
  password?: string;
}

/** The engine's waitReady with the harness's argument order (port, timeout, host). */
export async function waitReady(port: number, timeoutMs = 30_000, host = '127.0.0.1', opts: WaitReadyOptions = {}): Promise<void> {
  const { user, password, ...rest } = opts;
  await engineWaitReady({ host, port, user: user ?? 'postgres', password, database: 'postgres' }, { ...rest, timeoutMs });
}

/**
 * The agent's least-privilege role, as SQL (PostgreSQL 15+), one statement per entry.
 * docs/operations.md prints the same statements (a test compares them); the sandbox runs
 * them. `role` must be a plain identifier. The password is set apart (setRolePassword).
 */
export function agentRoleSql(role: string): string[] {
  checkRoleName(role);
  return [
    // LOGIN for the probes and actions; no REPLICATION: standbys and pg_basebackup use
    // the replication role (replicationRoleSql, the agent's replicationUser)
    `CREATE ROLE ${role} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION`,
    // probes: pg_stat_replication, pg_stat_wal_receiver, pg_control_checkpoint(), lag
    `GRANT pg_monitor TO ${role}`,
    // fencing: end the sessions that could still write (not a superuser's: see docs)
    `GRANT pg_signal_backend TO ${role}`,
    // CHECKPOINT on a new primary before pg_rewind, and before a demotion
    `GRANT pg_checkpoint TO ${role}`,
    // promotion, and the settings it changes live
    `GRANT EXECUTE ON FUNCTION pg_catalog.pg_promote(boolean, integer) TO ${role}`,
    `GRANT EXECUTE ON FUNCTION pg_catalog.pg_reload_conf() TO ${role}`,
    `GRANT ALTER SYSTEM ON PARAMETER default_transaction_read_only, synchronous_standby_names, primary_conninfo TO ${role}`,
    // which of those settings ALTER SYSTEM has set (a promotion clears a fence's leftovers)
    `GRANT SELECT ON pg_catalog.pg_file_settings TO ${role}`,
    `GRANT EXECUTE ON FUNCTION pg_catalog.pg_show_all_file_settings() TO ${role}`,
    // pg_rewind's source (as its documentation lists) and the timeline history files
    `GRANT EXECUTE ON FUNCTION pg_catalog.pg_ls_dir(text, boolean, boolean) TO ${role}`,
    `GRANT EXECUTE ON FUNCTION pg_catalog.pg_stat_file(text, boolean) TO ${role}`,
    `GRANT EXECUTE ON FUNCTION pg_catalog.pg_read_binary_file(text) TO ${role}`,
    `GRANT EXECUTE ON FUNCTION pg_catalog.pg_read_binary_file(text, bigint, bigint, boolean) TO ${role}`,
    `GRANT EXECUTE ON FUNCTION pg_catalog.pg_read_file(text) TO ${role}`,
    `GRANT EXECUTE ON FUNCTION pg_catalog.pg_read_file(text, bigint, bigint, boolean) TO ${role}`,
  ];
}

/** The role standbys stream as, and pg_basebackup logs in as: REPLICATION and nothing else. */
export function replicationRoleSql(role: string): string[] {
  checkRoleName(role);
  return [`CREATE ROLE ${role} WITH LOGIN REPLICATION NOSUPERUSER NOCREATEDB NOCREATEROLE`];
}

function checkRoleName(role: string): void {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(role)) throw new SwitchyardError('INVALID_OPTIONS', `role ${JSON.stringify(role)}: use a lower-case identifier`);
}

/** Create roles on a running primary (as a superuser): each one's statements, then its password. */
export async function createRoles(conn: Connection, roles: Array<{ role: string; sql: string[]; password: string }>): Promise<void> {
  const c = new pg.Client({ ...pgClientConfig(conn), connectionTimeoutMillis: 10_000 });
  c.on('error', () => {});
  await c.connect();
  try {
    for (const r of roles) {
      for (const stmt of r.sql) await c.query(stmt);
      await setRolePassword(c, r.role, r.password);
    }
  } finally {
    await c.end().catch(() => {});
  }
}

/** ALTER ROLE … PASSWORD with the scram verifier computed by the server; the statement is never logged by the sandbox. */
async function setRolePassword(c: { query(text: string): Promise<unknown> }, role: string, password: string): Promise<void> {
  await c.query("SET password_encryption = 'scram-sha-256'");
  await c.query(`ALTER ROLE ${role} PASSWORD '${password.replace(/'/g, "''")}'`);
}
