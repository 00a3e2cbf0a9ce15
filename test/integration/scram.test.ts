/**
 * A cluster where every connection, replication included, authenticates with
 * scram-sha-256: the agents must use the configured connection (user and password) for
 * everything, including the CHECKPOINT on the new primary and pg_rewind's source. A
 * failover (promote job) and a pg_rewind rejoin (rejoin job) on real processes.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from '../../agent/agent.js';
import { keys } from '../../src/bus/keys.js';
import type { Connection } from '../../src/engines/types.js';
import { createLogger } from '../../src/log.js';
import { RedisServer } from '../../src/sandbox/redis.js';
import { PgCluster } from '../support/pg-cluster.js';
import { waitFor } from '../support/sandbox.js';

const CLUSTER = 'scram';
const k = keys(CLUSTER);
const PASSWORD = 'S3cret pass-word';

async function query<T extends pg.QueryResultRow>(conn: Connection, text: string): Promise<T[]> {
  const c = new pg.Client({ ...conn, connectionTimeoutMillis: 5_000 });
  c.on('error', () => {});
  await c.connect();
  try {
    return (await c.query<T>(text)).rows;
  } finally {
    await c.end().catch(() => {});
  }
}

describe('scram-sha-256 everywhere', () => {
  let dir: string;
  let cluster: PgCluster;
  let redis: RedisServer;
  let client: Redis;
  const agents: Agent[] = [];

  async function agent(node: 'pg1' | 'pg2'): Promise<Agent> {
    const n = cluster.node(node);
    const a = new Agent(
      {
        cluster: CLUSTER,
        node,
        redis: redis.url,
        engine: 'postgres',
        host: '127.0.0.1',
        port: n.port,
        priority: 100,
        noFailover: false,
        dataDir: n.dataDir,
        user: 'postgres',
        password: PASSWORD,
        database: 'postgres',
        probeIntervalMs: 100,
        probeTimeoutMs: 1000,
        fenceAfterMs: 4000,
        logLevel: 'silent',
      },
      createLogger(`agent:${node}`, 'silent'),
    );
    await a.start();
    agents.push(a);
    return a;
  }

  async function runJob(node: string, data: Record<string, unknown>, jobId: string): Promise<{ failed: boolean; reason: string }> {
    const q = new Queue(node, { connection: client, prefix: k.queuePrefix });
    try {
      const job = await q.add(String(data.action), data, { jobId });
      return await waitFor(
        `job ${jobId} done`,
        async () => {
          const j = await q.getJob(job.id!);
          if (await j?.isFailed()) return { failed: true, reason: (await q.getJob(job.id!))!.failedReason };
          if (await j?.isCompleted()) return { failed: false, reason: String((await q.getJob(job.id!))!.returnvalue) };
          return null;
        },
        120_000,
      );
    } finally {
      await q.close();
    }
  }

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sy-scram-'));
    cluster = await PgCluster.create({ baseDir: path.join(dir, 'pg'), replicas: 1, password: PASSWORD });
    redis = await RedisServer.start(path.join(dir, 'redis'));
    client = new Redis(redis.url);
    client.on('error', () => {});
    await client.set(k.leader, '1:c1');
  }, 180_000);

  afterAll(async () => {
    for (const a of agents) await a.stop().catch(() => {});
    client?.disconnect();
    await redis?.stop();
    await cluster?.destroy();
    fs.rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it('refuses connections without the password, replication included (pg_hba)', async () => {
    const hba = fs.readFileSync(path.join(cluster.node('pg1').dataDir, 'pg_hba.conf'), 'utf8');
    expect(hba).toMatch(/^host\s+replication\s+all\s+127\.0\.0\.1\/32\s+scram-sha-256$/m);
    expect(hba).not.toMatch(/trust/m);
    const { password: _pw, ...noPassword } = cluster.connection('pg1');
    await expect(query(noPassword, 'SELECT 1')).rejects.toThrow(/password/i);
    await expect(query({ ...cluster.connection('pg1'), password: 'wrong' }, 'SELECT 1')).rejects.toThrow(/password authentication failed/);
    // the replica streams over a scram-authenticated replication connection
    const rows = await query<{ application_name: string; state: string }>(cluster.connection('pg1'), 'SELECT application_name, state FROM pg_stat_replication');
    expect(rows).toEqual([{ application_name: 'pg2', state: 'streaming' }]);
  });

  it('fails over to pg2 and rejoins the diverged former primary with pg_rewind, all through the configured connection', async () => {
    const a1 = await agent('pg1');
    await agent('pg2');
    // the agents adopted the running postmasters (verified through /proc)
    expect(a1.managed?.pid).toBe(cluster.node('pg1').child.pid);

    const c1 = cluster.connection('pg1');
    const c2 = cluster.connection('pg2');
    await query(c1, 'CREATE TABLE t (id int PRIMARY KEY, what text)');
    await query(c1, "INSERT INTO t VALUES (1, 'before')");
    await waitFor('row 1 on pg2', async () => (await query<{ n: number }>(c2, 'SELECT count(*)::int AS n FROM t'))[0]!.n === 1, 30_000);

    const promoted = await runJob('pg2', { epoch: 1, operationId: 'fo-1', action: 'promote', node: 'pg2' }, '1-fo-1-promote-pg2');
    expect(promoted).toEqual({ failed: false, reason: 'promoted' });
    expect((await query<{ rec: boolean }>(c2, 'SELECT pg_is_in_recovery() AS rec'))[0]!.rec).toBe(false);
    await query(c2, "INSERT INTO t VALUES (2, 'on the new primary')");
    // the old primary diverges: a write only it has (what pg_rewind must undo)
    await query(c1, "INSERT INTO t VALUES (3, 'lost on the old primary')");

    const up = { id: 'pg2', host: '127.0.0.1', port: cluster.node('pg2').port };
    const rejoined = await runJob('pg1', { epoch: 1, operationId: 'fo-1', action: 'rejoin', node: 'pg1', upstream: up }, '1-fo-1-rejoin-pg1');
    expect(rejoined).toEqual({ failed: false, reason: 'rejoined pg2 (rewound)' });

    // pg1 is a standby of pg2, streaming over scram, without the diverged row
    expect((await query<{ rec: boolean }>(c1, 'SELECT pg_is_in_recovery() AS rec'))[0]!.rec).toBe(true);
    await query(c2, "INSERT INTO t VALUES (4, 'after the rejoin')");
    await waitFor('row 4 on pg1', async () => (await query<{ n: number }>(c1, 'SELECT count(*)::int AS n FROM t WHERE id = 4'))[0]!.n === 1, 30_000);
    expect((await query<{ id: number }>(c1, 'SELECT id FROM t ORDER BY id')).map((r) => r.id)).toEqual([1, 2, 4]);
    const repl = await query<{ application_name: string; state: string }>(c2, 'SELECT application_name, state FROM pg_stat_replication');
    expect(repl).toContainEqual({ application_name: 'pg1', state: 'streaming' });
    // its primary_conninfo carries the configured user and password, not a password-less postgres@127.0.0.1
    const conninfo = (await query<{ v: string }>(c1, "SELECT current_setting('primary_conninfo') AS v"))[0]!.v;
    expect(conninfo).toContain(`port=${up.port}`);
    expect(conninfo).toContain('user=postgres');
    expect(conninfo).toContain("password='S3cret pass-word'");
    expect(conninfo).toContain('application_name=pg1');
  }, 240_000);
});
