/**
 * Coordinators against a real Redis, without PostgreSQL: bad stream entries are
 * journaled as rejected and skipped (never a crash or a stall), the lease moves to the
 * other coordinator with a higher epoch, and a snapshot is written at shutdown and
 * loaded at start.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCoordinator, type RunningCoordinator } from '../../coordinator/main.js';
import { keys } from '../../src/bus/keys.js';
import { RedisServer } from '../../src/sandbox/redis.js';
import type { Observation } from '../../src/events/observation.js';
import { waitFor } from '../support/sandbox.js';

const CLUSTER = 'c1';
const k = keys(CLUSTER);

function observation(node: string, seq: number, patch: Partial<Observation> = {}): Observation {
  return {
    type: 'obs', v: 1, node, bootId: 'b1', seq, at: Date.now(), host: '127.0.0.1', port: 5432, priority: 100,
    reachable: true, process: 'running', role: 'primary', timeline: 1, lsn: '0/3000000', replayLsn: '0/3000000',
    replayDelayMs: null, upstream: null, walReceiver: null, epochSeen: 0, standbys: [], ...patch,
  };
}

describe('coordinators on a real Redis', () => {
  let dir: string;
  let redis: RedisServer;
  let client: Redis;
  const running: RunningCoordinator[] = [];

  async function coordinator(id: string): Promise<RunningCoordinator> {
    const c = await startCoordinator({
      id, redis: redis.url, clusters: [{ name: CLUSTER, engine: 'postgres' }], api: { host: '127.0.0.1', port: 0 },
      // a TTL a loaded CI host cannot outlast between two renewals (the lease moves here by a release, not an expiry)
      leaseTtlMs: 3000, tickMs: 50, logLevel: 'silent',
    });
    running.push(c);
    return c;
  }

  async function events(c: RunningCoordinator, type?: string): Promise<Array<{ type: string; data: Record<string, unknown> }>> {
    const res = await fetch(`${c.url}/v1/clusters/${CLUSTER}/events?limit=1000${type ? `&type=${type}` : ''}`);
    return ((await res.json()) as { events: Array<{ type: string; data: Record<string, unknown> }> }).events;
  }

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sy-coord-'));
    redis = await RedisServer.start(dir);
    client = new Redis(redis.url);
  }, 30_000);

  afterAll(async () => {
    for (const c of running) await c.stop().catch(() => {});
    client.disconnect();
    await redis.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }, 30_000);

  it('journals bad stream entries as rejected, skips them, and goes on', async () => {
    const c1 = await coordinator('a');
    await waitFor('a leader', async () => [...c1.clusters.values()][0]!.isLeader, 15_000);
    await client.xadd(k.obs, '*', 'e', '{not json');
    await client.xadd(k.obs, '*', 'e', JSON.stringify({ ...observation('pg1', 1), port: 'x' }));
    await client.xadd(k.obs, '*', 'e', 'x'.repeat(200_000));
    await client.xadd(k.obs, '*', 'other', 'field');
    await client.xadd(k.obs, '*', 'e', JSON.stringify({ type: 'mystery' }));
    await client.xadd(k.cmd, '*', 'e', JSON.stringify({ type: 'command', v: 1, id: 'bad id with spaces', action: 'pause', by: 'x', at: 1 }));
    await client.xadd(k.obs, '*', 'e', JSON.stringify(observation('pg1', 2)));
    const rejected = await waitFor('six rejections', async () => {
      const r = await events(c1, 'entry.rejected');
      return r.length >= 6 ? r : null;
    }, 10_000);
    const reasons = rejected.map((e) => String(e.data.reason));
    expect(reasons).toEqual(expect.arrayContaining([
      expect.stringMatching(/^not JSON/),
      expect.stringMatching(/\/port/),
      expect.stringMatching(/too large: 200000 bytes/),
      expect.stringMatching(/no "e" field/),
      expect.stringMatching(/\/type: expected one of/),
      expect.stringMatching(/\/id/),
    ]));
    expect(rejected.every((e) => typeof e.data.id === 'string' && typeof e.data.stream === 'string')).toBe(true);
    // the good observation after them is folded: pg1 registered and adopted
    await waitFor('pg1 adopted', async () => (await events(c1, 'node.role-changed')).length === 1, 15_000);
  }, 60_000);

  it('moves the lease to another coordinator with a higher epoch, which then leads', async () => {
    const c1 = running[0]!;
    const c2 = await coordinator('b');
    const r1 = [...c1.clusters.values()][0]!;
    const r2 = [...c2.clusters.values()][0]!;
    expect(r1.isLeader).toBe(true);
    expect(r2.isLeader).toBe(false);
    // the follower holds the same journal state
    await waitFor('follower caught up', async () => r2.state.logId === r1.state.logId, 15_000);
    expect(r2.table.generation).toBe(r1.table.generation);
    const epoch = r1.lease.epoch;
    await c1.stop();
    running.shift();
    await waitFor('b leads', async () => r2.isLeader, 15_000);
    expect(r2.lease.epoch).toBeGreaterThan(epoch);
    await waitFor('leader.changed by b', async () => (await events(c2, 'leader.changed')).some((e) => e.data.coordinator === 'b'), 15_000);
    // a's shutdown wrote a snapshot covering the journal it had folded
    const snap = JSON.parse((await client.get(k.snapshot))!) as { logId: string; state: { primary: string } };
    expect(snap.state.primary).toBe('pg1');
  }, 60_000);

  it('a starting coordinator loads the snapshot and replays the rest', async () => {
    const c3 = await coordinator('c');
    const r3 = [...c3.clusters.values()][0]!;
    const r2 = [...running[0]!.clusters.values()][0]!;
    await waitFor('caught up', async () => r3.state.logId === r2.state.logId, 15_000);
    expect(r3.state.primary).toBe('pg1');
    expect(r3.state.generation).toBe(r2.state.generation);
  }, 30_000);
});
