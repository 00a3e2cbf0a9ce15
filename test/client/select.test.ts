/** Pure parts of the client: node selection, warm-up, the breaker, consistency tokens, error kinds. */
import { describe, expect, it } from 'vitest';
import { Breaker } from '../../src/client/breaker.js';
import { ConsistencyScope, decodeToken, encodeToken } from '../../src/client/consistency.js';
import { isNodeFailure, isRecoveryConflict, provesNotRun } from '../../src/client/errors.js';
import { balance, chooseRead, warmFactor, type NodeView, type ReadRules } from '../../src/client/select.js';

const node = (id: string, over: Partial<NodeView> = {}): NodeView => ({ id, role: 'replica', healthy: true, draining: false, zone: null, lagMs: 0, lagBytes: 0, replayLsn: 100, joinedAt: 0, inflight: 0, latencyMs: null, available: true, weight: 1, ...over });
const rules = (over: Partial<ReadRules> = {}): ReadRules => ({ readPreference: 'secondaryPreferred', loadBalancing: 'round-robin', warmupMs: 0, localThresholdMs: 15, ...over });
const P = node('p', { role: 'primary' });
const seq = (xs: number[]): (() => number) => {
  let i = 0;
  return () => xs[i++ % xs.length]!;
};

describe('chooseRead', () => {
  const reps = [node('a'), node('b')];
  it('follows each read preference', () => {
    const b = { rr: 0 };
    expect(chooseRead(P, reps, rules({ readPreference: 'primary' }), 0, b, Math.random).node?.id).toBe('p');
    expect(chooseRead(null, reps, rules({ readPreference: 'primary' }), 0, b, Math.random).node).toBeNull();
    expect(chooseRead(P, reps, rules({ readPreference: 'primaryPreferred' }), 0, b, Math.random).node?.id).toBe('p');
    expect(chooseRead(null, reps, rules({ readPreference: 'primaryPreferred' }), 0, b, Math.random).node?.role).toBe('replica');
    expect(chooseRead(P, reps, rules({ readPreference: 'secondary' }), 0, b, Math.random).node?.role).toBe('replica');
    expect(chooseRead(P, [], rules({ readPreference: 'secondary' }), 0, b, Math.random).node).toBeNull();
    expect(chooseRead(P, [], rules({ readPreference: 'secondaryPreferred' }), 0, b, Math.random).node?.id).toBe('p');
  });

  it('leaves out unhealthy, draining, circuit-open and lagging replicas', () => {
    const b = { rr: 0 };
    const rs = [node('sick', { healthy: false }), node('drain', { draining: true }), node('open', { available: false }), node('slow', { lagMs: 5000, lagBytes: 1e9 }), node('ok')];
    for (let i = 0; i < 5; i++) expect(chooseRead(P, rs, rules({ maxLagMs: 1000 }), 0, b, Math.random).node?.id).toBe('ok');
    expect(chooseRead(P, rs, rules({ maxLagBytes: 10 }), 0, b, Math.random).node?.id).toBe('ok');
    // an unknown lag never passes a lag limit
    expect(chooseRead(P, [node('x', { lagMs: null })], rules({ maxLagMs: 1000 }), 0, b, Math.random).node?.id).toBe('p');
    // a draining primary takes no reads either
    expect(chooseRead(node('p', { role: 'primary', draining: true }), [], rules({ readPreference: 'primary' }), 0, b, Math.random).node).toBeNull();
  });

  it('read-your-writes: only replicas that replayed the mark; otherwise the lagging ones are named for a check', () => {
    const b = { rr: 0 };
    const rs = [node('a', { replayLsn: 50 }), node('b', { replayLsn: 200 })];
    for (let i = 0; i < 4; i++) expect(chooseRead(P, rs, rules({ minLsn: 150 }), 0, b, Math.random).node?.id).toBe('b');
    const none = chooseRead(P, rs, rules({ minLsn: 500 }), 0, b, Math.random);
    expect(none.node).toBeNull();
    expect(none.node === null && none.lagging.map((n) => n.id)).toEqual(['a', 'b']);
  });

  it('nearest: same zone first, then the latency window', () => {
    const b = { rr: 0 };
    const rs = [node('far', { zone: 'z2', latencyMs: 0.1 }), node('near', { zone: 'z1', latencyMs: 5 })];
    expect(chooseRead({ ...P, zone: 'z3', latencyMs: 0.1 }, rs, rules({ readPreference: 'nearest', zone: 'z1' }), 0, b, Math.random).node?.id).toBe('near');
    const lat = [node('slow', { latencyMs: 40 }), node('fast', { latencyMs: 1 })];
    for (let i = 0; i < 4; i++) expect(chooseRead(null, lat, rules({ readPreference: 'nearest' }), 0, b, Math.random).node?.id).toBe('fast');
  });

  it('a preferred node is used when it qualifies', () => {
    const b = { rr: 0 };
    expect(chooseRead(P, [node('a'), node('b')], rules({ preferredNode: 'b' }), 0, b, Math.random).node?.id).toBe('b');
    expect(chooseRead(P, [node('a'), node('b', { healthy: false })], rules({ preferredNode: 'b' }), 0, b, Math.random).node?.id).toBe('a');
  });
});

