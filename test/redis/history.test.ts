/**
 * The candidate rule on replication histories (pure core, no servers): a Redis failover
 * promotes only a replica on the old master's last known `master_replid` (or the one it
 * continues), whatever its offset. Offsets on another history count other bytes.
 */
import { describe, expect, it } from 'vitest';
import { chooseCandidate, onHistory } from '../../src/core/rules/candidate.js';
import { initialState } from '../../src/core/state.js';
import { toNodeProbe } from '../../src/engines/redis/engine.js';
import { probeFromReplies } from '../../src/engines/redis/probe.js';
import { ObservationV1 } from '../../src/events/observation.js';
import { Value } from '@sinclair/typebox/value';
import { DEAD, Sim, obs } from '../unit/helpers.js';

const X = 'a'.repeat(40); // the current history
const OLD = 'b'.repeat(40); // the history before the last promotion
const STRAY = 'c'.repeat(40); // a history nothing here came from

/** r1 master on `master` (at offset 1000), replicas as given; then r1 dies. */
function crashed(master: { history: string; historyPrev?: string }, replicas: Record<string, { lsn: string; history?: string; historyPrev?: string }>): Sim {
  const sim = new Sim({}, initialState('c1', 'redis'));
  sim.observe(1_000, obs('r1', { role: 'primary', timeline: null, lsn: '1000', replayLsn: '1000', ...master }));
  for (const [id, r] of Object.entries(replicas)) sim.observe(1_000, obs(id, { timeline: null, replayLsn: r.lsn, upstream: 'r1:5432', ...r }));
  sim.settle(1_000);
  expect(sim.state.primary).toBe('r1');
  // a dead master reports no history: its last known one is what counts
  sim.observe(2_000, obs('r1', { ...DEAD }));
  return sim;
}

describe('the candidate on the current replication history', () => {
  it('keeps the dead master’s last known history in the soft state', () => {
    const sim = crashed({ history: X, historyPrev: OLD }, { r2: { lsn: '990', history: X } });
    expect(sim.state.soft.r1?.obs.history).toBeUndefined();
    expect(sim.state.soft.r1?.lastHistory).toEqual({ id: X, prev: OLD });
  });

  it('refuses a replica on another history even with the highest offset', () => {
    const sim = crashed({ history: X }, { r2: { lsn: '900', history: X }, r3: { lsn: '1000', history: STRAY } });
    expect(chooseCandidate(sim.state, 2_000, sim.settings, 'r3')).toEqual({ ok: false, reason: 'no candidate: r3: on another replication history than r1' });
    expect(chooseCandidate(sim.state, 2_000, sim.settings)).toEqual({ ok: true, node: 'r2', lostBytes: 100 });
    // (a failover waits for the replicas' reports after the master died: their final offsets)
    expect(sim.pass(2_000).types).not.toContain('failover.started');
    const d = sim.beat(2_000, { r2: { walReceiver: 'connect' }, r3: { walReceiver: 'connect' } });
    expect(d.one('failover.started')).toMatchObject({ from: 'r1', to: 'r2' });
  });

  it('refuses a replica left on an older history (a master before the last failover), and fails over to none when it is the only one', () => {
    // r1 was promoted off OLD; r3 never resynced since, and holds bytes of OLD past r1's fork (the old master's lost writes)
    const sim = crashed({ history: X, historyPrev: OLD }, { r3: { lsn: '1000', history: OLD } });
    expect(chooseCandidate(sim.state, 2_000, sim.settings)).toMatchObject({ ok: false, reason: expect.stringContaining('r3: on another replication history') });
    expect(sim.pass(2_000).types).not.toContain('failover.started');
  });

  it('accepts a replica on the master’s history after the master’s own promotion, and a node promoted off the master’s history', () => {
    // r2 followed r1 after r1's promotion: its replid is r1's, its replid2 the one before
    const a = crashed({ history: X, historyPrev: OLD }, { r2: { lsn: '995', history: X, historyPrev: OLD } });
    expect(chooseCandidate(a.state, 2_000, a.settings)).toEqual({ ok: true, node: 'r2', lostBytes: 5 });
    // r2 was promoted (a promote whose result was lost) off r1's history
    const b = crashed({ history: X }, { r2: { lsn: '995', history: 'd'.repeat(40), historyPrev: X } });
    expect(chooseCandidate(b.state, 2_000, b.settings, 'r2')).toMatchObject({ ok: true, node: 'r2' });
    expect(onHistory({ id: X, prev: OLD }, OLD, undefined)).toBe(false);
  });

  it('judges by offsets alone where histories are unknown (PostgreSQL, agents from before)', () => {
    expect(onHistory(null, STRAY, undefined)).toBe(true);
    expect(onHistory({ id: X, prev: null }, undefined, undefined)).toBe(true);
    expect(onHistory({ id: X, prev: null }, STRAY, undefined)).toBe(false);
    const sim = crashed({ history: X }, { r2: { lsn: '900' }, r3: { lsn: '1000' } });
    expect(chooseCandidate(sim.state, 2_000, sim.settings)).toMatchObject({ ok: true, node: 'r3' });
  });
});

describe('the Redis probe carries its history into the observation', () => {
  it('master_replid as history, master_replid2 as the one it continues', () => {
    const info = ['# Replication', 'role:master', 'connected_slaves:0', `master_replid:${X}`, `master_replid2:${OLD}`, 'master_repl_offset:1200', 'second_repl_offset:900'].join('\r\n');
    const p = toNodeProbe(probeFromReplies(info, ['master', 1200, []]));
    expect(p).toMatchObject({ history: X, historyPrev: OLD, lsn: '1200' });
    const fresh = toNodeProbe(probeFromReplies(info.replace(`master_replid2:${OLD}`, `master_replid2:${'0'.repeat(40)}`), ['master', 1200, []]));
    expect(fresh.history).toBe(X);
    expect(fresh.historyPrev).toBeUndefined();
  });

  it('the observation schema takes the fields, and entries without them stay valid', () => {
    const o = obs('r1', { role: 'primary' });
    expect(Value.Check(ObservationV1, o)).toBe(true);
    expect(Value.Check(ObservationV1, { ...o, history: X, historyPrev: OLD })).toBe(true);
    expect(Value.Check(ObservationV1, { ...o, history: '' })).toBe(false);
    expect(Value.Check(ObservationV1, { ...o, history: 'x'.repeat(65) })).toBe(false);
  });
});
