/**
 * Scenarios against the wire-protocol stand-in (test/support/mongo-standin/, NOT a mongod):
 * the probe, the fold with a stale primary after a partition, routing with staleness,
 * step-down steering, and the client following a new primary. The same scenarios against a
 * real mongod: test/containers/.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createMongoClient } from '../../src/client/mongo.js';
import { MongoSteering } from '../../src/engines/mongo/actions.js';
import { MongoProber } from '../../src/engines/mongo/probe.js';
import { selectServers } from '../../src/engines/mongo/select.js';
import { foldMongo, initialMongoState, mongoRouting, topologyDescription, type MongoFact, type MongoSetState } from '../../src/engines/mongo/topology.js';
import { tcpCheck } from '../../agent/peer.js';
import { MongoStandin } from '../support/mongo-standin/replset.js';
import { waitFor } from '../support/sandbox.js';

const conn = (port: number) => ({ host: '127.0.0.1', port, user: '', database: 'admin' });

async function until<T>(what: string, fn: () => Promise<T | null | undefined | false> | T | null | undefined | false, timeoutMs = 15_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

let set: MongoStandin;
let skew = 0;
const probers: MongoProber[] = [];

beforeEach(async () => {
  skew = 0;
  set = await MongoStandin.start({ members: 3, electionDelayMs: 100, now: () => Date.now() + skew });
});

afterEach(async () => {
  await Promise.all(probers.splice(0).map((p) => p.close()));
  await set.close();
});

async function observeAll(s: MongoSetState, facts: MongoFact[]): Promise<MongoSetState> {
  for (const m of set.members) {
    let p = probers[m.id];
    if (!p) {
      p = new MongoProber(conn(m.port), 3000);
      probers[m.id] = p;
    }
    const obs = await p.observe().catch(() => null);
    const out = foldMongo(s, { address: m.name, at: Date.now(), obs });
    facts.push(...out.facts);
    s = out.state;
  }
  return s;
}

describe('mongo engine against the stand-in', () => {
  it('probe: primary and secondary over TCP with the real driver', async () => {
    const primary = set.primary();
    expect(primary).toBeDefined();
    const sec = set.members.find((m) => m !== primary);
    if (!primary || !sec) throw new Error('no primary');
    const pp = new MongoProber(conn(primary.port), 3000);
    const sp = new MongoProber(conn(sec.port), 3000);
    probers.push(pp, sp);
    const po = await pp.observe();
    expect(po).toMatchObject({ isWritablePrimary: true, setName: 'rs0', me: primary.name, term: 1 });
    expect(po.electionId).toMatch(/^7fffffff0+1$/);
    expect(po.members).toHaveLength(3);
    const np = await sp.probe();
    expect(np).toMatchObject({ reachable: true, role: 'replica', timeline: 1, upstream: primary.name, walReceiver: 'streaming' });
    // a stopped member: refused, definitively
    await set.stop(sec.id);
    const down = await sp.probe();
    expect(down).toMatchObject({ reachable: false, role: 'unknown' });
    expect(down.error).toBe('refused');
  });

  it('fold: a partitioned primary stays a stale primary, fenced by electionId and not routed; healed, it steps down and is routed again as a member', async () => {
    const facts: MongoFact[] = [];
    let s = await observeAll(initialMongoState(), facts);
    const old = set.primary();
    if (!old) throw new Error('no primary');
    expect(facts.map((f) => f.type)).toEqual(['election']);
    set.partition(old.id);
    const fresh = await until('a new primary on the majority side', () => set.primary());
    expect(fresh.id).not.toBe(old.id);
    // the partitioned one still says it is primary (a client can reach it)
    const direct = new MongoProber(conn(old.port), 3000);
    const claims = await direct.observe().finally(() => direct.close());
    expect(claims.isWritablePrimary).toBe(true);
    s = await observeAll(s, facts);
    s = await observeAll(s, facts);
    expect(facts.filter((f) => f.type === 'election').at(-1)).toMatchObject({ primary: fresh.name, previous: old.name });
    const stale = facts.find((f) => f.type === 'stale-primary');
    expect(stale).toMatchObject({ member: old.name });
    expect(mongoRouting(s, 10_000).primary?.address).toBe(fresh.name);
    expect(mongoRouting(s, 10_000).excluded.map((e) => e.address)).toContain(old.name);
    set.heal(old.id);
    await until('the old primary steps down', async () => !(await probers[old.id]?.observe())?.isWritablePrimary);
    s = await observeAll(s, facts);
    expect(s.members[old.name]?.stale).toBe(false);
    expect(mongoRouting(s, 10_000).primary?.address).toBe(fresh.name);
  });

  it('fold: a member held in RECOVERING is journaled as stuck with evidence and not routed', async () => {
    const p = set.primary();
    const victim = set.members.find((m) => m !== p);
    if (!p || !victim) throw new Error('no members');
    set.setRecovering(victim.id);
    const facts: MongoFact[] = [];
    let s = initialMongoState();
    const t0 = Date.now();
    for (const at of [t0, t0 + 500, t0 + 1500]) {
      const prober = new MongoProber(conn(victim.port), 3000);
      const obs = await prober.observe().finally(() => prober.close());
      const out = foldMongo(s, { address: victim.name, at, obs }, { stuckAfterMs: 1000 });
      s = out.state;
      facts.push(...out.facts);
    }
    expect(facts).toMatchObject([{ type: 'member-stuck', member: victim.name, state: 'RECOVERING', forMs: 1500 }]);
    expect(mongoRouting(s, 10_000).excluded).toEqual([{ address: victim.name, reason: 'recovering' }]);
  });

  it('routing with staleness: a secondary whose replication stopped 2 minutes ago is excluded at maxStaleness 90 s', async () => {
    const p = set.primary();
    if (!p) throw new Error('no primary');
    const lagging = set.members.find((m) => m !== p);
    if (!lagging) throw new Error('no secondary');
    const client = await createMongoClient({ routing: await routingApi(), cluster: 'm', heartbeatFrequencyMS: 500, logger: quiet() });
    try {
      await client.writeWithConcern('t', { insert: { k: 1 } });
      set.pauseReplication(lagging.id);
      skew = 120_000;
      await client.writeWithConcern('t', { insert: { k: 2 } }, { w: 1 });
      const s = await observeAll(initialMongoState(), []);
      const routing = mongoRouting(s, 10_000);
      const lagRoute = routing.secondaries.find((r) => r.address === lagging.name);
      const freshRoute = routing.secondaries.find((r) => r.address !== lagging.name);
      expect(lagRoute?.stalenessMs).toBeGreaterThanOrEqual(130_000 - 1000);
      expect(freshRoute?.stalenessMs).toBeLessThan(11_000);
      const td = topologyDescription(s, 10_000);
      expect(selectServers(td, 'read', { mode: 'secondary', maxStalenessSeconds: 90 }).suitable.map((x) => x.address)).toEqual([freshRoute?.address]);
      expect(selectServers(td, 'read', { mode: 'secondary', maxStalenessSeconds: 200 }).suitable).toHaveLength(2);
      // the driver applies the same rule: reads with maxStaleness 90 never see the lagging member's data
      // heartbeats (every 0.5 s) so the driver has the new lastWriteDates: six more hellos
      // answered by every member (three heartbeats at least, were its RTT pings counted too),
      // however late a loaded host runs them (a fixed sleep was a guess)
      const seen = set.members.map((m) => m.hellos);
      await waitFor('heartbeats on every member', async () => set.members.every((m, i) => m.hellos >= seen[i]! + 6), 20_000, 50);
      for (let i = 0; i < 10; i++) expect((await client.readFromSecondary('t', { k: 2 }, 90)).length).toBe(1);
    } finally {
      await client.close();
    }
  });

  it('step-down: switchover to a chosen member by priority, then by freezing, restoring priorities and freezes', async () => {
    const steering = new MongoSteering(set.members.map((m) => conn(m.port)));
    try {
      const from = set.primary();
      if (!from) throw new Error('no primary');
      const target = set.members.find((m) => m !== from && m.id === 2) ?? set.members.find((m) => m !== from);
      if (!target) throw new Error('no target');
      const r1 = await steering.switchover({ to: target.name, how: 'priority', stepDownSecs: 5, catchUpSecs: 2 });
      expect(r1).toMatchObject({ from: from.name, to: target.name, how: 'priority' });
      expect(set.primary()?.name).toBe(target.name);
      expect(set.members.map((m) => m.priority)).toEqual([1, 1, 1]);
      expect(set.setVersion).toBe(3); // raised, then restored: two reconfigs
      const other = set.members.find((m) => m !== target && m !== from);
      if (!other) throw new Error('no third member');
      const r2 = await steering.switchover({ to: other.name, how: 'freeze', stepDownSecs: 5, catchUpSecs: 2 });
      expect(r2).toMatchObject({ from: target.name, to: other.name, how: 'freeze' });
      expect(set.members.every((m) => m.frozenUntil === 0 || m === target)).toBe(true);
      await expect(steering.switchover({ to: 'nowhere:1' })).rejects.toThrow(/no member "nowhere:1"/);
    } finally {
      await steering.close();
    }
  });

  it('step-down: a switchover that fails (its target cannot catch up) still restores the priorities, and the freezes', async () => {
    const steering = new MongoSteering(set.members.map((m) => conn(m.port)));
    try {
      const from = set.primary();
      if (!from) throw new Error('no primary');
      const [target, other] = set.members.filter((m) => m !== from);
      if (!target || !other) throw new Error('no secondaries');
      set.pauseReplication(target.id);
      await steering.run(conn(from.port), { insert: 't', documents: [{ k: 1 }], $db: 'test' });
      await expect(steering.switchover({ to: target.name, how: 'priority', stepDownSecs: 5, catchUpSecs: 1, timeoutMs: 3000 })).rejects.toThrow(/no new primary \(.*\) within the timeout/);
      expect(set.members.map((m) => m.priority)).toEqual([1, 1, 1]);
      expect(set.setVersion).toBe(3); // raised, then restored
      const now = set.primary();
      if (!now) throw new Error('no primary');
      await expect(steering.switchover({ to: target.name, how: 'freeze', stepDownSecs: 5, catchUpSecs: 1, timeoutMs: 3000 })).rejects.toThrow(/within the timeout/);
      expect(set.members.filter((m) => m !== now && m !== target).every((m) => m.frozenUntil === 0)).toBe(true);
    } finally {
      await steering.close();
    }
  });

  it('pause: with every secondary frozen a stepped-down primary has no successor until resumed', async () => {
    const steering = new MongoSteering(set.members.map((m) => conn(m.port)));
    try {
      const p = set.primary();
      if (!p) throw new Error('no primary');
      const frozen = await steering.freeze(60);
      expect(frozen).toHaveLength(2);
      await expect(steering.run(conn(p.port), { replSetStepDown: 30, secondaryCatchUpPeriodSecs: 1 })).rejects.toThrow(/No electable secondaries/);
      expect(set.primary()?.name).toBe(p.name);
      await expect(steering.run(conn(p.port), { replSetFreeze: 10 })).rejects.toThrow(/cannot freeze node when primary/);
      await steering.unfreeze(frozen);
      await steering.run(conn(p.port), { replSetStepDown: 30, secondaryCatchUpPeriodSecs: 2 });
      const next = await until('a new primary', () => set.primary());
      expect(next.name).not.toBe(p.name);
    } finally {
      await steering.close();
    }
  });

  it('client: seeds from the routing table, follows a new primary after a step-down and a crash', async () => {
    const lines: string[] = [];
    const logger = pino({ level: 'info' }, { write: (l: string) => lines.push(l) });
    const client = await createMongoClient({ routing: await routingApi(), cluster: 'm', heartbeatFrequencyMS: 500, serverSelectionTimeoutMS: 10_000, logger });
    try {
      expect(client.seeds).toHaveLength(3);
      await client.writeWithConcern('orders', { insert: { n: 1 } });
      const first = set.primary();
      if (!first) throw new Error('no primary');
      const steering = new MongoSteering(set.members.map((m) => conn(m.port)));
      await steering.switchover({ stepDownSecs: 5, catchUpSecs: 2 });
      await steering.close();
      // the driver retries the write once on the new primary
      await client.writeWithConcern('orders', { insert: { n: 2 } });
      const second = set.primary();
      expect(second?.name).not.toBe(first.name);
      if (!second) throw new Error('no primary');
      await set.stop(second.id);
      await until('a third primary', () => set.primary());
      // a crash (not a step-down): the first write may fail with the network error of the dead
      // primary (mongodb 6.22 labels the refused connection ResetPool only, not RetryableWriteError, so it is not retried);
      // the client follows the new primary within a few heartbeats
      let failures = 0;
      await until('a write on the third primary', () =>
        client.writeWithConcern('orders', { insert: { n: 3 } }, { w: 1 }).then(
          () => true,
          () => (failures++, false),
        ),
      );
      expect(failures).toBeLessThanOrEqual(20);
      const status = await client.getReplicaSetStatus();
      expect(status.isWritablePrimary).toBe(true);
      expect(status.me).toBe(set.primary()?.name);
      const all = await client.db().collection('orders').find({}).toArray();
      expect(all.map((d) => d.n).sort()).toEqual([1, 2, 3]);
      expect(await client.writeWithConcern('orders', { update: { filter: { n: 3 }, set: { done: true } } }, { w: 1 })).toMatchObject({ n: 1 });
      expect(await client.writeWithConcern('orders', { delete: { n: 1 } }, { w: 1 })).toMatchObject({ n: 1 });
      expect(lines.some((l) => l.includes('mongo topology changed'))).toBe(true);
    } finally {
      await client.close();
    }
  });

  it('client: its options reach the wire (readPreference and maxStalenessSeconds on reads, writeConcern on writes); logs go to pino, never the console', async () => {
    const consoleCalls: unknown[] = [];
    const spies = (['log', 'info', 'warn', 'error', 'debug'] as const).map((k) => vi.spyOn(console, k).mockImplementation((...a: unknown[]) => void consoleCalls.push(a)));
    const lines: string[] = [];
    const logger = pino({ level: 'info' }, { write: (l: string) => lines.push(l) });
    const client = await createMongoClient({
      routing: await routingApi(),
      cluster: 'm',
      readPreference: 'secondaryPreferred',
      maxStalenessSeconds: 120,
      writeConcern: { w: 2 },
      heartbeatFrequencyMS: 500,
      logger,
    });
    try {
      const p = set.primary();
      if (!p) throw new Error('no primary');
      const secondaries = set.members.filter((m) => m !== p).map((m) => m.name);
      const last = (command: string) => [...set.received].reverse().find((r) => r.command === command);
      // writes: to the primary, with the client's write concern unless one is given
      await client.writeWithConcern('wc', { insert: { k: 1 } });
      expect(last('insert')).toMatchObject({ member: p.name, body: { writeConcern: { w: 2 } } });
      await client.writeWithConcern('wc', { update: { filter: { k: 1 }, set: { v: 1 } } }, { w: 1 });
      expect(last('update')).toMatchObject({ member: p.name, body: { writeConcern: { w: 1 } } });
      // reads: the client's default read preference takes a fresh secondary, with its maxStalenessSeconds
      await waitFor('the driver knows both secondaries', async () => {
        await client.db().collection('wc').find({}).toArray();
        const f = last('find');
        return f !== undefined && secondaries.includes(f.member);
      }, 20_000, 50);
      expect(last('find')?.body.$readPreference).toMatchObject({ mode: 'secondaryPreferred', maxStalenessSeconds: 120 });
      // readFromSecondary: mode secondary, its own maxStalenessSeconds
      await client.readFromSecondary('wc', { k: 1 }, 150);
      expect(last('find')).toMatchObject({ body: { filter: { k: 1 }, $readPreference: { mode: 'secondary', maxStalenessSeconds: 150 } } });
      expect(secondaries).toContain(last('find')?.member);
      // and refuses one below the 90 s floor before sending anything
      const sent = set.received.length;
      await expect(client.readFromSecondary('wc', { k: 1 }, 30)).rejects.toThrow(/maxStalenessSeconds 30 is below the minimum of 90/);
      expect(set.received.length).toBe(sent);
      // a topology change (the set elects another) is logged through pino
      const steering = new MongoSteering(set.members.map((m) => conn(m.port)));
      await steering.switchover({ stepDownSecs: 5, catchUpSecs: 2 });
      await steering.close();
      await waitFor('the change logged', async () => lines.some((l) => l.includes('mongo topology changed') && !l.includes(`"primary":"${p.name}"`)), 20_000, 50);
    } finally {
      await client.close();
      for (const s of spies) s.mockRestore();
    }
    expect(lines.some((l) => l.includes('mongo client connected'))).toBe(true);
    expect(consoleCalls).toEqual([]);
  });

  it('client: refuses bad read preferences before connecting, naming the field', async () => {
    await expect(createMongoClient({ routing: 'http://127.0.0.1:1', cluster: 'm', readPreference: 'primary', maxStalenessSeconds: 120 })).rejects.toThrow(/maxStalenessSeconds cannot be combined with mode primary/);
    await expect(createMongoClient({ routing: 'http://127.0.0.1:1', cluster: 'm', readPreference: 'secondary', maxStalenessSeconds: 30 })).rejects.toThrow(/maxStalenessSeconds 30 is below the minimum of 90/);
  });
});

/* ---------------------------------------------------------------- a routing table for the client */

