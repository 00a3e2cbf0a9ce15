/**
 * The `redis` bench section: a Redis sandbox (a master and two replicas, each with its
 * agent; two coordinators; the coordination Redis apart), measured through the whole
 * system:
 *
 *   - kill -9 of the master's redis-server → the first SET a new master accepts
 *     (median and max over the trials), and whether two masters ever took writes at once;
 *   - a switchover under a writer that follows the routing table: longest write gap, writes lost;
 *   - 2 s SIGSTOP of the master, its agent, the leader coordinator, the coordination Redis → failovers;
 *   - beside it, Redis Sentinel from the same binary (`redis-server --sentinel`, three
 *     sentinels, quorum 2, down-after-milliseconds 1000, its most aggressive usual setting)
 *     on three plain nodes: kill -9 of the master → the first SET a new master accepts,
 *     and a 2 s SIGSTOP of the master → failovers.
 *
 * During every fault (each kill, switchover and pause, for both) the nodes are sampled
 * every 20 ms: how many take writes at once (ROLE master, and a SET when more than one
 * says so); the most seen is reported for each.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Redis } from 'ioredis';
import { Sandbox, type SandboxFile } from '../src/sandbox/deploy.js';
import { findRedisServerBinary, RedisProcess } from '../src/engines/redis/process.js';
import { freePorts } from '../src/sandbox/ports.js';
import type { RoutingTable } from '../src/core/routing.js';
import { apiBase } from './failover.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface RedisBench {
  kill: { trials: number; p50Ms: number | null; maxMs: number | null; samplesMs: number[]; maxWritableMasters: number };
  switchover: { trials: number; maxGapMs: number | null; gapsMs: number[]; acked: number; lost: number; maxWritableMasters: number } | null;
  pauses: { pauseMs: number; failovers: Record<string, number>; maxWritableMasters: number } | null;
  /** Redis Sentinel, same machine, same run */
  sentinel: {
    trials: number;
    downAfterMs: number;
    p50Ms: number | null;
    maxMs: number | null;
    samplesMs: number[];
    /** during its kills */
    maxWritableMasters: number;
    /** a 2 s SIGSTOP of its master: failovers, and writable masters at once from the pause to 12 s after it */
    pause: { pauseMs: number; failovers: number; maxWritableMasters: number } | null;
  } | null;
  /** the most writable masters seen at once during any fault */
  maxWritableMasters: { switchyard: number; sentinel: number | null };
}

async function table(file: SandboxFile): Promise<RoutingTable | null> {
  try {
    const r = await fetch(`${file.api}/v1/clusters/${file.cluster}/routing`, { signal: AbortSignal.timeout(1000) });
    return r.ok ? ((await r.json()) as RoutingTable) : null;
  } catch {
    return null;
  }
}

/** One command over a fresh connection; null when the node does not answer within `ms`. */
async function cmd(port: number, ms: number, ...args: Array<string | number>): Promise<unknown> {
  const c = new Redis({ host: '127.0.0.1', port, lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false, connectTimeout: ms, commandTimeout: ms, retryStrategy: () => null });
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

async function settled(file: SandboxFile, not: string | null, limitMs = 60_000): Promise<SandboxFile['nodes'][number]> {
  const until = Date.now() + limitMs;
  while (Date.now() < until) {
    const t = await table(file);
    if (t?.writable && t.primary && t.primary.id !== not && t.replicas.filter((r) => r.healthy).length === file.nodes.length - 1) return file.nodes.find((n) => n.id === t.primary!.id)!;
    await sleep(50);
  }
  throw new Error(`the redis sandbox did not settle within ${limitMs} ms`);
}

function median(xs: number[]): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)]!;
}

const serverPid = (n: SandboxFile['nodes'][number]): number => Number(fs.readFileSync(n.pidFile!, 'utf8').trim());
const ports = (file: SandboxFile): number[] => file.nodes.map((n) => n.port);

/** ms from `t0` to the first SET one of the nodes accepts; null after `limitMs`. */
async function firstSet(nodePorts: number[], t0: number, limitMs: number, i: number): Promise<number | null> {
  while (performance.now() - t0 < limitMs) {
    const r = await Promise.all(nodePorts.map((p) => cmd(p, 100, 'SET', 'sy:bench:after', i)));
    if (r.includes('OK')) return Math.round(performance.now() - t0);
    await sleep(5);
  }
  return null;
}

