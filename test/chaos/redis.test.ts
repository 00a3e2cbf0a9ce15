/**
 * Chaos on a Redis sandbox (`sandbox --engine redis`), under a writer that follows the
 * routing table and counts a write once `WAIT 1` says a replica has it:
 *
 *   - 2 s SIGSTOP of the master's server, of its agent, of the leader coordinator, of the
 *     coordination Redis: no failover, the same master, the writer carries on, nothing lost;
 *   - kill -9 of the master's server, and host loss (its server and its agent at once): a
 *     failover, never two masters taking writes, the writer carries on, nothing
 *     acknowledged lost.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SandboxFile } from '../../src/sandbox/deploy.js';
import { routing, startSandbox, stopSandbox, waitFor } from '../support/sandbox.js';
import { cmd, serverPid, settled, sleep, watchMasters, type Node } from '../redis/sandbox-support.js';

/** failAfterMs (5 s) plus slack: a wrong failover would have been journaled by then. */
const WINDOW_MS = 7_000;

interface Writer {
  acked: string[];
  errors: number;
  stop(): Promise<void>;
}

function startWriter(file: SandboxFile, key: string): Writer {
  const w = { acked: [] as string[], errors: 0, stopped: false };
  const loop = (async () => {
    let conn = null as { id: string; c: Redis } | null;
    for (let i = 0; !w.stopped; i++) {
      try {
        const p = (await routing(file.api, file.cluster)).primary;
        if (!p) throw new Error('no primary');
        if (conn?.id !== p.id) {
          conn?.c.disconnect();
          const c = new Redis({ host: p.host, port: p.port, lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false, connectTimeout: 500, commandTimeout: 3_000, retryStrategy: () => null });
          c.on('error', () => {});
          await c.connect();
          conn = { id: p.id, c };
        }
        await conn.c.rpush(key, `w${i}`);
        if ((await conn.c.wait(1, 500)) >= 1) w.acked.push(`w${i}`);
      } catch {
        w.errors++;
        conn?.c.disconnect();
        conn = null;
        await sleep(20);
      }
    }
    conn?.c.disconnect();
  })();
  return {
    acked: w.acked,
    get errors() {
      return w.errors;
    },
    async stop() {
      w.stopped = true;
      await loop;
    },
  };
}

async function failoversStarted(file: SandboxFile): Promise<number> {
  const r = (await (await fetch(`${file.api}/v1/clusters/${file.cluster}/events?type=failover.started&limit=1000`)).json()) as { events: unknown[] };
  return r.events.length;
}

async function progress(w: Writer, n: number, timeoutMs = 30_000): Promise<void> {
  const at = w.acked.length;
  await waitFor(`${n} more writes acknowledged`, async () => w.acked.length >= at + n, timeoutMs, 20);
}

/** Every acknowledged write is on `node` (the master at the end). */
async function lostOn(node: Node, key: string, w: Writer): Promise<string[]> {
  const have = new Set((await cmd(node.port, 'LRANGE', key, 0, -1)) as string[]);
  return w.acked.filter((x) => !have.has(x));
}

async function leaderPid(file: SandboxFile): Promise<number> {
  const list = (await (await fetch(`${file.api}/v1/clusters`)).json()) as Array<{ leader: string | null }>;
  const id = list[0]?.leader ?? null;
  const c = file.coordinators.find((x) => x.id === id);
  if (!c) throw new Error(`no leader among ${file.coordinators.map((x) => x.id).join(', ')}`);
  return c.pid;
}

describe('chaos: redis', () => {
  let s: Awaited<ReturnType<typeof startSandbox>> | undefined;
  let file: SandboxFile;

  beforeAll(async () => {
    s = await startSandbox({ engine: 'redis', cluster: 'cache', settings: { cooldownMs: 0 } });
    file = s.file;
  }, 180_000);

  afterAll(async () => {
    await stopSandbox(s);
  }, 90_000);

  const pauses: Array<[string, (master: Node) => Promise<number>]> = [
    ['the master server', async (m) => serverPid(m)],
    ["the master's agent", async (m) => m.agentPid],
    ['the leader coordinator', () => leaderPid(file)],
    ['the coordination Redis', async () => file.redisPid],
  ];

  for (const [what, pidOf] of pauses) {
    it(`2 s SIGSTOP of ${what}: no failover, same master, writer carries on, nothing lost`, async () => {
      const master = await settled(file, null);
      const key = `chaos:${what.replace(/\W+/g, '-')}`;
      const w = startWriter(file, key);
      await progress(w, 30);
      const before = await failoversStarted(file);
      const pid = await pidOf(master);
      // writable masters sampled through the fault and the window after it (the goal: never two)
      const watch = watchMasters(file.nodes);
      process.kill(pid, 'SIGSTOP');
      await sleep(2_000);
      process.kill(pid, 'SIGCONT');
      await progress(w, 30);
      await sleep(WINDOW_MS);
      await progress(w, 10);
      await w.stop();
      const seen = await watch.stop();
      expect(seen.samples).toBeGreaterThan(2);
      expect(seen.maxWritable, seen.seen.join('; ')).toBeLessThanOrEqual(1);
      expect(await failoversStarted(file)).toBe(before);
      expect((await routing(file.api, file.cluster)).primary?.id).toBe(master.id);
      expect(await lostOn(master, key, w)).toEqual([]);
    }, 120_000);
  }

  const kills: Array<[string, (master: Node) => void]> = [
    ['kill -9 of the master server', (m) => process.kill(serverPid(m), 'SIGKILL')],
    [
      'host loss (the master server and its agent at once)',
      (m) => {
        process.kill(m.agentPid, 'SIGKILL');
        process.kill(serverPid(m), 'SIGKILL');
      },
    ],
  ];

  for (const [what, kill] of kills) {
    it(`${what}: a failover, never two writable masters, writer carries on, no acknowledged write lost`, async () => {
      const master = await settled(file, null);
      const key = `chaos:${what.replace(/\W+/g, '-')}`;
      const w = startWriter(file, key);
      await progress(w, 30);
      const before = await failoversStarted(file);
      const watch = watchMasters(file.nodes);
      kill(master);
      const t0 = Date.now();
      await progress(w, 30);
      console.log(`[redis chaos] ${what}: writes acknowledged again ${Date.now() - t0} ms after`);
      const now = await waitFor('a new master in the routing table', async () => {
        const t = await routing(file.api, file.cluster);
        return t.writable && t.primary && t.primary.id !== master.id ? file.nodes.find((n) => n.id === t.primary!.id) : null;
      });
      await progress(w, 20);
      await w.stop();
      const seen = await watch.stop();
      expect(seen.maxWritable, seen.seen.join('; ')).toBeLessThanOrEqual(1);
      expect(await failoversStarted(file)).toBe(before + 1);
      expect(await lostOn(now, key, w)).toEqual([]);
    }, 120_000);
  }
});
