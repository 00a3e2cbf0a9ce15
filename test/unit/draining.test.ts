/**
 * Draining at a switchover, as the routing API shows it: the old primary carries
 * `draining: true` (and the table is not writable) until the drain period is over; the
 * health check stops answering 200 for it as a primary, so HAProxy sends it no new
 * connection while those open finish.
 */
import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { buildApi, type ApiCluster } from '../../src/api/server.js';
import { nodePhase } from '../../src/core/machine.js';
import { routingTable, type RoutingTable } from '../../src/core/routing.js';
import { CLUSTER, healthyCluster, type Sim } from './helpers.js';

function asApi(sim: Sim): ApiCluster {
  return {
    name: CLUSTER,
    get state() {
      return sim.state;
    },
    get table() {
      return routingTable(sim.state);
    },
    isLeader: true,
    ready: true,
    waitForChange: () => Promise.resolve(null),
    on: () => undefined,
    off: () => undefined,
    readJournal: () => Promise.resolve([]),
    submit: () => Promise.resolve('1-0'),
  };
}

describe('draining at a switchover', () => {
  const apps: FastifyInstance[] = [];
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((a) => a.close()));
  });

  it('the routing API marks the old primary draining, and its primary health check answers 503, until it is demoted', async () => {
    const sim = healthyCluster({ settings: { switchoverDrainMs: 300 } });
    const app = buildApi({ clusters: new Map([[CLUSTER, asApi(sim)]]), coordinatorId: 'co1' });
    apps.push(app);
    const health = async (): Promise<number> => (await app.inject(`/v1/clusters/${CLUSTER}/nodes/pg1/health?role=primary`)).statusCode;
    expect(await health()).toBe(200);

    sim.fold({ kind: 'command', id: 'cmd-1', receivedAt: 2000, entry: { type: 'command', v: 1, id: 'sw-1', action: 'switchover', to: 'pg2', by: 'test', at: 2000 } });
    sim.pass(2000);
    expect(nodePhase(sim.state, 'pg1')).toBe('draining');
    const during = (await app.inject(`/v1/clusters/${CLUSTER}/routing`)).json<RoutingTable>();
    expect(during.writable).toBe(false);
    expect(during.primary).toEqual({ id: 'pg1', host: 'pg1', port: 5432, draining: true });
    expect(await health()).toBe(503);
    expect((await app.inject(`/v1/clusters/${CLUSTER}/nodes/pg1/health?role=primary`)).json()).toMatchObject({ ok: false, reason: 'draining: a switchover is about to demote it' });
    expect(sim.jobs.filter((j) => j.action === 'demote')).toEqual([]);

    sim.pass(2300);
    expect(sim.jobs.filter((j) => j.action === 'demote').map((j) => j.node)).toEqual(['pg1']);
    expect(nodePhase(sim.state, 'pg1')).toBe('demoting');
    const after = (await app.inject(`/v1/clusters/${CLUSTER}/routing`)).json<RoutingTable>();
    expect(after.primary).toBeNull();
    // the end of the drain changes the table: a new generation, so every client hears of it
    expect(after.generation).toBeGreaterThan(during.generation);
  });

  it('with no drain period (the default) the demotion is asked at once and nothing is marked draining', () => {
    const sim = healthyCluster();
    sim.fold({ kind: 'command', id: 'cmd-1', receivedAt: 2000, entry: { type: 'command', v: 1, id: 'sw-1', action: 'switchover', to: 'pg2', by: 'test', at: 2000 } });
    const before = sim.state.generation;
    sim.pass(2000);
    expect(sim.jobs.filter((j) => j.action === 'demote').map((j) => j.node)).toEqual(['pg1']);
    expect(sim.state.operation?.phase).toBe('demoting');
    expect(sim.state.generation).toBe(before + 1); // as before draining existed: failover.started alone
    expect(routingTable(sim.state).primary).toBeNull();
  });
});
