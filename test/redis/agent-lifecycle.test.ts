/**
 * The agent daemon as a process (the built CLI), managing a real redis-server:
 * SIGHUP reloads the live settings (the probe interval takes effect at once) and names
 * those that need a restart, refuses an invalid file and keeps running; SIGTERM drains:
 * the job in hand is finished and reported, a queued job stays for the next agent, the
 * node is stopped, exit 0.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keys } from '../../src/bus/keys.js';
import { freePorts } from '../../src/sandbox/ports.js';
import { RedisServer } from '../../src/sandbox/redis.js';
import { waitFor } from '../support/sandbox.js';

const built = path.resolve(import.meta.dirname, '../../dist/src/cli/main.js');
const k = keys('life');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('agent process (redis node): SIGHUP and SIGTERM', () => {
  let dir: string;
  let coord: RedisServer;
  let store: Redis;
  let child: ChildProcess | null = null;
  let exit: Promise<number | null>;
  const lines: Array<Record<string, unknown>> = [];
  let cfgFile: string;
  let nodePort = 0;

  const config = (probeIntervalMs: number, fenceAfterMs: number): string =>
    JSON.stringify({ cluster: 'life', node: 'n1', engine: 'redis', redis: coord.url, host: '127.0.0.1', port: nodePort, dataDir: path.join(dir, 'n1'), redisServer: { appendonly: true }, probeIntervalMs, fenceAfterMs, logLevel: 'info' });

  /** observations n1 appended during `ms` */
  async function obsDuring(ms: number): Promise<number> {
    const count = async (): Promise<number> => {
      const entries = (await store.xrange(k.obs, '-', '+')) as Array<[string, string[]]>;
      return entries.filter(([, f]) => (JSON.parse(f[1]!) as { type: string; node: string }).type === 'obs').length;
    };
    const a = await count();
    await sleep(ms);
    return (await count()) - a;
  }

  beforeAll(async () => {
    expect(fs.existsSync(built), 'run npm run build first').toBe(true);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sy-agent-life-'));
    coord = await RedisServer.start(path.join(dir, 'coord'));
    store = new Redis(coord.url);
    store.on('error', () => {});
    [nodePort] = (await freePorts(1)) as [number];
    cfgFile = path.join(dir, 'agent.json');
    fs.writeFileSync(cfgFile, config(1000, 4000));
    child = spawn(process.execPath, [built, 'agent', '--config', cfgFile], { stdio: ['ignore', 'pipe', 'pipe'] });
    // 'close', not 'exit': the agent's last log lines (read below) have arrived by then
    exit = new Promise((resolve) => child!.once('close', (code) => resolve(code)));
    let buf = '';
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        try {
          lines.push(JSON.parse(line) as Record<string, unknown>);
        } catch {
          // not a log line
        }
      }
    });
    await waitFor('agent started', async () => lines.some((l) => l.msg === 'agent started'), 30_000);
  }, 60_000);

  afterAll(async () => {
    if (child && child.exitCode === null) child.kill('SIGKILL');
    // the agent's redis-server, if the agent was killed before it could stop it
    const pidFile = path.join(dir, 'n1', `redis-${nodePort}.pid`);
    if (fs.existsSync(pidFile)) {
      try {
        process.kill(Number(fs.readFileSync(pidFile, 'utf8').trim()), 'SIGKILL');
      } catch {
        // gone
      }
    }
    store?.disconnect();
    await coord?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }, 30_000);

  it('starts its redis-server as a master, as its redisServer config says, and reports it with its replication history', async () => {
    await waitFor('an observation of n1 as primary', async () => {
      const entries = (await store.xrange(k.obs, '-', '+')) as Array<[string, string[]]>;
      return entries.some(([, f]) => {
        const o = JSON.parse(f[1]!) as { type: string; role?: string; reachable?: boolean; history?: string };
        return o.type === 'obs' && o.role === 'primary' && o.reachable === true && /^[0-9a-f]{40}$/.test(o.history ?? '');
      });
    });
    const node = new Redis({ host: '127.0.0.1', port: nodePort, lazyConnect: true, maxRetriesPerRequest: 0 });
    node.on('error', () => {});
    try {
      expect(await node.config('GET', 'appendonly')).toEqual(['appendonly', 'yes']);
    } finally {
      node.disconnect();
    }
  });

  it('SIGHUP applies probeIntervalMs at once and names fenceAfterMs as needing a restart', async () => {
    const before = await obsDuring(2_000);
    expect(before).toBeLessThanOrEqual(4);
    fs.writeFileSync(cfgFile, config(50, 5000));
    child!.kill('SIGHUP');
    const line = await waitFor('reloaded', async () => lines.find((l) => typeof l.msg === 'string' && l.msg.startsWith('reloaded')), 10_000);
    expect(JSON.stringify(line.applied)).toContain('probeIntervalMs');
    expect(JSON.stringify(line.needRestart)).toContain('fenceAfterMs');
    expect(await obsDuring(2_000)).toBeGreaterThanOrEqual(8);
  });

  it('SIGHUP with an invalid file keeps the running configuration', async () => {
    fs.writeFileSync(cfgFile, JSON.stringify({ cluster: 'life', node: 'n1', engine: 'redis', redis: coord.url, port: 'soon' }));
    child!.kill('SIGHUP');
    await waitFor('reload refused', async () => lines.some((l) => typeof l.msg === 'string' && l.msg.startsWith('reload refused')), 10_000);
    expect(child!.exitCode).toBeNull();
    expect(await obsDuring(2_000)).toBeGreaterThanOrEqual(8);
  });

  it('SIGTERM drains: the job in hand is finished and reported, a queued one stays for the next agent, exit 0', async () => {
    const pid = Number(fs.readFileSync(path.join(dir, 'n1', `redis-${nodePort}.pid`), 'utf8').trim());
    const qconn = new Redis(coord.url, { maxRetriesPerRequest: null });
    qconn.on('error', () => {});
    const queue = new Queue('n1', { connection: qconn, prefix: k.queuePrefix });
    try {
      // the job in hand takes ~2 s: its server is frozen, so the action waits for its timeout
      process.kill(pid, 'SIGSTOP');
      await queue.add('sync', { epoch: 0, operationId: 'drain-1', action: 'sync', node: 'n1', sync: { names: ['n2'], count: 1 } }, { jobId: 'drain-1' });
      await waitFor('the job in hand', async () => lines.some((l) => l.msg === 'job received' && l.jobId === 'drain-1'), 10_000, 10);
      await queue.add('unfence', { epoch: 0, operationId: 'drain-2', action: 'unfence', node: 'n1' }, { jobId: 'drain-2' });
      const t0 = Date.now();
      child!.kill('SIGTERM');
      expect(await exit).toBe(0);
      const tookMs = Date.now() - t0;
      // it waited for the job in hand, which reported its outcome before the agent left
      expect(lines.some((l) => l.msg === 'job refused or failed' && l.jobId === 'drain-1') || lines.some((l) => l.msg === 'job done' && l.jobId === 'drain-1')).toBe(true);
      const results = ((await store.xrange(k.obs, '-', '+')) as Array<[string, string[]]>).map(([, f]) => JSON.parse(f[1]!) as { type: string; jobId?: string; operationId?: string });
      expect(results.some((r) => r.type === 'job.result' && r.operationId === 'drain-1')).toBe(true);
      expect(await (await queue.getJob('drain-1'))?.getState()).not.toBe('active');
      // the queued job is left for the next agent
      expect(results.some((r) => r.type === 'job.result' && r.operationId === 'drain-2')).toBe(false);
      expect(await (await queue.getJob('drain-2'))?.getState()).toBe('waiting');
      expect(lines.some((l) => l.msg === 'job received' && l.jobId === 'drain-2')).toBe(false);
      console.log(`agent SIGTERM → exit 0 in ${tookMs} ms, after finishing the job in hand`);
      // and it stopped its node
      await waitFor('redis-server stopped', async () => {
        try {
          process.kill(pid, 0);
          return false;
        } catch {
          return true;
        }
      }, 10_000);
    } finally {
      await queue.close();
      qconn.disconnect();
    }
  }, 60_000);
});
