/**
 * Zones end to end in the pure core: the agent's `zone` (in its observations) is
 * journaled with the node's registration, kept per node by evolve, and emitted by the
 * routing projection on the primary, each replica and the node list; a cluster without
 * zones keeps exactly the table it had (no `zone` key anywhere).
 */
import { describe, expect, it } from 'vitest';
import { FormatRegistry } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { fold } from '../../src/core/evolve.js';
import { fromSnapshot, toSnapshot } from '../../src/core/snapshot.js';
import { initialState } from '../../src/core/state.js';
import { parseJournalEntry, parseObsEntry } from '../../src/events/parse.js';
import { RoutingTable as RoutingTableSchema } from '../../src/api/schemas.js';
import { renderList } from '../../src/cli/ctl-render.js';
import { validateSandboxOptions } from '../../src/sandbox/sandbox-file.js';
import { CLUSTER, healthyCluster, obs, type Sim } from './helpers.js';

const ZONED = { primary: { zone: 'eu-west-1a' }, replicas: { pg2: { zone: 'eu-west-1b' }, pg3: { zone: 'eu-west-1c' } } };
if (!FormatRegistry.Has('date-time')) FormatRegistry.Set('date-time', (v) => !Number.isNaN(Date.parse(v)));
const tableCheck = TypeCompiler.Compile(RoutingTableSchema);

/** every node.registered the leader journaled, as [node, zone or null] */
const registrations = (sim: Sim): Array<[string, string | null]> => sim.entries('node.registered').map((e) => [e.node, e.zone ?? null]);

describe('zones in the routing projection', () => {
  it('without zones: no zone in the registrations, the nodes or anywhere in the table', () => {
    const sim = healthyCluster();
    for (const e of sim.entries('node.registered')) expect(Object.keys(e)).not.toContain('zone');
    for (const n of Object.values(sim.state.nodes)) expect(Object.keys(n)).not.toContain('zone');
    const t = sim.table();
    expect(JSON.stringify(t)).not.toContain('zone');
    expect(Object.keys(t.primary!).sort()).toEqual(['host', 'id', 'port']);
    expect(Object.keys(t.replicas[0]!).sort()).toEqual(['healthy', 'host', 'id', 'lagBytes', 'lagMs', 'port', 'replayLsn', 'sync']);
    expect(tableCheck.Check(JSON.parse(JSON.stringify(t)))).toBe(true);
  });

  it('with zones: journaled with the registration, kept per node, on the primary, each replica and the node list', () => {
    const sim = healthyCluster(ZONED);
    expect(registrations(sim)).toEqual([
      ['pg1', 'eu-west-1a'],
      ['pg2', 'eu-west-1b'],
      ['pg3', 'eu-west-1c'],
    ]);
    // what the leader journaled passes the stream schema (another coordinator folds it)
    for (const r of sim.journal) expect(parseJournalEntry(JSON.stringify(r.entry)).ok).toBe(true);
    expect(sim.state.nodes.pg2?.zone).toBe('eu-west-1b');
    const t = sim.table();
    expect(t.primary).toEqual({ id: 'pg1', host: 'pg1', port: 5432, zone: 'eu-west-1a' });
    expect(t.replicas.map((r) => [r.id, r.zone])).toEqual([
      ['pg2', 'eu-west-1b'],
      ['pg3', 'eu-west-1c'],
    ]);
    expect(t.nodes?.map((n) => [n.id, n.zone])).toEqual([
      ['pg1', 'eu-west-1a'],
      ['pg2', 'eu-west-1b'],
      ['pg3', 'eu-west-1c'],
    ]);
    expect(tableCheck.Check(JSON.parse(JSON.stringify(t)))).toBe(true);
  });

  it('a node without a zone among zoned ones: its entries simply lack the field', () => {
    const sim = healthyCluster({ primary: { zone: 'a' }, replicas: { pg2: { zone: 'b' }, pg3: {} } });
    const t = sim.table();
    const pg3 = t.replicas.find((r) => r.id === 'pg3')!;
    expect('zone' in pg3).toBe(false);
    expect(t.replicas.find((r) => r.id === 'pg2')?.zone).toBe('b');
    expect('zone' in t.nodes!.find((n) => n.id === 'pg3')!).toBe(false);
  });

  it('an agent restarted with another zone (or none) is registered again, and the table changes generation', () => {
    const sim = healthyCluster(ZONED);
    const g0 = sim.table().generation;
    expect(sim.beat(2_000).types).toEqual([]);
    const moved = sim.beat(2_100, { pg3: { zone: 'eu-west-1a' } });
    expect(moved.all).toEqual([{ type: 'append', entry: { type: 'node.registered', node: 'pg3', host: 'pg3', port: 5432, priority: 100, zone: 'eu-west-1a' } }]);
    expect(sim.table().replicas.find((r) => r.id === 'pg3')?.zone).toBe('eu-west-1a');
    expect(sim.table().generation).toBe(g0 + 1);
    // (health and role are untouched by a re-registration)
    expect(sim.state.nodes.pg3).toMatchObject({ healthy: true, role: 'replica' });
    const cleared = sim.beat(2_200, { pg3: { zone: undefined } });
    expect(cleared.one('node.registered')).toEqual({ type: 'node.registered', node: 'pg3', host: 'pg3', port: 5432, priority: 100 });
    expect(Object.keys(sim.state.nodes.pg3!)).not.toContain('zone');
    expect('zone' in sim.table().replicas.find((r) => r.id === 'pg3')!).toBe(false);
    expect(sim.table().generation).toBe(g0 + 2);
    expect(sim.beat(2_300).types).toEqual([]);
  });

  it('a new primary after a failover carries its own zone; the old one keeps its own as a replica', () => {
    const sim = healthyCluster({ ...ZONED, replicas: { pg2: { zone: 'eu-west-1b', lsn: '0/3000000' }, pg3: { zone: 'eu-west-1c', lsn: '0/2F00000' } } });
    sim.append(2_000, { type: 'failover.started', operationId: 'fo-1', kind: 'failover', from: 'pg1', to: 'pg2', reason: 'test', manual: true, lostBytes: 0, evidence: [] });
    sim.append(2_001, { type: 'promotion.succeeded', operationId: 'fo-1', node: 'pg2', timeline: 2 });
    sim.append(2_002, { type: 'failover.completed', operationId: 'fo-1', kind: 'failover', outcome: 'success', durationMs: 2, reason: 'pg2 promoted' });
    const t = sim.table();
    expect(t.primary).toEqual({ id: 'pg2', host: 'pg2', port: 5432, zone: 'eu-west-1b' });
    expect(t.replicas.map((r) => [r.id, r.zone])).toEqual([
      ['pg1', 'eu-west-1a'],
      ['pg3', 'eu-west-1c'],
    ]);
  });

  it('a draining primary (switchover) keeps its zone', () => {
    const sim = healthyCluster(ZONED);
    sim.append(2_000, { type: 'failover.started', operationId: 'so-1', kind: 'switchover', from: 'pg1', to: 'pg2', reason: 'test', manual: true, lostBytes: 0, evidence: [] });
    expect(sim.table().primary).toEqual({ id: 'pg1', host: 'pg1', port: 5432, zone: 'eu-west-1a', draining: true });
  });

  it('the zone survives a snapshot; a snapshot and journal from before zones load without one', () => {
    const sim = healthyCluster(ZONED);
    const restored = fromSnapshot(JSON.parse(JSON.stringify(toSnapshot(sim.state))), CLUSTER)!;
    expect(restored.nodes.pg3?.zone).toBe('eu-west-1c');
    const old = healthyCluster();
    const again = fold(initialState(CLUSTER), old.journal.map((r) => ({ kind: 'journal' as const, id: r.id, entry: r.entry })));
    expect(Object.values(again.nodes).every((n) => !('zone' in n))).toBe(true);
  });
});

