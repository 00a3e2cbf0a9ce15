/**
 * The Redis engine's probe, process control and actions on real redis-server processes.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Fencer, follow, measuredLoss, promote, readReplication, switchover } from '../../src/engines/redis/actions.js';
import { RedisConn } from '../../src/engines/redis/conn.js';
import { chooseRedisCandidate } from '../../src/engines/redis/candidate.js';
import { pingPeer, RedisProber } from '../../src/engines/redis/probe.js';
import { dataIntact } from '../../src/engines/redis/process.js';
import { restartPlan } from '../../src/engines/redis/restart.js';
import * as fs from 'node:fs';
import { call, makeNodes, sleep, startReplicated, waitFor, type TestNodes } from './support.js';

let t: TestNodes | null = null;
afterEach(async () => {
  await t?.cleanup();
  t = null;
});

async function fill(node: Parameters<typeof call>[0], n: number): Promise<void> {
  const c = await RedisConn.connect(node.spec, 2_000);
  try {
    for (let i = 0; i < n; i++) await c.call('SET', `k${i}`, `v${i}`);
  } finally {
    c.close();
  }
}

describe('redis engine', () => {
  it('probes role, offsets, replicas and lag; a SIGSTOPped server is stopped and its peers time out', async () => {
    t = await makeNodes(3);
    await startReplicated(t);
    const [m, r1] = t.nodes as [NonNullable<TestNodes['nodes'][0]>, NonNullable<TestNodes['nodes'][0]>];
    await fill(m, 50);
    // 3 s: a probe whose answer is asserted must not time out on a loaded host (the frozen master's does, by design)
    const pm = new RedisProber(m.spec, 3_000);
    const pr = new RedisProber(r1.spec, 3_000);
    try {
      await waitFor(async () => (await pr.probe()).offset === (await pm.probe()).offset, 15_000, 'replica to catch up');
      const a = await pm.probe();
      const b = await pr.probe();
      expect(a).toMatchObject({ reachable: true, role: 'primary', upstream: null });
      expect(a.replication!.replicas).toHaveLength(2);
      // the master learns its replicas' offsets from their once-a-second REPLCONF ACK
      await waitFor(async () => {
        const x = await pm.probe();
        return x.replication!.replicas.every((r) => r.offset === x.offset && r.state === 'online');
      }, 15_000, "the master to see its replicas' offsets");
      expect(b).toMatchObject({ reachable: true, role: 'replica', upstream: `127.0.0.1:${m.spec.port}`, replid: a.replid, lagBytes: 0, lagMs: 0 });
      expect(m.state()).toBe('running');
      expect(fs.readFileSync(m.pidFile, 'utf8').trim()).toBe(String(m.pid));

      expect(await pingPeer(m.spec, 500)).toEqual({ reachable: true });
      m.signal('SIGSTOP');
      await waitFor(() => m.state() === 'stopped', 15_000, 'state T');
      const seen = await pingPeer(m.spec, 300);
      expect(seen).toMatchObject({ reachable: false, error: 'timeout' });
      expect((await pm.probe()).error).toBe('timeout');
      m.signal('SIGCONT');
      await waitFor(() => m.state() === 'running', 15_000, 'running again');
      expect((await pm.probe()).reachable).toBe(true);

      m.signal('SIGKILL');
      await m.waitExit();
      expect(m.state()).toBe('dead');
      expect(await pingPeer(m.spec, 500)).toMatchObject({ reachable: false, error: 'refused' });
      const down = await pr.probe();
      expect(down).toMatchObject({ role: 'replica', lagBytes: null });
    } finally {
      pm.close();
      pr.close();
    }
  });

  it('failover: promote the highest offset, re-point the other, measure the loss; the old master rejoins as a replica', async () => {
    t = await makeNodes(3);
    await startReplicated(t);
    const [m, r1, r2] = t.nodes as [NonNullable<TestNodes['nodes'][0]>, NonNullable<TestNodes['nodes'][0]>, NonNullable<TestNodes['nodes'][0]>];
    await fill(m, 100);
    await waitFor(async () => {
      const mo = Number(/master_repl_offset:(\d+)/.exec(String(await call(m, 'INFO', 'replication')))![1]);
      return (await readOffsets([r1, r2])).every((o) => o === mo);
    }, 15_000, 'replicas caught up');
    const mc = await RedisConn.connect(m.spec, 5_000);
    const lastOfOld = await readReplication(mc);
    mc.close();
    await m.kill();

    const probes = await Promise.all([r1, r2].map(async (n, i) => {
      const p = new RedisProber(n.spec, 5_000); // a replica that does not answer in time would not be a candidate
      const x = await p.probe();
      p.close();
      return { id: `r${i + 2}`, healthy: x.reachable, priority: 100, replid: x.replid, offset: x.offset };
    }));
    const choice = chooseRedisCandidate(probes, lastOfOld.replid, lastOfOld.offset, 1024 * 1024);
    expect(choice.id).not.toBeNull();
    const [cand, other] = choice.id === 'r2' ? [r1, r2] : [r2, r1];
    const res = await promote(cand.spec);
    expect(res.alreadyMaster).toBe(false);
    expect(res.before.replid).toBe(lastOfOld.replid);
    expect(measuredLoss({ replid: lastOfOld.replid, offset: lastOfOld.offset }, res)).toBe(0);
    expect(await promote(cand.spec)).toMatchObject({ alreadyMaster: true }); // idempotent
    expect(await follow(other.spec, cand.spec)).toEqual({ changed: true });
    expect(await follow(other.spec, cand.spec)).toEqual({ changed: false });
    expect(await call(cand, 'SET', 'after', 'failover')).toBe('OK');
    await waitFor(async () => (await call(other, 'GET', 'after')) === 'failover', 15_000, 'the other replica to follow the new master');
    expect(await call(other, 'DBSIZE')).toBe(101);

    // rejoin: the old master restarts per the rule, as the new master's replica
    const plan = restartPlan({ self: 'r1', currentPrimary: { id: 'new', host: cand.spec.host, port: cand.spec.port }, dataIntact: false });
    expect(plan.start).toBe('replica');
    await m.start(plan.start === 'replica' ? plan.of : null);
    await waitFor(async () => (await call(m, 'GET', 'after')) === 'failover', 30_000, 'the old master to resync');
    expect(await call(m, 'DBSIZE')).toBe(101);
    await expect(call(m, 'SET', 'x', '1')).rejects.toThrow(/READONLY/);
  });

  it('fence before promote: a fenced master holds writes, and a write it held is refused, never acknowledged, after it is re-pointed', async () => {
    t = await makeNodes(2);
    await startReplicated(t);
    const [m, r] = t.nodes as [NonNullable<TestNodes['nodes'][0]>, NonNullable<TestNodes['nodes'][0]>];
    // a 1.5 s lease, renewed every 0.5 s: a loaded host's stall of a few hundred ms must not let it lapse
    const fencer = new Fencer(m.spec, { leaseMs: 1_500 });
    await fencer.fence();
    const writer = await RedisConn.connect(m.spec, 10_000);
    let outcome: string | null = null;
    const held = writer.call('SET', 'held', '1').then(
      (v) => (outcome = `acked ${String(v)}`),
      (e: Error) => (outcome = `refused ${e.message}`),
    );
    await sleep(3_500); // > 2 leases: the fence is being renewed
    expect(outcome).toBeNull();
    expect(fencer.renewals).toBeGreaterThanOrEqual(3);
    expect(await call(m, 'GET', 'x')).toBeNull(); // reads still answer

    await promote(r.spec);
    await follow(m.spec, r.spec);
    await fencer.unfence();
    await held;
    writer.close();
    expect(outcome).toMatch(/^refused .*READONLY/);
    expect(await call(r, 'GET', 'held')).toBeNull();
  });

  it('a fence that is not renewed lapses by itself', async () => {
    t = await makeNodes(1);
    await t.nodes[0]!.start(null);
    const m = t.nodes[0]!;
    const fencer = new Fencer(m.spec, { leaseMs: 1_000 });
    await fencer.fence();
    fencer.stop();
    const t0 = Date.now();
    expect(await call(m, 'SET', 'a', '1')).toBe('OK');
    expect(Date.now() - t0).toBeGreaterThan(100);
  });

  it('a frozen master cannot renew its fence: onFrozen fires (the agent then kills it)', async () => {
    t = await makeNodes(1);
    const m = t.nodes[0]!;
    await m.start(null);
    let frozen = 0;
    const fencer = new Fencer(m.spec, { leaseMs: 300, timeoutMs: 200, onFrozen: () => frozen++ });
    await fencer.fence();
    m.signal('SIGSTOP');
    await waitFor(() => frozen > 0, 15_000, 'onFrozen');
    fencer.stop();
    await m.kill();
    expect(m.state()).toBe('dead');
  });

  it('switchover with FAILOVER TO: zero acknowledged writes lost, the old master follows the new one', async () => {
    t = await makeNodes(3);
    await startReplicated(t);
    const [m, r1, r2] = t.nodes as [NonNullable<TestNodes['nodes'][0]>, NonNullable<TestNodes['nodes'][0]>, NonNullable<TestNodes['nodes'][0]>];
    const acked: number[] = [];
    let stop = false;
    const writer = (async () => {
      let conn: RedisConn | null = null;
      for (let i = 0; !stop; i++) {
        try {
          conn ??= await RedisConn.connect(m.spec, 2_000);
          await conn.callWithin(3_000, 'RPUSH', 'log', i);
          acked.push(i);
        } catch {
          conn?.close();
          conn = null;
          await sleep(5);
        }
      }
      conn?.close();
    })();
    await waitFor(() => acked.length > 10, 15_000, 'writes before the switchover');
    // the catch-up wait: generous, a loaded host's replica may take seconds
    const res = await switchover(m.spec, r1.spec, { timeoutMs: 15_000 });
    expect(res.method).toBe('FAILOVER');
    await follow(r2.spec, r1.spec);
    await sleep(200);
    stop = true;
    await writer;
    expect(acked.length).toBeGreaterThan(10);
    const role = await call(r1, 'ROLE');
    expect((role as unknown[])[0]).toBe('master');
    expect((await call(m, 'ROLE') as unknown[])[0]).toBe('slave');
    const list = (await call(r1, 'LRANGE', 'log', 0, -1)) as string[];
    const have = new Set(list.map(Number));
    const lost = acked.filter((i) => !have.has(i));
    expect(lost).toEqual([]);
    await waitFor(async () => (await call(r2, 'LLEN', 'log')) === list.length, 15_000, 'r2 to follow the new master');
  });

  it('switchover without FAILOVER (the fallback steps): zero acknowledged writes lost, with the target behind when writes stop', async () => {
    t = await makeNodes(2);
    await startReplicated(t);
    const [m, r] = t.nodes as [NonNullable<TestNodes['nodes'][0]>, NonNullable<TestNodes['nodes'][0]>];
    await fill(m, 200);
    const acked: number[] = [];
    let stop = false;
    const writer = (async () => {
      let conn: RedisConn | null = null;
      for (let i = 0; !stop; i++) {
        try {
          conn ??= await RedisConn.connect(m.spec, 2_000);
          await conn.callWithin(20_000, 'RPUSH', 'log', i);
          acked.push(i);
        } catch {
          conn?.close();
          conn = null;
          await sleep(5);
        }
      }
      conn?.close();
    })();
    await waitFor(() => acked.length > 10, 15_000, 'writes before the switchover');
    // hold the target back: the master asks for a password its replica does not have and
    // drops the replication link (connections already open stay authenticated), so the
    // writes acknowledged from now on are on the master only. Promoting the target before
    // it has the master's offset (the wait the fallback steps make) would lose them.
    await call(m, 'CONFIG', 'SET', 'requirepass', 'pw');
    const master = { ...m.spec, password: 'pw' };
    const mc = await RedisConn.connect(master, 2_000);
    try {
      await mc.call('CLIENT', 'KILL', 'TYPE', 'replica');
    } finally {
      mc.close();
    }
    await waitFor(async () => String(await call(r, 'INFO', 'replication')).includes('master_link_status:down'), 15_000, 'the link down');
    const atCut = acked.length;
    await waitFor(() => acked.length >= atCut + 5, 15_000, 'writes acknowledged with the link down');
    const switched = switchover(master, r.spec, { timeoutMs: 15_000, useFailoverCommand: false });
    // the target can sync again: the switchover waits for it to have the master's offset
    await sleep(300);
    await call(r, 'CONFIG', 'SET', 'masterauth', 'pw');
    const res = await switched;
    expect(res.method).toBe('manual');
    stop = true;
    await writer;
    expect((await call(r, 'ROLE') as unknown[])[0]).toBe('master');
    expect(await call(r, 'EXISTS', 'k199')).toBe(1);
    const have = new Set(((await call(r, 'LRANGE', 'log', 0, -1)) as string[]).map(Number));
    const lost = acked.filter((i) => !have.has(i));
    expect(lost).toEqual([]);
    // the old master follows the target: a write there is refused
    const after = await RedisConn.connect(master, 2_000);
    try {
      await expect(after.call('SET', 'x', '1')).rejects.toThrow(/READONLY/);
    } finally {
      after.close();
    }
  });
});

async function readOffsets(nodes: Array<Parameters<typeof call>[0]>): Promise<number[]> {
  return Promise.all(nodes.map(async (n) => Number(String(await call(n, 'INFO', 'replication')).match(/slave_repl_offset:(\d+)/)![1])));
}

describe('the empty-restart rule', () => {
  async function crashedMasterWithData(): Promise<[NonNullable<TestNodes['nodes'][0]>, NonNullable<TestNodes['nodes'][0]>]> {
    t = await makeNodes(2);
    await startReplicated(t);
    const [m, r] = t.nodes as [NonNullable<TestNodes['nodes'][0]>, NonNullable<TestNodes['nodes'][0]>];
    await fill(m, 500);
    await waitFor(async () => (await call(r, 'DBSIZE')) === 500, 15_000, 'the replica to hold the data');
    await m.kill(); // kill -9: no persistence, its dataset is gone
    return [m, r];
  }

  it('broken rule (the pitfall is real): a crashed master restarted empty as a master makes its replica wipe its data', async () => {
    const [m, r] = await crashedMasterWithData();
    await m.start(null);
    // the replica reconnects to an empty master with a new replid, full-resyncs, and flushes its own copy
    await waitFor(async () => (await call(r, 'DBSIZE')) === 0, 15_000, 'the replica to resync the empty master');
    expect(await call(r, 'DBSIZE')).toBe(0);
  });

  it('the rule: the crashed master waits, a replica is promoted, and it restarts as that replica\'s replica: no data lost', async () => {
    const [m, r] = await crashedMasterWithData();
    const self = 'm';
    const journalPrimary = { id: self, host: m.spec.host, port: m.spec.port };
    const first = restartPlan({ self, currentPrimary: journalPrimary, dataIntact: false });
    expect(first.start).toBe('wait');
    await sleep(1_500); // the replica keeps its data while its master stays down
    expect(await call(r, 'DBSIZE')).toBe(500);
    await promote(r.spec);
    const next = restartPlan({ self, currentPrimary: { id: 'r', host: r.spec.host, port: r.spec.port }, dataIntact: false });
    expect(next.start).toBe('replica');
    await m.start(next.start === 'replica' ? next.of : null);
    await waitFor(async () => (await call(m, 'DBSIZE')) === 500, 30_000, 'the restarted node to sync from the new master');
    expect(await call(r, 'DBSIZE')).toBe(500);
    expect(await call(m, 'GET', 'k499')).toBe('v499');
    expect(((await call(m, 'ROLE')) as unknown[])[0]).toBe('slave');
  });

  it('a master with persistence restarts with its data intact', async () => {
    t = await makeNodes(1, { appendonly: true });
    const m = t.nodes[0]!;
    await m.start(null);
    await fill(m, 20);
    await sleep(1_200); // appendfsync everysec
    await m.kill();
    expect(dataIntact(m.spec)).toBe(true);
    const plan = restartPlan({ self: 'm', currentPrimary: { id: 'm', host: m.spec.host, port: m.spec.port }, dataIntact: dataIntact(m.spec) });
    expect(plan.start).toBe('master');
    await m.start(null);
    expect(await call(m, 'DBSIZE')).toBe(20);
  });
});
