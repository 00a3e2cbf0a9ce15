/**
 * The pure core with an engine that elects itself (MongoDB): decide never promotes, fences
 * or re-points; evolve adopts the primary the members report (newest election winning),
 * journals elections, step-downs, membership and stuck members with evidence, and never
 * routes a stale primary. A switchover is a steering job to the old primary's agent.
 */
import vm from 'node:vm';
import { describe, expect, it } from 'vitest';
import { HISTORY } from '../../src/api/dashboard-history.js';
import { observedHealth } from '../../src/core/decide.js';
import { fromSnapshot, toSnapshot } from '../../src/core/snapshot.js';
import { initialState } from '../../src/core/state.js';
import { mongoFields, mongoObservationOf } from '../../src/engines/mongo/observation.js';
import type { MongoObservation } from '../../src/engines/mongo/probe.js';
import { electsItself } from '../../src/engines/traits.js';
import { engineNames, getEngine } from '../../src/engines/index.js';
import type { Observation } from '../../src/events/observation.js';
import { ObservationV1 } from '../../src/events/observation.js';
import { Value } from '@sinclair/typebox/value';
import { ConfigError, loadAgentConfigFrom } from '../../src/config/load.js';
import { renderExplain, renderHistory, renderList, whyNotOthers } from '../../src/cli/ctl-render.js';
import { CLUSTER, PORT, Sim, obs } from '../unit/helpers.js';

const EID = (term: number): string => `7fffffff${term.toString(16).padStart(16, '0')}`;
const A = `a:${PORT}`;
const B = `b:${PORT}`;
const C = `c:${PORT}`;

interface Member {
  state: 'PRIMARY' | 'SECONDARY' | 'RECOVERING';
  term?: number;
  electionId?: string | null;
  hosts?: string[];
  setVersion?: number;
  lastWriteDate?: number;
  /** the optime's seconds (default 100) */
  secs?: number;
}

/** An observation of a member as its agent publishes it (src/engines/mongo/observation.ts). */
function member(node: string, m: Member): Observation {
  const term = m.term ?? 1;
  const primary = m.state === 'PRIMARY';
  const o: MongoObservation = {
    isWritablePrimary: primary,
    secondary: m.state === 'SECONDARY',
    arbiterOnly: false,
    state: m.state,
    setName: 'rs0',
    setVersion: m.setVersion ?? 1,
    electionId: primary ? (m.electionId === undefined ? EID(term) : m.electionId) : null,
    term,
    opTime: { term, secs: m.secs ?? 100, inc: 1 },
    position: `${term}:${m.secs ?? 100}.1`,
    lastWriteDate: m.lastWriteDate ?? 1_700_000_000_000,
    hosts: m.hosts ?? [A, B, C],
    passives: [],
    arbiters: [],
    primary: null,
    me: `${node}:${PORT}`,
    tags: {},
    syncSourceHost: primary ? null : A,
    members: [],
  };
  return obs(node, {
    role: primary ? 'primary' : m.state === 'SECONDARY' || m.state === 'RECOVERING' ? 'replica' : 'unknown',
    timeline: term,
    lsn: o.position,
    replayLsn: o.position,
    upstream: primary ? null : A,
    walReceiver: primary ? null : m.state === 'SECONDARY' ? 'streaming' : m.state.toLowerCase(),
    standbys: primary ? [] : undefined,
    mongo: mongoFields(o, 250),
  });
}

const down = (node: string): Observation => obs(node, { reachable: false, error: 'refused', role: 'unknown', timeline: null, lsn: null, replayLsn: null, replayDelayMs: null, upstream: null, walReceiver: null, standbys: undefined });

function setUp(): Sim {
  const sim = new Sim({}, initialState(CLUSTER, 'mongodb'));
  // (from t = 1: the stream id 0-0 is the fold's starting point)
  sim.observe(1, member('a', { state: 'PRIMARY' }), member('b', { state: 'SECONDARY' }), member('c', { state: 'SECONDARY' }));
  sim.settle(1);
  return sim;
}

