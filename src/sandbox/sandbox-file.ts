/**
 * The sandbox's files: its options and sandbox.json types, the marker that says a
 * directory is a sandbox this code wrote, and the helpers that read, check and remove them.
 */
import fs from 'node:fs';
import path from 'node:path';
import { HarnessError } from './errors.js';

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
  /** the postgres superuser's password (tests set a known one); default: generated */
  pgPassword?: string;
  /** a zone label per node, in node order (primary first): each agent's `zone`; default: none */
  zones?: readonly string[];
}

export interface SandboxNode {
  id: string;
  host: string;
  port: number;
  dataDir: string;
  agentPid: number;
  /** the server's pid file (Redis: redis-server writes it; PostgreSQL: postmaster.pid in dataDir) */
  pidFile?: string;
}

export interface SandboxFile {
  /** this sandbox's own id, also in its marker file: `down` removes only a directory holding both */
  sandboxId: string;
  cluster: string;
  engine: 'postgres' | 'redis';
  api: string;
  adminToken: string;
  redis: string;
  redisPid: number;
  supervisorPid: number;
  nodes: SandboxNode[];
  coordinators: Array<{ id: string; pid: number; api: string; sentinelPort?: number }>;
  /** what a client needs to log in: every PostgreSQL connection is scram-sha-256 */
  connection: { user: string; database: string; password?: string };
  /** Redis: the coordinators' Sentinel-protocol ports (clients list them as their sentinels), and the master name */
  sentinel?: { masterName: string; ports: number[] };
}

export type Progress = (line: string) => void;

/**
 * The engines `sandbox up` can start today: the CLI's usage, help and flag checks list
 * these and nothing else (Redis: src/sandbox/redis-nodes.ts).
 */
export const SANDBOX_ENGINES: readonly SandboxOptions['engine'][] = ['postgres', 'redis'];

/** Check the options before anything starts: one clear line naming the flag and the value. */
export function validateSandboxOptions(o: SandboxOptions): void {
  if (!SANDBOX_ENGINES.includes(o.engine)) throw new HarnessError('BAD_FLAG', `--engine ${o.engine}: the sandbox supports ${SANDBOX_ENGINES.join(', ')}`);
  if (!Number.isInteger(o.replicas) || o.replicas < 0 || o.replicas > 8) throw new HarnessError('BAD_FLAG', `--replicas ${o.replicas}: use 0 to 8`);
  if (!Number.isInteger(o.coordinators) || o.coordinators < 1 || o.coordinators > 5) throw new HarnessError('BAD_FLAG', `--coordinators ${o.coordinators}: use 1 to 5`);
  const last = o.apiPort + o.coordinators - 1;
  if (!Number.isInteger(o.apiPort) || o.apiPort < 1 || last > 65535) {
    throw new HarnessError('BAD_FLAG', `--api-port ${o.apiPort}: use a port from 1 to ${65535 - o.coordinators + 1} (coordinator i serves on P+i-1)`);
  }
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(o.cluster)) throw new HarnessError('BAD_FLAG', `--cluster ${JSON.stringify(o.cluster)}: use 1 to 64 letters, digits, '_', '.' or '-'`);
  if (o.zones !== undefined) {
    if (o.zones.length > o.replicas + 1) throw new HarnessError('BAD_FLAG', `zones: ${o.zones.length} given for ${o.replicas + 1} nodes: give at most one per node`);
    for (const [i, z] of o.zones.entries()) {
      if (!/^[A-Za-z0-9_.-]{1,64}$/.test(z)) throw new HarnessError('BAD_FLAG', `zones[${i}] ${JSON.stringify(z)}: use 1 to 64 letters, digits, '_', '.' or '-'`);
    }
  }
}

export function sandboxFilePath(dir: string): string {
  return path.join(path.resolve(dir), 'sandbox.json');
}

/** The marker a sandbox writes first into its directory: its id, and what it created. */
export const MARKER_FILE = '.switchyard-sandbox';

export interface SandboxMarker {
  sandboxId: string;
  createdAt: string;
  /** the outermost directory `up` created (null: the directory existed, empty) */
  createdFrom: string | null;
}

