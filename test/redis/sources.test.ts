/** Routing sources of the Sentinel endpoint, on a real coordination Redis. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { keys } from '../../src/bus/keys.js';
import type { RoutingTable } from '../../src/core/routing.js';
import { CoordinationRoutingSource, SentinelRegistry } from '../../src/sentinel/sources.js';
import { RedisServer } from '../../src/sandbox/redis.js';
import { waitFor } from './support.js';

const k = keys('cache');
const table = (generation: number, port: number): RoutingTable => ({
  cluster: 'cache', engine: 'redis', generation, epoch: 1, writable: true, updatedAt: new Date().toISOString(),
  primary: { id: 'r1', host: '127.0.0.1', port }, replicas: [],
});

describe('sentinel routing sources', () => {
  let dir = '';
  let server: RedisServer | null = null;
  const closers: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const c of closers.splice(0).reverse()) await c();
    await server?.stop();
    server = null;
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('CoordinationRoutingSource reads the table, follows what the leader publishes, and goes stale without Redis', async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sy-redis-src-'));
    server = await RedisServer.start(dir);
    const client = new Redis(server.url, { maxRetriesPerRequest: 1 });
    client.on('error', () => {});
    closers.push(() => client.disconnect());
    await client.set(k.routing, JSON.stringify(table(1, 7001)));
    const source = new CoordinationRoutingSource(server.url, 'cache', { refreshMs: 100, staleAfterMs: 500 });
    await source.start();
    closers.push(() => source.stop());
    expect(source.current()?.primary?.port).toBe(7001);
    expect(source.stale()).toBe(false);
    const seen: number[] = [];
    source.subscribe((t) => seen.push(t.generation));
    await client.publish(k.routingChannel, JSON.stringify(table(2, 7002)));
    await client.publish(k.routingChannel, 'not json');
    await waitFor(() => seen.includes(2), 15_000, 'the published table');
    expect(source.current()?.primary?.port).toBe(7002);

    await server.stop();
    server = null;
    await waitFor(() => source.stale(), 15_000, 'stale');
    expect(source.current()?.primary).toBeNull();
  });

  it('SentinelRegistry: each coordinator sees the others, not itself', async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sy-redis-src-'));
    server = await RedisServer.start(dir);
    const a = new SentinelRegistry(server.url, 'cache', { id: 'a', host: '10.0.0.1', port: 26379 }, { everyMs: 100 });
    const b = new SentinelRegistry(server.url, 'cache', { id: 'b', host: '10.0.0.2', port: 26379 }, { everyMs: 100 });
    await a.start();
    await b.start();
    closers.push(() => a.stop(), () => b.stop());
    await waitFor(() => a.peers().length === 1 && b.peers().length === 1, 15_000, 'peers');
    expect(a.peers()).toEqual([{ id: 'b', host: '10.0.0.2', port: 26379 }]);
    expect(b.peers()).toEqual([{ id: 'a', host: '10.0.0.1', port: 26379 }]);
    await b.stop(); // deregisters
    await waitFor(() => a.peers().length === 0, 15_000, 'b gone');
  });
});
