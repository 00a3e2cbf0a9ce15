/**
 * The engine's hold on a managed PostgreSQL node (src/engines/postgres/managed.ts) on
 * real processes: a stale postmaster.pid naming an unrelated process is never adopted
 * nor signalled; a former primary whose pg_rewind fails is re-cloned only when
 * rejoin.reclone is on, its old data kept aside and its own listen_addresses kept;
 * otherwise its data directory is left untouched.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SwitchyardError } from '../../src/errors.js';
import { PostgresActions } from '../../src/engines/postgres/actions.js';
import { ManagedPostgres } from '../../src/engines/postgres/managed.js';
import { isPostmasterOf, spawnPostgres, stopPostgres } from '../../src/engines/postgres/process.js';
import type { Connection } from '../../src/engines/types.js';
import { createLogger } from '../../src/log.js';
import { isProcessAlive } from '../../src/os/process.js';
import { PgCluster } from '../support/pg-cluster.js';
import { waitFor } from '../support/sandbox.js';

const log = createLogger('managed-test', 'silent');

async function query<T extends pg.QueryResultRow>(conn: Connection, text: string): Promise<T[]> {
  const c = new pg.Client({ ...conn, connectionTimeoutMillis: 5_000 });
  c.on('error', () => {});
  await c.connect();
  try {
    return (await c.query<T>(text)).rows;
  } finally {
    await c.end().catch(() => {});
  }
}

function listing(dir: string): string[] {
  return fs.readdirSync(dir).sort();
}

describe('managed PostgreSQL node', () => {
  let dir: string;
  let cluster: PgCluster;
  const strangers: ChildProcess[] = [];
  const managed: ManagedPostgres[] = [];

  function manage(id: string, reclone: boolean): ManagedPostgres {
    const n = cluster.node(id);
    const m = new ManagedPostgres({ nodeId: id, dataDir: n.dataDir, connection: cluster.connection(id), reclone }, log);
    managed.push(m);
    return m;
  }

  function stranger(argv0?: string): ChildProcess {
    const child = argv0 ? spawn('bash', ['-c', `exec -a ${argv0} sleep 300`], { stdio: 'ignore' }) : spawn('sleep', ['300'], { stdio: 'ignore' });
    strangers.push(child);
    return child;
  }

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sy-managed-'));
    cluster = await PgCluster.create({ baseDir: path.join(dir, 'pg'), replicas: 1 });
  }, 180_000);

  afterAll(async () => {
    for (const m of managed) await m.stop('immediate').catch(() => {});
    for (const s of strangers) s.kill('SIGKILL');
    await cluster?.destroy();
    fs.rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it('adopts the running postmaster of its data directory, and never a stale pid naming another process', async () => {
    const pg2 = cluster.node('pg2');
    // the live postmaster: verified through /proc and adopted
    const live = manage('pg2', false);
    expect(live.findRunning()).toBe(pg2.child.pid);
    expect(isPostmasterOf(pg2.child.pid!, cluster.node('pg1').dataDir)).toBe(false);

    // pg2 stops; after a "reboot" its postmaster.pid names an unrelated process
    await cluster.stopNode('pg2');
    const sleeper = stranger();
    const fake = stranger('postgres'); // even one calling itself postgres, elsewhere
    await waitFor('strangers running', async () => isProcessAlive(sleeper.pid!) && isProcessAlive(fake.pid!), 15_000);
    for (const s of [sleeper, fake]) {
      expect(isPostmasterOf(s.pid!, pg2.dataDir)).toBe(false);
      fs.writeFileSync(path.join(pg2.dataDir, 'postmaster.pid'), `${s.pid}\n${pg2.dataDir}\n`);
      const m = manage('pg2', false);
      expect(m.findRunning()).toBeNull();
      expect(() => m.adopt(s.pid!)).toThrow(SwitchyardError);
      expect(m.pid).toBeNull();
      // the lock file was moved aside, not deleted, and the stranger was left alone
      expect(fs.existsSync(path.join(pg2.dataDir, 'postmaster.pid'))).toBe(false);
      expect(listing(pg2.dataDir).some((f) => f.startsWith('postmaster.pid.stale-'))).toBe(true);
    }
    await new Promise((r) => setTimeout(r, 200));
    expect(isProcessAlive(sleeper.pid!)).toBe(true);
    expect(isProcessAlive(fake.pid!)).toBe(true);

    // the server starts on its data directory as usual
    const m = manage('pg2', false);
    await m.start();
    expect((await query<{ rec: boolean }>(cluster.connection('pg2'), 'SELECT pg_is_in_recovery() AS rec'))[0]!.rec).toBe(true);
    expect(manage('pg2', false).findRunning()).toBe(m.pid);
  }, 120_000);

  it('a failed rewind leaves the former primary untouched unless rejoin.reclone is on; then its data is kept aside and its listen_addresses kept', async () => {
    const pg1 = cluster.node('pg1');
    const pg2Conn = cluster.connection('pg2');
    const up = { id: 'pg2', host: '127.0.0.1', port: cluster.node('pg2').port };
    // failover: pg2 is the primary now
    expect((await new PostgresActions(pg2Conn, 'pg2').promote()).message).toBe('promoted');

    // pg1, the former primary: its own listen address, and wal_log_hints off so pg_rewind refuses it
    await cluster.stopNode('pg1');
    fs.appendFileSync(path.join(pg1.dataDir, 'postgresql.conf'), "\nlisten_addresses = '*'\nwal_log_hints = off\n");
    const once = spawnPostgres({ dataDir: pg1.dataDir, port: pg1.port });
    await waitFor('pg1 up once with wal_log_hints off', async () => query(cluster.connection('pg1'), 'SELECT 1').then(() => true, () => false), 30_000);
    await stopPostgres(once, 'fast');
    const before = listing(pg1.dataDir);

    // re-cloning off (the default): RECLONE_DISABLED, nothing renamed or removed
    const keep = manage('pg1', false);
    const err = await keep.makeStandbyOf(up).then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(SwitchyardError);
    expect((err as SwitchyardError).code).toBe('RECLONE_DISABLED');
    expect((err as Error).message).toMatch(/pg_rewind failed/);
    expect(listing(pg1.dataDir)).toEqual(before);
    expect(listing(path.dirname(pg1.dataDir)).filter((f) => f.includes('before-reclone'))).toEqual([]);
    // the same when the new primary does not answer the CHECKPOINT
    const err2 = await keep.makeStandbyOf({ ...up, port: 1 }).then(() => null, (e: unknown) => e);
    expect((err2 as SwitchyardError).code).toBe('RECLONE_DISABLED');
    expect((err2 as Error).message).toMatch(/CHECKPOINT on the new primary/);
    expect(listing(pg1.dataDir)).toEqual(before);

    // re-cloning on: the old directory is kept aside (never removed), the clone keeps '*'
    const reclone = manage('pg1', true);
    expect(await reclone.makeStandbyOf(up)).toBe('recloned');
    expect(reclone.keptAside).not.toBeNull();
    expect(fs.existsSync(path.join(reclone.keptAside!, 'PG_VERSION'))).toBe(true);
    expect(listing(reclone.keptAside!)).toEqual(before);
    await reclone.start();
    const c1 = cluster.connection('pg1');
    expect((await query<{ v: string }>(c1, "SELECT current_setting('listen_addresses') AS v"))[0]!.v).toBe('*');
    expect((await query<{ rec: boolean }>(c1, 'SELECT pg_is_in_recovery() AS rec'))[0]!.rec).toBe(true);
    await waitFor(
      'pg1 streaming from pg2',
      async () => (await query<{ n: number }>(pg2Conn, "SELECT count(*)::int AS n FROM pg_stat_replication WHERE application_name = 'pg1' AND state = 'streaming'"))[0]!.n === 1,
      30_000,
    );
  }, 240_000);
});
