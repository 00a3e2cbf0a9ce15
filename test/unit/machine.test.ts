/**
 * The state machine table is the contract: the doc is generated from it, and every
 * change of cluster phase seen in random runs of the core is one of its rows.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { evolve } from '../../src/core/evolve.js';
import { clusterPhase, renderStateMachineDoc, TRANSITIONS, CLUSTER_PHASES, nodePhase } from '../../src/core/machine.js';
import { initialState } from '../../src/core/state.js';
import { CLUSTER, DEAD, healthyCluster, jobResult } from './helpers.js';
import { randomRun } from './random.js';

const doc = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../docs/state-machine.md');

describe('state machine', () => {
  it('docs/state-machine.md is generated from the table (run `npm run docs` after changing it)', () => {
    expect(fs.readFileSync(doc, 'utf8')).toBe(renderStateMachineDoc());
  });

  it('every phase change in random runs is a row of the table', () => {
    const rows = new Set(TRANSITIONS.map((t) => `${t.from} → ${t.to}`));
    const seen = new Map<string, number>();
    for (let seed = 1; seed <= 300; seed++) {
      const journal = randomRun(seed, 80).journal;
      let s = initialState(CLUSTER);
      for (const r of journal) {
        const before = clusterPhase(s);
        s = evolve(s, { kind: 'journal', id: r.id, entry: r.entry });
        const after = clusterPhase(s);
        if (before === after && r.entry.type !== 'node.health-changed') continue;
        const key = `${before} → ${after}`;
        if (!rows.has(key)) throw new Error(`seed ${seed}: ${key} on ${r.entry.type} is not in TRANSITIONS (src/core/machine.ts)`);
        seen.set(key, (seen.get(key) ?? 0) + 1);
      }
    }
    // the runs reach the main paths
    for (const key of ['healthy → primary-down', 'primary-down → failing-over', 'failing-over → degraded', 'healthy → switching-over', 'switching-over → degraded']) {
      expect(seen.get(key) ?? 0, key).toBeGreaterThan(0);
    }
  });

  it('every phase in the table is described, and phases are derived as documented', () => {
    for (const t of TRANSITIONS) {
      expect(CLUSTER_PHASES[t.from]).toBeTruthy();
      expect(CLUSTER_PHASES[t.to]).toBeTruthy();
    }
    const sim = healthyCluster();
    expect(clusterPhase(sim.state)).toBe('healthy');
    expect(nodePhase(sim.state, 'pg1')).toBe('primary');
    expect(nodePhase(sim.state, 'pg2')).toBe('replica');
    expect(clusterPhase(initialState(CLUSTER))).toBe('bootstrapping');
  });

  it('a switchover is switching-over in every phase, its promote step included; a failover is failing-over', () => {
    const sim = healthyCluster({ settings: { switchoverDrainMs: 0 } });
    sim.fold({ kind: 'command', id: 'so-1', receivedAt: 2_000, entry: { type: 'command', v: 1, id: 'so-1', action: 'switchover', to: 'pg2', by: 't', at: 2_000 } });
    sim.pass(2_000);
    const phases: string[] = [`${sim.state.operation?.phase}:${clusterPhase(sim.state)}`];
    sim.report(2_100, jobResult('pg1', { operationId: 'so-1', action: 'demote', ok: true, lsn: '0/3000000' }));
    sim.pass(2_100);
    phases.push(`${sim.state.operation?.phase}:${clusterPhase(sim.state)}`);
    sim.pass(2_100);
    phases.push(`${sim.state.operation?.phase}:${clusterPhase(sim.state)}`);
    expect(phases).toEqual(['demoting:switching-over', 'catching-up:switching-over', 'promoting:switching-over']);
    expect(nodePhase(sim.state, 'pg2')).toBe('promoting');
    sim.report(2_200, jobResult('pg2', { operationId: 'so-1', action: 'promote', ok: true }));
    sim.pass(2_200);
    expect(sim.state.operation).toBeNull();
    expect(sim.entries('failover.completed').at(-1)).toMatchObject({ operationId: 'so-1', kind: 'switchover', outcome: 'success' });

    const fo = healthyCluster();
    fo.beat(2_000, { pg1: DEAD });
    expect(fo.state.operation?.phase).toBe('promoting');
    expect(clusterPhase(fo.state)).toBe('failing-over');
  });
});
