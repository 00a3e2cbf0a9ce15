import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Client } from 'pg';
import { pgBinary } from './binaries.js';
import { HarnessError } from './errors.js';
import { assertPortFree, freePorts } from './ports.js';
import {
  chownToPg,
  cleanEnv,
  ensureDir,
  ensureTraversable,
  isProcessAlive,
  killProcessGroup,
  pgUser,
  waitForExit,
} from './proc.js';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export type StopMode = 'fast' | 'immediate';

/* ------------------------------------------------------------------------ */
/* helpers                                                                  */
/* ------------------------------------------------------------------------ */

/** Throws DATA_DIR_EXISTS when `dir` exists and is not an empty directory. */
function assertDataDirUnused(dir: string): void {
  let entries: string[];
  try {
    entries = fs.readdirSync(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return;
    // exists but is not a readable directory (e.g. a file)
    throw new HarnessError('DATA_DIR_EXISTS', `data directory ${dir} already exists: remove it or choose another --dir`);
  }
  if (entries.length > 0) {
    throw new HarnessError('DATA_DIR_EXISTS', `data directory ${dir} already exists: remove it or choose another --dir`);
  }
}

/** Prepares an (absent or empty) data directory: parents traversable, dir owned by postgres, 0700. */
function prepareDataDir(dataDir: string): void {
  assertDataDirUnused(dataDir);
  const parent = path.dirname(dataDir);
  fs.mkdirSync(parent, { recursive: true });
  ensureTraversable(parent);
  ensureDir(dataDir, { owner: 'postgres', mode: 0o700 });
}

function spawnIdentity(): { uid?: number; gid?: number } {
  const u = pgUser();
  return u ? { uid: u.uid, gid: u.gid } : {};
}

function lastLines(text: string, n: number): string {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .slice(-n)
    .join(' | ');
}

/**
 * Runs a PostgreSQL tool from findPgBin() (as the postgres user when root, stdin
 * closed, libpq PG* env vars removed) and collects its output. Rejects with
 * HarnessError(errorCode) on non-zero exit (message ends with the last stderr
 * lines) or after timeoutMs (the tool is SIGKILLed).
 */
export function runPgTool(
  name: string,
  args: string[],
  opts: { cwd: string; timeoutMs: number; errorCode: string },
): Promise<{ stdout: string; stderr: string }> {
  const file = pgBinary(name);
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      cwd: opts.cwd,
      env: cleanEnv({ LC_ALL: 'C' }),
      stdio: ['ignore', 'pipe', 'pipe'],
      ...spawnIdentity(),
    });
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new HarnessError(opts.errorCode, `${name} did not finish within ${opts.timeoutMs} ms`));
    }, opts.timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(new HarnessError(opts.errorCode, `${name} could not be started: ${err.message}`));
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve({ stdout, stderr });
      else
        reject(
          new HarnessError(
            opts.errorCode,
            `${name} failed (${signal ?? `exit code ${code}`}): ${lastLines(stderr || stdout, 3) || 'no output'}`,
          ),
        );
    });
  });
}

