/**
 * The sandbox: a whole deployment on loopback. One Redis, a primary and N replicas,
 * one agent per node (managing its node's process), N coordinators serving the API.
 *
 * The process that runs `up` (or, with --detach, a supervisor it starts) is the parent
 * of Redis, the agents and the coordinators; the agents are the parents of the
 * postmasters. Nothing is daemonized, so every exit is seen and reaped.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { HarnessError } from './errors.js';
import { assertPortFree, freePorts } from './ports.js';
import { cloneReplica, initPrimary, spawnPostgres, stopPostgres, waitReady } from './postgres.js';
import { isProcessAlive, killAndWait, ensureTraversable } from './proc.js';
import { spawnRedis, stopRedis, waitRedisReady } from './redis.js';
import { findPgBin, findRedisServer } from './binaries.js';

export interface SandboxOptions {
  engine: 'postgres' | 'redis';
  replicas: number;
  sync: boolean;
  coordinators: number;
  apiPort: number;
  dir: string;
  cluster: string;
  /** coordinator settings overrides (tests) */
  settings?: Record<string, number | boolean | string>;
  probeIntervalMs?: number;
  leaseTtlMs?: number;
}

export interface SandboxNode {
  id: string;
  host: string;
  port: number;
  dataDir: string;
  agentPid: number;
}

export interface SandboxFile {
  cluster: string;
  engine: 'postgres' | 'redis';
  api: string;
  adminToken: string;
  redis: string;
  redisPid: number;
  supervisorPid: number;
  nodes: SandboxNode[];
  coordinators: Array<{ id: string; pid: number; api: string }>;
  connection: { user: string; database: string };
}

export type Progress = (line: string) => void;

export function sandboxFilePath(dir: string): string {
  return path.join(path.resolve(dir), 'sandbox.json');
}

export function readSandboxFile(dir: string): SandboxFile {
  const file = sandboxFilePath(dir);
  if (!fs.existsSync(file)) throw new HarnessError('NO_SANDBOX', `no sandbox in ${path.resolve(dir)} (no sandbox.json): start one with \`switchyard sandbox up --dir ${dir}\``);
  return JSON.parse(fs.readFileSync(file, 'utf8')) as SandboxFile;
}

/** The built CLI entry, whether we run from dist/ or from sources (tests). */
export function cliEntry(): string {
  const here = fileURLToPath(import.meta.url);
  if (here.endsWith('.ts')) return path.resolve(path.dirname(here), '../../dist/src/cli/main.js');
  return path.resolve(path.dirname(here), '../cli/main.js');
}

async function timed<T>(progress: Progress, what: string, fn: () => Promise<T>): Promise<T> {
  const t0 = Date.now();
  const r = await fn();
  progress(`  ✓ ${what} (${Date.now() - t0} ms)`);
  return r;
}

function spawnDaemon(kind: 'agent' | 'coordinator', config: string, logFile: string): ChildProcess {
  const fd = fs.openSync(logFile, 'a');
  try {
    return spawn(process.execPath, [cliEntry(), kind, '--config', config], { stdio: ['ignore', fd, fd], env: process.env });
  } finally {
    fs.closeSync(fd);
  }
}

/** A running sandbox, owned by this process. */
export class Sandbox {
  children: ChildProcess[] = [];
  file: SandboxFile | null = null;
  private stopped = false;

  constructor(readonly opts: SandboxOptions) {}

  get dir(): string {
    return path.resolve(this.opts.dir);
  }

  async up(progress: Progress): Promise<SandboxFile> {
    const o = this.opts;
    if (o.engine !== 'postgres') throw new HarnessError('ENGINE_NOT_SUPPORTED', `--engine ${o.engine} is not supported yet by the sandbox: use --engine postgres`);
    if (!Number.isInteger(o.replicas) || o.replicas < 0 || o.replicas > 8) throw new HarnessError('BAD_FLAG', `--replicas ${o.replicas}: use 0 to 8`);
    if (!Number.isInteger(o.coordinators) || o.coordinators < 1 || o.coordinators > 5) throw new HarnessError('BAD_FLAG', `--coordinators ${o.coordinators}: use 1 to 5`);
    if (fs.existsSync(this.dir) && fs.readdirSync(this.dir).length > 0) {
      throw new HarnessError('DIR_EXISTS', `${this.dir} already exists: run \`switchyard sandbox down --dir ${o.dir}\` or choose another --dir`);
    }
    // fail before starting anything
    findPgBin();
    findRedisServer();
    const apiPorts = Array.from({ length: o.coordinators }, (_, i) => o.apiPort + i);
    for (const [i, p] of apiPorts.entries()) await assertPortFree(p, `API of coordinator c${i + 1}`, '--api-port');

    fs.mkdirSync(this.dir, { recursive: true });
    ensureTraversable(this.dir);
    try {
      return await this.start(progress, apiPorts);
    } catch (err) {
      await this.down().catch(() => {});
      throw err;
    }
  }

