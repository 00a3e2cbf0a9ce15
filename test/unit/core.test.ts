import { describe, expect, it } from 'vitest';
import { chooseCandidate, decide, primaryVerdict } from '../../src/core/decide.js';
import { evolve, fold } from '../../src/core/evolve.js';
import { routingTable } from '../../src/core/routing.js';
import { DEFAULT_SETTINGS, withDefaults } from '../../src/core/settings.js';
import { initialState, type ClusterState, type CoreEvent } from '../../src/core/state.js';
import type { JournalEntry } from '../../src/events/journal.js';
import type { Observation } from '../../src/events/observation.js';
import { DEAD, PORT, Sim, addr, given, healthyCluster, jobResult, journaled, obs, seen, unreachable } from './helpers.js';

const S = DEFAULT_SETTINGS;

/** A healthy pg1/pg2/pg3 cluster whose primary crashed at t=2000 (failover fo-1 → pg2 started). */
function crashed(): Sim {
  const sim = healthyCluster({ primary: { lsn: '0/3000000' }, replicas: { pg2: { lsn: '0/2FF0000' }, pg3: { lsn: '0/2F00000' } } });
  const d = sim.beat(2_000, { pg1: DEAD });
  expect(d.types).toContain('failover.started');
  return sim;
}

/** pg2's agent reports it promoted (role primary, new timeline) */
const PROMOTED = { role: 'primary' as const, timeline: 2, upstream: null, walReceiver: null, replayDelayMs: null, standbys: [] };

describe('bootstrap', () => {
  it('registers reporting nodes first, then adopts the only one reporting primary, then journals health', () => {
    const sim = new Sim();
    sim.observe(1_000, obs('pg1', { role: 'primary' }), obs('pg2'));

    const p1 = sim.pass(1_000);
    expect(p1.types).toEqual(['node.registered', 'node.registered']);
    expect(sim.state.primary).toBeNull();

    const p2 = sim.pass(1_000);
    expect(p2.one('node.role-changed')).toMatchObject({ node: 'pg1', role: 'primary' });
    expect(sim.state.primary).toBe('pg1');
    expect(sim.state.nodes.pg1?.role).toBe('primary');

    const p3 = sim.pass(1_000);
    expect(p3.of('node.health-changed').map((e) => [e.node, e.healthy])).toEqual([
      ['pg1', true],
      ['pg2', true],
    ]);
    expect(sim.pass(1_000).all).toEqual([]);
    expect(sim.table()).toMatchObject({ writable: true, primary: { id: 'pg1', host: 'pg1', port: 5432 } });
  });

  it('given/when: a registered node reporting primary is adopted in one pass', () => {
    const d = given([
      journaled(900, { type: 'node.registered', node: 'pg1', host: 'pg1', port: 5432, priority: 100 }),
      seen(1_000, obs('pg1', { role: 'primary' })),
    ]).when(1_000);
    expect(d.all).toEqual([{ type: 'append', entry: expect.objectContaining({ type: 'node.role-changed', node: 'pg1', role: 'primary' }) }]);
  });

  it('does not adopt a claimant whose agent is silent or who is unreachable', () => {
    const reg = journaled(900, { type: 'node.registered', node: 'pg1', host: 'pg1', port: 5432, priority: 100 });
    expect(given([reg, seen(1_000, obs('pg1', { role: 'primary' }))]).when(1_000 + S.agentTimeoutMs + 1).types).not.toContain('node.role-changed');
    expect(given([reg, seen(1_000, obs('pg1', { role: 'primary', reachable: false, error: 'timeout' }))]).when(1_000).types).not.toContain('node.role-changed');
  });

  it('two claimants: failover.blocked (once), no adoption, nothing writable', () => {
    const sim = new Sim();
    sim.observe(1_000, obs('pg1', { role: 'primary' }), obs('pg2', { role: 'primary' }), obs('pg3'));
    sim.pass(1_000);
    const d = sim.pass(1_000);
    expect(d.types).not.toContain('node.role-changed');
    const blocked = d.one('failover.blocked');
    expect(blocked.primary).toBeNull();
    expect(blocked.reason).toContain('pg1, pg2');
    expect(blocked.evidence.map((e) => e.node).sort()).toEqual(['pg1', 'pg2']);
    expect(sim.state.primary).toBeNull();

    expect(sim.pass(1_500).types).not.toContain('failover.blocked');
    expect(sim.beat(2_000).types).not.toContain('failover.blocked');
    expect(sim.state.primary).toBeNull();
    expect(sim.table()).toMatchObject({ writable: false, primary: null });

    // one of them steps down: the other is adopted
    const after = sim.beat(3_000, { pg2: { role: 'replica', upstream: addr('pg1'), walReceiver: 'streaming' } });
    expect(after.one('node.role-changed')).toMatchObject({ node: 'pg1', role: 'primary' });
  });
});

describe('registration', () => {
  it('registers every reporting node with its address and priority, once', () => {
    const d = given([seen(1_000, obs('pg1', { role: 'primary' })), seen(1_000, obs('pg7', { host: '10.0.0.7', port: 6543, priority: 5 }))]).when(1_000);
    expect(d.of('node.registered')).toEqual([
      { type: 'node.registered', node: 'pg1', host: 'pg1', port: 5432, priority: 100 },
      { type: 'node.registered', node: 'pg7', host: '10.0.0.7', port: 6543, priority: 5 },
    ]);
    const sim = healthyCluster();
    expect(sim.beat(2_000).types).toEqual([]);
  });

  it('re-registers a node whose port or priority changed, keeping its role and health', () => {
    const sim = healthyCluster();
    const gen = sim.state.generation;
    const d = sim.beat(2_000, { pg2: { port: 5433 } });
    expect(d.one('node.registered')).toEqual({ type: 'node.registered', node: 'pg2', host: 'pg2', port: 5433, priority: 100 });
    expect(sim.state.nodes.pg2).toMatchObject({ port: 5433, role: 'replica', healthy: true });
    expect(sim.state.generation).toBeGreaterThan(gen);
    expect(sim.table().replicas.find((r) => r.id === 'pg2')?.port).toBe(5433);
    expect(sim.beat(3_000).types).toEqual([]);

    expect(sim.beat(4_000, { pg3: { priority: 0 } }).one('node.registered')).toMatchObject({ node: 'pg3', priority: 0 });
    expect(sim.state.nodes.pg3?.priority).toBe(0);
  });

  it('re-registering the primary at a new address moves the routing table', () => {
    const sim = healthyCluster();
    sim.beat(2_000, { pg1: { host: '10.1.1.1' } });
    expect(sim.table().primary).toEqual({ id: 'pg1', host: '10.1.1.1', port: 5432 });
  });
});

describe('health', () => {
  it('journals a replica that stops streaming, and its recovery', () => {
    const sim = healthyCluster();
    const d = sim.beat(2_000, { pg2: { walReceiver: 'waiting' } });
    expect(d.one('node.health-changed')).toMatchObject({ node: 'pg2', healthy: false, reason: expect.stringContaining('not streaming') });
    expect(sim.table().replicas.find((r) => r.id === 'pg2')?.healthy).toBe(false);
    expect(sim.beat(3_000).types).toEqual([]); // not again
    expect(sim.beat(4_000, { pg2: { walReceiver: 'streaming' } }).one('node.health-changed')).toMatchObject({ node: 'pg2', healthy: true });
  });

  it('journals a replica whose agent goes silent, after agentTimeoutMs and not before', () => {
    const sim = healthyCluster(); // everyone reported at 1000
    sim.beat(2_000, {}, ['pg2']); // pg2 last heard at 1000
    expect(sim.beat(1_000 + S.agentTimeoutMs, {}, ['pg2']).types).toEqual([]);
    const d = sim.beat(1_000 + S.agentTimeoutMs + 1, {}, ['pg2']);
    expect(d.one('node.health-changed')).toEqual({ type: 'node.health-changed', node: 'pg2', healthy: false, reason: 'agent silent' });
    expect(d.jobs).toEqual([]); // no follow job for a node we cannot hear
  });

  it('uses the agentTimeoutMs setting', () => {
    const sim = healthyCluster({ settings: { agentTimeoutMs: 200 } });
    expect(sim.beat(1_201, {}, ['pg3']).one('node.health-changed')).toMatchObject({ node: 'pg3', healthy: false });
  });

  it('journals a replica that follows another upstream, and one that reports an unknown role', () => {
    const sim = healthyCluster();
    const d = sim.beat(2_000, { pg2: { upstream: 'pg9:5432' }, pg3: { role: 'unknown' } });
    expect(d.of('node.health-changed').map((e) => [e.node, e.healthy, e.reason])).toEqual([
      ['pg2', false, 'follows pg9:5432, not the primary'],
      ['pg3', false, 'role unknown'],
    ]);
  });
});

