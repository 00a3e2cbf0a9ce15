/**
 * The operation table (OPERATION_TRANSITIONS in src/core/machine.ts) is what decide
 * reads: every step an operation takes is one of its rows, the decisions are the row's,
 * and the phase evolve folds them into is the row's `to`.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { OPERATION_PHASES, OPERATION_TRANSITIONS, operationRows, REJOIN_TRANSITIONS, type OperationTransition } from '../../src/core/machine.js';
import { operationStep } from '../../src/core/rules/operation.js';
import type { OperationPhase } from '../../src/core/state.js';
import { healthyCluster, jobResult, passWatchers, type PassRecord } from './helpers.js';
import { randomRun } from './random.js';

const key = (t: OperationTransition): string => `${t.kinds.join('+')} ${t.from} --${t.event}--> ${t.to}`;

/** The journal types a row's decisions can produce, in order (follow.requested may repeat, conditional ones may be absent). */
function fitsRow(row: OperationTransition, types: string[]): boolean {
  let i = 0;
  for (const t of types) {
    while (i < row.decisions.length && row.decisions[i] !== t) i++;
    if (i === row.decisions.length) return false;
  }
  return true;
}

afterEach(() => passWatchers.clear());

describe('the operation table', () => {
  it('is well formed: each phase has rows for the kinds that reach it, done rows carry an outcome, no row twice', () => {
    const phases = Object.keys(OPERATION_PHASES) as OperationPhase[];
    for (const ph of phases) expect(OPERATION_TRANSITIONS.some((t) => t.from === ph), ph).toBe(true);
    for (const kind of ['failover', 'switchover'] as const) {
      expect(operationRows(kind, 'start').length, kind).toBeGreaterThan(0);
      expect(operationRows(kind, 'promoting').map((t) => t.event)).toEqual(expect.arrayContaining(['promoted', 'promote-failed', 'timeout', 'new-leader']));
    }
    const seen = new Set<string>();
    for (const t of OPERATION_TRANSITIONS) {
      expect(t.decisions.length, key(t)).toBeGreaterThan(0);
      expect(t.to === 'done', key(t)).toBe(t.outcome !== undefined);
      if (t.to === 'done') expect(t.decisions.at(-1), key(t)).toBe('failover.completed');
      for (const k of t.kinds) {
        const id = `${k} ${t.from} ${t.event}`;
        expect(seen.has(id), id).toBe(false);
        seen.add(id);
      }
    }
  });

  it('every step decide takes in random runs is a row: its decisions, and the phase evolve folds them into', () => {
    const taken = new Map<string, number>();
    passWatchers.add((r: PassRecord) => {
      const op = r.before.operation;
      const started = r.after.operation;
      if (!op) {
        // a start row: the phase the started operation is in is the row's `to`
        if (started) {
          const row = operationRows(started.kind, 'start').find((t) => t.to === started.phase || (started.kind === 'switchover' && started.phase === 'demoting'));
          expect(row, `${started.kind} started in ${started.phase}`).toBeDefined();
          taken.set(key(row!), (taken.get(key(row!)) ?? 0) + 1);
        }
        return;
      }
      const step = operationStep({ state: r.before, now: r.now, s: r.settings, out: [] }, op);
      if (!step) return;
      const { row } = step;
      taken.set(key(row), (taken.get(key(row)) ?? 0) + 1);
      // the row's decisions come first in the pass, in the row's order
      const types = r.decisions.flatMap((d) => (d.type === 'append' ? [d.entry.type] : []));
      let n = 0;
      while (n < types.length && (row.decisions as readonly string[]).includes(types[n]!)) n++;
      expect(n, `${key(row)}: ${types.join(', ')}`).toBeGreaterThan(0);
      expect(fitsRow(row, types.slice(0, n)), `${key(row)}: ${types.join(', ')}`).toBe(true);
      if (row.to === 'done') {
        expect(r.after.operation?.id === op.id, key(row)).toBe(false);
        expect(r.after.history.find((h) => h.id === op.id)?.outcome, key(row)).toBe(row.outcome);
      } else {
        expect(r.after.operation?.phase, key(row)).toBe(row.to);
      }
    });
    for (let seed = 1; seed <= 200; seed++) randomRun(seed, 80);
    // the random runs reach the main rows of both kinds
    for (const k of [
      'failover start --primary-alive--> fencing',
      'failover start --primary-gone--> promoting',
      'failover fencing --fenced--> promoting',
      'failover fencing --timeout--> done',
      'switchover start --asked--> draining',
      'switchover demoting --demoted--> catching-up',
      'switchover demoting --demote-failed--> done',
      'switchover catching-up --caught-up--> promoting',
      'failover+switchover promoting --promoted--> done',
      'failover+switchover promoting --promote-failed--> done',
    ]) {
      expect(taken.get(k) ?? 0, k).toBeGreaterThan(0);
    }
  });

  it('a failover of a hung primary fences first: start → fencing → promoting → done, by the rows', () => {
    const sim = healthyCluster({ settings: { failAfterMs: 1_000 } });
    const rows: string[] = [];
    passWatchers.add((r) => {
      const op = r.before.operation;
      const step = op ? operationStep({ state: r.before, now: r.now, s: r.settings, out: [] }, op) : null;
      if (step) rows.push(`${step.row.from}/${step.row.event}`);
      else if (!op && r.after.operation) rows.push(`start→${r.after.operation.phase}`);
    });
    sim.beat(2_000, { pg1: { reachable: false, error: 'timeout', role: 'unknown', lsn: null } });
    sim.beat(3_100);
    const op = sim.state.operation!;
    expect(op.phase).toBe('fencing');
    sim.report(3_200, jobResult('pg1', { operationId: op.id, action: 'fence', ok: true, message: 'fenced' }));
    sim.pass(3_200);
    expect(sim.state.operation?.phase).toBe('promoting');
    sim.report(3_300, jobResult(op.to, { operationId: op.id, action: 'promote', ok: true }));
    sim.pass(3_300);
    expect(sim.state.operation).toBeNull();
    expect(rows).toEqual(['start→fencing', 'fencing/fenced', 'promoting/promoted']);
    expect(sim.entries('failover.completed').at(-1)).toMatchObject({ kind: 'failover', outcome: 'success' });
  });

  it('a node off the primary is brought back by the rejoin rows: start → rejoining, asked again only once jobRetryMs passed', () => {
    expect(REJOIN_TRANSITIONS.map((t) => `${t.from} --${t.event}--> ${t.to}`)).toEqual(['start --off-primary--> rejoining', 'start --wrong-upstream--> rejoining', 'rejoining --retry-due--> rejoining']);
    const sim = healthyCluster();
    const S = sim.settings;
    const first = sim.beat(2_000, { pg2: { upstream: 'pg3:5432' }, pg3: { role: 'primary', upstream: null, walReceiver: null, standbys: [] } });
    expect(first.jobs.map((j) => [j.node, j.action])).toEqual([
      ['pg2', 'follow'],
      ['pg3', 'rejoin'],
    ]);
    expect(sim.beat(2_000 + S.jobRetryMs - 1).jobs).toEqual([]);
    expect(sim.beat(2_000 + S.jobRetryMs).jobs.map((j) => [j.node, j.action])).toEqual([
      ['pg2', 'follow'],
      ['pg3', 'rejoin'],
    ]);
  });
});
