/**
 * `switchyard check --config F [--connect]`: validate a daemon's config; with
 * --connect, also check that the coordination Redis and the node are ready for HA and
 * print what to change. Exit code: 0 ready, 1 something to change, 2 invalid config.
 */
import net from 'node:net';
import { parseArgs } from 'node:util';
import { Redis, type RedisOptions } from 'ioredis';
import pg from 'pg';
import { ConfigError, load, readConfigFile, type DaemonKind } from './load.js';
import { pgSsl, storeOptions, type StoreConfig } from './connect.js';
import type { AgentConfig, CoordinatorConfig } from './schemas.js';
import { stripCredentials } from '../log.js';
import { passwordFromPassfile } from '../engines/postgres/connection.js';

export interface Finding {
  ok: boolean;
  what: string;
  /** what to change, when not ok */
  fix?: string;
  /** could not be checked with this role: not counted either way */
  skipped?: boolean;
}

export interface CheckResult {
  kind: DaemonKind;
  warnings: string[];
  findings: Finding[];
}

const ok = (what: string): Finding => ({ ok: true, what });
const fix = (what: string, change: string): Finding => ({ ok: false, what, fix: change });

export function guessKind(raw: Record<string, unknown>): DaemonKind {
  return 'clusters' in raw || 'id' in raw ? 'coordinator' : 'agent';
}

export async function check(file: string, opts: { kind?: DaemonKind; connect?: boolean; env?: NodeJS.ProcessEnv } = {}): Promise<CheckResult> {
  const env = opts.env ?? process.env;
  const kind = opts.kind ?? guessKind(readConfigFile(file));
  const loaded = load(kind, file, env);
  const result: CheckResult = { kind, warnings: loaded.warnings, findings: [] };
  if (!opts.connect) return result;
  const cfg = loaded.config as AgentConfig | CoordinatorConfig;
  result.findings.push(...(await checkStore(cfg)));
  if (kind === 'agent') {
    const a = cfg as AgentConfig;
    const engine = a.engine as string;
    if (engine === 'postgres') result.findings.push(...(await checkPostgres(a)));
    // the node's credentials as the Redis engine sends them (src/engines/redis/engine.ts)
    else if (engine === 'redis') result.findings.push(...(await checkRedisNode(`redis://${a.host}:${a.port}`, a.password ? { password: a.password, username: a.user && a.user !== 'default' ? a.user : undefined } : {})));
  } else {
    for (const c of (cfg as CoordinatorConfig).clusters) {
      for (const n of c.nodes ?? []) result.findings.push(await checkTcp(c.name, n, c.engine === 'postgres' ? 5432 : c.engine === 'redis' ? 6379 : 27017));
    }
  }
  return result;
}

async function checkTcp(cluster: string, hostPort: string, dfltPort: number): Promise<Finding> {
  const m = /^(.*?)(?::(\d+))?$/.exec(hostPort)!;
  const host = m[1]!;
  const port = m[2] ? Number(m[2]) : dfltPort;
  const what = `cluster ${cluster}: node ${host}:${port} reachable`;
  const reached = await new Promise<string | null>((resolve) => {
    const s = net.connect({ host, port });
    const t = setTimeout(() => {
      s.destroy();
      resolve('timeout');
    }, 2000);
    s.on('connect', () => {
      clearTimeout(t);
      s.destroy();
      resolve(null);
    });
    s.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(t);
      resolve(e.code ?? e.message);
    });
  });
  return reached === null ? ok(what) : fix(what, `cannot connect (${reached}): check the address, the firewall, and that the server listens on it`);
}

/** The coordination store: reachable with these credentials, and safe to keep the journal in. */
async function checkStore(cfg: StoreConfig): Promise<Finding[]> {
  const where = `coordination Redis ${stripCredentials(cfg.redis)}`;
  const r = new Redis(cfg.redis, { ...storeOptions(cfg), lazyConnect: true, maxRetriesPerRequest: 0, connectTimeout: 3000, retryStrategy: () => null });
  let last: Error | null = null;
  r.on('error', (e) => (last = e));
  try {
    await r.connect();
    await r.ping();
  } catch (err) {
    r.disconnect();
    const e = (last ?? err) as Error;
    return [fix(`${where} reachable`, `cannot connect: ${e.message} (check redis, redisUser, redisPassword, redisTls)`)];
  }
  const out: Finding[] = [ok(`${where} reachable${cfg.redisPassword ? ' with a password' : ''}`)];
  try {
    const info = await r.info('server');
    const version = /redis_version:(\S+)/.exec(info)?.[1] ?? '0';
    const [maj = 0, min = 0] = version.split('.').map(Number);
    out.push(maj > 6 || (maj === 6 && min >= 2) ? ok(`${where}: version ${version}`) : fix(`${where}: version ${version}`, 'use Redis 6.2 or newer (ACL users, XAUTOCLAIM, GETEX)'));
    if (!cfg.redisPassword) out.push(fix(`${where}: authentication`, 'create an ACL user for switchyard (see docs/operations.md) and set redisUser + redisPasswordFile'));
    const policy = await configGet(r, 'maxmemory-policy');
    if (policy !== null) out.push(policy === 'noeviction' ? ok(`${where}: maxmemory-policy noeviction`) : fix(`${where}: maxmemory-policy ${policy}`, 'set maxmemory-policy noeviction: an evicted lease or journal key breaks fencing'));
    const aof = await configGet(r, 'appendonly');
    if (aof !== null) out.push(aof === 'yes' ? ok(`${where}: appendonly yes`) : fix(`${where}: appendonly ${aof}`, 'set appendonly yes: a restarted Redis must keep the journal and the epoch (or run it with replicas)'));
  } catch (err) {
    out.push(fix(`${where}: INFO / CONFIG`, `could not read its settings: ${(err as Error).message}`));
  } finally {
    r.disconnect();
  }
  return out;
}