describe('crash of the primary', () => {
  it('fails over at once to the replica with the highest LSN, with evidence and lost bytes', () => {
    const sim = healthyCluster({ primary: { lsn: '0/3000000' }, replicas: { pg2: { lsn: '0/2FF0000' }, pg3: { lsn: '0/2F00000' } } });
    const d = sim.beat(2_000, { pg1: DEAD });

    expect(d.types).toEqual(['node.health-changed', 'failover.started', 'promotion.requested']);
    expect(d.one('node.health-changed')).toMatchObject({ node: 'pg1', healthy: false, reason: 'process exited' });
    const started = d.one('failover.started');
    expect(started).toMatchObject({ operationId: 'fo-1', kind: 'failover', from: 'pg1', to: 'pg2', manual: false, reason: 'postmaster exited' });
    // the dead primary's newest observation has no LSN: its last known one (0/3000000) counts
    expect(started.lostBytes).toBe(0x3000000 - 0x2ff0000);
    expect(started.evidence.map((e) => e.node)).toEqual(['pg1', 'pg2', 'pg3']);
    expect(started.evidence[0]).toMatchObject({ node: 'pg1', reachable: false, process: 'dead', error: 'refused', receivedAt: 2_000, silentMs: 0 });
    expect(started.evidence[1]).toMatchObject({ node: 'pg2', reachable: true, role: 'replica', lsn: '0/2FF0000' });
    expect(d.one('promotion.requested')).toMatchObject({ operationId: 'fo-1', node: 'pg2' });
    expect(d.jobs).toEqual([{ node: 'pg2', action: 'promote', operationId: 'fo-1' }]);

    expect(sim.state.operation).toMatchObject({ id: 'fo-1', from: 'pg1', to: 'pg2', phase: 'promoting', startedAt: 2_000 });
    expect(sim.state.history.at(-1)).toMatchObject({ id: 'fo-1', outcome: 'running', lostBytes: 0x10000 });
    expect(sim.table()).toMatchObject({ writable: false, primary: null });
  });

  it('connection refused is definitive too, and refusedFailAfterMs delays it', () => {
    expect(healthyCluster().beat(2_000, { pg1: unreachable('refused') }).types).toContain('failover.started');

    const sim = healthyCluster({ settings: { refusedFailAfterMs: 1_000 } });
    expect(sim.beat(2_000, { pg1: DEAD }).types).not.toContain('failover.started');
    expect(sim.beat(2_999).types).not.toContain('failover.started');
    expect(sim.beat(3_000).types).toContain('failover.started');
  });

  it('does not start a second failover while one is in flight', () => {
    const sim = crashed();
    expect(sim.beat(3_000).types).toEqual([]);
    expect(sim.state.opSeq).toBe(1);
  });
});

describe('hang of the primary', () => {
  it('waits failAfterMs of continuous unreachability (timeout) before failing over', () => {
    const sim = healthyCluster();
    const first = sim.beat(2_000, { pg1: unreachable('timeout') });
    expect(first.one('node.health-changed')).toMatchObject({ node: 'pg1', healthy: false, reason: 'unreachable: timeout' });
    expect(first.types).not.toContain('failover.started');
    expect(sim.table()).toMatchObject({ writable: false, primary: null });

    for (let t = 3_000; t < 2_000 + S.failAfterMs; t += 1_000) expect(sim.beat(t).types).toEqual([]);
    expect(sim.peek(2_000 + S.failAfterMs - 1).types).toEqual([]);

    const d = sim.beat(2_000 + S.failAfterMs);
    expect(d.one('failover.started')).toMatchObject({ from: 'pg1', to: 'pg2', deposed: 'pg1', reason: expect.stringContaining('timeout') });
    // its agent is alive: the old primary is fenced before anything is promoted
    expect(d.jobs).toEqual([{ node: 'pg1', action: 'fence', operationId: 'fo-1' }]);
  });

  it('a primary that answers again resets the clock', () => {
    const sim = healthyCluster();
    sim.beat(2_000, { pg1: unreachable('timeout') });
    sim.beat(4_000);
    const back = sim.beat(5_000, { pg1: { reachable: true, error: undefined, process: 'running', role: 'primary', lsn: '0/3000000', timeline: 1 } });
    expect(back.one('node.health-changed')).toMatchObject({ node: 'pg1', healthy: true });
    sim.beat(6_000, { pg1: unreachable('timeout') });
    expect(sim.beat(2_000 + S.failAfterMs + 1_000).types).not.toContain('failover.started'); // 7000: only 1 s into the new streak
    expect(sim.beat(6_000 + S.failAfterMs).types).toContain('failover.started');
  });
});

describe('silent primary agent', () => {
  const reaches = (reachable: boolean) => ({ peer: reachable ? { node: 'pg1', reachable: true } : { node: 'pg1', reachable: false, error: 'timeout' as const } });

  it('peers that still reach the primary: no failover, the primary stays healthy and routed; the silent agent is journaled once', () => {
    const sim = healthyCluster();
    for (const t of [2_000, 3_000, 4_500, 6_000, 9_000]) {
      const d = sim.beat(t, { pg2: reaches(true), pg3: reaches(true) }, ['pg1']);
      if (t === 4_500) expect(d.one('node.health-changed')).toMatchObject({ node: 'pg1', healthy: true, reason: 'agent silent; peers reach it' });
      else expect(d.types).toEqual([]);
    }
    expect(sim.state.nodes.pg1?.healthy).toBe(true);
    expect(sim.state.nodes.pg1?.healthReason).toBe('agent silent; peers reach it');
    expect(sim.table()).toMatchObject({ writable: true, primary: { id: 'pg1' } });
  });

  it('a majority of peers that cannot reach it (timeouts): failover only once the primary’s lease is over', () => {
    const sim = healthyCluster();
    sim.beat(2_000, { pg2: reaches(false), pg3: reaches(false) }, ['pg1']);
    expect(sim.beat(1_000 + S.agentTimeoutMs, {}, ['pg1']).types).toEqual([]); // not silent yet
    const silent = sim.beat(1_000 + S.agentTimeoutMs + 1, {}, ['pg1']);
    expect(silent.one('node.health-changed')).toMatchObject({ node: 'pg1', healthy: false, reason: 'agent silent' });
    // it may be partitioned and still up: it fences itself fenceAfterMs after losing Redis
    expect(silent.types).not.toContain('failover.started');
    expect(primaryVerdict(sim.state, 1_000 + S.fenceAfterMs + S.fenceMarginMs - 1, S)).toMatchObject({ failed: false, reason: expect.stringContaining('lease') });
    const d = sim.beat(1_000 + S.fenceAfterMs + S.fenceMarginMs, {}, ['pg1']);
    expect(d.one('failover.started')).toMatchObject({ from: 'pg1', reason: expect.stringContaining('lease over') });
  });

  it('a majority of peers get connection refused: failover after peerRefusedAfterMs, no lease wait', () => {
    const sim = healthyCluster();
    const refused = { peer: { node: 'pg1', reachable: false, error: 'refused' as const } };
    expect(sim.beat(1_000 + S.peerRefusedAfterMs, { pg2: refused, pg3: refused }, ['pg1']).types).not.toContain('failover.started');
    const d = sim.beat(1_000 + S.peerRefusedAfterMs + 1, {}, ['pg1']);
    expect(d.one('failover.started')).toMatchObject({ from: 'pg1', reason: expect.stringContaining('connection refused') });
  });

  it('one refused peer out of two is no majority', () => {
    const sim = healthyCluster();
    sim.beat(2_000, { pg2: { peer: { node: 'pg1', reachable: false, error: 'refused' } }, pg3: reaches(true) }, ['pg1']);
    expect(sim.beat(30_000, {}, ['pg1']).types).not.toContain('failover.started');
  });

  it('less than a majority: no failover (but no longer routed as writable)', () => {
    const sim = healthyCluster();
    const d = sim.beat(5_000, { pg2: reaches(false) }, ['pg1']);
    expect(d.types).not.toContain('failover.started');
    expect(primaryVerdict(sim.state, 5_000, S)).toMatchObject({ failed: false });
    expect(sim.table().writable).toBe(false);
  });

  it('peer views of another node, and views from silent peers, do not count', () => {
    const sim = healthyCluster();
    sim.beat(2_000, { pg2: { peer: { node: 'pg9', reachable: false } }, pg3: reaches(false) }, ['pg1']);
    expect(sim.beat(4_500, {}, ['pg1']).types).not.toContain('failover.started');
    // pg3 goes silent as well: only pg2 (about pg9) is left
    sim.beat(5_000, { pg2: reaches(false) }, ['pg1', 'pg3']);
    expect(sim.beat(8_000, {}, ['pg1', 'pg3']).types).not.toContain('failover.started');
  });
});

