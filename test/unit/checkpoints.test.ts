/**
 * Journal checkpoints (pure): the nearest checkpoint at or before an id, thinning past
 * the maximum, and fold(checkpoint + tail) = fold(whole journal) for any id.
 */
import { describe, expect, it } from 'vitest';
import { JournalCheckpoints } from '../../src/core/checkpoints.js';
import { evolve } from '../../src/core/evolve.js';
import { initialState, type ClusterState } from '../../src/core/state.js';
import type { JournalEntry } from '../../src/events/journal.js';

function journal(n: number): Array<{ id: string; entry: JournalEntry }> {
  const out: Array<{ id: string; entry: JournalEntry }> = [];
  for (let i = 0; i < n; i++) {
    const t = 1_000_000 + i;
    const node = `pg${(i % 3) + 1}`;
    const entry: JournalEntry =
      i % 5 === 4
        ? { type: 'node.health-changed', v: 1, at: t, epoch: 1, node, healthy: i % 2 === 0, reason: `r${i}` }
        : { type: 'node.registered', v: 1, at: t, epoch: 1, node, host: '127.0.0.1', port: 1000 + i, priority: 100 };
    out.push({ id: `${t}-${i % 2}`, entry });
  }
  return out;
}

const foldTo = (j: Array<{ id: string; entry: JournalEntry }>, from: ClusterState, fromIdx: number, toIdx: number): ClusterState => {
  let s = from;
  for (let i = fromIdx; i <= toIdx; i++) s = evolve(s, { kind: 'journal', id: j[i]!.id, entry: j[i]!.entry });
  return s;
};

describe('journal checkpoints', () => {
  it('finds the newest checkpoint at or before an id', () => {
    const cps = new JournalCheckpoints(10, 100);
    const s = initialState('c');
    cps.add('20-0', s);
    cps.add('10-0', s);
    cps.add('30-5', s);
    cps.add('30-5', s);
    expect(cps.size).toBe(3);
    expect(cps.nearest('5-0')).toBeNull();
    expect(cps.nearest('10-0')?.logId).toBe('10-0');
    expect(cps.nearest('29-9')?.logId).toBe('20-0');
    expect(cps.nearest('30-4')?.logId).toBe('20-0');
    expect(cps.nearest(null)?.logId).toBe('30-5');
  });

  it('thins out past its maximum and keeps the newest', () => {
    const cps = new JournalCheckpoints(10, 8);
    for (let i = 1; i <= 20; i++) cps.add(`${i}-0`, initialState('c'));
    expect(cps.size).toBeLessThanOrEqual(8);
    expect(cps.nearest(null)?.logId).toBe('20-0');
  });

  it('folds from the nearest checkpoint plus a bounded tail to what the whole journal gives', () => {
    const j = journal(1000);
    const every = 64;
    const cps = new JournalCheckpoints(every, 1000);
    let s = initialState('c');
    for (const [i, r] of j.entries()) {
      s = evolve(s, { kind: 'journal', id: r.id, entry: r.entry });
      if ((i + 1) % every === 0) cps.add(r.id, s);
    }
    for (const idx of [0, 1, 63, 64, 65, 500, 777, 998, 999]) {
      const at = j[idx]!.id;
      const cp = cps.nearest(at);
      const start = cp ? j.findIndex((r) => r.id === cp.logId) + 1 : 0;
      expect(idx - start).toBeLessThan(every); // the tail is bounded
      const viaCheckpoint = foldTo(j, cp ? cp.state : initialState('c'), start, idx);
      expect(viaCheckpoint).toEqual(foldTo(j, initialState('c'), 0, idx));
    }
  });
});
