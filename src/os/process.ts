/**
 * OS process helpers on Linux's /proc: is a process alive (a zombie is dead: PID 1 here
 * does not reap orphans), stopped (SIGSTOP), its descendants, its command line and
 * environment, and signals that tolerate a process already gone. No engine knowledge.
 */
import * as fs from 'node:fs';
import { SwitchyardError } from '../errors.js';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export interface ProcStat {
  /** R, S, D, T (stopped), t, Z (zombie), X (dead)... */
  state: string;
  ppid: number;
  pgrp: number;
}

/** /proc/<pid>/stat, or null when it cannot be read (process gone, or not Linux). */
export function readStat(pid: number): ProcStat | null {
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
  return { state: fields[0] ?? '', ppid: Number(fields[1]), pgrp: Number(fields[2]) };
}

function deadState(state: string): boolean {
  return state === 'Z' || state === 'X' || state === 'x';
}

/** True when `pid` is a running process; zombies (Z) and dead tasks (X) count as dead. */
export function isProcessAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const stat = readStat(pid);
  // kill(0) succeeded but /proc is unreadable: not Linux (trust kill), or it vanished in between
  if (stat === null) return !fs.existsSync('/proc/self/stat');
  return !deadState(stat.state);
}

/** Is the process stopped (SIGSTOP: state T or t)? */
export function isProcessStopped(pid: number): boolean {
  const s = readStat(pid)?.state;
  return s === 'T' || s === 't';
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

/** process.kill that ignores a process already gone (ESRCH). */
export function trySignal(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

/**
 * Sends `signal` to `pid` and waits for it to die; escalates to SIGKILL after
 * `timeoutMs`. Throws PROCESS_STUCK if even SIGKILL does not end it within 5 s.
 */
export async function killAndWait(pid: number, signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 10_000): Promise<void> {
  if (!isProcessAlive(pid)) return;
  trySignal(pid, signal);
  if (await waitForExit(pid, timeoutMs)) return;
  trySignal(pid, 'SIGKILL');
  if (await waitForExit(pid, 5_000)) return;
  throw new SwitchyardError('PROCESS_STUCK', `process ${pid} did not exit even after SIGKILL`);
}

function numericDirs(): number[] {
  try {
    return fs
      .readdirSync('/proc')
      .filter((e) => /^\d+$/.test(e))
      .map(Number);
  } catch {
    return [];
  }
}

/**
 * SIGKILLs every live process of group `pgid` (the leader may be gone already) and waits
 * until none is left: backends of a postmaster that died abruptly linger in its group.
 */
export async function killProcessGroup(pgid: number, timeoutMs = 5_000): Promise<void> {
  if (!Number.isInteger(pgid) || pgid <= 1) return;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const members = numericDirs().filter((pid) => {
      const s = readStat(pid);
      return s !== null && s.pgrp === pgid && !deadState(s.state);
    });
    if (members.length === 0) return;
    trySignal(-pgid, 'SIGKILL');
    for (const m of members) trySignal(m, 'SIGKILL');
    if (Date.now() >= deadline) {
      throw new SwitchyardError('PROCESS_STUCK', `processes ${members.join(', ')} of group ${pgid} did not exit after SIGKILL`);
    }
    await sleep(25);
  }
}

/** Live (not zombie) processes whose working directory is `dir` (compared by real path). */
export function processesIn(dir: string): number[] {
  let real: string;
  try {
    real = fs.realpathSync(dir);
  } catch {
    return [];
  }
  return numericDirs().filter((pid) => pid !== process.pid && isProcessAlive(pid) && processCwd(pid) === real);
}

/** A process and all its descendants (backends may call setsid: a group signal misses them). */
export function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const pid of numericDirs()) {
    const s = readStat(pid);
    if (s) children.set(s.ppid, [...(children.get(s.ppid) ?? []), pid]);
  }
  const out: number[] = [];
  const walk = (pid: number): void => {
    out.push(pid);
    for (const c of children.get(pid) ?? []) walk(c);
  };
  walk(root);
  return out;
}

/** SIGKILL a process and every process under it (a stopped one dies too, without running again). */
export function killTree(root: number): void {
  for (const p of processTree(root)) trySignal(p, 'SIGKILL');
}

/** The process's argv from /proc/<pid>/cmdline, or null when it cannot be read. */
export function processCmdline(pid: number): string[] | null {
  try {
    const raw = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    if (raw === '') return null; // a zombie or a kernel thread
    return raw.replace(/\0$/, '').split('\0');
  } catch {
    return null;
  }
}

/** The process's environment from /proc/<pid>/environ (readable for our own user or root), or null. */
export function processEnviron(pid: number): Map<string, string> | null {
  try {
    const raw = fs.readFileSync(`/proc/${pid}/environ`, 'utf8');
    const env = new Map<string, string>();
    for (const kv of raw.split('\0')) {
      const i = kv.indexOf('=');
      if (i > 0) env.set(kv.slice(0, i), kv.slice(i + 1));
    }
    return env;
  } catch {
    return null;
  }
}

/** The process's working directory (/proc/<pid>/cwd), or null. */
export function processCwd(pid: number): string | null {
  try {
    return fs.readlinkSync(`/proc/${pid}/cwd`);
  } catch {
    return null;
  }
}

/** Environment for child processes without libpq variables (PGHOST, PGPORT...), plus `extra`. */
export function cleanEnv(extra?: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^PG[A-Z]/.test(k)) continue;
    env[k] = v;
  }
  return { ...env, ...extra };
}
