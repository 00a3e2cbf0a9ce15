/** Test helpers for the Redis engine: managed redis-server nodes on free loopback ports. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { RedisConn, type Reply } from '../../src/engines/redis/conn.js';
import { RedisProcess } from '../../src/engines/redis/process.js';
import { freePorts } from '../../src/sandbox/ports.js';

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export interface TestNodes {
  root: string;
  nodes: RedisProcess[];
  /** kill every node and remove the directory */
  cleanup(): Promise<void>;
}

/** n nodes (not started), each in its own directory under a temp root. */
export async function makeNodes(n: number, opts: { appendonly?: boolean } = {}): Promise<TestNodes> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'sy-redis-'));
  const ports = await freePorts(n);
  const nodes = ports.map((port, i) => new RedisProcess({ host: '127.0.0.1', port, dir: path.join(root, `r${i + 1}`), appendonly: opts.appendonly ?? false }));
  return {
    root,
    nodes,
    async cleanup() {
      for (const node of nodes) {
        node.signal('SIGCONT');
        await node.kill();
      }
      fs.rmSync(root, { recursive: true, force: true });
    },
  };
}

/** Start nodes[0] as master and the rest as its replicas; wait until all are linked. */
export async function startReplicated(t: TestNodes): Promise<void> {
  const [m, ...rs] = t.nodes;
  await m!.start(null);
  await Promise.all(rs.map((r) => r.start({ host: m!.spec.host, port: m!.spec.port })));
  await waitFor(async () => {
    const info = await call(m!, 'INFO', 'replication');
    return String(info).includes(`connected_slaves:${rs.length}`) && !/state=(wait_bgsave|send_bulk)/.test(String(info));
  }, 30_000, 'replicas to link');
}

export async function call(node: RedisProcess, ...args: Array<string | number>): Promise<Reply> {
  const c = await RedisConn.connect(node.spec, 2_000);
  try {
    return await c.call(...args);
  } finally {
    c.close();
  }
}

export async function waitFor(cond: () => Promise<boolean> | boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await cond()) return;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(25);
  }
}