describe('balance', () => {
  const rs = [node('a'), node('b'), node('c')];
  it('round-robin cycles', () => {
    const b = { rr: 0 };
    expect([0, 1, 2, 3].map(() => balance(rs, 'round-robin', 0, 0, b, Math.random).id)).toEqual(['a', 'b', 'c', 'a']);
  });
  it('least-connections and least-lag pick the lowest, ties in turn', () => {
    const b = { rr: 0 };
    const busy = [node('a', { inflight: 3 }), node('b', { inflight: 1 }), node('c', { inflight: 1 })];
    expect(new Set([0, 1, 2, 3].map(() => balance(busy, 'least-connections', 0, 0, b, Math.random).id))).toEqual(new Set(['b', 'c']));
    const lag = [node('a', { lagBytes: 10 }), node('b', { lagBytes: 0 }), node('c', { lagBytes: 99 })];
    expect(balance(lag, 'least-lag', 0, 0, b, Math.random).id).toBe('b');
  });
  it('weighted and random follow the random source', () => {
    const w = [node('a', { weight: 1 }), node('b', { weight: 3 })];
    expect(balance(w, 'weighted', 0, 0, { rr: 0 }, () => 0.2).id).toBe('a');
    expect(balance(w, 'weighted', 0, 0, { rr: 0 }, () => 0.3).id).toBe('b');
    expect(balance(rs, 'random', 0, 0, { rr: 0 }, () => 0.99).id).toBe('c');
  });
  it('warm-up: a replica that just joined gets a share growing with its age', () => {
    expect(warmFactor(node('n', { joinedAt: 1000 }), 1000, 10_000)).toBe(0.05);
    expect(warmFactor(node('n', { joinedAt: 0 }), 5000, 10_000)).toBe(0.5);
    expect(warmFactor(node('n', { joinedAt: 0 }), 20_000, 10_000)).toBe(1);
    const ws = [node('old', { joinedAt: -100_000 }), node('new', { joinedAt: 0 })];
    const rnd = seq([0.1, 0.3, 0.5, 0.7, 0.9, 0.95, 0.97, 0.99]);
    const picks = Array.from({ length: 8 }, () => balance(ws, 'round-robin', 1000, 10_000, { rr: 0 }, rnd).id);
    // at 10 % of its warm-up the new node's share is 0.1 / 1.1: only draws ≥ 1/1.1 go to it
    expect(picks.filter((x) => x === 'new').length).toBe(3);
    const later = Array.from({ length: 8 }, () => balance(ws, 'round-robin', 5000, 10_000, { rr: 0 }, rnd).id);
    // at half of it, 0.5 / 1.5: draws ≥ 2/3
    expect(later.filter((x) => x === 'new').length).toBe(5);
  });
});

