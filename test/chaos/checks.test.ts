/**
 * The chaos checks themselves, on made-up samples: they must flag what they promise to
 * flag, and not flag timing noise.
 */
import { describe, expect, it } from 'vitest';
import { epochRegressions, FenceProber, lossIsJournaled, RoutingWatcher, type FenceProbe, type HistoryEntry, type JournalEvent, type LossInput, type RoutingSample } from './support.js';

const probe = (node: string, sent: number, acked: number, ok = true): FenceProbe => ({ node, sent, acked, ok });
const sample = (coordinator: string, at: number, generation: number, primary: string | null): RoutingSample => ({ coordinator, at, generation, epoch: 1, writable: primary !== null, primary });

/* a made-up journal: stream ids carry the time (ms) of each entry */
const entry = (ms: number, type: string, data: Record<string, unknown>): JournalEvent => ({ id: `${ms}-0`, type, at: new Date(ms).toISOString(), data: { epoch: 1, ...data } });
const started = (ms: number, op: string, from: string, to: string, lostBytes = 0, kind = 'failover'): JournalEvent =>
  entry(ms, 'failover.started', { operationId: op, kind, from, to, reason: 'postmaster exited', manual: false, lostBytes, evidence: [] });
const completed = (ms: number, op: string, outcome = 'success'): JournalEvent => entry(ms, 'failover.completed', { operationId: op, outcome, durationMs: 100, reason: '' });
const measured = (ms: number, op: string, from: string, lostBytes: number): JournalEvent => entry(ms, 'failover.loss', { operationId: op, node: from, walEnd: '0/3000100', forkLsn: '0/3000000', lostBytes });
const item = (op: string, from: string, to: string, lostBytes: number, lossMeasured: boolean, kind: 'failover' | 'switchover' = 'failover'): HistoryEntry => ({
  id: op,
  kind,
  from,
  to,
  reason: '',
  startedAt: '',
  finishedAt: '',
  durationMs: 100,
  lostBytes,
  outcome: 'success',
  forkLsn: '0/3000000',
  lossMeasured,
});
/** rows 1..n acknowledged at 1000 + id ms; `lost` of them missing */
const loss = (over: Partial<LossInput>): LossInput => ({ synchronous: false, lost: [], ackedAt: (id) => 1000 + id, events: [], history: [], deadAgents: [], faultAt: 1000, ...over });

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

  it('loss: no row lost is fine, measured or not', () => {
    expect(lossIsJournaled(loss({})).violations).toEqual([]);
    const v = lossIsJournaled(loss({ events: [started(2000, 'fo-1', 'pg1', 'pg2'), completed(2100, 'fo-1')], history: [item('fo-1', 'pg1', 'pg2', 0, false)] }));
    expect(v.violations).toEqual([]);
    expect(v.operations.map((o) => o.verdict)).toEqual(['none']);
  });

  it('loss: rows lost and a measured failover.loss with enough bytes account for them', () => {
    const v = lossIsJournaled(
      loss({ lost: [98, 99, 100], events: [started(2000, 'fo-1', 'pg1', 'pg2'), completed(2100, 'fo-1'), measured(2500, 'fo-1', 'pg1', 480)], history: [item('fo-1', 'pg1', 'pg2', 480, true)] }),
    );
    expect(v.violations).toEqual([]);
    expect(v.operations[0]).toMatchObject({ verdict: 'measured', rows: [98, 99, 100] });
  });

  it('loss: a measured end of WAL short of a lost row\'s own WAL position is flagged', () => {
    const events = [started(2000, 'fo-1', 'pg1', 'pg2'), completed(2100, 'fo-1'), measured(2500, 'fo-1', 'pg1', 256)];
    const history = [item('fo-1', 'pg1', 'pg2', 256, true)];
    // walEnd is 0/3000100: rows written at 0/3000040 and 0/30000A0 are covered, one at 0/3000100 is not
    const at: Record<number, string> = { 99: '0/3000040', 100: '0/30000A0', 101: '0/3000100' };
    expect(lossIsJournaled(loss({ lost: [99, 100], lsnOf: (id) => at[id], events, history })).violations).toEqual([]);
    const v = lossIsJournaled(loss({ lost: [99, 100, 101], lsnOf: (id) => at[id], events, history }));
    expect(v.violations).toHaveLength(1);
    expect(v.violations[0]).toMatch(/walEnd 0\/3000100 falls short of 1 lost rows.*id 101/);
  });

  it('loss: rows lost with a measured loss of 0 bytes is a silent loss', () => {
    const v = lossIsJournaled(loss({ lost: [100], events: [started(2000, 'fo-1', 'pg1', 'pg2'), completed(2100, 'fo-1'), measured(2500, 'fo-1', 'pg1', 0)], history: [item('fo-1', 'pg1', 'pg2', 0, true)] }));
    expect(v.violations).toHaveLength(1);
    expect(v.violations[0]).toMatch(/silent loss/);
  });

  it('loss: a measured loss too small to hold the missing rows is flagged', () => {
    const lost = Array.from({ length: 10 }, (_, i) => 91 + i);
    const v = lossIsJournaled(loss({ lost, events: [started(2000, 'fo-1', 'pg1', 'pg2'), completed(2100, 'fo-1'), measured(2500, 'fo-1', 'pg1', 40)], history: [item('fo-1', 'pg1', 'pg2', 40, true)] }));
    expect(v.violations).toHaveLength(1);
    expect(v.violations[0]).toMatch(/under-measured/);
  });

  it('loss: no measurement while the old primary\'s agent lives is a violation, even with a non-zero estimate', () => {
    const v = lossIsJournaled(loss({ lost: [100], events: [started(2000, 'fo-1', 'pg1', 'pg2', 4096), completed(2100, 'fo-1')], history: [item('fo-1', 'pg1', 'pg2', 4096, false)] }));
    expect(v.violations).toHaveLength(1);
    expect(v.violations[0]).toMatch(/no failover.loss journaled/);
    expect(v.unknown).toEqual([]);
  });

  it('loss: no measurement because the old primary\'s agent died with its host is unknown, not a failure', () => {
    const v = lossIsJournaled(
      loss({ lost: [100], deadAgents: ['pg1'], events: [started(2000, 'fo-1', 'pg1', 'pg2', 0), completed(2100, 'fo-1')], history: [item('fo-1', 'pg1', 'pg2', 0, false)] }),
    );
    expect(v.violations).toEqual([]);
    expect(v.unknown).toHaveLength(1);
    expect(v.unknown[0]).toMatch(/UNKNOWN/);
    // a measurement, when there is one after all, is judged as any other
    const m = lossIsJournaled(
      loss({ lost: [100], deadAgents: ['pg1'], events: [started(2000, 'fo-1', 'pg1', 'pg2'), completed(2100, 'fo-1'), measured(2500, 'fo-1', 'pg1', 0)], history: [item('fo-1', 'pg1', 'pg2', 0, true)] }),
    );
    expect(m.violations).toHaveLength(1);
  });

  it('loss: rows are charged to the failover that discarded them; rows acknowledged after every failover are unexplained', () => {
    const events = [started(2000, 'fo-1', 'pg1', 'pg2'), completed(2100, 'fo-1'), measured(2500, 'fo-1', 'pg1', 0), started(5000, 'fo-2', 'pg2', 'pg3'), completed(5100, 'fo-2'), measured(5500, 'fo-2', 'pg2', 200)];
    const history = [item('fo-1', 'pg1', 'pg2', 0, true), item('fo-2', 'pg2', 'pg3', 200, true)];
    // acknowledged (by pg2) after fo-1, lost by fo-2: measured 200 bytes, fine
    const ok = lossIsJournaled(loss({ lost: [3000], events, history }));
    expect(ok.violations).toEqual([]);
    expect(ok.operations.map((o) => o.rows)).toEqual([[], [3000]]);
    // acknowledged before fo-1, which measured nothing lost: silent
    expect(lossIsJournaled(loss({ lost: [500], events, history })).violations[0]).toMatch(/fo-1.*silent loss/);
    // acknowledged after fo-2 completed: no failover explains it
    const late = lossIsJournaled(loss({ lost: [9000], events, history }));
    expect(late.unexplained).toEqual([9000]);
    expect(late.violations).toHaveLength(1);
    // a failed failover discards nothing
    expect(lossIsJournaled(loss({ lost: [100], events: [started(2000, 'fo-1', 'pg1', 'pg2'), completed(2100, 'fo-1', 'failed')] })).unexplained).toEqual([100]);
  });

  it('loss: synchronous mode loses nothing; a switchover loses nothing; journal and history must agree', () => {
    const events = [started(2000, 'fo-1', 'pg1', 'pg2'), completed(2100, 'fo-1'), measured(2500, 'fo-1', 'pg1', 480)];
    expect(lossIsJournaled(loss({ synchronous: true, lost: [100], events, history: [item('fo-1', 'pg1', 'pg2', 480, true)] })).violations).toHaveLength(1);
    const so = lossIsJournaled(loss({ lost: [100], events: [started(2000, 'so-1', 'pg1', 'pg2', 0, 'switchover'), completed(2100, 'so-1')], history: [item('so-1', 'pg1', 'pg2', 0, false, 'switchover')] }));
    expect(so.violations[0]).toMatch(/switchover lost 1/);
    expect(lossIsJournaled(loss({ lost: [100], events, history: [item('fo-1', 'pg1', 'pg2', 0, false)] })).violations[0]).toMatch(/history says 0/);
    expect(lossIsJournaled(loss({ events: events.slice(0, 2), history: [item('fo-1', 'pg1', 'pg2', 480, true)] })).violations[0]).toMatch(/no failover.loss entry/);
  });

  it('journal: an entry with an older epoch after a newer one is flagged', () => {
    const ev = (id: string, epoch: number): JournalEvent => ({ id, type: 'x', at: '', data: { epoch } });
    expect(epochRegressions([ev('1-0', 1), ev('2-0', 2), ev('3-0', 2)])).toEqual([]);
    expect(epochRegressions([ev('1-0', 1), ev('2-0', 2), ev('3-0', 1)])).toHaveLength(1);
  });
});
