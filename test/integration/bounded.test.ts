/**
 * Every agent → PostgreSQL call is bounded, against a real PostgreSQL and Redis: action
 * connections carry statement_timeout and give up at their query_timeout; a probe whose
 * backend hangs (SIGSTOP) does not stop the heartbeats; and a primary that loses Redis
 * while its probe hangs still fences itself on time, because the fence runs outside the
 * probe's serial path. Also: the checkpoint LSN read from pg_control is pg_controldata's.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from '../../agent/agent.js';
import { readCheckpointLsn } from '../../src/engines/postgres/pgcontrol.js';
import { keys } from '../../src/bus/keys.js';
import { withClient } from '../../src/engines/postgres/probe.js';
import type { AgentConfig } from '../../src/config/schemas.js';
import { createLogger } from '../../src/log.js';
import { runPgTool } from '../../src/engines/postgres/tools.js';
import { PgCluster } from '../support/pg-cluster.js';
import { RedisServer } from '../../src/sandbox/redis.js';
import { sql, waitFor } from '../support/sandbox.js';

const CLUSTER = 'bd';
const k = keys(CLUSTER);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function signal(pids: number[], sig: NodeJS.Signals): void {
  for (const p of pids) {
    try {
      process.kill(p, sig);
    } catch {
      // gone
    }
  }
}

describe('bounded calls to PostgreSQL', () => {
  let dir: string;
  let pg: PgCluster;
  let redis: RedisServer;
  let client: Redis;
  const agents: Agent[] = [];
  const stopped: number[] = [];

  const target = (): { host: string; port: number; user: string; database: string } => ({ host: '127.0.0.1', port: pg.nodes[0]!.port, user: 'postgres', database: 'postgres' });

  async function agent(over: Partial<AgentConfig>): Promise<Agent> {
    const a = new Agent(
      { cluster: CLUSTER, node: 'pg1', redis: redis.url, engine: 'postgres', host: '127.0.0.1', port: pg.nodes[0]!.port, priority: 100, noFailover: false, user: 'postgres', database: 'postgres', probeIntervalMs: 100, probeTimeoutMs: 500, fenceAfterMs: 4000, logLevel: 'silent', ...over },
      createLogger('agent:pg1', 'silent'),
    );
    await a.start();
    agents.push(a);
    return a;
  }

  /** the agent's own backends (its probe connection among them) */
  async function agentBackends(): Promise<number[]> {
    const r = await sql<{ pid: number }>(pg.nodes[0]!.port, "SELECT pid FROM pg_stat_activity WHERE application_name = 'switchyard-agent'");
    return r.rows.map((x) => x.pid);
  }

  async function obsTimes(sinceMs: number): Promise<number[]> {
    const rows = await client.xrange(k.obs, `${sinceMs}-0`, '+');
    return rows.filter(([, f]) => (JSON.parse(f[1]!) as { type: string }).type === 'obs').map(([id]) => Number(id.split('-')[0]));
  }

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sy-bounded-'));
    pg = await PgCluster.create({ baseDir: path.join(dir, 'pg'), replicas: 0 });
    redis = await RedisServer.start(path.join(dir, 'redis'));
    client = new Redis(redis.url);
    client.on('error', () => {});
  }, 120_000);

  afterAll(async () => {
    signal(stopped, 'SIGCONT');
    if (redis.pid) signal([redis.pid], 'SIGCONT');
    for (const a of agents) await a.stop().catch(() => {});
    client.disconnect();
    await redis.stop();
    await pg.destroy();
    fs.rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it('reads the latest checkpoint LSN from pg_control as pg_controldata does', async () => {
    await sql(pg.nodes[0]!.port, 'CHECKPOINT');
    const { stdout } = await runPgTool('pg_controldata', ['-D', pg.nodes[0]!.dataDir], { cwd: pg.nodes[0]!.dataDir, timeoutMs: 30_000, errorCode: 'CONTROLDATA_FAILED' });
    const expected = /Latest checkpoint location:\s*([0-9A-F]+\/[0-9A-F]+)/.exec(stdout)?.[1];
    expect(expected).toBeTruthy();
    expect(readCheckpointLsn(pg.nodes[0]!.dataDir)).toBe(expected);
    expect(readCheckpointLsn(path.join(dir, 'nowhere'))).toBeNull();
  });

  it('gives every action connection a statement_timeout and gives up at its query_timeout', { timeout: 30_000 }, async () => {
    const shown = await withClient(target(), 1500, (c) => c.query<{ statement_timeout: string; lock_timeout: string }>('SELECT current_setting($1) AS statement_timeout, current_setting($2) AS lock_timeout', ['statement_timeout', 'lock_timeout']));
    expect(shown.rows[0]).toEqual({ statement_timeout: '1500ms', lock_timeout: '1500ms' });
    const t0 = performance.now();
    await expect(withClient(target(), 300, (c) => c.query('SELECT pg_sleep(10)'))).rejects.toThrow();
    expect(performance.now() - t0).toBeLessThan(5_000);
  });

  it('keeps publishing heartbeats while its probe backend hangs', { timeout: 60_000 }, async () => {
    const a = await agent({});
    const since = Date.now();
    await waitFor('first observations', async () => (await obsTimes(since)).length >= 3, 20_000);
    const hung = await agentBackends();
    expect(hung.length).toBeGreaterThan(0);
    stopped.push(...hung);
    signal(hung, 'SIGSTOP');
    const frozenAt = Date.now();
    await sleep(5_000);
    const times = [frozenAt, ...(await obsTimes(frozenAt)), Date.now()];
    signal(hung, 'SIGCONT');
    // a heartbeat at least every probe timeout + interval (0.6 s, + slack for a loaded host), never a stall (5 s)
    const gaps = times.slice(1).map((t, i) => t - times[i]!);
    expect(times.length).toBeGreaterThan(3);
    expect(Math.max(...gaps)).toBeLessThan(3_500);
    await a.stop();
    agents.splice(agents.indexOf(a), 1);
  });

  it('fences itself on time when Redis is frozen and its probe backend hangs', { timeout: 60_000 }, async () => {
    const fenceAfterMs = 1500;
    const a = await agent({ fenceAfterMs });
    const since = Date.now();
    await waitFor('observations', async () => (await obsTimes(since)).length >= 3, 20_000);
    const hung = await agentBackends();
    stopped.push(...hung);
    signal(hung, 'SIGSTOP');
    signal([redis.pid!], 'SIGSTOP');
    const frozenAt = performance.now();
    let fencedAfter = -1;
    while (performance.now() - frozenAt < fenceAfterMs + 8_000) {
      const ro = await sql<{ v: string }>(pg.nodes[0]!.port, 'SELECT current_setting($1) AS v', ['default_transaction_read_only']).catch(() => null);
      if (ro?.rows[0]?.v === 'on') {
        fencedAfter = performance.now() - frozenAt;
        break;
      }
      await sleep(50);
    }
    signal([redis.pid!], 'SIGCONT');
    signal(hung, 'SIGCONT');
    expect(a.fenced || fencedAfter >= 0).toBe(true);
    expect(fencedAfter).toBeGreaterThanOrEqual(0);
    // its last accepted observation was at most one probe before the freeze; then fenceAfterMs;
    // the fence itself is a few queries (slack for a loaded host)
    expect(fencedAfter).toBeLessThan(fenceAfterMs + 2_500);
    await sql(pg.nodes[0]!.port, 'ALTER SYSTEM RESET default_transaction_read_only');
    await sql(pg.nodes[0]!.port, 'SELECT pg_reload_conf()');
  });
});
