/**
 * ORMs on top of ReplicatedPool, unchanged, against a real cluster: Drizzle
 * (drizzle-orm/node-postgres) and Kysely (PostgresDialect). Their selects go to
 * replicas, their inserts and transactions to the primary, and a Drizzle select with a
 * writing CTE to the primary.
 */
import { eq, sql as dsql } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/node-postgres';
import { integer, pgTable, serial, text } from 'drizzle-orm/pg-core';
import { Kysely, PostgresDialect, type Generated } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ReplicatedPool, type QueryExecutedEvent } from '../../src/client/index.js';
import type { SandboxFile } from '../../src/sandbox/deploy.js';
import { sql, startSandbox, stopSandbox, waitFor } from '../support/sandbox.js';

const accounts = pgTable('accounts', { id: serial('id').primaryKey(), owner: text('owner').notNull(), balance: integer('balance').notNull() });

interface KDB {
  accounts: { id: Generated<number>; owner: string; balance: number };
}

describe('Drizzle and Kysely on ReplicatedPool against real PostgreSQL', () => {
  let s: Awaited<ReturnType<typeof startSandbox>> | undefined;
  let file: SandboxFile;
  let pool: ReplicatedPool;
  let events: QueryExecutedEvent[] = [];
  /** the roles that served what `fn` ran */
  const roles = async (fn: () => Promise<unknown>): Promise<string[]> => {
    events = [];
    await fn();
    return events.map((e) => e.role);
  };

  beforeAll(async () => {
    s = await startSandbox({ coordinators: 1 });
    file = s.file;
    await sql(file.nodes[0]!.port, 'CREATE TABLE accounts (id serial PRIMARY KEY, owner text NOT NULL, balance int NOT NULL)');
    await sql(file.nodes[0]!.port, "INSERT INTO accounts (owner, balance) VALUES ('ann', 100), ('bob', 50)");
    for (const r of file.nodes.slice(1)) await waitFor(`accounts on ${r.id}`, async () => (await sql(r.port, 'SELECT count(*)::int AS n FROM accounts')).rows[0]?.n === 2);
    // read-your-writes off: these tests look at where each statement goes, not at what it sees
    pool = new ReplicatedPool({ routing: file.api, cluster: file.cluster, connection: { user: 'postgres', database: 'postgres' }, readYourWrites: false });
    pool.on('query-executed', (e) => events.push(e));
    await pool.ready();
  }, 180_000);

  afterAll(async () => {
    await pool?.end();
    await stopSandbox(s);
  }, 60_000);

  it('Drizzle: selects to replicas, inserts and transactions to the primary, a select with a writing CTE to the primary', async () => {
    const db = drizzle({ client: pool });
    let rows: Array<{ owner: string }> = [];
    expect(await roles(async () => (rows = await db.select({ owner: accounts.owner }).from(accounts).where(eq(accounts.owner, 'ann'))))).toEqual(['replica']);
    expect(rows).toEqual([{ owner: 'ann' }]);
    expect(await roles(() => db.insert(accounts).values({ owner: 'cy', balance: 10 }))).toEqual(['primary']);
    const txRoles = await roles(() =>
      db.transaction(async (tx) => {
        await tx.update(accounts).set({ balance: dsql`${accounts.balance} - 10` }).where(eq(accounts.owner, 'ann'));
        await tx.select().from(accounts).where(eq(accounts.owner, 'bob'));
        await tx.update(accounts).set({ balance: dsql`${accounts.balance} + 10` }).where(eq(accounts.owner, 'bob'));
      }),
    );
    expect(txRoles.length).toBeGreaterThanOrEqual(4);
    expect(new Set(txRoles)).toEqual(new Set(['primary']));
    // Drizzle #4185: a SELECT whose CTE deletes must not go to a replica
    const gone = db.$with('gone').as(db.delete(accounts).where(eq(accounts.owner, 'cy')).returning({ owner: accounts.owner }));
    let deleted: Array<{ owner: string }> = [];
    expect(await roles(async () => (deleted = await db.with(gone).select().from(gone)))).toEqual(['primary']);
    expect(deleted).toEqual([{ owner: 'cy' }]);
  });

  it('Kysely: selects to replicas, inserts and transactions to the primary', async () => {
    const db = new Kysely<KDB>({ dialect: new PostgresDialect({ pool }) });
    let rows: Array<{ owner: string }> = [];
    expect(await roles(async () => (rows = await db.selectFrom('accounts').select('owner').where('owner', '=', 'bob').execute()))).toEqual(['replica']);
    expect(rows).toEqual([{ owner: 'bob' }]);
    expect(await roles(() => db.insertInto('accounts').values({ owner: 'dee', balance: 5 }).execute())).toEqual(['primary']);
    const txRoles = await roles(() =>
      db.transaction().execute(async (tx) => {
        await tx.selectFrom('accounts').selectAll().where('owner', '=', 'dee').execute();
        await tx.updateTable('accounts').set({ balance: 6 }).where('owner', '=', 'dee').execute();
      }),
    );
    expect(txRoles.length).toBeGreaterThanOrEqual(4);
    expect(new Set(txRoles)).toEqual(new Set(['primary']));
    // the transaction's select saw its own snapshot on the primary, and the row is there
    const final = await sql<{ balance: number }>(file.nodes[0]!.port, "SELECT balance FROM accounts WHERE owner = 'dee'");
    expect(final.rows[0]!.balance).toBe(6);
    await db.destroy();
  });
});
