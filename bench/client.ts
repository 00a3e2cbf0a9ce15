/**
 * The client library's figures, side by side in one run:
 *
 * - `client.ratio`: `SELECT … WHERE id = $1` through ReplicatedPool (readPreference
 *   secondary, one replica) against a raw pg.Pool on the same replica, same
 *   concurrency and connections; alternating rounds, medians of each.
 * - `propagation.p99Ms`: switchovers under a writer going through the pool; from the
 *   journal entry that names the new primary (the table's `updatedAt`) to the pool
 *   sending its first write there (received by SSE).
 * - `coalesce`: the same burst of identical reads with and without coalescing (how many
 *   executions it saves).
 * - `clientFailover`: failover seen from the app. SIGKILL of the primary postmaster under
 *   4 readers and 1 writer going through the pool (2 replicas, 2 coordinators); per
 *   trial, from the journal entry that names the new primary (the table's `updatedAt`)
 *   to the first write the new primary acknowledges through the pool, with its parts
 *   (delivery to the pool, the pool's dispatch, the write itself), and every read
 *   that failed (after its one retry on another node).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { ReplicatedPool } from '../src/client/index.js';
import type { RoutingTable } from '../src/core/routing.js';
import { Sandbox, type SandboxFile } from '../src/sandbox/deploy.js';
import { apiBase, benchPgPassword } from './failover.js';

export interface ClientBench {
  client: { qps: number; rawPgQps: number; ratio: number; concurrency: number; rounds: number };
  propagation: { p99Ms: number | null; p50Ms: number | null; samplesMs: number[] };
  coalesce: { reads: number; executedWithout: number; executedWith: number };
}

export interface ClientFailoverBench {
  trials: number;
  /** journaled → first write acknowledged by the new primary through the pool */
  resumeP50Ms: number | null;
  resumeMaxMs: number | null;
  /** journaled → the pool has the table (control plane + SSE) */
  deliveryP50Ms: number | null;
  /** the pool has the table → the first write is sent to the new primary */
  dispatchMaxMs: number | null;
  /** that first write's own time on the new primary */
  writeP50Ms: number | null;
  /** a write's median time before the kill, for scale */
  typicalWriteMs: number | null;
  reads: number;
  /** reads retried once on another node, and reads that failed even so */
  readsRetried: number;
  readsFailed: number;
  /** writes that failed (in flight on the killed primary) */
  writeErrors: number;
  samplesMs: number[];
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const pct = (xs: number[], p: number): number | null => {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
};

interface Queryable {
  query(text: string, values: unknown[]): Promise<unknown>;
}

/** `concurrency` loops of point selects for `ms`; → queries per second */
async function drive(db: Queryable, concurrency: number, ms: number, rows: number): Promise<number> {
  let n = 0;
  const end = performance.now() + ms;
  const loop = async (seed: number): Promise<void> => {
    let id = seed;
    while (performance.now() < end) {
      await db.query('SELECT id, name FROM bench_users WHERE id = $1', [(id++ % rows) + 1]);
      n++;
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: concurrency }, (_, i) => loop(i * 97)));
  return n / ((performance.now() - t0) / 1000);
}

async function sqlOn(port: number, text: string): Promise<void> {
  const c = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres' });
  await c.connect();
  try {
    await c.query(text);
  } finally {
    await c.end();
  }
}

async function table(api: string, cluster: string): Promise<RoutingTable | null> {
  const r = await fetch(`${api}/v1/clusters/${cluster}/routing`).catch(() => null);
  return r && r.ok ? ((await r.json()) as RoutingTable) : null;
}

