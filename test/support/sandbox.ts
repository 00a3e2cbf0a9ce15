/** Test support: a real sandbox (Redis, PostgreSQL, agents, coordinators) owned by the test process. */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { Sandbox, type SandboxFile, type SandboxOptions } from '../../src/sandbox/deploy.js';
import { freePort, isPortFree } from '../../src/sandbox/ports.js';
import type { RoutingTable } from '../../src/core/routing.js';

/** The kernel's ephemeral port range: outgoing connections take their local ports from it. */
function ephemeralPortRange(): [number, number] {
  try {
    const [lo, hi] = fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    if (lo && hi) return [lo, hi];
  } catch {
    // not Linux: the usual range
  }
  return [32768, 60999];
}

/**
 * `n` consecutive ports free right now, for a sandbox to bind later (after initdb and the
 * rest: seconds). Chosen below the ephemeral range: a port there is never taken as the
 * local port of an outgoing connection in the meantime (the kernel's own bind(0) choice
 * is odd, but the one after it is even, which is where connect() takes ports from, and a
 * sandbox opens hundreds of connections while it starts).
 */
export async function consecutiveFreePorts(n: number): Promise<number> {
  const [lo] = ephemeralPortRange();
  const min = 10_000;
  const max = lo - n;
  for (let attempt = 0; max > min && attempt < 200; attempt++) {
    const base = min + Math.floor(Math.random() * (max - min));
    let ok = true;
    for (let i = 0; i < n && ok; i++) ok = await isPortFree(base + i);
    if (ok) return base;
  }
  // no room below the ephemeral range (an unusual ip_local_port_range): ask the kernel
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = await freePort();
    let ok = true;
    for (let i = 1; i < n; i++) if (!(await isPortFree(base + i))) ok = false;
    if (ok && base + n < 65535) return base;
  }
  throw new Error('no run of free ports');
}

/**
 * The postgres superuser's password of every sandbox this test process starts. A sandbox
 * runs scram-sha-256 for every connection; node-postgres reads PGPASSWORD when a client
 * gives none, so the tests' `{ user: 'postgres' }` clients log in. (The sandbox strips
 * PG* variables from its daemons: the agents use their own role and passfile.)
 */
export function testPgPassword(): string {
  process.env.PGPASSWORD ??= `sandbox-test-${randomBytes(6).toString('hex')}`;
  return process.env.PGPASSWORD;
}

export async function startSandbox(over: Partial<SandboxOptions> = {}): Promise<{ sandbox: Sandbox; file: SandboxFile; dir: string }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sy-it-'));
  over = { pgPassword: testPgPassword(), ...over };
  const coordinators = over.coordinators ?? 2;
  const apiPort = await consecutiveFreePorts(coordinators);
  const sandbox = new Sandbox({ engine: 'postgres', replicas: 2, sync: false, coordinators, apiPort, dir: path.join(dir, 'sb'), cluster: 'it', ...over });
  const file = await sandbox.up(() => {});
  return { sandbox, file, dir };
}

export async function stopSandbox(s: { sandbox: Sandbox; dir: string } | undefined): Promise<void> {
  if (!s) return;
  await s.sandbox.down();
  if (process.env.SY_KEEP_TEST_DIRS) console.log(`kept ${s.dir}`);
  else fs.rmSync(s.dir, { recursive: true, force: true });
}

export async function routing(api: string, cluster: string): Promise<RoutingTable> {
  const res = await fetch(`${api}/v1/clusters/${cluster}/routing`);
  if (!res.ok) throw new Error(`routing: ${res.status}`);
  return (await res.json()) as RoutingTable;
}

export async function waitFor<T>(what: string, fn: () => Promise<T | null | undefined | false>, timeoutMs = 30_000, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastErr: unknown = null;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      lastErr = err;
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out waiting for ${what}${lastErr ? `: ${(lastErr as Error).message}` : ''}`);
}

/**
 * One statement on a node over a fresh connection. The timeouts are for a server that does
 * not answer at all, not for a slow one: a loaded host may take seconds for a first
 * connection (fork, scram-sha-256) or for a CHECKPOINT or CREATE DATABASE (fsync is on).
 */
export async function sql<T extends pg.QueryResultRow = pg.QueryResultRow>(port: number, text: string, params: unknown[] = []): Promise<pg.QueryResult<T>> {
  const c = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', password: testPgPassword(), database: 'postgres', connectionTimeoutMillis: 10_000, query_timeout: 30_000 });
  c.on('error', () => {});
  await c.connect();
  try {
    return await c.query<T>(text, params);
  } finally {
    await c.end().catch(() => {});
  }
}

export function postmasterPid(dataDir: string): number {
  return Number(fs.readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
}
