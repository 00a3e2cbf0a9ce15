/**
 * The sandbox runs the secure way (issue 12 §2), because that is what users copy:
 * PostgreSQL with scram-sha-256 for every connection (replication included, no `trust`
 * left), the agents logged in as their least-privilege role, the coordination Redis
 * behind an ACL user with a password (the default user off), the API with a generated
 * admin token; no secret in a config file, a log or a command line. And a child that
 * exits at start-up is named in the sandbox's error, with the last lines of its log.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setReadOnly } from '../../src/engines/postgres/actions.js';
import { pgBinary } from '../../src/sandbox/binaries.js';
import { Sandbox, cliEntry, type SandboxFile } from '../../src/sandbox/deploy.js';
import { agentRoleSql, replicationRoleSql } from '../../src/sandbox/postgres.js';
import { AGENT_ROLE, REDIS_ACL_USER, REPLICATION_ROLE } from '../../src/sandbox/secrets.js';
import { consecutiveFreePorts, startSandbox, stopSandbox, testPgPassword, waitFor } from '../support/sandbox.js';

/** One raw RESP exchange: the server's first reply line, sent by no client library. */
function rawRedis(port: number, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ port, host: '127.0.0.1' });
    let buf = '';
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`no answer from redis on ${port}`));
    }, 5_000);
    sock.on('connect', () => sock.write(`${command}\r\n`));
    sock.on('data', (d) => {
      buf += d.toString();
      if (buf.includes('\r\n')) {
        clearTimeout(timer);
        sock.destroy();
        resolve(buf.split('\r\n')[0]!);
      }
    });
    sock.on('error', reject);
  });
}

/** psql with nothing but the given conninfo: no PGPASSWORD, no passfile to fall back on. */
function psql(conninfo: string, sql = 'SELECT 1'): { code: number | null; out: string } {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^PG[A-Z]/.test(k)) env[k] = v;
  env.PGPASSFILE = '/dev/null';
  const r = spawnSync(pgBinary('psql'), ['-X', '-At', '-w', '-d', conninfo, '-c', sql], { encoding: 'utf8', env, timeout: 20_000 });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

async function query<T extends pg.QueryResultRow>(file: SandboxFile, port: number, text: string, user?: { user: string; password: string }): Promise<T[]> {
  const c = new pg.Client({ host: '127.0.0.1', port, database: file.connection.database, user: user?.user ?? file.connection.user, password: user?.password ?? file.connection.password!, connectionTimeoutMillis: 5_000 });
  c.on('error', () => {});
  await c.connect();
  try {
    return (await c.query<T>(text)).rows;
  } finally {
    await c.end().catch(() => {});
  }
}

/** Every file under `dir` (recursively), except PostgreSQL's data directories. */
function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...filesUnder(p));
    else if (e.isFile()) out.push(p);
  }
  return out;
}

