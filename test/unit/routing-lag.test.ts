/**
 * Lag reaches clients: the hysteresis that decides when a lag change is announced (a new
 * ETag and SSE event without a new generation), and the routing API's long-poll
 * returning a new table when a replica's lag crosses a limit (folded observations).
 */
import { EventEmitter } from 'node:events';
import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { buildApi, type ApiCluster } from '../../src/api/server.js';
import { announce, DEFAULT_LAG_HYSTERESIS, lagMoved, nextLagMarks, routingTable, routingVersion, type Announcement, type LagMarks, type RoutingTable } from '../../src/core/routing.js';
import { CLUSTER, healthyCluster, obs, type Sim } from './helpers.js';

function table(lags: Record<string, [number | null, number | null]>, generation = 5): RoutingTable {
  return {
    cluster: 'c', engine: 'postgres', generation, epoch: 1, writable: true, updatedAt: new Date(0).toISOString(),
    primary: { id: 'pg1', host: 'h', port: 1 },
    replicas: Object.entries(lags).map(([id, [lagMs, lagBytes]]) => ({ id, host: 'h', port: 2, healthy: true, lagMs, lagBytes, replayLsn: null, sync: false })),
  };
}

describe('lag hysteresis (pure)', () => {
  const t0 = 1_000_000;
  const base: LagMarks = { at: t0, replicas: { pg2: { lagMs: 0, lagBytes: 0 }, pg3: { lagMs: 0, lagBytes: 0 } } };

  it('ignores wobbles below the minimum step', () => {
    expect(nextLagMarks(base, table({ pg2: [90, 900_000], pg3: [0, 0] }), t0 + 5000)).toBeNull();
  });

  it('announces a move past the minimum step', () => {
    const m = nextLagMarks(base, table({ pg2: [150, 0], pg3: [0, 0] }), t0 + 5000);
    expect(m?.replicas.pg2).toEqual({ lagMs: 150, lagBytes: 0 });
    expect(m?.at).toBe(t0 + 5000);
    expect(nextLagMarks(base, table({ pg2: [0, 2 * 1024 * 1024], pg3: [0, 0] }), t0 + 5000)).not.toBeNull();
  });

  it('steps grow with the lag (a ratio of the mark), capped', () => {
    const h = DEFAULT_LAG_HYSTERESIS;
    expect(lagMoved({ lagMs: 2000, lagBytes: 0 }, { lagMs: 2300, lagBytes: 0 })).toBe(false); // step 400
    expect(lagMoved({ lagMs: 2000, lagBytes: 0 }, { lagMs: 2400, lagBytes: 0 })).toBe(true);
    expect(lagMoved({ lagMs: 60_000, lagBytes: 0 }, { lagMs: 60_000 + h.maxStepMs - 1, lagBytes: 0 })).toBe(false);
    expect(lagMoved({ lagMs: 60_000, lagBytes: 0 }, { lagMs: 60_000 + h.maxStepMs, lagBytes: 0 })).toBe(true);
    expect(lagMoved({ lagMs: 2400, lagBytes: 0 }, { lagMs: 0, lagBytes: 0 })).toBe(true); // caught up
  });

  it('a figure appearing or vanishing counts at once, even right after an announcement', () => {
    const just: LagMarks = { at: t0, replicas: base.replicas };
    expect(nextLagMarks(just, table({ pg2: [null, null], pg3: [0, 0] }), t0 + 1)).not.toBeNull();
    expect(nextLagMarks(just, table({ pg2: [150, 0], pg3: [0, 0] }), t0 + 1)).toBeNull(); // too soon
    expect(nextLagMarks(just, table({ pg2: [150, 0], pg3: [0, 0] }), t0 + DEFAULT_LAG_HYSTERESIS.minIntervalMs)).not.toBeNull();
  });

  it('a new generation is always announced; the same lag keeps the version', () => {
    const a = announce(null, table({ pg2: [0, 0] }, 5), t0)!;
    expect(a.version).toBe(routingVersion(5, a.marks));
    expect(announce(a, table({ pg2: [10, 10] }, 5), t0 + 1000)).toBeNull();
    const b = announce(a, table({ pg2: [10, 10] }, 6), t0 + 1)!;
    expect(b.generation).toBe(6);
    expect(b.version).not.toBe(a.version);
    const c = announce(a, table({ pg2: [5000, 0] }, 5), t0 + 1000)!;
    expect(c.version).not.toBe(a.version);
    expect(c.version.startsWith('5.')).toBe(true);
  });

  it('a replica falling behind at 1 s per second: every lag limit is announced within a second of being crossed, with no storm', () => {
    const probeMs = 50;
    let ann: Announcement | null = announce(null, table({ pg2: [0, 0], pg3: [0, 0] }), 0);
    const announced: Array<{ at: number; lagMs: number }> = [];
    for (let t = probeMs; t <= 30_000; t += probeMs) {
      const next = announce(ann, table({ pg2: [t, t * 1000], pg3: [Math.round(Math.random() * 80), 0] }), t);
      if (next) {
        ann = next;
        announced.push({ at: t, lagMs: t });
      }
    }
    for (const limit of [100, 250, 500, 800, 1000, 2500, 5000, 10_000, 25_000]) {
      const first = announced.find((a) => a.lagMs > limit)!;
      // the lag crossed `limit` at t = limit (1 ms per ms)
      expect(first.at - limit, `limit ${limit}`).toBeLessThanOrEqual(1000);
    }
    // at most one announcement per minIntervalMs; in fact far fewer (steps grow with the lag)
    expect(announced.length).toBeLessThan(30_000 / DEFAULT_LAG_HYSTERESIS.minIntervalMs);
    expect(announced.length).toBeLessThan(60);
  });

  it('noise below the steps on a healthy cluster: no announcement at all', () => {
    let ann: Announcement | null = announce(null, table({ pg2: [0, 0], pg3: [0, 0] }), 0);
    let count = 0;
    for (let t = 50; t <= 60_000; t += 50) {
      const next = announce(ann, table({ pg2: [Math.round(Math.random() * 90), Math.round(Math.random() * 1_000_000)], pg3: [0, Math.round(Math.random() * 1_000_000)] }), t);
      if (next) {
        ann = next;
        count++;
      }
    }
    expect(count).toBe(0);
  });
});