/** Quotes a string for postgresql.conf. */
export function confString(s: string): string {
  return `'${s.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
}

/** Quotes a value for a libpq conninfo string if needed. */
export function conninfoValue(v: string): string {
  return /^[A-Za-z0-9_.:/-]+$/.test(v) ? v : `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

function defaultLogFile(dataDir: string): string {
  return path.resolve(dataDir) + '.log';
}

/* ------------------------------------------------------------------------ */
/* initdb / basebackup                                                      */
/* ------------------------------------------------------------------------ */

export interface InitPrimaryOptions {
  dataDir: string;
  port: number;
  /** superuser name, default 'postgres' */
  user?: string;
}

/**
 * initdb a new primary in `dataDir` (which must not exist or be empty) and
 * configure it for streaming replication on 127.0.0.1:port, TCP only,
 * trust authentication from loopback.
 */
export async function initPrimary(opts: InitPrimaryOptions): Promise<void> {
  const dataDir = path.resolve(opts.dataDir);
  const user = opts.user ?? 'postgres';
  prepareDataDir(dataDir);
  await runPgTool('initdb', ['-D', dataDir, '-U', user, '--auth=trust', '-E', 'UTF8', '--locale=C'], {
    cwd: path.dirname(dataDir),
    timeoutMs: 120_000,
    errorCode: 'INITDB_FAILED',
  });

  const conf = [
    '',
    '# --- switchyard sandbox ---',
    "listen_addresses = '127.0.0.1'",
    `port = ${opts.port}`,
    "unix_socket_directories = ''",
    'wal_level = replica',
    'max_wal_senders = 10',
    'max_replication_slots = 10',
    'hot_standby = on',
    'hot_standby_feedback = on',
    'wal_log_hints = on',
    "wal_keep_size = '256MB'",
    "shared_buffers = '32MB'",
    'max_connections = 50',
    'logging_collector = off',
    'log_min_messages = warning',
    "wal_receiver_status_interval = '1s'",
    "wal_sender_timeout = '5s'",
    "wal_receiver_timeout = '5s'",
    '',
  ].join('\n');
  fs.appendFileSync(path.join(dataDir, 'postgresql.conf'), conf);

  const hba = [
    '# switchyard sandbox: trust on loopback only (TCP; no unix socket is configured)',
    '# TYPE  DATABASE     USER  ADDRESS        METHOD',
    'local   all          all                  trust',
    'host    all          all   127.0.0.1/32   trust',
    'host    all          all   ::1/128        trust',
    'host    replication  all   127.0.0.1/32   trust',
    'host    replication  all   ::1/128        trust',
    '',
  ].join('\n');
  fs.writeFileSync(path.join(dataDir, 'pg_hba.conf'), hba);
  chownToPg(path.join(dataDir, 'pg_hba.conf'));
}

export interface CloneReplicaOptions {
  primaryHost: string;
  primaryPort: number;
  dataDir: string;
  port: number;
  /** application_name the standby reports to the primary (pg_stat_replication) */
  appName: string;
  /** replication user, default 'postgres' */
  user?: string;
}

/**
 * pg_basebackup a streaming standby of the primary into `dataDir` (which
 * must not exist or be empty), with standby.signal, its own port and a
 * primary_conninfo carrying application_name=appName.
 */
export async function cloneReplica(opts: CloneReplicaOptions): Promise<void> {
  const dataDir = path.resolve(opts.dataDir);
  const user = opts.user ?? 'postgres';
  prepareDataDir(dataDir);
  await runPgTool(
    'pg_basebackup',
    ['-h', opts.primaryHost, '-p', String(opts.primaryPort), '-U', user, '-w', '-D', dataDir, '-R', '-X', 'stream', '-c', 'fast'],
    { cwd: path.dirname(dataDir), timeoutMs: 300_000, errorCode: 'BASEBACKUP_FAILED' },
  );

  // The copied postgresql.conf carries the primary's port: later lines win.
  fs.appendFileSync(
    path.join(dataDir, 'postgresql.conf'),
    ['', '# --- switchyard sandbox replica ---', "listen_addresses = '127.0.0.1'", `port = ${opts.port}`, ''].join('\n'),
  );

  // Replace the primary_conninfo that -R wrote with one naming us.
  const autoConf = path.join(dataDir, 'postgresql.auto.conf');
  const existing = fs.existsSync(autoConf) ? fs.readFileSync(autoConf, 'utf8') : '';
  const kept = existing.split('\n').filter((l) => !/^\s*primary_conninfo\s*=/.test(l) && l !== '');
  const conninfo = [
    `host=${conninfoValue(opts.primaryHost)}`,
    `port=${opts.primaryPort}`,
    `user=${conninfoValue(user)}`,
    `application_name=${conninfoValue(opts.appName)}`,
  ].join(' ');
  kept.push(`primary_conninfo = ${confString(conninfo)}`);
  fs.writeFileSync(autoConf, kept.join('\n') + '\n');
  chownToPg(autoConf);
  // -R creates standby.signal; make sure it is there in any case.
  const signal = path.join(dataDir, 'standby.signal');
  if (!fs.existsSync(signal)) {
    fs.writeFileSync(signal, '');
    chownToPg(signal);
  }
}

/* ------------------------------------------------------------------------ */
/* start / ready / stop                                                     */
/* ------------------------------------------------------------------------ */

export interface SpawnPostgresOptions {
  dataDir: string;
  port: number;
  /** where stdout/stderr go (appended); default `<dataDir>.log` */
  logFile?: string;
  env?: NodeJS.ProcessEnv;
}

/**
 * Starts `postgres -D dataDir -p port` as a direct child (as the postgres
 * user when root). It gets its own process group (detached: true, but NOT
 * unref'd), so `process.kill(-child.pid, ...)` reaches its backends too.
 * The returned child's pid is the postmaster pid.
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
  /** user to connect as, default 'postgres' */
  user?: string;
  /** fail fast if this child exits while we wait */
  child?: ChildProcess;
  /** log file to point at in errors */
  logFile?: string;
  /**
   * Data directory the server must be serving: guards against reaching some
   * other PostgreSQL that already listens on the port.
   */
  dataDir?: string;
}

