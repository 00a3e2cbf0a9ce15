/**
 * Draining at a switchover, on real processes: with switchoverDrainMs the routing table
 * first shows the old primary `draining: true` (not writable) while it is still the
 * primary, so a transaction in flight there commits; then the switchover completes.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RoutingTable } from '../../src/core/routing.js';
import type { SandboxFile } from '../../src/sandbox/deploy.js';
import { routing, sql, startSandbox, stopSandbox, waitFor } from '../support/sandbox.js';

describe('draining at a switchover (real processes)', () => {
  let s: Awaited<ReturnType<typeof startSandbox>> | undefined;
  let file: SandboxFile;

  beforeAll(async () => {
    s = await startSandbox({ replicas: 1, coordinators: 1, settings: { switchoverDrainMs: 5000, cooldownMs: 0 } });
    file = s.file;
    await sql(file.nodes[0]!.port, 'CREATE TABLE d (id int PRIMARY KEY)');
    await waitFor('pg2 healthy', async () => (await routing(file.api, file.cluster)).replicas.find((r) => r.id === 'pg2')?.healthy, 60_000, 100);
  }, 180_000);

  afterAll(async () => {
    await stopSandbox(s);
  }, 60_000);

  it('marks the old primary draining, lets a transaction in flight commit there, then completes', async () => {
    const old = file.nodes[0]!;
    const tx = new pg.Client({ host: old.host, port: old.port, user: 'postgres', database: 'postgres' });
    tx.on('error', () => {});
    await tx.connect();
    try {
      await tx.query('BEGIN');
      await tx.query('INSERT INTO d VALUES (1)');

      const res = await fetch(`${file.api}/v1/clusters/${file.cluster}/switchover`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${file.adminToken}` },
        body: JSON.stringify({ to: 'pg2' }),
      });
      expect(res.status).toBe(202);
      const draining = await waitFor<RoutingTable>('pg1 draining', async () => {
        const t = await routing(file.api, file.cluster);
        return t.primary?.draining ? t : null;
      }, 30_000, 20);
      expect(draining.primary).toMatchObject({ id: 'pg1', draining: true });
      expect(draining.writable).toBe(false);
      const health = await fetch(`${file.api}/v1/clusters/${file.cluster}/nodes/pg1/health?role=primary`);
      expect(health.status).toBe(503);

      // the transaction in flight finishes on the old primary
      await tx.query('INSERT INTO d VALUES (2)');
      await tx.query('COMMIT');
    } finally {
      await tx.end().catch(() => {});
    }

    const after = await waitFor<RoutingTable>('pg2 primary', async () => {
      const t = await routing(file.api, file.cluster);
      return t.primary?.id === 'pg2' && t.writable ? t : null;
    }, 60_000, 50);
    expect(after.primary?.draining).toBeUndefined();
    // the committed rows are on the new primary
    const rows = await sql<{ id: number }>(file.nodes[1]!.port, 'SELECT id FROM d ORDER BY id');
    expect(rows.rows.map((r) => r.id)).toEqual([1, 2]);
  }, 120_000);
});
