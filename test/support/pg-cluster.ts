/**
 * Test-only: a primary plus N streaming replicas on loopback, all children of the test
 * process, built with the sandbox's arrangement (initPrimary) and the engine's process
 * control. With `password`, every connection (replication included) uses scram-sha-256.
 */
import type { ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Client } from 'pg';
import { SwitchyardError } from '../../src/errors.js';
import { cloneReplica } from '../../src/engines/postgres/clone.js';
import { ensureTraversable } from '../../src/engines/postgres/owner.js';
import { defaultLogFile, spawnPostgres, stopPostgres, waitReady } from '../../src/engines/postgres/process.js';
import type { Connection, StopMode } from '../../src/engines/types.js';
import { isProcessAlive } from '../../src/os/process.js';
import { assertPortFree, freePorts } from '../../src/sandbox/ports.js';
import { initPrimary } from '../../src/sandbox/postgres.js';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

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
  /** the postgres user's password: scram-sha-256 for every connection, replication included */
  password?: string;
}

/**
 * A primary plus N streaming replicas under `baseDir` (`<baseDir>/<id>` data
 * dirs, `<baseDir>/<id>.log` logs), all children of this process.
 */
export class PgCluster {
  readonly baseDir: string;
  readonly nodes: PgNode[] = [];
  private readonly readyTimeoutMs: number;
  readonly password: string | undefined;

  private constructor(baseDir: string, readyTimeoutMs: number, password: string | undefined) {
    this.baseDir = baseDir;
    this.readyTimeoutMs = readyTimeoutMs;
    this.password = password;
  }

  /** The connection to a node as the postgres user (with the password when there is one). */
  connection(id: string): Connection {
    const n = this.node(id);
    return { host: n.host, port: n.port, user: 'postgres', password: this.password, database: 'postgres' };
  }

  static async create(opts: PgClusterOptions): Promise<PgCluster> {
    const total = opts.replicas + 1;
    const names = opts.names ?? Array.from({ length: total }, (_, i) => `pg${i + 1}`);
    if (names.length !== total || new Set(names).size !== total) {
      throw new SwitchyardError('INVALID_OPTIONS', `need ${total} distinct node names, got ${names.join(', ')}`);
    }
    if (opts.ports && opts.ports.length !== total) {
      throw new SwitchyardError('INVALID_OPTIONS', `need ${total} ports, got ${opts.ports.length}`);
    }
    const baseDir = path.resolve(opts.baseDir);
    fs.mkdirSync(baseDir, { recursive: true });
    ensureTraversable(baseDir);
    const ports = opts.ports ?? (await freePorts(total));
    for (let i = 0; i < total; i++) await assertPortFree(ports[i]!, names[i]!);

    const cluster = new PgCluster(baseDir, opts.readyTimeoutMs ?? 60_000, opts.password);
    try {
      const [primaryName, ...replicaNames] = names as [string, ...string[]];
      const primaryDir = path.join(baseDir, primaryName);
      await initPrimary({ dataDir: primaryDir, port: ports[0]!, ...(opts.password !== undefined ? { password: opts.password } : {}) });
      await cluster.launch(primaryName, 'primary', primaryDir, ports[0]!);
      const primary = cluster.nodes[0]!;

      for (let i = 0; i < replicaNames.length; i++) {
        const id = replicaNames[i]!;
        const dataDir = path.join(baseDir, id);
        await cloneReplica({ source: cluster.connection(primary.id), dataDir, port: ports[i + 1]!, appName: id });
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
    await waitReady(this.connection(id), { timeoutMs: this.readyTimeoutMs, child, logFile, dataDir });
  }

  get primary(): PgNode {
    return this.nodes.find((n) => n.role === 'primary') ?? this.nodes[0]!;
  }

  get replicas(): PgNode[] {
    return this.nodes.filter((n) => n !== this.primary);
  }

  node(id: string): PgNode {
    const n = this.nodes.find((x) => x.id === id);
    if (!n) throw new SwitchyardError('UNKNOWN_NODE', `no node ${id} in this cluster`);
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
      const client = new Client({ ...this.connection(primary.id), connectionTimeoutMillis: 2_000 });
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
        throw new SwitchyardError(
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
    await waitReady(this.connection(id), { timeoutMs: this.readyTimeoutMs, child: n.child, logFile: n.logFile, dataDir: n.dataDir });
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
