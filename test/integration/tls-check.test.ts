/**
 * TLS for real, with a CA this test makes (openssl): redis-server with --tls-port, an
 * ACL user and client certificates, used by a coordinator; PostgreSQL with ssl=on and
 * scram-sha-256, probed by the agent's own prober in verify-full (and with a client
 * certificate where pg_hba asks for one). And `switchyard check
 * --connect` against a node made ready with docs/operations.md's SQL, and against a
 * misconfigured one.
 */
import { execFileSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCoordinator, type RunningCoordinator } from '../../coordinator/main.js';
import { check, formatResult } from '../../src/config/check.js';
import { pgSsl, storeOptions } from '../../src/config/connect.js';
import { PostgresProber } from '../../src/engines/postgres/probe.js';
import { findRedisServer } from '../../src/sandbox/binaries.js';
import { freePort } from '../../src/sandbox/ports.js';
import { initPrimary, spawnPostgres, stopPostgres, waitReady } from '../../src/sandbox/postgres.js';
import { chownToPg, ensureTraversable } from '../../src/sandbox/proc.js';
import { stopRedis, waitRedisReady } from '../../src/sandbox/redis.js';
import { waitFor } from '../support/sandbox.js';

const REDIS_PW = 'redis-acl-password-123';
const AGENT_PW = 'agent-password-456';

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: 'pipe' });
}

/** A CA, a server certificate for localhost/127.0.0.1, and a client certificate. */
function makeCerts(dir: string): { ca: string; cert: string; key: string; clientCert: string; clientKey: string; otherCa: string } {
  fs.mkdirSync(dir, { recursive: true });
  openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=switchyard-test-ca'], dir);
  openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'other.key', '-out', 'other.crt', '-days', '2', '-subj', '/CN=some-other-ca'], dir);
  fs.writeFileSync(path.join(dir, 'san.ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\n');
  for (const [name, cn] of [
    ['server', 'localhost'],
    ['client', 'switchyard'],
  ] as const) {
    openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`], dir);
    openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.crt`, '-days', '2', '-extfile', 'san.ext'], dir);
  }
  const p = (f: string): string => path.join(dir, f);
  return { ca: p('ca.crt'), cert: p('server.crt'), key: p('server.key'), clientCert: p('client.crt'), clientKey: p('client.key'), otherCa: p('other.crt') };
}

/** The agent-role SQL block of docs/operations.md, as written. */
function agentRoleSql(): string {
  const doc = fs.readFileSync(path.resolve(import.meta.dirname, '../../docs/operations.md'), 'utf8');
  const m = /<!-- agent-role-sql[^>]*-->\s*```sql\n([\s\S]*?)```/.exec(doc);
  if (!m) throw new Error('docs/operations.md has no agent-role-sql block');
  return m[1]!;
}

