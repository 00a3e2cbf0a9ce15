/**
 * Synchronous mode on real processes: repeated SIGKILLs of the primary under a steady
 * writer lose no acknowledged row. The rule broken on purpose is the primary's death
 * right after acknowledging commits.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { steadyWriter } from '../../bench/writer.js';
import type { SandboxFile } from '../../src/sandbox/deploy.js';
import { postmasterPid, routing, sql, startSandbox, stopSandbox, waitFor } from '../support/sandbox.js';

const KILLS = Number(process.env.SY_SYNC_KILLS ?? 3);

for (const mode of ['first', 'quorum'] as const) {
describe(`synchronous mode (${mode})`, () => {
  let s: Awaited<ReturnType<typeof startSandbox>> | undefined;
  let file: SandboxFile;

  beforeAll(async () => {
    s = await startSandbox({ sync: true, settings: { cooldownMs: 0, ...(mode === 'quorum' ? { synchronous: 'quorum' } : {}) } });
    file = s.file;
    await sql(file.nodes[0]!.port, 'CREATE TABLE w (id int PRIMARY KEY)');
  }, 120_000);

  afterAll(async () => {
    await stopSandbox(s);
  }, 60_000);

  it(`loses no acknowledged row over ${KILLS} SIGKILLs of the primary`, async () => {
    const writer = steadyWriter(file.api, file.cluster, 'w');
    let lastPrimary = '';
    try {
      for (let i = 0; i < KILLS; i++) {
        // a synchronous standby established, every node healthy, writes flowing
        const t = await waitFor('a synchronous standby and all nodes healthy', async () => {
          const x = await routing(file.api, file.cluster);
          return x.writable && x.replicas.every((r) => r.healthy) && (mode === 'quorum' ? x.replicas.every((r) => r.sync) : x.replicas.some((r) => r.sync)) ? x : null;
        }, 60_000, 50);
        const acked = writer.acked.length;
        await waitFor('writes', async () => writer.acked.length > acked + 20, 30_000, 10);
        const victim = file.nodes.find((n) => n.id === t.primary!.id)!;
        process.kill(postmasterPid(victim.dataDir), 'SIGKILL');
        const next = await waitFor('a new writable primary', async () => {
          const x = await routing(file.api, file.cluster);
          return x.writable && x.primary && x.primary.id !== victim.id ? x : null;
        }, 30_000, 20);
        lastPrimary = next.primary!.id;
      }
      const final = writer.acked.length;
      await waitFor('writes on the last primary', async () => writer.acked.length > final + 20, 30_000, 10);
    } finally {
      await writer.stop();
    }
    // every failover promoted a journaled synchronous standby (the routing table's sync
    // flags come from the primary's last report and may lag the journal: read the journal)
    const events = (await (await fetch(`${file.api}/v1/clusters/${file.cluster}/events?limit=1000`)).json()) as { events: Array<{ id: string; type: string; data: { names?: string[]; to?: string } }> };
    let journaled: string[] = [];
    let failovers = 0;
    for (const e of events.events) {
      if (e.type === 'sync.changed') journaled = e.data.names ?? [];
      if (e.type === 'failover.started') {
        failovers++;
        expect(journaled, `failover to ${e.data.to}`).toContain(e.data.to);
      }
    }
    // at least one per kill (every one of them checked above); a failover that fails on a
    // slow host (a promotion timeout) is followed by another: not a second writer, no loss
    expect(failovers).toBeGreaterThanOrEqual(KILLS);
    const node = file.nodes.find((n) => n.id === lastPrimary)!;
    const rows = await sql<{ id: number }>(node.port, 'SELECT id FROM w');
    const have = new Set(rows.rows.map((r) => r.id));
    const lost = writer.acked.filter((id) => !have.has(id));
    console.log(`synchronous mode (${mode}): ${KILLS} kills, ${writer.acked.length} rows acknowledged, ${lost.length} lost`);
    expect(lost).toEqual([]);
  }, 300_000);
});
}