async function configGet(r: Redis, name: string): Promise<string | null> {
  try {
    const v = (await r.config('GET', name)) as string[];
    return v[1] ?? null;
  } catch {
    return null; // CONFIG may be denied to the switchyard user: not a finding
  }
}

/** A Redis node of the Redis engine: version, read-only replicas, persistence. */
export async function checkRedisNode(url: string, options: RedisOptions): Promise<Finding[]> {
  const where = `Redis node ${stripCredentials(url)}`;
  const r = new Redis(url, { ...options, lazyConnect: true, maxRetriesPerRequest: 0, connectTimeout: 3000, retryStrategy: () => null });
  r.on('error', () => {});
  try {
    await r.connect();
  } catch (err) {
    r.disconnect();
    return [fix(`${where} reachable`, `cannot connect: ${(err as Error).message}`)];
  }
  try {
    const out: Finding[] = [ok(`${where} reachable`)];
    const version = /redis_version:(\S+)/.exec(await r.info('server'))?.[1] ?? '0';
    const [maj = 0, min = 0] = version.split('.').map(Number);
    out.push(maj > 6 || (maj === 6 && min >= 2) ? ok(`${where}: version ${version}`) : fix(`${where}: version ${version}`, 'use Redis 6.2 or newer'));
    const ro = await configGet(r, 'replica-read-only');
    if (ro !== null) out.push(ro === 'yes' ? ok(`${where}: replica-read-only yes`) : fix(`${where}: replica-read-only ${ro}`, 'set replica-read-only yes: writes to a replica are lost at the next sync'));
    const aof = await configGet(r, 'appendonly');
    const save = await configGet(r, 'save');
    if (aof !== null || save !== null) {
      const persistent = aof === 'yes' || (save !== null && save !== '');
      out.push(persistent ? ok(`${where}: persistence (appendonly ${aof}, save "${save}")`) : fix(`${where}: no persistence`, 'set appendonly yes (or a save schedule): a master restarted empty would replicate its emptiness to every replica'));
    }
    return out;
  } finally {
    r.disconnect();
  }
}

