/**
 * A primary whose host vanishes, on real PostgreSQL behind a TCP relay the test controls
 * (the relay stands for the host: once it "vanishes", new connects are refused and the
 * connections already open look alive until something is sent on them, then are reset,
 * which is what a client sees of a killed server before each socket's FIN arrives).
 *
 * The pool's idle connections to that node are then all dead. One write in flight may
 * fail (it may have run); the next must not take another dead idle connection (a reset
 * after sending proves nothing, so it could not be retried): it opens a new one, is
 * refused (proof that it never ran), and is held for the next primary. A primary that
 * comes back under the same name (restarted in place) gets the held write without
 * waiting out holdWritesMs.
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ReplicatedPool } from '../../src/client/index.js';
import type { RoutingTable } from '../../src/core/routing.js';
import { PgCluster } from '../support/pg-cluster.js';
import { sql, waitFor } from '../support/sandbox.js';
import { fakeRouting, type FakeRouting } from '../support/fake-routing.js';

/** A TCP relay to `target` on a fixed port: vanish() and revive() stand for the host going and coming back. */
class Relay {
  private server: net.Server | null = null;
  private readonly pairs = new Set<{ client: net.Socket; upstream: net.Socket }>();
  private vanished = false;
  constructor(readonly port: number, private readonly target: number) {}

  async listen(): Promise<void> {
    this.vanished = false;
    const server = net.createServer((client) => {
      const upstream = net.connect(this.target, '127.0.0.1');
      const pair = { client, upstream };
      this.pairs.add(pair);
      client.on('data', (d) => {
        // a vanished host answers what is sent to it with a reset
        if (this.vanished) client.resetAndDestroy();
        else upstream.write(d);
      });
      upstream.on('data', (d) => {
        if (!this.vanished) client.write(d);
      });
      const drop = (): void => {
        this.pairs.delete(pair);
        client.destroy();
        upstream.destroy();
      };
      client.on('error', drop).on('close', drop);
      upstream.on('error', drop).on('close', () => {
        // the server ending a session is passed on, unless the host has "vanished" (nothing reaches the client)
        if (!this.vanished) drop();
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.server = server;
  }

  /** New connects are refused; open connections go quiet and are reset on their next send. */
  async vanish(): Promise<void> {
    this.vanished = true;
    const s = this.server;
    this.server = null;
    // stop listening now (close()'s callback would wait for the open connections to end)
    s?.close();
    await new Promise((r) => setImmediate(r));
  }

  async close(): Promise<void> {
    await this.vanish();
    for (const p of this.pairs) {
      p.client.destroy();
      p.upstream.destroy();
    }
  }
}

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

describe('a primary whose host vanishes, on real PostgreSQL', () => {
  let dir: string;
  let cluster: PgCluster | undefined;
  let fake: FakeRouting;
  let gen = 1;
  const relays: Relay[] = [];
  const pools: ReplicatedPool[] = [];

  const tableFor = (primary: { id: string; port: number }): RoutingTable => ({
    cluster: 'c1', engine: 'postgres', generation: ++gen, epoch: 1, writable: true, updatedAt: new Date().toISOString(),
    primary: { id: primary.id, host: '127.0.0.1', port: primary.port },
    replicas: [],
  });

  const relay = async (): Promise<Relay> => {
    const r = new Relay(await freePort(), cluster!.primary.port);
    await r.listen();
    relays.push(r);
    return r;
  };

  /** a pool holding `n` open connections to its primary (n writes at once, each 100 ms long) */
  const poolWithIdleConnections = async (app: string, n: number): Promise<ReplicatedPool> => {
    const db = new ReplicatedPool({ routing: fake.url, cluster: 'c1', connection: { user: 'postgres', database: 'postgres', application_name: app }, max: n, refreshMs: 0, staleAfterMs: 60_000, holdWritesMs: 20_000, readYourWrites: false });
    pools.push(db);
    await db.ready();
    await Promise.all(Array.from({ length: n }, () => db.query('INSERT INTO ledger (v) SELECT 1 FROM pg_sleep(0.1)')));
    const open = await sql<{ n: number }>(cluster!.primary.port, 'SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1', [app]);
    expect(open.rows[0]!.n).toBe(n);
    return db;
  };

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sy-dead-conn-'));
    cluster = await PgCluster.create({ baseDir: path.join(dir, 'pg'), replicas: 0 });
    await sql(cluster.primary.port, 'CREATE TABLE ledger (id bigserial PRIMARY KEY, v int)');
    fake = await fakeRouting({ ...tableFor({ id: 'pg1', port: cluster.primary.port }) });
  }, 120_000);

  afterAll(async () => {
    for (const db of pools) await db.end();
    for (const r of relays) await r.close();
    await fake?.close();
    await cluster?.destroy();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it('after one write fails on a dead connection, the next is not sent on another dead one: it is held and goes to the next primary', async () => {
    const before = await relay();
    fake.publish(tableFor({ id: 'pgA', port: before.port }));
    const db = await poolWithIdleConnections('sy-dead-conn-1', 4);
    const events: string[] = [];
    db.on('query-error', (e) => events.push(`${e.nodeId} ${e.willRetry ? 'retried' : 'failed'}: ${e.error.message}`));
    await before.vanish();
    // the first write takes an idle connection: it is reset after sending (it may have run)
    const first = await db.query('INSERT INTO ledger (v) VALUES (1)').then(() => null, (e: Error) => e);
    expect(first, 'the first write after the host vanished').toBeInstanceOf(Error);
    // the next one: three idle connections are still open and look alive
    const second = db.query<{ id: string }>('INSERT INTO ledger (v) VALUES (2) RETURNING id');
    second.catch(() => {});
    await waitFor('the second write refused and held', async () => events.some((e) => e.includes('retried')), 10_000, 10);
    const after = await relay();
    fake.publish(tableFor({ id: 'pgB', port: after.port }));
    const r = await second;
    expect(r.rows).toHaveLength(1);
    expect(events.filter((e) => e.includes('failed')), events.join(' | ')).toHaveLength(1);
    const rows = await sql<{ v: number }>(cluster!.primary.port, 'SELECT v FROM ledger WHERE id = $1', [r.rows[0]!.id]);
    expect(rows.rows[0]!.v).toBe(2);
  });

  it('a primary back under the same name (restarted in place) gets the held write without waiting out holdWritesMs', async () => {
    const same = await relay();
    fake.publish(tableFor({ id: 'pgC', port: same.port }));
    const db = await poolWithIdleConnections('sy-dead-conn-2', 2);
    const events: string[] = [];
    db.on('query-error', (e) => events.push(`${e.willRetry ? 'retried' : 'failed'}: ${e.error.message}`));
    await same.vanish();
    await db.query('INSERT INTO ledger (v) VALUES (3)').catch(() => {});
    const startedAt = Date.now();
    const held = db.query('INSERT INTO ledger (v) VALUES (4)');
    held.catch(() => {});
    await waitFor('the write refused and held', async () => events.some((e) => e.startsWith('retried')), 10_000, 10);
    await same.listen();
    await held;
    // holdWritesMs is 20 s: the write went out once the node answered again (backoff ≤ 1 s), not at the hold's end
    expect(Date.now() - startedAt).toBeLessThan(10_000);
  });
});
