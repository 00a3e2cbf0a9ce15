/** The MongoDB fold, pure: SDAM fencing by (electionId, setVersion), facts with evidence, routing with staleness. */
import { describe, expect, it } from 'vitest';
import type { MongoObservation } from '../../src/engines/mongo/probe.js';
import { compareElection, foldMongo, initialMongoState, mongoRouting, type MemberReport, type MongoFact, type MongoSetState } from '../../src/engines/mongo/topology.js';

const A = 'a:27017';
const B = 'b:27017';
const C = 'c:27017';
const EID = (term: number) => `7fffffff${term.toString(16).padStart(16, '0')}`;

function obs(me: string, state: string, o: Partial<MongoObservation> = {}): MongoObservation {
  return {
    isWritablePrimary: state === 'PRIMARY',
    secondary: state === 'SECONDARY',
    arbiterOnly: false,
    state,
    setName: 'rs0',
    setVersion: 1,
    electionId: null,
    term: 1,
    opTime: null,
    position: null,
    lastWriteDate: 1_000_000,
    hosts: [A, B, C],
    passives: [],
    arbiters: [],
    primary: null,
    me,
    tags: {},
    syncSourceHost: null,
    members: [],
    ...o,
  };
}

function run(reports: MemberReport[], s: MongoSetState = initialMongoState()): { state: MongoSetState; facts: MongoFact[] } {
  const facts: MongoFact[] = [];
  for (const r of reports) {
    const out = foldMongo(s, r, { stuckAfterMs: 1000 });
    s = out.state;
    facts.push(...out.facts);
  }
  return { state: s, facts };
}

