/**
 * The example Fastify service (examples/fastify-app) on a real cluster: the users list,
 * create-then-read-back with both replicas' replay paused (read-your-writes per
 * request, and across instances with the token header), a funds transfer in a
 * transaction, and the service carrying on through a kill -9 of the primary.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ReplicatedPool } from '../../src/client/index.js';
import type { SandboxFile } from '../../src/sandbox/deploy.js';
import { buildApp, SCHEMA } from '../../examples/fastify-app/app.js';
import { postmasterPid, routing, sql, startSandbox, stopSandbox, waitFor } from '../support/sandbox.js';

describe('example app (Fastify on ReplicatedPool)', () => {
  let s: Awaited<ReturnType<typeof startSandbox>> | undefined;
  let file: SandboxFile;
  let db: ReplicatedPool;
  let other: ReplicatedPool;
  let app: ReturnType<typeof buildApp>;
  let app2: ReturnType<typeof buildApp>;

  beforeAll(async () => {
    s = await startSandbox();
    file = s.file;
    const opts = { routing: file.coordinators.map((c) => c.api), cluster: file.cluster, connection: { user: 'postgres', database: 'postgres' }, holdWritesMs: 20_000, readYourWrites: false };
    db = new ReplicatedPool(opts);
    other = new ReplicatedPool(opts);
    await db.ready();
    await other.ready();
    await db.query(SCHEMA);
    for (const r of file.nodes.slice(1)) await waitFor(`schema on ${r.id}`, async () => (await sql(r.port, "SELECT to_regclass('accounts') IS NOT NULL AS ok")).rows[0]?.ok === true);
    app = buildApp(db);
    app2 = buildApp(other);
    await app.ready();
    await app2.ready();
  }, 180_000);

  afterAll(async () => {
    await app?.close();
    await app2?.close();
    await db?.end();
    await other?.end();
    await stopSandbox(s);
  }, 60_000);

  it('creates a user and reads it back although both replicas are behind; another instance reads it with the token', async () => {
    for (const r of file.nodes.slice(1)) await sql(r.port, 'SELECT pg_wal_replay_pause()');
    try {
      const res = await app.inject({ method: 'POST', url: '/users', payload: { name: 'ann', balance: 100 } });
      expect(res.statusCode).toBe(201);
      const user = res.json<{ user: { id: string; name: string; balance: string } | null }>().user;
      expect(user).toMatchObject({ name: 'ann', balance: '100' });
      const token = res.headers['x-switchyard-token'];
      expect(typeof token).toBe('string');
      // another instance, without the token: the replicas do not have it yet
      const stale = await app2.inject({ method: 'GET', url: '/users' });
      expect(stale.json<{ users: Array<{ name: string }> }>().users.map((u) => u.name)).not.toContain('ann');
      // with the token: it reads its own write
      const fresh = await app2.inject({ method: 'GET', url: '/users', headers: { 'x-switchyard-token': token as string } });
      expect(fresh.json<{ users: Array<{ name: string }> }>().users.map((u) => u.name)).toContain('ann');
    } finally {
      for (const r of file.nodes.slice(1)) await sql(r.port, 'SELECT pg_wal_replay_resume()');
    }
  });

  it('transfers funds in a transaction, refuses an overdraft, validates the body', async () => {
    const bob = (await app.inject({ method: 'POST', url: '/users', payload: { name: 'bob', balance: 10 } })).json<{ user: { id: string } }>().user;
    const ann = (await app.inject({ method: 'GET', url: '/users' })).json<{ users: Array<{ id: string; name: string }> }>().users.find((u) => u.name === 'ann')!;
    const ok = await app.inject({ method: 'POST', url: '/transfer', payload: { from: ann.id, to: bob.id, amount: 30 } });
    expect(ok.statusCode).toBe(200);
    expect(ok.json()).toEqual({ balances: { [ann.id]: 70, [bob.id]: 40 } });
    const over = await app.inject({ method: 'POST', url: '/transfer', payload: { from: bob.id, to: ann.id, amount: 1000 } });
    expect(over.statusCode).toBe(409);
    const bad = await app.inject({ method: 'POST', url: '/transfer', payload: { from: bob.id, amount: 'x' } });
    expect(bad.statusCode).toBe(400);
  });

  it('keeps serving through a kill -9 of the primary: reads never fail, writes resume on the new primary', async () => {
    const before = (await routing(file.api, file.cluster)).primary!;
    let running = true;
    const failures: string[] = [];
    let created = 0;
    let listed = 0;
    const writes = (async () => {
      for (let i = 0; running; i++) {
        const r = await app.inject({ method: 'POST', url: '/users', payload: { name: `load-${i}` } });
        if (r.statusCode === 201) created++;
        else failures.push(`POST ${r.statusCode} ${r.body}`);
      }
    })();
    const reads = (async () => {
      while (running) {
        const r = await app.inject({ method: 'GET', url: '/users' });
        if (r.statusCode === 200) listed++;
        else failures.push(`GET ${r.statusCode} ${r.body}`);
      }
    })();
    await waitFor('traffic', async () => created > 5 && listed > 5);
    process.kill(postmasterPid(file.nodes.find((n) => n.id === before.id)!.dataDir), 'SIGKILL');
    const after = await waitFor('a new primary', async () => {
      const t = await routing(file.api, file.cluster).catch(() => null);
      return t?.writable && t.primary && t.primary.id !== before.id ? t.primary : null;
    }, 60_000);
    const c0 = created;
    await waitFor('users created on the new primary', async () => created > c0 + 5, 30_000);
    running = false;
    await Promise.all([writes, reads]);
    console.log(`example app through kill -9 of ${before.id} → ${after.id}: ${created} users created, ${listed} lists, failures: ${failures.length ? failures.join(' | ') : 'none'}`);
    expect(failures.filter((f) => f.startsWith('GET'))).toEqual([]);
    // only a write in flight on the killed primary may fail (one writer: at most one)
    expect(failures.filter((f) => f.startsWith('POST')).length).toBeLessThanOrEqual(1);
  });
});