const servers: Server[] = [];
afterAll(async () => {
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
});

function quiet() {
  return pino({ level: 'silent' });
}

/** serves GET /v1/clusters/m/routing from the stand-in's current state (the routing API's table shape) */
async function routingApi(): Promise<string> {
  const srv = createServer((req, res) => {
    if (req.url !== '/v1/clusters/m/routing') {
      res.writeHead(404).end();
      return;
    }
    const p = set.primary();
    const table = {
      cluster: 'm',
      engine: 'mongodb',
      setName: set.setName,
      primary: p ? { id: `m${String(p.id)}`, host: '127.0.0.1', port: p.port } : null,
      replicas: set.members.filter((m) => m !== p).map((m) => ({ id: `m${String(m.id)}`, host: '127.0.0.1', port: m.port })),
    };
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(table));
  });
  servers.push(srv);
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${String((srv.address() as AddressInfo).port)}`;
}

describe('the mongodb engine object (seam)', () => {
  it('probes through the seam, declares only switchover, refuses promote naming the engine', async () => {
    const { mongoEngine } = await import('../../src/engines/mongo/index.js');
    const s = await MongoStandin.start({ members: 3 });
    try {
      expect(mongoEngine.electsItself).toBe(true);
      expect([...mongoEngine.supports]).toEqual(['switchover']);
      const p = s.primary();
      if (!p) throw new Error('no primary');
      const prober = mongoEngine.prober(conn(p.port), 3000);
      expect(await prober.probe()).toMatchObject({ reachable: true, role: 'primary', timeline: 1 });
      await prober.close();
      const node = mongoEngine.node(conn(p.port));
      expect(await node.inRecovery()).toBe(false);
      await expect(node.promote()).rejects.toThrow(/mongodb: promote is not supported/);
    } finally {
      await s.close();
    }
  });

  it('process: death and freeze are told apart as for the other engines, by the probe and by the peer view (the engine’s own hello bytes)', async () => {
    const { mongoEngine } = await import('../../src/engines/mongo/index.js');
    const s = await MongoStandin.start({ members: 3 });
    const p = s.primary();
    if (!p) throw new Error('no primary');
    const prober = mongoEngine.prober(conn(p.port), 1000);
    try {
      // the peer view's bytes are the engine's: an OP_MSG hello a live mongod answers
      expect(mongoEngine.hello).toBeDefined();
      expect(await tcpCheck('127.0.0.1', p.port, 5000, mongoEngine.hello)).toBeNull();
      expect(await prober.probe()).toMatchObject({ reachable: true, role: 'primary' });
      // frozen (SIGSTOP): connects succeed, nothing answers: a timeout (ambiguous), never refused
      s.hang(p.id);
      expect(await tcpCheck('127.0.0.1', p.port, 500, mongoEngine.hello)).toBe('timeout');
      expect(await prober.probe()).toMatchObject({ reachable: false, error: 'timeout' });
      // continued: answered again
      s.hang(p.id, false);
      expect(await tcpCheck('127.0.0.1', p.port, 5000, mongoEngine.hello)).toBeNull();
      expect(await prober.probe()).toMatchObject({ reachable: true });
      // dead: refused, definitively
      await s.stop(p.id);
      expect(await tcpCheck('127.0.0.1', p.port, 5000, mongoEngine.hello)).toBe('refused');
      expect(await prober.probe()).toMatchObject({ reachable: false, error: 'refused' });
    } finally {
      await prober.close();
      await s.close();
    }
  });
});