describe('zones in the stream schemas', () => {
  it('an observation and a registration with or without a zone validate; a malformed zone names the field', () => {
    expect(parseObsEntry(JSON.stringify(obs('pg1'))).ok).toBe(true);
    expect(parseObsEntry(JSON.stringify(obs('pg1', { zone: 'us-east-1a' })))).toMatchObject({ ok: true, value: { zone: 'us-east-1a' } });
    const bad = parseObsEntry(JSON.stringify(obs('pg1', { zone: 'no spaces' })));
    expect(bad.ok).toBe(false);
    expect(!bad.ok && bad.reason).toContain('/zone');
    const reg = { type: 'node.registered', v: 1, at: 1, epoch: 1, node: 'pg1', host: 'h', port: 5432, priority: 100 };
    expect(parseJournalEntry(JSON.stringify(reg)).ok).toBe(true);
    expect(parseJournalEntry(JSON.stringify({ ...reg, zone: 'rack-7' })).ok).toBe(true);
    expect(parseJournalEntry(JSON.stringify({ ...reg, zone: '' })).ok).toBe(false);
  });
});

describe('ctl list shows zones', () => {
  it('a ZONE column when some node has one, none otherwise', () => {
    const sim = healthyCluster({ primary: { zone: 'eu-west-1a' }, replicas: { pg2: { zone: 'eu-west-1b' }, pg3: {} } });
    const out = renderList(sim.table(), Date.now()).join('\n');
    expect(out).toMatch(/NODE\s+ROLE\s+PHASE\s+ADDRESS\s+ZONE\s+LAG/);
    expect(out).toMatch(/pg1\s+primary\s+primary\s+pg1:5432\s+eu-west-1a\s/);
    expect(out).toMatch(/pg2\s+replica\s+replica\s+pg2:5432\s+eu-west-1b\s+0 B/);
    expect(out).toMatch(/pg3\s+replica\s+replica\s+pg3:5432\s+-\s+0 B/);
    expect(renderList(healthyCluster().table(), Date.now()).join('\n')).not.toMatch(/ZONE/);
  });
});

describe('sandbox zones option', () => {
  const base = { engine: 'postgres' as const, replicas: 2, sync: false, coordinators: 1, apiPort: 7400, dir: '/tmp/x', cluster: 'sb' };
  it('takes at most one valid label per node', () => {
    expect(() => validateSandboxOptions({ ...base, zones: ['a', 'b', 'c'] })).not.toThrow();
    expect(() => validateSandboxOptions({ ...base, zones: ['a'] })).not.toThrow();
    expect(() => validateSandboxOptions({ ...base, zones: ['a', 'b', 'c', 'd'] })).toThrow(/zones: 4 given for 3 nodes/);
    expect(() => validateSandboxOptions({ ...base, zones: ['a', 'b c'] })).toThrow(/zones\[1\] "b c"/);
  });
});