function noSteering(sim: Sim): void {
  expect(sim.jobs.filter((j) => ['promote', 'demote', 'follow', 'rejoin', 'fence', 'unfence', 'sync', 'restart'].includes(j.action))).toEqual([]);
}

describe('an engine that elects itself, in the pure core', () => {
  it('knows which engines elect themselves, as the engine objects say', () => {
    for (const name of engineNames()) expect(electsItself(name)).toBe(getEngine(name).electsItself);
    expect(electsItself('mongodb')).toBe(true);
  });

  it('an observation with Mongo fields is valid, and the probe observation comes back from it', () => {
    const o = member('a', { state: 'PRIMARY', term: 3 });
    expect(Value.Check(ObservationV1, o)).toBe(true);
    const back = mongoObservationOf(o)!;
    expect(back).toMatchObject({ isWritablePrimary: true, state: 'PRIMARY', electionId: EID(3), setVersion: 1, term: 3, position: '3:100.1', hosts: [A, B, C] });
    expect(mongoObservationOf(down('a'))).toBeNull();
  });

  it('adopts the primary the members report through an election journaled with evidence, and routes it', () => {
    const sim = setUp();
    const e = sim.journal.map((r) => r.entry).find((x) => x.type === 'set.changed');
    expect(e).toMatchObject({ fact: 'election', member: A, node: 'a', electionId: EID(1), term: 1, hosts: [A, B, C], setName: 'rs0' });
    expect((e as { evidence: string }).evidence).toMatch(/isWritablePrimary/);
    expect(sim.state.primary).toBe('a');
    expect(sim.journal.some((r) => r.entry.type === 'node.role-changed')).toBe(false);
    const t = sim.table();
    expect(t.writable).toBe(true);
    expect(t.primary?.id).toBe('a');
    expect(t.replicas.filter((r) => r.healthy).map((r) => r.id)).toEqual(['b', 'c']);
    noSteering(sim);
  });

  it('a primary that dies is never failed over: the step-down and the set’s own election are journaled', () => {
    const sim = setUp();
    sim.observe(1000, down('a'));
    for (let t = 1000; t <= 30_000; t += 1000) {
      sim.observe(t, member('b', { state: 'SECONDARY' }), member('c', { state: 'SECONDARY' }));
      sim.settle(t);
    }
    const facts = sim.journal.flatMap((r) => (r.entry.type === 'set.changed' ? [r.entry.fact] : []));
    expect(facts).toEqual(['election', 'step-down']);
    expect(sim.state.primary).toBeNull();
    expect(sim.table().writable).toBe(false);
    expect(sim.journal.some((r) => r.entry.type === 'failover.started')).toBe(false);
    // the set elects b
    sim.observe(31_000, member('b', { state: 'PRIMARY', term: 2 }));
    sim.settle(31_000);
    const el = sim.journal.map((r) => r.entry).filter((x) => x.type === 'set.changed' && x.fact === 'election');
    expect(el.at(-1)).toMatchObject({ member: B, node: 'b', electionId: EID(2), term: 2 });
    expect(sim.state.primary).toBe('b');
    expect(sim.table().primary?.id).toBe('b');
    // the change of primary is a history item: a failover the set did itself, fo-N from the one counter
    expect(sim.state.history).toEqual([
      {
        id: 'fo-1', kind: 'failover', from: 'a', to: 'b', reason: 'elected by the set: a unreachable, term 2',
        startedAt: new Date(1000).toISOString(), finishedAt: new Date(31_000).toISOString(), durationMs: 30_000,
        lostBytes: 0, outcome: 'success', forkLsn: null, lossMeasured: false,
      },
    ]);
    expect(el.at(-1)).toMatchObject({ operationId: 'fo-1', since: 1000 });
    expect(sim.state.opSeq).toBe(1);
    // fold(all) = fold(snapshot + nothing): the item and the counter survive a snapshot
    const back = fromSnapshot(JSON.parse(JSON.stringify(toSnapshot(sim.state))), CLUSTER)!;
    expect(back.history).toEqual(sim.state.history);
    expect(back.opSeq).toBe(1);
    noSteering(sim);
  });

  it('a primary that steps down with writes its successor lacks: the history item says they are rolled back', () => {
    const sim = setUp();
    expect(sim.state.history).toEqual([]); // the first primary the journal learns of is no change
    sim.observe(2000, member('a', { state: 'PRIMARY', secs: 120 }), member('b', { state: 'SECONDARY', secs: 110 }));
    sim.settle(2000);
    sim.observe(3000, member('a', { state: 'SECONDARY', secs: 120 }));
    sim.settle(3000);
    sim.observe(4000, member('b', { state: 'PRIMARY', term: 2, secs: 110 }));
    sim.settle(4000);
    expect(sim.state.history).toHaveLength(1);
    expect(sim.state.history[0]).toMatchObject({ id: 'fo-1', kind: 'failover', from: 'a', to: 'b', outcome: 'success', startedAt: new Date(3000).toISOString(), durationMs: 1000, lostBytes: 0 });
    expect(sim.state.history[0]!.reason).toBe("elected by the set: a stepped down (SECONDARY), term 2; a's optime 1:120.1 was ahead of b's 2:110.1: its unreplicated writes are rolled back when it rejoins");
    // a's own re-election later is another change of primary: fo-2
    sim.observe(5000, member('b', { state: 'SECONDARY', term: 2, secs: 130 }), member('a', { state: 'PRIMARY', term: 3, secs: 130 }));
    sim.settle(5000);
    expect(sim.state.history.map((h) => `${h.id} ${String(h.from)}→${h.to}`)).toEqual(['fo-1 a→b', 'fo-2 b→a']);
  });

  it('ctl history and explain show a set’s own election: no decision of ours, the set’s evidence, rollback instead of lost bytes', () => {
    const sim = setUp();
    sim.observe(3000, member('a', { state: 'SECONDARY', secs: 120 }), member('b', { state: 'SECONDARY', secs: 110 }));
    sim.settle(3000);
    sim.observe(4000, member('b', { state: 'PRIMARY', term: 2, secs: 110 }));
    sim.settle(4000);
    const op = sim.state.history[0]!;
    const rows = renderHistory([...sim.state.history]);
    expect(rows[1]).toMatch(/^fo-1\s+failover\s+a\s+b\s+.*1000 ms\s+rolled back\s+success\s+elected by the set: a stepped down/);
    const entry = sim.journal.find((r) => r.entry.type === 'set.changed' && r.entry.fact === 'election' && r.entry.operationId === 'fo-1')!;
    const { type, at, ...data } = entry.entry as unknown as Record<string, unknown> & { type: string; at: number };
    const text = renderExplain({ operation: op, evidence: [], entries: [{ id: entry.id, type, at: new Date(at).toISOString(), data }] }).join('\n');
    expect(text).toContain('failover fo-1: a → b, success in 1000 ms, lost rolled back');
    expect(text).toContain("decision: none of switchyard's: elected by the set: a stepped down (SECONDARY), term 2");
    expect(text).toContain(`elected:  b (${B}, term 2, electionId ${EID(2)})`);
    expect(text).toMatch(/evidence: hello: isWritablePrimary, electionId/);
    expect(text).toMatch(/set\.changed\s+election b:\d+ \(term 2\)/);
    expect(text).not.toMatch(/chosen:|not eligible/);
  });

  it('the dashboard’s history shows a set’s own election with "rolled back" or "-" in the loss column, never bytes', () => {
    const sim = setUp();
    sim.observe(3000, member('a', { state: 'SECONDARY', secs: 120 }), member('b', { state: 'SECONDARY', secs: 110 }));
    sim.settle(3000);
    sim.observe(4000, member('b', { state: 'PRIMARY', term: 2, secs: 110 }));
    sim.settle(4000);
    // b steps down with nothing a lacks: a's election loses nothing
    sim.observe(5000, member('b', { state: 'SECONDARY', term: 2, secs: 110 }), member('a', { state: 'SECONDARY', term: 2, secs: 110 }));
    sim.settle(5000);
    sim.observe(6000, member('a', { state: 'PRIMARY', term: 3, secs: 110 }));
    sim.settle(6000);
    // the dashboard script's history part: its function declarations, run as the page runs them
    const page = vm.createContext({ fmtBytes: (n: number) => `${String(n)} B` });
    vm.runInContext(HISTORY, page);
    const loss = (op: unknown) => (vm.runInContext('loss', page) as (op: unknown) => string)(op);
    expect(sim.state.history.map((op) => `${op.id} ${loss(JSON.parse(JSON.stringify(op)))}`)).toEqual(['fo-1 rolled back', 'fo-2 -']);
  });

  it('a stale primary after a partition (older election) is journaled once and never routed', () => {
    const sim = setUp();
    // b is elected in term 2 while a, cut off, still claims primary with term 1's election
    sim.observe(1000, member('b', { state: 'PRIMARY', term: 2 }), member('c', { state: 'SECONDARY', term: 2 }));
    sim.settle(1000);
    sim.observe(1100, member('a', { state: 'PRIMARY', term: 1 }));
    sim.settle(1100);
    sim.observe(1200, member('a', { state: 'PRIMARY', term: 1 }));
    sim.settle(1200);
    const stale = sim.journal.map((r) => r.entry).filter((x) => x.type === 'set.changed' && x.fact === 'stale-primary');
    expect(stale).toHaveLength(1);
    expect(stale[0]).toMatchObject({ member: A, node: 'a', electionId: EID(1) });
    expect(sim.state.primary).toBe('b');
    const t = sim.table();
    expect(t.primary?.id).toBe('b');
    expect(t.replicas.find((r) => r.id === 'a')?.healthy).toBe(false);
    expect(observedHealth(sim.state, 'a', 1200, sim.settings)).toEqual({ healthy: false, reason: `stale primary: its election (${EID(1)}) is older than the set's` });
    noSteering(sim);
  });

  it('a restarted coordinator (soft state lost) does not take the stale primary’s election for the newest', () => {
    const sim = setUp();
    sim.observe(1000, member('b', { state: 'PRIMARY', term: 2 }));
    sim.settle(1000);
    // the soft layer is rebuilt from the streams; the stale primary happens to report first
    sim.state = { ...sim.state, soft: {}, setView: undefined };
    sim.observe(2000, member('a', { state: 'PRIMARY', term: 1 }), member('b', { state: 'PRIMARY', term: 2 }));
    sim.settle(2000);
    expect(sim.state.primary).toBe('b');
    const elections = sim.journal.map((r) => r.entry).filter((x) => x.type === 'set.changed' && x.fact === 'election');
    expect(elections).toHaveLength(2);
  });

  it('a snapshot keeps the journal’s view of the set, not the soft fold', () => {
    const sim = setUp();
    const snap = JSON.parse(JSON.stringify(toSnapshot(sim.state))) as unknown;
    const back = fromSnapshot(snap, CLUSTER)!;
    expect(back.setView).toBeUndefined();
    expect(back.replicaSet).toEqual(sim.state.replicaSet);
    expect(back.replicaSet).toMatchObject({ primary: A, electionId: EID(1), setName: 'rs0', hosts: [A, B, C] });
    expect(back.primary).toBe('a');
  });

  it('journals members added and removed (by the primary’s word) and a member stuck in RECOVERING', () => {
    const sim = setUp();
    const D = `d:${PORT}`;
    sim.observe(1000, member('a', { state: 'PRIMARY', hosts: [A, B, C, D], setVersion: 2 }));
    sim.settle(1000);
    sim.observe(2000, member('a', { state: 'PRIMARY', hosts: [A, B, D], setVersion: 3 }));
    sim.settle(2000);
    sim.observe(3000, member('b', { state: 'RECOVERING' }));
    sim.settle(3000);
    sim.observe(3000 + 61_000, member('a', { state: 'PRIMARY', hosts: [A, B, D], setVersion: 3 }), member('b', { state: 'RECOVERING' }));
    sim.settle(64_000);
    const facts = sim.journal.flatMap((r) => (r.entry.type === 'set.changed' ? [`${r.entry.fact} ${r.entry.member}`] : []));
    expect(facts).toEqual([`election ${A}`, `member-added ${D}`, `member-removed ${C}`, `member-stuck ${B}`]);
    expect(sim.state.replicaSet?.hosts).toEqual([A, B, D]);
    expect(sim.state.nodes.b?.healthy).toBe(false);
    expect(sim.state.nodes.b?.healthReason).toBe('member recovering');
  });

  it('pause with freezeSecs is a freeze job to the primary’s agent, resume unfreezes (0); other engines refuse freezeSecs', () => {
    const sim = setUp();
    const cmd = (on: Sim, id: string, action: 'pause' | 'resume', freezeSecs?: number) =>
      on.fold({ kind: 'command', id: `${id}-0`, receivedAt: 500, entry: { type: 'command', v: 1, id, action, by: 'ops', at: 500, ...(freezeSecs !== undefined ? { freezeSecs } : {}) } });
    cmd(sim, 'p1', 'pause', 120);
    sim.settle(500);
    expect(sim.journal.map((r) => r.entry).find((e) => e.type === 'cluster.paused')).toMatchObject({ freezeSecs: 120 });
    expect(sim.jobs).toEqual([expect.objectContaining({ node: 'a', action: 'freeze', freezeSecs: 120 })]);
    cmd(sim, 'r1', 'resume');
    sim.settle(600);
    expect(sim.jobs.map((j) => [j.node, j.action, j.freezeSecs])).toEqual([
      ['a', 'freeze', 120],
      ['a', 'freeze', 0],
    ]);
    const pg = new Sim();
    cmd(pg, 'p2', 'pause', 120);
    pg.settle(500);
    expect(pg.journal.map((r) => r.entry).find((e) => e.type === 'command.rejected')).toMatchObject({ commandId: 'p2', reason: expect.stringMatching(/freezeSecs: only a replica set that elects itself/) });
    expect(pg.jobs).toEqual([]);
  });

  it('refuses a failover by hand; a switchover is a steering job to the old primary’s agent, done when the target is elected', () => {
    const sim = setUp();
    const cmd = (id: string, action: 'failover' | 'switchover', to?: string) =>
      sim.fold({ kind: 'command', id: `${id}-0`, receivedAt: 500, entry: { type: 'command', v: 1, id, action, by: 'ops', at: 500, ...(to ? { to } : {}) } });
    cmd('f1', 'failover', 'b');
    sim.settle(500);
    expect(sim.journal.map((r) => r.entry).find((e) => e.type === 'command.rejected')).toMatchObject({ commandId: 'f1', reason: expect.stringMatching(/elects its own primary/) });
    cmd('so-1', 'switchover', 'c');
    sim.settle(600);
    expect(sim.jobs).toEqual([expect.objectContaining({ node: 'a', action: 'switchover', operationId: 'so-1', upstream: { id: 'c', host: 'c', port: PORT } })]);
    expect(sim.state.operation?.phase).toBe('demoting');
    // the job reports (the set elected c) before c's own report: not done until c reports primary
    sim.report(700, { type: 'job.result', v: 1, node: 'a', bootId: 'a-boot-1', at: 700, jobId: 'j', epoch: 1, operationId: 'so-1', action: 'switchover', ok: true, durationMs: 3, message: 'stepped down: c elected' });
    sim.settle(700);
    expect(sim.state.operation?.phase).toBe('demoting');
    sim.observe(800, member('a', { state: 'SECONDARY', term: 2 }), member('c', { state: 'PRIMARY', term: 2 }));
    sim.settle(800);
    expect(sim.state.operation).toBeNull();
    expect(sim.state.primary).toBe('c');
    expect(sim.state.history.at(-1)).toMatchObject({ kind: 'switchover', from: 'a', to: 'c', outcome: 'success' });
    // the set's election that the switchover steered is not a second history item
    expect(sim.state.history.map((h) => h.id)).toEqual(['so-1']);
    const types = sim.journal.map((r) => (r.entry.type === 'set.changed' ? `set.${r.entry.fact}` : r.entry.type));
    expect(types).toContain('set.election');
    expect(types).not.toContain('promotion.requested');
    noSteering(sim);
  });

  it('routes the primary and the secondaries with lastWriteDate and server-selection staleness (the members’ probe interval as heartbeat)', () => {
    const L = 1_700_000_100_000;
    const sim = new Sim({}, initialState(CLUSTER, 'mongodb'));
    sim.observe(10, member('a', { state: 'PRIMARY', lastWriteDate: L }), member('b', { state: 'SECONDARY', lastWriteDate: L - 5000 }), member('c', { state: 'SECONDARY', lastWriteDate: L }));
    sim.settle(10);
    // c's report arrives 2 s later than the primary's, with the same last write: 2 s staler
    sim.observe(2010, member('c', { state: 'SECONDARY', lastWriteDate: L }));
    const t = sim.table();
    expect(t.setName).toBe('rs0');
    expect(t.primary).toMatchObject({ id: 'a', lastWriteDate: new Date(L).toISOString() });
    const b = t.replicas.find((r) => r.id === 'b')!;
    const c = t.replicas.find((r) => r.id === 'c')!;
    expect(b).toMatchObject({ lastWriteDate: new Date(L - 5000).toISOString(), stalenessMs: 5000 + 250 });
    expect(c.stalenessMs).toBe(2000 + 250);
    // a postgres table carries none of it
    expect('stalenessMs' in (new Sim().table().replicas[0] ?? {})).toBe(false);
  });
});