/** How many of the nodes take a write right now (a fenced master holds writes back, a stopped one does not answer: not writable). */
async function writableMasters(ports: number[]): Promise<number> {
  const roles = await Promise.all(ports.map(async (p) => ((await cmd(p, 200, 'ROLE')) as unknown[] | null)?.[0]));
  const masters = ports.filter((_, i) => roles[i] === 'master');
  if (masters.length <= 1) return masters.length;
  const ok = await Promise.all(masters.map(async (p) => (await cmd(p, 150, 'SET', 'sy:bench:probe', Date.now())) === 'OK'));
  return ok.filter(Boolean).length;
}

/** Run `fault` while sampling every 20 ms how many of the nodes take writes at once; the most seen. */
async function sampled<T>(ports: number[], fault: () => Promise<T>): Promise<{ result: T; maxWritable: number }> {
  let on = true;
  let max = 0;
  const watch = (async () => {
    while (on) {
      max = Math.max(max, await writableMasters(ports));
      await sleep(20);
    }
  })();
  let result: T;
  try {
    result = await fault();
  } finally {
    on = false;
    await watch;
  }
  return { result, maxWritable: max };
}

async function killTrials(file: SandboxFile, trials: number): Promise<RedisBench['kill']> {
  const samples: number[] = [];
  let maxWritable = 0;
  for (let i = 0; i < trials; i++) {
    const old = await settled(file, null);
    await sleep(500);
    const others = file.nodes.filter((n) => n.id !== old.id);
    const { result: ms, maxWritable: seen } = await sampled(ports(file), async () => {
      const t0 = performance.now();
      process.kill(serverPid(old), 'SIGKILL');
      const ms = await firstSet(others.map((n) => n.port), t0, 30_000, i);
      if (ms === null) throw new Error(`trial ${i + 1}: no SET accepted within 30 s of the kill`);
      await settled(file, old.id);
      return ms;
    });
    maxWritable = Math.max(maxWritable, seen);
    samples.push(ms);
    console.log(`  trial ${i + 1}: kill -9 of ${old.id} → SET accepted in ${ms} ms; writable masters at once ≤ ${seen}`);
  }
  return { trials, p50Ms: median(samples), maxMs: samples.length ? Math.max(...samples) : null, samplesMs: samples, maxWritableMasters: maxWritable };
}

