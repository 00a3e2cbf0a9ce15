/**
 * ReplicatedPool's routing rules on a real primary and two replicas (one sandbox):
 * the pg.Pool surface, each read preference and balancing strategy, lag limits,
 * read-your-writes with replay paused (pool scope, request scope, a token carried to
 * another pool), the 40001 conflict-with-recovery retry and the circuit breaker.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { Registry } from 'prom-client';
import { ReplicatedPool, type QueryExecutedEvent, type ReplicatedPoolOptions, NoReplicaError } from '../../src/client/index.js';
import type { SandboxFile } from '../../src/sandbox/deploy.js';
import type { RoutingTable } from '../../src/core/routing.js';
import { routing, sql, startSandbox, stopSandbox, waitFor } from '../support/sandbox.js';
import { fakeRouting } from '../support/fake-routing.js';


describe('ReplicatedPool routing rules on real PostgreSQL', () => {
  let s: Awaited<ReturnType<typeof startSandbox>> | undefined;
  let file: SandboxFile;
  const pools: ReplicatedPool[] = [];
  const portToId = new Map<number, string>();

  const open = async (over: Partial<ReplicatedPoolOptions> = {}): Promise<ReplicatedPool> => {
    const db = new ReplicatedPool({ routing: file.api, cluster: file.cluster, connection: { user: 'postgres', database: 'postgres' }, max: 4, ...over });
    pools.push(db);
    await db.ready();
    return db;
  };
  /** the node that served each statement, from the server itself */
  const servedBy = async (db: ReplicatedPool, n: number, q = 'SELECT inet_server_port() AS port', values?: unknown[]): Promise<string[]> => {
    const out: string[] = [];
    for (let i = 0; i < n; i++) {
      const r = await db.query<{ port: number }>(q, values);
      out.push(portToId.get(r.rows[0]!.port)!);
    }
    return out;
  };
  const count = (xs: string[]): Record<string, number> => xs.reduce<Record<string, number>>((m, x) => ((m[x] = (m[x] ?? 0) + 1), m), {});

  beforeAll(async () => {
    // each agent configured with a zone: the table carries them (the zones test below); no pool here sets a zone unless it says so
    s = await startSandbox({ coordinators: 1, zones: ['zone-a', 'zone-b', 'zone-c'] });
    file = s.file;
    for (const n of file.nodes) portToId.set(n.port, n.id);
    await sql(file.nodes[0]!.port, 'CREATE TABLE users (id serial PRIMARY KEY, name text NOT NULL)');
    await sql(file.nodes[0]!.port, "INSERT INTO users (name) SELECT 'u' || g FROM generate_series(1, 10) g");
    for (const r of file.nodes.slice(1)) await waitFor(`users on ${r.id}`, async () => (await sql(r.port, 'SELECT count(*)::int AS n FROM users')).rows[0]?.n === 10);
  }, 180_000);

  afterAll(async () => {
    for (const db of pools) await db.end();
    await stopSandbox(s);
  }, 60_000);

  it('is a pg.Pool: reads to replicas, writes to the primary, callbacks, connect/release, counters, events', async () => {
    const db = await open();
    expect(db).toBeInstanceOf(pg.Pool);
    const seen: QueryExecutedEvent[] = [];
    db.on('query-executed', (e: QueryExecutedEvent) => seen.push(e));
    const acquired: unknown[] = [];
    db.on('acquire', (c) => acquired.push(c));
    const reads = await servedBy(db, 6);
    expect(new Set(reads)).toEqual(new Set(['pg2', 'pg3']));
    const w = await db.query<{ port: number }>("INSERT INTO users (name) VALUES ('w') RETURNING inet_server_port() AS port");
    expect(portToId.get(w.rows[0]!.port)).toBe('pg1');
    expect(seen.filter((e) => e.kind === 'read').every((e) => e.role === 'replica')).toBe(true);
    expect(seen.find((e) => e.kind === 'write')).toMatchObject({ nodeId: 'pg1', role: 'primary' });
    expect(seen.every((e) => e.durationMs >= 0)).toBe(true);
    // query(config) and the callback form
    const cfg = await db.query({ text: 'SELECT $1::int AS x', values: [7] });
    expect(cfg.rows[0]).toEqual({ x: 7 });
    const viaCb = await new Promise<number>((resolve, reject) => db.query('SELECT $1::int AS x', [8], (err: Error | null, r?: pg.QueryResult) => (err ? reject(err) : resolve(r!.rows[0].x as number))));
    expect(viaCb).toBe(8);
    // connect(): a transaction on it is on the primary
    const c = await db.connect();
    await c.query('BEGIN');
    const inTx = await c.query<{ port: number }>('SELECT inet_server_port() AS port');
    expect(portToId.get(inTx.rows[0]!.port)).toBe('pg1');
    await c.query('COMMIT');
    c.release();
    expect(acquired.length).toBe(1);
    // a read-only client is pinned to a replica
    const ro = await db.connect({ readOnly: true });
    const roPort = (await ro.query<{ port: number }>('SELECT inet_server_port() AS port')).rows[0]!.port;
    expect(['pg2', 'pg3']).toContain(portToId.get(roPort));
    ro.release();
    expect(db.totalCount).toBeGreaterThan(0);
    expect(db.idleCount).toBeLessThanOrEqual(db.totalCount);
    expect(db.waitingCount).toBe(0);
    // db.transaction: pinned to the primary, reads inside it too
    const port = await db.transaction(async (tx) => {
      await tx.query("INSERT INTO users (name) VALUES ('tx')");
      return (await tx.query<{ port: number }>('SELECT inet_server_port() AS port')).rows[0]!.port;
    });
    expect(portToId.get(port)).toBe('pg1');
    const st = db.stats();
    expect(st.primary).toBe('pg1');
    expect(st.nodes.pg1!.queries).toBeGreaterThan(0);
    expect(st.nodes.pg2!.queries + st.nodes.pg3!.queries).toBeGreaterThanOrEqual(6);
  });

  it('read preferences: primary, primaryPreferred, secondary, secondaryPreferred, nearest (zone first)', async () => {
    expect(new Set(await servedBy(await open({ readPreference: 'primary' }), 4))).toEqual(new Set(['pg1']));
    expect(new Set(await servedBy(await open({ readPreference: 'primaryPreferred' }), 4))).toEqual(new Set(['pg1']));
    expect(new Set(await servedBy(await open({ readPreference: 'secondary' }), 6))).toEqual(new Set(['pg2', 'pg3']));
    expect(new Set(await servedBy(await open({ readPreference: 'secondaryPreferred' }), 6))).toEqual(new Set(['pg2', 'pg3']));
    // nearest: every node qualifies; all are on loopback, so all are within the latency window
    const near = await open({ readPreference: 'nearest', localThresholdMs: 1000 });
    expect(new Set(await servedBy(near, 12))).toEqual(new Set(['pg1', 'pg2', 'pg3']));
    // secondary with no replica qualifying: a coded error, never the primary
    const none = await open({ readPreference: 'secondary' });
    await expect(none.query({ text: 'SELECT 1', route: { preferredNode: 'nope', maxLagBytes: -1 } } as pg.QueryConfig)).rejects.toBeInstanceOf(NoReplicaError);
    // per-query override of the preference
    const r = await none.query<{ port: number }>({ text: 'SELECT inet_server_port() AS port', route: { readPreference: 'primary' } } as pg.QueryConfig);
    expect(portToId.get(r.rows[0]!.port)).toBe('pg1');
    const pref = await none.query<{ port: number }>({ text: 'SELECT inet_server_port() AS port', route: { preferredNode: 'pg3' } } as pg.QueryConfig);
    expect(portToId.get(pref.rows[0]!.port)).toBe('pg3');
    // requiresConsistency: the primary
    const cons = await none.using({ requiresConsistency: true }).query<{ port: number }>('SELECT inet_server_port() AS port');
    expect(portToId.get(cons.rows[0]!.port)).toBe('pg1');
  });

  it("zones: the coordinator's table carries each agent's zone; nearest with the app's zone reads from the same-zone node", async () => {
    const t = await routing(file.api, file.cluster);
    expect(t.primary).toMatchObject({ id: 'pg1', zone: 'zone-a' });
    expect(t.replicas.map((r) => [r.id, r.zone])).toEqual([
      ['pg2', 'zone-b'],
      ['pg3', 'zone-c'],
    ]);
    expect(t.nodes?.map((n) => [n.id, n.zone])).toEqual([
      ['pg1', 'zone-a'],
      ['pg2', 'zone-b'],
      ['pg3', 'zone-c'],
    ]);
    // a latency window wide enough for all three: only the zone decides
    const inC = await open({ readPreference: 'nearest', zone: 'zone-c', localThresholdMs: 1000 });
    expect(count(await servedBy(inC, 12))).toEqual({ pg3: 12 });
    const inA = await open({ readPreference: 'nearest', zone: 'zone-a', localThresholdMs: 1000 });
    expect(count(await servedBy(inA, 6))).toEqual({ pg1: 6 });
    // other preferences break ties by zone as well; a zone no node is in changes nothing
    expect(count(await servedBy(await open({ readPreference: 'secondaryPreferred', zone: 'zone-b' }), 6))).toEqual({ pg2: 6 });
    expect(new Set(await servedBy(await open({ readPreference: 'nearest', zone: 'zone-z', localThresholdMs: 1000 }), 12))).toEqual(new Set(['pg1', 'pg2', 'pg3']));
  });

  it('load balancing: round-robin alternates, weighted follows weights, random and least-* spread, warm-up ramps', async () => {
    const rr = await servedBy(await open({ loadBalancing: 'round-robin' }), 10);
    for (let i = 1; i < rr.length; i++) expect(rr[i]).not.toBe(rr[i - 1]);
    const weighted = count(await servedBy(await open({ loadBalancing: 'weighted', weights: { pg2: 9, pg3: 1 } }), 200));
    expect(weighted.pg2!).toBeGreaterThan(weighted.pg3 ?? 0);
    expect(weighted.pg2!).toBeGreaterThan(140);
    const rnd = count(await servedBy(await open({ loadBalancing: 'random' }), 60));
    expect(rnd.pg2).toBeGreaterThan(5);
    expect(rnd.pg3).toBeGreaterThan(5);
    // least-connections: with one replica busy, new reads go to the other
    const lc = await open({ loadBalancing: 'least-connections' });
    // (long enough to outlast the five reads below on a loaded machine)
    const busy = lc.query<{ port: number }>('SELECT pg_sleep(5), inet_server_port() AS port');
    const busyId = (await waitFor('a busy node', async () => Object.entries(lc.stats().nodes).find(([, n]) => n.inflight > 0)?.[0]));
    const others = await servedBy(lc, 5);
    expect(others.every((x) => x !== busyId)).toBe(true);
    await busy;
    // least-lag: equal lag shares; both replicas are caught up
    const ll = count(await servedBy(await open({ loadBalancing: 'least-lag' }), 10));
    expect((ll.pg2 ?? 0) + (ll.pg3 ?? 0)).toBe(10);
    // warm-up: replicas that just joined get a small share, the primary... is not in the set;
    // under secondaryPreferred with warm-up both are warming equally: still served
    const warm = await servedBy(await open({ warmupMs: 60_000 }), 10);
    expect(warm.every((x) => x === 'pg2' || x === 'pg3')).toBe(true);
  });

  it('lag limits: a replica with replay paused is left out by maxLagBytes (per pool and per query)', async () => {
    await sql(file.nodes[1]!.port, 'SELECT pg_wal_replay_pause()');
    try {
      await sql(file.nodes[0]!.port, "INSERT INTO users (name) SELECT repeat('x', 200) FROM generate_series(1, 2000)");
      await waitFor('pg2 lagging in the table', async () => ((await routing(file.api, file.cluster)).replicas.find((r) => r.id === 'pg2')?.lagBytes ?? 0) > 100_000, 20_000);
      const db = await open({ maxLagBytes: 50_000, refreshMs: 200 });
      const lagOf = (p: ReplicatedPool, id: string): number => p.routingTable?.replicas.find((r) => r.id === id)?.lagBytes ?? Infinity;
      await waitFor('the pool sees pg2 lag and pg3 caught up', async () => lagOf(db, 'pg2') > 50_000 && lagOf(db, 'pg3') < 50_000, 20_000);
      expect(new Set(await servedBy(db, 10))).toEqual(new Set(['pg3']));
      // per query: a generous limit lets pg2 back in
      const loose = await open({ refreshMs: 200 });
      await waitFor('lag seen', async () => lagOf(loose, 'pg2') > 50_000 && lagOf(loose, 'pg3') < 50_000, 20_000);
      const perQuery: string[] = [];
      for (let i = 0; i < 10; i++) {
        const r = await loose.query<{ port: number }>({ text: 'SELECT inet_server_port() AS port', route: { maxLagBytes: 50_000 } } as pg.QueryConfig);
        perQuery.push(portToId.get(r.rows[0]!.port)!);
      }
      expect(new Set(perQuery)).toEqual(new Set(['pg3']));
      expect(new Set(await servedBy(loose, 10))).toEqual(new Set(['pg2', 'pg3']));
    } finally {
      await sql(file.nodes[1]!.port, 'SELECT pg_wal_replay_resume()');
    }
  });

  it('read-your-writes with replay paused: never a stale replica; request scopes; a token carried to another pool', async () => {
    const [, pg2, pg3] = file.nodes;
    await sql(pg2!.port, 'SELECT pg_wal_replay_pause()');
    await sql(pg3!.port, 'SELECT pg_wal_replay_pause()');
    try {
      const db = await open();
      const other = await open();
      // pool scope: the write's row is read back (from the primary: both replicas are behind)
      const ins = await db.query<{ id: number }>("INSERT INTO users (name) VALUES ('ryw') RETURNING id");
      const id = ins.rows[0]!.id;
      for (let i = 0; i < 5; i++) {
        const r = await db.query<{ port: number; n: number }>('SELECT inet_server_port() AS port, count(*)::int AS n FROM users WHERE id = $1', [id]);
        expect(r.rows[0]!.n).toBe(1);
        expect(portToId.get(r.rows[0]!.port)).toBe('pg1');
      }
      // another pool (another process, as far as scopes go) reads the stale replicas...
      const stale = await other.query<{ port: number; n: number }>('SELECT inet_server_port() AS port, count(*)::int AS n FROM users WHERE id = $1', [id]);
      expect(stale.rows[0]!.n).toBe(0);
      // ...unless it carries the writer's token
      const token = db.consistencyToken();
      const carried = await other.withToken(token, () => other.query<{ n: number }>('SELECT count(*)::int AS n FROM users WHERE id = $1', [id]));
      expect(carried.rows[0]!.n).toBe(1);
      // a real other process (the built library), carrying the token in its environment
      const script = `
        import { ReplicatedPool } from ${JSON.stringify(path.resolve('dist/src/client/index.js'))};
        const db = new ReplicatedPool({ routing: process.env.API, cluster: process.env.CLUSTER, connection: { user: 'postgres', database: 'postgres' } });
        await db.ready();
        const q = 'SELECT count(*)::int AS n FROM users WHERE id = $1';
        const withToken = await db.withToken(process.env.TOKEN, () => db.query(q, [Number(process.env.ID)]));
        const without = await db.query(q, [Number(process.env.ID)]);
        console.log(JSON.stringify({ withToken: withToken.rows[0].n, without: without.rows[0].n }));
        await db.end();`;
      const out = await new Promise<string>((resolve, reject) =>
        execFile(process.execPath, ['--input-type=module', '-e', script], { env: { ...process.env, API: file.api, CLUSTER: file.cluster, TOKEN: token, ID: String(id) }, timeout: 30_000 }, (err: Error | null, stdout: string) => (err ? reject(err) : resolve(stdout))),
      );
      expect(JSON.parse(out.trim().split('\n').at(-1)!)).toEqual({ withToken: 1, without: 0 });
      // a request scope: only what this request wrote counts
      const scoped = await open({ readYourWrites: false });
      const inScope = await scoped.withScope(async () => {
        const r = await scoped.query<{ id: number }>("INSERT INTO users (name) VALUES ('req') RETURNING id");
        return scoped.query<{ n: number }>('SELECT count(*)::int AS n FROM users WHERE id = $1', [r.rows[0]!.id]);
      });
      expect(inScope.rows[0]!.n).toBe(1);
      // resume one replica: once it has replayed the write, reads go there again
      await sql(pg3!.port, 'SELECT pg_wal_replay_resume()');
      await waitFor('pg3 serves the read-your-writes read', async () => (await servedBy(db, 1, 'SELECT inet_server_port() AS port, count(*) AS n FROM users WHERE id = $1', [id]))[0] === 'pg3', 15_000);
      // and never pg2, still paused
      expect((await servedBy(db, 8, 'SELECT inet_server_port() AS port FROM users WHERE id = $1', [id])).includes('pg2')).toBe(false);
      // an expired token asks for nothing
      const expired = Buffer.from(JSON.stringify({ v: 1, c: file.cluster, l: '0/FFFFFFF', e: Date.now() - 1 })).toString('base64url');
      const free = await other.withToken(expired, () => other.query<{ port: number }>('SELECT inet_server_port() AS port'));
      expect(['pg2', 'pg3']).toContain(portToId.get(free.rows[0]!.port));
      expect(() => other.withToken('garbage', () => 1)).toThrow(/not a switchyard token|malformed/);
    } finally {
      await sql(pg2!.port, 'SELECT pg_wal_replay_resume()');
      await sql(pg3!.port, 'SELECT pg_wal_replay_resume()');
    }
  });

  it('retries a read cancelled by a conflict with recovery (40001) on another node', async () => {
    const [p, pg2] = file.nodes;
    await sql(p!.port, 'CREATE TABLE conflict_t (id int)');
    await waitFor('conflict_t on pg2', async () => (await sql(pg2!.port, "SELECT to_regclass('conflict_t') IS NOT NULL AS ok")).rows[0]?.ok === true);
    await sql(pg2!.port, "ALTER SYSTEM SET max_standby_streaming_delay = '0'");
    await sql(pg2!.port, 'SELECT pg_reload_conf()');
    await waitFor('max_standby_streaming_delay = 0 on pg2', async () => (await sql<{ v: string }>(pg2!.port, "SELECT current_setting('max_standby_streaming_delay') AS v")).rows[0]?.v === '0');
    try {
      const db = await open();
      const errors: unknown[] = [];
      db.on('query-error', (e) => errors.push(e));
      const events: QueryExecutedEvent[] = [];
      db.on('query-executed', (e: QueryExecutedEvent) => events.push(e));
      // (6 s: the poll that sees it and the LOCK below each open a connection, slow on a loaded host;
      // the read must still be running when the lock is replayed, or there is no conflict to retry)
      const long = db.query<{ port: number }>({ text: 'SELECT pg_sleep(6), inet_server_port() AS port FROM (SELECT count(*) FROM conflict_t) x', route: { preferredNode: 'pg2' } } as pg.QueryConfig);
      long.catch(() => {});
      // the read holds its lock on pg2 before the primary's exclusive lock is replayed there
      await waitFor('the long read running on pg2', async () => (await sql<{ n: number }>(pg2!.port, "SELECT count(*)::int AS n FROM pg_stat_activity WHERE state = 'active' AND query LIKE 'SELECT pg_sleep(6)%'")).rows[0]!.n === 1, 20_000, 20);
      await sql(p!.port, 'BEGIN; LOCK TABLE conflict_t IN ACCESS EXCLUSIVE MODE; COMMIT');
      const r = await long;
      expect(portToId.get(r.rows[0]!.port)).not.toBe('pg2');
      expect(errors).toHaveLength(1);
      expect((errors[0] as { error: { code: string }; willRetry: boolean })).toMatchObject({ nodeId: 'pg2', willRetry: true, error: { code: '40001' } });
      expect(events.at(-1)).toMatchObject({ retried: true });
    } finally {
      await sql(pg2!.port, 'ALTER SYSTEM RESET max_standby_streaming_delay');
      await sql(pg2!.port, 'SELECT pg_reload_conf()');
    }
  });

  it('circuit breaker: a replica refusing logins is ejected after N failures, reads carry on elsewhere, a half-open probe restores it', async () => {
    const [p, , pg3] = file.nodes;
    await sql(p!.port, 'CREATE DATABASE app');
    await waitFor('app on pg3', async () => (await sql(pg3!.port, "SELECT count(*)::int AS n FROM pg_database WHERE datname = 'app'")).rows[0]?.n === 1);
    const hba = path.join(pg3!.dataDir, 'pg_hba.conf');
    const original = fs.readFileSync(hba, 'utf8');
    // only this pool's logins fail (database app): the agent's probes carry on, the table keeps pg3
    fs.writeFileSync(hba, `host app all 127.0.0.1/32 reject\n${original}`);
    await sql(pg3!.port, 'SELECT pg_reload_conf()');
    // pg_reload_conf() only signals the postmaster: wait until pg3 refuses those logins (a
    // login let in first would delay the ejection past the reads checked below)
    await waitFor('pg3 refusing logins to app', async () => {
      const c = new pg.Client({ host: '127.0.0.1', port: pg3!.port, user: 'postgres', database: 'app', connectionTimeoutMillis: 5_000 });
      c.on('error', () => {});
      return c.connect().then(
        async () => {
          await c.end().catch(() => {});
          return false;
        },
        (err: Error) => /rejects connection/.test(err.message),
      );
    }, 20_000, 100);
    const db = await open({ connection: { user: 'postgres', database: 'app' }, breaker: { failures: 2, openMs: 5000 } });
    const ejected: Array<{ nodeId: string }> = [];
    db.on('node-ejected', (e: { nodeId: string }) => ejected.push(e));
    let failed = 0;
    const served: string[] = [];
    try {
      for (let i = 0; i < 12; i++) {
        try {
          served.push(...(await servedBy(db, 1)));
        } catch {
          failed++;
        }
      }
      expect(failed).toBe(0);
      expect(ejected.map((e) => e.nodeId)).toEqual(['pg3']);
      expect(db.stats().nodes.pg3!.breaker).not.toBe('closed');
      // once open, pg3 is not tried: every read after the ejection is pg2's
      expect(served.slice(-8).every((x) => x === 'pg2')).toBe(true);
      expect(db.stats().nodes.pg3!.errors).toBe(2);
    } finally {
      fs.writeFileSync(hba, original);
      await sql(pg3!.port, 'SELECT pg_reload_conf()');
    }
    await waitFor('pg3 restored by a half-open probe', async () => {
      await servedBy(db, 2);
      return db.stats().nodes.pg3?.breaker === 'closed';
    }, 30_000, 200);
    expect(new Set(await servedBy(db, 6))).toEqual(new Set(['pg2', 'pg3']));
  });


  it('draining: no new transaction on a draining primary, in-flight ones finish within the bound, writes held until a primary is named; a departed node is closed', async () => {
    const live = await routing(file.api, file.cluster);
    // the stand-in serves the real nodes, both replicas healthy and caught up
    const real: RoutingTable = { ...live, replicas: live.replicas.map((r) => ({ ...r, healthy: true, lagBytes: 0, lagMs: 0 })) };
    const fake = await fakeRouting(real);
    let gen = real.generation;
    const next = (over: Partial<RoutingTable>): RoutingTable => ({ ...real, ...over, generation: ++gen });
    try {
      // read-your-writes off: the stand-in's replay positions are frozen (read-your-writes has its own test)
      // drainTimeoutMs 4 s: the in-flight transaction below must commit within it, after a 0.4 s wait, on a loaded host
      const db = await open({ routing: fake.url, holdWritesMs: 30_000, drainTimeoutMs: 4000, refreshMs: 0, staleAfterMs: 60_000, readYourWrites: false });
      // a transaction in flight on the primary when it starts draining
      const tx = await db.connect();
      await tx.query('BEGIN');
      await tx.query("INSERT INTO users (name) VALUES ('in-flight')");
      fake.publish(next({ primary: { ...real.primary!, draining: true } }));
      await waitFor('the pool sees the primary draining', async () => db.stats().nodes.pg1?.draining === true, 5000, 10);
      // a new write is held, not sent to the draining primary
      let heldDone = 0;
      const held = db.query<{ port: number }>("INSERT INTO users (name) VALUES ('held') RETURNING inet_server_port() AS port").then((r) => ((heldDone = Date.now()), r));
      // a new transaction is held too
      const heldTx = db.transaction(async (c) => (await c.query<{ port: number }>('SELECT inet_server_port() AS port')).rows[0]!.port);
      // (awaited below; these keep a failed assertion from leaving unhandled rejections)
      held.catch(() => {});
      heldTx.catch(() => {});
      await new Promise((r) => setTimeout(r, 400));
      expect(heldDone).toBe(0);
      // the in-flight transaction finishes (within the bound)
      await tx.query("INSERT INTO users (name) VALUES ('in-flight 2')");
      await tx.query('COMMIT');
      tx.release();
      // reads carry on from the replicas meanwhile
      expect(new Set(await servedBy(db, 4))).toEqual(new Set(['pg2', 'pg3']));
      // a primary is named (here the same node, no longer draining): the held write and transaction go there
      const namedAt = Date.now();
      fake.publish(next({}));
      const w = await held;
      expect(portToId.get(w.rows[0]!.port)).toBe('pg1');
      // sent when the table came, not when the hold (30 s) ran out; generous for a loaded machine
      expect(heldDone - namedAt).toBeLessThan(5000);
      expect(portToId.get(await heldTx)).toBe('pg1');
      expect((await sql<{ n: number }>(file.nodes[0]!.port, "SELECT count(*)::int AS n FROM users WHERE name IN ('in-flight', 'in-flight 2', 'held')")).rows[0]!.n).toBe(3);

      // a transaction still open past drainTimeoutMs is cut off
      const slow = await db.connect();
      await slow.query('BEGIN');
      fake.publish(next({ primary: { ...real.primary!, draining: true } }));
      // cut off drainTimeoutMs (4 s) after the pool has the table, however late that table arrives
      await waitFor('the open transaction cut off', async () => slow.query('SELECT 1').then(() => false, () => true), 20_000, 200);
      slow.release();
      fake.publish(next({}));

      // a node that leaves the table: drained and closed, no more reads there
      fake.publish(next({ replicas: real.replicas.filter((r) => r.id !== 'pg3') }));
      await waitFor('pg3 gone from the pool', async () => db.stats().nodes.pg3 === undefined, 5000, 10);
      expect(new Set(await servedBy(db, 6))).toEqual(new Set(['pg2']));
    } finally {
      await fake.close();
    }
  });

  it('a read whose replay check outlives its table: the primary it fell back to left meanwhile, so it is chosen again, never sent to a closed pool', async () => {
    const live = await routing(file.api, file.cluster);
    const pg2 = live.replicas.find((r) => r.id === 'pg2')!;
    // one replica, one connection per node: the replay check waits behind a lease we hold
    const real: RoutingTable = { ...live, replicas: [{ ...pg2, healthy: true, lagBytes: 0, lagMs: 0 }] };
    const fake = await fakeRouting(real);
    let gen = real.generation;
    const next = (over: Partial<RoutingTable>): RoutingTable => ({ ...real, ...over, generation: ++gen });
    await sql(pg2.port, 'SELECT pg_wal_replay_pause()');
    try {
      const db = await open({ routing: fake.url, max: 1, holdWritesMs: 10_000, refreshMs: 0, staleAfterMs: 60_000 });
      const errors: string[] = [];
      db.on('query-error', (e) => errors.push(e.error.message));
      const lease = await db.connect({ readOnly: true });
      await lease.query('BEGIN READ ONLY');
      expect(portToId.get((await lease.query<{ port: number }>('SELECT inet_server_port() AS port')).rows[0]!.port)).toBe('pg2');
      await db.query("INSERT INTO users (name) VALUES ('ryw-race')");
      // pg2 is behind the write: the read checks pg2's replay (queued behind the lease), then falls back to the primary
      const read = db.query<{ port: number }>('SELECT inet_server_port() AS port');
      read.catch(() => {});
      await new Promise((r) => setTimeout(r, 100));
      // meanwhile the primary leaves the table (a failover in flight): its pool is closed
      fake.publish(next({ primary: null, writable: false }));
      await waitFor('pg1 gone from the pool', async () => db.stats().nodes.pg1 === undefined, 5000, 10);
      await lease.query('COMMIT');
      lease.release();
      // the read is held for a primary, then served by the one the next table names
      await new Promise((r) => setTimeout(r, 200));
      fake.publish(next({}));
      const r = await read;
      expect(portToId.get(r.rows[0]!.port)).toBe('pg1');
      expect(errors).toEqual([]);
    } finally {
      await sql(pg2.port, 'SELECT pg_wal_replay_resume()');
      await fake.close();
    }
  });

  it('prom-client metrics on the app registry, coalescing of identical concurrent reads', async () => {
    const registry = new Registry();
    const db = await open({ metrics: { registry }, coalesce: true });
    const results = await Promise.all(Array.from({ length: 10 }, () => db.query('SELECT pg_sleep(0.2), 42 AS x')));
    expect(results.every((r) => r.rows[0].x === 42)).toBe(true);
    expect(db.stats().coalesced).toBeGreaterThanOrEqual(8);
    const text = await registry.metrics();
    expect(text).toMatch(/switchyard_client_queries_total\{node="pg[23]",role="replica",kind="read"\} [1-9]/);
    expect(text).toMatch(/switchyard_client_coalesced_total [1-9]/);
  });
});