  private async start(progress: Progress, apiPorts: number[]): Promise<SandboxFile> {
    const o = this.opts;
    const dir = this.dir;
    const nodeIds = Array.from({ length: o.replicas + 1 }, (_, i) => `pg${i + 1}`);
    const [redisPort, ...pgPorts] = await freePorts(nodeIds.length + 1);
    const adminToken = randomBytes(16).toString('hex');

    const redisDir = path.join(dir, 'redis');
    fs.mkdirSync(redisDir, { recursive: true });
    const redis = spawnRedis({ port: redisPort!, dir: redisDir });
    this.children.push(redis);
    await timed(progress, `redis on 127.0.0.1:${redisPort}`, () => waitRedisReady(redisPort!, 10_000, '127.0.0.1', redis));
    const redisUrl = `redis://127.0.0.1:${redisPort}`;

    const dataDir = (id: string): string => path.join(dir, 'data', id);
    fs.mkdirSync(path.join(dir, 'data'), { recursive: true });
    ensureTraversable(path.join(dir, 'data'));
    await timed(progress, `initdb ${nodeIds[0]}`, () => initPrimary({ dataDir: dataDir(nodeIds[0]!), port: pgPorts[0]! }));
    const boot = spawnPostgres({ dataDir: dataDir(nodeIds[0]!), port: pgPorts[0]! });
    try {
      await waitReady(pgPorts[0]!, 30_000, '127.0.0.1', { child: boot, dataDir: dataDir(nodeIds[0]!) });
      for (let i = 1; i < nodeIds.length; i++) {
        await timed(progress, `pg_basebackup ${nodeIds[i]}`, () =>
          cloneReplica({ primaryHost: '127.0.0.1', primaryPort: pgPorts[0]!, dataDir: dataDir(nodeIds[i]!), port: pgPorts[i]!, appName: nodeIds[i]! }),
        );
      }
    } finally {
      await stopPostgres(boot, 'fast');
    }

    const cfgDir = path.join(dir, 'config');
    const logDir = path.join(dir, 'logs');
    fs.mkdirSync(cfgDir, { recursive: true });
    fs.mkdirSync(logDir, { recursive: true });
    const nodes: SandboxNode[] = [];
    for (const [i, id] of nodeIds.entries()) {
      const cfgPath = path.join(cfgDir, `agent-${id}.json`);
      const cfg = {
        cluster: o.cluster,
        node: id,
        redis: redisUrl,
        host: '127.0.0.1',
        port: pgPorts[i]!,
        dataDir: dataDir(id),
        probeIntervalMs: o.probeIntervalMs ?? 200,
        probeTimeoutMs: 1000,
      };
      fs.writeFileSync(cfgPath, JSON.stringify(cfg, null, 2));
      const child = spawnDaemon('agent', cfgPath, path.join(logDir, `agent-${id}.log`));
      this.children.push(child);
      nodes.push({ id, host: '127.0.0.1', port: pgPorts[i]!, dataDir: dataDir(id), agentPid: child.pid! });
    }
    progress(`  ✓ ${nodes.length} agents started`);

    const coordinators: SandboxFile['coordinators'] = [];
    for (const [i, port] of apiPorts.entries()) {
      const id = `c${i + 1}`;
      const cfgPath = path.join(cfgDir, `coordinator-${id}.json`);
      const cfg = {
        id,
        redis: redisUrl,
        clusters: [{ name: o.cluster, engine: 'postgres', settings: { ...(o.sync ? { synchronous: true } : {}), ...(o.settings ?? {}) } }],
        api: { host: '127.0.0.1', port },
        adminToken,
        leaseTtlMs: o.leaseTtlMs ?? 3000,
      };
      fs.writeFileSync(cfgPath, JSON.stringify(cfg, null, 2), { mode: 0o600 });
      const child = spawnDaemon('coordinator', cfgPath, path.join(logDir, `coordinator-${id}.log`));
      this.children.push(child);
      coordinators.push({ id, pid: child.pid!, api: `http://127.0.0.1:${port}` });
    }
    progress(`  ✓ ${coordinators.length} coordinators started`);

    const file: SandboxFile = {
      cluster: o.cluster,
      engine: 'postgres',
      api: coordinators[0]!.api,
      adminToken,
      redis: redisUrl,
      redisPid: redis.pid!,
      supervisorPid: process.pid,
      nodes,
      coordinators,
      connection: { user: 'postgres', database: 'postgres' },
    };
    fs.writeFileSync(sandboxFilePath(dir), JSON.stringify(file, null, 2) + '\n', { mode: 0o600 });
    this.file = file;
    await timed(progress, 'routing table shows the primary and every replica healthy', () => waitHealthy(file, 60_000, this.children, dir));
    return file;
  }

