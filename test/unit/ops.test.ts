/**
 * Issue 13 in the pure core and the CLI's rendering: what operators see of outages
 * (reasons journaled, the routing table's nodes and phase), the promoted timeline
 * journaled from the job result, and ctl's text output and token rules.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { afterId, renderExplain, renderHistory, renderList, resolveTarget, whyNotOthers } from '../../src/cli/ctl.js';
import { reasonNewsworthy } from '../../src/core/decide.js';
import { routingTable } from '../../src/core/routing.js';
import { initialState } from '../../src/core/state.js';
import { evolve } from '../../src/core/evolve.js';
import { DEAD, healthyCluster, jobResult } from './helpers.js';

describe('reasons operators see', () => {
  it('a first verdict and an agent going silent or coming back are newsworthy; the same reason is not', () => {
    expect(reasonNewsworthy('registered', 'unreachable: refused')).toBe(true);
    expect(reasonNewsworthy('primary', 'agent silent; peers reach it')).toBe(true);
    expect(reasonNewsworthy('agent silent; peers reach it', 'primary')).toBe(true);
    expect(reasonNewsworthy('streaming', 'streaming')).toBe(false);
    expect(reasonNewsworthy('unreachable: refused', 'process exited')).toBe(false);
  });

  it('the routing table lists every node, down ones included, with phase and reason; replicas stay the readable view', () => {
    const sim = healthyCluster();
    sim.append(1_500, { type: 'cluster.paused', by: 'ops' });
    sim.beat(2_000, { pg1: DEAD });
    const t = sim.table();
    expect(t.phase).toBe('primary-down');
    expect(t.paused).toBe(true);
    expect(t.blocked).toMatch(/^paused: primary pg1 failed \(postmaster exited\)/);
    expect(t.primary).toBeNull();
    expect(t.nodes?.map((n) => [n.id, n.role, n.phase, n.healthy])).toEqual([
      ['pg1', 'primary', 'primary-down', false],
      ['pg2', 'replica', 'replica', true],
      ['pg3', 'replica', 'replica', true],
    ]);
    expect(t.nodes?.[0]?.reason).toBe('process exited');
    expect(t.replicas.map((r) => r.id)).toEqual(['pg2', 'pg3']);
  });

  it('an empty cluster dates its table from its first journal entry, not 1970', () => {
    const s = evolve(initialState('c1'), { kind: 'journal', id: '5000-0', entry: { type: 'leader.changed', v: 1, at: 5_000, epoch: 1, coordinator: 'c1' } });
    expect(routingTable(s).updatedAt).toBe(new Date(5_000).toISOString());
    expect(routingTable(s).generation).toBe(0);
  });

  it('promotion.succeeded carries the timeline from the promote job when its result comes before the node reports', () => {
    const sim = healthyCluster();
    sim.fold({ kind: 'command', id: 'so-1', receivedAt: 2_000, entry: { type: 'command', v: 1, id: 'so-1', action: 'switchover', to: 'pg2', by: 't', at: 2_000 } });
    sim.settle(2_000);
    sim.report(2_100, jobResult('pg1', { operationId: 'so-1', action: 'demote', ok: true, lsn: '0/3000000' }));
    sim.settle(2_100);
    sim.report(2_200, jobResult('pg2', { operationId: 'so-1', action: 'promote', ok: true, lsn: '0/3000000', timeline: 2 }));
    sim.settle(2_200);
    expect(sim.entries('promotion.succeeded').at(-1)).toMatchObject({ operationId: 'so-1', node: 'pg2', timeline: 2 });
  });
});

describe('ctl text', () => {
  const base = {
    cluster: 'sb',
    engine: 'postgres',
    generation: 9,
    epoch: 2,
    updatedAt: '2026-12-01T23:00:00.000Z',
    replicas: [
      { id: 'pg2', host: 'h', port: 2, healthy: true, lagBytes: 0, lagMs: 0, sync: false },
      { id: 'pg3', host: 'h', port: 3, healthy: false, lagBytes: 0, lagMs: 0, sync: false },
    ],
  };

  it('list: phase, PAUSED and the blocked reason; every node; no lag figure for an unhealthy replica', () => {
    const out = renderList(
      {
        ...base,
        writable: false,
        primary: null,
        phase: 'primary-down',
        paused: true,
        blocked: 'paused: primary pg1 failed (postmaster exited); no automatic failover until resumed',
        nodes: [
          { id: 'pg1', host: 'h', port: 1, role: 'primary', phase: 'primary-down', healthy: false, reason: 'process exited' },
          { id: 'pg2', host: 'h', port: 2, role: 'replica', phase: 'replica', healthy: true, reason: 'streaming' },
          { id: 'pg3', host: 'h', port: 3, role: 'replica', phase: 'replica-down', healthy: false, reason: 'agent silent' },
        ],
      },
      Date.parse('2026-12-01T23:00:05.000Z'),
    ).join('\n');
    expect(out).toMatch(/^cluster sb \(postgres\) {2}phase: primary down .*NOT WRITABLE {2}PAUSED$/m);
    expect(out).toMatch(/failover blocked: paused: primary pg1 failed/);
    expect(out).toMatch(/last change 2026-12-01T23:00:00\.000Z \(5 s ago\); read 2026-12-01T23:00:05\.000Z/);
    expect(out).toMatch(/pg1\s+primary \(down\)\s+primary-down\s+h:1\s+process exited/);
    expect(out).toMatch(/pg2\s+replica\s+replica\s+h:2\s+0 B, 0 ms\s+streaming/);
    expect(out).toMatch(/pg3\s+replica\s+replica-down\s+h:3\s+-\s+agent silent/);
    expect(out).not.toMatch(/pg3.*0 B/);
    // a down node's silent agent is its reason already: no extra line for it
    expect(out).not.toMatch(/attention/);
  });

  it("list: a healthy primary whose agent is silent gets a line of its own, not just a reason", () => {
    const out = renderList(
      { ...base, writable: true, primary: { id: 'pg1', host: 'h', port: 1 }, phase: 'healthy', nodes: [{ id: 'pg1', host: 'h', port: 1, role: 'primary', phase: 'primary', healthy: true, reason: 'agent silent; peers reach it' }] },
      Date.parse('2026-12-01T23:00:05.000Z'),
    ).join('\n');
    expect(out).toMatch(/^ {2}attention: pg1's agent is silent \(agent silent; peers reach it\): no job runs on pg1 until it is back$/m);
  });

  it('history and explain: one time format, the decision, why not the others, the steps', () => {
    const op = { id: 'fo-1', kind: 'failover' as const, from: 'pg1', to: 'pg2', reason: 'postmaster exited', startedAt: '2026-12-01T23:00:00.000Z', finishedAt: '2026-12-01T23:00:00.150Z', durationMs: 150, lostBytes: 0, outcome: 'success', lossMeasured: true };
    expect(renderHistory([op]).join('\n')).toMatch(/fo-1\s+failover\s+pg1\s+pg2\s+2026-12-01T23:00:00\.000Z\s+150 ms\s+0 B\s+success\s+postmaster exited/);
    const evidence = [
      { node: 'pg1', reachable: false, error: 'refused', process: 'dead', role: 'unknown', lsn: null, timeline: null },
      { node: 'pg2', reachable: true, process: 'running', role: 'replica', lsn: '0/3000100', timeline: 1 },
      { node: 'pg3', reachable: true, process: 'running', role: 'replica', lsn: '0/3000000', timeline: 1 },
      { node: 'pg4', reachable: false, error: 'timeout', role: 'unknown' },
    ];
    expect(whyNotOthers(op, evidence)).toEqual(['pg3: behind: LSN 0/3000000 < 0/3000100 (256 B)', 'pg4: unreachable (timeout)']);
    const text = renderExplain({
      operation: op,
      evidence,
      entries: [
        { id: '1-0', type: 'failover.started', at: '2026-12-01T23:00:00.000Z', data: { from: 'pg1', to: 'pg2', evidence } },
        { id: '1-1', type: 'promotion.succeeded', at: '2026-12-01T23:00:00.140Z', data: { node: 'pg2', timeline: 2, forkLsn: '0/3000100' } },
        { id: '1-2', type: 'failover.completed', at: '2026-12-01T23:00:00.150Z', data: { outcome: 'success', reason: 'pg2 promoted' } },
      ],
    }).join('\n');
    expect(text).toMatch(/^failover fo-1: pg1 → pg2, success in 150 ms, lost 0 B$/m);
    // the decision names the failed primary and what its last report said, once
    expect(text).toMatch(/^ {2}decision: the primary pg1 failed: postmaster exited \(pg1's agent reported: process dead, unreachable \(refused\)\)$/m);
    expect(text).toMatch(/chosen:\s+pg2 \(timeline 1, LSN 0\/3000100\)/);
    expect(text).toMatch(/2026-12-01T23:00:00\.140Z\s+\+140 ms\s+promotion\.succeeded\s+pg2 on timeline 2, forked at 0\/3000100/);
    // the evidence is summarized once, never dumped
    expect(text.match(/0\/3000000/g)).toHaveLength(1);
    expect(text.match(/refused/g)).toHaveLength(1);
    // a reason that already says what the report said: the report's time only, no echo
    const refused = renderExplain({ operation: { ...op, reason: 'connection refused' }, evidence: [{ node: 'pg1', reachable: false, error: 'refused', receivedAt: Date.parse('2026-12-01T22:59:59.990Z') }], entries: [] }).join('\n');
    expect(refused).toMatch(/^ {2}decision: the primary pg1 failed: connection refused \(reported by pg1's agent at 2026-12-01T22:59:59\.990Z\)$/m);
  });

  it('explain of a switchover: the operator asked; a node as far as the target is no tie-break', () => {
    const op = { id: 'so-mx66gegl364d12', kind: 'switchover' as const, from: 'pg1', to: 'pg3', reason: 'switchover requested by admin', startedAt: '2026-12-01T23:00:00.000Z', finishedAt: '2026-12-01T23:00:00.600Z', durationMs: 600, lostBytes: 0, outcome: 'success' };
    const evidence = [
      { node: 'pg1', reachable: true, process: 'running', role: 'primary', lsn: '0/3000100', timeline: 1, receivedAt: Date.parse('2026-12-01T22:59:59.900Z') },
      { node: 'pg2', reachable: true, process: 'running', role: 'replica', lsn: '0/3000100', timeline: 1 },
      { node: 'pg3', reachable: true, process: 'running', role: 'replica', lsn: '0/3000100', timeline: 1 },
    ];
    const text = renderExplain({ operation: op, evidence, entries: [{ id: '1-0', type: 'failover.started', at: op.startedAt, data: { from: 'pg1', to: 'pg3', manual: true, evidence } }] }).join('\n');
    expect(text).toMatch(/^switchover so-mx66gegl364d12: pg1 → pg3, success in 600 ms$/m);
    expect(text).toMatch(/^ {2}decision: switchover requested by admin$/m);
    expect(text).toMatch(/^ {4}pg2: as far as pg3 \(LSN 0\/3000100\)$/m);
    expect(text).not.toMatch(/tie/);
    // an automatic failover's equal candidate did lose a tie-break
    expect(whyNotOthers({ ...op, kind: 'failover' }, evidence)).toEqual(['pg2: as far as pg3 (LSN 0/3000100): the tie went by priority, then name']);
  });

  it('--after takes a stream id or a time', () => {
    expect(afterId('1795669845922-3')).toBe('1795669845922-3');
    expect(afterId('2026-12-01T23:00:00.000Z')).toBe(`${Date.parse('2026-12-01T23:00:00.000Z')}-0`);
    expect(() => afterId('yesterday')).toThrow(/neither a stream id/);
  });

  it("the sandbox's token goes only to the sandbox's own API", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sy-ctl-'));
    try {
      fs.writeFileSync(path.join(dir, 'sandbox.json'), JSON.stringify({ api: 'http://127.0.0.1:7400', cluster: 'sandbox', adminToken: 'secret', coordinators: [{ api: 'http://127.0.0.1:7400' }, { api: 'http://127.0.0.1:7401' }] }));
      expect(resolveTarget({ dir }, {})).toEqual({ api: 'http://127.0.0.1:7400', cluster: 'sandbox', token: 'secret', tokenFrom: `the sandbox's token (${path.join(dir, 'sandbox.json')})` });
      // where the token came from, for the error when the API refuses it
      expect(resolveTarget({ dir, token: 'flag' }, { SWITCHYARD_ADMIN_TOKEN: 'ops' }).tokenFrom).toBe('--token');
      expect(resolveTarget({ dir }, { SWITCHYARD_ADMIN_TOKEN: 'ops' }).tokenFrom).toBe('SWITCHYARD_ADMIN_TOKEN');
      expect(resolveTarget({ dir, api: 'http://127.0.0.1:7401/' }, {}).token).toBe('secret');
      expect(resolveTarget({ dir, api: 'https://prod.example:7400', cluster: 'main' }, {})).toEqual({ api: 'https://prod.example:7400', cluster: 'main', token: undefined });
      expect(resolveTarget({ dir }, { SWITCHYARD_API: 'https://prod.example:7400', SWITCHYARD_CLUSTER: 'main' }).token).toBeUndefined();
      expect(resolveTarget({ dir, api: 'https://prod.example:7400', cluster: 'main' }, { SWITCHYARD_ADMIN_TOKEN: 'ops' }).token).toBe('ops');
      expect(resolveTarget({ dir, api: 'https://prod.example:7400', cluster: 'main', token: 'flag' }, { SWITCHYARD_ADMIN_TOKEN: 'ops' }).token).toBe('flag');
      expect(() => resolveTarget({ dir: path.join(dir, 'none') }, {})).toThrow(/no API to talk to/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
