/**
 * The dashboard's server side: the page's script compiles, the cluster list appears
 * with several clusters, and the lag history (GET /v1/clusters/:c/lag) behind the
 * chart samples, keeps 15 minutes, answers `?after=`, and hides unhealthy replicas'
 * stale figures. The page itself runs in Chromium in test/integration/dashboard*.test.ts.
 */
import vm from 'node:vm';
import type { FastifyInstance } from 'fastify';
import { Value } from '@sinclair/typebox/value';
import { afterEach, describe, expect, it } from 'vitest';
import { DASHBOARD_SCRIPT } from '../../src/api/dashboard-script.js';
import { LagHistory, LAG_WINDOW_MS } from '../../src/api/lag-history.js';
import * as S from '../../src/api/schemas.js';
import { buildApi, type ApiCluster } from '../../src/api/server.js';
import { routingTable, type RoutingTable } from '../../src/core/routing.js';
import { compareStreamIds } from '../../src/core/state.js';
import { CLUSTER, healthyCluster, type Sim } from './helpers.js';

interface Fake extends ApiCluster {
  table: RoutingTable;
  fresh?: boolean;
}

function fake(sim: Sim, name = sim.state.cluster): Fake {
  return {
    name,
    state: sim.state,
    table: routingTable(sim.state),
    isLeader: true,
    ready: true,
    waitForChange: () => Promise.resolve(null),
    on: () => undefined,
    off: () => undefined,
    readJournal: (after, limit) => Promise.resolve(sim.journal.filter((r) => compareStreamIds(r.id, after) > 0).slice(0, limit)),
    submit: () => Promise.resolve('1-0'),
  };
}

const apps: FastifyInstance[] = [];
function api(clusters: Fake[], extra: { readToken?: string; lagSampleMs?: number } = {}): FastifyInstance {
  const app = buildApi({
    clusters: new Map(clusters.map((c) => [c.name, c])),
    coordinatorId: 'co1',
    adminToken: 'admin-token-admin-token',
    auth: extra.readToken ? { adminTokens: [], readToken: extra.readToken } : undefined,
    lagSampleMs: extra.lagSampleMs,
  });
  apps.push(app);
  return app;
}
afterEach(async () => {
  await Promise.all(apps.splice(0).map((a) => a.close()));
});

/** a table with pg2 and pg3 lagging by `ms` (pg3 unhealthy when `pg3Down`) */
function lagging(t: RoutingTable, ms: number, pg3Down = false): RoutingTable {
  return { ...t, replicas: t.replicas.map((r) => ({ ...r, lagMs: ms, lagBytes: ms * 10, healthy: r.id === 'pg3' && pg3Down ? false : r.healthy })) };
}

describe('the dashboard page', () => {
  it('carries a script that compiles', () => {
    expect(() => new vm.Script(DASHBOARD_SCRIPT, { filename: 'dashboard.js' })).not.toThrow();
    // the chart draws into the page's own <svg>: no namespace URL in the page
    expect(DASHBOARD_SCRIPT).toContain('namespaceURI');
    expect(DASHBOARD_SCRIPT).toContain("'/lag'");
    expect(DASHBOARD_SCRIPT).toContain("'/history'");
    expect(DASHBOARD_SCRIPT).toContain("'/operations/'");
  });

  it('lists the clusters on top only when there are several, and has a chart and a history per cluster', async () => {
    const one = (await api([fake(healthyCluster())]).inject('/')).body;
    expect(one).not.toContain('id="clusters"');
    expect(one.match(/<svg class="chart"/g)).toHaveLength(1);
    expect(one.match(/<table class="history">/g)).toHaveLength(1);
    const two = (await api([fake(healthyCluster()), fake(healthyCluster(), 'orders')]).inject('/')).body;
    expect(two).toContain('<nav id="clusters">');
    expect(two.match(/<svg class="chart"/g)).toHaveLength(2);
    expect(two.match(/<div class="explain" hidden>/g)).toHaveLength(2);
  });
});

