/**
 * The agent config's `redisServer`: persistence and the min-replicas baseline of a
 * managed Redis node, on real redis-server processes. With appendonly a crashed master
 * restarts as the master with its keys (the empty-restart rule allows it); without, it
 * does not start. An unfence returns min-replicas-to-write to the configured value.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadAgentConfigFrom } from '../../src/config/load.js';
import { RedisConn } from '../../src/engines/redis/conn.js';
import { redisEngine, type ManagedRedis } from '../../src/engines/redis/engine.js';
import type { Connection, RedisServerOptions } from '../../src/engines/types.js';
import { freePorts } from '../../src/sandbox/ports.js';

const log = { info: () => {}, warn: () => {}, error: () => {} };
let root = '';
const started: ManagedRedis[] = [];

afterEach(async () => {
  for (const n of started.splice(0)) await n.stop('immediate');
  if (root) fs.rmSync(root, { recursive: true, force: true });
  root = '';
});

async function node(redisServer: RedisServerOptions): Promise<{ m: ManagedRedis; conn: Connection }> {
  root ||= fs.mkdtempSync(path.join(os.tmpdir(), 'sy-redis-persist-'));
  const [port] = await freePorts(1);
  const conn: Connection = { host: '127.0.0.1', port: port!, user: 'default', database: '0' };
  const m = redisEngine.managed({ nodeId: `n${port}`, dataDir: path.join(root, String(port)), connection: conn, redisServer }, log);
  started.push(m);
  return { m, conn };
}

async function call(conn: Connection, ...args: Array<string | number>): Promise<unknown> {
  const c = await RedisConn.connect(conn, 2_000);
  try {
    return await c.call(...args);
  } finally {
    c.close();
  }
}

async function crashAndRestart(m: ManagedRedis): Promise<unknown> {
  await m.stop('immediate'); // SIGKILL
  expect(m.processState()).toBe('dead');
  try {
    await m.start();
    return null;
  } catch (err) {
    return err;
  }
}

describe('redisServer in the agent config', () => {
  it('parses, with defaults, and refuses a bad value naming the field', () => {
    const file = (extra: string): string => {
      root ||= fs.mkdtempSync(path.join(os.tmpdir(), 'sy-redis-persist-'));
      const f = path.join(root, 'agent.yaml');
      fs.writeFileSync(f, `cluster: c\nnode: r1\nengine: redis\nredis: redis://127.0.0.1:1\nport: 7000\n${extra}`);
      return f;
    };
    const cfg = loadAgentConfigFrom(file('redisServer: { appendonly: true, save: "3600 1 300 100" }\n'), {}).config;
    expect(cfg.redisServer).toMatchObject({ appendonly: true, appendfsync: 'everysec', save: '3600 1 300 100', minReplicasToWrite: 0, minReplicasMaxLag: 10 });
    expect(loadAgentConfigFrom(file(''), { SWITCHYARD_REDIS_APPENDONLY: 'true' }).config.redisServer?.appendonly).toBe(true);
    expect(() => loadAgentConfigFrom(file('redisServer: { appendfsync: sometimes }\n'), {})).toThrow(/appendfsync/);
    expect(() => loadAgentConfigFrom(file('redisServer: { save: "every hour" }\n'), {})).toThrow(/save/);
  });

  it('with appendonly, a crashed master restarts as the master with every key', async () => {
    const { m, conn } = await node({ appendonly: true, appendfsync: 'always' });
    await m.start();
    for (let i = 0; i < 200; i++) await call(conn, 'SET', `k${i}`, `v${i}`);
    expect(await crashAndRestart(m)).toBeNull();
    const info = String(await call(conn, 'INFO', 'replication'));
    expect(info).toContain('role:master');
    expect(await call(conn, 'DBSIZE')).toBe(200);
    expect(await call(conn, 'GET', 'k199')).toBe('v199');
  });

  it('without persistence (or with an RDB snapshot only) a crashed master is not restarted: it would be empty, or older than its replicas', async () => {
    for (const server of [{}, { save: '1 1' }]) {
      const { m, conn } = await node(server);
      await m.start();
      await call(conn, 'SET', 'k', 'v');
      expect(await crashAndRestart(m)).toMatchObject({ code: 'REDIS_EMPTY_RESTART' });
      expect(m.processState()).toBe('dead');
    }
  });

  it('an unfence returns min-replicas-to-write to the configured value, not the fence’s', async () => {
    for (const configured of [0, 2]) {
      const { m, conn } = await node({ minReplicasToWrite: configured, minReplicasMaxLag: 7 });
      m.setReadOnlyOnDisk(true); // a former primary started refusing writes, for the leader to decide
      await m.start();
      expect(await call(conn, 'CONFIG', 'GET', 'min-replicas-to-write')).toEqual(['min-replicas-to-write', String(Math.max(1, configured))]);
      await expect(call(conn, 'SET', 'k', 'v')).rejects.toThrow(/NOREPLICAS/);
      const actions = redisEngine.node(conn, 'n', { redisServer: { minReplicasToWrite: configured, minReplicasMaxLag: 7 } });
      await actions.fence();
      await actions.unfence();
      expect(await call(conn, 'CONFIG', 'GET', 'min-replicas-to-write')).toEqual(['min-replicas-to-write', String(configured)]);
      expect(await call(conn, 'CONFIG', 'GET', 'min-replicas-max-lag')).toEqual(['min-replicas-max-lag', '7']);
      if (configured === 0) expect(await call(conn, 'SET', 'k', 'v')).toBe('OK'); // neither paused nor refused
      actions.close?.();
    }
  });

  it('an unfence after a synchronous-mode sync returns to the leader’s count', async () => {
    const { m, conn } = await node({});
    await m.start();
    const actions = redisEngine.node(conn, 'n', {});
    await actions.sync({ names: ['r2'], count: 1 });
    await actions.fence();
    await actions.unfence();
    expect(await call(conn, 'CONFIG', 'GET', 'min-replicas-to-write')).toEqual(['min-replicas-to-write', '1']);
    actions.close?.();
  });
});
