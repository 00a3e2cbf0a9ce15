/**
 * The Sentinel-compatible endpoint, tested with ioredis's own Sentinel support against
 * real redis-servers. The routing table is driven by the test (a StaticRoutingSource),
 * the failover by the engine's actions: what a coordinator would do, step by step.
 */
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import type { RoutingTable } from '../../src/core/routing.js';
import { follow, promote } from '../../src/engines/redis/actions.js';
import { chooseRedisCandidate } from '../../src/engines/redis/candidate.js';
import { RedisProber } from '../../src/engines/redis/probe.js';
import type { RedisProcess } from '../../src/engines/redis/process.js';
import { globMatch, SentinelServer } from '../../src/sentinel/server.js';
import { StaticRoutingSource } from '../../src/sentinel/sources.js';
import { call, makeNodes, sleep, startReplicated, waitFor, type TestNodes } from './support.js';

let t: TestNodes | null = null;
const closers: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
  await t?.cleanup();
  t = null;
});

/** SENTINEL … through ioredis's generic call (its typings have no sentinel method). */
const sen = (c: Redis, ...args: string[]): Promise<unknown> => c.call('SENTINEL', ...args);

let generation = 0;
function table(primary: RedisProcess | null, replicas: RedisProcess[]): RoutingTable {
  generation++;
  return {
    cluster: 'cache',
    engine: 'redis',
    generation,
    epoch: 1,
    writable: primary !== null,
    updatedAt: new Date().toISOString(),
    primary: primary ? { id: `n${primary.spec.port}`, host: primary.spec.host, port: primary.spec.port } : null,
    replicas: replicas.map((r) => ({ id: `n${r.spec.port}`, host: r.spec.host, port: r.spec.port, healthy: true, lagBytes: 0, lagMs: 0, replayLsn: '0', sync: false })),
  };
}

async function sentinel(source: StaticRoutingSource, peers: Array<{ id: string; host: string; port: number }> = []): Promise<SentinelServer> {
  const s = new SentinelServer({ masterName: 'mymaster', source, id: 'c1', peers: () => peers });
  await s.listen();
  closers.push(() => s.close());
  return s;
}

