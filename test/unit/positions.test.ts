/**
 * Positions through the engine's codec: the same core rules pick the most advanced
 * replica and measure lag and loss for a Redis cluster (replication offsets) as for a
 * PostgreSQL one (LSNs). A Redis offset read as an LSN is malformed, so each of these
 * fails when the core reads positions as LSNs.
 */
import { describe, expect, it } from 'vitest';
import { chooseCandidate } from '../../src/core/decide.js';
import { bytesAhead, codecOf, comparePositions, newestPosition, reached } from '../../src/core/positions.js';
import { initialState } from '../../src/core/state.js';
import { POSITION_CODECS, positionCodec } from '../../src/engines/positions.js';
import { lsnPositions } from '../../src/engines/postgres/position.js';
import { offsetPositions } from '../../src/engines/redis/position.js';
import { mongoPosition } from '../../src/engines/mongo/position.js';
import { DEAD, Sim, jobResult, obs } from './helpers.js';

/** A settled, healthy Redis cluster: r1 primary at `primary`, replicas at their offsets. */
function redisCluster(primary: string, replicas: Record<string, string>, settings = {}): Sim {
  const sim = new Sim(settings, initialState('c1', 'redis'));
  const up = { upstream: 'r1:5432' };
  sim.observe(1_000, obs('r1', { role: 'primary', timeline: null, lsn: primary, replayLsn: primary }));
  for (const [id, off] of Object.entries(replicas)) sim.observe(1_000, obs(id, { timeline: null, lsn: off, replayLsn: off, ...up }));
  sim.settle(1_000);
  expect(sim.state.primary).toBe('r1');
  return sim;
}

describe('engine position codecs', () => {
  it('are registered by engine name, PostgreSQL for an unknown one', () => {
    expect(POSITION_CODECS).toEqual({ postgres: lsnPositions, redis: offsetPositions, mongodb: mongoPosition });
    expect(positionCodec('redis')).toBe(offsetPositions);
    expect(positionCodec('nope')).toBe(lsnPositions);
    expect(codecOf(initialState('c', 'redis'))).toBe(offsetPositions);
    expect(codecOf(initialState('c'))).toBe(lsnPositions);
  });

  it('compare numerically, not as strings, and put unknown positions lowest', () => {
    const c = offsetPositions;
    expect(comparePositions(c, '900', '1000')).toBe(-1);
    expect(comparePositions(c, '1000', '900')).toBe(1);
    expect(comparePositions(c, null, '0')).toBe(-1);
    expect(comparePositions(c, '0/3000000', '5')).toBe(-1); // an LSN is no Redis offset
    expect(comparePositions(c, null, undefined)).toBe(0);
    expect(newestPosition(c, ['900', null, '1000', 'x', '999'])).toBe('1000');
    expect(reached(c, '1000', '1000')).toBe(true);
    expect(reached(c, '999', '1000')).toBe(false);
    expect(reached(c, null, '1000')).toBe(false);
    expect(reached(c, '1000', null)).toBeNull();
    expect(bytesAhead(c, '1500', '1000')).toBe(500);
    expect(bytesAhead(c, '1000', '1500')).toBe(0);
    expect(bytesAhead(lsnPositions, '0/3000100', '0/3000000')).toBe(0x100);
    // MongoDB optimes count seconds: no byte distance
    expect(bytesAhead(mongoPosition, '2:200.1', '2:100.1')).toBeNull();
    expect(comparePositions(mongoPosition, '3:100.1', '2:200.1')).toBe(1);
  });
});

describe('a Redis-engine cluster', () => {
  it('fails over to the replica with the highest offset (numerically: 1000 beats 900), recording the bytes it may lose', () => {
    const sim = redisCluster('1200', { r2: '900', r3: '1000' });
    expect(chooseCandidate(sim.state, 1_000, sim.settings)).toEqual({ ok: true, node: 'r3', lostBytes: 200 });
    // (the replicas' reports in the master's death beat were begun before it: a failover
    // waits for the next ones, their final offsets; src/core/rules/candidate.ts)
    expect(sim.beat(2_000, { r1: DEAD }).types).not.toContain('failover.started');
    const d = sim.beat(2_200);
    expect(d.one('failover.started')).toMatchObject({ from: 'r1', to: 'r3', lostBytes: 200 });
  });

  it('rejects a replica more than maxLagOnFailoverBytes behind, counted in offset bytes', () => {
    const sim = redisCluster('100000', { r2: '99000', r3: '40000' }, { maxLagOnFailoverBytes: 5_000 });
    expect(chooseCandidate(sim.state, 1_000, sim.settings, 'r3')).toMatchObject({ ok: false, reason: expect.stringContaining('r3: more than maxLagOnFailoverBytes') });
    expect(chooseCandidate(sim.state, 1_000, sim.settings)).toEqual({ ok: true, node: 'r2', lostBytes: 1000 });
  });

  it('routes replicas with their lag in bytes from offsets', () => {
    const sim = redisCluster('5000', { r2: '4000', r3: '5000' });
    const t = sim.table();
    expect(t.engine).toBe('redis');
    expect(t.replicas.map((r) => [r.id, r.lagBytes, r.replayLsn])).toEqual([
      ['r2', 1000, '4000'],
      ['r3', 0, '5000'],
    ]);
  });

  it('measures what a failover lost from the old primary’s end offset against the fork offset', () => {
    const sim = redisCluster('1200', { r2: '1000', r3: '900' });
    sim.beat(2_000, { r1: { ...DEAD } });
    sim.beat(2_050); // (the replicas' final offsets)
    const op = sim.state.operation!;
    expect(op.to).toBe('r2');
    sim.report(2_100, jobResult('r2', { operationId: op.id, action: 'promote', ok: true, lsn: '1000' }));
    sim.pass(2_100);
    expect(sim.state.operation).toBeNull();
    sim.observe(2_200, obs('r1', { ...DEAD, walEnd: '1234' }));
    const d = sim.pass(2_200);
    expect(d.one('failover.loss')).toMatchObject({ operationId: op.id, node: 'r1', walEnd: '1234', forkLsn: '1000', lostBytes: 234 });
  });

  it('promotes a switchover target only once it has the old primary’s offset', () => {
    const sim = redisCluster('5000', { r2: '5000', r3: '5000' }, { switchoverDrainMs: 0 });
    sim.fold({ kind: 'command', id: 'so-1', receivedAt: 2_000, entry: { type: 'command', v: 1, id: 'so-1', action: 'switchover', to: 'r2', by: 't', at: 2_000 } });
    sim.pass(2_000);
    sim.report(2_100, jobResult('r1', { operationId: 'so-1', action: 'demote', ok: true, lsn: '10000' }));
    sim.pass(2_100);
    expect(sim.state.operation?.phase).toBe('catching-up');
    // 9999 < 10000 numerically (as strings "9999" > "10000")
    expect(sim.beat(2_200, { r2: { lsn: '9999', replayLsn: '9999' } }).types).not.toContain('promotion.requested');
    expect(sim.beat(2_300, { r2: { lsn: '10000', replayLsn: '10000' } }).one('promotion.requested')).toMatchObject({ node: 'r2' });
  });
});