describe('candidate rules', () => {
  /** the state right after pg1 (at 0/3000000) died, replicas as given */
  function afterCrash(replicas: Record<string, Partial<Observation>>, settings = {}): { sim: Sim; state: ClusterState } {
    const sim = healthyCluster({ replicas, settings });
    sim.observe(2_000, obs('pg1', DEAD));
    return { sim, state: sim.state };
  }
  const pick = (replicas: Record<string, Partial<Observation>>, settings = {}) => chooseCandidate(afterCrash(replicas, settings).state, 2_000, withDefaults(settings));

  it('excludes priority 0', () => {
    expect(pick({ pg2: { priority: 0, lsn: '0/3000000' }, pg3: { lsn: '0/2FFFF00' } })).toMatchObject({ ok: true, node: 'pg3', lostBytes: 0x100 });
    const none = pick({ pg2: { priority: 0 } });
    expect(none).toEqual({ ok: false, reason: 'no candidate: pg2: priority 0' });
  });

  it('excludes replicas further behind than maxLagOnFailoverBytes (against the dead primary’s last LSN)', () => {
    const none = pick({ pg2: { lsn: '0/1000000' } });
    expect(none.ok).toBe(false);
    expect(none.ok ? "" : none.reason).toContain("pg2: more than maxLagOnFailoverBytes");
    // exactly at the limit is allowed
    expect(pick({ pg2: { lsn: '0/2F00000' } })).toMatchObject({ ok: true, node: 'pg2', lostBytes: 0x100000 });
    // a newer timeline does not excuse the lag
    expect(pick({ pg2: { lsn: '0/1000000', timeline: 2 }, pg3: { lsn: '0/2FFF000' } }, {})).toMatchObject({ ok: true, node: 'pg3' });
    expect(pick({ pg2: { lsn: '0/2FFF000' } }, { maxLagOnFailoverBytes: 100 }).ok).toBe(false);
  });

  it('breaks ties by priority (higher first), then id', () => {
    expect(pick({ pg2: {}, pg3: { priority: 200 } })).toMatchObject({ node: 'pg3' });
    expect(pick({ pg3: {}, pg2: {} })).toMatchObject({ node: 'pg2' });
    expect(pick({ pgb: { priority: 7 }, pga: { priority: 7 } })).toMatchObject({ node: 'pga' });
    // but LSN comes before priority
    expect(pick({ pg2: { lsn: '0/2FFFFFF' }, pg3: { lsn: '0/2FFFFFE', priority: 1000 } })).toMatchObject({ node: 'pg2', lostBytes: 1 });
  });

  it('a newer timeline beats a higher LSN', () => {
    expect(pick({ pg2: { lsn: '0/3000000' }, pg3: { lsn: '0/2FFF000', timeline: 2 } })).toMatchObject({ node: 'pg3' });
  });

  it('excludes silent, unreachable, and non-replica nodes', () => {
    const sim = healthyCluster({ replicas: { pg2: {}, pg3: {}, pg4: {}, pg5: {} } }); // all heard at 1000
    const later = 1_000 + S.agentTimeoutMs + 1; // pg2 says nothing more: silent
    sim.observe(later, obs('pg1', DEAD), obs('pg3', unreachable('timeout')), obs('pg4', { role: 'primary' }), obs('pg5', { process: 'stopped' }));
    const c = chooseCandidate(sim.state, later, S);
    expect(c).toEqual({ ok: false, reason: 'no candidate: pg2: agent silent; pg3: unreachable; pg4: role primary; pg5: unreachable' });
  });

  it('no candidate: failover.blocked journaled once, nothing routed', () => {
    const sim = healthyCluster({ replicas: { pg2: { priority: 0 } } });
    const d = sim.beat(2_000, { pg1: DEAD });
    expect(d.types).not.toContain('failover.started');
    const b = d.one('failover.blocked');
    expect(b.primary).toBe('pg1');
    expect(b.reason).toContain('pg2: priority 0');
    expect(b.evidence.map((e) => e.node)).toEqual(['pg1', 'pg2']);
    expect(sim.state.blocked).toBe(b.reason);
    for (const t of [2_500, 3_000, 4_000]) expect(sim.beat(t).types).toEqual([]);
    expect(sim.entries('failover.blocked')).toHaveLength(1);
    expect(sim.table()).toMatchObject({ writable: false, primary: null });
  });

  it('no candidate during a hang: still journaled once, though the outage keeps growing', () => {
    const sim = healthyCluster({ replicas: { pg2: { priority: 0 } } });
    sim.beat(2_000, { pg1: unreachable('timeout') });
    for (let t = 3_000; t <= 12_000; t += 1_000) sim.beat(t);
    expect(sim.entries('failover.blocked')).toHaveLength(1);
  });

  it('a blocked failover goes ahead once a candidate appears', () => {
    const sim = healthyCluster({ replicas: { pg2: { priority: 0 } } });
    sim.beat(2_000, { pg1: DEAD });
    expect(sim.state.blocked).not.toBeNull();
    // the new priority is journaled in this pass, and counts from the next
    expect(sim.beat(3_000, { pg2: { priority: 10 } }).types).toEqual(['node.registered']);
    const d = sim.pass(3_000);
    // a restart in place was asked meanwhile: it may have started pg1 since, so it is fenced first
    expect(d.types).toEqual(['failover.started', 'fence.requested']);
    expect(sim.state.blocked).toBeNull();
  });
});