describe('Breaker', () => {
  it('opens after N failures, lets one probe through when half-open, closes on its success, reopens on its failure', () => {
    const b = new Breaker({ failures: 2, openMs: 100 });
    expect(b.failure(0)).toBe(false);
    expect(b.failure(1)).toBe(true);
    expect(b.allows(50)).toBe(false);
    expect(b.allows(101)).toBe(true);
    b.begin();
    expect(b.state).toBe('half-open');
    expect(b.allows(102)).toBe(false);
    expect(b.failure(103)).toBe(true);
    expect(b.allows(150)).toBe(false);
    expect(b.allows(204)).toBe(true);
    b.begin();
    expect(b.success()).toBe(true);
    expect(b.state).toBe('closed');
  });

  it('as the pool drives it (peek to choose, begin to send): the first statement after openMs is the one probe, its failure opens the circuit again', () => {
    const b = new Breaker({ failures: 2, openMs: 100 });
    b.failure(0);
    expect(b.failure(1)).toBe(true);
    expect(b.peek(50)).toBe(false);
    expect(b.peek(101)).toBe(true);
    // the probe is sent: it claims the half-open slot, no other statement goes there meanwhile
    expect(b.begin(101)).toBe(true);
    expect(b.state).toBe('half-open');
    expect(b.peek(102)).toBe(false);
    // it fails: open again, for another openMs from now
    expect(b.failure(103)).toBe(true);
    expect(b.state).toBe('open');
    expect(b.peek(150)).toBe(false);
    expect(b.peek(204)).toBe(true);
    expect(b.begin(204)).toBe(true);
    expect(b.success()).toBe(true);
    expect(b.state).toBe('closed');
    expect(b.begin(205)).toBe(false);
    // a statement sent without begin (a pinned session's lease) that fails past openMs re-opens it too
    b.failure(300);
    expect(b.failure(301)).toBe(true);
    expect(b.peek(450)).toBe(true);
    expect(b.failure(450)).toBe(true);
    expect(b.peek(500)).toBe(false);
  });
});

describe('consistency tokens', () => {
  it('carry the mark to another scope, expire, and refuse foreign or malformed tokens', () => {
    const s = new ConsistencyScope();
    s.wrote(0x3000060, 1000, 30_000);
    const tok = encodeToken('c1', s, 2000);
    expect(decodeToken('c1', tok, 3000).required(3000)).toBe(0x3000060);
    expect(decodeToken('c1', tok, 40_000).required(40_000)).toBeNull();
    expect(() => decodeToken('c2', tok, 3000)).toThrow(/cluster "c1"/);
    expect(() => decodeToken('c1', 'not-a-token', 3000)).toThrow(/switchyard token|malformed/);
    // the mark only moves forward
    s.wrote(10, 1500, 30_000);
    expect(s.required(1500)).toBe(0x3000060);
  });
});

describe('error kinds', () => {
  it('tells node failures, proof of not having run, and recovery conflicts apart', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED', syscall: 'connect' });
    expect(isNodeFailure(refused)).toBe(true);
    expect(provesNotRun(refused)).toBe(true);
    const reset = Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET', syscall: 'read' });
    expect(isNodeFailure(reset)).toBe(true);
    expect(provesNotRun(reset)).toBe(false);
    expect(provesNotRun(Object.assign(new Error('cannot execute INSERT in a read-only transaction'), { code: '25006' }))).toBe(true);
    expect(provesNotRun(Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' }))).toBe(false);
    expect(isRecoveryConflict(Object.assign(new Error('canceling statement due to conflict with recovery'), { code: '40001' }))).toBe(true);
    expect(isNodeFailure(Object.assign(new Error('syntax error'), { code: '42601' }))).toBe(false);
  });
});
