/**
 * A node leaving the routing table, on real PostgreSQL (a primary and one streaming
 * replica, tables from a stand-in routing API): nothing new goes there, but a request
 * already queued for one of its connections is served (not left hanging until
 * connectionTimeoutMillis on an ended pg.Pool), and its pool closes once quiet, or at
 * drainTimeoutMs anyway, or at end().
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ReplicatedPool, type ReplicatedPoolOptions } from '../../src/client/index.js';
import type { RoutingTable } from '../../src/core/routing.js';
import { PgCluster } from '../support/pg-cluster.js';
import { sql, waitFor } from '../support/sandbox.js';
import { fakeRouting, type FakeRouting } from '../support/fake-routing.js';

describe('a node retired from the table on real PostgreSQL', () => {
  let dir: string;
  let cluster: PgCluster | undefined;
  let fake: FakeRouting;
  let table: RoutingTable;
  let gen = 1;
  const pools: ReplicatedPool[] = [];
  const portToId = new Map<number, string>();

  const open = async (app: string, over: Partial<ReplicatedPoolOptions>): Promise<ReplicatedPool> => {
    // one connection per node makes a second request queue behind the first
    const db = new ReplicatedPool({ routing: fake.url, cluster: 'c1', connection: { user: 'postgres', database: 'postgres', application_name: app }, max: 1, refreshMs: 0, staleAfterMs: 60_000, readYourWrites: false, ...over });
    pools.push(db);
    await db.ready();
    return db;
  };
  /** the connections `app` holds on the replica, as the server sees them */
  const onReplica = async (app: string): Promise<number> => (await sql<{ n: number }>(cluster!.replicas[0]!.port, 'SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1', [app])).rows[0]!.n;
  const publish = (over: Partial<RoutingTable>): void => fake.publish({ ...table, ...over, generation: ++gen });
  /** a read-only session pinned to the replica, in a transaction */
  const leaseReplica = async (db: ReplicatedPool): Promise<import('pg').PoolClient> => {
    const lease = await db.connect({ readOnly: true });
    await lease.query('BEGIN READ ONLY');
    expect(portToId.get((await lease.query<{ port: number }>('SELECT inet_server_port() AS port')).rows[0]!.port)).toBe('pg2');
    return lease;
  };

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sy-retire-'));
    cluster = await PgCluster.create({ baseDir: path.join(dir, 'pg'), replicas: 1 });
    const [p, r] = [cluster.primary, cluster.replicas[0]!];
    portToId.set(p.port, 'pg1').set(r.port, 'pg2');
    table = {
      cluster: 'c1', engine: 'postgres', generation: gen, epoch: 1, writable: true, updatedAt: new Date().toISOString(),
      primary: { id: 'pg1', host: '127.0.0.1', port: p.port },
      replicas: [{ id: 'pg2', host: '127.0.0.1', port: r.port, healthy: true, lagBytes: 0, lagMs: 0, replayLsn: null, sync: false }],
    };
    fake = await fakeRouting(table);
  }, 120_000);

  afterAll(async () => {
    for (const db of pools) await db.end();
    await fake?.close();
    await cluster?.destroy();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it('a read queued on a node that then leaves is served there; the pool closes once quiet, long before drainTimeoutMs', async () => {
    publish({});
    const app = 'sy-retire-quiet';
    const db = await open(app, { drainTimeoutMs: 60_000 });
    const errors: string[] = [];
    db.on('query-error', (e) => errors.push(e.error.message));
    const lease = await leaseReplica(db);
    // the read picks pg2 (the only replica) and waits for its one connection
    const read = db.query<{ port: number }>('SELECT inet_server_port() AS port');
    read.catch(() => {});
    await waitFor('the read queued on pg2', async () => db.waitingCount === 1, 10_000, 10);
    publish({ replicas: [] });
    await waitFor('pg2 gone from the pool', async () => db.stats().nodes.pg2 === undefined, 10_000, 10);
    // new reads go to the primary at once
    expect(portToId.get((await db.query<{ port: number }>('SELECT inet_server_port() AS port')).rows[0]!.port)).toBe('pg1');
    // the session on pg2 still finishes its transaction
    await lease.query('COMMIT');
    lease.release();
    // the queued read gets pg2's connection (an ended pg.Pool would have left it to time out, then retried it elsewhere)
    expect(portToId.get((await read).rows[0]!.port)).toBe('pg2');
    expect(errors).toEqual([]);
    // quiet now: the pool closes without waiting for drainTimeoutMs (60 s)
    await waitFor('no connection of the retired pool left on pg2', async () => (await onReplica(app)) === 0, 30_000, 100);
  });

  it('a write queued on a primary that then leaves never runs there: it waits for the primary the next table names', async () => {
    publish({});
    await sql(cluster!.primary.port, 'CREATE TABLE IF NOT EXISTS retire_w (id int)');
    const app = 'sy-retire-write';
    const db = await open(app, { drainTimeoutMs: 60_000, holdWritesMs: 60_000 });
    const onPrimary = async (): Promise<number> => (await sql<{ n: number }>(cluster!.primary.port, 'SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1', [app])).rows[0]!.n;
    const rows = async (): Promise<number> => (await sql<{ n: number }>(cluster!.primary.port, 'SELECT count(*)::int AS n FROM retire_w')).rows[0]!.n;
    // a transaction holds pg1's one connection: the write queues behind it
    const tx = await db.connect();
    await tx.query('BEGIN');
    const write = db.query('INSERT INTO retire_w VALUES (1)');
    write.catch(() => {});
    await waitFor('the write queued on pg1', async () => db.waitingCount === 1, 10_000, 10);
    // pg1 leaves the table (a failover in flight): the write was sent to it, but must not run there now
    publish({ primary: null, writable: false });
    await waitFor('pg1 gone from the pool', async () => db.stats().nodes.pg1 === undefined, 10_000, 10);
    await tx.query('COMMIT');
    tx.release();
    // the old pool hands the write its connection, the write gives it back unused; then the pool is quiet and closes
    await waitFor('the retired pool closed', async () => (await onPrimary()) === 0, 30_000, 100);
    expect(await rows()).toBe(0);
    // the next primary (here pg1 again, a fresh pool) takes it
    publish({});
    await write;
    expect(await rows()).toBe(1);
  });

  it('a lease held past drainTimeoutMs is cut off and the pool closes anyway; end() closes a pool still retiring', async () => {
    publish({});
    const bounded = 'sy-retire-bound';
    const db = await open(bounded, { drainTimeoutMs: 1500 });
    const lease = await leaseReplica(db);
    publish({ replicas: [] });
    await waitFor('pg2 gone from the pool', async () => db.stats().nodes.pg2 === undefined, 10_000, 10);
    await waitFor('the retired pool closed at the bound', async () => (await onReplica(bounded)) === 0, 30_000, 100);
    await expect(lease.query('SELECT 1')).rejects.toThrow();
    lease.release();

    publish({});
    const closing = 'sy-retire-end';
    const db2 = await open(closing, { drainTimeoutMs: 600_000 });
    const lease2 = await leaseReplica(db2);
    publish({ replicas: [] });
    await waitFor('pg2 gone from the pool', async () => db2.stats().nodes.pg2 === undefined, 10_000, 10);
    expect(await onReplica(closing)).toBe(1);
    await db2.end();
    await waitFor('end() closed the retiring pool', async () => (await onReplica(closing)) === 0, 10_000, 100);
    lease2.release();
  });
});