describe('completing a failover', () => {
  function expectCompleted(sim: Sim, d: ReturnType<Sim['pass']>, genBefore: number): void {
    expect(d.one('promotion.succeeded')).toMatchObject({ operationId: 'fo-1', node: 'pg2' });
    expect(d.of('follow.requested').map((e) => [e.node, e.action, e.upstream])).toEqual([
      ['pg1', 'rejoin', 'pg2'],
      ['pg3', 'follow', 'pg2'],
    ]);
    const upstream = { id: 'pg2', host: 'pg2', port: 5432 };
    expect(d.jobs).toEqual([
      { node: 'pg1', action: 'rejoin', operationId: 'fo-1', upstream },
      { node: 'pg3', action: 'follow', operationId: 'fo-1', upstream },
    ]);
    expect(d.one('failover.completed')).toMatchObject({ operationId: 'fo-1', outcome: 'success' });
    expect(d.types.at(-1)).toBe('failover.completed');

    expect(sim.state.operation).toBeNull();
    expect(sim.state.primary).toBe('pg2');
    expect(sim.state.nodes.pg1).toMatchObject({ role: 'replica', healthy: false });
    expect(sim.state.nodes.pg2).toMatchObject({ role: 'primary', healthy: true, pending: null });
    expect(sim.state.nodes.pg3?.pending).toMatchObject({ operationId: 'fo-1', action: 'follow', upstream: 'pg2' });
    expect(sim.state.history.at(-1)).toMatchObject({ id: 'fo-1', outcome: 'success' });
    const t = sim.table();
    expect(t).toMatchObject({ writable: true, primary: upstream });
    expect(t.generation).toBeGreaterThan(genBefore);
    expect(t.replicas.map((r) => r.id)).toEqual(['pg1', 'pg3']);
  }

  it('on the promote job’s ok result', () => {
    const sim = crashed();
    const gen = sim.table().generation;
    sim.report(2_400, jobResult('pg2', { operationId: 'fo-1', action: 'promote', ok: true }));
    const d = sim.pass(2_500);
    expectCompleted(sim, d, gen);
    expect(d.one('failover.completed').durationMs).toBe(500);
  });

  it('on seeing the candidate report itself primary', () => {
    const sim = crashed();
    const gen = sim.table().generation;
    const d = sim.beat(3_000, { pg2: PROMOTED });
    expectCompleted(sim, d, gen);
    expect(d.one('promotion.succeeded').timeline).toBe(2);
  });

  it('ignores results of other jobs, nodes and operations', () => {
    const sim = crashed();
    sim.report(2_100, jobResult('pg3', { operationId: 'fo-1', action: 'promote', ok: true }));
    sim.report(2_100, jobResult('pg2', { operationId: 'fo-0', action: 'promote', ok: true }));
    sim.report(2_100, jobResult('pg2', { operationId: 'fo-1', action: 'follow', ok: true }));
    expect(sim.state.operation?.promoteResult).toBeNull();
    expect(sim.pass(2_200).types).toEqual([]);
  });

  it('then leaves the follow/rejoin jobs alone for jobRetryMs, and sends them again after', () => {
    const sim = crashed();
    sim.beat(3_000, { pg2: PROMOTED });
    // pg3 still follows pg1, pg1 is still dead: both are pending
    for (const t of [4_000, 6_000, 9_000, 12_000, 15_000, 17_999]) expect(sim.beat(t).jobs).toEqual([]);
    const again = sim.beat(3_000 + S.jobRetryMs);
    expect(again.jobs.map((j) => [j.node, j.action])).toEqual([
      ['pg1', 'rejoin'],
      ['pg3', 'follow'],
    ]);
  });

  it('promotion not confirmed within promoteTimeoutMs: promotion.failed and failover.completed (failed)', () => {
    const sim = crashed();
    for (let t = 4_000; t < 2_000 + S.promoteTimeoutMs; t += 2_000) expect(sim.beat(t).types).toEqual([]);
    expect(sim.beat(2_000 + S.promoteTimeoutMs).types).toEqual([]);
    const d = sim.beat(2_000 + S.promoteTimeoutMs + 1);
    expect(d.types).toEqual(['promotion.failed', 'failover.completed']);
    expect(d.one('promotion.failed')).toMatchObject({ operationId: 'fo-1', node: 'pg2', reason: expect.stringContaining('promoteTimeoutMs') });
    expect(d.one('failover.completed')).toMatchObject({ operationId: 'fo-1', outcome: 'failed', durationMs: S.promoteTimeoutMs + 1 });
    expect(sim.state.operation).toBeNull();
    expect(sim.state.primary).toBe('pg1');
    expect(sim.state.lastFailoverAt).toBe(2_000 + S.promoteTimeoutMs + 1);
    expect(sim.state.history.at(-1)).toMatchObject({ outcome: 'failed' });
    expect(sim.table().writable).toBe(false);
  });

  it('a failed promote job fails the operation with its code and message', () => {
    const sim = crashed();
    sim.report(2_300, jobResult('pg2', { operationId: 'fo-1', action: 'promote', ok: false, code: 'stale-epoch', message: 'epoch 1 < 2' }));
    const d = sim.pass(2_300);
    expect(d.one('promotion.failed').reason).toBe('stale-epoch: epoch 1 < 2');
    expect(d.one('failover.completed').outcome).toBe('failed');
  });
});

describe('cooldown', () => {
  it('a second failure within cooldownMs is blocked (once), and failed over after', () => {
    const sim = crashed();
    sim.beat(3_000, { pg2: { ...PROMOTED, lsn: '0/4000000' }, pg3: { upstream: addr('pg2'), lsn: '0/3FFF000' } });
    expect(sim.state.lastFailoverAt).toBe(3_000);
    sim.beat(4_000);

    const d = sim.beat(5_000, { pg2: DEAD });
    expect(d.types).not.toContain('failover.started');
    expect(d.one('failover.blocked')).toMatchObject({ primary: 'pg2', reason: expect.stringContaining('cooldown') });
    for (let t = 6_000; t < 3_000 + S.cooldownMs; t += 1_000) expect(sim.beat(t).types).toEqual([]);

    const after = sim.beat(3_000 + S.cooldownMs);
    expect(after.one('failover.started')).toMatchObject({ operationId: 'fo-2', from: 'pg2', to: 'pg3', lostBytes: 0x1000 });
    expect(sim.entries('failover.blocked')).toHaveLength(1);
  });

  it('is measured from the end of the last automatic failover, failed ones included', () => {
    const sim = crashed();
    const end = 2_000 + S.promoteTimeoutMs + 1;
    for (let t = 4_000; t < end; t += 2_000) sim.beat(t);
    sim.beat(end);
    expect(sim.beat(end + 1).one('failover.blocked').reason).toContain('cooldown');
    expect(sim.beat(end + S.cooldownMs).one('failover.started')).toMatchObject({ operationId: 'fo-2' });
  });
});

describe('paused cluster', () => {
  it('journals health but does not fail over, until resumed', () => {
    const sim = healthyCluster();
    sim.append(1_500, { type: 'cluster.paused', by: 'ops' });
    const d = sim.beat(2_000, { pg1: DEAD });
    expect(d.types).toEqual(['node.health-changed', 'failover.blocked']);
    expect(d.one('failover.blocked')).toMatchObject({ primary: 'pg1', reason: expect.stringMatching(/^paused: primary pg1 failed/), evidence: expect.arrayContaining([expect.objectContaining({ node: 'pg1', process: 'dead' })]) });
    expect(sim.beat(3_000).types).toEqual([]);
    sim.append(3_500, { type: 'cluster.resumed', by: 'ops' });
    expect(sim.beat(4_000).types).toContain('failover.started');
  });

  it('does not reconcile replicas either', () => {
    const sim = healthyCluster();
    sim.append(1_500, { type: 'cluster.paused', by: 'ops' });
    expect(sim.beat(2_000, { pg3: { upstream: 'pg9:5432' } }).jobs).toEqual([]);
  });
});

describe('the stale observation gate', () => {
  const at = 5_000;
  const st = (events: CoreEvent[]): ClusterState => fold(initialState('c1'), events);
  const ev = (o: ReturnType<typeof obs>, receivedAt = at): CoreEvent => ({ kind: 'obs', id: `x-${o.seq}`, receivedAt, entry: o });

  it('drops a same-boot observation with a lower or equal seq', () => {
    const s = st([ev(obs('pg1', { seq: 5, lsn: '0/5' }))]);
    expect(evolve(s, ev(obs('pg1', { seq: 4, lsn: '0/4' })))).toBe(s);
    expect(evolve(s, ev(obs('pg1', { seq: 5, lsn: '0/6' })))).toBe(s);
    expect(evolve(s, ev(obs('pg1', { seq: 6, lsn: '0/6' }))).soft.pg1?.obs.lsn).toBe('0/6');
  });

  it('across agent boots: drops an older `at`, takes a newer one whatever its seq', () => {
    const s = st([ev(obs('pg1', { bootId: 'b2', seq: 3, at: 10_000 }))]);
    expect(evolve(s, ev(obs('pg1', { bootId: 'b1', seq: 900, at: 9_999 })))).toBe(s);
    expect(evolve(s, ev(obs('pg1', { bootId: 'b3', seq: 1, at: 10_001 }))).soft.pg1?.obs.bootId).toBe('b3');
  });

  it('tracks the start of an unreachable streak and the last known LSN', () => {
    let s = st([ev(obs('pg1', { role: 'primary', lsn: '0/100' }), 1_000)]);
    expect(s.soft.pg1).toMatchObject({ unreachableSince: null, lastLsn: '0/100' });
    s = evolve(s, ev(obs('pg1', unreachable('timeout')), 2_000));
    s = evolve(s, ev(obs('pg1', DEAD), 3_000));
    expect(s.soft.pg1).toMatchObject({ unreachableSince: 2_000, receivedAt: 3_000, lastLsn: '0/100' });
    s = evolve(s, ev(obs('pg1', { role: 'primary', lsn: '0/200' }), 4_000));
    expect(s.soft.pg1).toMatchObject({ unreachableSince: null, lastLsn: '0/200' });
  });

  it('a stopped process counts as unreachable', () => {
    const s = st([ev(obs('pg1', { process: 'stopped' }), 1_000)]);
    expect(s.soft.pg1?.unreachableSince).toBe(1_000);
  });
});