/** An ApiCluster that folds observations and announces as the coordinator does (announce()). */
class LiveCluster extends EventEmitter implements ApiCluster {
  readonly name = CLUSTER;
  readonly isLeader = true;
  readonly ready = true;
  table: RoutingTable;
  version = '0';
  private announced: Announcement | null = null;
  constructor(readonly sim: Sim) {
    super();
    this.table = routingTable(sim.state);
    this.refresh(0);
  }
  get state(): Sim['state'] {
    return this.sim.state;
  }
  refresh(now: number): void {
    this.table = routingTable(this.sim.state);
    const next = announce(this.announced, this.table, now);
    if (!next) return;
    this.announced = next;
    this.version = next.version;
    this.emit('routing', this.table);
  }
  waitForChange(version: string, ms: number): Promise<RoutingTable | null> {
    if (this.version !== version) return Promise.resolve(this.table);
    return new Promise((resolve) => {
      const on = (t: RoutingTable): void => {
        clearTimeout(timer);
        resolve(t);
      };
      const timer = setTimeout(() => {
        this.off('routing', on);
        resolve(null);
      }, ms);
      this.once('routing', on);
    });
  }
  readJournal(): Promise<never[]> {
    return Promise.resolve([]);
  }
  submit(): Promise<string> {
    return Promise.resolve('1-0');
  }
}

describe('routing API: lag reaches long-polling clients', () => {
  const apps: FastifyInstance[] = [];
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((a) => a.close()));
  });

  it('a long-poll answers with a new table when a replica crosses a lag limit, and 304 on a wobble', async () => {
    const sim = healthyCluster();
    const c = new LiveCluster(sim);
    const app = buildApi({ clusters: new Map([[CLUSTER, c]]), coordinatorId: 'co1' });
    apps.push(app);
    const first = await app.inject(`/v1/clusters/${CLUSTER}/routing`);
    const etag = first.headers.etag as string;
    expect(etag).toBe(`"${c.version}"`);
    const generation = first.json<RoutingTable>().generation;

    // a wobble: pg2 50 ms behind: the long-poll times out with 304
    setTimeout(() => {
      sim.observe(2000, obs('pg2', { replayDelayMs: 50 }));
      c.refresh(2000);
    }, 50);
    const still = await app.inject({ url: `/v1/clusters/${CLUSTER}/routing?waitMs=400`, headers: { 'if-none-match': etag } });
    expect(still.statusCode).toBe(304);
    expect(still.headers.etag).toBe(etag);

    // pg2 falls 1.5 s behind (replay paused): the waiting client gets the new table at once
    const t0 = Date.now();
    setTimeout(() => {
      sim.observe(3000, obs('pg2', { replayDelayMs: 1500, replayLsn: '0/2000000' }));
      c.refresh(3000);
    }, 100);
    const moved = await app.inject({ url: `/v1/clusters/${CLUSTER}/routing?waitMs=10000`, headers: { 'if-none-match': etag } });
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(moved.statusCode).toBe(200);
    expect(moved.headers.etag).not.toBe(etag);
    const t = moved.json<RoutingTable>();
    expect(t.generation).toBe(generation); // the journal did not change: only the lag
    expect(t.replicas.find((r) => r.id === 'pg2')).toMatchObject({ lagMs: 1500 });
    expect(t.replicas.find((r) => r.id === 'pg2')!.lagBytes).toBeGreaterThan(0);

    // and the new ETag is stable while nothing moves
    const again = await app.inject({ url: `/v1/clusters/${CLUSTER}/routing`, headers: { 'if-none-match': moved.headers.etag as string } });
    expect(again.statusCode).toBe(304);
  });
});
