/**
 * A PostgreSQL node's process: start it as our child, wait until it answers on the
 * configured connection, stop it, and find a postmaster already running on a data
 * directory (adopted only once /proc confirms it is that directory's postmaster).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import pg from 'pg';
import { SwitchyardError } from '../../errors.js';
import { cleanEnv, isProcessAlive, killProcessGroup, processCmdline, processCwd, processEnviron, processesIn, trySignal, waitForExit } from '../../os/process.js';
import type { Connection, StopMode } from '../types.js';
import { pgBinary } from './binaries.js';
import { pgClientConfig } from './connection.js';
import { chownToPg, spawnIdentity } from './owner.js';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Where a node's server log goes by default: `<dataDir>.log`, beside the data directory. */
export function defaultLogFile(dataDir: string): string {
  return path.resolve(dataDir) + '.log';
}

export interface SpawnPostgresOptions {
  dataDir: string;
  port: number;
  /** where stdout/stderr go (appended); default `<dataDir>.log` */
  logFile?: string;
  env?: NodeJS.ProcessEnv;
}

/**
 * Starts `postgres -D dataDir -p port` as a direct child (as the postgres user when
 * root), in its own process group (detached, but not unref'd): `kill(-pid)` reaches its
 * backends too. The child's pid is the postmaster's.
 */
export function spawnPostgres(opts: SpawnPostgresOptions): ChildProcess {
  const dataDir = path.resolve(opts.dataDir);
  const logFile = opts.logFile ?? defaultLogFile(dataDir);
  fs.mkdirSync(path.dirname(logFile), { recursive: true });
  const fd = fs.openSync(logFile, 'a', 0o644);
  let child: ChildProcess;
  try {
    try {
      chownToPg(logFile);
    } catch {
      // not fatal: the server writes through the inherited descriptor
    }
    child = spawn(pgBinary('postgres'), ['-D', dataDir, '-p', String(opts.port)], {
      cwd: dataDir,
      env: cleanEnv(opts.env),
      stdio: ['ignore', fd, fd],
      detached: true,
      ...spawnIdentity(),
    });
  } finally {
    fs.closeSync(fd);
  }
  child.on('error', (err) => {
    try {
      fs.appendFileSync(logFile, `switchyard: failed to start postgres: ${err.message}\n`);
    } catch {
      // ignore
    }
  });
  return child;
}

export interface WaitReadyOptions {
  timeoutMs?: number;
  /** fail fast if this child exits while we wait */
  child?: ChildProcess | undefined;
  /** log file to point at in errors */
  logFile?: string | undefined;
  /** data directory the server must be serving: guards against another PostgreSQL on the port */
  dataDir?: string | undefined;
}

function logTail(logFile: string | undefined): string {
  if (!logFile) return '';
  try {
    const lines = fs
      .readFileSync(logFile, 'utf8')
      .split('\n')
      .filter((l) => /FATAL|PANIC|ERROR/.test(l));
    return lines.length ? ` (last error: ${lines[lines.length - 1]!.trim()})` : '';
  } catch {
    return '';
  }
}

function childExited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

/**
 * Polls the server over the configured connection until it answers. Throws
 * PG_START_TIMEOUT, PG_EXITED when `child` dies, PORT_IN_USE when another data
 * directory answers.
 */
export async function waitReady(conn: Connection, opts: WaitReadyOptions = {}): Promise<void> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const deadline = Date.now() + timeoutMs;
  const where = opts.logFile ? `look at its log file ${opts.logFile}` : 'look at its log file';
  let lastError = '';
  for (;;) {
    if (opts.child && (childExited(opts.child) || (opts.child.pid !== undefined && !isProcessAlive(opts.child.pid)))) {
      const how = opts.child.signalCode ?? `exit code ${opts.child.exitCode ?? '?'}`;
      throw new SwitchyardError('PG_EXITED', `PostgreSQL on port ${conn.port} exited during start-up (${how}): ${where}${logTail(opts.logFile)}`);
    }
    const client = new pg.Client({ ...pgClientConfig(conn), connectionTimeoutMillis: 1_000, query_timeout: 2_000, application_name: 'switchyard-agent' });
    client.on('error', () => {});
    try {
      await client.connect();
      if (opts.dataDir) {
        const r = await client.query<{ data_directory: string }>('SHOW data_directory');
        const served = r.rows[0]?.data_directory ?? '';
        if (path.resolve(served) !== path.resolve(opts.dataDir)) {
          throw new SwitchyardError('PORT_IN_USE', `port ${conn.port} is served by another PostgreSQL (data directory ${served}): choose another port or stop what listens there`);
        }
      } else {
        await client.query('SELECT 1');
      }
      return;
    } catch (err) {
      if (err instanceof SwitchyardError) throw err;
      lastError = (err as Error).message;
    } finally {
      await client.end().catch(() => {});
    }
    if (Date.now() >= deadline) {
      throw new SwitchyardError('PG_START_TIMEOUT', `PostgreSQL on ${conn.host}:${conn.port} was not ready within ${timeoutMs} ms (${lastError}): ${where}`);
    }
    await sleep(20); // a restart in place or a demoted primary waits on this: look often
  }
}

