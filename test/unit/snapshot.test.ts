/**
 * Snapshots and replay: for random journals, fold(all) equals fold(snapshot + tail) at
 * every split point, including after a JSON round trip (what Redis stores).
 */
import { describe, expect, it } from 'vitest';
import { evolve } from '../../src/core/evolve.js';
import { fromSnapshot, journalLayer, toSnapshot } from '../../src/core/snapshot.js';
import { initialState, type ClusterState } from '../../src/core/state.js';
import { CLUSTER, healthyCluster, type JournalRecord } from './helpers.js';
import { randomRun } from './random.js';

function randomJournal(seed: number): JournalRecord[] {
  return randomRun(seed).journal;
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
