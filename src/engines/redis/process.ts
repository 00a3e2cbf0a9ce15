/**
 * Process control for a managed Redis node: redis-server runs as a direct child of
 * the agent (never --daemonize), so a death is the child's exit, seen at once, and a
 * hang is state T in /proc/<pid>/stat. Redis writes its own pid file.
 *
 * Start-up role is part of the command line (`--replicaof host port`), so a restarted
 * node is a replica from its first instant: there is no window in which it is an empty
 * master (see restart.ts for the rule that picks the role).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { RedisConn } from './conn.js';
import { isProcessAlive, isProcessStopped } from '../../os/process.js';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export class RedisProcessError extends Error {
  constructor(
    readonly code: 'REDIS_BINARY_NOT_FOUND' | 'REDIS_EXITED' | 'REDIS_START_TIMEOUT' | 'REDIS_ALREADY_RUNNING' | 'REDIS_EMPTY_RESTART',
    message: string,
  ) {
    super(message);
  }
}

let cachedBinary: string | null = null;

/** redis-server: `$SWITCHYARD_REDIS_SERVER`, else the first on PATH. Found once. */
export function findRedisServerBinary(env: NodeJS.ProcessEnv = process.env): string {
  const explicit = env.SWITCHYARD_REDIS_SERVER;
  if (explicit) {
    if (!fs.existsSync(explicit)) throw new RedisProcessError('REDIS_BINARY_NOT_FOUND', `SWITCHYARD_REDIS_SERVER=${explicit} does not exist`);
    return explicit;
  }
  if (cachedBinary) return cachedBinary;
  for (const dir of (env.PATH ?? '/usr/local/bin:/usr/bin:/bin').split(':')) {
    const p = path.join(dir, 'redis-server');
    try {
      fs.accessSync(p, fs.constants.X_OK);
      cachedBinary = p;
      return p;
    } catch {
      // next
    }
  }
  throw new RedisProcessError('REDIS_BINARY_NOT_FOUND', 'redis-server not found on PATH: install Redis 6.2+ or set SWITCHYARD_REDIS_SERVER');
}

/** The major.minor of a redis-server binary (`redis-server --version`). */
export function redisServerVersion(binary = findRedisServerBinary()): [number, number] {
  const out = execFileSync(binary, ['--version'], { encoding: 'utf8' });
  const m = /v=(\d+)\.(\d+)/.exec(out);
  return m ? [Number(m[1]), Number(m[2])] : [0, 0];
}

export interface RedisNodeSpec {
  /** address redis-server binds and is reached at */
  host: string;
  port: number;
  /** the node's working directory (--dir); its pid file and log live here */
  dir: string;
  /** requirepass and masterauth */
  password?: string | undefined;
  /** appendonly yes: the data survives a restart (the node may then restart "with its data intact") */
  appendonly?: boolean;
  /** appendfsync (default everysec) */
  appendfsync?: 'always' | 'everysec' | 'no' | undefined;
  /** the RDB save schedule (default "": none) */
  save?: string | undefined;
  /** the address the node's master reports it at (`replica-announce-ip`): the one the cluster knows it by, so its replicas map to node ids */
  announceHost?: string | undefined;
  /** more `--name value` arguments */
  extraArgs?: string[];
}

export type RedisProcessState = 'running' | 'dead' | 'stopped' | 'starting';

/** The command line for a node (exported for tests and for the docs). */
export function redisArgs(spec: RedisNodeSpec, replicaOf: { host: string; port: number } | null): string[] {
  const args = [
    '--port', String(spec.port),
    '--bind', spec.host,
    '--dir', path.resolve(spec.dir),
    '--pidfile', pidFilePath(spec),
    '--daemonize', 'no',
    '--protected-mode', 'no',
    '--save', spec.save ?? '',
    '--appendonly', spec.appendonly ? 'yes' : 'no',
    ...(spec.appendonly ? ['--appendfsync', spec.appendfsync ?? 'everysec'] : []),
    // a full resync streams straight to the replica, at once (7.0 waits 5 s by default)
    '--repl-diskless-sync', 'yes',
    '--repl-diskless-sync-delay', '0',
    '--repl-timeout', '5',
  ];
  if (spec.password) args.push('--requirepass', spec.password, '--masterauth', spec.password);
  if (spec.announceHost) args.push('--replica-announce-ip', spec.announceHost);
  if (replicaOf) args.push('--replicaof', replicaOf.host, String(replicaOf.port));
  args.push(...(spec.extraArgs ?? []));
  return args;
}

export function pidFilePath(spec: Pick<RedisNodeSpec, 'dir' | 'port'>): string {
  return path.join(path.resolve(spec.dir), `redis-${spec.port}.pid`);
}