describe('sentinel endpoint: protocol', () => {
  it('answers the Sentinel commands clients use', async () => {
    t = await makeNodes(2);
    const [m, r] = t.nodes as [RedisProcess, RedisProcess];
    const source = new StaticRoutingSource(table(m, [r]));
    const s = await sentinel(source, [{ id: 'c2', host: '127.0.0.1', port: 26380 }]);
    const c = new Redis({ port: s.port, host: '127.0.0.1', lazyConnect: true });
    closers.push(() => c.disconnect());
    await c.connect();
    expect(await c.ping()).toBe('PONG');
    expect(await c.call('ROLE')).toEqual(['sentinel', ['mymaster']]);
    expect(await sen(c, 'get-master-addr-by-name', 'mymaster')).toEqual(['127.0.0.1', String(m.spec.port)]);
    expect(await sen(c, 'get-master-addr-by-name', 'other')).toBeNull();
    const master = (await sen(c, 'master', 'mymaster')) as string[];
    expect(master.slice(0, 6)).toEqual(['name', 'mymaster', 'ip', '127.0.0.1', 'port', String(m.spec.port)]);
    expect(master[master.indexOf('flags') + 1]).toBe('master');
    const replicas = (await sen(c, 'replicas', 'mymaster')) as string[][];
    expect(replicas).toHaveLength(1);
    expect(replicas[0]!.slice(0, 6)).toEqual(['name', `127.0.0.1:${r.spec.port}`, 'ip', '127.0.0.1', 'port', String(r.spec.port)]);
    expect(await sen(c, 'slaves', 'mymaster')).toEqual(replicas);
    const sentinels = (await sen(c, 'sentinels', 'mymaster')) as string[][];
    expect(sentinels[0]!.slice(0, 6)).toEqual(['name', 'c2', 'ip', '127.0.0.1', 'port', '26380']);
    expect(await sen(c, 'is-master-down-by-addr', '127.0.0.1', String(m.spec.port), '0', '*')).toEqual([0, '*', 0]);
    expect(await sen(c, 'is-master-down-by-addr', '127.0.0.1', '1', '0', '*')).toEqual([1, '*', 0]);
    await expect(sen(c, 'master', 'nope')).rejects.toThrow(/No such master/);
    await expect(c.call('SET', 'a', 'b')).rejects.toThrow(/unknown command/);
    expect(String(await c.info())).toContain('redis_mode:sentinel');

    // no writable primary (a failover in progress): the last known address, flags say down
    source.set(table(null, [r]));
    expect(await sen(c, 'get-master-addr-by-name', 'mymaster')).toEqual(['127.0.0.1', String(m.spec.port)]);
    const down = (await sen(c, 'master', 'mymaster')) as string[];
    expect(down[down.indexOf('flags') + 1]).toBe('master,s_down,o_down');

    // a coordinator whose view is stale answers an error, so the client asks the next sentinel
    source.isStale = true;
    await expect(sen(c, 'get-master-addr-by-name', 'mymaster')).rejects.toThrow(/STALE/);
  });

  it('publishes +switch-master in the documented format to SUBSCRIBE and PSUBSCRIBE', async () => {
    t = await makeNodes(2);
    const [m, r] = t.nodes as [RedisProcess, RedisProcess];
    const source = new StaticRoutingSource(table(m, [r]));
    const s = await sentinel(source);
    const sub = new Redis({ port: s.port, lazyConnect: true });
    const psub = new Redis({ port: s.port, lazyConnect: true });
    closers.push(() => sub.disconnect(), () => psub.disconnect());
    await sub.connect();
    await psub.connect();
    const got: string[] = [];
    sub.on('message', (ch: string, msg: string) => got.push(`${ch} ${msg}`));
    psub.on('pmessage', (p: string, ch: string, msg: string) => got.push(`p:${p} ${ch} ${msg}`));
    await sub.subscribe('+switch-master');
    await psub.psubscribe('*');
    source.set(table(null, [r])); // failover under way: nothing yet
    source.set(table(r, [m]));
    source.set(table(r, [m])); // same primary: no second message
    await waitFor(() => got.length >= 2, 15_000, 'messages');
    await sleep(100);
    const expected = `mymaster 127.0.0.1 ${m.spec.port} 127.0.0.1 ${r.spec.port}`;
    expect(got.sort()).toEqual([`+switch-master ${expected}`, `p:* +switch-master ${expected}`]);
    expect(s.switches).toBe(1);
  });

  it('a delayed +switch-master is dropped when a newer switch came meanwhile (a failover right after another), and waits while no node is writable', async () => {
    // (addresses only: nothing here connects to the nodes)
    const node = (port: number): RedisProcess => ({ spec: { host: '127.0.0.1', port } }) as unknown as RedisProcess;
    const [a, b, c] = [node(1001), node(1002), node(1003)];
    const source = new StaticRoutingSource(table(a, [b, c]));
    const s = new SentinelServer({ masterName: 'mymaster', source, id: 'c1', switchMasterDelayMs: 300 });
    await s.listen();
    closers.push(() => s.close());
    const sub = new Redis({ port: s.port, lazyConnect: true });
    closers.push(() => sub.disconnect());
    await sub.connect();
    const got: string[] = [];
    sub.on('message', (_ch: string, msg: string) => got.push(msg));
    await sub.subscribe('+switch-master');
    source.set(table(b, [a, c])); // a → b …
    source.set(table(null, [a, c])); // … b dies at once …
    source.set(table(c, [a, b])); // … and c is promoted, all within the delay
    await waitFor(() => got.length >= 1, 15_000, 'the announcement');
    await sleep(700);
    // never b, which was gone when its announcement was due: clients go from a to c
    expect(got).toEqual(['mymaster 127.0.0.1 1001 127.0.0.1 1003']);
    expect(s.switches).toBe(1);
    // no writable node when the announcement is due: it waits for one, and names it if it is still c
    source.set(table(a, [b, c]));
    source.set(table(null, [b, c]));
    await sleep(500);
    expect(got).toHaveLength(1);
    source.set(table(a, [b, c]));
    await waitFor(() => got.length >= 2, 15_000, 'the second announcement');
    expect(got[1]).toBe('mymaster 127.0.0.1 1003 127.0.0.1 1001');
  });

  it('glob patterns match as Redis does', () => {
    expect(globMatch('*', '+switch-master')).toBe(true);
    expect(globMatch('+switch-*', '+switch-master')).toBe(true);
    expect(globMatch('+s?itch-master', '+switch-master')).toBe(true);
    expect(globMatch('+sdown', '+switch-master')).toBe(false);
    expect(globMatch('[+-]switch-master', '+switch-master')).toBe(true);
  });
});

interface Cluster {
  m: RedisProcess;
  r1: RedisProcess;
  r2: RedisProcess;
  source: StaticRoutingSource;
  client: Redis;
  acked: number[];
  failed: string[];
  stop(): Promise<void>;
}

