/**
 * Planned and operator-driven operations on real processes: switchover under a steady
 * writer (zero acknowledged rows lost), pause (no automatic failover, observations
 * still flow), resume, manual failover, and their admin API errors.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SandboxFile } from '../../src/sandbox/deploy.js';
import { steadyWriter } from '../../bench/writer.js';
import { postmasterPid, routing, sql, startSandbox, stopSandbox, waitFor } from '../support/sandbox.js';

describe('operations on real processes', () => {
  let s: Awaited<ReturnType<typeof startSandbox>> | undefined;
  let file: SandboxFile;
  const admin = (route: string, body: unknown = {}, token?: string): Promise<Response> =>
    fetch(`${file.api}/v1/clusters/${file.cluster}/${route}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token ?? file.adminToken}` },
      body: JSON.stringify(body),
    });

  beforeAll(async () => {
    s = await startSandbox({ settings: { cooldownMs: 0 } });
    file = s.file;
    await sql(file.nodes[0]!.port, 'CREATE TABLE w (id int PRIMARY KEY)');
  }, 120_000);

  afterAll(async () => {
    await stopSandbox(s);
  }, 60_000);

  it('switches over under a steady writer with no acknowledged row lost', async () => {
    const before = await routing(file.api, file.cluster);
    const writer = steadyWriter(file.api, file.cluster, 'w');
    await waitFor('some writes', async () => writer.acked.length > 20);
    const res = await admin('switchover', { to: 'pg3' });
    expect(res.status).toBe(202);
    const { operationId } = (await res.json()) as { operationId: string };
    expect(operationId).toMatch(/^so-/);
    await waitFor('pg3 primary', async () => (await routing(file.api, file.cluster)).primary?.id === 'pg3', 30_000, 20);
    const ackedAtSwitch = writer.acked.length;
    await waitFor('writes on the new primary', async () => writer.acked.length > ackedAtSwitch + 20);
    await writer.stop();
    const rows = await sql<{ id: number }>(file.nodes[2]!.port, 'SELECT id FROM w');
    const have = new Set(rows.rows.map((r) => r.id));
    const lost = writer.acked.filter((id) => !have.has(id));
    console.log(`switchover: ${writer.acked.length} rows acknowledged, ${lost.length} lost, longest write gap ${writer.maxGapMs()} ms`);
    expect(lost).toEqual([]);
    // the old primary follows the new one
    await waitFor('pg1 a healthy replica', async () => (await routing(file.api, file.cluster)).replicas.find((r) => r.id === before.primary!.id)?.healthy, 30_000, 100);
    const op = (await (await fetch(`${file.api}/v1/clusters/${file.cluster}/operations/${operationId}`)).json()) as { operation: { kind: string; outcome: string; lostBytes: number }; entries: Array<{ type: string }> };
    expect(op.operation).toMatchObject({ kind: 'switchover', outcome: 'success', lostBytes: 0 });
    expect(op.entries.map((e) => e.type)).toEqual(expect.arrayContaining(['failover.started', 'demotion.requested', 'demotion.succeeded', 'promotion.requested', 'promotion.succeeded', 'failover.completed']));
  }, 120_000);

  it('refuses admin requests without the token, and bad bodies with 400', async () => {
    expect((await admin('pause', {}, 'wrong-token-wrong-token')).status).toBe(401);
    const bad = await admin('failover', { to: { node: 'pg2' } });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { message: string }).message).toMatch(/body\/to must be string/);
    expect((await admin('failover', {})).status).toBe(400);
    expect((await admin('switchover', { to: 'nope' })).status).toBe(400);
    const healthy = await admin('failover', { to: 'pg2' });
    expect(healthy.status).toBe(409);
    expect(((await healthy.json()) as { message: string }).message).toMatch(/is healthy: use switchover/);
  });

  it('pause: no automatic failover, observations still flow; manual failover works; resume', async () => {
    const r = await admin('pause');
    expect(r.status).toBe(200);
    expect(await r.json()).toMatchObject({ paused: true });
    const t = await routing(file.api, file.cluster);
    const primary = file.nodes.find((n) => n.id === t.primary!.id)!;
    process.kill(postmasterPid(primary.dataDir), 'SIGKILL');
    // the routing table shows the primary gone (observations flow) …
    await waitFor('not writable', async () => !(await routing(file.api, file.cluster)).writable, 30_000, 20);
    // … and nothing is promoted while paused
    await new Promise((r) => setTimeout(r, 2000));
    const paused = await routing(file.api, file.cluster);
    expect(paused.writable).toBe(false);
    expect(paused.primary).toBeNull();
    const clusters = (await (await fetch(`${file.api}/v1/clusters`)).json()) as Array<{ paused: boolean }>;
    expect(clusters[0]!.paused).toBe(true);
    // the operator fails over by hand, even while paused
    const target = t.replicas.find((x) => x.healthy)!.id;
    const mf = await admin('failover', { to: target });
    expect(mf.status).toBe(202);
    await waitFor('the chosen replica primary', async () => {
      const x = await routing(file.api, file.cluster);
      return x.writable && x.primary?.id === target;
    }, 30_000, 20);
    expect((await admin('resume')).status).toBe(200);
    // after resume the old primary is rejoined as a replica
    await waitFor('old primary back as replica', async () => (await routing(file.api, file.cluster)).replicas.find((x) => x.id === primary.id)?.healthy, 60_000, 100);
    const events = (await (await fetch(`${file.api}/v1/clusters/${file.cluster}/events?type=cluster.paused`)).json()) as { events: unknown[] };
    expect(events.events.length).toBeGreaterThan(0);
    expect(fs.existsSync(path.join(primary.dataDir, 'standby.signal'))).toBe(true);
  }, 120_000);
});