describe('LagHistory', () => {
  it('samples every replica, keeps only the window, and answers what came after a time', () => {
    const c = fake(healthyCluster());
    const base = c.table;
    const h = new LagHistory(new Map([[c.name, c]]), { everyMs: 1_000, windowMs: 10_000 });
    for (let i = 0; i <= 20; i++) {
      c.table = lagging(base, i);
      h.sample(100_000 + i * 1_000);
    }
    const all = h.since(CLUSTER);
    // 10 s window ending at 120 000: samples at 110 000 … 120 000
    expect(all.map((s) => s.at)).toEqual(Array.from({ length: 11 }, (_, i) => 110_000 + i * 1_000));
    expect(all.at(-1)!.replicas).toEqual({ pg2: { lagMs: 20, lagBytes: 200 }, pg3: { lagMs: 20, lagBytes: 200 } });
    expect(h.since(CLUSTER, 118_000).map((s) => s.at)).toEqual([119_000, 120_000]);
    expect(h.since(CLUSTER, 120_000)).toEqual([]);
    expect(h.since('nope')).toEqual([]);
  });

  it('records null for an unhealthy replica and for a stale view, never its last figures', () => {
    const c = fake(healthyCluster());
    const h = new LagHistory(new Map([[c.name, c]]));
    c.table = lagging(c.table, 50, true);
    h.sample(1_000);
    c.fresh = false;
    h.sample(2_000);
    const [a, b] = h.since(CLUSTER);
    expect(a!.replicas).toEqual({ pg2: { lagMs: 50, lagBytes: 500 }, pg3: { lagMs: null, lagBytes: null } });
    expect(b!.replicas).toEqual({ pg2: { lagMs: null, lagBytes: null }, pg3: { lagMs: null, lagBytes: null } });
  });

  it('refuses a sample interval it cannot keep', () => {
    expect(() => new LagHistory(new Map(), { everyMs: 10 })).toThrow(/lagSampleMs: expected an integer ≥ 100, got 10/);
    expect(LAG_WINDOW_MS).toBe(15 * 60_000);
  });
});

describe('GET /v1/clusters/:c/lag', () => {
  it('answers the samples taken since the app started, in the documented shape, and ?after=', async () => {
    const c = fake(healthyCluster());
    c.table = lagging(c.table, 7);
    const app = api([c], { lagSampleMs: 100 });
    await app.ready();
    // two samples at least (one at start, one 100 ms later), however late the timer runs on a loaded machine
    let r = await app.inject(`/v1/clusters/${CLUSTER}/lag`);
    for (const until = Date.now() + 10_000; r.json<{ samples: unknown[] }>().samples.length < 2 && Date.now() < until; ) {
      await new Promise((res) => setTimeout(res, 50));
      r = await app.inject(`/v1/clusters/${CLUSTER}/lag`);
    }
    expect(r.statusCode).toBe(200);
    const body = r.json<{ cluster: string; windowMs: number; intervalMs: number; samples: Array<{ at: number; replicas: Record<string, unknown> }> }>();
    expect([...Value.Errors(S.LagHistory, body)].map((e) => `${e.path}: ${e.message}`)).toEqual([]);
    expect(body).toMatchObject({ cluster: CLUSTER, windowMs: 15 * 60_000, intervalMs: 100 });
    expect(body.samples.length).toBeGreaterThanOrEqual(2);
    expect(body.samples[0]!.replicas.pg2).toEqual({ lagMs: 7, lagBytes: 70 });
    const last = body.samples.at(-1)!.at;
    // (the sampler keeps running: a sample taken since is fine, an older one is not)
    const after = (await app.inject(`/v1/clusters/${CLUSTER}/lag?after=${last}`)).json<{ samples: Array<{ at: number }> }>();
    expect(after.samples.filter((x) => x.at <= last)).toEqual([]);
    const iso = (await app.inject(`/v1/clusters/${CLUSTER}/lag?after=${new Date(body.samples[0]!.at).toISOString()}`)).json<{ samples: Array<{ at: number }> }>();
    expect(iso.samples[0]!.at).toBe(body.samples[1]!.at);
  });

  it('names a bad ?after= and an unknown cluster', async () => {
    const app = api([fake(healthyCluster())]);
    const bad = await app.inject(`/v1/clusters/${CLUSTER}/lag?after=yesterday`);
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toEqual({ error: 'BAD_REQUEST', message: 'querystring/after "yesterday" is not a time (ms since the epoch or ISO 8601)' });
    expect((await app.inject('/v1/clusters/nope/lag')).statusCode).toBe(404);
  });

  it('needs the read token when one is set, like the other read routes', async () => {
    const app = api([fake(healthyCluster())], { readToken: 'read-token-read-token' });
    expect((await app.inject(`/v1/clusters/${CLUSTER}/lag`)).statusCode).toBe(401);
    expect((await app.inject({ url: `/v1/clusters/${CLUSTER}/lag`, headers: { authorization: 'Bearer read-token-read-token' } })).statusCode).toBe(200);
  });
});