/** master + 2 replicas, two sentinel endpoints, an ioredis Sentinel client and a WAIT-acknowledged writer. */
async function cluster(failoverDetector: boolean, switchMasterDelayMs = 0): Promise<Cluster> {
  t = await makeNodes(3);
  await startReplicated(t);
  const [m, r1, r2] = t.nodes as [RedisProcess, RedisProcess, RedisProcess];
  const source = new StaticRoutingSource(table(m, [r1, r2]));
  const s1 = new SentinelServer({ masterName: 'mymaster', source, id: 'c1', switchMasterDelayMs });
  await s1.listen();
  closers.push(() => s1.close());
  const s2 = new SentinelServer({ masterName: 'mymaster', source, id: 'c2', switchMasterDelayMs });
  await s2.listen();
  closers.push(() => s2.close());
  // an app configured for Sentinel: only `sentinels` and `name`
  const client = new Redis({
    sentinels: [{ host: '127.0.0.1', port: s1.port }, { host: '127.0.0.1', port: s2.port }],
    name: 'mymaster',
    failoverDetector,
    sentinelRetryStrategy: () => 50,
    retryStrategy: () => 50,
    maxRetriesPerRequest: 50,
  });
  client.on('error', () => {});
  closers.push(() => client.disconnect());
  expect(await client.set('hello', 'world')).toBe('OK');
  // each write counts as acknowledged only when WAIT says a replica has it
  const acked: number[] = [];
  const failed: string[] = [];
  let stopped = false;
  const writer = (async () => {
    for (let i = 0; !stopped; i++) {
      try {
        await client.set(`w${i}`, String(i));
        const n = await client.wait(1, 200);
        if (n >= 1) acked.push(i);
        else failed.push(`WAIT answered ${n}`);
      } catch (err) {
        failed.push((err as Error).message);
        await sleep(20);
      }
    }
  })();
  await waitFor(() => acked.length >= 20, 10_000, 'writes before the fault');
  return {
    m, r1, r2, source, client, acked, failed,
    async stop() {
      stopped = true;
      await writer;
    },
  };
}

/** What a coordinator does once the master is gone: no primary in the table, promote the best replica, re-point the other, publish. */
async function failOver(c: Cluster): Promise<RedisProcess> {
  c.source.set(table(null, [c.r1, c.r2]));
  const views = await Promise.all([c.r1, c.r2].map(async (n) => {
    const p = new RedisProber(n.spec, 5_000); // a replica that does not answer in time would not be a candidate
    const x = await p.probe();
    p.close();
    return { id: String(n.spec.port), healthy: x.reachable, priority: 100, replid: x.replid, offset: x.offset };
  }));
  const choice = chooseRedisCandidate(views, views[0]!.replid, null, 1 << 30);
  const [cand, other] = choice.id === String(c.r1.spec.port) ? [c.r1, c.r2] : [c.r2, c.r1];
  await promote(cand.spec);
  await follow(other.spec, cand.spec);
  c.source.set(table(cand, [other]));
  return cand;
}

async function expectWritesResumeOn(c: Cluster, cand: RedisProcess): Promise<void> {
  const before = c.acked.length;
  await waitFor(() => c.acked.length >= before + 20, 20_000, 'writes on the new master').catch((err: Error) => {
    throw new Error(`${err.message}; acked ${c.acked.length} (${before} before), last errors: ${c.failed.slice(-3).join(' | ')}`);
  });
  await c.stop();
  // the client ends up on the new master
  expect(String(await c.client.info('server'))).toContain(`tcp_port:${cand.spec.port}`);
  // nothing acknowledged (WAIT >= 1) was lost
  const missing: number[] = [];
  for (const i of c.acked) if ((await call(cand, 'GET', `w${i}`)) !== String(i)) missing.push(i);
  expect(missing).toEqual([]);
}

describe('sentinel endpoint: ioredis Sentinel clients', () => {
  it('a client configured only with sentinels and name writes through a kill -9 of the master; WAIT-acknowledged writes are never lost', async () => {
    const c = await cluster(false);
    await c.m.kill();
    const cand = await failOver(c);
    await expectWritesResumeOn(c, cand);
  });

  it('failoverDetector: true through a kill -9, with +switch-master delayed past the client\'s reconnect interval', async () => {
    const c = await cluster(true, 1_000);
    await c.m.kill();
    const cand = await failOver(c);
    await sleep(1_300); // +switch-master has reached the detector (which then reconnects the client once more)
    await expectWritesResumeOn(c, cand);
  });

  it('failoverDetector: true moves a client off a hung master (SIGSTOP: its connection stays open) on +switch-master', async () => {
    const c = await cluster(true);
    c.m.signal('SIGSTOP');
    // the writer is now stuck on the frozen master: no acknowledgement for 500 ms (answers the
    // master sent before the freeze may still arrive late on a loaded host)
    let last = c.acked.length;
    let since = Date.now();
    await waitFor(() => {
      if (c.acked.length !== last) {
        last = c.acked.length;
        since = Date.now();
      }
      return Date.now() - since >= 500;
    }, 15_000, 'the writer stuck on the frozen master');
    const cand = await failOver(c);
    await expectWritesResumeOn(c, cand);
    await c.m.kill(); // the agent kills a frozen master it could not fence
  });
});
