/**
 * A hung primary never takes a write once another node is promoted (issue 7 §1), on real
 * processes. Each round: a client opens a connection to the primary; every process of the
 * primary instance is frozen (SIGSTOP on the postmaster and all its children) while its
 * agent keeps running; the client's INSERT is queued on that connection; once the new
 * primary accepts a write, the old instance is woken at once (SIGCONT). The queued INSERT
 * must fail, or its row must be on the new primary. Five rounds in a row, zero lost rows.
 *
 * Fence before promote makes this hold by construction: the failover deposes the old
 * primary, its agent kills the frozen instance (it cannot be made read-only), and only
 * its report lets the leader promote.
 */
import fs from 'node:fs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SandboxFile } from '../../src/sandbox/deploy.js';
import { postmasterPid, routing, sql, startSandbox, stopSandbox, waitFor } from '../support/sandbox.js';

const ROUNDS = 5;

function childrenOf(ppid: number): number[] {
  const out: number[] = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[1]) === ppid) out.push(Number(d));
    } catch {
      // gone
    }
  }
  return out;
}

function signalAll(pids: number[], sig: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      process.kill(pid, sig);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
    }
  }
}

describe('hung primary with its agent running (fence before promote)', () => {
  let s: Awaited<ReturnType<typeof startSandbox>> | undefined;
  let file: SandboxFile;
  /** every process this test froze: woken in afterAll too, should a round fail while they are stopped */
  const everFrozen: number[] = [];

  beforeAll(async () => {
    // short failAfterMs and cooldown: five failovers in a row
    // failAfterMs must exceed the agents' fenceAfterMs (4000): the config cross-check refuses a coordinator otherwise
    s = await startSandbox({ settings: { failAfterMs: 4_500, cooldownMs: 500 } });
    file = s.file;
  }, 120_000);

  afterAll(async () => {
    // a stopped process does not act on SIGTERM: wake it so the sandbox's shutdown is prompt
    signalAll(everFrozen, 'SIGCONT');
    await stopSandbox(s);
  }, 60_000);

  it(`${ROUNDS} rounds: a write queued on the frozen primary fails or is on the new primary`, async () => {
    const first = await routing(file.api, file.cluster);
    await sql(first.primary!.port, 'CREATE TABLE IF NOT EXISTS hung (id serial PRIMARY KEY, v text UNIQUE)');
    const outcomes: string[] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      const healthy = await waitFor(
        `round ${round}: a writable primary and every replica healthy`,
        async () => {
          const t = await routing(file.api, file.cluster).catch(() => null);
          return t && t.writable && t.primary && t.replicas.length === 2 && t.replicas.every((r) => r.healthy) ? t : null;
        },
        120_000,
        100,
      );
      const old = file.nodes.find((n) => n.id === healthy.primary!.id)!;
      const client = new pg.Client({ host: '127.0.0.1', port: old.port, user: file.connection.user, database: file.connection.database });
      client.on('error', () => {});
      await client.connect();
      await client.query("SET application_name = 'hung-test'");

      // freeze every process of the instance; its agent runs on
      const pm = postmasterPid(old.dataDir);
      const frozen = [pm, ...childrenOf(pm)];
      signalAll([pm], 'SIGSTOP');
      const children = childrenOf(pm);
      everFrozen.push(pm, ...children);
      signalAll(children, 'SIGSTOP');
      const value = `queued-${round}`;
      const queued = client.query('INSERT INTO hung (v) VALUES ($1)', [value]).then(
        () => 'acknowledged' as const,
        (err: Error) => `failed: ${err.message}`,
      );

      // the new primary accepts a write
      const newPrimary = await waitFor(
        `round ${round}: a write accepted on a new primary`,
        async () => {
          const t = await routing(file.api, file.cluster).catch(() => null);
          if (!t?.writable || !t.primary || t.primary.id === old.id) return null;
          await sql(t.primary.port, 'INSERT INTO hung (v) VALUES ($1)', [`marker-${round}`]);
          return t.primary;
        },
        60_000,
        20,
      );
      // wake the old instance at once (what is left of it: its agent may have killed it)
      signalAll([...frozen, ...childrenOf(pm)], 'SIGCONT');

      const outcome = await Promise.race([queued, new Promise<string>((r) => setTimeout(() => r('still pending after 20 s'), 20_000))]);
      await client.end().catch(() => {});
      const onNew = await sql<{ n: number }>(newPrimary.port, 'SELECT count(*)::int AS n FROM hung WHERE v = $1', [value]);
      outcomes.push(`round ${round}: ${old.id} → ${newPrimary.id}: ${outcome}; row on the new primary: ${onNew.rows[0]!.n}`);
      if (outcome === 'acknowledged') expect(onNew.rows[0]!.n, `round ${round}: acknowledged INSERT lost`).toBe(1);
      else expect(outcome).toMatch(/^failed/);
    }
    console.log(outcomes.join('\n'));
    // the old primaries rejoin as replicas: none ever came back as a second writer
    const end = await waitFor(
      'every node healthy again',
      async () => {
        const t = await routing(file.api, file.cluster).catch(() => null);
        return t && t.writable && t.replicas.length === 2 && t.replicas.every((r) => r.healthy) ? t : null;
      },
      120_000,
      100,
    );
    for (const n of file.nodes) {
      if (n.id === end.primary!.id) continue;
      const r = await sql<{ rec: boolean }>(n.port, 'SELECT pg_is_in_recovery() AS rec');
      expect(r.rows[0]!.rec, `${n.id} is a replica`).toBe(true);
    }
  }, 900_000);
});
