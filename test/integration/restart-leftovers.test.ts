/**
 * A postmaster killed with SIGKILL leaves its backends behind, still attached to the old
 * shared memory; a new postmaster then refuses to start ("pre-existing shared memory block
 * is still in use") until they are gone. ManagedPostgres.start() kills the previous
 * instance's leftovers first, so a restart in place right after a crash works. (Seen in the
 * failover bench: a primary killed inside the cooldown was never restarted, and writes
 * stopped until the cooldown ran out.) And a lock file naming a postmaster that died
 * unreaped (a zombie, where init does not reap orphans) does not stop the start either.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManagedPostgres } from '../../src/engines/postgres/managed.js';
import { readPostmasterPid } from '../../src/engines/postgres/process.js';
import { createLogger } from '../../src/log.js';
import { isProcessAlive, readStat, trySignal, waitForExit } from '../../src/os/process.js';
import { waitFor } from '../support/sandbox.js';
import { PgCluster } from '../support/pg-cluster.js';

describe('restart in place after a SIGKILL of the postmaster', () => {
  let dir: string;
  let cluster: PgCluster;
  let m: ManagedPostgres | null = null;
  let stuck: number | null = null;

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sy-leftovers-'));
    cluster = await PgCluster.create({ baseDir: path.join(dir, 'pg'), replicas: 0 });
    await cluster.stopNode('pg1');
  }, 180_000);

  afterAll(async () => {
    if (stuck !== null) trySignal(stuck, 'SIGKILL');
    await m?.stop('immediate').catch(() => {});
    await cluster?.destroy();
    fs.rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it('kills the old instance\'s leftover backends, then starts', async () => {
    const node = cluster.node('pg1');
    m = new ManagedPostgres({ nodeId: 'pg1', dataDir: node.dataDir, connection: cluster.connection('pg1'), reclone: false }, createLogger('leftovers-test', 'silent'));
    await m.start();
    // a backend that cannot notice its postmaster's death: stopped while it is connected
    const c = new pg.Client({ ...cluster.connection('pg1'), connectionTimeoutMillis: 5_000 });
    c.on('error', () => {});
    await c.connect();
    stuck = (await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
    trySignal(stuck, 'SIGSTOP');
    const postmaster = readPostmasterPid(node.dataDir)!;
    trySignal(postmaster, 'SIGKILL');
    expect(await waitForExit(postmaster, 5_000)).toBe(true);
    expect(isProcessAlive(stuck)).toBe(true); // the leftover holds the shared memory

    await m.start(); // without the leftover kill: PG_EXITED, "pre-existing shared memory block is still in use"
    expect(isProcessAlive(stuck)).toBe(false);
    const q = new pg.Client({ ...cluster.connection('pg1'), connectionTimeoutMillis: 5_000 });
    await q.connect();
    expect((await q.query<{ one: number }>('SELECT 1 AS one')).rows[0]!.one).toBe(1);
    await q.end();
    await c.end().catch(() => {});
  }, 120_000);

  it('moves aside a lock file naming a dead postmaster nobody reaped (a zombie), then starts', async () => {
    const node = cluster.node('pg1');
    await m!.stop('fast');
    // a zombie: `sleep 0.1`'s parent execs into `sleep 30`, which never waits for it
    const parent = spawn('bash', ['-c', 'sleep 0.1 & echo $!; exec sleep 30'], { stdio: ['ignore', 'pipe', 'ignore'] });
    const zombie = await new Promise<number>((resolve) => parent.stdout.once('data', (d: Buffer) => resolve(Number(d.toString().trim()))));
    try {
      await waitFor('the zombie', async () => readStat(zombie)?.state === 'Z', 15_000);
      const lock = path.join(node.dataDir, 'postmaster.pid');
      fs.writeFileSync(lock, `${zombie}\n${node.dataDir}\n`);
      await m!.start(); // PostgreSQL alone: "lock file postmaster.pid already exists" (kill(pid, 0) succeeds on a zombie)
      expect(readPostmasterPid(node.dataDir)).not.toBe(zombie);
      expect(fs.readdirSync(node.dataDir).some((f) => f.startsWith(`postmaster.pid.dead-${zombie}-`))).toBe(true);
    } finally {
      parent.kill('SIGKILL');
    }
  }, 120_000);
});