describe('the journal fold', () => {
  const entry = (e: Record<string, unknown>): JournalEntry => ({ v: 1, at: 1_000, epoch: 1, ...e }) as JournalEntry;
  const reg = entry({ type: 'node.registered', node: 'pg1', host: 'h', port: 1, priority: 1 });

  it('skips a stream id it has already folded, or an older one', () => {
    const s1 = evolve(initialState('c1'), { kind: 'journal', id: '1000-1', entry: reg });
    expect(s1.logId).toBe('1000-1');
    expect(s1.generation).toBe(1);
    expect(evolve(s1, { kind: 'journal', id: '1000-1', entry: reg })).toBe(s1);
    expect(evolve(s1, { kind: 'journal', id: '999-7', entry: entry({ type: 'cluster.paused', by: 'x' }) })).toBe(s1);
    // numeric, not lexicographic: 1000-10 comes after 1000-9
    const s2 = evolve(evolve(s1, { kind: 'journal', id: '1000-9', entry: entry({ type: 'cluster.paused', by: 'x' }) }), {
      kind: 'journal',
      id: '1000-10',
      entry: entry({ type: 'cluster.resumed', by: 'x' }),
    });
    expect(s2.paused).toBe(false);
    expect(s2.logId).toBe('1000-10');
  });

  it('takes the highest epoch, and bumps generation only for routing changes', () => {
    let s = evolve(initialState('c1'), { kind: 'journal', id: '1-0', entry: { ...reg, epoch: 4 } });
    s = evolve(s, { kind: 'journal', id: '2-0', entry: entry({ type: 'leader.changed', coordinator: 'c', epoch: 3, at: 2_000 }) });
    expect(s).toMatchObject({ epoch: 4, generation: 1, generationAt: 1_000, leader: 'c' });
  });

  it('role-changed to primary demotes the previous primary; node.removed forgets a node', () => {
    const sim = healthyCluster();
    sim.append(2_000, { type: 'node.role-changed', node: 'pg2', role: 'primary', reason: 'test' });
    expect(sim.state.primary).toBe('pg2');
    expect(sim.state.nodes.pg1?.role).toBe('replica');
    sim.append(2_001, { type: 'node.removed', node: 'pg2', reason: 'test' });
    expect(sim.state.primary).toBeNull();
    expect(sim.state.nodes.pg2).toBeUndefined();
    expect(sim.state.soft.pg2).toBeUndefined();
  });

  it('a follower that folds only the journal reaches the leader’s topology', () => {
    const sim = crashed();
    sim.beat(3_000, { pg2: PROMOTED });
    sim.beat(4_000, { pg2: DEAD });
    const follower = fold(
      initialState('c1'),
      sim.journal.map((r): CoreEvent => ({ kind: 'journal', id: r.id, entry: r.entry })),
    );
    const pick = (s: ClusterState) => ({ ...s, soft: {}, obsArrivals: undefined, operation: s.operation && { ...s.operation, promoteResult: null } });
    expect(pick(follower)).toEqual(pick(sim.state));
  });
});

describe('routing table', () => {
  it('has no primary while the primary is unhealthy, or while an operation is in flight', () => {
    const sim = healthyCluster();
    expect(sim.table()).toMatchObject({ cluster: 'c1', engine: 'postgres', writable: true, primary: { id: 'pg1' } });
    sim.beat(2_000, { pg1: unreachable('timeout') });
    expect(sim.table()).toMatchObject({ writable: false, primary: null });
    expect(sim.table().replicas.map((r) => r.id)).toEqual(['pg2', 'pg3']);
    const c = crashed();
    expect(c.state.operation).not.toBeNull();
    expect(c.state.nodes.pg1?.role).toBe('primary');
    c.append(2_100, { type: 'node.health-changed', node: 'pg1', healthy: true, reason: 'test' });
    expect(c.table()).toMatchObject({ writable: false, primary: null });
  });

  it('replica lag from the primary’s LSN minus the replica’s replay LSN; sync from the primary’s standbys', () => {
    const standbys = [
      { name: 'pg2', state: 'streaming', replayLsn: '0/2FFF000', flushLsn: '0/3000000', replayLagMs: 12, syncState: 'sync' },
      { name: 'pg3', state: 'streaming', replayLsn: '0/2000000', flushLsn: '0/2000000', replayLagMs: 900, syncState: 'async' },
      { name: 'pg4', state: 'streaming', replayLsn: '0/3000000', flushLsn: '0/3000000', replayLagMs: 5, syncState: 'quorum' },
    ];
    const sim = healthyCluster({
      primary: { lsn: '0/3000000', standbys },
      replicas: { pg2: { lsn: '0/3000000', replayLsn: '0/2FFF000' }, pg3: { replayLsn: null }, pg4: {} },
    });
    const t = sim.table();
    const r = Object.fromEntries(t.replicas.map((x) => [x.id, x]));
    expect(r.pg2).toMatchObject({ lagBytes: 0x1000, replayLsn: '0/2FFF000', lagMs: 12, sync: true, healthy: true });
    // no replay LSN of its own: the primary's view of it
    expect(r.pg3).toMatchObject({ lagBytes: 0x1000000, replayLsn: '0/2000000', lagMs: 900, sync: false });
    expect(r.pg4).toMatchObject({ lagBytes: 0, lagMs: 0, sync: true });
  });

  it('lag is unknown without the primary’s LSN, and soft-layer changes do not bump the generation', () => {
    const sim = healthyCluster();
    const gen = sim.table().generation;
    sim.observe(1_500, obs('pg2', { replayLsn: '0/2000000' }));
    expect(sim.table().generation).toBe(gen);
    expect(sim.table().replicas.find((x) => x.id === 'pg2')?.lagBytes).toBe(0x1000000);
    sim.observe(1_500, obs('pg1', { role: 'primary', lsn: null }));
    expect(sim.table().replicas.find((x) => x.id === 'pg2')?.lagBytes).toBeNull();
  });

  it('generation and updatedAt follow routing entries', () => {
    const sim = healthyCluster();
    const before = sim.table();
    sim.beat(2_000, { pg2: { walReceiver: 'waiting' } });
    const after = sim.table();
    expect(after.generation).toBe(before.generation + 1);
    expect(after.updatedAt).toBe(new Date(2_000).toISOString());
    expect(after.replicas.find((x) => x.id === 'pg2')?.healthy).toBe(false);
    sim.append(3_000, { type: 'cluster.paused', by: 'ops' });
    expect(sim.table().generation).toBe(after.generation);
  });
});