describe('TLS to Redis and PostgreSQL; switchyard check --connect', () => {
  let dir: string;
  let certs: ReturnType<typeof makeCerts>;
  let redisChild: ChildProcess;
  let redisPort: number;
  const pgChildren: ChildProcess[] = [];
  let readyPort: number;
  let badPort: number;
  let coordinator: RunningCoordinator | null = null;

  async function startPg(name: string, extraConf: string[]): Promise<{ port: number; dataDir: string; child: ChildProcess }> {
    const port = await freePort();
    const dataDir = path.join(dir, name);
    await initPrimary({ dataDir, port });
    fs.appendFileSync(path.join(dataDir, 'postgresql.conf'), `${extraConf.join('\n')}\n`);
    const child = spawnPostgres({ dataDir, port });
    pgChildren.push(child);
    await waitReady(port, 60_000, '127.0.0.1', { child });
    return { port, dataDir, child };
  }

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sy-tls-'));
    ensureTraversable(dir);
    certs = makeCerts(path.join(dir, 'certs'));

    // Redis: TLS only, client certificates required, the default user off, a switchyard ACL user
    redisPort = await freePort();
    const conf = path.join(dir, 'redis.conf');
    fs.writeFileSync(
      conf,
      [
        'port 0',
        `tls-port ${redisPort}`,
        'bind 127.0.0.1',
        `tls-cert-file ${certs.cert}`,
        `tls-key-file ${certs.key}`,
        `tls-ca-cert-file ${certs.ca}`,
        'tls-auth-clients yes',
        'save ""',
        'appendonly yes',
        'maxmemory-policy noeviction',
        `dir ${dir}`,
        'user default off',
        // the ACL docs/operations.md recommends
        `user switchyard on >${REDIS_PW} ~sy:* &sy:* +@all -@admin -@dangerous +info +client +config|get`,
        '',
      ].join('\n'),
    );
    const log = fs.openSync(path.join(dir, 'redis.log'), 'a');
    redisChild = spawn(findRedisServer(), [conf], { stdio: ['ignore', log, log], detached: true });
    fs.closeSync(log);
    // readiness over TLS
    await waitFor('redis over TLS', async () => {
      const r = new Redis(`rediss://127.0.0.1:${redisPort}`, { ...storeOptions(store()), lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
      r.on('error', () => {});
      try {
        await r.connect();
        return (await r.ping()) === 'PONG';
      } catch {
        return false;
      } finally {
        r.disconnect();
      }
    }, 20_000, 200);
    void waitRedisReady; // (plain-text readiness does not apply to a TLS-only port)

    // PostgreSQL: ssl on with the test CA's certificate
    const serverCert = (dataDir: string): string[] => {
      for (const f of ['server.crt', 'server.key', 'ca.crt']) {
        fs.copyFileSync(path.join(certs.cert.replace(/server\.crt$/, ''), f), path.join(dataDir, f));
        fs.chmodSync(path.join(dataDir, f), 0o600);
        chownToPg(path.join(dataDir, f));
      }
      return [];
    };
    readyPort = await freePort();
    const readyDir = path.join(dir, 'ready');
    await initPrimary({ dataDir: readyDir, port: readyPort });
    serverCert(readyDir);
    fs.appendFileSync(path.join(readyDir, 'postgresql.conf'), "ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\nssl_ca_file = 'ca.crt'\npassword_encryption = 'scram-sha-256'\n");
    const child = spawnPostgres({ dataDir: readyDir, port: readyPort });
    pgChildren.push(child);
    await waitReady(readyPort, 60_000, '127.0.0.1', { child });
    const su = new pg.Client({ host: '127.0.0.1', port: readyPort, user: 'postgres', database: 'postgres' });
    await su.connect();
    await su.query(agentRoleSql().replace("'change-me'", `'${AGENT_PW}'`));
    // a role that must also show a client certificate signed by the CA
    await su.query(`CREATE ROLE switchyard_cert LOGIN PASSWORD '${AGENT_PW}' IN ROLE pg_monitor`);
    await su.end();
    // TLS and scram-sha-256 only, replication included
    fs.writeFileSync(
      path.join(readyDir, 'pg_hba.conf'),
      ['local all all trust', 'hostssl all switchyard_cert 127.0.0.1/32 scram-sha-256 clientcert=verify-ca', 'hostssl all all 127.0.0.1/32 scram-sha-256', 'hostssl replication replicator 127.0.0.1/32 scram-sha-256', ''].join('\n'),
    );
    const su2 = new pg.Client({ host: '127.0.0.1', port: readyPort, user: 'postgres', database: 'postgres' });
    await su2.connect();
    await su2.query('SELECT pg_reload_conf()');
    await su2.end();
    // pg_reload_conf() only signals the postmaster: wait until the new rules refuse plain text
    await waitFor('pg_hba.conf reloaded', async () => {
      const plain = new pg.Client({ host: '127.0.0.1', port: readyPort, user: 'postgres', database: 'postgres', connectionTimeoutMillis: 5_000 });
      plain.on('error', () => {});
      return plain.connect().then(
        async () => {
          await plain.end().catch(() => {});
          return false;
        },
        (err: Error) => /no pg_hba\.conf entry/.test(err.message),
      );
    }, 20_000, 100);

    // a node not ready for HA
    const bad = await startPg('bad', ['wal_level = minimal', 'max_wal_senders = 0', 'wal_log_hints = off', 'hot_standby = off', "password_encryption = 'md5'"]);
    badPort = bad.port;
  }, 180_000);

  afterAll(async () => {
    await coordinator?.stop().catch(() => {});
    for (const c of pgChildren) await stopPostgres(c).catch(() => {});
    if (redisChild) await stopRedis(redisChild).catch(() => {});
    fs.rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  const store = () => ({
    redis: `rediss://127.0.0.1:${redisPort}`,
    redisUser: 'switchyard',
    redisPassword: REDIS_PW,
    redisTls: { caFile: certs.ca, certFile: certs.clientCert, keyFile: certs.clientKey },
  });

  it('Redis: TLS with the CA and a client certificate, as the ACL user; refused otherwise', async () => {
    const attempt = async (o: Parameters<typeof storeOptions>[0]): Promise<string> => {
      const r = new Redis(o.redis, { ...storeOptions(o), lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0, connectTimeout: 3000 });
      let last = '';
      r.on('error', (e: Error) => (last = e.message));
      try {
        await r.connect();
        await r.set('sy:{t}:probe', '1');
        return 'ok';
      } catch (err) {
        return `refused: ${last || (err as Error).message}`;
      } finally {
        r.disconnect();
      }
    };
    expect(await attempt(store())).toBe('ok');
    expect(await attempt({ ...store(), redisPassword: 'wrong-password' })).toMatch(/^refused: .*WRONGPASS/);
    expect(await attempt({ ...store(), redisTls: { caFile: certs.ca } })).toMatch(/^refused/); // no client certificate
    expect(await attempt({ ...store(), redisTls: { ...store().redisTls, caFile: certs.otherCa } })).toMatch(/^refused/); // server not trusted
    expect(await attempt({ ...store(), redis: `redis://127.0.0.1:${redisPort}` })).toMatch(/^refused/); // plain text
  }, 60_000);

  it('a coordinator leads and serves over the TLS + ACL store', async () => {
    coordinator = await startCoordinator({
      id: 'tls1',
      ...store(),
      clusters: [{ name: 'tls', engine: 'postgres' }],
      api: { host: '127.0.0.1', port: 0 },
      leaseTtlMs: 3000,
      tickMs: 50,
      logLevel: 'silent',
    });
    const rt = [...coordinator.clusters.values()][0]!;
    await waitFor('leader over TLS', async () => rt.isLeader, 15_000);
    const res = await fetch(`${coordinator.url}/v1/clusters/tls/events?type=leader.changed`);
    expect(((await res.json()) as { events: unknown[] }).events.length).toBeGreaterThan(0);
  }, 60_000);

  it('PostgreSQL: the agent\'s prober connects in verify-full, as the least-privilege role', async () => {
    const target = (sslmode: 'disable' | 'verify-full' | 'verify-ca', ca = certs.ca) => ({
      host: '127.0.0.1',
      port: readyPort,
      user: 'switchyard_agent',
      password: AGENT_PW,
      database: 'postgres',
      // the engine's Connection (sslmode + certificate files) for the prober, and node-postgres's own ssl for pg.Client
      sslmode,
      sslrootcert: ca,
      ssl: pgSsl({ sslmode, sslrootcert: ca }),
    });
    const prober = new PostgresProber(target('verify-full'), 5000);
    const p = await prober.probe();
    await prober.close();
    expect(p.error ?? null).toBe(null);
    expect(p.role).toBe('primary');
    // TLS is really in use, and without it the server refuses
    const c = new pg.Client(target('verify-full'));
    await c.connect();
    const tls = await c.query<{ ssl: boolean }>('SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()');
    expect(tls.rows[0]!.ssl).toBe(true);
    // what the agent does with its role: fence and unfence, read the history file, checkpoint
    await c.query('ALTER SYSTEM SET default_transaction_read_only = on');
    await c.query('SELECT pg_reload_conf()');
    await c.query('ALTER SYSTEM RESET default_transaction_read_only');
    await c.query("ALTER SYSTEM SET synchronous_standby_names = ''");
    await c.query('SELECT pg_reload_conf()');
    await c.query("SELECT pg_read_file('PG_VERSION')");
    await c.query('CHECKPOINT');
    await c.end();
    const plain = new pg.Client(target('disable'));
    await expect(plain.connect()).rejects.toThrow(/no pg_hba.conf entry.*no encryption/);
    const wrongCa = new pg.Client(target('verify-full', certs.otherCa));
    wrongCa.on('error', () => {});
    await expect(wrongCa.connect()).rejects.toThrow(/certificate/);
  }, 60_000);

  it('PostgreSQL: client certificates (sslcert, sslkey) where pg_hba asks for one', async () => {
    const conn = (cert?: { sslcert: string; sslkey: string }) => ({ host: '127.0.0.1', port: readyPort, user: 'switchyard_cert', password: AGENT_PW, database: 'postgres', sslmode: 'verify-full' as const, sslrootcert: certs.ca, ...cert });
    const withCert = new PostgresProber(conn({ sslcert: certs.clientCert, sslkey: certs.clientKey }), 5000);
    const ok = await withCert.probe();
    await withCert.close();
    expect(ok.error ?? null).toBe(null);
    expect(ok.role).toBe('primary');
    const c = new pg.Client({ ...conn(), ssl: pgSsl({ sslmode: 'verify-full', sslrootcert: certs.ca }) });
    c.on('error', () => {});
    await expect(c.connect()).rejects.toThrow(/certificate/i);
  }, 60_000);

  it('switchyard check --connect: a ready node passes; a misconfigured one is told what to change', async () => {
    const agentFile = (port: number, extra: string): string => {
      const f = path.join(dir, `agent-${port}.yaml`);
      fs.writeFileSync(
        f,
        `cluster: main\nnode: n1\nredis: rediss://127.0.0.1:${redisPort}\nredisUser: switchyard\nredisPassword: ${REDIS_PW}\nredisTls:\n  caFile: ${certs.ca}\n  certFile: ${certs.clientCert}\n  keyFile: ${certs.clientKey}\nport: ${port}\n${extra}`,
      );
      return f;
    };
    const ready = await check(agentFile(readyPort, `user: switchyard_agent\npassword: ${AGENT_PW}\nsslmode: verify-full\nsslrootcert: ${certs.ca}\n`), { connect: true, env: {} });
    const text = formatResult('ready.yaml', ready);
    expect(ready.findings.filter((f) => !f.ok), text).toEqual([]);
    expect(text).toContain('ready for HA');

    const bad = await check(agentFile(badPort, ''), { connect: true, env: {} });
    const fixes = bad.findings.filter((f) => !f.ok).map((f) => `${f.what}: ${f.fix}`);
    const expected = [/^wal_level = minimal: set wal_level = replica/, /^max_wal_senders = 0: /, /^hot_standby = off: /, /^wal_log_hints = off and data_checksums = off: .*pg_rewind/, /^password_encryption = md5: /, /^ssl = off: /, /^replication only by superusers/, /^pg_hba: \d+ trust entries over TCP/, /superuser: use the least-privilege role/];
    for (const re of expected) expect(fixes.some((f) => re.test(f)), `${re} in\n${fixes.join('\n')}`).toBe(true);
    // the store was fine for both
    expect(bad.findings.filter((f) => !f.ok && f.what.startsWith('coordination Redis'))).toEqual([]);
  }, 60_000);
});