describe('an agent of a mongodb node', () => {
  it('observes only: a managed-process option is a clear configuration error naming it', () => {
    const env = { SWITCHYARD_CLUSTER: 'rs', SWITCHYARD_NODE: 'm1', SWITCHYARD_ENGINE: 'mongodb', SWITCHYARD_PG_PORT: '27017' };
    expect(loadAgentConfigFrom(undefined, env).config.engine).toBe('mongodb');
    let err: unknown;
    try {
      loadAgentConfigFrom(undefined, { ...env, SWITCHYARD_DATA_DIR: '/var/lib/mongo' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).problems.join('\n')).toMatch(/dataDir: not supported with engine mongodb/);
  });
});

describe('ctl shows a set without LSNs', () => {
  it('list: staleness for the replicas; explain: optimes compared through the engine codec', () => {
    const sim = setUp();
    const lines = renderList(sim.table(), Date.now()).join('\n');
    expect(lines).toMatch(/cluster c1 \(mongodb\)/);
    expect(lines).toMatch(/b +replica +replica +b:5432 +stale \d+ ms/);
    const op = { id: 'so-1', kind: 'switchover' as const, from: 'a', to: 'c', reason: 'x', startedAt: '', finishedAt: null, durationMs: null, lostBytes: 0, outcome: 'success' as const };
    const ev = (node: string, lsn: string) => ({ node, reachable: true, process: 'running', role: 'replica', lsn, timeline: 2 });
    expect(whyNotOthers(op, [ev('a', '2:100.5'), ev('b', '2:98.1'), ev('c', '2:100.5')])).toEqual(['b: behind: position 2:98.1 < 2:100.5 (2 s)']);
  });
});
