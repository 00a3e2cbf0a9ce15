/**
 * The Redis engine on the engine seam: positions, the probe's neutral shape, node
 * actions, and a managed node that refuses to restart empty as a master.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { offsetPositions, redisEngine, toNodeProbe } from '../../src/engines/redis/engine.js';
import { probeFromReplies } from '../../src/engines/redis/probe.js';
import type { Connection, EngineLog, ManagedNode } from '../../src/engines/types.js';
import { freePorts } from '../../src/sandbox/ports.js';
import { RedisConn } from '../../src/engines/redis/conn.js';
import { waitFor } from './support.js';

const fixture = (name: string): string => fs.readFileSync(path.join(import.meta.dirname, 'fixtures', name), 'utf8');
const quiet: EngineLog = { info: () => {}, warn: () => {}, error: () => {} };

describe('redis engine on the seam (pure)', () => {
  it('positions are offsets', () => {
    expect(offsetPositions.valid('137')).toBe(true);
    expect(offsetPositions.valid('0/3000060')).toBe(false);
    expect(offsetPositions.compare('100', '137')).toBe(-1);
    expect(offsetPositions.compare('x', '1')).toBeNull();
    expect(offsetPositions.distance('137', '100')).toBe(37);
    expect(offsetPositions.distance('100', '137')).toBe(0);
    expect(offsetPositions.distance(null, '1')).toBeNull();
  });

  it('a probe in the neutral shape', () => {
    const m = toNodeProbe(probeFromReplies(fixture('info-master-7.0.txt'), ['master', 137, []]));
    expect(m).toMatchObject({ reachable: true, role: 'primary', timeline: null, lsn: '137', upstream: null, walReceiver: null });
    expect(m.standbys).toEqual([
      { name: '127.0.0.1:47313', state: 'streaming', replayLsn: '137', flushLsn: '137', replayLagMs: null, syncState: 'async', replyAgeMs: 1000 },
      { name: '127.0.0.1:47312', state: 'streaming', replayLsn: '137', flushLsn: '137', replayLagMs: null, syncState: 'async', replyAgeMs: 1000 },
    ]);
    const r = toNodeProbe(probeFromReplies(fixture('info-replica-down-7.0.txt'), ['slave', '127.0.0.1', 47311, 'connect', -1]));
    expect(r).toMatchObject({ role: 'replica', lsn: '87', upstream: '127.0.0.1:47311', walReceiver: 'connect', replayDelayMs: null });
    expect(redisEngine.supports.has('promote')).toBe(true);
    // a switchover's demote pauses writes and reports the offset (no restart)
    expect(redisEngine.supports.has('demote')).toBe(true);
    // the coordinators drive a Redis switchover step by step: no 'switchover' job (RedisNodeActions has no switchover())
    expect(redisEngine.supports.has('switchover')).toBe(false);
  });
});

describe('redis engine on the seam (real servers)', () => {
  let root = '';
  const nodes: ManagedNode[] = [];
  afterEach(async () => {
    for (const n of nodes.splice(0)) await n.stop('immediate');
    if (root) fs.rmSync(root, { recursive: true, force: true });
  });

  it('managed nodes: probe, promote, follow; a crashed master with no data refuses to start as master and rejoins as a replica', async () => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'sy-redis-seam-'));
    const [p1, p2] = await freePorts(2);
    const conn = (port: number): Connection => ({ host: '127.0.0.1', port, user: 'default', database: '0' });
    const a = redisEngine.managed({ nodeId: 'a', dataDir: path.join(root, 'a'), connection: conn(p1!) }, quiet);
    const b = redisEngine.managed({ nodeId: 'b', dataDir: path.join(root, 'b'), connection: conn(p2!) }, quiet);
    nodes.push(a, b);
    await a.start();
    b.writeStandbyConfig({ id: 'a', host: '127.0.0.1', port: p1! });
    expect(b.isStandby()).toBe(true);
    await b.start();
    expect(a.processState()).toBe('running');
    expect(a.findRunning()).toBe(a.pid);

    const c = await RedisConn.connect({ host: '127.0.0.1', port: p1! }, 2_000);
    for (let i = 0; i < 100; i++) await c.call('SET', `k${i}`, i);
    c.close();
    const prober = redisEngine.prober(conn(p2!), 1_000);
    const pa = redisEngine.prober(conn(p1!), 1_000);
    await waitFor(async () => (await prober.probe()).lsn === (await pa.probe()).lsn, 15_000, 'b to catch up');
    await pa.close();

    let exited = 0;
    a.onExit(() => exited++);
    a.killTree();
    await waitFor(() => a.processState() === 'dead', 15_000, 'a dead');
    await waitFor(() => exited === 1, 15_000, 'onExit');
    await expect(a.start()).rejects.toMatchObject({ code: 'REDIS_EMPTY_RESTART' });

    const nb = redisEngine.node(conn(p2!), 'b');
    expect(await nb.inRecovery()).toBe(true);
    const pr = await nb.promote();
    expect(Number(pr.position)).toBeGreaterThan(0);
    expect(await nb.inRecovery()).toBe(false);
    b.markPrimary();
    expect(b.isStandby()).toBe(false);

    expect(await a.makeStandbyOf({ id: 'b', host: '127.0.0.1', port: p2! })).toBe('restarted');
    await a.start();
    const na = redisEngine.node(conn(p1!), 'a');
    expect(await na.inRecovery()).toBe(true);
    await waitFor(async () => {
      const x = await RedisConn.connect({ host: '127.0.0.1', port: p1! }, 2_000);
      try {
        return (await x.call('DBSIZE')) === 100;
      } finally {
        x.close();
      }
    }, 30_000, 'a to resync from b');
    expect(await na.follow({ id: 'b', host: '127.0.0.1', port: p2! })).toMatch(/already/);
    // the promoted node, once a master, never restarts empty as one either
    b.killTree();
    await waitFor(() => b.processState() === 'dead', 15_000, 'b dead');
    await expect(b.start()).rejects.toMatchObject({ code: 'REDIS_EMPTY_RESTART' });
    await prober.close();
  });
});