describe('reconcile', () => {
  it('sends a follow job to a replica following the wrong upstream, not again within jobRetryMs', () => {
    const sim = healthyCluster();
    const d = sim.beat(2_000, { pg3: { upstream: 'pg9:5432' } });
    expect(d.one('follow.requested')).toMatchObject({ node: 'pg3', upstream: 'pg1', action: 'follow' });
    const upstream = { id: 'pg1', host: 'pg1', port: 5432 };
    expect(d.jobs).toEqual([{ node: 'pg3', action: 'follow', operationId: expect.stringMatching(/^fix-pg3-/), upstream }]);
    expect(d.jobs[0]?.operationId).toBe(d.one('follow.requested').operationId);

    for (let t = 3_000; t < 2_000 + S.jobRetryMs; t += 2_000) expect(sim.beat(t).jobs).toEqual([]);
    expect(sim.beat(2_000 + S.jobRetryMs - 1).jobs).toEqual([]);
    const again = sim.beat(2_000 + S.jobRetryMs);
    expect(again.jobs).toEqual([{ node: 'pg3', action: 'follow', operationId: expect.stringMatching(/^fix-pg3-/), upstream }]);
    expect(again.jobs[0]?.operationId).not.toBe(d.jobs[0]?.operationId);
  });

  it('sends a rejoin job to a node claiming primary that is not the journal’s primary', () => {
    const sim = healthyCluster();
    const d = sim.beat(2_000, { pg3: { role: 'primary', upstream: null, walReceiver: null } });
    expect(d.types).not.toContain('failover.blocked');
    expect(d.types).not.toContain('node.role-changed');
    expect(d.one('node.health-changed')).toMatchObject({ node: 'pg3', healthy: false, reason: 'claims primary while pg1 is the primary' });
    expect(d.one('follow.requested')).toMatchObject({ node: 'pg3', action: 'rejoin', upstream: 'pg1' });
    expect(d.jobs).toEqual([{ node: 'pg3', action: 'rejoin', operationId: expect.any(String), upstream: { id: 'pg1', host: 'pg1', port: 5432 } }]);
    expect(sim.state.primary).toBe('pg1');
    expect(sim.table().primary?.id).toBe('pg1');
  });

  it('leaves silent nodes, correct replicas, and everything while the primary is unhealthy alone', () => {
    const sim = healthyCluster();
    expect(sim.beat(2_000).jobs).toEqual([]);
    const quiet = healthyCluster();
    quiet.observe(1_500, obs('pg3', { upstream: 'pg9:5432' }));
    expect(quiet.beat(1_500 + S.agentTimeoutMs + 1, {}, ['pg3']).jobs).toEqual([]);
    const sick = healthyCluster();
    sick.beat(2_000, { pg1: unreachable('timeout') });
    expect(sick.beat(2_500, { pg3: { upstream: 'pg9:5432' } }).jobs).toEqual([]);
  });

  it('a retargeted pending request does not suppress the job for the new primary', () => {
    const sim = healthyCluster();
    sim.append(1_500, { type: 'follow.requested', operationId: 'old', node: 'pg3', upstream: 'pg9', action: 'follow', jobId: 'j' });
    expect(sim.beat(2_000, { pg3: { upstream: 'pg9:5432' } }).jobs.map((j) => j.node)).toEqual(['pg3']);
  });
});

describe('purity', () => {
  it('decide does not mutate the state and is deterministic', () => {
    const sim = crashed();
    const snapshot = structuredClone(sim.state);
    const a = decide(sim.state, 9_000, S);
    const b = decide(sim.state, 9_000, S);
    expect(a).toEqual(b);
    expect(sim.state).toEqual(snapshot);
  });

  it('routingTable is a pure projection', () => {
    const sim = healthyCluster();
    expect(routingTable(sim.state)).toEqual(routingTable(structuredClone(sim.state)));
  });
});

describe('failover without flapping or misleading entries', () => {
  it('a promotion confirmed by the job result keeps the routing table writable until the new primary reports', () => {
    const sim = healthyCluster();
    sim.observe(2_000, obs('pg1', DEAD));
    sim.pass(2_000);
    const op = sim.state.operation!;
    expect(op.to).toBe('pg2');
    sim.report(2_100, jobResult('pg2', { operationId: op.id, action: 'promote', ok: true }));
    const done = sim.pass(2_100);
    expect(done.types).toContain('promotion.succeeded');
    // the candidate is never journaled unhealthy for "claiming primary" on the way
    expect(sim.entries('node.health-changed').filter((e) => e.node === 'pg2' && !e.healthy)).toEqual([]);
    expect(sim.table()).toMatchObject({ writable: true, primary: { id: 'pg2' } });
    // the next pass still sees pg2's pre-promotion report (role replica): no flap
    const next = sim.pass(2_150);
    expect(next.of('node.health-changed').filter((e) => e.node === 'pg2')).toEqual([]);
    expect(sim.table()).toMatchObject({ writable: true, primary: { id: 'pg2' } });
    // a report after the promotion that still says replica is a real problem
    sim.observe(2_200, obs('pg2', {}));
    expect(sim.pass(2_200).of('node.health-changed')).toContainEqual(expect.objectContaining({ node: 'pg2', healthy: false }));
  });

  it('a primary never heard from is failed over when a majority of peers cannot reach it, once its lease from their first reports is over', () => {
    const sim = new Sim();
    sim.append(0, { type: 'node.registered', node: 'pg1', host: 'pg1', port: PORT, priority: 100 });
    sim.append(0, { type: 'node.role-changed', node: 'pg1', role: 'primary', reason: 'test' });
    const down = { peer: { node: 'pg1', reachable: false, error: 'timeout' as const } };
    sim.observe(1_000, obs('pg2', down), obs('pg3', down));
    sim.settle(1_000);
    // (a coordinator that just started knows no older loss: pg1 may have been cut off a moment ago)
    expect(sim.entries('failover.started')).toHaveLength(0);
    const lease = DEFAULT_SETTINGS.fenceAfterMs + DEFAULT_SETTINGS.fenceMarginMs;
    sim.observe(1_000 + lease, obs('pg2', down), obs('pg3', down));
    sim.settle(1_000 + lease);
    expect(sim.entries('failover.started')).toHaveLength(1);
    expect(sim.entries('failover.started')[0]!.reason).toMatch(/peers cannot reach/);
  });

  it('a primary never heard from is not failed over while peers reach it', () => {
    const sim = new Sim();
    sim.append(0, { type: 'node.registered', node: 'pg1', host: 'pg1', port: PORT, priority: 100 });
    sim.append(0, { type: 'node.role-changed', node: 'pg1', role: 'primary', reason: 'test' });
    const up = { peer: { node: 'pg1', reachable: true } };
    sim.observe(1_000, obs('pg2', up), obs('pg3', up));
    sim.settle(1_000);
    expect(sim.entries('failover.started')).toHaveLength(0);
  });

  it('a replica whose LSN is unknown is not a candidate when the old primary’s LSN is known', () => {
    const sim = healthyCluster({ primary: { lsn: '0/5000000' }, replicas: { pg2: { lsn: null, replayLsn: null }, pg3: { lsn: '0/4F00000' } } });
    sim.observe(2_000, obs('pg1', DEAD));
    sim.pass(2_000);
    expect(sim.state.operation?.to).toBe('pg3');
  });
});

describe('self-fenced primary', () => {
  it('a fenced primary is not writable, is not failed over, and is sent one unfence job', () => {
    const sim = healthyCluster();
    sim.observe(2_000, obs('pg1', { role: 'primary', fenced: true }));
    const d = sim.pass(2_000);
    expect(d.of('node.health-changed')).toContainEqual(expect.objectContaining({ node: 'pg1', healthy: false, reason: expect.stringContaining('fenced') }));
    sim.pass(2_000);
    expect(sim.table().writable).toBe(false);
    expect(sim.entries('unfence.requested')).toHaveLength(1);
    expect(sim.jobs.filter((j) => j.action === 'unfence')).toEqual([expect.objectContaining({ node: 'pg1' })]);
    expect(sim.entries('failover.started')).toHaveLength(0);
    // not again within jobRetryMs
    sim.observe(2_500, obs('pg1', { role: 'primary', fenced: true }));
    sim.pass(2_500);
    expect(sim.entries('unfence.requested')).toHaveLength(1);
    // unfenced: healthy and writable again
    sim.observe(3_000, obs('pg1', { role: 'primary' }));
    sim.settle(3_000);
    expect(sim.table()).toMatchObject({ writable: true, primary: { id: 'pg1' } });
  });

  it('a fenced node that is not the primary is never unfenced', () => {
    const sim = healthyCluster();
    sim.observe(2_000, obs('pg2', { fenced: true }));
    sim.settle(2_000);
    expect(sim.entries('unfence.requested')).toHaveLength(0);
  });
});

