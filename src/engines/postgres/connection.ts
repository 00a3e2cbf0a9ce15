/**
 * The configured connection (host, port, user, password or passfile, database,
 * sslmode), as node-postgres options and as a libpq conninfo: every connection the
 * agent makes (probe, actions, CHECKPOINT on a new primary, pg_rewind's source,
 * pg_basebackup, primary_conninfo) goes through these two, so none of them falls back
 * to a password-less `postgres@127.0.0.1`.
 */
import * as fs from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import type { ClientConfig } from 'pg';
import type { Connection } from '../types.js';

/** Quotes a value for a libpq conninfo string if needed. */
export function conninfoValue(v: string): string {
  return /^[A-Za-z0-9_.:/-]+$/.test(v) ? v : `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

/** One line of a passfile split on unescaped colons (`\:` and `\\` are escapes). */
function passfileFields(line: string): string[] {
  const out: string[] = [];
  let cur = '';
  for (let i = 0; i < line.length; i++) {
    const ch = line[i]!;
    if (ch === '\\' && i + 1 < line.length) {
      cur += line[++i]!;
    } else if (ch === ':') {
      out.push(cur);
      cur = '';
    } else cur += ch;
  }
  out.push(cur);
  return out;
}

/**
 * The password for (host, port, database, user) from a libpq passfile
 * (`hostname:port:database:username:password`, `*` matches anything; first match wins),
 * or undefined when no line matches or the file cannot be read.
 */
export function passwordFromPassfile(file: string, conn: Pick<Connection, 'host' | 'port' | 'database' | 'user'>, database = conn.database): string | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  const want = [conn.host, String(conn.port), database, conn.user];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/\r$/, '');
    if (line === '' || line.startsWith('#')) continue;
    const f = passfileFields(line);
    if (f.length < 5) continue;
    if (want.every((w, i) => f[i] === '*' || f[i] === w)) return f.slice(4).join(':');
  }
  return undefined;
}

/**
 * node-postgres `ssl` option for a libpq sslmode and its certificate files ('prefer' and
 * 'allow' connect without TLS: node-postgres cannot fall back). Files are read here.
 */
export function sslOption(conn: Pick<Connection, 'sslmode' | 'sslrootcert' | 'sslcert' | 'sslkey'>): false | ConnectionOptions {
  const mode = conn.sslmode ?? 'disable';
  if (mode !== 'require' && mode !== 'verify-ca' && mode !== 'verify-full') return false;
  const o: ConnectionOptions = { rejectUnauthorized: mode !== 'require' };
  if (conn.sslrootcert) o.ca = fs.readFileSync(conn.sslrootcert);
  if (conn.sslcert) o.cert = fs.readFileSync(conn.sslcert);
  if (conn.sslkey) o.key = fs.readFileSync(conn.sslkey);
  // verify-ca: the chain, not the name
  if (mode === 'verify-ca') o.checkServerIdentity = () => undefined;
  return o;
}

/** node-postgres options for `conn` (the password from the passfile when not given inline). */
export function pgClientConfig(conn: Connection, database = conn.database): ClientConfig {
  const password = conn.password ?? (conn.passfile ? passwordFromPassfile(conn.passfile, conn, database) : undefined);
  return {
    host: conn.host,
    port: conn.port,
    user: conn.user,
    password,
    database,
    ssl: sslOption(conn),
  };
}

/**
 * A libpq conninfo for `conn` without its password (it goes through the environment, see
 * `libpqEnv`, or a passfile), e.g. for pg_rewind's source or pg_basebackup.
 */
export function conninfo(conn: Connection, extra: Record<string, string> = {}): string {
  const parts: Array<[string, string]> = [
    ['host', conn.host],
    ['port', String(conn.port)],
    ['user', conn.user],
  ];
  if (conn.passfile) parts.push(['passfile', conn.passfile]);
  if (conn.sslmode) parts.push(['sslmode', conn.sslmode]);
  if (conn.sslrootcert) parts.push(['sslrootcert', conn.sslrootcert]);
  if (conn.sslcert) parts.push(['sslcert', conn.sslcert]);
  if (conn.sslkey) parts.push(['sslkey', conn.sslkey]);
  for (const [k, v] of Object.entries(extra)) parts.push([k, v]);
  return parts.map(([k, v]) => `${k}=${conninfoValue(v)}`).join(' ');
}

/**
 * primary_conninfo for a standby of `up`: the configured user, sslmode and passfile,
 * and the password inline when one is configured without a passfile (the walreceiver
 * reads no environment). postgresql.auto.conf is 0600, owned by the server's user.
 */
export function replicationConninfo(conn: Connection, up: { host: string; port: number }, applicationName: string): string {
  conn = replicationLogin(conn);
  const extra: Record<string, string> = {};
  if (conn.password !== undefined && !conn.passfile) extra['password'] = conn.password;
  extra['application_name'] = applicationName;
  return conninfo({ ...conn, host: up.host, port: up.port }, extra);
}

/**
 * The login replication uses (primary_conninfo, pg_basebackup): the replication user and
 * its password (or the passfile's line for it) when one is configured, else `conn`'s own.
 */
export function replicationLogin(conn: Connection): Connection {
  if (conn.replicationUser === undefined || conn.replicationUser === '') return conn;
  return { ...conn, user: conn.replicationUser, password: conn.replicationPassword };
}

/** Environment for a libpq tool run with `conn`: the password, never on the command line. */
export function libpqEnv(conn: Connection): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  if (conn.password !== undefined) env['PGPASSWORD'] = conn.password;
  if (conn.passfile) env['PGPASSFILE'] = conn.passfile;
  if (conn.sslmode) env['PGSSLMODE'] = conn.sslmode;
  return env;
}
