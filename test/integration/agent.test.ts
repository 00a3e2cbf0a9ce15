/**
 * One agent against a real PostgreSQL and Redis, without coordinators: the jobs it must
 * refuse (stale epoch, expired, wrong node), and a deposed primary that comes back and
 * fences itself at once. The rules broken on purpose: an old leader's job, a job
 * delivered after its operation is over, two writable primaries.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from '../../agent/agent.js';
import { keys } from '../../src/bus/keys.js';
import { createLogger } from '../../src/log.js';
import { PgCluster } from '../support/pg-cluster.js';
import { RedisServer } from '../../src/sandbox/redis.js';
import { sql, waitFor } from '../support/sandbox.js';

const CLUSTER = 'ag';
const k = keys(CLUSTER);

describe('agent', () => {
  let dir: string;
  let pg: PgCluster;
  let redis: RedisServer;
  let client: Redis;
  const agents: Agent[] = [];

  async function agent(node: 'pg1' | 'pg2'): Promise<Agent> {
    const n = pg.nodes.find((x) => x.id === node)!;
    const a = new Agent(
      { cluster: CLUSTER, node, redis: redis.url, engine: 'postgres', host: '127.0.0.1', port: n.port, priority: 100, noFailover: false, user: 'postgres', database: 'postgres', probeIntervalMs: 100, probeTimeoutMs: 1000, fenceAfterMs: 4000, logLevel: 'silent' },
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
      return await waitFor(`job ${jobId} done`, async () => {
        const j = await q.getJob(job.id!);
        // read it again once finished: the first read may predate it
        if (await j?.isFailed()) return { failed: true, reason: (await q.getJob(job.id!))!.failedReason };
        if (await j?.isCompleted()) return { failed: false, reason: String((await q.getJob(job.id!))!.returnvalue) };
        return null;
      }, 15_000);
    } finally {
      await q.close();
    }
  }

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sy-agent-'));
    pg = await PgCluster.create({ baseDir: path.join(dir, 'pg'), replicas: 1 });
    redis = await RedisServer.start(path.join(dir, 'redis'));
    client = new Redis(redis.url);
    client.on('error', () => {});
    await client.set(k.leader, '5:c1');
  }, 120_000);

  afterAll(async () => {
    for (const a of agents) await a.stop().catch(() => {});
    client.disconnect();
    await redis.stop();
    await pg.destroy();
    fs.rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it('refuses jobs from an old epoch, expired jobs and jobs for another node; the replica stays a replica', async () => {
    await agent('pg2');
    const replicaPort = pg.nodes[1]!.port;
    const stale = await runJob('pg2', { epoch: 4, operationId: 'old', action: 'promote', node: 'pg2' }, '4-old-promote-pg2');
    expect(stale).toMatchObject({ failed: true, reason: expect.stringMatching(/stale-epoch/) });
    const expired = await runJob('pg2', { epoch: 5, operationId: 'late', action: 'promote', node: 'pg2', expiresAt: Date.now() - 1000 }, '5-late-promote-pg2');
    expect(expired).toMatchObject({ failed: true, reason: expect.stringMatching(/expired/) });
    const wrong = await runJob('pg2', { epoch: 5, operationId: 'x', action: 'promote', node: 'pg1' }, '5-x-promote-pg1-misrouted');
    expect(wrong).toMatchObject({ failed: true, reason: expect.stringMatching(/wrong-node/) });
    // the lease moved on: a job of the current epoch re-checks it before promoting
    await client.set(k.leader, '6:c2');
    const moved = await runJob('pg2', { epoch: 5, operationId: 'y', action: 'promote', node: 'pg2' }, '5-y-promote-pg2');
    expect(moved).toMatchObject({ failed: true, reason: expect.stringMatching(/lease-changed|stale-epoch/) });
    expect((await sql<{ rec: boolean }>(replicaPort, 'SELECT pg_is_in_recovery() AS rec')).rows[0]?.rec).toBe(true);
    // every refusal is reported on the observation stream, with its code
    const entries = (await client.xrange(k.obs, '-', '+')) as Array<[string, string[]]>;
    const codes = entries.map(([, f]) => JSON.parse(f[1]!) as { type: string; code?: string }).filter((e) => e.type === 'job.result').map((e) => e.code);
    expect(codes).toEqual(expect.arrayContaining(['stale-epoch', 'expired', 'wrong-node']));
  }, 60_000);

  it('a primary that finds another node named primary refuses writes at once', async () => {
    const primaryPort = pg.nodes[0]!.port;
    await sql(primaryPort, 'CREATE TABLE IF NOT EXISTS d (id serial PRIMARY KEY)');
    // the leader names pg1: nothing happens
    await client.set(k.primary, JSON.stringify({ id: 'pg1', host: '127.0.0.1', port: primaryPort }));
    const a = await agent('pg1');
    await new Promise((r) => setTimeout(r, 500));
    await sql(primaryPort, 'INSERT INTO d DEFAULT VALUES');
    expect(a.fenced).toBe(false);
    // it was failed over while it was away: the leader now names pg2
    const latest = (await client.xrevrange(k.obs, '+', '-', 'COUNT', 1)) as Array<[string, string[]]>;
    const before = latest[0]?.[0] ?? '0-0';
    await client.set(k.primary, JSON.stringify({ id: 'pg2', host: '127.0.0.1', port: pg.nodes[1]!.port }));
    await waitFor('pg1 fenced', async () => a.fenced, 15_000);
    await expect(sql(primaryPort, 'INSERT INTO d DEFAULT VALUES')).rejects.toThrow(/read-only/);
    // it reports itself fenced, so the leader can see it (on the stream since pg2 was named;
    // not only the last few entries: two agents probing every 100 ms fill them fast on a slow host)
    await waitFor('pg1 reporting itself fenced', async () => {
      const since = (await client.xrange(k.obs, `(${before}`, '+')) as Array<[string, string[]]>;
      return since.map(([, f]) => JSON.parse(f[1]!) as { node?: string; fenced?: boolean }).some((o) => o.node === 'pg1' && o.fenced === true);
    }, 15_000);
  }, 60_000);
});