describe('synchronous mode', () => {
  const sync = { synchronous: true };
  /** the primary's view of its standbys */
  const standbys = (...list: Array<[string, string, string?]>) => ({
    role: 'primary' as const,
    lsn: '0/5000000',
    standbys: list.map(([name, flushLsn, state]) => ({ name, state: state ?? 'streaming', replayLsn: flushLsn, flushLsn, replayLagMs: 0, syncState: 'async' })),
  });

  it('establishes one synchronous standby once it has flushed past the LSN the setting was applied at', () => {
    const sim = healthyCluster({ settings: sync, primary: standbys(['pg2', '0/5000000'], ['pg3', '0/4000000']) });
    const req = sim.entries('sync.requested');
    expect(req).toEqual([expect.objectContaining({ node: 'pg1', names: ['pg2'], count: 1 })]);
    expect(sim.state.sync).toEqual([]);
    sim.report(1_100, jobResult('pg1', { operationId: req[0]!.operationId, action: 'sync', ok: true, lsn: '0/5000100' }));
    sim.settle(1_100);
    expect(sim.state.sync).toEqual([]); // pg2 has flushed 0/5000000 < 0/5000100
    sim.observe(1_200, obs('pg1', standbys(['pg2', '0/5000100'], ['pg3', '0/4000000'])));
    sim.settle(1_200);
    expect(sim.state.sync).toEqual(['pg2']);
    expect(sim.entries('sync.requested')).toHaveLength(1);
  });

  function established(): Sim {
    const sim = healthyCluster({ settings: sync, primary: standbys(['pg2', '0/5000000'], ['pg3', '0/5000000']) });
    sim.report(1_100, jobResult('pg1', { operationId: sim.entries('sync.requested')[0]!.operationId, action: 'sync', ok: true, lsn: '0/5000000' }));
    sim.settle(1_100);
    expect(sim.state.sync).toEqual(['pg2']);
    return sim;
  }

  it('changes the synchronous standby through FIRST 2 (old, new): the journaled one always holds every acknowledged commit', () => {
    const sim = established();
    // pg2 stops streaming: commits wait for it; pg3 takes over only once it has everything
    sim.observe(2_000, obs('pg1', standbys(['pg2', '0/5000000', 'stopped'], ['pg3', '0/5000000'])));
    sim.settle(2_000);
    const second = sim.entries('sync.requested')[1]!;
    expect(second).toMatchObject({ names: ['pg2', 'pg3'], count: 2 });
    expect(sim.state.sync).toEqual(['pg2']);
    sim.report(2_100, jobResult('pg1', { operationId: second.operationId, action: 'sync', ok: true, lsn: '0/5000200' }));
    sim.settle(2_100);
    expect(sim.state.sync).toEqual(['pg2']); // pg3 has not flushed 0/5000200 yet
    sim.observe(2_200, obs('pg1', standbys(['pg2', '0/5000000', 'stopped'], ['pg3', '0/5000200'])));
    sim.settle(2_200);
    expect(sim.state.sync).toEqual(['pg3']);
    expect(sim.entries('sync.requested')[2]).toMatchObject({ names: ['pg3'], count: 1 });
  });

  it('fails over only to the synchronous standby, even when another has more WAL', () => {
    const sim = established();
    sim.observe(2_000, obs('pg3', { lsn: '0/6000000' }), obs('pg2', { lsn: '0/5000000' }));
    sim.observe(2_000, obs('pg1', DEAD));
    sim.pass(2_000);
    expect(sim.state.operation?.to).toBe('pg2');
  });

  it('no failover when the synchronous standby is gone: the crashed primary is restarted in place', () => {
    const sim = established();
    sim.observe(2_000, obs('pg2', DEAD));
    sim.observe(2_000, obs('pg1', DEAD));
    const d = sim.pass(2_000);
    expect(d.types).not.toContain('failover.started');
    expect(d.one('failover.blocked').reason).toMatch(/not a synchronous standby|pg2: unreachable/);
    expect(d.jobs).toEqual([expect.objectContaining({ node: 'pg1', action: 'restart' })]);
  });

  it('a new primary starts with no synchronous standby', () => {
    const sim = established();
    sim.observe(2_000, obs('pg1', DEAD));
    sim.pass(2_000);
    sim.report(2_100, jobResult('pg2', { operationId: sim.state.operation!.id, action: 'promote', ok: true }));
    sim.pass(2_100);
    expect(sim.state.primary).toBe('pg2');
    expect(sim.state.sync).toEqual([]);
  });
});

describe('restart in place', () => {
  it('restart-first: a crashed primary is restarted, and failed over only if not back within failAfterMs', () => {
    const sim = healthyCluster({ settings: { policy: 'restart-first' } });
    sim.observe(2_000, obs('pg1', DEAD));
    const first = sim.pass(2_000);
    expect(first.types).toEqual(expect.arrayContaining(['restart.requested']));
    expect(first.types).not.toContain('failover.started');
    expect(first.jobs).toEqual([expect.objectContaining({ node: 'pg1', action: 'restart' })]);
    expect(sim.beat(2_000 + S.failAfterMs - 1).types).not.toContain('failover.started');
    expect(sim.beat(2_000 + S.failAfterMs).types).toContain('failover.started');
  });

  it('the default policy fails a crashed primary over at once', () => {
    const sim = healthyCluster();
    sim.observe(2_000, obs('pg1', DEAD));
    const d = sim.pass(2_000);
    expect(d.types).toContain('failover.started');
    expect(d.types).not.toContain('restart.requested');
  });
});

describe('a leader that dies mid-operation', () => {
  it('its successor re-sends the promote job; the old job’s refusal is ignored', () => {
    const sim = healthyCluster();
    sim.observe(2_000, obs('pg1', DEAD));
    sim.pass(2_000);
    const op = sim.state.operation!;
    expect(sim.jobs.filter((j) => j.action === 'promote')).toHaveLength(1);
    // the leader died; its successor takes the lease at epoch 2
    sim.append(3_000, { type: 'leader.changed', coordinator: 'c2' }, 2);
    const again = sim.pass(3_000);
    expect(again.one('promotion.requested')).toMatchObject({ operationId: op.id, node: op.to });
    expect(again.jobs).toEqual([expect.objectContaining({ node: op.to, action: 'promote', operationId: op.id })]);
    // the old job reaches the agent late and is refused as stale: not a failed promotion
    sim.report(3_100, jobResult(op.to, { operationId: op.id, action: 'promote', ok: false, code: 'stale-epoch', epoch: 1 }));
    expect(sim.pass(3_100).types).not.toContain('promotion.failed');
    // not re-sent again by the same leader
    expect(sim.pass(3_200).types).not.toContain('promotion.requested');
    sim.report(3_300, jobResult(op.to, { operationId: op.id, action: 'promote', ok: true, epoch: 2 }));
    expect(sim.pass(3_300).types).toContain('promotion.succeeded');
  });

  it('its successor re-sends the demote job of a switchover', () => {
    const sim = healthyCluster();
    sim.fold({ kind: 'command', id: 'so-1', receivedAt: 2_000, entry: { type: 'command', v: 1, id: 'so-1', action: 'switchover', to: 'pg2', by: 't', at: 2_000 } });
    sim.pass(2_000);
    expect(sim.state.operation?.phase).toBe('demoting');
    sim.append(3_000, { type: 'leader.changed', coordinator: 'c2' }, 2);
    const again = sim.pass(3_000);
    expect(again.jobs).toEqual([expect.objectContaining({ node: 'pg1', action: 'demote', upstream: expect.objectContaining({ id: 'pg2' }) })]);
  });
});