async function switchoverTrials(file: SandboxFile, trials: number): Promise<NonNullable<RedisBench['switchover']>> {
  const gaps: number[] = [];
  let acked = 0;
  let lost = 0;
  let maxWritable = 0;
  for (let i = 0; i < trials; i++) {
    const from = await settled(file, null);
    const to = file.nodes.find((n) => n.id !== from.id)!;
    const key = `sy:bench:so${i}`;
    const ok: string[] = [];
    let stop = false;
    let last = performance.now();
    let gap = 0;
    const writer = (async () => {
      let conn = null as { id: string; c: Redis } | null;
      for (let j = 0; !stop; j++) {
        try {
          const p = (await table(file))?.primary;
          if (!p) throw new Error('no primary');
          if (conn?.id !== p.id) {
            conn?.c.disconnect();
            const c = new Redis({ host: p.host, port: p.port, lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false, connectTimeout: 500, commandTimeout: 1000, retryStrategy: () => null });
            c.on('error', () => {});
            await c.connect();
            conn = { id: p.id, c };
          }
          await conn.c.rpush(key, `w${j}`);
          ok.push(`w${j}`);
          const now = performance.now();
          gap = Math.max(gap, now - last);
          last = now;
        } catch {
          await sleep(5);
        }
      }
      conn?.c.disconnect();
    })();
    while (ok.length < 50) await sleep(10);
    gap = 0;
    const { maxWritable: seen } = await sampled(ports(file), async () => {
      const res = await fetch(`${file.api}/v1/clusters/${file.cluster}/switchover`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${file.adminToken}` },
        body: JSON.stringify({ to: to.id }),
      });
      if (res.status !== 202) throw new Error(`switchover request answered ${res.status}`);
      await settled(file, from.id);
    });
    maxWritable = Math.max(maxWritable, seen);
    const at = ok.length;
    while (ok.length < at + 50) await sleep(10);
    stop = true;
    await writer;
    const have = new Set((await cmd(to.port, 2000, 'LRANGE', key, 0, -1)) as string[]);
    const l = ok.filter((x) => !have.has(x)).length;
    gaps.push(Math.round(gap));
    acked += ok.length;
    lost += l;
    console.log(`  switchover ${i + 1}: ${from.id} → ${to.id}, longest write gap ${Math.round(gap)} ms, ${l} of ${ok.length} lost; writable masters at once ≤ ${seen}`);
  }
  return { trials, maxGapMs: gaps.length ? Math.max(...gaps) : null, gapsMs: gaps, acked, lost, maxWritableMasters: maxWritable };
}

async function pauses(file: SandboxFile): Promise<NonNullable<RedisBench['pauses']>> {
  const failovers: Record<string, number> = {};
  let maxWritable = 0;
  const started = async (): Promise<number> => {
    const r = (await (await fetch(`${file.api}/v1/clusters/${file.cluster}/events?type=failover.started&limit=1000`)).json()) as { events: unknown[] };
    return r.events.length;
  };
  const parts: Array<[string, () => Promise<number[]>]> = [
    ['master server', async () => [serverPid(await settled(file, null))]],
    ['master agent', async () => [(await settled(file, null)).agentPid]],
    [
      'leader coordinator',
      async () => {
        const list = (await (await fetch(`${file.api}/v1/clusters`)).json()) as Array<{ leader: string | null }>;
        return [file.coordinators.find((c) => c.id === (list[0]?.leader ?? 'c1'))!.pid];
      },
    ],
    ['coordination redis', async () => [file.redisPid]],
  ];
  for (const [name, pids] of parts) {
    const victims = await pids();
    const before = await started();
    const { maxWritable: seen } = await sampled(ports(file), async () => {
      for (const p of victims) process.kill(p, 'SIGSTOP');
      await sleep(2000);
      for (const p of victims) process.kill(p, 'SIGCONT');
      await sleep(8000);
    });
    maxWritable = Math.max(maxWritable, seen);
    failovers[name] = (await started()) - before;
    console.log(`  ${name} paused 2 s: ${failovers[name]} failovers; writable masters at once ≤ ${seen}`);
  }
  return { pauseMs: 2000, failovers, maxWritableMasters: maxWritable };
}

/** Sentinel beside switchyard: 3 plain nodes, 3 sentinels (quorum 2, down-after 1000 ms), kill -9 of the master → SET accepted. */
async function benchSentinel(trials: number): Promise<NonNullable<RedisBench['sentinel']>> {
  const downAfterMs = 1000;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sy-bench-sentinel-'));
  const ports = await freePorts(6);
  const nodes = ports.slice(0, 3).map((port, i) => new RedisProcess({ host: '127.0.0.1', port, dir: path.join(dir, `n${i + 1}`) }));
  const nodePorts = ports.slice(0, 3);
  const sentinels: ChildProcess[] = [];
  const samples: number[] = [];
  let maxWritable = 0;
  let pause: NonNullable<RedisBench['sentinel']>['pause'] = null;
  const masterAddr = async (): Promise<number | null> => {
    const r = (await cmd(ports[3]!, 500, 'SENTINEL', 'get-master-addr-by-name', 'bench')) as string[] | null;
    return r ? Number(r[1]) : null;
  };
  // settled: every sentinel knows the master and its two replicas, and each other
  const settledSentinel = async (i: number): Promise<number> => {
    for (const until = Date.now() + 60_000; ; ) {
      const m = await masterAddr();
      const replicas = m ? ((await cmd(ports[3]!, 500, 'SENTINEL', 'replicas', 'bench')) as unknown[][] | null) : null;
      const up = (replicas ?? []).filter((r) => !String(r[r.indexOf('flags') + 1]).includes('down')).length;
      const others = m ? ((await cmd(ports[3]!, 500, 'SENTINEL', 'sentinels', 'bench')) as unknown[] | null) : null;
      if (m && up === 2 && (others?.length ?? 0) === 2 && (await cmd(m, 300, 'SET', 'sy:bench:ok', i)) === 'OK') return m;
      if (Date.now() > until) throw new Error('sentinel did not settle within 60 s');
      await sleep(200);
    }
  };
  try {
    await nodes[0]!.start(null);
    for (const n of nodes.slice(1)) await n.start({ host: '127.0.0.1', port: ports[0]! });
    for (const [i, port] of ports.slice(3).entries()) {
      const sdir = path.join(dir, `s${i + 1}`);
      fs.mkdirSync(sdir, { recursive: true });
      const conf = path.join(sdir, 'sentinel.conf');
      fs.writeFileSync(conf, [`port ${port}`, 'bind 127.0.0.1', `dir ${sdir}`, `sentinel monitor bench 127.0.0.1 ${ports[0]} 2`, `sentinel down-after-milliseconds bench ${downAfterMs}`, 'sentinel failover-timeout bench 10000', 'sentinel parallel-syncs bench 2', ''].join('\n'));
      const log = fs.openSync(path.join(sdir, 'sentinel.log'), 'a');
      sentinels.push(spawn(findRedisServerBinary(), [conf, '--sentinel'], { cwd: sdir, stdio: ['ignore', log, log] }));
      fs.closeSync(log);
    }
    for (let i = 0; i < trials; i++) {
      await settledSentinel(i);
      await sleep(1_000);
      const mport = (await masterAddr())!;
      const victim = nodes.find((n) => n.spec.port === mport)!;
      const others = nodes.filter((n) => n !== victim);
      const { result: ms, maxWritable: seen } = await sampled(nodePorts, async () => {
        const t0 = performance.now();
        await victim.kill();
        const ms = await firstSet(others.map((n) => n.spec.port), t0, 60_000, i);
        if (ms === null) throw new Error(`sentinel trial ${i + 1}: no SET accepted within 60 s`);
        // the old master comes back as a replica of the new one (Sentinel would reconfigure it anyway)
        let now: number | null = null;
        for (const until = Date.now() + 30_000; Date.now() < until; await sleep(50)) {
          now = await masterAddr();
          if (now !== null && now !== mport) break;
        }
        if (now === null || now === mport) throw new Error(`sentinel trial ${i + 1}: the sentinels still name :${mport} 30 s after its kill`);
        await victim.start({ host: '127.0.0.1', port: now });
        return ms;
      });
      maxWritable = Math.max(maxWritable, seen);
      samples.push(ms);
      console.log(`  sentinel trial ${i + 1}: kill -9 of :${mport} → SET accepted in ${ms} ms; writable masters at once ≤ ${seen}`);
    }
    // a 2 s SIGSTOP of the master: Sentinel (down-after 1 s) fails over, and the old master takes writes again when it resumes
    try {
      const before = await settledSentinel(trials);
      await sleep(1_000);
      const paused = nodes.find((n) => n.spec.port === before)!;
      const { maxWritable: seen } = await sampled(nodePorts, async () => {
        paused.signal('SIGSTOP');
        await sleep(2_000);
        paused.signal('SIGCONT');
        await sleep(12_000);
      });
      const after = await masterAddr();
      pause = { pauseMs: 2_000, failovers: after !== null && after !== before ? 1 : 0, maxWritableMasters: seen };
      console.log(`  sentinel: master paused 2 s: ${pause.failovers} failovers; writable masters at once ≤ ${seen}`);
    } catch (err) {
      console.log(`  sentinel pause: not measured (${(err as Error).message})`);
    }
  } finally {
    for (const n of nodes) n.signal('SIGCONT');
    for (const c of sentinels) c.kill('SIGKILL');
    await Promise.all(sentinels.map((c) => (c.exitCode === null && c.signalCode === null ? new Promise((r) => c.once('exit', r)) : Promise.resolve())));
    for (const n of nodes) await n.kill().catch(() => {});
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return { trials, downAfterMs, p50Ms: median(samples), maxMs: samples.length ? Math.max(...samples) : null, samplesMs: samples, maxWritableMasters: maxWritable, pause };
}

export async function benchRedis(trials: number): Promise<RedisBench> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sy-bench-redis-'));
  const sb = new Sandbox({ engine: 'redis', replicas: 2, sync: false, coordinators: 2, apiPort: await apiBase(), dir: path.join(dir, 'sb'), cluster: 'bench', settings: { cooldownMs: 0 } });
  try {
    await sb.up(() => {});
    const file = sb.file!;
    const kill = await killTrials(file, trials);
    const so = await switchoverTrials(file, Math.min(trials, 3));
    const p = await pauses(file);
    await sb.down();
    const sentinel = await benchSentinel(trials).catch((err: unknown) => {
      console.log(`  sentinel: not measured (${(err as Error).message})`);
      return null;
    });
    const sy = Math.max(kill.maxWritableMasters, so.maxWritableMasters, p.maxWritableMasters);
    return { kill, switchover: so, pauses: p, sentinel, maxWritableMasters: { switchyard: sy, sentinel: sentinel ? Math.max(sentinel.maxWritableMasters, sentinel.pause?.maxWritableMasters ?? 0) : null } };
  } finally {
    await sb.down();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
