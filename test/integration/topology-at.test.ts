/**
 * `GET /v1/clusters/:c/topology?at=` on a coordinator over a real Redis: served from the
 * nearest in-memory checkpoint plus a bounded tail of the journal, never a replay of the
 * whole journal per request, and the same answer as that replay.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCoordinator, type RunningCoordinator } from '../../coordinator/main.js';
import { keys } from '../../src/bus/keys.js';
import { RedisServer } from '../../src/sandbox/redis.js';
import type { JournalRecord } from '../../src/bus/journal.js';

const CLUSTER = 'topo';
const k = keys(CLUSTER);

describe('topology as of a journal id', () => {
  let dir: string;
  let redis: RedisServer;
  let client: Redis;
  let coord: RunningCoordinator | null = null;
  const ids: string[] = [];

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sy-topo-'));
    redis = await RedisServer.start(dir);
    client = new Redis(redis.url);
    // a long journal written before the coordinator starts: pg1's port changes at every entry
    const multi = client.multi();
    for (let i = 0; i < 1500; i++) {
      multi.xadd(k.log, '*', 'e', JSON.stringify({ type: 'node.registered', v: 1, at: Date.now(), epoch: 1, node: 'pg1', host: '127.0.0.1', port: 10_000 + i, priority: 100 }));
    }
    for (const [err, id] of (await multi.exec())!) {
      if (err) throw err;
      ids.push(id as string);
    }
    coord = await startCoordinator({ id: 'c1', redis: redis.url, clusters: [{ name: CLUSTER, engine: 'postgres' }], api: { host: '127.0.0.1', port: 0 }, leaseTtlMs: 1000, tickMs: 50, logLevel: 'silent' });
  }, 60_000);

  afterAll(async () => {
    await coord?.stop().catch(() => {});
    client.disconnect();
    await redis.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }, 30_000);

  it('folds a bounded tail from the nearest checkpoint and answers as a full replay would', async () => {
    const rt = coord!.clusters.get(CLUSTER)!;
    expect(rt.checkpoints.size).toBeGreaterThan(1);
    let read = 0;
    const orig = rt.readJournal.bind(rt);
    rt.readJournal = async (after: string, limit: number): Promise<JournalRecord[]> => {
      const r = await orig(after, limit);
      read += r.length;
      return r;
    };
    for (const i of [0, 300, 777, 1499]) {
      read = 0;
      const res = await fetch(`${coord!.url}/v1/clusters/${CLUSTER}/topology?at=${ids[i]}`);
      expect(res.status).toBe(200);
      const body = (await res.json()) as { at: string; topology: { nodes: Record<string, { port: number }> } };
      expect(body.at).toBe(ids[i]);
      expect(body.topology.nodes.pg1!.port).toBe(10_000 + i);
      // at most one checkpoint interval, plus the batch that finds the end
      expect(read).toBeLessThanOrEqual(2 * rt.checkpoints.every);
    }
  });
});