/** A PostgreSQL node: what streaming replication, failover and pg_rewind need. */
export async function checkPostgres(a: AgentConfig): Promise<Finding[]> {
  const where = `PostgreSQL ${a.host}:${a.port}`;
  // the password inline, or from the passfile (as the agent reads it)
  const password = a.password ?? (a.passfile ? passwordFromPassfile(a.passfile, a) : undefined);
  const client = new pg.Client({ host: a.host, port: a.port, user: a.user, password, database: a.database, ssl: pgSsl(a), connectionTimeoutMillis: 5000 });
  client.on('error', () => {});
  try {
    await client.connect();
  } catch (err) {
    return [fix(`${where} reachable as ${a.user}`, `cannot connect: ${(err as Error).message}`)];
  }
  const out: Finding[] = [ok(`${where} reachable as ${a.user}`)];
  const show = async (name: string): Promise<string> => (await client.query<Record<string, string>>(`SHOW ${name}`)).rows[0]![name]!;
  try {
    const walLevel = await show('wal_level');
    out.push(walLevel === 'replica' || walLevel === 'logical' ? ok(`wal_level = ${walLevel}`) : fix(`wal_level = ${walLevel}`, 'set wal_level = replica (restart): standbys need the full WAL'));
    const senders = Number(await show('max_wal_senders'));
    out.push(senders >= 3 ? ok(`max_wal_senders = ${senders}`) : fix(`max_wal_senders = ${senders}`, 'set max_wal_senders to at least the number of replicas + 2 (restart): one per standby, plus pg_basebackup and pg_rewind'));
    const hot = await show('hot_standby');
    out.push(hot === 'on' ? ok('hot_standby = on') : fix(`hot_standby = ${hot}`, 'set hot_standby = on: replicas serve reads and the agent probes them'));
    const hints = await show('wal_log_hints');
    const checksums = await show('data_checksums');
    out.push(
      hints === 'on' || checksums === 'on'
        ? ok(`pg_rewind possible (wal_log_hints = ${hints}, data_checksums = ${checksums})`)
        : fix('wal_log_hints = off and data_checksums = off', 'set wal_log_hints = on (restart): without it (or data checksums) pg_rewind cannot rejoin a former primary, which must then be re-cloned'),
    );
    const enc = await show('password_encryption');
    out.push(enc === 'scram-sha-256' ? ok('password_encryption = scram-sha-256') : fix(`password_encryption = ${enc}`, "set password_encryption = 'scram-sha-256' and re-set the passwords"));
    const ssl = await show('ssl');
    out.push(ssl === 'on' ? ok('ssl = on') : fix('ssl = off', 'set ssl = on with ssl_cert_file/ssl_key_file, and sslmode verify-full in the agents (docs/operations.md)'));
    const repl = await client.query<{ rolname: string; rolsuper: boolean }>('SELECT rolname, rolsuper FROM pg_roles WHERE rolreplication AND rolcanlogin ORDER BY rolsuper, rolname');
    const dedicated = repl.rows.filter((r) => !r.rolsuper);
    out.push(
      dedicated.length > 0
        ? ok(`replication user: ${dedicated.map((r) => r.rolname).join(', ')}`)
        : fix(repl.rows.length > 0 ? `replication only by superusers (${repl.rows.map((r) => r.rolname).join(', ')})` : 'no replication user', "CREATE ROLE replicator WITH REPLICATION LOGIN PASSWORD '…'; standbys connect as it"),
    );
    try {
      const hba = await client.query<{ type: string; database: string[]; user_name: string[]; address: string | null; auth_method: string; error: string | null }>(
        'SELECT type, database, user_name, address, auth_method, error FROM pg_hba_file_rules',
      );
      const replRules = hba.rows.filter((r) => r.database?.includes('replication') && r.type.startsWith('host'));
      out.push(replRules.length > 0 ? ok(`pg_hba: ${replRules.length} replication entr${replRules.length === 1 ? 'y' : 'ies'} for TCP`) : fix('pg_hba: no replication entry', 'add "hostssl replication replicator <standby network> scram-sha-256" to pg_hba.conf and reload'));
      const trust = hba.rows.filter((r) => r.auth_method === 'trust' && r.type !== 'local');
      out.push(trust.length === 0 ? ok('pg_hba: no trust entries over TCP') : fix(`pg_hba: ${trust.length} trust entr${trust.length === 1 ? 'y' : 'ies'} over TCP`, 'use scram-sha-256 for every TCP entry, replication included'));
      const broken = hba.rows.filter((r) => r.error);
      if (broken.length > 0) out.push(fix('pg_hba: unreadable lines', broken.map((r) => r.error).join('; ')));
    } catch (err) {
      out.push({ ok: true, skipped: true, what: `pg_hba entries not checked: ${a.user} cannot read pg_hba_file_rules (${(err as Error).message}); check as a superuser, or by hand: a "hostssl replication" entry with scram-sha-256 and no trust over TCP` });
    }
    const priv = await client.query<{ monitor: boolean; promote: boolean; superuser: boolean }>(
      "SELECT pg_has_role(current_user, 'pg_monitor', 'USAGE') AS monitor, has_function_privilege(current_user, 'pg_promote(boolean, integer)', 'EXECUTE') AS promote, (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS superuser",
    );
    const p = priv.rows[0]!;
    out.push(p.monitor ? ok(`agent role ${a.user}: pg_monitor`) : fix(`agent role ${a.user}: no pg_monitor`, `GRANT pg_monitor TO ${a.user}`));
    out.push(p.promote ? ok(`agent role ${a.user}: EXECUTE on pg_promote`) : fix(`agent role ${a.user}: cannot run pg_promote`, `GRANT EXECUTE ON FUNCTION pg_promote(boolean, integer) TO ${a.user}`));
    if (p.superuser) out.push(fix(`agent role ${a.user} is a superuser`, 'use the least-privilege role of docs/operations.md ("The agent\'s PostgreSQL role")'));
  } finally {
    await client.end().catch(() => {});
  }
  return out;
}

export function formatResult(file: string, r: CheckResult): string {
  const lines = [`${file}: a valid ${r.kind} configuration`];
  for (const w of r.warnings) lines.push(`warn  ${w}`);
  for (const f of r.findings) lines.push(f.skipped ? `skip  ${f.what}` : f.ok ? `ok    ${f.what}` : `FIX   ${f.what}: ${f.fix}`);
  const todo = r.findings.filter((f) => !f.ok).length;
  if (r.findings.length > 0) lines.push(todo === 0 ? 'ready for HA' : `${todo} thing${todo === 1 ? '' : 's'} to change`);
  return lines.join('\n');
}

/** The CLI command. Returns the exit code. */
export async function runCheck(argv: string[], print: (s: string) => void = console.log): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { config: { type: 'string' }, connect: { type: 'boolean', default: false }, daemon: { type: 'string' } }, strict: true });
  if (!values.config) throw new ConfigError('check needs --config FILE');
  if (values.daemon !== undefined && values.daemon !== 'agent' && values.daemon !== 'coordinator') throw new ConfigError(`--daemon ${values.daemon}: use agent or coordinator`);
  const r = await check(values.config, { kind: values.daemon, connect: values.connect });
  print(formatResult(values.config, r));
  return r.findings.some((f) => !f.ok) ? 1 : 0;
}
