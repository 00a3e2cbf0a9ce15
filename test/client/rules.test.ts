/**
 * ReplicatedPool rules that need the control plane to say something specific (zones,
 * lag figures, a replica joining), on a real primary and two real hot standbys: the
 * routing table comes from a stand-in the test writes. Also what the app wires in: the
 * pg.Pool events, per-role statement timeouts, the decorators and the Express-style
 * request scope (read-your-writes with replay paused on both replicas).
 */
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type pg from 'pg';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { consistentRead, NoPrimaryError, readOnly, ReplicatedPool, requestScope, writes, type QueryErrorEvent, type ReplicatedPoolOptions } from '../../src/client/index.js';
import type { RoutingTable } from '../../src/core/routing.js';
import { fakeRouting, type FakeRouting } from '../support/fake-routing.js';
import { PgCluster } from '../support/pg-cluster.js';
import { sql, waitFor } from '../support/sandbox.js';

/** A class using the decorators in TypeScript source, compiled by tsc (the test transform does not lower standard decorators). */
async function compileRepo(decorators: { writes: unknown; consistentRead: unknown; readOnly: unknown }, port: (q?: string) => Promise<string>): Promise<new () => unknown> {
  const source = `
    export function make({ writes, consistentRead, readOnly }: any, port: (q?: string) => Promise<string>) {
      return class Repo {
        @writes
        async inWrites(): Promise<string[]> {
          return [await port(), await this.nested()];
        }
        async nested(): Promise<string> {
          await new Promise((r) => setTimeout(r, 5));
          return port();
        }
        @consistentRead
        async fresh(): Promise<string> {
          return port();
        }
        @readOnly
        async advisory(): Promise<string> {
          // an advisory lock is a write by the classifier's rules; the method says it is only a read
          return port('SELECT inet_server_port() AS port, pg_try_advisory_xact_lock(42) AS locked');
        }
      };
    }`;
  const js = ts.transpileModule(source, { compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext } }).outputText;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sy-deco-'));
  const file = path.join(dir, 'repo.mjs');
  fs.writeFileSync(file, js);
  try {
    const m = (await import(pathToFileURL(file).href)) as { make: (d: unknown, p: unknown) => new () => unknown };
    return m.make(decorators, port);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true }); // imported: the file is no longer needed
  }
}

type Over = { zone?: string; lagMs?: number; lagBytes?: number };

