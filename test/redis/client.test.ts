/**
 * createRedisClient across a failover, against real redis-servers. The routing API is
 * a small in-test HTTP server (GET /routing and the SSE stream, as the coordinators
 * serve them) whose table the test drives, doing the coordinator's steps itself (so the
 * table can lag behind a node's role on purpose). The same through real agents and
 * coordinators: test/redis/failover.test.ts.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createRedisClient, pickRedisTarget } from '../../src/client/redis.js';
import type { RoutingTable } from '../../src/core/routing.js';
import { follow, promote } from '../../src/engines/redis/actions.js';
import type { RedisProcess } from '../../src/engines/redis/process.js';
import { StaticRoutingSource } from '../../src/sentinel/sources.js';
import { call, makeNodes, sleep, startReplicated, waitFor, type TestNodes } from './support.js';

let t: TestNodes | null = null;
const closers: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
  await t?.cleanup();
  t = null;
});

let generation = 0;
function table(primary: RedisProcess | null, replicas: RedisProcess[], unhealthy: RedisProcess[] = []): RoutingTable {
  generation++;
  return {
    cluster: 'cache',
    engine: 'redis',
    generation,
    epoch: 1,
    writable: primary !== null,
    updatedAt: new Date().toISOString(),
    primary: primary ? { id: `n${primary.spec.port}`, host: primary.spec.host, port: primary.spec.port } : null,
    replicas: replicas.map((r) => ({ id: `n${r.spec.port}`, host: r.spec.host, port: r.spec.port, healthy: !unhealthy.includes(r), lagBytes: 0, lagMs: 0, replayLsn: '0', sync: false })),
  };
}

/** GET /v1/clusters/cache/routing and its SSE stream, from `source`. */
async function routingApi(source: StaticRoutingSource): Promise<string> {
  const streams = new Set<http.ServerResponse>();
  const srv = http.createServer((req, res) => {
    if (req.url === '/v1/clusters/cache/routing') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(source.current()));
    } else if (req.url === '/v1/clusters/cache/routing/stream') {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const send = (tb: RoutingTable): void => void res.write(`event: routing\nid: ${tb.generation}\ndata: ${JSON.stringify(tb)}\n\n`);
      send(source.current()!);
      const off = source.subscribe(send);
      streams.add(res);
      res.on('close', () => {
        off();
        streams.delete(res);
      });
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  closers.push(
    () =>
      new Promise<void>((resolve) => {
        for (const s of streams) s.destroy();
        srv.close(() => resolve());
      }),
  );
  return `http://127.0.0.1:${(srv.address() as AddressInfo).port}`;
}

describe('createRedisClient', () => {
  it('picks the primary, or the least lagging healthy replica', () => {
    const tb: RoutingTable = {
      cluster: 'c', engine: 'redis', generation: 1, epoch: 1, writable: true, updatedAt: '',
      primary: { id: 'a', host: 'h', port: 1 },
      replicas: [
        { id: 'b', host: 'h', port: 2, healthy: true, lagBytes: 50, lagMs: 0, replayLsn: null, sync: false },
        { id: 'c', host: 'h', port: 3, healthy: true, lagBytes: 10, lagMs: 0, replayLsn: null, sync: false },
        { id: 'd', host: 'h', port: 4, healthy: false, lagBytes: 0, lagMs: 0, replayLsn: null, sync: false },
      ],
    };
    expect(pickRedisTarget(tb, 'primary')).toEqual({ id: 'a', host: 'h', port: 1 });
    expect(pickRedisTarget(tb, 'replica')).toEqual({ id: 'c', host: 'h', port: 3 });
    const none = { ...tb, replicas: tb.replicas.map((r) => ({ ...r, healthy: false })) };
    expect(pickRedisTarget(none, 'replica')).toEqual(tb.primary);
    expect(pickRedisTarget(none, 'replica', false)).toBeNull();
  });

  it('follows the routing table across a kill -9 of the master; role replica reads from a replica', async () => {
    t = await makeNodes(3);
    await startReplicated(t);
    const [m, r1, r2] = t.nodes as [RedisProcess, RedisProcess, RedisProcess];
    const source = new StaticRoutingSource(table(m, [r1, r2], [r2]));
    const api = await routingApi(source);

    const rw = createRedisClient({ routing: api, cluster: 'cache', redis: { maxRetriesPerRequest: 100 } });
    const ro = createRedisClient({ routing: api, cluster: 'cache', role: 'replica' });
    rw.on('error', () => {});
    ro.on('error', () => {});
    closers.push(() => rw.disconnect(), () => ro.disconnect());
    expect(await rw.set('a', '1')).toBe('OK');
    expect(rw.target?.port).toBe(m.spec.port);
    await waitFor(async () => (await ro.get('a')) === '1', 15_000, 'the replica read');
    expect(ro.target?.port).toBe(r1.spec.port);
    expect(String(await ro.info('server'))).toContain(`tcp_port:${r1.spec.port}`);
    await expect(ro.set('x', '1')).rejects.toThrow(/READONLY/);

    const acked: number[] = [];
    let stop = false;
    const writer = (async () => {
      for (let i = 0; !stop; i++) {
        try {
          await rw.set(`w${i}`, String(i));
          if ((await rw.wait(1, 200)) >= 1) acked.push(i);
        } catch {
          await sleep(20);
        }
      }
    })();
    await waitFor(() => acked.length >= 20, 10_000, 'writes before the fault');

    await m.kill();
    source.set(table(null, [r1, r2], [r2]));
    await promote(r1.spec);
    await follow(r2.spec, r1.spec);
    source.set(table(r1, [r2, m], [m]));

    const before = acked.length;
    await waitFor(() => acked.length >= before + 20, 20_000, 'writes on the new master');
    stop = true;
    await writer;
    expect(rw.target?.port).toBe(r1.spec.port);
    expect(String(await rw.info('server'))).toContain(`tcp_port:${r1.spec.port}`);
    const missing: number[] = [];
    for (const i of acked) if ((await call(r1, 'GET', `w${i}`)) !== String(i)) missing.push(i);
    expect(missing).toEqual([]);
    // the replica client moved from r1 (now the master) to r2
    await waitFor(() => ro.target?.port === r2.spec.port, 15_000, 'the replica client to move');
    await waitFor(async () => String(await ro.info('server')).includes(`tcp_port:${r2.spec.port}`), 15_000, 'the replica client on r2');
  });

  it('primary role: a write that meets READONLY on a demoted master is resent once the table moves; defineCommand scripts run on the new master, a hand-loaded one answers NOSCRIPT', async () => {
    t = await makeNodes(2);
    await startReplicated(t);
    const [m, r] = t.nodes as [RedisProcess, RedisProcess];
    const source = new StaticRoutingSource(table(m, [r]));
    const api = await routingApi(source);
    const rw = createRedisClient({ routing: api, cluster: 'cache', redis: { maxRetriesPerRequest: null } }) as ReturnType<typeof createRedisClient> & {
      bump(key: string, by: number): Promise<number>;
    };
    rw.on('error', () => {});
    closers.push(() => rw.disconnect());
    rw.defineCommand('bump', { numberOfKeys: 1, lua: "return redis.call('INCRBY', KEYS[1], ARGV[1])" });
    expect(await rw.bump('c', 1)).toBe(1);
    const sha = String(await rw.script('LOAD', "return redis.call('GET', KEYS[1])"));
    expect(await rw.evalsha(sha, 1, 'c')).toBe('1');
    await waitFor(async () => (await call(r, 'GET', 'c')) === '1', 15_000, 'the replica to have c');

    // a switchover whose routing update is late: the client's connection is still to m,
    // now a replica; the write answers READONLY, and reconnectOnError resends it
    await promote(r.spec);
    await follow(m.spec, r.spec);
    const write = rw.set('after', 'demote');
    await waitFor(async () => /errorstat_READONLY:count=[1-9]/.test(String(await call(m, 'INFO', 'errorstats'))), 15_000, 'the write refused with READONLY on m');
    source.set(table(r, [m]));
    expect(await write).toBe('OK');
    expect(rw.target?.port).toBe(r.spec.port);
    expect(await call(r, 'GET', 'after')).toBe('demote');

    // NOSCRIPT (docs/redis.md): a defineCommand script is sent as EVAL on the new
    // connection; a script loaded by hand on the old master is not on the new one
    expect(await rw.bump('c', 1)).toBe(2);
    await expect(rw.evalsha(sha, 1, 'c')).rejects.toThrow(/NOSCRIPT/);
  });
});
