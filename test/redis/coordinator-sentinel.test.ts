/**
 * `switchyard coordinator --sentinel-port`: two coordinators on a real coordination
 * Redis serve the Sentinel protocol from their routing table; each lists the other in
 * SENTINEL sentinels, and a move of the primary is published as +switch-master.
 * (Observations are written by the test, as an agent would: the Redis engine is not
 * wired into the agent yet.)
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCoordinator, type RunningCoordinator } from '../../coordinator/main.js';
import { keys } from '../../src/bus/keys.js';
import type { Observation } from '../../src/events/observation.js';
import { freePorts } from '../../src/sandbox/ports.js';
import { RedisServer } from '../../src/sandbox/redis.js';
import { waitFor } from './support.js';

const CLUSTER = 'cache';
const k = keys(CLUSTER);

describe('coordinator --sentinel-port', () => {
  let dir: string;
  let redis: RedisServer;
  let client: Redis;
  const running: RunningCoordinator[] = [];
  let feeding: NodeJS.Timeout | null = null;
  let seq = 0;
  let port = 7001;

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sy-redis-coord-'));
    redis = await RedisServer.start(dir);
    client = new Redis(redis.url);
  }, 30_000);

  afterAll(async () => {
    if (feeding) clearInterval(feeding);
    for (const c of running) await c.stop().catch(() => {});
    client.disconnect();
    await redis.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }, 30_000);

  function observe(): Promise<string | null> {
    const o: Observation = {
      type: 'obs', v: 1, node: 'r1', bootId: 'b1', seq: ++seq, at: Date.now(), host: '127.0.0.1', port, priority: 100,
      reachable: true, process: 'running', role: 'primary', timeline: 1, lsn: '0/3000000', replayLsn: '0/3000000',
      replayDelayMs: null, upstream: null, walReceiver: null, epochSeen: 0, standbys: [],
    };
    return client.xadd(k.obs, '*', 'e', JSON.stringify(o));
  }

  it('serves the routing table as Sentinel on each coordinator and publishes +switch-master', async () => {
    const ports = await freePorts(2);
    for (const [i, id] of ['a', 'b'].entries()) {
      running.push(await startCoordinator(
        { id, redis: redis.url, clusters: [{ name: CLUSTER, engine: 'postgres' }], api: { host: '127.0.0.1', port: 0 }, leaseTtlMs: 1000, tickMs: 50, logLevel: 'silent' },
        { sentinel: { port: ports[i]! } },
      ));
    }
    expect(running.map((r) => r.sentinel)).toEqual([
      { host: '127.0.0.1', port: ports[0], masterName: CLUSTER },
      { host: '127.0.0.1', port: ports[1], masterName: CLUSTER },
    ]);
    await observe();
    feeding = setInterval(() => void observe(), 200);

    const s = ports.map((p) => new Redis({ port: p, lazyConnect: true }));
    for (const c of s) await c.connect();
    try {
      expect(await s[0]!.call('ROLE')).toEqual(['sentinel', [CLUSTER]]);
      for (const c of s) {
        await waitFor(async () => JSON.stringify(await c.call('SENTINEL', 'get-master-addr-by-name', CLUSTER)) === JSON.stringify(['127.0.0.1', '7001']), 15_000, 'the primary through the endpoint');
      }
      // each lists the other (the registry beats every 2 s)
      await waitFor(async () => {
        const x = (await s[0]!.call('SENTINEL', 'sentinels', CLUSTER)) as string[][];
        return x.length === 1 && x[0]![1] === 'b' && x[0]![5] === String(ports[1]);
      }, 10_000, "a to list b's endpoint");

      const sub = new Redis({ port: ports[1]!, lazyConnect: true });
      await sub.connect();
      const got: string[] = [];
      sub.on('message', (_ch: string, msg: string) => got.push(msg));
      await sub.subscribe('+switch-master');
      port = 7002; // the primary moves (re-registered on another port)
      await waitFor(() => got.length > 0, 15_000, '+switch-master');
      expect(got[0]).toBe(`${CLUSTER} 127.0.0.1 7001 127.0.0.1 7002`);
      expect(await s[0]!.call('SENTINEL', 'get-master-addr-by-name', CLUSTER)).toEqual(['127.0.0.1', '7002']);
      sub.disconnect();
    } finally {
      for (const c of s) c.disconnect();
    }
  }, 60_000);
});
