/**
 * SIGKILL of the primary postmaster → the first INSERT accepted by the node the routing
 * table names next, with default settings, on a real sandbox (Redis, 3 PostgreSQL, 3
 * agents, 2 coordinators). The clock runs from the kill to the INSERT's answer, so it
 * includes detection, decision, promotion and the routing table's propagation.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { performance } from 'node:perf_hooks';
import { spawn, type ChildProcess } from 'node:child_process';
import { Sandbox, cliEntry } from '../src/sandbox/deploy.js';
import { processTree } from '../src/sandbox/proc.js';
import { freePort, isPortFree } from '../src/sandbox/ports.js';
import { DEFAULT_SETTINGS } from '../src/core/settings.js';
import type { RoutingTable } from '../src/core/routing.js';
import { steadyWriter } from './writer.js';
import { failoverStages, formatStages, medianStages, readWindow, restartStages, switchoverStages, type Stages } from './breakdown.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function getTable(api: string, cluster: string): Promise<RoutingTable | null> {
  try {
    const res = await fetch(`${api}/v1/clusters/${cluster}/routing`, { signal: AbortSignal.timeout(1000) });
    return res.ok ? ((await res.json()) as RoutingTable) : null;
  } catch {
    return null;
  }
}

async function tryInsert(port: number): Promise<boolean> {
  const c = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres', connectionTimeoutMillis: 1000, query_timeout: 2000 });
  c.on('error', () => {});
  try {
    await c.connect();
    await c.query('INSERT INTO bench_failover (at) VALUES (now())');
    return true;
  } catch {
    return false;
  } finally {
    await c.end().catch(() => {});
  }
}

export async function apiBase(): Promise<number> {
  for (;;) {
    const p = await freePort();
    if (await isPortFree(p + 1)) return p;
  }
}

/**
 * The postgres superuser's password of the bench's sandboxes (they run scram-sha-256 for
 * every connection); set as PGPASSWORD so the bench's `{ user: 'postgres' }` clients log in.
 */
export function benchPgPassword(): string {
  process.env.PGPASSWORD ??= `bench-${randomBytes(8).toString('hex')}`;
  return process.env.PGPASSWORD;
}

export async function withSandbox<T>(fn: (sb: Sandbox) => Promise<T>): Promise<T> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sy-bench-'));
  const sb = new Sandbox({ engine: 'postgres', replicas: 2, sync: false, coordinators: 2, apiPort: await apiBase(), dir: path.join(dir, 'sb'), cluster: 'bench', pgPassword: benchPgPassword() });
  try {
    await sb.up(() => {});
    return await fn(sb);
  } finally {
    await sb.down();
    // SY_BENCH_KEEP=1 keeps the sandbox's directory (logs, data) for a look afterwards
    if (process.env.SY_BENCH_KEEP === '1') console.log(`  sandbox kept in ${dir}`);
    else fs.rmSync(dir, { recursive: true, force: true });
  }
}

export interface FailoverResult {
  trials: number;
  p50Ms: number | null;
  maxMs: number | null;
  samplesMs: number[];
  /** median ms since the kill at which each stage was reached */
  breakdown: Stages;
  trialsBreakdown: Stages[];
}

export interface RestartResult {
  trials: number;
  p50Ms: number | null;
  maxMs: number | null;
  samplesMs: number[];
  breakdown: Stages;
}