describe('mongo fold', () => {
  it('orders elections by electionId first, then setVersion; nulls oldest', () => {
    expect(compareElection(EID(2), 1, EID(3), 1)).toBeLessThan(0);
    expect(compareElection(EID(3), 1, EID(2), 9)).toBeGreaterThan(0);
    expect(compareElection(EID(3), 1, EID(3), 2)).toBeLessThan(0);
    expect(compareElection(null, 5, EID(1), 1)).toBeLessThan(0);
    expect(compareElection(EID(1), 1, EID(1), 1)).toBe(0);
  });

  it('journals the first primary, then an election, and fences the old primary when it still claims primary', () => {
    const { state, facts } = run([
      { address: A, at: 0, obs: obs(A, 'PRIMARY', { electionId: EID(1) }) },
      { address: B, at: 0, obs: obs(B, 'SECONDARY') },
      { address: C, at: 0, obs: obs(C, 'SECONDARY') },
      { address: B, at: 10, obs: obs(B, 'PRIMARY', { electionId: EID(2), term: 2 }) },
      { address: A, at: 20, obs: obs(A, 'PRIMARY', { electionId: EID(1) }) },
    ]);
    expect(facts.map((f) => f.type)).toEqual(['election', 'election', 'stale-primary']);
    expect(facts[1]).toMatchObject({ primary: B, previous: A, electionId: EID(2) });
    expect(facts[2]).toMatchObject({ member: A, electionId: EID(1), maxElectionId: EID(2) });
    expect(facts[2]?.evidence).toContain('not routed');
    const routing = mongoRouting(state, 10_000);
    expect(routing.primary?.address).toBe(B);
    expect(routing.secondaries.map((s) => s.address)).toEqual([C]);
    expect(routing.excluded).toEqual([{ address: A, reason: 'stale primary (older electionId/setVersion)' }]);
  });

  it('a primary with the same electionId but an older setVersion is stale', () => {
    const { facts, state } = run([
      { address: A, at: 0, obs: obs(A, 'PRIMARY', { electionId: EID(1), setVersion: 3 }) },
      { address: B, at: 5, obs: obs(B, 'PRIMARY', { electionId: EID(1), setVersion: 2 }) },
    ]);
    expect(facts.map((f) => f.type)).toEqual(['election', 'stale-primary']);
    expect(state.primary).toBe(A);
  });

  it('journals a step-down with its evidence, and no primary until the next election', () => {
    const { facts, state } = run([
      { address: A, at: 0, obs: obs(A, 'PRIMARY', { electionId: EID(1) }) },
      { address: A, at: 10, obs: obs(A, 'SECONDARY') },
    ]);
    expect(facts[1]).toMatchObject({ type: 'step-down', member: A, state: 'SECONDARY' });
    expect(facts[1]?.evidence).toContain('no primary known');
    expect(state.primary).toBeNull();
    expect(mongoRouting(state, 10_000).primary).toBeNull();
  });

  it('journals members added and removed by the primary\'s host list', () => {
    const { facts } = run([
      { address: A, at: 0, obs: obs(A, 'PRIMARY', { electionId: EID(1) }) },
      { address: A, at: 10, obs: obs(A, 'PRIMARY', { electionId: EID(1), setVersion: 2, hosts: [A, B, 'd:27017'] }) },
    ]);
    expect(facts.slice(1).map((f) => [f.type, 'member' in f ? f.member : null])).toEqual([
      ['member-added', 'd:27017'],
      ['member-removed', C],
    ]);
  });

  it('journals a member stuck in RECOVERING once per spell', () => {
    const { facts } = run([
      { address: C, at: 0, obs: obs(C, 'RECOVERING') },
      { address: C, at: 500, obs: obs(C, 'RECOVERING') },
      { address: C, at: 1500, obs: obs(C, 'RECOVERING') },
      { address: C, at: 2500, obs: obs(C, 'RECOVERING') },
      { address: C, at: 3000, obs: obs(C, 'SECONDARY') },
      { address: C, at: 4000, obs: obs(C, 'ROLLBACK') },
      { address: C, at: 5100, obs: obs(C, 'ROLLBACK') },
    ]);
    expect(facts.map((f) => (f.type === 'member-stuck' ? [f.state, f.forMs] : f.type))).toEqual([
      ['RECOVERING', 1500],
      ['ROLLBACK', 1100],
    ]);
  });

  it('a report from another set is refused with evidence and changes nothing', () => {
    const first = run([{ address: A, at: 0, obs: obs(A, 'PRIMARY', { electionId: EID(1) }) }]);
    const { state, facts } = run([{ address: B, at: 1, obs: obs(B, 'PRIMARY', { electionId: EID(9), setName: 'other' }) }], first.state);
    expect(facts).toMatchObject([{ type: 'set-name-mismatch', member: B, got: 'other' }]);
    expect(state.primary).toBe(A);
  });

  it('routing carries lastWriteDate and server-selection staleness', () => {
    const { state } = run([
      { address: A, at: 50_000, obs: obs(A, 'PRIMARY', { electionId: EID(1), lastWriteDate: 1_000_000 }) },
      { address: B, at: 20_000, obs: obs(B, 'SECONDARY', { lastWriteDate: 970_000 }) },
      { address: C, at: 60_000, obs: obs(C, 'SECONDARY', { lastWriteDate: 900_000 }) },
    ]);
    expect(mongoRouting(state, 10_000).secondaries).toEqual([
      { address: B, lastWriteDate: 970_000, stalenessMs: 10_000 },
      { address: C, lastWriteDate: 900_000, stalenessMs: 120_000 },
    ]);
  });

  it('without a primary, routing measures each secondary against the newest secondary (update times left out)', () => {
    const { state } = run([
      { address: A, at: 50_000, obs: obs(A, 'PRIMARY', { electionId: EID(1), lastWriteDate: 1_000_000 }) },
      { address: B, at: 20_000, obs: obs(B, 'SECONDARY', { lastWriteDate: 970_000 }) },
      { address: C, at: 60_000, obs: obs(C, 'SECONDARY', { lastWriteDate: 900_000 }) },
      { address: A, at: 61_000, obs: null },
    ]);
    const r = mongoRouting(state, 10_000);
    expect(r.primary).toBeNull();
    // SMax is b: b 0 + 10 s, c 70 s + 10 s (with a primary's formula c would be 120 s, b 10 s)
    expect(r.secondaries).toEqual([
      { address: B, lastWriteDate: 970_000, stalenessMs: 10_000 },
      { address: C, lastWriteDate: 900_000, stalenessMs: 80_000 },
    ]);
    expect(r.excluded).toEqual([{ address: A, reason: 'unreachable' }]);
  });
});
