/**
 * Self-fencing on real processes: a primary whose agent loses Redis for fenceAfterMs,
 * with no replica connected, refuses writes; when Redis is back and it is still the
 * journal's primary, the leader unfences it. The safety rule broken on purpose:
 * the isolated primary must not keep taking writes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SandboxFile } from '../../src/sandbox/deploy.js';
import { killProcessGroup } from '../../src/sandbox/proc.js';
import { postmasterPid, routing, sql, startSandbox, stopSandbox, waitFor } from '../support/sandbox.js';

describe('self-fencing', () => {
  let s: Awaited<ReturnType<typeof startSandbox>> | undefined;
  let file: SandboxFile;

  beforeAll(async () => {
    s = await startSandbox();
    file = s.file;
  }, 120_000);

  afterAll(async () => {
    try {
      process.kill(file.redisPid, 'SIGCONT');
    } catch {
      // already gone
    }
    await stopSandbox(s);
  }, 60_000);

  it('an isolated primary refuses writes after fenceAfterMs and is unfenced when Redis returns', async () => {
    const primary = file.nodes[0]!;
    await sql(primary.port, 'CREATE TABLE f (id serial PRIMARY KEY)');
    // no replica connected: kill the replicas and their agents (nobody restarts them)
    for (const r of file.nodes.slice(1)) {
      process.kill(r.agentPid, 'SIGKILL');
      await killProcessGroup(postmasterPid(r.dataDir));
    }
    await waitFor('no standby connected', async () => (await sql(primary.port, 'SELECT count(*)::int AS n FROM pg_stat_replication')).rows[0]?.n === 0, 15_000);
    await sql(primary.port, 'INSERT INTO f DEFAULT VALUES');

    // Redis freezes: the agent cannot renew its lease
    const frozenAt = Date.now();
    process.kill(file.redisPid, 'SIGSTOP');
    let refusedAt = 0;
    let lastError = '';
    while (Date.now() - frozenAt < 9_000) {
      try {
        await sql(primary.port, 'INSERT INTO f DEFAULT VALUES');
      } catch (err) {
        lastError = (err as Error).message;
        if (/read-only transaction/.test(lastError)) {
          refusedAt = Date.now();
          break;
        }
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    const fencedAfter = refusedAt - frozenAt;
    console.log(`fenced ${fencedAfter} ms after Redis froze (last error: ${lastError})`);
    expect(refusedAt).toBeGreaterThan(0);
    expect(fencedAfter).toBeGreaterThanOrEqual(4_000); // never before fenceAfterMs
    // a session that asks for read-write explicitly is refused too: the setting is server-wide and sessions were ended
    await expect(sql(primary.port, 'INSERT INTO f DEFAULT VALUES')).rejects.toThrow(/read-only/);

    process.kill(file.redisPid, 'SIGCONT');
    // still the journal's primary: the leader unfences it, no failover
    await waitFor('writable again', async () => {
      const t = await routing(file.api, file.cluster);
      return t.writable && t.primary?.id === primary.id;
    }, 30_000, 100);
    await waitFor('an accepted INSERT', async () => (await sql(primary.port, 'INSERT INTO f DEFAULT VALUES')).rowCount === 1, 10_000, 100);
    const events = (await (await fetch(`${file.api}/v1/clusters/${file.cluster}/events?limit=1000`)).json()) as { events: Array<{ type: string; data: { node?: string } }> };
    const types = events.events.map((e) => e.type);
    expect(types).toContain('unfence.requested');
    expect(types).not.toContain('failover.started');
  }, 120_000);
});
