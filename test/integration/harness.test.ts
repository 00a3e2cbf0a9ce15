import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { Client } from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HarnessError } from '../../src/sandbox/errors.js';
import { assertPortFree, freePort, freePorts } from '../../src/sandbox/ports.js';
import { initPrimary } from '../../src/sandbox/postgres.js';
import { PgCluster } from '../support/pg-cluster.js';
import { processGroupMembers } from '../support/processes.js';
import { isProcessAlive, waitForExit } from '../../src/os/process.js';
import { RedisServer } from '../../src/sandbox/redis.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function query<T extends Record<string, unknown>>(port: number, sql: string, params: unknown[] = []): Promise<T[]> {
  const client = new Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres', connectionTimeoutMillis: 2_000 });
  client.on('error', () => {});
  await client.connect();
  try {
    return (await client.query<T>(sql, params)).rows;
  } finally {
    await client.end();
  }
}

async function poll<T>(fn: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastErr: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (err) {
      lastErr = err;
    }
    if (Date.now() > deadline) throw new Error(`poll timed out: ${String(lastErr)}`);
    await sleep(100);
  }
}

describe('sandbox harness', () => {
  let baseDir: string;
  let cluster: PgCluster | undefined;
  let redis: RedisServer | undefined;
  const pids: number[] = [];

  beforeAll(() => {
    baseDir = fs.mkdtempSync(path.join(os.tmpdir(), 'switchyard-harness-'));
  });

  afterAll(async () => {
    try {
      await redis?.stop();
      await cluster?.destroy();
    } finally {
      for (const pid of pids) {
        expect(isProcessAlive(pid), `pid ${pid} still alive`).toBe(false);
        // nothing left in the postmaster's process group either (backends)
        expect(processGroupMembers(pid), `group ${pid} not empty`).toEqual([]);
      }
      fs.rmSync(baseDir, { recursive: true, force: true });
    }
  }, 120_000);

  it('starts a primary with two streaming replicas', { timeout: 120_000 }, async () => {
    cluster = await PgCluster.create({ baseDir: path.join(baseDir, 'pg'), replicas: 2 });
    pids.push(...cluster.pids());
    expect(cluster.nodes.map((n) => n.id)).toEqual(['pg1', 'pg2', 'pg3']);
    for (const n of cluster.nodes) {
      expect(n.child.pid).toBeTypeOf('number');
      expect(isProcessAlive(n.child.pid!)).toBe(true);
      expect(n.port).not.toBe(5432);
    }

    const primary = cluster.primary;
    const [rec] = await query<{ r: boolean }>(primary.port, 'SELECT pg_is_in_recovery() AS r');
    expect(rec?.r).toBe(false);

    const streaming = await query<{ application_name: string; state: string }>(
      primary.port,
      'SELECT application_name, state FROM pg_stat_replication ORDER BY application_name',
    );
    expect(streaming).toEqual([
      { application_name: 'pg2', state: 'streaming' },
      { application_name: 'pg3', state: 'streaming' },
    ]);

    await query(primary.port, 'CREATE TABLE t (id int PRIMARY KEY, v text)');
    await query(primary.port, 'INSERT INTO t VALUES ($1, $2)', [1, 'hello']);

    for (const r of cluster.replicas) {
      const [inRecovery] = await query<{ r: boolean }>(r.port, 'SELECT pg_is_in_recovery() AS r');
      expect(inRecovery?.r).toBe(true);
      const v = await poll(async () => {
        const rows = await query<{ v: string }>(r.port, 'SELECT v FROM t WHERE id = 1');
        return rows[0]?.v;
      }, 10_000);
      expect(v).toBe('hello');
    }
  });

  it('a SIGKILLed postmaster is seen as dead', { timeout: 60_000 }, async () => {
    expect(cluster).toBeDefined();
    const pid = cluster!.primary.child.pid!;
    process.kill(pid, 'SIGKILL');
    expect(await waitForExit(pid, 10_000)).toBe(true);
    expect(isProcessAlive(pid)).toBe(false);
  });

  it('refuses a non-empty data directory', { timeout: 30_000 }, async () => {
    const dir = path.join(baseDir, 'occupied');
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'something'), 'x');
    const err = await initPrimary({ dataDir: dir, port: await freePort() }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HarnessError);
    expect((err as HarnessError).code).toBe('DATA_DIR_EXISTS');
    expect((err as HarnessError).message).toBe(
      `data directory ${dir} already exists: remove it or choose another --dir`,
    );
  });

  it('detects a port in use', { timeout: 30_000 }, async () => {
    const srv = net.createServer();
    await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
    const port = (srv.address() as net.AddressInfo).port;
    try {
      const err = await assertPortFree(port, 'pg1').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(HarnessError);
      expect((err as HarnessError).code).toBe('PORT_IN_USE');
      expect((err as HarnessError).message).toBe(
        `port ${port} (pg1) is already in use: choose another port or stop what listens there`,
      );
    } finally {
      await new Promise<void>((resolve) => srv.close(() => resolve()));
    }
    await expect(assertPortFree(port, 'pg1')).resolves.toBeUndefined();
    const ps = await freePorts(5);
    expect(new Set(ps).size).toBe(5);
  });

  it('starts a redis-server that answers PING', { timeout: 30_000 }, async () => {
    redis = await RedisServer.start(path.join(baseDir, 'redis'));
    pids.push(redis.child.pid!);
    expect(redis.url).toBe(`redis://127.0.0.1:${redis.port}`);
    expect(redis.port).not.toBe(6379);
    const { Redis } = await import('ioredis');
    const client = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
    try {
      await client.connect();
      expect(await client.ping()).toBe('PONG');
    } finally {
      client.disconnect();
    }
  });
});