/** Everything a sandbox creates inside its directory: `down` removes these and nothing else. */
const SANDBOX_ENTRIES = ['redis', 'data', 'config', 'logs', 'secrets', 'sandbox.json', MARKER_FILE] as const;

function readMarker(abs: string): SandboxMarker | null {
  try {
    const m = JSON.parse(fs.readFileSync(path.join(abs, MARKER_FILE), 'utf8')) as Partial<SandboxMarker>;
    return typeof m.sandboxId === 'string' && m.sandboxId.length > 0 ? { sandboxId: m.sandboxId, createdAt: String(m.createdAt ?? ''), createdFrom: typeof m.createdFrom === 'string' ? m.createdFrom : null } : null;
  } catch {
    return null;
  }
}

/**
 * Is `dir` a sandbox this code wrote? Its marker file names an id, and its sandbox.json
 * (when there is one: a start that failed early has none) carries the same id.
 */
export function sandboxIdentity(dir: string): { ok: true; marker: SandboxMarker } | { ok: false; why: string } {
  const abs = path.resolve(dir);
  if (!fs.existsSync(abs)) return { ok: false, why: `${abs} does not exist: there is no sandbox there` };
  const marker = readMarker(abs);
  if (!marker) return { ok: false, why: `${abs} is not a switchyard sandbox (no ${MARKER_FILE} marker written by \`sandbox up\`)` };
  const file = sandboxFilePath(abs);
  if (fs.existsSync(file)) {
    let id: unknown;
    try {
      id = (JSON.parse(fs.readFileSync(file, 'utf8')) as { sandboxId?: unknown }).sandboxId;
    } catch {
      id = undefined;
    }
    if (id !== marker.sandboxId) return { ok: false, why: `${abs} is not a switchyard sandbox (its sandbox.json does not carry the id in ${MARKER_FILE})` };
  }
  return { ok: true, marker };
}

/** Remove what a sandbox created in `abs` (and the directories it created, once empty). Returns what it left. */
export function removeSandboxDir(abs: string, marker: SandboxMarker): string[] {
  for (const e of SANDBOX_ENTRIES) {
    if (e === MARKER_FILE) continue;
    fs.rmSync(path.join(abs, e), { recursive: true, force: true });
  }
  const left = fs.readdirSync(abs).filter((e) => e !== MARKER_FILE);
  if (left.length > 0) return left; // keep the marker: it is still the sandbox's directory
  fs.rmSync(path.join(abs, MARKER_FILE), { force: true });
  if (marker.createdFrom) {
    // the directories `up` created, innermost first, while empty
    const stop = path.resolve(marker.createdFrom);
    for (let d = abs; d.startsWith(stop); d = path.dirname(d)) {
      try {
        fs.rmdirSync(d);
      } catch {
        break;
      }
      if (d === stop) break;
    }
  }
  return [];
}

export function readSandboxFile(dir: string): SandboxFile {
  const file = sandboxFilePath(dir);
  if (!fs.existsSync(file)) throw new HarnessError('NO_SANDBOX', `no sandbox in ${path.resolve(dir)} (no sandbox.json): start one with \`switchyard sandbox up --dir ${dir}\``);
  return JSON.parse(fs.readFileSync(file, 'utf8')) as SandboxFile;
}

/**
 * `up` needs an empty or missing directory. For a sandbox left behind, the hint is to
 * take it down; for anything else, to choose another directory (never to delete it).
 */
export function assertDirUsable(abs: string, given: string): void {
  if (!fs.existsSync(abs)) return;
  if (!fs.statSync(abs).isDirectory()) throw new HarnessError('DIR_EXISTS', `${abs} exists and is not a directory: choose another --dir`);
  if (fs.readdirSync(abs).length === 0) return;
  if (sandboxIdentity(abs).ok) throw new HarnessError('DIR_EXISTS', `${abs} already holds a sandbox: run \`switchyard sandbox down --dir ${given}\` or choose another --dir`);
  throw new HarnessError('DIR_EXISTS', `${abs} already exists and is not empty (and is not a sandbox): choose another --dir`);
}