/**
 * One managed redis-server. Emits 'exit' (code, signal) when the child exits.
 * The agent restarts it per the empty-restart rule (restart.ts).
 */
export class RedisProcess extends EventEmitter {
  private child: ChildProcess | null = null;
  private exited = true;
  private starting = false;

  constructor(readonly spec: RedisNodeSpec) {
    super();
  }

  get pid(): number | null {
    return this.child?.pid ?? null;
  }

  get pidFile(): string {
    return pidFilePath(this.spec);
  }

  get logFile(): string {
    return path.join(path.resolve(this.spec.dir), `redis-${this.spec.port}.log`);
  }

  state(): RedisProcessState {
    if (!this.child || this.exited) return 'dead';
    const pid = this.child.pid;
    if (pid === undefined || !isProcessAlive(pid)) return 'dead';
    if (isProcessStopped(pid)) return 'stopped';
    return this.starting ? 'starting' : 'running';
  }

  /** Spawn redis-server (as a replica of `replicaOf`, or as a master) and wait until it answers PING. */
  async start(replicaOf: { host: string; port: number } | null, timeoutMs = 10_000): Promise<void> {
    if (this.child && !this.exited) throw new RedisProcessError('REDIS_ALREADY_RUNNING', `redis-server on port ${this.spec.port} is already running (pid ${this.child.pid})`);
    fs.mkdirSync(this.spec.dir, { recursive: true });
    const fd = fs.openSync(this.logFile, 'a', 0o644);
    let child: ChildProcess;
    try {
      child = spawn(findRedisServerBinary(), redisArgs(this.spec, replicaOf), { cwd: this.spec.dir, stdio: ['ignore', fd, fd], detached: true });
    } finally {
      fs.closeSync(fd);
    }
    this.child = child;
    this.exited = false;
    this.starting = true;
    child.on('error', (err) => {
      fs.appendFileSync(this.logFile, `switchyard: failed to start redis-server: ${err.message}\n`);
    });
    child.once('exit', (code, signal) => {
      this.exited = true;
      this.emit('exit', code, signal);
    });
    try {
      await this.waitReady(timeoutMs);
    } finally {
      this.starting = false;
    }
  }

  private async waitReady(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.exited) throw new RedisProcessError('REDIS_EXITED', `redis-server on port ${this.spec.port} exited during start-up: see ${this.logFile}`);
      try {
        const conn = await RedisConn.connect(this.spec, 500);
        try {
          if ((await conn.call('PING')) === 'PONG') return;
        } finally {
          conn.close();
        }
      } catch {
        // not yet
      }
      if (Date.now() >= deadline) throw new RedisProcessError('REDIS_START_TIMEOUT', `redis-server on port ${this.spec.port} did not answer PING within ${timeoutMs} ms: see ${this.logFile}`);
      await sleep(25);
    }
  }

  /** Send a signal to the server (SIGKILL for a frozen one: a stopped process dies of SIGKILL too). */
  signal(sig: NodeJS.Signals): void {
    const pid = this.child?.pid;
    if (pid === undefined || this.exited) return;
    try {
      process.kill(pid, sig);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
    }
  }

  /** Resolves once the child has exited (immediately when it has). */
  waitExit(timeoutMs = 10_000): Promise<boolean> {
    if (!this.child || this.exited) return Promise.resolve(true);
    return new Promise((resolve) => {
      const t = setTimeout(() => resolve(false), timeoutMs);
      this.once('exit', () => {
        clearTimeout(t);
        resolve(true);
      });
    });
  }

  /** Kill at once (SIGKILL, also the fork children of its process group) and wait for the exit. */
  async kill(): Promise<void> {
    const pid = this.child?.pid;
    this.signal('SIGKILL');
    await this.waitExit();
    if (pid !== undefined) {
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        // group already gone
      }
    }
  }

  /** SIGTERM (redis-server exits without saving when `save ""`), SIGKILL after `timeoutMs`. */
  async stop(timeoutMs = 5_000): Promise<void> {
    if (!this.child || this.exited) return;
    this.signal('SIGCONT');
    this.signal('SIGTERM');
    if (!(await this.waitExit(timeoutMs))) await this.kill();
  }
}

/** Persistence is on and its files are on disk: a restart keeps the data. */
export function dataIntact(spec: Pick<RedisNodeSpec, 'dir' | 'appendonly'>): boolean {
  if (!spec.appendonly) return false;
  const aofDir = path.join(path.resolve(spec.dir), 'appendonlydir');
  try {
    return fs.readdirSync(aofDir).some((f) => f.endsWith('.aof') || f.endsWith('.rdb'));
  } catch {
    return fs.existsSync(path.join(path.resolve(spec.dir), 'appendonly.aof'));
  }
}
