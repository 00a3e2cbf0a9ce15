/**
 * A Redis master names its replicas by address (`slaveN:ip=…,port=…`), not by node id.
 * A managed node announces its configured host (`replica-announce-ip`), and the fold
 * maps `host:port` to the node registered there, so the sync rule and the routing table
 * find each replica under its id. The pure part first, then real redis-server processes.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { standbysByNodeId } from '../../src/core/standby-names.js';
import { initialState } from '../../src/core/state.js';
import { redisEngine, type ManagedRedis } from '../../src/engines/redis/engine.js';
import type { Connection } from '../../src/engines/types.js';
import type { Observation, ReplicationPeer } from '../../src/events/observation.js';
import { freePorts } from '../../src/sandbox/ports.js';
import { Sim, obs } from '../unit/helpers.js';
import { waitFor } from './support.js';

const peer = (name: string, offset: string): ReplicationPeer => ({ name, state: 'streaming', replayLsn: offset, flushLsn: offset, replayLagMs: null, syncState: 'async', replyAgeMs: 0 });

/** r1 master at 10.0.0.11:6379, r2 and r3 replicas at .12 and .13; r1 reports them by address. */
function redisCluster(settings = {}, replicas: ReplicationPeer[] = [peer('10.0.0.12:6379', '5000'), peer('10.0.0.13:6379', '4000')]): Sim {
  const sim = new Sim(settings, initialState('c1', 'redis'));
  const at = (n: number): Partial<Observation> => ({ host: `10.0.0.1${n}`, port: 6379, timeline: null });
  sim.observe(1_000, obs('r1', { ...at(1), role: 'primary', lsn: '5000', replayLsn: '5000', standbys: replicas }));
  sim.observe(1_000, obs('r2', { ...at(2), lsn: '5000', replayLsn: '5000', upstream: '10.0.0.11:6379' }));
  sim.observe(1_000, obs('r3', { ...at(3), lsn: '4000', replayLsn: '4000', upstream: '10.0.0.11:6379' }));
  sim.settle(1_000);
  // the primary reports again once its replicas are known
  sim.beat(1_100);
  sim.settle(1_100);
  return sim;
}

describe('replica names (pure)', () => {
  it('the fold names a master’s replicas by the node ids registered at their addresses', () => {
    const sim = redisCluster();
    expect(sim.state.primary).toBe('r1');
    expect(sim.state.soft.r1!.obs.standbys!.map((s) => s.name)).toEqual(['r2', 'r3']);
  });

  it('so synchronous mode finds the replicas of a Redis master and asks for the most advanced one', () => {
    const sim = redisCluster({ synchronous: true });
    expect(sim.entries('sync.requested')).toEqual([expect.objectContaining({ node: 'r1', names: ['r2'], count: 1 })]);
  });

  it('leaves alone a name that is a node id, an address nobody is at, and an address two nodes claim', () => {
    const state = redisCluster().state;
    const o = obs('r1', { role: 'primary', standbys: [peer('r2', '1'), peer('10.9.9.9:6379', '1'), peer('10.0.0.13:6379', '1')] });
    const twice = { ...state, soft: { ...state.soft, r4: { ...state.soft.r3!, obs: { ...state.soft.r3!.obs, node: 'r4' } } } };
    expect(standbysByNodeId(twice, o).standbys!.map((s) => s.name)).toEqual(['r2', '10.9.9.9:6379', '10.0.0.13:6379']);
    const plain = obs('r1', { role: 'primary', standbys: [] });
    expect(standbysByNodeId(state, plain)).toBe(plain);
  });
});

describe('replica names (redis-server)', () => {
  const nodes: ManagedRedis[] = [];
  let root = '';
  afterEach(async () => {
    for (const n of nodes.splice(0)) await n.stop('immediate');
    if (root) fs.rmSync(root, { recursive: true, force: true });
  });

  it('a managed node announces its configured host: the master reports it there, and the fold maps it to its id', async () => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'sy-redis-names-'));
    const [p1, p2] = await freePorts(2);
    const log = { info: () => {}, warn: () => {}, error: () => {} };
    // the cluster knows the nodes as "localhost": the master sees the replica's connection come from 127.0.0.1
    const conn = (port: number): Connection => ({ host: 'localhost', port: port, user: 'default', database: '0' });
    const spec = (id: string, port: number) => ({ nodeId: id, dataDir: path.join(root, id), connection: conn(port), listen: '127.0.0.1' });
    const m = redisEngine.managed(spec('r1', p1!), log);
    const r = redisEngine.managed(spec('r2', p2!), log);
    nodes.push(m, r);
    await m.start();
    r.writeStandbyConfig({ id: 'r1', host: 'localhost', port: p1! });
    await r.start();
    const prober = redisEngine.prober(conn(p1!), 1_000);
    try {
      let seen: ReplicationPeer[] = [];
      await waitFor(async () => {
        seen = (await prober.probe()).standbys ?? [];
        return seen.length === 1;
      }, 10_000, 'the master to list its replica');
      expect(seen[0]!.name).toBe(`localhost:${p2}`);
      const sim = new Sim({}, initialState('c1', 'redis'));
      sim.observe(1_000, obs('r2', { host: 'localhost', port: p2!, timeline: null, lsn: '0', replayLsn: '0', upstream: `localhost:${p1}` }));
      sim.observe(1_000, obs('r1', { host: 'localhost', port: p1!, role: 'primary', timeline: null, lsn: '0', replayLsn: '0', standbys: seen }));
      expect(sim.state.soft.r1!.obs.standbys!.map((s) => s.name)).toEqual(['r2']);
    } finally {
      await prober.close();
    }
  });
});