function logTail(logFile: string | undefined): string {
  if (!logFile) return '';
  try {
    const text = fs.readFileSync(logFile, 'utf8');
    const lines = text.split('\n').filter((l) => /FATAL|PANIC|ERROR/.test(l));
    return lines.length ? ` (last error: ${lines[lines.length - 1]!.trim()})` : '';
  } catch {
    return '';
  }
}

function childExited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

/**
 * Polls 127.0.0.1:port with `SELECT 1` until PostgreSQL answers. Throws
 * HarnessError PG_START_TIMEOUT (or PG_EXITED when `opts.child` dies).
 */
export async function waitReady(
  port: number,
  timeoutMs = 30_000,
  host = '127.0.0.1',
  opts: WaitReadyOptions = {},
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const where = opts.logFile ? `look at its log file ${opts.logFile}` : 'look at its log file';
  let lastError = '';
  for (;;) {
    if (opts.child && (childExited(opts.child) || (opts.child.pid !== undefined && !isProcessAlive(opts.child.pid)))) {
      const how = opts.child.signalCode ?? `exit code ${opts.child.exitCode ?? '?'}`;
      throw new HarnessError(
        'PG_EXITED',
        `PostgreSQL on port ${port} exited during start-up (${how}): ${where}${logTail(opts.logFile)}`,
      );
    }
    const client = new Client({
      host,
      port,
      user: opts.user ?? 'postgres',
      database: 'postgres',
      connectionTimeoutMillis: 1_000,
    });
    client.on('error', () => {});
    try {
      await client.connect();
      if (opts.dataDir) {
        const r = await client.query<{ data_directory: string }>('SHOW data_directory');
        const served = r.rows[0]?.data_directory ?? '';
        if (path.resolve(served) !== path.resolve(opts.dataDir)) {
          throw new HarnessError(
            'PORT_IN_USE',
            `port ${port} is served by another PostgreSQL (data directory ${served}): choose another port or stop what listens there`,
          );
        }
      } else {
        await client.query('SELECT 1');
      }
      return;
    } catch (err) {
      if (err instanceof HarnessError) throw err;
      lastError = (err as Error).message;
    } finally {
      await client.end().catch(() => {});
    }
    if (Date.now() >= deadline) {
      throw new HarnessError(
        'PG_START_TIMEOUT',
        `PostgreSQL on ${host}:${port} was not ready within ${timeoutMs} ms (${lastError}): ${where}`,
      );
    }
    await sleep(100);
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

function trySignal(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

/**
 * Stops a postmaster: 'fast' = SIGINT, 'immediate' = SIGQUIT; SIGKILL after
 * `timeoutMs`. Resolves once the postmaster is gone and no process of its
 * process group (backends left behind by a killed postmaster) is alive.
 */
export async function stopPostgres(
  target: ChildProcess | number,
  mode: StopMode = 'fast',
  timeoutMs = 20_000,
): Promise<void> {
  const child = typeof target === 'number' ? undefined : target;
  const pid = typeof target === 'number' ? target : target.pid;
  if (pid === undefined) return; // never started
  if (isProcessAlive(pid) && !(child && childExited(child))) {
    trySignal(pid, mode === 'fast' ? 'SIGINT' : 'SIGQUIT');
    let gone = await waitForExit(pid, timeoutMs);
    if (!gone) {
      trySignal(pid, 'SIGKILL');
      gone = await waitForExit(pid, 5_000);
      if (!gone) throw new HarnessError('PROCESS_STUCK', `postmaster ${pid} did not exit even after SIGKILL`);
    }
  }
  // Let Node reap our child so exitCode/signalCode are set.
  if (child) await waitChildExit(child, 2_000);
  // Backends of a postmaster that died abruptly linger in its process group.
  await killProcessGroup(pid);
}

/* ------------------------------------------------------------------------ */
/* PgCluster                                                                */
/* ------------------------------------------------------------------------ */

export interface PgNode {
  id: string;
  role: 'primary' | 'replica';
  host: '127.0.0.1';
  port: number;
  dataDir: string;
  logFile: string;
  /** current postmaster; replaced by startNode() */
  child: ChildProcess;
}

export interface PgClusterOptions {
  baseDir: string;
  replicas: number;
  /** node ids, default pg1, pg2, ... (first is the primary) */
  names?: string[];
  /** ports, default: free ports chosen by the kernel */
  ports?: number[];
  /** per-node readiness timeout, default 60 s */
  readyTimeoutMs?: number;
}

/**
 * A primary plus N streaming replicas under `baseDir` (`<baseDir>/<id>` data
 * dirs, `<baseDir>/<id>.log` logs), all children of this process.
 */
export class PgCluster {
  readonly baseDir: string;
  readonly nodes: PgNode[] = [];
  private readonly readyTimeoutMs: number;

  private constructor(baseDir: string, readyTimeoutMs: number) {
    this.baseDir = baseDir;
    this.readyTimeoutMs = readyTimeoutMs;
  }

  static async create(opts: PgClusterOptions): Promise<PgCluster> {
    const total = opts.replicas + 1;
    const names = opts.names ?? Array.from({ length: total }, (_, i) => `pg${i + 1}`);
    if (names.length !== total || new Set(names).size !== total) {
      throw new HarnessError('INVALID_OPTIONS', `need ${total} distinct node names, got ${names.join(', ')}`);
    }
    if (opts.ports && opts.ports.length !== total) {
      throw new HarnessError('INVALID_OPTIONS', `need ${total} ports, got ${opts.ports.length}`);
    }
    const baseDir = path.resolve(opts.baseDir);
    fs.mkdirSync(baseDir, { recursive: true });
    ensureTraversable(baseDir);
    const ports = opts.ports ?? (await freePorts(total));
    for (let i = 0; i < total; i++) await assertPortFree(ports[i]!, names[i]!);

    const cluster = new PgCluster(baseDir, opts.readyTimeoutMs ?? 60_000);
    try {
      const [primaryName, ...replicaNames] = names as [string, ...string[]];
      const primaryDir = path.join(baseDir, primaryName);
      await initPrimary({ dataDir: primaryDir, port: ports[0]! });
      await cluster.launch(primaryName, 'primary', primaryDir, ports[0]!);
      const primary = cluster.nodes[0]!;

      for (let i = 0; i < replicaNames.length; i++) {
        const id = replicaNames[i]!;
        const dataDir = path.join(baseDir, id);
        await cloneReplica({
          primaryHost: primary.host,
          primaryPort: primary.port,
          dataDir,
          port: ports[i + 1]!,
          appName: id,
        });
        await cluster.launch(id, 'replica', dataDir, ports[i + 1]!);
      }
      await cluster.waitStreaming(replicaNames, cluster.readyTimeoutMs);
      return cluster;
    } catch (err) {
      await cluster.stop().catch(() => {});
      throw err;
    }
  }

  private async launch(id: string, role: PgNode['role'], dataDir: string, port: number): Promise<void> {
    const logFile = defaultLogFile(dataDir);
    const child = spawnPostgres({ dataDir, port, logFile });
    this.nodes.push({ id, role, host: '127.0.0.1', port, dataDir, logFile, child });
    await waitReady(port, this.readyTimeoutMs, '127.0.0.1', { child, logFile, dataDir });
  }

  get primary(): PgNode {
    return this.nodes.find((n) => n.role === 'primary') ?? this.nodes[0]!;
  }

  get replicas(): PgNode[] {
    return this.nodes.filter((n) => n !== this.primary);
  }

  node(id: string): PgNode {
    const n = this.nodes.find((x) => x.id === id);
    if (!n) throw new HarnessError('UNKNOWN_NODE', `no node ${id} in this cluster`);
    return n;
  }

  /** Postmaster pids of all nodes (alive or not). */
  pids(): number[] {
    return this.nodes.map((n) => n.child.pid).filter((p): p is number => p !== undefined);
  }

  /** Waits until the primary's pg_stat_replication shows all `appNames` streaming. */
  async waitStreaming(appNames: string[], timeoutMs = 30_000): Promise<void> {
    if (appNames.length === 0) return;
    const primary = this.primary;
    const deadline = Date.now() + timeoutMs;
    let seen = '';
    for (;;) {
      const client = new Client({ host: primary.host, port: primary.port, user: 'postgres', database: 'postgres', connectionTimeoutMillis: 2_000 });
      client.on('error', () => {});
      try {
        await client.connect();
        const r = await client.query<{ application_name: string; state: string }>(
          'SELECT application_name, state FROM pg_stat_replication',
        );
        const streaming = new Set(r.rows.filter((x) => x.state === 'streaming').map((x) => x.application_name));
        seen = r.rows.map((x) => `${x.application_name}:${x.state}`).join(', ');
        if (appNames.every((a) => streaming.has(a))) return;
      } catch (err) {
        seen = (err as Error).message;
      } finally {
        await client.end().catch(() => {});
      }
      if (Date.now() >= deadline) {
        throw new HarnessError(
          'REPLICATION_TIMEOUT',
          `replicas ${appNames.join(', ')} were not streaming from ${primary.id} within ${timeoutMs} ms (saw: ${seen || 'none'}): look at the log files in ${this.baseDir}`,
        );
      }
      await sleep(100);
    }
  }

  /** Stops one node (its data directory is kept). */
  async stopNode(id: string, mode: StopMode = 'fast', timeoutMs = 20_000): Promise<void> {
    await stopPostgres(this.node(id).child, mode, timeoutMs);
  }

  /** (Re)starts a stopped node on its port and waits until it accepts connections. */
  async startNode(id: string): Promise<ChildProcess> {
    const n = this.node(id);
    if (n.child.pid !== undefined && isProcessAlive(n.child.pid)) return n.child;
    await stopPostgres(n.child, 'immediate'); // reap leftovers of a killed postmaster
    n.child = spawnPostgres({ dataDir: n.dataDir, port: n.port, logFile: n.logFile });
    await waitReady(n.port, this.readyTimeoutMs, n.host, { child: n.child, logFile: n.logFile, dataDir: n.dataDir });
    return n.child;
  }

  /** Stops every node (immediate shutdown); removes nothing. */
  async stop(mode: StopMode = 'immediate'): Promise<void> {
    const results = await Promise.allSettled(this.nodes.map((n) => stopPostgres(n.child, mode)));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  /** Stops every node and removes baseDir. */
  async destroy(): Promise<void> {
    await this.stop();
    fs.rmSync(this.baseDir, { recursive: true, force: true });
  }
}
