/**
 * The sandbox's Redis arrangement (`sandbox up --engine redis`): a master and N
 * replicas on loopback, each managed by its agent (the agent starts redis-server as its
 * child, with the role the node's state file gives it). The coordination Redis stays a
 * separate server (deploy.ts starts it, as for PostgreSQL). The arrangement only writes
 * each node's start-up role, with the engine's own functions; the agents do the rest.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ManagedRedis } from '../engines/redis/engine.js';
import { pidFilePath } from '../engines/redis/process.js';
import { isProcessAlive, isProcessStopped, killAndWait } from './proc.js';

export interface RedisNodePlan {
  id: string;
  port: number;
  dataDir: string;
}

const quiet = { info: () => {}, warn: () => {}, error: () => {} };

/** Node ids of a Redis sandbox: r1 (the first master), r2, … */
export function redisNodeIds(count: number): string[] {
  return Array.from({ length: count }, (_, i) => `r${i + 1}`);
}

/**
 * Write each node's start-up role: the first starts as the master, the others as its
 * replicas (`--replicaof` from their first instant, so none is ever an empty master).
 */
export function arrangeRedisNodes(nodes: RedisNodePlan[], host = '127.0.0.1'): void {
  const [master, ...replicas] = nodes;
  if (!master) return;
  for (const n of nodes) fs.mkdirSync(n.dataDir, { recursive: true });
  for (const r of replicas) {
    const m = new ManagedRedis({ nodeId: r.id, dataDir: r.dataDir, connection: { host, port: r.port, user: 'default', database: '0' } }, quiet);
    m.writeStandbyConfig({ id: master.id, host, port: master.port });
  }
}

/** The pid file redis-server writes for a node (sandbox.json gives it, for chaos tests and operators). */
export function redisPidFile(n: Pick<RedisNodePlan, 'dataDir' | 'port'>): string {
  return pidFilePath({ dir: n.dataDir, port: n.port });
}

/** Kill any redis-server still running on a sandbox data directory (its agent was killed). */
export async function sweepRedisNodes(dir: string): Promise<void> {
  const dataRoot = path.join(dir, 'data');
  if (!fs.existsSync(dataRoot)) return;
  for (const name of fs.readdirSync(dataRoot)) {
    const nodeDir = path.join(dataRoot, name);
    let files: string[] = [];
    try {
      files = fs.readdirSync(nodeDir).filter((f) => /^redis-\d+\.pid$/.test(f));
    } catch {
      continue;
    }
    for (const f of files) {
      const pid = Number(fs.readFileSync(path.join(nodeDir, f), 'utf8').trim());
      if (!Number.isInteger(pid) || pid <= 1 || !isProcessAlive(pid)) continue;
      let cmd = '';
      try {
        cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      } catch {
        continue;
      }
      // only this directory's redis-server, never a stale pid naming another process
      if (!cmd.includes('redis-server')) continue;
      if (isProcessStopped(pid)) process.kill(pid, 'SIGCONT');
      await killAndWait(pid, 'SIGKILL', 5_000).catch(() => {});
    }
  }
}
