/**
 * Snapshots and replay: for random journals, fold(all) equals fold(snapshot + tail) at
 * every split point, including after a JSON round trip (what Redis stores).
 */
import { describe, expect, it } from 'vitest';
import { evolve } from '../../src/core/evolve.js';
import { fromSnapshot, journalLayer, toSnapshot } from '../../src/core/snapshot.js';
import { initialState, type ClusterState } from '../../src/core/state.js';
import { CLUSTER, DEAD, Sim, healthyCluster, jobResult, obs, type JournalRecord } from './helpers.js';

/** A small seeded PRNG (mulberry32): the same seed gives the same journal. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Drive the leader through random crashes, promotions, pauses and commands; return its journal. */
function randomJournal(seed: number): JournalRecord[] {
  const rnd = prng(seed);
  const sim: Sim = healthyCluster({ settings: { cooldownMs: 0 } });
  let now = 1_000;
  const nodes = ['pg1', 'pg2', 'pg3'];
  for (let step = 0; step < 60; step++) {
    now += 50 + Math.floor(rnd() * 400);
    const r = rnd();
    const primary = sim.state.primary;
    if (r < 0.15 && primary) sim.observe(now, obs(primary, DEAD));
    else if (r < 0.3 && sim.state.operation) {
      const op = sim.state.operation;
      sim.report(now, jobResult(op.to, { operationId: op.id, action: 'promote', ok: rnd() < 0.8 }));
    } else if (r < 0.4) {
      const n = nodes[Math.floor(rnd() * nodes.length)]!;
      sim.observe(now, obs(n, n === primary ? { role: 'primary' } : {}));
    } else if (r < 0.45) {
      sim.fold({ kind: 'command', id: `cmd-${step}`, receivedAt: now, entry: { type: 'command', v: 1, id: `cmd-${step}`, action: rnd() < 0.5 ? 'pause' : 'resume', by: 'test', at: now } });
    } else if (r < 0.5) {
      const n = nodes[Math.floor(rnd() * nodes.length)]!;
      sim.observe(now, obs(n, { walReceiver: null }));
    } else {
      // every live agent reports again as it is
      for (const n of nodes) {
        const last = sim.last.get(n);
        if (last && last.process !== 'dead') sim.observe(now, obs(n, { ...last, seq: undefined as never, at: undefined as never }));
      }
    }
    sim.pass(now);
  }
  return sim.journal;
}

function foldAll(records: JournalRecord[], from: ClusterState = initialState(CLUSTER)): ClusterState {
  let s = from;
  for (const r of records) s = evolve(s, { kind: 'journal', id: r.id, entry: r.entry });
  return s;
}

describe('snapshots and replay', () => {
  it('fold(all) equals fold(snapshot + tail) for random journals, at every split point', () => {
    let checked = 0;
    for (let seed = 1; seed <= 60; seed++) {
      const journal = randomJournal(seed);
      expect(journal.length).toBeGreaterThan(5);
      const all = journalLayer(foldAll(journal));
      for (let cut = 0; cut <= journal.length; cut += Math.max(1, Math.floor(journal.length / 12))) {
        const stored = JSON.parse(JSON.stringify(toSnapshot(foldAll(journal.slice(0, cut))))) as unknown;
        const restored = fromSnapshot(stored, CLUSTER);
        expect(restored).not.toBeNull();
        const replayed = journalLayer(foldAll(journal.slice(cut), restored!));
        expect(replayed, `seed ${seed}, cut ${cut}`).toEqual(all);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(500);
  });

  it('the journals exercised failovers, pauses and blocked failovers', () => {
    const types = new Set(Array.from({ length: 30 }, (_, i) => randomJournal(i + 1)).flat().map((r) => r.entry.type));
    for (const t of ['failover.started', 'promotion.succeeded', 'cluster.paused', 'node.health-changed']) expect(types).toContain(t);
  });

  it('a snapshot of another cluster or version is refused', () => {
    const snap = toSnapshot(healthyCluster().state);
    expect(fromSnapshot({ ...snap, cluster: 'other' }, CLUSTER)).toBeNull();
    expect(fromSnapshot({ ...snap, v: 99 }, CLUSTER)).toBeNull();
    expect(fromSnapshot(null, CLUSTER)).toBeNull();
  });

  it('replaying entries the snapshot already covers changes nothing', () => {
    const journal = randomJournal(7);
    const snap = fromSnapshot(JSON.parse(JSON.stringify(toSnapshot(foldAll(journal)))), CLUSTER)!;
    expect(journalLayer(foldAll(journal, snap))).toEqual(journalLayer(foldAll(journal)));
  });
});
