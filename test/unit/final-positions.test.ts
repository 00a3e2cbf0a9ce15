/**
 * A Redis failover picks its candidate on positions reported after the master stopped
 * (src/core/rules/candidate.ts, unsettledPositions): the replicas' reports from before
 * the kill are a probe interval old, and comparing them promoted a replica that had
 * none of the writes `WAIT 1` had acknowledged (test/redis/failover.test.ts, ioredis
 * through a kill -9: the replica just full-resynced reported the sync's offset, the
 * other one was 10 KB further, both reports from before the writes).
 */
import { describe, expect, it } from 'vitest';
import { initialState } from '../../src/core/state.js';
import { unsettledPositions } from '../../src/core/rules/candidate.js';
import type { Observation } from '../../src/events/observation.js';
import { CLUSTER, DEAD, Sim, obs } from './helpers.js';

const replica = (node: string, offset: number, patch: Partial<Observation> = {}): Observation =>
  obs(node, { host: node, lsn: String(offset), replayLsn: String(offset), timeline: null, upstream: 'r1:5432', history: 'h1', ...patch });

/** r1 master, r2 and r3 streaming from it, everyone at offset 14384 as last reported. */
function redisCluster(engine: 'redis' | 'postgres' = 'redis', r3: Partial<Observation> = {}): Sim {
  const sim = new Sim({ cooldownMs: 0 }, initialState(CLUSTER, engine));
  const primary = obs('r1', { role: 'primary', host: 'r1', lsn: '14384', replayLsn: '14384', timeline: null, history: 'h1' });
  sim.observe(1_000, primary, replica('r2', 14384), replica('r3', 14384, r3));
  sim.settle(1_000);
  expect(sim.state.primary).toBe('r1');
  return sim;
}

describe('failover on final positions (Redis: writes acknowledged by WAIT)', () => {
  it('waits for reports begun after the master died, then promotes the replica truly furthest ahead', () => {
    const sim = redisCluster();
    // kill -9: the master's agent reports at once; r2 and r3 last reported before the writes
    sim.observe(1_100, obs('r1', { ...DEAD, host: 'r1', history: undefined }));
    const d = sim.pass(1_100);
    // (the old code failed over here, to r2: a tie at 14384 broken by name)
    expect(d.types).toEqual(['node.health-changed']);
    expect(unsettledPositions(sim.state, 1_100, sim.settings)).toEqual(['r2', 'r3']);
    // r3's next report: cut off from the dead master, at its final offset
    sim.observe(1_150, replica('r3', 25019, { walReceiver: 'connect' }));
    expect(sim.pass(1_150).types).not.toContain('failover.started');
    expect(unsettledPositions(sim.state, 1_150, sim.settings)).toEqual(['r2']);
    // r2's report was begun before the kill (still streaming): not final yet
    sim.observe(1_160, replica('r2', 14384));
    expect(sim.pass(1_160).types).not.toContain('failover.started');
    // its next one was begun after the death was reported
    sim.observe(1_300, replica('r2', 14384));
    const started = sim.pass(1_300).one('failover.started');
    expect(started).toMatchObject({ from: 'r1', to: 'r3' });
  });

  it('a report that arrived before the death says nothing, even cut off', () => {
    const sim = redisCluster('redis', { walReceiver: 'connect' });
    sim.observe(1_100, obs('r1', { ...DEAD, host: 'r1', history: undefined }));
    sim.pass(1_100);
    expect(unsettledPositions(sim.state, 1_100, sim.settings)).toEqual(['r2', 'r3']);
  });

  it('waits at most agentTimeoutMs from the death: then the reports are judged as they are', () => {
    const sim = redisCluster();
    sim.observe(1_100, obs('r1', { ...DEAD, host: 'r1', history: undefined }));
    expect(sim.pass(1_100).types).toEqual(['node.health-changed']);
    // r2 and r3 keep reporting as probes begun before the kill would (streaming, same seq order)
    sim.observe(3_000, replica('r3', 20000, { bootId: 'r3-boot-2' }));
    expect(sim.pass(3_000).types).not.toContain('failover.started');
    expect(sim.pass(4_099).types).not.toContain('failover.started');
    expect(sim.pass(4_100).one('failover.started')).toMatchObject({ to: 'r3' });
  });

  it('a replica that cannot be promoted (priority 0) or is down is not waited for', () => {
    const sim = redisCluster();
    sim.observe(1_050, replica('r2', 14384, { priority: 0 }));
    sim.settle(1_050);
    sim.observe(1_100, obs('r1', { ...DEAD, host: 'r1', history: undefined }), replica('r3', 14400, { walReceiver: 'connect' }));
    expect(sim.pass(1_100).one('failover.started')).toMatchObject({ to: 'r3' });
  });

  it('PostgreSQL fails over at once, as before (its acknowledgements are the synchronous mode the core keeps)', () => {
    const sim = redisCluster('postgres');
    sim.observe(1_100, obs('r1', { ...DEAD, host: 'r1' }));
    expect(sim.pass(1_100).types).toContain('failover.started');
  });
});