describe('ReplicatedPool rules driven by the routing table, on real PostgreSQL', () => {
  let dir: string;
  let cluster: PgCluster | undefined;
  let api: FakeRouting | undefined;
  let gen = 1;
  const pools: ReplicatedPool[] = [];
  const portToId = new Map<number, string>();

  /** a table naming the real nodes; `over` sets a node's zone and lag; `without` leaves replicas out */
  const table = (over: Record<string, Over> = {}, without: string[] = []): RoutingTable => {
    const p = cluster!.primary;
    return {
      cluster: 'c1', engine: 'postgres', generation: gen++, epoch: 1, writable: true, updatedAt: new Date().toISOString(),
      primary: { id: p.id, host: p.host, port: p.port, ...(over[p.id]?.zone ? { zone: over[p.id]!.zone } : {}) },
      replicas: cluster!.replicas.filter((r) => !without.includes(r.id)).map((r) => ({
        id: r.id, host: r.host, port: r.port, healthy: true, sync: false, replayLsn: null,
        lagMs: over[r.id]?.lagMs ?? 0, lagBytes: over[r.id]?.lagBytes ?? 0,
        ...(over[r.id]?.zone ? { zone: over[r.id]!.zone } : {}),
      })),
    };
  };
  const open = async (over: Partial<ReplicatedPoolOptions> = {}, wire?: (db: ReplicatedPool) => void): Promise<ReplicatedPool> => {
    const db = new ReplicatedPool({ routing: api!.url, cluster: 'c1', connection: { user: 'postgres', database: 'postgres' }, max: 3, refreshMs: 0, staleAfterMs: 60_000, ...over });
    wire?.(db);
    pools.push(db);
    await db.ready();
    return db;
  };
  const served = async (db: ReplicatedPool, n: number, route?: Record<string, unknown>): Promise<string[]> => {
    const out: string[] = [];
    for (let i = 0; i < n; i++) {
      const r = await db.query<{ port: number }>({ text: 'SELECT inet_server_port() AS port', ...(route ? { route } : {}) } as pg.QueryConfig);
      out.push(portToId.get(r.rows[0]!.port)!);
    }
    return out;
  };
  const count = (xs: string[]): Record<string, number> => xs.reduce<Record<string, number>>((m, x) => ((m[x] = (m[x] ?? 0) + 1), m), {});

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sy-rules-'));
    cluster = await PgCluster.create({ baseDir: path.join(dir, 'pg'), replicas: 2 });
    for (const n of cluster.nodes) portToId.set(n.port, n.id);
    await sql(cluster.primary.port, 'CREATE TABLE users (id serial PRIMARY KEY, name text NOT NULL)');
    for (const r of cluster.replicas) await waitFor(`users on ${r.id}`, async () => (await sql(r.port, "SELECT to_regclass('users') IS NOT NULL AS ok")).rows[0]?.ok === true);
    api = await fakeRouting(table());
  }, 180_000);

  afterAll(async () => {
    for (const db of pools) await db.end();
    await api?.close();
    await cluster?.destroy();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it('is a pg.Pool for its events too: connect when a node connection opens, error when an idle one is killed, remove when one closes', async () => {
    const seen = { connect: 0, remove: 0, error: [] as Error[] };
    const db = await open({ keepWarm: false, readPreference: 'primary' }, (d) => {
      d.on('connect', () => seen.connect++);
      d.on('remove', () => seen.remove++);
      d.on('error', (err) => seen.error.push(err));
    });
    const pid = (await db.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
    expect(seen.connect).toBe(1);
    // the idle connection is killed by the server: the pool says so, and goes on
    await sql(cluster!.primary.port, 'SELECT pg_terminate_backend($1)', [pid]);
    await waitFor('the error event', async () => seen.error.length > 0 && seen.remove > 0, 10_000, 20);
    expect(seen.error[0]!.message).toMatch(/terminat/i);
    expect((await db.query<{ x: number }>('SELECT 1 AS x')).rows[0]!.x).toBe(1);
    expect(seen.connect).toBe(2);
  });

  it('a client from connect(): reads routed until SET pins it to the primary, where its session setting stays; readOnly pins a replica', async () => {
    const db = await open();
    const c = await db.connect();
    try {
      const where = async (): Promise<string> => portToId.get((await c.query<{ port: number }>('SELECT inet_server_port() AS port')).rows[0]!.port)!;
      expect(['pg2', 'pg3']).toContain(await where());
      await c.query("SET application_name = 'pinned-by-set'");
      for (let i = 0; i < 4; i++) expect(await where()).toBe('pg1');
      expect((await c.query<{ application_name: string }>('SHOW application_name')).rows[0]!.application_name).toBe('pinned-by-set');
    } finally {
      c.release();
    }
    const ro = await db.connect({ readOnly: true });
    try {
      const ids = new Set<string>();
      for (let i = 0; i < 4; i++) ids.add(portToId.get((await ro.query<{ port: number }>('SELECT inet_server_port() AS port')).rows[0]!.port)!);
      expect(ids.size).toBe(1);
      expect(['pg2', 'pg3']).toContain([...ids][0]);
    } finally {
      ro.release();
    }
  });

  it('nearest: the app\'s zone first, by the zone labels in the routing table', async () => {
    api!.publish(table({ pg1: { zone: 'a' }, pg2: { zone: 'a' }, pg3: { zone: 'b' } }));
    const inB = await open({ readPreference: 'nearest', zone: 'b', localThresholdMs: 1000 });
    await waitFor('zones in the table', async () => (inB.routingTable?.replicas as Array<{ zone?: string }> | undefined)?.some((r) => r.zone === 'b'));
    expect(new Set(await served(inB, 12))).toEqual(new Set(['pg3']));
    // "lowest measured latency": measured although nobody listens for query-executed
    expect(inB.stats().nodes.pg3!.latencyMs).not.toBeNull();
    // a per-query nearest is measured too
    const perQuery = await open();
    await served(perQuery, 6, { readPreference: 'nearest' });
    expect(Object.values(perQuery.stats().nodes).some((n) => n.latencyMs !== null)).toBe(true);
    const inA = await open({ readPreference: 'nearest', zone: 'a', localThresholdMs: 1000 });
    expect(new Set(await served(inA, 16))).toEqual(new Set(['pg1', 'pg2']));
    // a zone nobody is in: every node
    const elsewhere = await open({ readPreference: 'nearest', zone: 'z', localThresholdMs: 1000 });
    expect(new Set(await served(elsewhere, 24))).toEqual(new Set(['pg1', 'pg2', 'pg3']));
  });

  it('least-lag takes the replica the table says is least behind; maxLagMs leaves a lagging one out, per pool and per query', async () => {
    api!.publish(table({ pg2: { lagMs: 4000, lagBytes: 65_536 }, pg3: { lagMs: 20, lagBytes: 512 } }));
    const ll = await open({ loadBalancing: 'least-lag' });
    expect(new Set(await served(ll, 10))).toEqual(new Set(['pg3']));
    const limited = await open({ maxLagMs: 1000 });
    expect(new Set(await served(limited, 10))).toEqual(new Set(['pg3']));
    const loose = await open();
    expect(new Set(await served(loose, 10))).toEqual(new Set(['pg2', 'pg3']));
    expect(new Set(await served(loose, 10, { maxLagMs: 1000 }))).toEqual(new Set(['pg3']));
    // the lag clears (a new table): least-lag shares again, the limit lets pg2 back
    api!.publish(table());
    await waitFor('the new figures', async () => limited.routingTable?.replicas.every((r) => r.lagMs === 0));
    expect(new Set(await served(limited, 10))).toEqual(new Set(['pg2', 'pg3']));
  });

  it('warm-up: a replica that joins gets a small share at first, and its full share once warmupMs has passed', async () => {
    const warmupMs = 6000;
    api!.publish(table({}, ['pg3']));
    const db = await open({ warmupMs });
    await waitFor('pg3 out', async () => db.routingTable?.replicas.length === 1);
    // pg2 was there when the pool started: let it warm up first
    await new Promise((r) => setTimeout(r, warmupMs + 100));
    api!.publish(table());
    await waitFor('pg3 in', async () => db.routingTable?.replicas.length === 2, 5000, 5);
    const joined = Date.now();
    // in its first second of six, pg3's weight is 5 % to 17 % of pg2's
    const early = count(await served(db, 60));
    const earlyMs = Date.now() - joined;
    expect(early.pg3 ?? 0, `${JSON.stringify(early)} in ${earlyMs} ms`).toBeLessThan(earlyMs < 2000 ? 25 : 40);
    expect(early.pg2!).toBeGreaterThan(early.pg3 ?? 0);
    // once warmed up, round-robin again: exact alternation
    await new Promise((r) => setTimeout(r, Math.max(0, joined + warmupMs + 100 - Date.now())));
    expect(count(await served(db, 20))).toEqual({ pg2: 10, pg3: 10 });
  });

  it('per-role statement timeouts: a replica statement past its timeout fails fast (after one retry), the primary has its own', async () => {
    const db = await open({ timeouts: { replica: { statementMs: 300 }, primary: { statementMs: 5000 } }, breaker: { failures: 100 } });
    const errors: QueryErrorEvent[] = [];
    db.on('query-error', (e) => errors.push(e));
    const t0 = Date.now();
    // two attempts of 300 ms each (and their connections): well under 5 s, where a single
    // attempt without its timeout would take 10 s
    await expect(db.query('SELECT pg_sleep(10)')).rejects.toThrow(/timeout/i);
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(errors.map((e) => [e.role, e.willRetry])).toEqual([['replica', true], ['replica', false]]);
    expect(new Set(errors.map((e) => e.nodeId))).toEqual(new Set(['pg2', 'pg3']));
    // the same statement on the primary runs (its timeout is 5 s)
    const r = await db.using({ readPreference: 'primary' }).query<{ port: number }>('SELECT pg_sleep(0.5), inet_server_port() AS port');
    expect(portToId.get(r.rows[0]!.port)).toBe('pg1');
  });

  it('a write that may have run is never retried: a statement timeout on the primary fails it once, no second attempt', async () => {
    const db = await open({ timeouts: { primary: { statementMs: 300 } }, breaker: { failures: 100 } });
    const errors: QueryErrorEvent[] = [];
    db.on('query-error', (e) => errors.push(e));
    await expect(db.query("INSERT INTO users (name) SELECT 'timed-out' FROM pg_sleep(1)")).rejects.toThrow(/timeout/i);
    expect(errors.map((e) => [e.nodeId, e.kind, e.willRetry])).toEqual([['pg1', 'write', false]]);
    expect(db.stats().retries).toBe(0);
    // whatever the server did with it, it did it once
    await new Promise((r) => setTimeout(r, 1500));
    expect((await sql<{ n: number }>(cluster!.primary.port, "SELECT count(*)::int AS n FROM users WHERE name = 'timed-out'")).rows[0]!.n).toBeLessThanOrEqual(1);
  });

  it('NoPrimaryError: a write held while the table names no primary fails after holdWritesMs with a coded error; the next primary takes writes again', async () => {
    const db = await open({ holdWritesMs: 600 });
    api!.publish({ ...table(), primary: null, writable: false });
    try {
      await waitFor('no primary in the table', async () => db.routingTable?.primary === null);
      const t0 = Date.now();
      const err = await db.query("INSERT INTO users (name) VALUES ('no-primary')").then(() => null, (e: unknown) => e);
      expect(err).toBeInstanceOf(NoPrimaryError);
      expect(err).toMatchObject({ code: 'NO_PRIMARY' });
      expect((err as Error).message).toMatch(/no writable primary.*600 ms/);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(550);
      // reads carry on from the replicas meanwhile
      expect(['pg2', 'pg3']).toContain((await served(db, 1))[0]);
    } finally {
      api!.publish(table());
    }
    const w = await db.query<{ port: number }>("INSERT INTO users (name) VALUES ('primary-back') RETURNING inet_server_port() AS port");
    expect(portToId.get(w.rows[0]!.port)).toBe('pg1');
  });

  it('circuit breaker through a long outage: one probe per openMs, each failed probe re-opens it, no read fails; the first good probe closes it', async () => {
    const pg3 = cluster!.node('pg3');
    await sql(cluster!.primary.port, 'CREATE DATABASE app');
    await waitFor('app on pg3', async () => (await sql(pg3.port, "SELECT count(*)::int AS n FROM pg_database WHERE datname = 'app'")).rows[0]?.n === 1);
    const hba = path.join(pg3.dataDir, 'pg_hba.conf');
    const original = fs.readFileSync(hba, 'utf8');
    fs.writeFileSync(hba, `host app all 127.0.0.1/32 reject\n${original}`);
    await sql(pg3.port, 'SELECT pg_reload_conf()');
    const db = await open({ connection: { user: 'postgres', database: 'app' }, breaker: { failures: 2, openMs: 300 }, keepWarm: false });
    const ejected: string[] = [];
    db.on('node-ejected', (e) => ejected.push(e.nodeId));
    let reads = 0;
    let failed = 0;
    try {
      const t0 = Date.now();
      while (Date.now() - t0 < 2000) {
        await db.query('SELECT 1').then(() => reads++, () => failed++);
      }
      const errors = db.stats().nodes.pg3!.errors;
      // 2 to open it, then about one probe per 300 ms (not every other read of ${reads})
      expect(errors, `${errors} failures on pg3 in ${reads} reads`).toBeLessThanOrEqual(2 + Math.ceil((Date.now() - t0) / 300) + 2);
      expect(ejected.length).toBeGreaterThanOrEqual(2);
      expect(failed).toBe(0);
    } finally {
      fs.writeFileSync(hba, original);
      await sql(pg3.port, 'SELECT pg_reload_conf()');
    }
    await waitFor('pg3 restored by a probe', async () => {
      await db.query('SELECT 1');
      return db.stats().nodes.pg3?.breaker === 'closed';
    }, 10_000, 50);
  });

  it('decorators: every statement of a @writes or @consistentRead method goes to the primary; @readOnly sends a "write" by text to a replica', async () => {
    const db = await open();
    const port = async (q = 'SELECT inet_server_port() AS port'): Promise<string> => portToId.get((await db.query<{ port: number }>(q)).rows[0]!.port)!;
    // the app's own TypeScript (standard decorators), compiled as tsc compiles it
    const Repo = await compileRepo({ writes, consistentRead, readOnly }, port);
    const repo = new Repo() as { inWrites(): Promise<string[]>; fresh(): Promise<string>; advisory(): Promise<string> };
    expect(await repo.inWrites()).toEqual(['pg1', 'pg1']);
    expect(await repo.fresh()).toBe('pg1');
    expect(['pg2', 'pg3']).toContain(await repo.advisory());
    // outside the methods: the usual rules
    expect(await port('SELECT inet_server_port() AS port, pg_try_advisory_xact_lock(42) AS locked')).toBe('pg1');
    expect(['pg2', 'pg3']).toContain(await port());
  });

  it('Express-style requestScope: each request its own read-your-writes scope; the token it returns brings the write to a later request, with replay paused on both replicas', async () => {
    for (const r of cluster!.replicas) await sql(r.port, 'SELECT pg_wal_replay_pause()');
    let server: http.Server | undefined;
    try {
      const db = await open({ readYourWrites: false });
      const scope = requestScope(db);
      server = http.createServer((req, res) => {
        scope(req, res, () => {
          void (async () => {
            const u = new URL(req.url ?? '/', 'http://x');
            if (req.method === 'POST') {
              const w = await db.query<{ id: number }>("INSERT INTO users (name) VALUES ('express') RETURNING id");
              res.writeHead(201, { 'content-type': 'application/json' }).end(JSON.stringify({ id: w.rows[0]!.id }));
              return;
            }
            const r = await db.query<{ n: number; port: number }>('SELECT count(*)::int AS n, inet_server_port() AS port FROM users WHERE id = $1', [Number(u.searchParams.get('id'))]);
            res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ n: r.rows[0]!.n, node: portToId.get(r.rows[0]!.port) }));
          })().catch((err: Error) => res.writeHead(500).end(err.message));
        });
      });
      await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
      const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
      const created = await fetch(`${base}/users`, { method: 'POST' });
      expect(created.status).toBe(201);
      const token = created.headers.get('x-switchyard-token');
      expect(token).toBeTruthy();
      const { id } = (await created.json()) as { id: number };
      const get = async (headers: Record<string, string> = {}): Promise<{ n: number; node: string }> => (await (await fetch(`${base}/users?id=${id}`, { headers })).json()) as { n: number; node: string };
      // with the token: the write is seen (the replicas have not replayed it: the primary)
      expect(await get({ 'x-switchyard-token': token! })).toEqual({ n: 1, node: 'pg1' });
      // without it, another request has a scope of its own: a (stale) replica
      const plain = await get();
      expect(plain.n).toBe(0);
      expect(['pg2', 'pg3']).toContain(plain.node);
      // a bad token costs read-your-writes, never the request
      expect((await get({ 'x-switchyard-token': 'garbage' })).n).toBe(0);
      // a read-only request sends no token back
      expect((await fetch(`${base}/users?id=${id}`)).headers.get('x-switchyard-token')).toBeNull();
    } finally {
      if (server) await new Promise((r) => server!.close(r));
      for (const r of cluster!.replicas) await sql(r.port, 'SELECT pg_wal_replay_resume()');
    }
  });
});
