/**
 * A real HAProxy (Debian's haproxy) in front of a sandbox, configured by
 * renderHaproxyConfig: reads through the replica port skip a replica whose replay is
 * paused past the lag limit; writes through the primary port move to the new primary
 * after a kill -9 of the old one (the time is measured and printed).
 * Skipped, with a message, when haproxy is not installed (.ci/run installs it).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderHaproxyConfig } from '../../src/config/haproxy.js';
import { freePorts } from '../../src/sandbox/ports.js';
import { killProcessGroup } from '../../src/sandbox/proc.js';
import type { SandboxFile } from '../../src/sandbox/deploy.js';
import { postmasterPid, routing, sql, startSandbox, stopSandbox, waitFor } from '../support/sandbox.js';

const haproxyBin = ['/usr/sbin/haproxy', '/usr/local/sbin/haproxy', '/usr/bin/haproxy'].find((p) => fs.existsSync(p)) ?? (spawnSync('sh', ['-c', 'command -v haproxy'], { encoding: 'utf8' }).stdout.trim() || null);
if (!haproxyBin) console.warn('SKIPPED test/integration/haproxy.test.ts: haproxy is not installed (apt-get install -y haproxy, or run .ci/run)');

const MAX_LAG_MS = 1000;

/** Which node answers on a port: its own port number, and whether it is in recovery. */
async function whoAnswers(port: number): Promise<{ port: number; replica: boolean }> {
  const c = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres', connectionTimeoutMillis: 1000, query_timeout: 2000 });
  c.on('error', () => {});
  await c.connect();
  try {
    const r = await c.query<{ port: number; rec: boolean }>('SELECT inet_server_port() AS port, pg_is_in_recovery() AS rec');
    return { port: r.rows[0]!.port, replica: r.rows[0]!.rec };
  } finally {
    await c.end().catch(() => {});
  }
}

