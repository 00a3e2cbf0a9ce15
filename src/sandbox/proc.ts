import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { HarnessError } from './errors.js';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Parses /proc/<pid>/stat. Returns null when the file cannot be read
 * (process gone, or not on Linux).
 */
function readStat(pid: number): { state: string; ppid: number; pgrp: number } | null {
  let raw: string;
  try {
    raw = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // The command name (field 2) is in parentheses and may contain spaces or ')'.
  const close = raw.lastIndexOf(')');
  if (close < 0) return null;
  const fields = raw.slice(close + 2).split(' ');
  // fields[0] = state, [1] = ppid, [2] = pgrp
  return { state: fields[0] ?? '', ppid: Number(fields[1]), pgrp: Number(fields[2]) };
}

/**
 * True when `pid` refers to a running process. Zombies (state Z) and dead
 * tasks (state X) count as dead: PID 1 in our container does not reap
 * orphans, so an orphaned process that exited stays a zombie forever.
 */
export function isProcessAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const stat = readStat(pid);
  if (stat === null) {
    // kill(0) succeeded but /proc is unreadable: either not Linux (trust
    // kill) or the process vanished in between.
    return !fs.existsSync('/proc/self/stat');
  }
  return stat.state !== 'Z' && stat.state !== 'X' && stat.state !== 'x';
}

/** Polls until `pid` is dead. Resolves true if it died within `timeoutMs`. */
export async function waitForExit(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (!isProcessAlive(pid)) return true;
    if (Date.now() >= deadline) return false;
    await sleep(25);
  }
}

function trySignal(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

/**
 * Sends `signal` to `pid` and waits for it to die; escalates to SIGKILL after
 * `timeoutMs`. Throws HarnessError PROCESS_STUCK if even SIGKILL does not
 * get rid of it within 5 s (e.g. uninterruptible sleep).
 */
export async function killAndWait(
  pid: number,
  signal: NodeJS.Signals = 'SIGTERM',
  timeoutMs = 10_000,
): Promise<void> {
  if (!isProcessAlive(pid)) return;
  trySignal(pid, signal);
  if (await waitForExit(pid, timeoutMs)) return;
  trySignal(pid, 'SIGKILL');
  if (await waitForExit(pid, 5_000)) return;
  throw new HarnessError('PROCESS_STUCK', `process ${pid} did not exit even after SIGKILL`);
}

/** Live (non-zombie) members of process group `pgid`, found by scanning /proc. */
export function processGroupMembers(pgid: number): number[] {
  let entries: string[];
  try {
    entries = fs.readdirSync('/proc');
  } catch {
    return [];
  }
  const out: number[] = [];
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    const pid = Number(e);
    const stat = readStat(pid);
    if (stat && stat.pgrp === pgid && stat.state !== 'Z' && stat.state !== 'X' && stat.state !== 'x') {
      out.push(pid);
    }
  }
  return out;
}

/**
 * SIGKILLs every process in group `pgid` (the leader may already be gone)
 * and waits until none is left alive. Used after a postmaster died abruptly
 * and left backends behind.
 */
export async function killProcessGroup(pgid: number, timeoutMs = 5_000): Promise<void> {
  if (!Number.isInteger(pgid) || pgid <= 1) return;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const members = processGroupMembers(pgid);
    if (members.length === 0) return;
    trySignal(-pgid, 'SIGKILL');
    for (const m of members) trySignal(m, 'SIGKILL');
    if (Date.now() >= deadline) {
      throw new HarnessError(
        'PROCESS_STUCK',
        `processes ${members.join(', ')} of group ${pgid} did not exit after SIGKILL`,
      );
    }
    await sleep(25);
  }
}

let cachedPgUser: { uid: number; gid: number } | null | undefined;

/**
 * uid/gid of the `postgres` OS user when we run as root (PostgreSQL refuses
 * to run as root), null when we are not root (then we run PostgreSQL as
 * ourselves). Throws HarnessError PG_USER_NOT_FOUND when root and there is
 * no `postgres` user.
 */
export function pgUser(): { uid: number; gid: number } | null {
  if (cachedPgUser !== undefined) return cachedPgUser;
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) {
    cachedPgUser = null;
    return null;
  }
  try {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
    if (!Number.isInteger(uid) || !Number.isInteger(gid)) throw new Error('bad id output');
    cachedPgUser = { uid, gid };
    return cachedPgUser;
  } catch {
    throw new HarnessError(
      'PG_USER_NOT_FOUND',
      'running as root but there is no "postgres" OS user to run PostgreSQL as: create one or run as a non-root user',
    );
  }
}

/** Chowns `p` to the postgres user when we are root; no-op otherwise. */
export function chownToPg(p: string): void {
  const u = pgUser();
  if (u) fs.chownSync(p, u.uid, u.gid);
}

/**
 * Creates `dir` (recursively) if needed, then sets its mode and owner.
 * owner 'postgres' chowns it to the postgres user when we are root;
 * 'self' leaves it owned by us.
 */
export function ensureDir(dir: string, opts: { owner: 'postgres' | 'self'; mode: number }): void {
  fs.mkdirSync(dir, { recursive: true });
  fs.chmodSync(dir, opts.mode);
  if (opts.owner === 'postgres') chownToPg(dir);
}

/**
 * Makes `dir` and all of its ancestors traversable by other users (o+x),
 * so that the postgres user can reach data directories below it. Only
 * needed (and only done) when we run as root; e.g. a mkdtemp dir in /tmp is
 * 0700 root. Directories that already have o+x are left alone.
 */
export function ensureTraversable(dir: string): void {
  if (pgUser() === null) return;
  let cur = path.resolve(dir);
  for (;;) {
    try {
      const st = fs.statSync(cur);
      if (st.isDirectory() && (st.mode & 0o001) === 0) fs.chmodSync(cur, (st.mode & 0o7777) | 0o001);
    } catch {
      // does not exist (yet) or not ours to change: ignore
    }
    const parent = path.dirname(cur);
    if (parent === cur) return;
    cur = parent;
  }
}

/** Environment for child processes without libpq variables (PGHOST, PGPORT...). */
export function cleanEnv(extra?: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^PG[A-Z]/.test(k)) continue;
    env[k] = v;
  }
  return { ...env, ...extra };
}

/** A process and all its descendants, from /proc (backends call setsid: a group signal misses them). */
export function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(name)]);
    } catch {
      // gone meanwhile
    }
  }
  const out: number[] = [];
  const walk = (pid: number): void => {
    out.push(pid);
    for (const c of children.get(pid) ?? []) walk(c);
  };
  walk(root);
  return out;
}

/** Is the process stopped (SIGSTOP: state T)? */
export function isProcessStopped(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
    return state === 'T' || state === 't';
  } catch {
    return false;
  }
}