describe('measured loss', () => {
  it('journals what a failover lost once the old primary’s end of WAL is known, once', () => {
    const sim = healthyCluster();
    sim.observe(2_000, obs('pg1', DEAD));
    sim.pass(2_000);
    const op = sim.state.operation!;
    sim.report(2_100, jobResult(op.to, { operationId: op.id, action: 'promote', ok: true, lsn: '0/3000100' }));
    sim.pass(2_100);
    expect(sim.state.history.at(-1)).toMatchObject({ forkLsn: '0/3000100', lossMeasured: false });
    sim.observe(2_200, obs('pg1', { ...DEAD, walEnd: '0/3000400' }));
    const d = sim.pass(2_200);
    expect(d.one('failover.loss')).toMatchObject({ operationId: op.id, node: 'pg1', walEnd: '0/3000400', forkLsn: '0/3000100', lostBytes: 0x300 });
    expect(sim.state.history.at(-1)).toMatchObject({ lostBytes: 0x300, lossMeasured: true });
    sim.observe(2_300, obs('pg1', { ...DEAD, walEnd: '0/3000400' }));
    expect(sim.pass(2_300).types).not.toContain('failover.loss');
  });

  it('waits for an end of WAL reported after the failover finished (an older report may predate a restart in place)', () => {
    const sim = healthyCluster();
    sim.observe(2_000, obs('pg1', { ...DEAD, walEnd: '0/3000400' }));
    sim.pass(2_000);
    const op = sim.state.operation!;
    sim.report(2_100, jobResult(op.to, { operationId: op.id, action: 'promote', ok: true, lsn: '0/3000100' }));
    sim.pass(2_100);
    expect(sim.state.history.at(-1)).toMatchObject({ outcome: 'success', lossMeasured: false });
    // nothing newer from pg1 (its agent cut off): its last report is from before the failover
    expect(sim.pass(2_200).types).not.toContain('failover.loss');
    sim.observe(2_300, obs('pg1', { ...DEAD, walEnd: '0/3000400' }));
    expect(sim.pass(2_300).one('failover.loss')).toMatchObject({ operationId: op.id, lostBytes: 0x300 });
  });

  it('never pairs an older failover with the end of WAL of a node promoted since', () => {
    const sim = healthyCluster();
    // fo-1: pg1 → pg2; pg1's agent never reports its end of WAL
    sim.observe(2_000, obs('pg1', DEAD));
    sim.pass(2_000);
    const first = sim.state.operation!;
    expect(first.to).toBe('pg2');
    sim.report(2_100, jobResult('pg2', { operationId: first.id, action: 'promote', ok: true, lsn: '0/3000100' }));
    sim.settle(2_100);
    const asReplicaOf2 = { upstream: addr('pg2'), timeline: 2 };
    sim.observe(2_200, obs('pg2', { ...PROMOTED, lsn: '0/3000200' }), obs('pg1', { ...asReplicaOf2, lsn: '0/3000200' }), obs('pg3', { ...asReplicaOf2, lsn: '0/3000180' }));
    sim.settle(2_200);
    // fo-2, past the cooldown: pg2 → pg1, which is a primary again
    sim.observe(20_000, obs('pg2', DEAD), obs('pg1', { ...asReplicaOf2, lsn: '0/3000200' }), obs('pg3', { ...asReplicaOf2, lsn: '0/3000180' }));
    sim.pass(20_000);
    const second = sim.state.operation!;
    expect(second).toMatchObject({ from: 'pg2', to: 'pg1' });
    sim.report(20_100, jobResult('pg1', { operationId: second.id, action: 'promote', ok: true, lsn: '0/3000200' }));
    sim.settle(20_100);
    // pg1 dies on its own timeline: its end of WAL is not what fo-1 lost
    sim.observe(20_200, obs('pg1', { ...DEAD, walEnd: '0/3009000' }), obs('pg2', { ...DEAD, walEnd: '0/3000300' }));
    const losses = sim.settle(20_200).all.filter((d) => d.type === 'append' && d.entry.type === 'failover.loss');
    expect(losses.map((d) => (d.type === 'append' && d.entry.type === 'failover.loss' ? [d.entry.operationId, d.entry.node] : null))).toEqual([[second.id, 'pg2']]);
  });
});

describe('synchronous mode: quorum', () => {
  const quorum = { synchronous: 'quorum' as const };
  const standbys = (...list: Array<[string, string, string?]>) => ({
    role: 'primary' as const,
    lsn: '0/5000000',
    standbys: list.map(([name, flushLsn, state]) => ({ name, state: state ?? 'streaming', replayLsn: flushLsn, flushLsn, replayLagMs: 0, syncState: 'quorum' })),
  });

  function established(): Sim {
    const sim = healthyCluster({ settings: quorum, primary: standbys(['pg2', '0/5000000'], ['pg3', '0/5000000']) });
    const req = sim.entries('sync.requested');
    expect(req).toEqual([expect.objectContaining({ names: ['pg2', 'pg3'], count: 1, method: 'ANY' })]);
    sim.report(1_100, jobResult('pg1', { operationId: req[0]!.operationId, action: 'sync', ok: true, lsn: '0/5000000' }));
    sim.settle(1_100);
    expect(sim.state.sync).toEqual(['pg2', 'pg3']);
    return sim;
  }

  it('keeps ANY 1 (every healthy standby) and journals them', () => {
    established();
  });

  it('fails over to the standby with the most WAL, only when every journaled standby is reachable', () => {
    const sim = established();
    sim.observe(2_000, obs('pg2', { lsn: '0/5000100' }), obs('pg3', { lsn: '0/5000100' }));
    sim.observe(2_000, obs('pg1', DEAD));
    sim.pass(2_000);
    // the standbys' reports predate the death (a tie that priority would give to pg2): their
    // positions are lower bounds, so nothing is promoted on them
    expect(sim.state.operation ?? null).toBeNull();
    // their reports after it, cut off from pg1: pg3 holds the most WAL, so every acknowledged commit
    sim.observe(2_200, obs('pg2', { lsn: '0/5000100', walReceiver: null }), obs('pg3', { lsn: '0/5000200', walReceiver: null }));
    sim.pass(2_200);
    expect(sim.state.operation?.to).toBe('pg3');
  });

  it('no failover when a journaled standby is away: the one left may lack a commit', () => {
    const sim = established();
    sim.observe(2_000, obs('pg3', DEAD));
    sim.observe(2_000, obs('pg1', DEAD));
    expect(sim.pass(2_000).types).not.toContain('failover.started');
    // pg2's final position is in: it is all there is, and pg3 may hold a commit it lacks
    sim.observe(2_200, obs('pg2', { walReceiver: null }));
    const d = sim.pass(2_200);
    expect(d.types).not.toContain('failover.started');
    expect(d.one('failover.blocked').reason).toMatch(/quorum mode needs every synchronous standby/);
  });

  it('shrinks the journaled set only once the rest has every commit acknowledged before', () => {
    const sim = established();
    sim.observe(2_000, obs('pg3', DEAD));
    sim.observe(2_000, obs('pg1', standbys(['pg2', '0/5000000'], ['pg3', '0/5000000', 'stopped'])));
    sim.settle(2_000);
    const req = sim.entries('sync.requested').at(-1)!;
    expect(req).toMatchObject({ names: ['pg2'], method: 'ANY' });
    expect(sim.state.sync).toEqual(['pg2', 'pg3']);
    sim.report(2_100, jobResult('pg1', { operationId: req.operationId, action: 'sync', ok: true, lsn: '0/5000300' }));
    sim.settle(2_100);
    expect(sim.state.sync).toEqual(['pg2', 'pg3']);
    sim.observe(2_200, obs('pg1', standbys(['pg2', '0/5000300'], ['pg3', '0/5000000', 'stopped'])));
    sim.settle(2_200);
    expect(sim.state.sync).toEqual(['pg2']);
  });

  it('grows the journaled set before a new standby may acknowledge commits', () => {
    const sim = healthyCluster({ settings: quorum, primary: standbys(['pg2', '0/5000000'], ['pg3', '0/5000000', 'stopped']), replicas: { pg2: {}, pg3: { walReceiver: null } } });
    sim.report(1_100, jobResult('pg1', { operationId: sim.entries('sync.requested')[0]!.operationId, action: 'sync', ok: true, lsn: '0/5000000' }));
    sim.settle(1_100);
    expect(sim.state.sync).toEqual(['pg2']);
    sim.observe(2_000, obs('pg3', {}), obs('pg1', standbys(['pg2', '0/5000000'], ['pg3', '0/5000000'])));
    sim.settle(2_000);
    // journaled first, asked of the primary after
    const order = sim.journal.filter((r) => r.entry.type === 'sync.changed' || r.entry.type === 'sync.requested').slice(-2).map((r) => r.entry.type);
    expect(order).toEqual(['sync.changed', 'sync.requested']);
    expect(sim.state.sync).toEqual(['pg2', 'pg3']);
  });
});

describe('measured loss without the promote job’s result', () => {
  it('takes the fork point from the new primary’s own reports', () => {
    const sim = healthyCluster();
    sim.observe(2_000, obs('pg1', DEAD));
    sim.pass(2_000);
    const op = sim.state.operation!;
    // confirmed by its role before the job's result arrives
    sim.observe(2_100, obs(op.to, { role: 'primary', timeline: 2, lsn: '0/3000200', forkLsn: '0/3000100' }));
    sim.pass(2_100);
    expect(sim.state.history.at(-1)).toMatchObject({ outcome: 'success', forkLsn: '0/3000100' });
    expect(sim.entries('promotion.succeeded').at(-1)).toMatchObject({ timeline: 2, forkLsn: '0/3000100' });
    sim.observe(2_200, obs('pg1', { ...DEAD, walEnd: '0/3000180' }));
    expect(sim.pass(2_200).one('failover.loss')).toMatchObject({ forkLsn: '0/3000100', lostBytes: 0x80 });
  });
});
