/**
 * Helpers for tests on a Redis sandbox (`sandbox --engine redis`): one-shot commands on a
 * node, the routing table settling, and a watch of how many masters take writes at once.
 */
import fs from 'node:fs';
import { Redis } from 'ioredis';
import type { SandboxFile } from '../../src/sandbox/deploy.js';
import { routing, waitFor } from '../support/sandbox.js';

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export type Node = SandboxFile['nodes'][number];

/**
 * A connected client of one node (no reconnect, no queue: a command fails when the node
 * does not answer within `commandTimeout`; give a blocking command such as WAIT more).
 */
export async function client(port: number, commandTimeout = 500): Promise<Redis> {
  // the connect gets at least 2 s: a first connection on a loaded host (a failed one throws here)
  const c = new Redis({ host: '127.0.0.1', port, lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false, connectTimeout: Math.max(commandTimeout, 2_000), commandTimeout, retryStrategy: () => null });
  c.on('error', () => {});
  await c.connect();
  return c;
}

/** One command on a node over a fresh connection; null when it does not answer within 300 ms (for polls). */
export async function cmd(port: number, ...args: Array<string | number>): Promise<unknown> {
  return cmdWithin(300, port, ...args);
}

/**
 * One command whose answer a test asserts on: null only when the node does not answer
 * within 5 s (a loaded host may take longer than a poll's 300 ms to connect and answer).
 */
export async function ask(port: number, ...args: Array<string | number>): Promise<unknown> {
  return cmdWithin(5_000, port, ...args);
}

async function cmdWithin(timeoutMs: number, port: number, ...args: Array<string | number>): Promise<unknown> {
  const c = new Redis({ host: '127.0.0.1', port, lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false, connectTimeout: timeoutMs, commandTimeout: timeoutMs, retryStrategy: () => null });
  c.on('error', () => {});
  try {
    await c.connect();
    return await c.call(String(args[0]), ...args.slice(1).map(String));
  } catch {
    return null;
  } finally {
    c.disconnect();
  }
}

export async function role(port: number): Promise<string | null> {
  const r = (await cmd(port, 'ROLE')) as unknown[] | null;
  return r ? String(r[0]) : null;
}

/**
 * Samples every node's ROLE all along a fault; a node answering `master` counts as
 * writable unless a write probe on it is held back (a fenced master pauses writes).
 * `maxWritable` is the most writable masters seen at one sample.
 */
export function watchMasters(nodes: Node[]): { stop: () => Promise<{ samples: number; maxWritable: number; seen: string[] }> } {
  let stopped = false;
  let samples = 0;
  let maxWritable = 0;
  const seen: string[] = [];
  const loop = (async () => {
    while (!stopped) {
      const roles = await Promise.all(nodes.map((n) => role(n.port)));
      const masters = nodes.filter((_, i) => roles[i] === 'master');
      let writable = masters.length;
      if (masters.length > 1) {
        // more than one says master: which of them takes a write within 150 ms?
        const ok = await Promise.all(masters.map(async (m) => {
          const c = new Redis({ host: '127.0.0.1', port: m.port, lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false, connectTimeout: 300, commandTimeout: 150, retryStrategy: () => null });
          c.on('error', () => {});
          try {
            await c.connect();
            return (await c.set('sy:test:probe', String(Date.now()))) === 'OK';
          } catch {
            return false;
          } finally {
            c.disconnect();
          }
        }));
        writable = ok.filter(Boolean).length;
        seen.push(`${masters.map((m) => m.id).join('+')} say master, ${writable} writable`);
      }
      maxWritable = Math.max(maxWritable, writable);
      samples++;
      await sleep(20);
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
      return { samples, maxWritable, seen };
    },
  };
}

export function serverPid(n: Node): number {
  return Number(fs.readFileSync(n.pidFile!, 'utf8').trim());
}

export async function primaryOf(file: SandboxFile): Promise<Node> {
  const t = await waitFor('a primary in the routing table', async () => (await routing(file.api, file.cluster)).primary, 30_000, 50);
  return file.nodes.find((n) => n.id === t.id)!;
}

/** The routing table shows `count` healthy replicas and a primary other than `not`. */
export async function settled(file: SandboxFile, not: string | null, timeoutMs = 30_000): Promise<Node> {
  const t = await waitFor(
    'a new primary and every replica healthy',
    async () => {
      const r = await routing(file.api, file.cluster);
      return r.primary && r.primary.id !== not && r.writable && r.replicas.filter((x) => x.healthy).length === file.nodes.length - 1 ? r : null;
    },
    timeoutMs,
    50,
  );
  return file.nodes.find((n) => n.id === t.primary!.id)!;
}