function waitChildExit(child: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (childExited(child)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const onExit = (): void => {
      clearTimeout(timer);
      resolve(true);
    };
    const timer = setTimeout(() => {
      child.off('exit', onExit);
      resolve(false);
    }, timeoutMs);
    child.once('exit', onExit);
  });
}

/**
 * Stops a postmaster: 'fast' = SIGINT, 'immediate' = SIGQUIT; SIGKILL after `timeoutMs`.
 * Resolves once it is gone and no process of its group (backends a killed postmaster
 * left behind) is alive.
 */
export async function stopPostgres(target: ChildProcess | number, mode: StopMode = 'fast', timeoutMs = 20_000): Promise<void> {
  const child = typeof target === 'number' ? undefined : target;
  const pid = typeof target === 'number' ? target : target.pid;
  if (pid === undefined) return; // never started
  if (isProcessAlive(pid) && !(child && childExited(child))) {
    trySignal(pid, mode === 'fast' ? 'SIGINT' : 'SIGQUIT');
    let gone = await waitForExit(pid, timeoutMs);
    if (!gone) {
      trySignal(pid, 'SIGKILL');
      gone = await waitForExit(pid, 5_000);
      if (!gone) throw new SwitchyardError('PROCESS_STUCK', `postmaster ${pid} did not exit even after SIGKILL`);
    }
  }
  // Let Node reap our child so exitCode/signalCode are set.
  if (child) await waitChildExit(child, 2_000);
  await killProcessGroup(pid);
}

/** The pid on the first line of `<dataDir>/postmaster.pid`, or null. */
export function readPostmasterPid(dataDir: string): number | null {
  try {
    const pid = Number(fs.readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

/**
 * An instance's leftovers, cleared before the data directory is used again (start,
 * single-user recovery before pg_rewind):
 *
 * - Backends of a postmaster killed with SIGKILL live on (their parent is gone, so nothing
 *   tells them at once) and keep the old shared memory attached: a new postmaster then
 *   refuses to start ("pre-existing shared memory block is still in use"). Every PostgreSQL
 *   process works in its data directory, so these are the processes whose working
 *   directory it is and whose command is postgres: SIGKILL them and wait until they are gone.
 * - A lock file (postmaster.pid) naming a dead postmaster that nobody reaped (a zombie:
 *   its parent died, and an init that does not reap orphans keeps it): PostgreSQL's own
 *   stale-lock check (kill(pid, 0)) says the zombie exists and refuses to start. A zombie
 *   runs nothing and holds nothing, so the file is moved aside (never deleted).
 *
 * Returns how many processes were killed.
 */
export async function killLeftovers(dataDir: string, timeoutMs = 3_000): Promise<number> {
  const left = processesIn(dataDir).filter((pid) => {
    const exe = programName(processCmdline(pid));
    return exe === 'postgres' || exe === 'postmaster' || exe.startsWith('postgres:'); // a backend's title: "postgres: 15/main: checkpointer"
  });
  for (const pid of left) trySignal(pid, 'SIGKILL');
  for (const pid of left) await waitForExit(pid, timeoutMs);
  const lockPid = readPostmasterPid(dataDir);
  if (lockPid !== null && !isProcessAlive(lockPid)) {
    try {
      fs.renameSync(path.join(dataDir, 'postmaster.pid'), path.join(dataDir, `postmaster.pid.dead-${lockPid}-${Date.now()}`));
    } catch {
      // gone meanwhile
    }
  }
  return left.length;
}

/** argv[0]'s program name (a backend's title, "postgres: …", counts as its first word). */
function programName(argv: string[] | null): string {
  return path.basename(argv?.[0]?.split(' ')[0] ?? '');
}

function sameDir(a: string, b: string): boolean {
  try {
    return fs.realpathSync(a) === fs.realpathSync(b);
  } catch {
    return path.resolve(a) === path.resolve(b);
  }
}

/**
 * Is `pid` the postmaster of `dataDir`? Its command must be `postgres` (or `postmaster`)
 * and its data directory this one: `-D <dir>` on its command line, or PGDATA in its
 * environment, or its working directory (a postmaster chdirs to its data directory).
 * A stale postmaster.pid after a reboot may name any process: that one is never touched.
 */
export function isPostmasterOf(pid: number, dataDir: string): boolean {
  if (!isProcessAlive(pid)) return false;
  const argv = processCmdline(pid);
  if (!argv || argv.length === 0) return false;
  const exe = programName(argv);
  if (exe !== 'postgres' && exe !== 'postmaster') return false;
  const d = argv.indexOf('-D');
  const dashD = d >= 0 ? argv[d + 1] : argv.find((a) => a.startsWith('-D') && a.length > 2)?.slice(2);
  const cwd = processCwd(pid);
  if (dashD !== undefined) return sameDir(path.isAbsolute(dashD) || !cwd ? dashD : path.join(cwd, dashD), dataDir);
  const pgdata = processEnviron(pid)?.get('PGDATA');
  if (pgdata !== undefined) return sameDir(pgdata, dataDir);
  return cwd !== null && sameDir(cwd, dataDir);
}
