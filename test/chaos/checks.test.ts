/**
 * The chaos checks themselves, on made-up samples: they must flag what they promise to
 * flag, and not flag timing noise.
 */
import { describe, expect, it } from 'vitest';
import { epochRegressions, FenceProber, RoutingWatcher, type FenceProbe, type JournalEvent, type RoutingSample } from './support.js';

const probe = (node: string, sent: number, acked: number, ok = true): FenceProbe => ({ node, sent, acked, ok });
const sample = (coordinator: string, at: number, generation: number, primary: string | null): RoutingSample => ({ coordinator, at, generation, epoch: 1, writable: primary !== null, primary });

describe('chaos checks', () => {
  it('fence: a write accepted by one node while another provably takes writes is flagged', async () => {
    const f = new FenceProber([]);
    await f.stop();
    f.probes.push(probe('pg1', 0, 2), probe('pg1', 50, 52), probe('pg1', 100, 102), probe('pg2', 60, 61));
    expect(f.violations().certain).toHaveLength(1);
    expect(f.writers()).toEqual(['pg1', 'pg2']);
  });

  it('fence: a hand-over (old primary stops, new one starts) is not flagged, nor a slow acknowledgement', async () => {
    const f = new FenceProber([]);
    await f.stop();
    f.probes.push(probe('pg1', 0, 2), probe('pg1', 50, 52), probe('pg1', 100, 400), probe('pg1', 450, 451, false));
    f.probes.push(probe('pg2', 300, 301, false), probe('pg2', 350, 352), probe('pg2', 500, 501));
    expect(f.violations().certain).toEqual([]);
    // [first send, last ack] windows overlap: reported for diagnosis only
    expect(f.violations().loose).toHaveLength(1);
  });

  it('fence: a failed probe ends a run', async () => {
    const f = new FenceProber([]);
    await f.stop();
    f.probes.push(probe('pg1', 0, 1), probe('pg1', 50, 51, false), probe('pg1', 100, 101));
    expect(f.runs().get('pg1')!.map((r) => r.length)).toEqual([1, 1]);
  });

  it('routing: two primaries under one generation, on any coordinators, are flagged; so is a generation going back', async () => {
    const w = new RoutingWatcher([], 'c');
    await w.stop();
    w.samples.push(sample('c1', 0, 5, 'pg1'), sample('c2', 1, 5, null), sample('c2', 2, 6, 'pg2'), sample('c1', 3, 6, 'pg2'));
    expect(w.violations()).toEqual([]);
    w.samples.push(sample('c2', 4, 5, 'pg3'));
    expect(w.violations()).toHaveLength(2);
    expect(w.primariesSeen()).toEqual(['pg1', 'pg2', 'pg3']);
  });

  it('journal: an entry with an older epoch after a newer one is flagged', () => {
    const ev = (id: string, epoch: number): JournalEvent => ({ id, type: 'x', at: '', data: { epoch } });
    expect(epochRegressions([ev('1-0', 1), ev('2-0', 2), ev('3-0', 2)])).toEqual([]);
    expect(epochRegressions([ev('1-0', 1), ev('2-0', 2), ev('3-0', 1)])).toHaveLength(1);
  });
});
