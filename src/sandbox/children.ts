/**
 * The sandbox's children: spawning the agents and coordinators, reporting a child that
 * exits during start-up (its log's last lines), and waiting until the routing table
 * shows the cluster healthy.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { HarnessError } from './errors.js';
import { cleanEnv } from './proc.js';
import type { Progress, SandboxFile } from './sandbox-file.js';

/** The built CLI entry, whether we run from dist/ or from sources (tests). */
export function cliEntry(): string {
  const here = fileURLToPath(import.meta.url);
  if (here.endsWith('.ts')) return path.resolve(path.dirname(here), '../../dist/src/cli/main.js');
  return path.resolve(path.dirname(here), '../cli/main.js');
}

/** Run one start-up step and report it, with how long it took, as a `  ✓ …` progress line. */
export async function timed<T>(progress: Progress, what: string, fn: () => Promise<T>): Promise<T> {
  const t0 = Date.now();
  const r = await fn();
  progress(`  ✓ ${what} (${Date.now() - t0} ms)`);
  return r;
}

/** What the sandbox knows of each child, to say which one failed and why. */
export interface ChildInfo {
  name: string;
  logFile: string;
}

/**
 * An agent or coordinator, its stdout and stderr appended to its log file (so a config
 * error printed before it exits is there), without the caller's libpq variables
 * (PGPASSWORD and friends must not leak into the agents' tools).
 */
export function spawnDaemon(kind: 'agent' | 'coordinator', config: string, logFile: string, extraArgs: string[] = []): ChildProcess {
  const fd = fs.openSync(logFile, 'a', 0o600);
  let child: ChildProcess;
  try {
    child = spawn(process.execPath, [cliEntry(), kind, '--config', config, ...extraArgs], { stdio: ['ignore', fd, fd], env: cleanEnv() });
  } finally {
    fs.closeSync(fd);
  }
  child.on('error', (err) => {
    try {
      fs.appendFileSync(logFile, `switchyard sandbox: could not start ${kind}: ${err.message}\n`);
    } catch {
      // the directory is gone: nothing to report into
    }
  });
  return child;
}

/** The last `n` non-empty lines of a log file ('' when there is none). */
export function logTail(file: string, n = 10, maxBytes = 16_384): string {
  try {
    const size = fs.statSync(file).size;
    const fd = fs.openSync(file, 'r');
    try {
      const len = Math.min(size, maxBytes);
      const buf = Buffer.alloc(len);
      fs.readSync(fd, buf, 0, len, size - len);
      return buf.toString('utf8').split('\n').map((l) => l.trimEnd()).filter((l) => l !== '').slice(-n).join('\n');
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return '';
  }
}

/** Why a child exited at start-up: its name, exit status, log file and the last lines of that log. */
export function describeChildExit(child: ChildProcess, info: ChildInfo | undefined): string {
  const name = info?.name ?? 'a sandbox process';
  const how = child.signalCode !== null ? `was killed by ${child.signalCode}` : `exited with code ${child.exitCode}`;
  const head = `${name} (pid ${child.pid}) ${how} during start-up`;
  if (!info) return head;
  const tail = logTail(info.logFile);
  return tail === '' ? `${head}; its log ${info.logFile} is empty` : `${head}; the last lines of ${info.logFile}:\n${tail.split('\n').map((l) => `    ${l}`).join('\n')}`;
}

export interface RoutingTableLike {
  primary: { id: string } | null;
  replicas: Array<{ id: string; healthy: boolean }>;
  /** every node with its phase and reason (newer coordinators), and its zone when its agent has one */
  nodes?: Array<{ id: string; phase: string; reason: string; zone?: string }>;
}

export async function fetchRouting(api: string, cluster: string): Promise<RoutingTableLike | null> {
  try {
    const res = await fetch(`${api}/v1/clusters/${encodeURIComponent(cluster)}/routing`, { signal: AbortSignal.timeout(2000) });
    if (!res.ok) return null;
    return (await res.json()) as RoutingTableLike;
  } catch {
    return null;
  }
}

export async function waitHealthy(file: SandboxFile, timeoutMs: number, children: ChildProcess[], dir: string, info: Map<ChildProcess, ChildInfo>): Promise<void> {
  const logs = path.join(dir, 'logs');
  const deadline = Date.now() + timeoutMs;
  const want = file.nodes.length - 1;
  let last = 'no answer from the API yet';
  while (Date.now() < deadline) {
    const dead = children.find((c) => c.exitCode !== null || c.signalCode !== null);
    if (dead) throw new HarnessError('SANDBOX_CHILD_EXITED', `${describeChildExit(dead, info.get(dead))}\n  (every log is in ${logs})`);
    const t = await fetchRouting(file.api, file.cluster);
    if (t) {
      const healthy = t.replicas.filter((r) => r.healthy).length;
      last = `primary ${t.primary?.id ?? 'none'}, ${healthy}/${want} replicas healthy`;
      if (t.primary && healthy === want) {
        // every coordinator serves the API, not only the first: a client given all their
        // URLs (or a test asking the second) must not meet a refused connection
        const others = file.coordinators.filter((c) => c.api !== file.api);
        const tables = await Promise.all(others.map((c) => fetchRouting(c.api, file.cluster)));
        const waiting = others.filter((_, i) => tables[i]?.primary?.id !== t.primary!.id);
        if (waiting.length === 0) return;
        last = `primary ${t.primary.id}, ${healthy}/${want} replicas healthy; waiting for ${waiting.map((c) => c.api).join(', ')} to serve the same table`;
      }
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new HarnessError('SANDBOX_NOT_HEALTHY', `the sandbox did not become healthy within ${timeoutMs} ms (${last}): see the logs in ${logs}`);
}