  /** Stop everything this sandbox started (coordinators, agents and their nodes, Redis). */
  async down(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    const kids = [...this.children].reverse();
    for (const c of kids) {
      if (c.pid === undefined || c.exitCode !== null || c.signalCode !== null) continue;
      await killAndWait(c.pid, 'SIGTERM', 20_000).catch(() => {});
    }
    await sweepPostmasters(this.dir);
    const redis = this.children[0];
    if (redis) await stopRedis(redis).catch(() => {});
  }
}

/** Kill any postmaster still running on a sandbox data directory (its agent was killed). */
export async function sweepPostmasters(dir: string): Promise<void> {
  const dataRoot = path.join(dir, 'data');
  if (!fs.existsSync(dataRoot)) return;
  for (const name of fs.readdirSync(dataRoot)) {
    const pidFile = path.join(dataRoot, name, 'postmaster.pid');
    if (!fs.existsSync(pidFile)) continue;
    const pid = Number(fs.readFileSync(pidFile, 'utf8').split('\n')[0]);
    if (Number.isInteger(pid) && pid > 0 && isProcessAlive(pid)) await stopPostgres(pid, 'immediate').catch(() => {});
  }
}

export interface RoutingTableLike {
  primary: { id: string } | null;
  replicas: Array<{ id: string; healthy: boolean }>;
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

async function waitHealthy(file: SandboxFile, timeoutMs: number, children: ChildProcess[], dir: string): Promise<void> {
  const logs = path.join(dir, 'logs');
  const deadline = Date.now() + timeoutMs;
  const want = file.nodes.length - 1;
  let last = 'no answer from the API yet';
  while (Date.now() < deadline) {
    const dead = children.find((c) => c.exitCode !== null || c.signalCode !== null);
    if (dead) throw new HarnessError('SANDBOX_CHILD_EXITED', `a sandbox process (pid ${dead.pid}) exited during start-up: see the logs in ${logs}`);
    const t = await fetchRouting(file.api, file.cluster);
    if (t) {
      const healthy = t.replicas.filter((r) => r.healthy).length;
      last = `primary ${t.primary?.id ?? 'none'}, ${healthy}/${want} replicas healthy`;
      if (t.primary && healthy === want) return;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new HarnessError('SANDBOX_NOT_HEALTHY', `the sandbox did not become healthy within ${timeoutMs} ms (${last}): see the logs in ${logs}`);
}

/** Stop a sandbox from its sandbox.json (the supervisor, then anything left), and remove it unless keep. */
export async function sandboxDown(dir: string, keep: boolean, progress: Progress): Promise<void> {
  const abs = path.resolve(dir);
  let file: SandboxFile | null = null;
  try {
    file = readSandboxFile(abs);
  } catch (err) {
    if (!fs.existsSync(abs)) throw err;
  }
  if (file) {
    if (file.supervisorPid && file.supervisorPid !== process.pid && isProcessAlive(file.supervisorPid)) {
      await timed(progress, `supervisor ${file.supervisorPid} stopped`, () => killAndWait(file.supervisorPid, 'SIGTERM', 60_000));
    }
    const pids = [...file.coordinators.map((c) => c.pid), ...file.nodes.map((n) => n.agentPid)];
    for (const pid of pids) if (isProcessAlive(pid)) await killAndWait(pid, 'SIGTERM', 20_000).catch(() => {});
  }
  await sweepPostmasters(abs);
  if (file && isProcessAlive(file.redisPid)) await stopRedis(file.redisPid).catch(() => {});
  progress('  ✓ every process stopped');
  if (!keep) {
    fs.rmSync(abs, { recursive: true, force: true });
    progress(`  ✓ removed ${abs}`);
  }
}
