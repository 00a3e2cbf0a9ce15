/**
 * The stand-in scenarios against a real mongod replica set (and a PostgreSQL and a Redis
 * smoke check), through testcontainers. Run with `npm run test:containers`; it skips when no
 * Docker engine is reachable. Three mongod processes share one container, each on a host
 * port bound to the same container port, so the set's host names (127.0.0.1:<port>) work
 * from both sides.
 */
import { createServer, type Server } from 'node:http';
import { createServer as netServer, type AddressInfo } from 'node:net';
import pg from 'pg';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { GenericContainer, Wait, type StartedTestContainer } from 'testcontainers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMongoClient } from '../../src/client/mongo.js';
import { MongoSteering } from '../../src/engines/mongo/actions.js';
import { MongoProber } from '../../src/engines/mongo/probe.js';
import { foldMongo, initialMongoState, mongoRouting, type MongoSetState } from '../../src/engines/mongo/topology.js';

async function freePort(): Promise<number> {
  const s = netServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as AddressInfo;
  await new Promise((r) => s.close(r));
  return port;
}

const conn = (port: number) => ({ host: '127.0.0.1', port, user: '', database: 'admin' });

describe('mongod replica set in a container', () => {
  let box: StartedTestContainer;
  let ports: number[] = [];
  let routing: Server;
  let routingUrl = '';

  beforeAll(async () => {
    ports = [await freePort(), await freePort(), await freePort()];
    const start = ports.map((p) => `mongod --replSet rs0 --bind_ip_all --port ${String(p)} --dbpath /data/db${String(p)} --fork --logpath /tmp/m${String(p)}.log`);
    const script = [...ports.map((p) => `mkdir -p /data/db${String(p)}`), ...start, 'echo ready-for-initiate', 'sleep infinity'].join(' && ');
    box = await new GenericContainer('mongo:7.0')
      .withExposedPorts(...ports.map((p) => ({ container: p, host: p })))
      .withCommand(['bash', '-c', script])
      .withWaitStrategy(Wait.forLogMessage('ready-for-initiate'))
      .start();
    const members = ports.map((p, i) => `{ _id: ${String(i)}, host: '127.0.0.1:${String(p)}' }`).join(', ');
    await box.exec(['mongosh', '--quiet', '--port', String(ports[0]), '--eval', `rs.initiate({ _id: 'rs0', members: [${members}] })`]);
    const prober = new MongoProber(conn(ports[0] ?? 0), 5000);
    for (let i = 0; i < 120; i++) {
      const o = await prober.observe().catch(() => null);
      if (o?.primary) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    await prober.close();
    routing = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ engine: 'mongodb', setName: 'rs0', primary: null, replicas: ports.map((port) => ({ host: '127.0.0.1', port })) }));
    });
    await new Promise<void>((r) => routing.listen(0, '127.0.0.1', r));
    routingUrl = `http://127.0.0.1:${String((routing.address() as AddressInfo).port)}`;
  });

  afterAll(async () => {
    await new Promise((r) => routing.close(r));
    await box.stop();
  });

  async function observeAll(s: MongoSetState): Promise<MongoSetState> {
    for (const p of ports) {
      const prober = new MongoProber(conn(p), 5000);
      const obs = await prober.observe().catch(() => null);
      await prober.close();
      s = foldMongo(s, { address: `127.0.0.1:${String(p)}`, at: Date.now(), obs }).state;
    }
    return s;
  }

  it('probe and fold: one primary, two secondaries with staleness', async () => {
    const s = await observeAll(initialMongoState());
    const r = mongoRouting(s, 10_000);
    expect(r.primary).not.toBeNull();
    expect(r.secondaries).toHaveLength(2);
  });

  it('switchover by priority and by freeze; the client follows', async () => {
    const client = await createMongoClient({ routing: routingUrl, cluster: 'c', heartbeatFrequencyMS: 500, logger: pino({ level: 'silent' }) });
    const steering = new MongoSteering(ports.map(conn));
    try {
      await client.writeWithConcern('t', { insert: { n: 1 } });
      const s = await observeAll(initialMongoState());
      const from = mongoRouting(s, 10_000).primary?.address;
      const to = ports.map((p) => `127.0.0.1:${String(p)}`).find((a) => a !== from) ?? '';
      expect((await steering.switchover({ to, how: 'priority', stepDownSecs: 10, catchUpSecs: 10, timeoutMs: 60_000 })).to).toBe(to);
      await client.writeWithConcern('t', { insert: { n: 2 } });
      const third = ports.map((p) => `127.0.0.1:${String(p)}`).find((a) => a !== from && a !== to) ?? '';
      expect((await steering.switchover({ to: third, how: 'freeze', stepDownSecs: 10, catchUpSecs: 10, timeoutMs: 60_000 })).to).toBe(third);
      await client.writeWithConcern('t', { insert: { n: 3 } });
      expect((await client.db().collection('t').find({}).toArray()).length).toBe(3);
    } finally {
      await steering.close();
      await client.close();
    }
  });

  it('pause: with every secondary frozen the primary cannot step down; unfrozen, it can', async () => {
    const steering = new MongoSteering(ports.map(conn));
    try {
      const s = await observeAll(initialMongoState());
      const from = mongoRouting(s, 10_000).primary?.address;
      const p = ports.find((x) => `127.0.0.1:${String(x)}` === from);
      if (p === undefined) throw new Error('no primary');
      const frozen = await steering.freeze(60);
      expect(frozen).toHaveLength(2);
      // (the error's wording is mongod's own: no electable secondary caught up)
      await expect(steering.run(conn(p), { replSetStepDown: 30, secondaryCatchUpPeriodSecs: 2 }, 20_000)).rejects.toThrow();
      expect(mongoRouting(await observeAll(initialMongoState()), 10_000).primary?.address).toBe(from);
      await steering.unfreeze(frozen);
      expect((await steering.switchover({ stepDownSecs: 10, catchUpSecs: 10, timeoutMs: 60_000 })).from).toBe(from);
    } finally {
      await steering.close();
    }
  });
});

describe('PostgreSQL and Redis in containers (smoke)', () => {
  it('PostgreSQL answers', async () => {
    const c = await new GenericContainer('postgres:15').withEnvironment({ POSTGRES_PASSWORD: 'x' }).withExposedPorts(5432).withWaitStrategy(Wait.forLogMessage(/ready to accept connections/, 2)).start();
    try {
      const client = new pg.Client({ host: c.getHost(), port: c.getMappedPort(5432), user: 'postgres', password: 'x' });
      await client.connect();
      expect((await client.query('select 1 as one')).rows[0]).toEqual({ one: 1 });
      await client.end();
    } finally {
      await c.stop();
    }
  });

  it('Redis answers', async () => {
    const c = await new GenericContainer('redis:7').withExposedPorts(6379).start();
    try {
      const r = new Redis({ host: c.getHost(), port: c.getMappedPort(6379) });
      expect(await r.ping()).toBe('PONG');
      r.disconnect();
    } finally {
      await c.stop();
    }
  });
});
