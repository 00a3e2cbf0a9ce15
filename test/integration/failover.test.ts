/**
 * The walking skeleton end to end, on real processes: Redis, a primary and two
 * replicas, one agent per node, two coordinators. SIGKILL the primary's postmaster;
 * the routing table names a replica that accepts an INSERT, and the old primary comes
 * back as a replica of it, never as a second primary.
 */
import { Queue, QueueEvents } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendFenced } from '../../src/bus/journal.js';
import { jobIdFor, keys } from '../../src/bus/keys.js';
import { epochOfLeaseValue } from '../../src/bus/lease.js';
import type { SandboxFile } from '../../src/sandbox/deploy.js';
import { isProcessAlive } from '../../src/sandbox/proc.js';
import { postmasterPid, routing, sql, startSandbox, stopSandbox, waitFor } from '../support/sandbox.js';

describe('failover on real processes', () => {
  let s: Awaited<ReturnType<typeof startSandbox>> | undefined;
  let file: SandboxFile;

  beforeAll(async () => {
    s = await startSandbox();
    file = s.file;
  }, 120_000);

  afterAll(async () => {
    await stopSandbox(s);
    for (const n of file?.nodes ?? []) expect(isProcessAlive(n.agentPid)).toBe(false);
    for (const c of file?.coordinators ?? []) expect(isProcessAlive(c.pid)).toBe(false);
    if (file) expect(isProcessAlive(file.redisPid)).toBe(false);
  }, 60_000);

  it('serves a routing table with the primary and both replicas healthy', async () => {
    const t = await routing(file.api, file.cluster);
    expect(t.writable).toBe(true);
    expect(t.primary?.id).toBe('pg1');
    expect(t.replicas.map((r) => [r.id, r.healthy])).toEqual([
      ['pg2', true],
      ['pg3', true],
    ]);
    // every coordinator, leader or not, serves the same table
    const other = await routing(file.coordinators[1]!.api, file.cluster);
    expect(other.primary?.id).toBe('pg1');
    expect(other.generation).toBe(t.generation);
  });

  it('fails over when the primary postmaster is SIGKILLed, and the old primary rejoins as a replica', async () => {
    const primary = file.nodes[0]!;
    await sql(primary.port, 'CREATE TABLE IF NOT EXISTS t (id serial PRIMARY KEY, v text)');
    await sql(primary.port, "INSERT INTO t (v) VALUES ('before')");
    // let both replicas replay it, so the failover loses nothing
    for (const r of file.nodes.slice(1)) await waitFor(`row on ${r.id}`, async () => (await sql(r.port, 'SELECT count(*)::int AS n FROM t')).rows[0]?.n === 1);

    const before = await routing(file.api, file.cluster);
    const killedAt = Date.now();
    process.kill(postmasterPid(primary.dataDir), 'SIGKILL');

    const table = await waitFor('a new writable primary', async () => {
      const t = await routing(file.api, file.cluster).catch(() => null);
      return t && t.writable && t.primary && t.primary.id !== primary.id ? t : null;
    }, 30_000, 10);
    const newPrimary = table.primary!;
    expect(['pg2', 'pg3']).toContain(newPrimary.id);
    expect(table.generation).toBeGreaterThan(before.generation);

    await waitFor('an accepted INSERT on the new primary', async () => {
      const r = await sql(newPrimary.port, "INSERT INTO t (v) VALUES ('after') RETURNING id");
      return r.rowCount === 1;
    }, 30_000, 10);
    const writableAfterMs = Date.now() - killedAt;
    console.log(`SIGKILL → first accepted INSERT on ${newPrimary.id}: ${writableAfterMs} ms`);

    const rows = await sql<{ v: string }>(newPrimary.port, 'SELECT v FROM t ORDER BY id');
    expect(rows.rows.map((r) => r.v)).toEqual(['before', 'after']);

    // the old primary comes back as a replica of the new one, never as a second primary
    await waitFor('pg1 back as a healthy replica', async () => {
      const t = await routing(file.api, file.cluster);
      return t.primary?.id === newPrimary.id && t.replicas.find((r) => r.id === primary.id)?.healthy;
    }, 60_000, 100);
    const rec = await sql<{ rec: boolean }>(primary.port, 'SELECT pg_is_in_recovery() AS rec');
    expect(rec.rows[0]?.rec).toBe(true);
    const standbys = await sql<{ application_name: string }>(newPrimary.port, "SELECT application_name FROM pg_stat_replication WHERE state = 'streaming' ORDER BY 1");
    expect(standbys.rows.map((r) => r.application_name)).toEqual(file.nodes.map((n) => n.id).filter((id) => id !== newPrimary.id).sort());
    await waitFor('the row written after the failover on pg1', async () => (await sql(primary.port, 'SELECT count(*)::int AS n FROM t')).rows[0]?.n === 2);

    // what it lost is measured: the old primary's end of WAL against the new timeline's fork point
    const history = await waitFor('the loss measured', async () => {
      const h = (await (await fetch(`${file.api}/v1/clusters/${file.cluster}/history`)).json()) as Array<{ from: string; to: string; outcome: string; lossMeasured: boolean; forkLsn: string | null; lostBytes: number }>;
      return h.at(-1)?.lossMeasured ? h : null;
    }, 15_000, 100);
    expect(history.at(-1)).toMatchObject({ from: primary.id, to: newPrimary.id, outcome: 'success', lossMeasured: true, forkLsn: expect.stringMatching(/^[0-9A-F]+\/[0-9A-F]+$/) });
    // every row was replicated before the kill; what is measured is WAL (a background
    // record written since may be lost), never more than a few records
    expect(history.at(-1)!.lostBytes).toBeLessThan(64 * 1024);
  }, 120_000);

  it('refuses a job from a deposed leader (old epoch) and a journal append without the lease', async () => {
    const k = keys(file.cluster);
    const redis = new Redis(file.redis);
    const t = await routing(file.api, file.cluster);
    const replica = t.replicas.find((r) => r.healthy)!;
    const epoch = epochOfLeaseValue(await redis.get(k.leader));
    expect(epoch).toBeGreaterThan(0);
    // bump the epoch as a new leader would: release the lease so a coordinator re-acquires at epoch+1
    const holder = (await redis.get(k.leader))!;
    await redis.del(k.leader);
    await waitFor('a new lease epoch', async () => epochOfLeaseValue(await redis.get(k.leader)) > epoch, 15_000);
    const queue = new Queue(replica.id, { connection: redis, prefix: k.queuePrefix });
    const events = new QueueEvents(replica.id, { connection: new Redis(file.redis, { maxRetriesPerRequest: null }), prefix: k.queuePrefix });
    await events.waitUntilReady();
    try {
      const job = await queue.add('promote', { epoch, operationId: 'deposed', action: 'promote', node: replica.id }, { jobId: jobIdFor(epoch, 'deposed', 'promote', replica.id) });
      const failed = await waitFor('the stale job to fail', async () => {
        const j = await queue.getJob(job.id!);
        // read it again once failed: the first read may predate its failure
        return (await j?.isFailed()) ? await queue.getJob(job.id!) : null;
      }, 15_000);
      expect(failed.failedReason).toMatch(/stale-epoch|lease-changed/);
      // still a replica: nothing was promoted
      const rec = await sql<{ rec: boolean }>(replica.port, 'SELECT pg_is_in_recovery() AS rec');
      expect(rec.rows[0]?.rec).toBe(true);
      // the deposed leader's journal append is refused in Lua
      await expect(appendFenced(redis, k, holder, [{ type: 'cluster.paused', v: 1, at: Date.now(), epoch, by: 'deposed' }])).rejects.toMatchObject({ code: 'LEASE_LOST' });
      const tail = (await redis.xrevrange(k.log, '+', '-', 'COUNT', 20)) as Array<[string, string[]]>;
      expect(tail.some(([, f]) => f[1]?.includes('"by":"deposed"'))).toBe(false);
      // and the routing table still has one writable primary
      const after = await routing(file.api, file.cluster);
      expect(after.primary?.id).toBe(t.primary?.id);
    } finally {
      await events.close();
      await queue.close();
      redis.disconnect();
    }
  }, 60_000);
});
