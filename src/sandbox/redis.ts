import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { findRedisServer } from './binaries.js';
import { HarnessError } from './errors.js';
import { assertPortFree, freePort } from './ports.js';
import { cleanEnv, ensureDir, isProcessAlive, killAndWait, killProcessGroup } from './proc.js';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export interface SpawnRedisOptions {
  port: number;
  /** working directory (--dir); created if missing */
  dir: string;
  /** stdout/stderr appended here; default `<dir>/redis-<port>.log` */
  logFile?: string;
  /** an ACL file (users and their passwords' SHA-256): the only way in; default: no ACL (open on loopback) */
  aclFile?: string;
  /** appendonly yes (fsync every second) in `dir`: a restarted server keeps the journal and the epoch; default: no persistence */
  persistence?: boolean;
}

/** Credentials for the readiness check of a server started with an ACL file. */
export interface RedisAuth {
  user: string;
  password: string;
}

/**
 * Starts redis-server on 127.0.0.1:port as a direct child (never
 * daemonized; no persistence unless asked). Own process group (detached: true, not
 * unref'd) like the postgres children.
 */
export function spawnRedis(opts: SpawnRedisOptions): ChildProcess {
  const dir = path.resolve(opts.dir);
  fs.mkdirSync(dir, { recursive: true });
  const logFile = opts.logFile ?? path.join(dir, `redis-${opts.port}.log`);
  fs.mkdirSync(path.dirname(logFile), { recursive: true });
  const fd = fs.openSync(logFile, 'a', 0o644);
  let child: ChildProcess;
  try {
    child = spawn(
      findRedisServer(),
      [
        '--port', String(opts.port),
        '--bind', '127.0.0.1',
        '--save', '',
        '--appendonly', opts.persistence ? 'yes' : 'no',
        '--dir', dir,
        '--daemonize', 'no',
        '--protected-mode', 'no',
        // the file holds only hashes; a password never goes on the command line
        ...(opts.aclFile ? ['--aclfile', path.resolve(opts.aclFile)] : []),
      ],
      { cwd: dir, env: cleanEnv(), stdio: ['ignore', fd, fd], detached: true },
    );
  } finally {
    fs.closeSync(fd);
  }
  child.on('error', (err) => {
    try {
      fs.appendFileSync(logFile, `switchyard: failed to start redis-server: ${err.message}\n`);
    } catch {
      // ignore
    }
  });
  return child;
}

/** RESP array of bulk strings. */
function resp(...args: string[]): string {
  return `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`;
}

/** One PING (after AUTH when given) over a raw socket; resolves true on +PONG. */
function ping(port: number, host: string, timeoutMs: number, auth?: RedisAuth): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ port, host });
    let buf = '';
    const done = (ok: boolean): void => {
      clearTimeout(timer);
      sock.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    sock.on('connect', () => sock.write((auth ? resp('AUTH', auth.user, auth.password) : '') + resp('PING')));
    sock.on('data', (d) => {
      buf += d.toString();
      const lines = buf.split('\r\n');
      if (lines.length > (auth ? 2 : 1)) done(auth ? lines[0] === '+OK' && lines[1] === '+PONG' : lines[0] === '+PONG');
    });
    sock.on('error', () => done(false));
    sock.on('close', () => done(false));
  });
}

/**
 * Polls with PING until redis answers +PONG. Throws HarnessError
 * REDIS_START_TIMEOUT, or REDIS_EXITED when `child` dies meanwhile.
 */
export async function waitRedisReady(
  port: number,
  timeoutMs = 10_000,
  host = '127.0.0.1',
  child?: ChildProcess,
  auth?: RedisAuth,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child && (child.exitCode !== null || child.signalCode !== null || (child.pid !== undefined && !isProcessAlive(child.pid)))) {
      throw new HarnessError('REDIS_EXITED', `redis-server on port ${port} exited during start-up: look at its log file`);
    }
    if (await ping(port, host, 1_000, auth)) return;
    if (Date.now() >= deadline) {
      throw new HarnessError('REDIS_START_TIMEOUT', `redis-server on ${host}:${port} was not ready within ${timeoutMs} ms: look at its log file`);
    }
    await sleep(50);
  }
}

/** SIGTERM (then SIGKILL) a redis-server child and wait until it is gone. */
export async function stopRedis(target: ChildProcess | number, timeoutMs = 10_000): Promise<void> {
  const child = typeof target === 'number' ? undefined : target;
  const pid = typeof target === 'number' ? target : target.pid;
  if (pid === undefined) return;
  await killAndWait(pid, 'SIGTERM', timeoutMs);
  if (child && child.exitCode === null && child.signalCode === null) {
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, 2_000);
      child.once('exit', () => {
        clearTimeout(t);
        resolve();
      });
    });
  }
  await killProcessGroup(pid);
}

/** A throw-away redis-server for tests. */
export class RedisServer {
  readonly port: number;
  readonly dir: string;
  readonly logFile: string;
  readonly child: ChildProcess;

  private constructor(port: number, dir: string, logFile: string, child: ChildProcess) {
    this.port = port;
    this.dir = dir;
    this.logFile = logFile;
    this.child = child;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  static async start(dir: string, opts: { port?: number; logFile?: string; timeoutMs?: number } = {}): Promise<RedisServer> {
    ensureDir(dir, { owner: 'self', mode: 0o755 });
    const port = opts.port ?? (await freePort());
    await assertPortFree(port, 'redis');
    const logFile = opts.logFile ?? path.join(path.resolve(dir), `redis-${port}.log`);
    const child = spawnRedis({ port, dir, logFile });
    try {
      await waitRedisReady(port, opts.timeoutMs ?? 10_000, '127.0.0.1', child);
    } catch (err) {
      await stopRedis(child).catch(() => {});
      throw err;
    }
    return new RedisServer(port, path.resolve(dir), logFile, child);
  }

  async stop(): Promise<void> {
    await stopRedis(this.child);
  }
}
