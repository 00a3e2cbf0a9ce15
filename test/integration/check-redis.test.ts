/**
 * `switchyard check --connect` with a Redis-engine agent config, against real
 * redis-servers: a node ready for HA (a password, read-only replicas, appendonly) passes,
 * logging in with the agent's own credentials; a misconfigured one (writable replicas, no
 * persistence) is told what to change.
 */
import { type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { check, formatResult } from '../../src/config/check.js';
import { freePort } from '../../src/sandbox/ports.js';
import { RedisServer, spawnRedis, stopRedis, waitRedisReady } from '../../src/sandbox/redis.js';

const NODE_PW = 'redis-node-password-123';

describe('switchyard check --connect: a Redis node', () => {
  let dir: string;
  let store: RedisServer;
  const nodes: ChildProcess[] = [];
  let readyPort: number;
  let badPort: number;

  async function node(name: string, persistence: boolean, setup: string[][]): Promise<number> {
    const port = await freePort();
    const child = spawnRedis({ port, dir: path.join(dir, name), persistence });
    nodes.push(child);
    await waitRedisReady(port, 10_000, '127.0.0.1', child);
    const r = new Redis({ host: '127.0.0.1', port, lazyConnect: true, maxRetriesPerRequest: 0 });
    await r.connect();
    for (const cmd of setup) await r.call(cmd[0]!, ...cmd.slice(1));
    r.disconnect();
    return port;
  }

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sy-check-redis-'));
    store = await RedisServer.start(path.join(dir, 'store'));
    readyPort = await node('ready', true, [['CONFIG', 'SET', 'requirepass', NODE_PW]]);
    badPort = await node('bad', false, [['CONFIG', 'SET', 'replica-read-only', 'no']]);
  }, 60_000);

  afterAll(async () => {
    for (const c of nodes) await stopRedis(c).catch(() => {});
    await store?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }, 30_000);

  const agentFile = (port: number, extra: string): string => {
    const f = path.join(dir, `agent-${port}.yaml`);
    fs.writeFileSync(f, `cluster: cache\nnode: n1\nengine: redis\nredis: ${store.url}\nhost: 127.0.0.1\nport: ${port}\n${extra}`);
    return f;
  };
  const nodeFindings = (r: Awaited<ReturnType<typeof check>>) => r.findings.filter((f) => f.what.startsWith('Redis node'));

  it('a ready node passes, reached with the agent\'s password', async () => {
    const r = await check(agentFile(readyPort, `user: default\npassword: ${NODE_PW}\n`), { connect: true, env: {} });
    const found = nodeFindings(r);
    expect(found.filter((f) => !f.ok), formatResult('ready.yaml', r)).toEqual([]);
    expect(found.map((f) => f.what)).toEqual([
      `Redis node redis://127.0.0.1:${readyPort} reachable`,
      expect.stringMatching(/: version \d+\.\d+/),
      `Redis node redis://127.0.0.1:${readyPort}: replica-read-only yes`,
      expect.stringMatching(/: persistence \(appendonly yes/),
    ]);
  }, 30_000);

  it('a misconfigured node is told what to change', async () => {
    const r = await check(agentFile(badPort, ''), { connect: true, env: {} });
    const fixes = nodeFindings(r).filter((f) => !f.ok).map((f) => `${f.what}: ${f.fix}`);
    expect(fixes).toEqual([
      expect.stringMatching(/replica-read-only no: set replica-read-only yes/),
      expect.stringMatching(/no persistence: set appendonly yes/),
    ]);
  }, 30_000);
});