function postmasterPidOf(dataDir: string): number {
  return Number(fs.readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
}

/** Poll the routing table until `accept` names a node that takes an INSERT; Date.now() of the answer, or -1. */
async function firstWrite(api: string, cluster: string, accept: (t: RoutingTable) => boolean, limitMs = 30_000): Promise<number> {
  const start = performance.now();
  while (performance.now() - start < limitMs) {
    const now = await getTable(api, cluster);
    if (now?.writable && now.primary && accept(now) && (await tryInsert(now.primary.port))) return Date.now();
    await sleep(5);
  }
  return -1;
}

/**
 * Failover trials, each followed (when `restart` is set) by a crash of the new primary
 * inside the cooldown: the leader restarts it in place (kill → first write on it).
 */
export async function benchFailover(trials: number, restart = true): Promise<{ failover: FailoverResult; restartInPlace: RestartResult | null }> {
  return withSandbox(async (sb) => {
    const file = sb.file!;
    const api = file.api;
    const apiBy = `coordinator:${file.coordinators.find((c) => c.api === api)?.id ?? file.coordinators[0]!.id}`;
    const first = await getTable(api, file.cluster);
    const c = new pg.Client({ host: '127.0.0.1', port: first!.primary!.port, user: 'postgres', database: 'postgres' });
    await c.connect();
    await c.query('CREATE TABLE IF NOT EXISTS bench_failover (id serial PRIMARY KEY, at timestamptz)');
    await c.end();
    const samples: number[] = [];
    const stages: Stages[] = [];
    const rSamples: number[] = [];
    const rStages: Stages[] = [];
    let lastFailover = 0;
    for (let i = 0; i < trials; i++) {
      // every node healthy again, and the cooldown since the last failover passed
      let t: RoutingTable | null = null;
      for (;;) {
        t = await getTable(api, file.cluster);
        const ready = t?.writable && t.primary && t.replicas.every((r) => r.healthy);
        if (ready && Date.now() - lastFailover > DEFAULT_SETTINGS.cooldownMs + 500) break;
        await sleep(100);
      }
      const victim = file.nodes.find((n) => n.id === t!.primary!.id)!;
      const pm = postmasterPidOf(victim.dataDir);
      const t0 = Date.now();
      process.kill(pm, 'SIGKILL');
      const tWrite = await firstWrite(api, file.cluster, (x) => x.primary!.id !== victim.id);
      lastFailover = t0;
      if (tWrite < 0) throw new Error(`trial ${i + 1}: no new writable primary within 30 s`);
      const ms = tWrite - t0;
      samples.push(ms);
      await sleep(300); // let the last trace entries land
      const st = failoverStages(await readWindow(file.redis, file.cluster, t0 - 2000), victim.id, t0, tWrite, apiBy);
      stages.push(st);
      console.log(`  trial ${i + 1}: ${victim.id} killed → write accepted after ${ms} ms`);
      if (!restart) continue;
      // the new primary crashes inside the cooldown: restarted in place
      const now = (await getTable(api, file.cluster))!;
      const second = file.nodes.find((n) => n.id === now.primary!.id)!;
      // A second, separate crash: once the old primary has rejoined (killing the new primary
      // while the old one rewinds from it breaks that rewind, and a node whose pg_rewind was
      // cut off needs a re-clone), yet well inside the cooldown (the restart must be done before it ends)
      const rejoinedBy = tWrite + DEFAULT_SETTINGS.cooldownMs - 5_300;
      for (;;) {
        const x = await getTable(api, file.cluster);
        if (x?.writable && x.primary?.id === second.id && x.replicas.length === file.nodes.length - 1 && x.replicas.every((r) => r.healthy)) break;
        if (Date.now() > rejoinedBy) break;
        await sleep(50);
      }
      await sleep(300);
      if (Date.now() - tWrite > DEFAULT_SETTINGS.cooldownMs - 5_000) {
        console.log(`  trial ${i + 1}: the old primary took too long to rejoin: no restart-in-place sample (the cooldown is nearly over)`);
        continue;
      }
      const r0 = Date.now();
      process.kill(postmasterPidOf(second.dataDir), 'SIGKILL');
      const rWrite = await firstWrite(api, file.cluster, (x) => x.primary!.id === second.id);
      if (rWrite < 0) {
        console.log(`  trial ${i + 1}: ${second.id} killed inside the cooldown: no write on it within 30 s`);
        continue;
      }
      rSamples.push(rWrite - r0);
      await sleep(300);
      rStages.push(restartStages(await readWindow(file.redis, file.cluster, r0 - 2000), second.id, r0, rWrite));
      console.log(`  trial ${i + 1}: ${second.id} killed inside the cooldown → restarted in place, write accepted after ${rWrite - r0} ms`);
    }
    const sorted = [...samples].sort((a, b) => a - b);
    const breakdown = medianStages(stages);
    console.log(formatStages('failover breakdown (median ms since the SIGKILL)', breakdown));
    const failover: FailoverResult = { trials, p50Ms: sorted[Math.floor(sorted.length / 2)] ?? null, maxMs: sorted.at(-1) ?? null, samplesMs: samples, breakdown, trialsBreakdown: stages };
    if (!restart) return { failover, restartInPlace: null };
    const rBreakdown = medianStages(rStages);
    console.log(formatStages('restart in place breakdown (median ms since the SIGKILL)', rBreakdown));
    return { failover, restartInPlace: { trials, p50Ms: median(rSamples), maxMs: rSamples.length ? Math.max(...rSamples) : null, samplesMs: rSamples, breakdown: rBreakdown } };
  });
}

/**
 * Switchovers under a steady writer: the longest gap between two acknowledged writes
 * around each switchover (median over trials), and acknowledged rows missing afterwards.
 */
export async function benchSwitchover(
  trials: number,
): Promise<{ trials: number; gapMs: number; maxGapMs: number; lost: number; acked: number; gapsMs: number[]; breakdown: Stages; trialsBreakdown: Stages[] }> {
  return withSandbox(async (sb) => {
    const file = sb.file!;
    const first = (await getTable(file.api, file.cluster))!;
    const c = new pg.Client({ host: '127.0.0.1', port: first.primary!.port, user: 'postgres', database: 'postgres' });
    await c.connect();
    await c.query('CREATE TABLE bench_switchover (id int PRIMARY KEY)');
    await c.end();
    const gaps: number[] = [];
    const stages: Stages[] = [];
    let lost = 0;
    let acked = 0;
    let nextId = 1;
    for (let i = 0; i < trials; i++) {
      for (;;) {
        const t = await getTable(file.api, file.cluster);
        if (t?.writable && t.replicas.every((r) => r.healthy)) break;
        await sleep(100);
      }
      const writer = steadyWriter(file.api, file.cluster, 'bench_switchover', nextId);
      while (writer.acked.length < 50) await sleep(10);
      const from = (await getTable(file.api, file.cluster))!.primary!.id;
      const t0 = Date.now();
      const res = await fetch(`${file.api}/v1/clusters/${file.cluster}/switchover`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${file.adminToken}` }, body: '{}' });
      if (res.status !== 202) throw new Error(`switchover: ${res.status} ${await res.text()}`);
      let to = from;
      while (to === from) {
        const t = await getTable(file.api, file.cluster);
        if (t?.writable && t.primary) to = t.primary.id;
        await sleep(10);
      }
      const at = writer.acked.length;
      while (writer.acked.length < at + 50) await sleep(10);
      await writer.stop();
      nextId = (writer.acked.at(-1) ?? nextId) + 1;
      const node = file.nodes.find((n) => n.id === to)!;
      const q = new pg.Client({ host: '127.0.0.1', port: node.port, user: 'postgres', database: 'postgres' });
      await q.connect();
      const rows = await q.query<{ id: number }>('SELECT id FROM bench_switchover');
      await q.end();
      const have = new Set(rows.rows.map((r) => r.id));
      const missing = writer.acked.filter((id) => !have.has(id)).length;
      lost += missing;
      acked += writer.acked.length;
      gaps.push(writer.maxGapMs());
      await sleep(300);
      stages.push(switchoverStages(await readWindow(file.redis, file.cluster, t0 - 2000), from, t0, writer.maxGapAt()));
      console.log(`  trial ${i + 1}: ${from} → ${to}, longest write gap ${writer.maxGapMs()} ms, ${missing} of ${writer.acked.length} acknowledged rows lost`);
    }
    const sorted = [...gaps].sort((a, b) => a - b);
    const breakdown = medianStages(stages);
    console.log(formatStages('switchover breakdown (median ms since the request)', breakdown));
    return { trials, gapMs: sorted[Math.floor(sorted.length / 2)]!, maxGapMs: sorted.at(-1)!, lost, acked, gapsMs: gaps, breakdown, trialsBreakdown: stages };
  });
}

function median(xs: number[]): number | null {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor(s.length / 2)]! : null;
}

/**
 * Host loss: the primary's agent and postmaster killed together (SIGKILL), so no agent
 * reports the crash; the peers' "connection refused" is the evidence. Clock: kill → the
 * first INSERT accepted by the next primary. One fresh sandbox per trial.
 */
export async function benchHostLoss(trials: number): Promise<{ trials: number; p50Ms: number | null; maxMs: number | null; samplesMs: number[] }> {
  const samples: number[] = [];
  for (let i = 0; i < trials; i++) {
    const ms = await withSandbox(async (sb) => {
      const file = sb.file!;
      const t = (await getTable(file.api, file.cluster))!;
      const c = new pg.Client({ host: '127.0.0.1', port: t.primary!.port, user: 'postgres', database: 'postgres' });
      await c.connect();
      await c.query('CREATE TABLE IF NOT EXISTS bench_failover (id serial PRIMARY KEY, at timestamptz)');
      await c.end();
      // let every agent's peer view include the primary
      await sleep(1000);
      const victim = file.nodes.find((n) => n.id === t.primary!.id)!;
      const pm = Number(fs.readFileSync(path.join(victim.dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
      const t0 = performance.now();
      process.kill(victim.agentPid, 'SIGKILL');
      process.kill(-pm, 'SIGKILL');
      while (performance.now() - t0 < 30_000) {
        const now = await getTable(file.api, file.cluster);
        if (now?.writable && now.primary && now.primary.id !== victim.id && (await tryInsert(now.primary.port))) return performance.now() - t0;
        await sleep(5);
      }
      throw new Error(`trial ${i + 1}: no new writable primary within 30 s after host loss`);
    });
    samples.push(Math.round(ms));
    console.log(`  trial ${i + 1}: host loss → write accepted after ${Math.round(ms)} ms`);
  }
  return { trials, p50Ms: median(samples), maxMs: samples.length ? Math.max(...samples) : null, samplesMs: samples };
}

/**
 * Leader coordinator killed (SIGKILL) → the other coordinator journals leader.changed
 * (the first thing a new leader does). Clock: kill → that entry visible through the
 * surviving coordinator's API. The killed coordinator is started again between trials.
 */
export async function benchLeaderTakeover(trials: number): Promise<{ trials: number; leaseTtlMs: number; p50Ms: number | null; maxMs: number | null; samplesMs: number[] }> {
  return withSandbox(async (sb) => {
    const file = sb.file!;
    const respawned: ChildProcess[] = [];
    const pids = new Map(file.coordinators.map((c) => [c.id, c.pid]));
    const samples: number[] = [];
    try {
      for (let i = 0; i < trials; i++) {
        const list = (await (await fetch(`${file.api}/v1/clusters`)).json()) as Array<{ leader: string | null }>;
        const leader = list[0]!.leader!;
        const other = file.coordinators.find((c) => c.id !== leader)!;
        const before = (await (await fetch(`${other.api}/v1/clusters/${file.cluster}/events?type=leader.changed&limit=1000`)).json()) as { events: unknown[] };
        const t0 = performance.now();
        process.kill(pids.get(leader)!, 'SIGKILL');
        let ms = -1;
        while (performance.now() - t0 < 30_000) {
          const now = (await (await fetch(`${other.api}/v1/clusters/${file.cluster}/events?type=leader.changed&limit=1000`)).json()) as { events: Array<{ data: { coordinator: string } }> };
          if (now.events.length > before.events.length && now.events.at(-1)!.data.coordinator === other.id) {
            ms = performance.now() - t0;
            break;
          }
          await sleep(10);
        }
        if (ms < 0) throw new Error(`trial ${i + 1}: no new leader within 30 s`);
        samples.push(Math.round(ms));
        console.log(`  trial ${i + 1}: leader ${leader} killed → ${other.id} leading after ${Math.round(ms)} ms`);
        // start the killed coordinator again, as a process supervisor would
        const cfg = path.join(sb.dir, 'config', `coordinator-${leader}.json`);
        const log = fs.openSync(path.join(sb.dir, 'logs', `coordinator-${leader}.log`), 'a');
        const child = spawn(process.execPath, [cliEntry(), 'coordinator', '--config', cfg], { stdio: ['ignore', log, log] });
        fs.closeSync(log);
        respawned.push(child);
        pids.set(leader, child.pid!);
        const api = file.coordinators.find((c) => c.id === leader)!.api;
        while (!(await fetch(`${api}/readyz`).then((r) => r.ok).catch(() => false))) await sleep(50);
      }
    } finally {
      for (const c of respawned) if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
      await sleep(500);
    }
    return { trials, leaseTtlMs: 3000, p50Ms: median(samples), maxMs: samples.length ? Math.max(...samples) : null, samplesMs: samples };
  });
}

function signalAll(pids: number[], sig: NodeJS.Signals): void {
  for (const p of pids) {
    try {
      process.kill(p, sig);
    } catch {
      // gone
    }
  }
}

/**
 * 2 s pauses (SIGSTOP … SIGCONT) of the primary's whole server, its agent, the leader
 * coordinator, and Redis, one after the other on one sandbox with default settings;
 * after each, 8 s to let any (wrong) failover happen. Counts failover.started.
 */
export async function benchPauses(): Promise<{ pauseMs: number; failovers: Record<string, number> }> {
  return withSandbox(async (sb) => {
    const file = sb.file!;
    const failovers: Record<string, number> = {};
    const started = async (): Promise<number> => {
      const r = (await (await fetch(`${file.api}/v1/clusters/${file.cluster}/events?type=failover.started&limit=1000`)).json()) as { events: unknown[] };
      return r.events.length;
    };
    const targets: Array<[string, () => number[]]> = [
      ['primary server', () => processTree(Number(fs.readFileSync(path.join(file.nodes.find((n) => n.id === 'pg1')!.dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]))],
      ['primary agent', () => [file.nodes[0]!.agentPid]],
      ['leader coordinator', () => [file.coordinators.find((c) => c.id === leaderOf())!.pid]],
      ['redis', () => [file.redisPid]],
    ];
    let leader = 'c1';
    const leaderOf = (): string => leader;
    for (const [name, pids] of targets) {
      const list = (await (await fetch(`${file.api}/v1/clusters`)).json()) as Array<{ leader: string | null }>;
      leader = list[0]!.leader ?? 'c1';
      const before = await started();
      const victims = pids();
      signalAll(victims, 'SIGSTOP');
      await sleep(2000);
      signalAll(victims, 'SIGCONT');
      await sleep(8000);
      failovers[name] = (await started()) - before;
      console.log(`  ${name} paused 2 s: ${failovers[name]} failovers`);
    }
    return { pauseMs: 2000, failovers };
  });
}

/** Synchronous mode: repeated SIGKILLs of the primary under a steady writer; acknowledged rows lost. */
export async function benchSyncKills(kills: number): Promise<{ kills: number; acked: number; lost: number }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sy-bench-'));
  const sb = new Sandbox({ engine: 'postgres', replicas: 2, sync: true, coordinators: 2, apiPort: await apiBase(), dir: path.join(dir, 'sb'), cluster: 'bench', settings: { cooldownMs: 0 }, pgPassword: benchPgPassword() });
  try {
    await sb.up(() => {});
    const file = sb.file!;
    const first = (await getTable(file.api, file.cluster))!;
    const c = new pg.Client({ host: '127.0.0.1', port: first.primary!.port, user: 'postgres', database: 'postgres' });
    await c.connect();
    await c.query('CREATE TABLE bench_sync (id int PRIMARY KEY)');
    await c.end();
    const writer = steadyWriter(file.api, file.cluster, 'bench_sync');
    let last = first.primary!.id;
    try {
      for (let i = 0; i < kills; i++) {
        let t: RoutingTable | null = null;
        for (;;) {
          t = await getTable(file.api, file.cluster);
          if (t?.writable && t.replicas.every((r) => r.healthy) && t.replicas.some((r) => r.sync)) break;
          await sleep(50);
        }
        const acked = writer.acked.length;
        while (writer.acked.length < acked + 20) await sleep(10);
        const victim = file.nodes.find((n) => n.id === t.primary!.id)!;
        process.kill(Number(fs.readFileSync(path.join(victim.dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]), 'SIGKILL');
        for (;;) {
          const x = await getTable(file.api, file.cluster);
          if (x?.writable && x.primary && x.primary.id !== victim.id) {
            last = x.primary.id;
            break;
          }
          await sleep(20);
        }
        console.log(`  kill ${i + 1}: ${victim.id} → ${last}, ${writer.acked.length} rows acknowledged so far`);
      }
      const n = writer.acked.length;
      while (writer.acked.length < n + 20) await sleep(10);
    } finally {
      await writer.stop();
    }
    const node = file.nodes.find((n) => n.id === last)!;
    const q = new pg.Client({ host: '127.0.0.1', port: node.port, user: 'postgres', database: 'postgres' });
    await q.connect();
    const rows = await q.query<{ id: number }>('SELECT id FROM bench_sync');
    await q.end();
    const have = new Set(rows.rows.map((r) => r.id));
    return { kills, acked: writer.acked.length, lost: writer.acked.filter((id) => !have.has(id)).length };
  } finally {
    await sb.down();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