describe('a secure sandbox', () => {
  let s: Awaited<ReturnType<typeof startSandbox>> | undefined;
  let file: SandboxFile;
  let agentPassword: string;
  let replicationPassword: string;
  let redisPassword: string;

  beforeAll(async () => {
    s = await startSandbox({ replicas: 1, coordinators: 1 });
    file = s.file;
    const secrets = path.join(s.sandbox.dir, 'secrets');
    // the passfile: host:port:db:user:password, one line per role
    const pgpass = new Map(fs.readFileSync(path.join(secrets, 'agent.pgpass'), 'utf8').trim().split('\n').map((l) => [l.split(':')[3]!, l.split(':')[4]!]));
    agentPassword = pgpass.get(AGENT_ROLE)!;
    replicationPassword = pgpass.get(REPLICATION_ROLE)!;
    redisPassword = fs.readFileSync(path.join(secrets, 'redis.password'), 'utf8').trim();
  }, 180_000);

  afterAll(async () => {
    await stopSandbox(s);
  }, 60_000);

  it('PostgreSQL: scram-sha-256 for every connection, replication included; trust is gone; a wrong or missing password is refused', async () => {
    const [primary, replica] = file.nodes;
    for (const n of file.nodes) {
      const hba = fs.readFileSync(path.join(n.dataDir, 'pg_hba.conf'), 'utf8');
      expect(hba).not.toMatch(/trust/);
      expect(hba).toMatch(/^host\s+all\s+all\s+127\.0\.0\.1\/32\s+scram-sha-256$/m);
      expect(hba).toMatch(/^host\s+replication\s+all\s+127\.0\.0\.1\/32\s+scram-sha-256$/m);
    }
    expect(file.connection).toEqual({ user: 'postgres', database: 'postgres', password: testPgPassword() });
    const base = `host=127.0.0.1 port=${primary!.port} dbname=postgres`;
    // the password sandbox.json gives works
    expect(psql(`${base} user=postgres password=${file.connection.password!}`, 'SELECT 42')).toEqual({ code: 0, out: '42\n' });
    // no password: refused (trust would let it in)
    const none = psql(`${base} user=postgres`);
    expect(none.code).not.toBe(0);
    expect(none.out).toMatch(/no password supplied/);
    // a wrong one: refused, for the superuser, the agents' role, and a replication connection
    expect(psql(`${base} user=postgres password=wrong`).out).toMatch(/password authentication failed for user "postgres"/);
    expect(psql(`${base} user=${AGENT_ROLE} password=wrong`).out).toMatch(/password authentication failed for user "switchyard_agent"/);
    expect(psql(`${base} user=${AGENT_ROLE} password=wrong replication=database`, 'IDENTIFY_SYSTEM').out).toMatch(/password authentication failed/);
    expect(psql(`host=127.0.0.1 port=${replica!.port} dbname=postgres user=postgres password=wrong`).out).toMatch(/password authentication failed/);
    // stored as scram verifiers
    const roles = await query<{ rolname: string; scram: boolean }>(file, primary!.port, "SELECT rolname, rolpassword LIKE 'SCRAM-SHA-256$%' AS scram FROM pg_authid WHERE rolpassword IS NOT NULL ORDER BY rolname");
    expect(roles).toEqual([
      { rolname: 'postgres', scram: true },
      { rolname: REPLICATION_ROLE, scram: true },
      { rolname: AGENT_ROLE, scram: true },
    ]);
  });

  it('the agents log in as their least-privilege role (not a superuser); the standbys stream as the replication role', async () => {
    const [primary] = file.nodes;
    const roles = await query<{ rolname: string; rolsuper: boolean; rolreplication: boolean; rolcreaterole: boolean; rolcreatedb: boolean }>(file, primary!.port, `SELECT rolname, rolsuper, rolreplication, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname IN ('${AGENT_ROLE}', '${REPLICATION_ROLE}') ORDER BY rolname`);
    expect(roles).toEqual([
      { rolname: REPLICATION_ROLE, rolsuper: false, rolreplication: true, rolcreaterole: false, rolcreatedb: false },
      { rolname: AGENT_ROLE, rolsuper: false, rolreplication: false, rolcreaterole: false, rolcreatedb: false },
    ]);
    // the replication role has nothing but REPLICATION: no pg_monitor, no function grants
    expect(await query(file, primary!.port, `SELECT 1 FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.member WHERE r.rolname = '${REPLICATION_ROLE}'`)).toEqual([]);
    // the agents' role cannot open a replication connection, the replication role can
    const base = `host=127.0.0.1 port=${primary!.port} dbname=postgres replication=database`;
    expect(psql(`${base} user=${AGENT_ROLE} password=${agentPassword}`, 'IDENTIFY_SYSTEM').out).toMatch(/must be superuser or replication role|permission denied to start WAL sender/);
    expect(psql(`${base} user=${REPLICATION_ROLE} password=${replicationPassword}`, 'IDENTIFY_SYSTEM').code).toBe(0);
    const agents = await waitFor(
      'the agent sessions',
      async () => {
        const rows = await query<{ usename: string }>(file, primary!.port, "SELECT DISTINCT usename FROM pg_stat_activity WHERE backend_type = 'client backend' AND usename <> 'postgres'");
        return rows.length > 0 ? rows : null;
      },
      20_000,
      200,
    );
    expect(agents).toEqual([{ usename: AGENT_ROLE }]);
    expect(await query<{ usename: string; state: string }>(file, primary!.port, 'SELECT usename, state FROM pg_stat_replication')).toEqual([{ usename: REPLICATION_ROLE, state: 'streaming' }]);
    // the replica's primary_conninfo names the replication role and the passfile, never a password
    const conninfo = (await query<{ v: string }>(file, file.nodes[1]!.port, "SELECT current_setting('primary_conninfo') AS v"))[0]!.v;
    expect(conninfo).toMatch(new RegExp(`user=${REPLICATION_ROLE} passfile=\\S+agent\\.pgpass`));
    expect(conninfo).not.toMatch(/password=/);
    // the agents' role can do what the agent needs, and no more
    const as = { user: AGENT_ROLE, password: agentPassword };
    expect(await query(file, primary!.port, "SELECT count(*) FROM pg_file_settings", as)).toHaveLength(1);
    await expect(query(file, primary!.port, 'CREATE TABLE not_allowed (id int)', as)).rejects.toThrow(/permission denied/);
    await expect(query(file, primary!.port, "SELECT pg_read_file('/etc/hostname')", as)).rejects.toThrow(/absolute path not allowed|permission denied/);
    await expect(query(file, primary!.port, 'ALTER SYSTEM SET work_mem = 1024', as)).rejects.toThrow(/permission denied/);
  });

  it('the coordination Redis refuses an unauthenticated client; sandbox.json gives a URL that logs in', async () => {
    const port = Number(new URL(file.redis).port);
    expect(new URL(file.redis).username).toBe(REDIS_ACL_USER);
    expect(await rawRedis(port, 'PING')).toMatch(/^-NOAUTH/);
    expect(await rawRedis(port, 'GET x')).toMatch(/^-NOAUTH/);
    // the default user is off: no password makes it log in
    expect(await rawRedis(port, 'AUTH anything')).toMatch(/^-WRONGPASS/);
    expect(await rawRedis(port, `AUTH ${REDIS_ACL_USER} wrong`)).toMatch(/^-WRONGPASS/);
    const r = new Redis(file.redis, { lazyConnect: true, maxRetriesPerRequest: 0 });
    r.on('error', () => {});
    try {
      await r.connect();
      expect(await r.ping()).toBe('PONG');
      expect(await r.exists(`sy:{${file.cluster}}:log`)).toBe(1);
      // the daemons' user has no admin commands, and no keys outside sy:
      await expect(r.config('SET', 'appendonly', 'no')).rejects.toThrow(/NOPERM/);
      await expect(r.flushall()).rejects.toThrow(/NOPERM/);
      await expect(r.call('SHUTDOWN', 'NOSAVE')).rejects.toThrow(/NOPERM/);
      await expect(r.set('other:key', '1')).rejects.toThrow(/NOPERM/);
    } finally {
      r.disconnect();
    }
  });

  it('the API: admin routes need the generated token', async () => {
    const url = `${file.api}/v1/clusters/${file.cluster}/pause`;
    expect((await fetch(url, { method: 'POST' })).status).toBe(401);
    expect((await fetch(url, { method: 'POST', headers: { authorization: 'Bearer not-the-token-at-all' } })).status).toBe(401);
    const ok = await fetch(url, { method: 'POST', headers: { authorization: `Bearer ${file.adminToken}` } });
    expect(ok.status).toBe(200);
    const resume = await fetch(`${file.api}/v1/clusters/${file.cluster}/resume`, { method: 'POST', headers: { authorization: `Bearer ${file.adminToken}` } });
    expect(resume.status).toBe(200);
  });

  it('no secret in a config file, a log, or a command line', () => {
    const secrets = [file.connection.password!, agentPassword, replicationPassword, redisPassword, file.adminToken];
    for (const x of secrets) expect(x.length).toBeGreaterThanOrEqual(16);
    const dir = s!.sandbox.dir;
    // the server logs of PostgreSQL (data/<node>.log) too: the role's password was set without being logged
    const pgLogs = fs.readdirSync(path.join(dir, 'data')).filter((f) => f.endsWith('.log')).map((f) => path.join(dir, 'data', f));
    expect(pgLogs.length).toBe(file.nodes.length);
    const files = [...filesUnder(path.join(dir, 'config')), ...filesUnder(path.join(dir, 'logs')), ...filesUnder(path.join(dir, 'redis')), ...pgLogs];
    expect(files.length).toBeGreaterThan(3);
    for (const f of files) {
      const text = fs.readFileSync(f, 'utf8');
      for (const x of secrets) expect(text.includes(x), `${f} holds a secret`).toBe(false);
    }
    // and the least privileges are enough: no daemon was refused anything
    for (const f of filesUnder(path.join(dir, 'logs'))) expect(fs.readFileSync(f, 'utf8'), f).not.toMatch(/NOPERM|NOAUTH|WRONGPASS|permission denied|must be superuser/i);
    // the daemons read their secrets from files under secrets/ (0600)
    const agentCfg = JSON.parse(fs.readFileSync(path.join(dir, 'config', 'agent-pg1.json'), 'utf8')) as Record<string, unknown>;
    expect(agentCfg).toMatchObject({ user: AGENT_ROLE, replicationUser: REPLICATION_ROLE, passfile: expect.stringContaining('secrets'), redisUser: REDIS_ACL_USER, redisPasswordFile: expect.stringContaining('secrets') });
    for (const f of fs.readdirSync(path.join(dir, 'secrets'))) expect(fs.statSync(path.join(dir, 'secrets', f)).mode & 0o077).toBe(0);
    // command lines of every process the sandbox started (and their children: postmasters, walreceivers)
    const pids = [file.redisPid, ...file.nodes.map((n) => n.agentPid), ...file.coordinators.map((c) => c.pid)];
    for (const n of file.nodes) pids.push(Number(fs.readFileSync(path.join(n.dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]));
    for (const pid of pids) {
      const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      for (const x of secrets) expect(cmdline.includes(x), `pid ${pid}'s command line holds a secret`).toBe(false);
      const env = fs.readFileSync(`/proc/${pid}/environ`, 'utf8');
      expect(env).not.toMatch(/(^|\0)PGPASSWORD=/);
    }
  });

  it("the agents' role fences: it ends an ordinary role's sessions, and a superuser's session does not make the fence fail", async () => {
    const [primary] = file.nodes;
    await query(file, primary!.port, "CREATE ROLE app_writer LOGIN PASSWORD 'app-writer-pw'; CREATE TABLE fenced (id int); GRANT INSERT ON fenced TO app_writer");
    const open = async (user: string, password: string): Promise<pg.Client> => {
      const c = new pg.Client({ host: '127.0.0.1', port: primary!.port, user, password, database: 'postgres' });
      c.on('error', () => {});
      await c.connect();
      return c;
    };
    const app = await open('app_writer', 'app-writer-pw');
    const su = await open('postgres', file.connection.password!);
    const agentConn = { host: '127.0.0.1', port: primary!.port, user: AGENT_ROLE, password: agentPassword, database: 'postgres' };
    // the cluster paused first: the primary now reports itself fenced, and a running leader
    // sends it an unfence job at once, which on a slow host could land before the checks below
    const admin = (action: string): Promise<Response> => fetch(`${file.api}/v1/clusters/${file.cluster}/${action}`, { method: 'POST', headers: { authorization: `Bearer ${file.adminToken}` } });
    expect([200, 202]).toContain((await admin('pause')).status); // 202: queued, the leader answers later
    await waitFor('the cluster paused', async () => ((await (await fetch(`${file.api}/v1/clusters`)).json()) as Array<{ paused: boolean }>)[0]?.paused === true, 10_000, 100);
    try {
      await setReadOnly(agentConn, true, 5_000);
      // the ordinary role's session is gone (terminated), the superuser's is not
      const left = await query<{ usename: string }>(file, primary!.port, "SELECT usename FROM pg_stat_activity WHERE usename IN ('app_writer', 'postgres') AND backend_type = 'client backend' AND pid <> pg_backend_pid()");
      expect(left).toEqual([{ usename: 'postgres' }]);
      await expect(app.query('INSERT INTO fenced VALUES (1)')).rejects.toThrow(/terminat|connection/i);
      // the superuser's session lives on, and its next transaction is read-only
      await expect(su.query('INSERT INTO fenced VALUES (2)')).rejects.toThrow(/read-only transaction/);
    } finally {
      await setReadOnly(agentConn, false, 5_000);
      await app.end().catch(() => {});
      await su.end().catch(() => {});
      expect([200, 202]).toContain((await admin('resume')).status);
    }
    await waitFor('writable again', async () => (await query(file, primary!.port, 'INSERT INTO fenced VALUES (3) RETURNING id')).length === 1, 10_000, 200);
  });

  it("`switchyard check --connect` with an agent's own config: every security requirement met but TLS", () => {
    const r = spawnSync(process.execPath, [cliEntry(), 'check', '--config', path.join(s!.sandbox.dir, 'config', 'agent-pg1.json'), '--connect'], { encoding: 'utf8', env: { ...process.env, PGPASSWORD: '' }, timeout: 60_000 });
    const lines = r.stdout.split('\n');
    const fixes = lines.filter((l) => l.startsWith('FIX'));
    // the sandbox runs on loopback without TLS: that is the one thing left to change
    expect(fixes).toEqual([expect.stringMatching(/^FIX\s+ssl = off/)]);
    for (const want of [/^ok\s+coordination Redis .* reachable with a password/, /^ok\s+coordination Redis .*: appendonly yes/, /^ok\s+PostgreSQL .* reachable as switchyard_agent/, /^ok\s+password_encryption = scram-sha-256/, /^ok\s+replication user: replicator/, /^ok\s+agent role switchyard_agent: pg_monitor/, /^ok\s+agent role switchyard_agent: EXECUTE on pg_promote/]) {
      expect(lines.some((l) => want.test(l)), `${String(want)} in\n${r.stdout}`).toBe(true);
    }
    expect(r.stdout).not.toMatch(/is a superuser/);
  });

  it('docs/operations.md gives the same SQL for the agent role as the sandbox runs', () => {
    const doc = fs.readFileSync(path.resolve(import.meta.dirname, '../../docs/operations.md'), 'utf8');
    for (const stmt of [...agentRoleSql(AGENT_ROLE), ...replicationRoleSql(REPLICATION_ROLE)]) expect(doc).toContain(`${stmt};`);
  });
});

describe('a sandbox child that exits at start-up', () => {
  it('a coordinator with a bad config: its reason is in its log file and quoted in the error', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sy-it-bad-'));
    const apiPort = await consecutiveFreePorts(1);
    const sandbox = new Sandbox({ engine: 'postgres', replicas: 0, sync: false, coordinators: 1, apiPort, dir: path.join(dir, 'sb'), cluster: 'bad', settings: { failAfterMs: 'soon' }, pgPassword: testPgPassword() });
    try {
      const err = (await sandbox.up(() => {}).then(
        () => null,
        (e: unknown) => e,
      )) as (Error & { code?: string }) | null;
      expect(err).not.toBeNull();
      expect(err!.code).toBe('SANDBOX_CHILD_EXITED');
      expect(err!.message).toMatch(/^coordinator c1 \(pid \d+\) exited with code 2 during start-up; the last lines of .*coordinator-c1\.log:/);
      expect(err!.message).toContain('clusters[0].settings.failAfterMs: expected integer ≥ 0, got "soon"');
      const log = fs.readFileSync(path.join(dir, 'sb', 'logs', 'coordinator-c1.log'), 'utf8');
      expect(log).toContain('clusters[0].settings.failAfterMs: expected integer ≥ 0, got "soon"');
      expect(log).not.toMatch(/^\s+at /m);
    } finally {
      await sandbox.down();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 180_000);
});