export async function benchClient(opts: { rounds?: number; roundMs?: number; concurrency?: number; switchovers?: number } = {}): Promise<ClientBench> {
  const rounds = opts.rounds ?? 5;
  const roundMs = opts.roundMs ?? 3000;
  const concurrency = opts.concurrency ?? 16;
  const switchovers = opts.switchovers ?? 5;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sy-bench-client-'));
  const sb = new Sandbox({ engine: 'postgres', replicas: 1, sync: false, coordinators: 1, apiPort: await apiBase(), dir: path.join(dir, 'sb'), cluster: 'bench', settings: { cooldownMs: 0 }, pgPassword: benchPgPassword() });
  try {
    const file = await sb.up(() => {});
    const [primary, replica] = file.nodes;
    await sqlOn(primary!.port, "CREATE TABLE bench_users (id int PRIMARY KEY, name text); INSERT INTO bench_users SELECT g, 'user ' || g FROM generate_series(1, 10000) g; CREATE TABLE bench_w (id bigserial PRIMARY KEY, v int)");
    for (let i = 0; i < 100; i++) {
      const ok = await (async () => {
        const c = new pg.Client({ host: '127.0.0.1', port: replica!.port, user: 'postgres', database: 'postgres' });
        await c.connect();
        try {
          return (await c.query<{ ok: boolean }>("SELECT to_regclass('bench_w') IS NOT NULL AS ok")).rows[0]!.ok;
        } finally {
          await c.end();
        }
      })();
      if (ok) break;
      await new Promise((r) => setTimeout(r, 100));
    }

    // ---- client.ratio: same replica, same connections, same concurrency
    const raw = new pg.Pool({ host: '127.0.0.1', port: replica!.port, user: 'postgres', database: 'postgres', max: concurrency });
    const ours = new ReplicatedPool({ routing: file.api, cluster: file.cluster, connection: { user: 'postgres', database: 'postgres' }, readPreference: 'secondary', max: concurrency });
    await ours.ready();
    await drive(raw, concurrency, 500, 10_000);
    await drive(ours, concurrency, 500, 10_000);
    const rawQps: number[] = [];
    const ourQps: number[] = [];
    for (let r = 0; r < rounds; r++) {
      // alternate which goes first, so drift on a shared machine hits both alike
      if (r % 2 === 0) {
        rawQps.push(await drive(raw, concurrency, roundMs, 10_000));
        ourQps.push(await drive(ours, concurrency, roundMs, 10_000));
      } else {
        ourQps.push(await drive(ours, concurrency, roundMs, 10_000));
        rawQps.push(await drive(raw, concurrency, roundMs, 10_000));
      }
    }
    await raw.end();

    // ---- coalescing: 200 identical concurrent reads, without and with
    const burst = async (db: ReplicatedPool): Promise<number> => {
      let executed = 0;
      const on = (): void => void executed++;
      db.on('query-executed', on);
      await Promise.all(Array.from({ length: 200 }, () => db.query('SELECT count(*) FROM bench_users WHERE id < $1', [5000])));
      db.off('query-executed', on);
      return executed;
    };
    const executedWithout = await burst(ours);
    const co = new ReplicatedPool({ routing: file.api, cluster: file.cluster, connection: { user: 'postgres', database: 'postgres' }, readPreference: 'secondary', max: concurrency, coalesce: true });
    await co.ready();
    const executedWith = await burst(co);
    await co.end();
    await ours.end();

    // ---- propagation: switchovers under a writer through the pool
    const samples: number[] = [];
    const db = new ReplicatedPool({ routing: file.api, cluster: file.cluster, connection: { user: 'postgres', database: 'postgres' }, holdWritesMs: 30_000, readYourWrites: false });
    await db.ready();
    let firstWrite: { nodeId: string; sentAt: number } | null = null;
    let watchFor: string | null = null;
    // the journal time of the first table that names the new primary, as the pool received it
    let namedAt: number | null = null;
    db.on('routing-changed', (e) => {
      if (watchFor && e.primary === watchFor && namedAt === null && e.table) namedAt = Date.parse(e.table.updatedAt);
    });
    db.on('query-executed', (e) => {
      if (watchFor && e.kind === 'write' && e.nodeId === watchFor && !firstWrite) firstWrite = { nodeId: e.nodeId, sentAt: Date.now() - e.durationMs };
    });
    let running = true;
    const writer = (async () => {
      let i = 0;
      while (running) {
        await db.query('INSERT INTO bench_w (v) VALUES ($1)', [i++]).catch(() => {});
        await new Promise((r) => setTimeout(r, 1));
      }
    })();
    for (let k = 0; k < switchovers; k++) {
      const before = await table(file.api, file.cluster);
      if (!before?.primary) break;
      const to = before.replicas.find((r) => r.healthy);
      if (!to) break;
      firstWrite = null;
      namedAt = null;
      watchFor = to.id;
      const res = await fetch(`${file.api}/v1/clusters/${file.cluster}/switchover`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${file.adminToken}` }, body: JSON.stringify({ to: to.id }) });
      if (res.status !== 202) break;
      let after: RoutingTable | null = null;
      const deadline = Date.now() + 60_000;
      while (Date.now() < deadline) {
        const t = await table(file.api, file.cluster);
        if (t?.writable && t.primary?.id === to.id && firstWrite) {
          after = t;
          break;
        }
        await new Promise((r) => setTimeout(r, 50));
      }
      if (!after || !firstWrite || namedAt === null) break;
      samples.push((firstWrite as { sentAt: number }).sentAt - namedAt);
      // let the old primary rejoin before the next one
      const healthyBy = Date.now() + 60_000;
      while (Date.now() < healthyBy) {
        const t = await table(file.api, file.cluster);
        if (t?.writable && t.replicas.every((r) => r.healthy)) break;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    running = false;
    await writer;
    await db.end();

    const qps = median(ourQps);
    const rawPgQps = median(rawQps);
    return {
      client: { qps: Math.round(qps), rawPgQps: Math.round(rawPgQps), ratio: Math.round((qps / rawPgQps) * 1000) / 1000, concurrency, rounds },
      propagation: { p99Ms: pct(samples, 99), p50Ms: pct(samples, 50), samplesMs: samples },
      coalesce: { reads: 200, executedWithout, executedWith },
    };
  } finally {
    await sb.down();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, fn: () => Promise<T | null | undefined | false>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const v = await fn().catch(() => null);
    if (v) return v;
    await sleep(50);
  }
  throw new Error(`bench client failover: timed out waiting for ${what}`);
}

/** SIGKILL of the primary under load through the pool, `trials` times: see `ClientFailoverBench`. */
export async function benchClientFailover(trials: number): Promise<ClientFailoverBench> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sy-bench-client-fo-'));
  const sb = new Sandbox({ engine: 'postgres', replicas: 2, sync: false, coordinators: 2, apiPort: await apiBase(), dir: path.join(dir, 'sb'), cluster: 'bench', settings: { cooldownMs: 0 }, pgPassword: benchPgPassword() });
  const out: ClientFailoverBench = { trials: 0, resumeP50Ms: null, resumeMaxMs: null, deliveryP50Ms: null, dispatchMaxMs: null, writeP50Ms: null, typicalWriteMs: null, reads: 0, readsRetried: 0, readsFailed: 0, writeErrors: 0, samplesMs: [] };
  let db: ReplicatedPool | null = null;
  try {
    const file: SandboxFile = await sb.up(() => {});
    await sqlOn(file.nodes[0]!.port, 'CREATE TABLE bench_ledger (id bigserial PRIMARY KEY, v int)');
    db = new ReplicatedPool({ routing: file.coordinators.map((c) => c.api), cluster: file.cluster, connection: { user: 'postgres', database: 'postgres' }, max: 6, holdWritesMs: 30_000 });
    await db.ready();
    const pool = db;
    // the pool's own account of each write and of each read's retry
    const executed: Array<{ at: number; nodeId: string; durationMs: number }> = [];
    const changes: Array<{ at: number; primary: string | null; journaledAt: number | null }> = [];
    pool.on('query-executed', (e) => {
      if (e.kind === 'write') executed.push({ at: Date.now(), nodeId: e.nodeId, durationMs: e.durationMs });
      else if (e.retried) out.readsRetried++;
    });
    pool.on('routing-changed', (e) => changes.push({ at: Date.now(), primary: e.primary, journaledAt: e.table ? Date.parse(e.table.updatedAt) : null }));
    let running = true;
    const acked: Array<{ at: number; port: number }> = [];
    const reader = async (): Promise<void> => {
      while (running) {
        try {
          await pool.query('SELECT count(*) FROM bench_ledger WHERE id < $1', [10]);
          out.reads++;
        } catch {
          out.readsFailed++;
        }
        await sleep(2);
      }
    };
    const writer = async (): Promise<void> => {
      let i = 0;
      while (running) {
        try {
          const r = await pool.query<{ port: number }>('INSERT INTO bench_ledger (v) VALUES ($1) RETURNING inet_server_port() AS port', [i++]);
          acked.push({ at: Date.now(), port: r.rows[0]!.port });
        } catch {
          out.writeErrors++;
        }
        await sleep(2);
      }
    };
    const load = Promise.all([reader(), reader(), reader(), reader(), writer()]);
    const resume: number[] = [];
    const delivery: number[] = [];
    const dispatch: number[] = [];
    const writeMs: number[] = [];
    const typical: number[] = [];
    try {
      for (let k = 0; k < trials; k++) {
        const before = await until('a healthy cluster', async () => {
          const t = await table(file.api, file.cluster);
          return t?.writable && t.primary && t.replicas.length === 2 && t.replicas.every((r) => r.healthy) ? t.primary : null;
        }, 120_000);
        await sleep(500);
        const victim = file.nodes.find((n) => n.id === before.id)!;
        const killedAt = Date.now();
        const mark = { changes: changes.length, acked: acked.length, executed: executed.length };
        process.kill(Number(fs.readFileSync(path.join(victim.dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]), 'SIGKILL');
        const after = await until('a new primary', async () => {
          const t = await table(file.api, file.cluster);
          return t?.writable && t.primary && t.primary.id !== before.id ? t.primary : null;
        }, 60_000);
        const first = await until('a write on the new primary', async () => acked.slice(mark.acked).find((a) => a.port === after.port), 60_000);
        const named = changes.slice(mark.changes).find((c) => c.primary === after.id && c.journaledAt !== null);
        const ran = executed.slice(mark.executed).find((e) => e.nodeId === after.id);
        if (!named || !ran) break;
        const before5 = executed.slice(0, mark.executed).slice(-50).map((e) => e.durationMs);
        resume.push(first.at - named.journaledAt!);
        delivery.push(named.at - named.journaledAt!);
        dispatch.push(Math.max(0, ran.at - ran.durationMs - named.at));
        writeMs.push(ran.durationMs);
        typical.push(median(before5));
        console.log(`  trial ${k + 1}: routing changed ${named.journaledAt! - killedAt} ms after the kill; writes resumed ${first.at - named.journaledAt!} ms after it (delivery ${named.at - named.journaledAt!} ms, dispatch ${Math.round(ran.at - ran.durationMs - named.at)} ms, write ${Math.round(ran.durationMs)} ms)`);
        out.trials++;
      }
    } finally {
      running = false;
      await load;
    }
    const r1 = (x: number | null): number | null => (x === null || Number.isNaN(x) ? null : Math.round(x * 10) / 10);
    out.samplesMs = resume;
    out.resumeP50Ms = r1(pct(resume, 50));
    out.resumeMaxMs = r1(pct(resume, 100));
    out.deliveryP50Ms = r1(pct(delivery, 50));
    out.dispatchMaxMs = r1(pct(dispatch, 100));
    out.writeP50Ms = r1(pct(writeMs, 50));
    out.typicalWriteMs = r1(typical.length ? median(typical) : null);
    return out;
  } finally {
    await db?.end();
    await sb.down();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