describe.skipIf(!haproxyBin)('HAProxy in front of a sandbox', () => {
  let s: Awaited<ReturnType<typeof startSandbox>> | undefined;
  let file: SandboxFile;
  let haproxy: ChildProcess | undefined;
  let primaryPort: number;
  let replicaPort: number;

  beforeAll(async () => {
    s = await startSandbox({ cluster: 'hap' });
    file = s.file;
    const [p, r, a] = await freePorts(3);
    primaryPort = p!;
    replicaPort = r!;
    const cfg = renderHaproxyConfig({
      cluster: file.cluster,
      apis: file.coordinators.map((c) => c.api.replace(/^https?:\/\//, '')),
      nodes: file.nodes.map((n) => ({ id: n.id, host: n.host, port: n.port })),
      bind: '127.0.0.1',
      primaryPort,
      replicaPort,
      apiProxyPort: a!,
      maxLagMs: MAX_LAG_MS,
      checkMs: 250,
    });
    const cfgFile = path.join(s.dir, 'haproxy.cfg');
    fs.writeFileSync(cfgFile, cfg);
    const check = spawnSync(haproxyBin!, ['-c', '-f', cfgFile], { encoding: 'utf8' });
    expect(check.status, check.stderr).toBe(0);
    const log = fs.openSync(path.join(s.dir, 'haproxy.log'), 'a');
    haproxy = spawn(haproxyBin!, ['-f', cfgFile, '-db'], { stdio: ['ignore', log, log], detached: true });
    fs.closeSync(log);
    const primary = file.nodes.find((n) => n.id === 'pg1')!;
    await waitFor('writes through HAProxy reach the primary', async () => (await whoAnswers(primaryPort)).port === primary.port, 30_000, 100);
    await waitFor('table created through HAProxy', async () => (await sql(primaryPort, 'CREATE TABLE IF NOT EXISTS hap (id serial PRIMARY KEY, at timestamptz DEFAULT now())'), true), 30_000, 200);
  }, 180_000);

  afterAll(async () => {
    if (haproxy?.pid) await killProcessGroup(haproxy.pid).catch(() => {});
    await stopSandbox(s);
  }, 60_000);

  it('reads skip a replica whose replay is paused past the lag limit, and come back to it', async () => {
    const table = await routing(file.api, file.cluster);
    const [lagging, other] = table.replicas.map((r) => file.nodes.find((n) => n.id === r.id)!);
    // both replicas serve reads at first
    const seen = new Set<number>();
    await waitFor('both replicas behind the read port', async () => {
      for (let i = 0; i < 6; i++) {
        const w = await whoAnswers(replicaPort).catch(() => null);
        if (w) seen.add(w.port);
      }
      return seen.has(lagging!.port) && seen.has(other!.port);
    }, 30_000, 100);

    await sql(lagging!.port, 'SELECT pg_wal_replay_pause()');
    // keep writing so the paused replica falls behind in time
    let writing = true;
    const writer = (async () => {
      while (writing) {
        await sql(primaryPort, 'INSERT INTO hap DEFAULT VALUES').catch(() => {});
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    try {
      await waitFor('the routing API reports it lagging', async () => {
        const res = await fetch(`${file.api}/v1/clusters/${file.cluster}/nodes/${lagging!.id}/health?role=replica&maxLagMs=${MAX_LAG_MS}`);
        return res.status === 503;
      }, 30_000, 100);
      // HAProxy follows within its check interval × fall (however late its checks run on a loaded host); then no read goes there
      await waitFor('HAProxy takes the lagging replica out', async () => {
        for (let i = 0; i < 6; i++) if ((await whoAnswers(replicaPort).catch(() => null))?.port !== other!.port) return false;
        return true;
      }, 30_000, 200);
      // every read that gets an answer comes from the other replica
      const ports: number[] = [];
      for (let i = 0; i < 30 && ports.length < 20; i++) {
        const w = await whoAnswers(replicaPort).catch(() => null);
        if (w) ports.push(w.port);
      }
      expect(ports.length).toBeGreaterThanOrEqual(10);
      expect(ports.filter((p) => p === lagging!.port)).toEqual([]);
      expect(ports.every((p) => p === other!.port)).toBe(true);
    } finally {
      writing = false;
      await writer;
      await sql(lagging!.port, 'SELECT pg_wal_replay_resume()');
    }
    await waitFor('the caught-up replica serves reads again', async () => {
      for (let i = 0; i < 6; i++) if ((await whoAnswers(replicaPort).catch(() => null))?.port === lagging!.port) return true;
      return false;
    }, 30_000, 200);
  }, 120_000);

  it('writes through the primary port move to the new primary after kill -9 (measured)', async () => {
    const before = await routing(file.api, file.cluster);
    const old = file.nodes.find((n) => n.id === before.primary!.id)!;
    // a steady writer through HAProxy: every 20 ms, a new connection and one INSERT
    const ok: Array<{ at: number; port: number }> = [];
    let writing = true;
    const writer = (async () => {
      while (writing) {
        const c = new pg.Client({ host: '127.0.0.1', port: primaryPort, user: 'postgres', database: 'postgres', connectionTimeoutMillis: 500, query_timeout: 1000 });
        c.on('error', () => {});
        try {
          await c.connect();
          const r = await c.query<{ port: number }>('INSERT INTO hap DEFAULT VALUES RETURNING inet_server_port() AS port');
          ok.push({ at: Date.now(), port: r.rows[0]!.port });
        } catch {
          // the gap being measured
        } finally {
          await c.end().catch(() => {});
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    await waitFor('writes flowing', async () => ok.length > 10, 10_000);
    const killedAt = Date.now();
    process.kill(postmasterPid(old.dataDir), 'SIGKILL');
    const first = await waitFor('a write lands on another node', async () => ok.find((w) => w.at > killedAt && w.port !== old.port), 60_000, 20);
    writing = false;
    await writer;
    const gapMs = first.at - killedAt;
    const after = await routing(file.api, file.cluster);
    console.log(`HAProxy write failover: first write on the new primary ${after.primary?.id} ${gapMs} ms after kill -9 of ${old.id}`);
    expect(after.primary?.id).not.toBe(old.id);
    expect(file.nodes.find((n) => n.id === after.primary!.id)!.port).toBe(first.port);
    // after the first write on the new primary, no write went to the old one
    expect(ok.filter((w) => w.at > first.at && w.port === old.port)).toEqual([]);
    expect(gapMs).toBeLessThan(30_000);
  }, 120_000);
});
