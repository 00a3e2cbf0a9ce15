/**
 * Chaos harness: a real sandbox plus the instruments every fault test runs during the
 * fault, and the behavioural checks made afterwards.
 *
 * - a steady writer (bench/writer.ts) to the routing table's writable primary, recording
 *   every acknowledged id;
 * - a routing watcher polling every live coordinator's table every ~20 ms: a generation
 *   must always name the same primary, on every coordinator, and a coordinator's
 *   generation never goes backwards;
 * - a fence prober writing a tiny row to `fence_probe` on every node every ~50 ms: two
 *   nodes must never accept writes in overlapping windows;
 * - the journal (GET /v1/clusters/:c/events) and the daemons' logs, for what switchyard
 *   decided and did.
 *
 * Nothing here asserts timing: waits have generous deadlines and only bound how long a
 * test may hang.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { expect } from 'vitest';
import { spawn } from 'node:child_process';
import { steadyWriter, type Writer } from '../../bench/writer.js';
import type { HistoryItem } from '../../src/core/state.js';
import { parseLsn } from '../../src/core/lsn.js';
import type { RoutingTable } from '../../src/core/routing.js';
import { cliEntry, Sandbox, type SandboxFile, type SandboxNode, type SandboxOptions } from '../../src/sandbox/deploy.js';
import { isProcessAlive } from '../../src/sandbox/proc.js';
import { consecutiveFreePorts, postmasterPid, sql, stopSandbox, testPgPassword, waitFor } from '../support/sandbox.js';

/**
 * As test/support/sandbox.ts startSandbox, in a directory of our own (`sy-chaos-*`):
 * other test runs on the machine clean up `sy-it-*`.
 */
export async function startChaosSandbox(over: Partial<SandboxOptions> = {}): Promise<{ sandbox: Sandbox; file: SandboxFile; dir: string }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sy-chaos-'));
  try {
    const coordinators = over.coordinators ?? 2;
    const apiPort = await consecutiveFreePorts(coordinators);
    const sandbox = new Sandbox({ engine: 'postgres', replicas: 2, sync: false, coordinators, apiPort, dir: path.join(dir, 'sb'), cluster: 'chaos', pgPassword: testPgPassword(), ...over });
    const file = await sandbox.up(() => {});
    return { sandbox, file, dir };
  } catch (err) {
    // a start-up failure: keep the daemons' logs (SY_CHAOS_KEEP) before the directory goes
    const keep = process.env.SY_CHAOS_KEEP;
    const logs = path.join(dir, 'sb', 'logs');
    if (keep && fs.existsSync(logs)) {
      const dest = path.join(keep, `start-failed-${new Date().toISOString().replace(/[:.]/g, '-')}`);
      fs.cpSync(logs, dest, { recursive: true });
      console.log(`sandbox start-up failed (${(err as Error).message}): logs kept in ${dest}`);
    }
    if (!process.env.SY_KEEP_TEST_DIRS) fs.rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/* ------------------------------------------------------------------ journal */

export interface JournalEvent {
  id: string;
  type: string;
  at: string;
  data: Record<string, unknown> & { epoch: number };
}

/** Stream id → its millisecond part (Redis server time when it was appended). */
export function idMs(id: string): number {
  return Number(id.split('-')[0]);
}

export async function readEvents(api: string, cluster: string, opts: { after?: string; type?: string; timeoutMs?: number } = {}): Promise<{ events: JournalEvent[]; next: string }> {
  const all: JournalEvent[] = [];
  let after = opts.after ?? '0-0';
  for (;;) {
    const q = new URLSearchParams({ after, limit: '1000' });
    if (opts.type) q.set('type', opts.type);
    const res = await fetch(`${api}/v1/clusters/${cluster}/events?${q.toString()}`, { signal: AbortSignal.timeout(opts.timeoutMs ?? 5000) });
    if (!res.ok) throw new Error(`events: ${res.status}`);
    const body = (await res.json()) as { events: JournalEvent[]; next: string };
    all.push(...body.events);
    if (body.next === after || body.events.length === 0) return { events: all, next: body.next };
    after = body.next;
  }
}

/** A failover or switchover as GET /v1/clusters/:c/history shows it. */
export type HistoryEntry = HistoryItem;

export async function readHistory(api: string, cluster: string, timeoutMs = 5000): Promise<HistoryEntry[]> {
  const res = await fetch(`${api}/v1/clusters/${cluster}/history`, { signal: AbortSignal.timeout(timeoutMs) });
  if (!res.ok) throw new Error(`history: ${res.status}`);
  return (await res.json()) as HistoryEntry[];
}

/** The journal's epochs never go down: a deposed leader's append never lands after a newer leader's. */
export function epochRegressions(events: JournalEvent[]): string[] {
  const out: string[] = [];
  let max = 0;
  let maxId = '';
  for (const e of events) {
    if (e.data.epoch < max) out.push(`${e.id} ${e.type} epoch ${e.data.epoch} after ${maxId} at epoch ${max}`);
    if (e.data.epoch > max) {
      max = e.data.epoch;
      maxId = e.id;
    }
  }
  return out;
}

export function describeEvents(events: JournalEvent[]): string {
  return events
    .map((e) => {
      const { epoch, evidence: _ev, ...rest } = e.data;
      return `${e.id} e${epoch} ${e.type} ${JSON.stringify(rest)}`;
    })
    .join('\n');
}

/* -------------------------------------------------------------- processes */

/** Live children of `pid`, from /proc. */
export function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${e}/stat`, 'utf8');
      // pid (comm) state ppid …: comm may hold spaces and parentheses, so split after the last ')'
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(rest[1]) === pid && rest[0] !== 'Z') out.push(Number(e));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/* ------------------------------------------------------------------- logs */

export interface LogLine {
  file: string;
  time: number;
  msg: string;
  [k: string]: unknown;
}

export function readLogs(logDir: string, prefix: string): LogLine[] {
  const out: LogLine[] = [];
  if (!fs.existsSync(logDir)) return out;
  for (const name of fs.readdirSync(logDir)) {
    if (!name.startsWith(prefix) || !name.endsWith('.log')) continue;
    for (const line of fs.readFileSync(path.join(logDir, name), 'utf8').split('\n')) {
      if (!line.startsWith('{')) continue;
      try {
        const j = JSON.parse(line) as Record<string, unknown>;
        if (typeof j.time === 'number' && typeof j.msg === 'string') out.push({ ...j, file: name, time: j.time, msg: j.msg });
      } catch {
        // not a log line
      }
    }
  }
  return out.sort((a, b) => a.time - b.time);
}

/* ------------------------------------------------------------------ writer */

/** bench/writer.ts's steady writer, which records each row's WAL position too. */
export type LsnWriter = Writer;

/* --------------------------------------------------------- routing watcher */

export interface RoutingSample {
  at: number;
  coordinator: string;
  generation: number;
  epoch: number;
  writable: boolean;
  primary: string | null;
}

export class RoutingWatcher {
  readonly samples: RoutingSample[] = [];
  errors = 0;
  private running = true;
  private readonly loops: Array<Promise<void>>;

  constructor(
    coordinators: SandboxFile['coordinators'],
    cluster: string,
    everyMs = 20,
  ) {
    this.loops = coordinators.map(async (c) => {
      while (this.running) {
        try {
          const res = await fetch(`${c.api}/v1/clusters/${cluster}/routing`, { signal: AbortSignal.timeout(500) });
          if (res.ok) {
            const t = (await res.json()) as RoutingTable;
            this.samples.push({ at: Date.now(), coordinator: c.id, generation: t.generation, epoch: t.epoch, writable: t.writable, primary: t.primary?.id ?? null });
          } else this.errors++;
        } catch {
          // a stopped or killed coordinator: nothing to record
          this.errors++;
        }
        await sleep(everyMs);
      }
    });
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
  }

  /** Two different primaries under one generation (on any coordinators), or a generation going back on one coordinator. */
  violations(): string[] {
    const out: string[] = [];
    const byGen = new Map<number, Map<string, RoutingSample>>();
    const lastGen = new Map<string, RoutingSample>();
    for (const s of this.samples) {
      if (s.primary !== null) {
        const m = byGen.get(s.generation) ?? new Map<string, RoutingSample>();
        if (!m.has(s.primary)) m.set(s.primary, s);
        byGen.set(s.generation, m);
      }
      const prev = lastGen.get(s.coordinator);
      if (prev && s.generation < prev.generation) out.push(`${s.coordinator}: generation went back from ${prev.generation} to ${s.generation} at ${s.at}`);
      lastGen.set(s.coordinator, s);
    }
    for (const [g, m] of byGen) {
      if (m.size > 1) out.push(`generation ${g} names ${m.size} primaries: ${[...m.values()].map((s) => `${s.primary} (by ${s.coordinator} at ${s.at})`).join(', ')}`);
    }
    return out;
  }

  primariesSeen(): string[] {
    return [...new Set(this.samples.map((s) => s.primary).filter((p): p is string => p !== null))].sort();
  }
}

/* ----------------------------------------------------------- fence prober */

export interface FenceProbe {
  node: string;
  sent: number;
  acked: number;
  ok: boolean;
  err?: string;
}

export class FenceProber {
  readonly probes: FenceProbe[] = [];
  private running = true;
  private readonly loops: Array<Promise<void>>;

  constructor(nodes: SandboxNode[], everyMs = 50) {
    this.loops = nodes.map(async (n) => {
      let client: pg.Client | null = null;
      let seq = 0;
      while (this.running) {
        const sent = Date.now();
        try {
          if (!client) {
            const c = new pg.Client({ host: n.host, port: n.port, user: 'postgres', database: 'postgres', connectionTimeoutMillis: 1000, query_timeout: 1000, application_name: 'fence-probe' });
            c.on('error', () => {});
            client = c;
            await c.connect();
          }
          await client.query('INSERT INTO fence_probe (node, n) VALUES ($1, $2)', [n.id, ++seq]);
          this.probes.push({ node: n.id, sent, acked: Date.now(), ok: true });
        } catch (err) {
          const e = err as { code?: string; message?: string };
          this.probes.push({ node: n.id, sent, acked: Date.now(), ok: false, err: e.code ?? e.message ?? 'error' });
          // a read-only answer leaves the session usable; anything else: start over
          if (e.code !== '25006' && e.code !== '42P01') {
            const c = client;
            client = null;
            c?.end().catch(() => {});
          }
        }
        await sleep(everyMs);
      }
      await client?.end().catch(() => {});
    });
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
  }

  /** Runs of consecutive accepted probes per node. */
  runs(): Map<string, FenceProbe[][]> {
    const byNode = new Map<string, FenceProbe[][]>();
    const current = new Map<string, FenceProbe[]>();
    for (const p of [...this.probes].sort((a, b) => a.sent - b.sent)) {
      const runs = byNode.get(p.node) ?? [];
      byNode.set(p.node, runs);
      if (!p.ok) {
        current.delete(p.node);
        continue;
      }
      let run = current.get(p.node);
      if (!run) {
        run = [];
        runs.push(run);
        current.set(p.node, run);
      }
      run.push(p);
    }
    return byNode;
  }

  /**
   * Two nodes accepting writes at once. A run of accepted probes on node A proves A took
   * writes throughout [ack of its first, send of its last]; an INSERT accepted by another
   * node B entirely inside that window is a violation (sound: no false alarm from a slow
   * acknowledgement). `loose` lists overlaps of [first send, last ack] windows, which
   * may be timing noise, for diagnosis.
   */
  violations(): { certain: string[]; loose: string[] } {
    const runs = this.runs();
    const certain: string[] = [];
    const loose: string[] = [];
    const nodes = [...runs.keys()];
    for (const a of nodes) {
      for (const ra of runs.get(a)!) {
        const start = ra[0]!.acked;
        const end = ra.at(-1)!.sent;
        const looseA: [number, number] = [ra[0]!.sent, ra.at(-1)!.acked];
        for (const b of nodes) {
          if (b === a) continue;
          for (const rb of runs.get(b)!) {
            for (const p of rb) {
              if (start < end && p.sent >= start && p.acked <= end) {
                certain.push(`${b} accepted a write in [${p.sent}, ${p.acked}] while ${a} accepted writes throughout [${start}, ${end}]`);
                break;
              }
            }
            if (a < b && rb[0]!.sent < looseA[1] && looseA[0] < rb.at(-1)!.acked) {
              loose.push(`${a} [${looseA[0]}, ${looseA[1]}] and ${b} [${rb[0]!.sent}, ${rb.at(-1)!.acked}]`);
            }
          }
        }
      }
    }
    return { certain, loose };
  }

  /** Which nodes accepted at least one write. */
  writers(): string[] {
    return [...new Set(this.probes.filter((p) => p.ok).map((p) => p.node))].sort();
  }
}

/* -------------------------------------------------------------- the run */

export interface Finish {
  acked: number[];
  lost: number[];
  primary: string;
  maxGapMs: number;
  events: JournalEvent[];
  routingViolations: string[];
  fenceViolations: { certain: string[]; loose: string[] };
  epochRegressions: string[];
  nodes: Array<{ id: string; reachable: boolean; inRecovery: boolean | null; timeline: number | null; rows: number | null }>;
}

export class ChaosRun {
  writer: LsnWriter | null = null;
  watcher: RoutingWatcher;
  fence: FenceProber;
  /** signalled processes to resume if the test ends early: pid, or -pgid for a group */
  private readonly stopped = new Set<number>();
  private closed = false;
  private constructor(
    readonly s: Awaited<ReturnType<typeof startChaosSandbox>>,
    readonly name: string,
    readonly startedAt: number,
    /** synchronous mode: no acknowledged row may be lost at all */
    readonly synchronous: boolean,
  ) {
    this.watcher = new RoutingWatcher(this.file.coordinators, this.file.cluster);
    this.fence = new FenceProber(this.file.nodes);
  }

  get file(): SandboxFile {
    return this.s.file;
  }

  get cluster(): string {
    return this.file.cluster;
  }

  get logDir(): string {
    return path.join(this.s.dir, 'sb', 'logs');
  }

  static async start(name: string, over: Partial<SandboxOptions> = {}): Promise<ChaosRun> {
    const t0 = Date.now();
    const s = await startChaosSandbox(over);
    try {
      const primary = s.file.nodes[0]!;
      await sql(primary.port, 'CREATE TABLE w (id int PRIMARY KEY)');
      await sql(primary.port, 'CREATE TABLE fence_probe (node text NOT NULL, n int NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp())');
      for (const r of s.file.nodes.slice(1)) {
        await waitFor(`fence_probe on ${r.id}`, async () => (await sql(r.port, "SELECT to_regclass('fence_probe') IS NOT NULL AS ok")).rows[0]?.ok === true, 30_000, 50);
      }
      return new ChaosRun(s, name, t0, over.sync ?? false);
    } catch (err) {
      await stopSandbox(s);
      throw err;
    }
  }

  coordinator(id: string): SandboxFile['coordinators'][number] {
    const c = this.file.coordinators.find((x) => x.id === id);
    if (!c) throw new Error(`no coordinator ${id}`);
    return c;
  }

  node(id: string): SandboxNode {
    const n = this.file.nodes.find((x) => x.id === id);
    if (!n) throw new Error(`no node ${id}`);
    return n;
  }

  /** The API of a coordinator other than `avoid` (ids). */
  api(avoid: string[] = []): string {
    const c = this.file.coordinators.find((x) => !avoid.includes(x.id));
    if (!c) throw new Error('no coordinator left to ask');
    return c.api;
  }

  async routing(api = this.api()): Promise<RoutingTable> {
    const res = await fetch(`${api}/v1/clusters/${this.cluster}/routing`, { signal: AbortSignal.timeout(2000) });
    if (!res.ok) throw new Error(`routing: ${res.status}`);
    return (await res.json()) as RoutingTable;
  }

  /** The coordinator holding the lease, as the coordinators themselves say (exactly one must). */
  async leader(avoid: string[] = []): Promise<SandboxFile['coordinators'][number]> {
    return waitFor('exactly one coordinator serving as leader', async () => {
      const leaders: string[] = [];
      for (const c of this.file.coordinators) {
        if (avoid.includes(c.id)) continue;
        const res = await fetch(`${c.api}/v1/clusters`, { signal: AbortSignal.timeout(1000) });
        const body = (await res.json()) as Array<{ name: string; leader: string | null; servedByLeader: boolean }>;
        const mine = body.find((x) => x.name === this.cluster);
        if (mine?.servedByLeader) leaders.push(c.id);
      }
      return leaders.length === 1 ? this.coordinator(leaders[0]!) : null;
    }, 20_000, 100);
  }

  async clusterInfo(api: string): Promise<{ leader: string | null; servedByLeader: boolean; generation: number; primary: string | null; paused: boolean }> {
    const res = await fetch(`${api}/v1/clusters`, { signal: AbortSignal.timeout(1000) });
    const body = (await res.json()) as Array<{ name: string; leader: string | null; servedByLeader: boolean; generation: number; primary: string | null; paused: boolean }>;
    const mine = body.find((x) => x.name === this.cluster);
    if (!mine) throw new Error('cluster missing from /v1/clusters');
    return mine;
  }

  async primaryNode(api = this.api()): Promise<SandboxNode> {
    const t = await waitFor('a writable primary', async () => {
      const x = await this.routing(api);
      return x.writable && x.primary ? x : null;
    }, 30_000, 20);
    return this.node(t.primary!.id);
  }

  startWriter(api = this.api()): LsnWriter {
    this.writer = steadyWriter(api, this.cluster, 'w');
    return this.writer;
  }

  /** Wait until the writer has `n` more acknowledged rows than it has now. */
  async writesProgress(n = 50, timeoutMs = 60_000): Promise<void> {
    const w = this.writer!;
    const from = w.acked.length;
    await waitFor(`${n} more acknowledged writes`, async () => w.acked.length >= from + n, timeoutMs, 20);
  }

  /**
   * Keep the instruments running for `ms` with nothing else happening: an observation
   * window long enough for a wrong decision (say, a failover after failAfterMs) to show.
   */
  async hold(ms: number): Promise<void> {
    await sleep(ms);
  }

  /** An admin route (POST, with the sandbox's admin token): its status and body. */
  async admin(route: string, body: Record<string, unknown> = {}, api = this.api()): Promise<{ status: number; body: Record<string, unknown> }> {
    const res = await fetch(`${api}/v1/clusters/${this.cluster}/${route}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${this.file.adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    });
    const text = await res.text();
    let parsed: Record<string, unknown> = {};
    try {
      parsed = JSON.parse(text) as Record<string, unknown>;
    } catch {
      parsed = { text };
    }
    return { status: res.status, body: parsed };
  }

  /**
   * Start a fresh agent for `node` with the sandbox's config (as a service manager would
   * after the agent died), logging to the same file. The sandbox stops it with the rest.
   * Returns its pid (also recorded as the node's agentPid).
   */
  restartAgent(node: SandboxNode): number {
    const sb = path.join(this.s.dir, 'sb');
    const cfg = path.join(sb, 'config', `agent-${node.id}.json`);
    const fd = fs.openSync(path.join(this.logDir, `agent-${node.id}.log`), 'a');
    try {
      const child = spawn(process.execPath, [cliEntry(), 'agent', '--config', cfg], { stdio: ['ignore', fd, fd], env: process.env });
      if (child.pid === undefined) throw new Error(`could not start an agent for ${node.id}`);
      this.s.sandbox.children.push(child);
      node.agentPid = child.pid;
      return child.pid;
    } finally {
      fs.closeSync(fd);
    }
  }

  /* ----------------------------------------------------------- signals */

  signal(pid: number, sig: NodeJS.Signals): void {
    process.kill(pid, sig);
    if (sig === 'SIGSTOP') this.stopped.add(pid);
    if (sig === 'SIGCONT' || sig === 'SIGKILL') this.stopped.delete(pid);
  }

  /**
   * Freeze (or thaw) a whole server: the postmaster's process group (it leads its own,
   * spawned detached) AND each of its children. A PostgreSQL child calls setsid() at
   * start (InitPostmasterChild), so backends, walsenders, the checkpointer… each lead
   * their own group and `kill(-postmaster)` alone reaches only the postmaster. Stopping
   * the postmaster first means no new child appears while we go through them. Returns the
   * pids signalled.
   */
  signalPostgres(node: SandboxNode, sig: NodeJS.Signals): number[] {
    const pm = postmasterPid(node.dataDir);
    const kids = (): number[] => childrenOf(pm);
    const done: number[] = [];
    const one = (pid: number): void => {
      try {
        this.signal(pid, sig);
        done.push(Math.abs(pid));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
      }
    };
    if (sig === 'SIGCONT') {
      for (const k of kids()) one(k);
      one(-pm);
    } else {
      one(-pm);
      for (const k of kids()) one(k);
    }
    return done;
  }

  /**
   * Lose a whole database host at once: freeze the postmaster (no new child) and every
   * child, so that nothing commits from here on, then SIGKILL the agent, the postmaster
   * and every child. Returns the time everything was frozen.
   */
  loseHost(node: SandboxNode): number {
    const frozen = this.signalPostgres(node, 'SIGSTOP');
    const at = Date.now();
    this.signal(node.agentPid, 'SIGKILL');
    for (const pid of frozen) {
      try {
        this.signal(pid, 'SIGKILL');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
      }
      this.stopped.delete(-pid);
    }
    return at;
  }

  /* ------------------------------------------------------------ finish */

  async journal(api = this.api()): Promise<JournalEvent[]> {
    return (await readEvents(api, this.cluster)).events;
  }

  /**
   * Stop the instruments and gather what happened: the rows on the final primary, the
   * journal, and every check's violations. `avoid`: coordinators that are gone.
   */
  async finish(avoid: string[] = []): Promise<Finish> {
    const api = this.api(avoid);
    const w = this.writer;
    if (w) await w.stop();
    const primary = await this.primaryNode(api);
    // a last look at the fence after the writer stopped, then stop the instruments
    await sleep(200);
    await this.watcher.stop();
    await this.fence.stop();
    const acked = w ? [...w.acked] : [];
    const have = new Set((await sql<{ id: number }>(primary.port, 'SELECT id FROM w')).rows.map((r) => r.id));
    const lost = acked.filter((id) => !have.has(id));
    const events = await this.journal(api);
    const nodes: Finish['nodes'] = [];
    for (const n of this.file.nodes) {
      try {
        const r = await sql<{ rec: boolean; tli: number; rows: number }>(
          n.port,
          "SELECT pg_is_in_recovery() AS rec, (SELECT timeline_id FROM pg_control_checkpoint())::int AS tli, (SELECT count(*)::int FROM w) AS rows",
        );
        const row = r.rows[0]!;
        nodes.push({ id: n.id, reachable: true, inRecovery: row.rec, timeline: row.tli, rows: row.rows });
      } catch {
        nodes.push({ id: n.id, reachable: false, inRecovery: null, timeline: null, rows: null });
      }
    }
    const f: Finish = {
      acked,
      lost,
      primary: primary.id,
      maxGapMs: w ? w.maxGapMs() : 0,
      events,
      routingViolations: this.watcher.violations(),
      fenceViolations: this.fence.violations(),
      epochRegressions: epochRegressions(events),
      nodes,
    };
    const types = events.reduce<Record<string, number>>((m, e) => ({ ...m, [e.type]: (m[e.type] ?? 0) + 1 }), {});
    console.log(
      `[${this.name}] ${acked.length} rows acknowledged, ${lost.length} lost, longest write gap ${f.maxGapMs} ms; final primary ${f.primary}; ` +
        `primaries seen ${this.watcher.primariesSeen().join(',')}; nodes that accepted fence probes ${this.fence.writers().join(',')} ` +
        `(${this.fence.probes.length} probes, ${this.watcher.samples.length} routing samples); journal ${JSON.stringify(types)}; ` +
        `nodes ${JSON.stringify(nodes)}; loose fence overlaps ${f.fenceViolations.loose.length}`,
    );
    if (f.fenceViolations.loose.length) console.log(`[${this.name}] loose fence overlaps (diagnostic): ${f.fenceViolations.loose.join(' | ')}`);
    return f;
  }

  /**
   * With SY_CHAOS_KEEP=<dir>: keep the evidence of this run (the journal and the history
   * from a live coordinator, the daemons' and the servers' logs) in <dir>/<name>-<time>,
   * small enough to keep for every run, unlike the data directories (SY_KEEP_TEST_DIRS).
   */
  private async keep(): Promise<void> {
    const root = process.env.SY_CHAOS_KEEP;
    if (!root) return;
    const dest = path.join(root, `${this.name}-${new Date(this.startedAt).toISOString().replace(/[:.]/g, '-')}`);
    fs.mkdirSync(dest, { recursive: true });
    for (const c of this.file.coordinators) {
      try {
        const events = await readEvents(c.api, this.cluster, { timeoutMs: 2000 });
        fs.writeFileSync(path.join(dest, 'journal.json'), JSON.stringify(events.events, null, 1));
        fs.writeFileSync(path.join(dest, 'journal.txt'), describeEvents(events.events) + '\n');
        fs.writeFileSync(path.join(dest, 'history.json'), JSON.stringify(await readHistory(c.api, this.cluster, 2000), null, 1));
        break;
      } catch {
        // a killed or frozen coordinator: ask the next one
      }
    }
    if (fs.existsSync(this.logDir)) fs.cpSync(this.logDir, path.join(dest, 'logs'), { recursive: true });
    const data = path.join(this.s.dir, 'sb', 'data');
    if (fs.existsSync(data)) {
      fs.mkdirSync(path.join(dest, 'logs'), { recursive: true });
      for (const f of fs.readdirSync(data)) if (f.endsWith('.log')) fs.copyFileSync(path.join(data, f), path.join(dest, 'logs', `postgres-${f}`));
    }
    fs.writeFileSync(path.join(dest, 'sandbox.json'), JSON.stringify({ ...this.file, adminToken: '(removed)' }, null, 2));
    console.log(`[${this.name}] evidence kept in ${dest}`);
  }

  /** Resume anything still stopped, stop the instruments, take the sandbox down. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const pid of this.stopped) {
      try {
        process.kill(pid, 'SIGCONT');
      } catch {
        // gone
      }
    }
    this.stopped.clear();
    await this.writer?.stop().catch(() => {});
    await this.watcher.stop().catch(() => {});
    await this.fence.stop().catch(() => {});
    await this.keep().catch((err: unknown) => console.log(`[${this.name}] could not keep the evidence: ${(err as Error).message}`));
    console.log(`[${this.name}] sandbox ${this.s.dir} (logs in sb/logs), ${Math.round((Date.now() - this.startedAt) / 1000)} s`);
    await stopSandbox(this.s);
  }
}

/** Checks every fault test makes at the end, whatever the fault. */
export function expectSafe(f: Finish): void {
  expect(f.routingViolations, 'two primaries under one routing generation').toEqual([]);
  expect(f.fenceViolations.certain, 'two nodes accepting writes at once').toEqual([]);
  expect(f.epochRegressions, 'a journal entry with an older epoch after a newer one').toEqual([]);
  expect(f.nodes.filter((n) => n.reachable && n.inRecovery === false).length, 'nodes out of recovery at the end').toBeLessThanOrEqual(1);
}

/**
 * The least WAL one lost row can account for. Each row is its own transaction, and the
 * new timeline holds the old one exactly up to the fork point, so a row missing from it
 * has at least its commit record (a 24-byte record header plus the commit time) past the
 * fork: the measured loss (end of WAL − fork point) can never be smaller than this per row.
 */
export const MIN_WAL_BYTES_PER_LOST_ROW = 32;

export interface LossInput {
  synchronous: boolean;
  /** acknowledged ids missing from the final primary */
  lost: number[];
  /** when each lost id was acknowledged (ms since the epoch) */
  ackedAt: (id: number) => number | undefined;
  /** each row's WAL position after its INSERT, before its commit (when the writer recorded it) */
  lsnOf?: (id: number) => string | undefined;
  events: JournalEvent[];
  history: HistoryEntry[];
  /** nodes whose agent the test killed for good: their loss cannot be measured */
  deadAgents: string[];
  faultAt: number;
}

export interface OperationLoss {
  operationId: string;
  kind: 'failover' | 'switchover';
  from: string | null;
  to: string;
  /** acknowledged rows this operation discarded (acknowledged before it completed, after the previous one did) */
  rows: number[];
  estimatedBytes: number | null;
  /** the failover.loss entry: null while none is journaled */
  measured: { lostBytes: number; walEnd: string; forkLsn: string; id: string } | null;
  history: HistoryEntry | null;
  verdict: 'none' | 'measured' | 'unknown' | 'violation';
  why: string;
}

export interface LossVerdict {
  /** a row lost silently, or under-measured, or lost in synchronous mode / by a switchover */
  violations: string[];
  /** loss that could not be measured because the old primary's agent was dead (host loss): not a failure, said out loud */
  unknown: string[];
  operations: OperationLoss[];
  /** lost rows acknowledged after every operation completed: no failover can explain them */
  unexplained: number[];
  detail: string;
}

const sign = (ms: number): string => `${ms >= 0 ? '+' : ''}${ms}`;

/**
 * Accounting for every acknowledged row missing from the final primary.
 *
 * Synchronous mode: none may be missing. Asynchronous mode: each missing row is charged
 * to the successful operation that discarded it (the first to complete after its
 * acknowledgement), and that operation must be a failover whose loss was MEASURED
 * (`failover.loss` journaled with lostBytes > 0, at least MIN_WAL_BYTES_PER_LOST_ROW per
 * row); a measured loss of 0 bytes with rows missing is a silent loss. The only excuse
 * for no measurement is an old primary whose agent was dead (host loss): then history
 * keeps the estimate with lossMeasured false, and the loss is reported as unknown.
 */
export function lossIsJournaled(input: LossInput): LossVerdict {
  const { events, history } = input;
  const completedAt = new Map<string, { at: number; outcome: string }>();
  for (const e of events) if (e.type === 'failover.completed') completedAt.set(String(e.data.operationId), { at: idMs(e.id), outcome: String(e.data.outcome) });
  const started = events.filter((e) => e.type === 'failover.started');
  const measuredOf = (op: string): OperationLoss['measured'] => {
    const m = events.filter((e) => e.type === 'failover.loss' && e.data.operationId === op).at(-1);
    return m ? { lostBytes: Number(m.data.lostBytes), walEnd: String(m.data.walEnd), forkLsn: String(m.data.forkLsn), id: m.id } : null;
  };
  const ops: OperationLoss[] = started
    .filter((e) => completedAt.get(String(e.data.operationId))?.outcome === 'success')
    .sort((a, b) => completedAt.get(String(a.data.operationId))!.at - completedAt.get(String(b.data.operationId))!.at)
    .map((e) => {
      const id = String(e.data.operationId);
      return {
        operationId: id,
        kind: e.data.kind === 'switchover' ? 'switchover' : 'failover',
        from: typeof e.data.from === 'string' ? e.data.from : null,
        to: String(e.data.to),
        rows: [],
        estimatedBytes: typeof e.data.lostBytes === 'number' ? e.data.lostBytes : null,
        measured: measuredOf(id),
        history: history.find((h) => h.id === id) ?? null,
        verdict: 'none',
        why: '',
      };
    });
  const unexplained: number[] = [];
  for (const id of input.lost) {
    const at = input.ackedAt(id);
    const op = at === undefined ? ops[0] : ops.find((o) => completedAt.get(o.operationId)!.at >= at);
    if (op) op.rows.push(id);
    else unexplained.push(id);
  }

  /** lost rows whose INSERT ended at or past the measured end of WAL */
  const beyond = (o: OperationLoss): number[] => {
    const end = parseLsn(o.measured?.walEnd);
    if (end === null || !input.lsnOf) return [];
    return o.rows.filter((id) => {
      const at = parseLsn(input.lsnOf!(id));
      return at !== null && at >= end;
    });
  };
  /** where the lost rows were written, against the fork point (diagnostic) */
  const positions = (o: OperationLoss): string => {
    const fork = parseLsn(o.measured?.forkLsn);
    const at = o.rows.map((id) => parseLsn(input.lsnOf?.(id))).filter((x): x is number => x !== null);
    if (fork === null || at.length === 0) return '';
    const before = at.filter((x) => x < fork);
    return `; lost rows written from fork${sign(Math.min(...at) - fork)} to fork${sign(Math.max(...at) - fork)} bytes${before.length ? `, ${before.length} of them before the fork` : ''}`;
  };
  const violations: string[] = [];
  const unknown: string[] = [];
  if (input.synchronous && input.lost.length > 0) violations.push(`synchronous mode lost ${input.lost.length} acknowledged rows`);
  if (unexplained.length > 0) violations.push(`${unexplained.length} acknowledged rows missing that no failover explains (acknowledged after every operation completed): ${unexplained.slice(0, 20).join(',')}`);
  for (const o of ops) {
    const h = o.history;
    if (o.measured && h && (!h.lossMeasured || h.lostBytes !== o.measured.lostBytes)) {
      violations.push(`${o.operationId}: failover.loss ${o.measured.id} says ${o.measured.lostBytes} bytes, history says ${h.lostBytes} (lossMeasured ${String(h.lossMeasured)})`);
    }
    if (h?.lossMeasured && !o.measured) violations.push(`${o.operationId}: history says lossMeasured, but no failover.loss entry is journaled`);
    const n = o.rows.length;
    if (n === 0) {
      o.verdict = o.measured ? 'measured' : 'none';
      o.why = o.measured ? `no acknowledged row lost; measured ${o.measured.lostBytes} bytes` : 'no acknowledged row lost';
      continue;
    }
    if (o.kind === 'switchover') {
      o.verdict = 'violation';
      o.why = `a switchover lost ${n} acknowledged rows`;
    } else if (o.measured) {
      const floor = n * MIN_WAL_BYTES_PER_LOST_ROW;
      if (o.measured.lostBytes === 0) {
        o.verdict = 'violation';
        o.why = `silent loss: ${n} acknowledged rows missing, measured lostBytes 0 (walEnd ${o.measured.walEnd}, fork ${o.measured.forkLsn})`;
      } else if (o.measured.lostBytes < floor) {
        o.verdict = 'violation';
        o.why = `under-measured: ${n} acknowledged rows missing need at least ${floor} bytes of WAL past the fork, measured ${o.measured.lostBytes} (walEnd ${o.measured.walEnd}, fork ${o.measured.forkLsn})`;
      } else if (beyond(o).length > 0) {
        // an acknowledged row's commit was flushed past its INSERT's position: the end of WAL is further still
        o.verdict = 'violation';
        o.why = `under-measured: walEnd ${o.measured.walEnd} falls short of ${beyond(o).length} lost rows written further on (${beyond(o)
          .slice(0, 10)
          .map((id) => `id ${id} at ${input.lsnOf!(id)!}`)
          .join(', ')}); measured ${o.measured.lostBytes} bytes from fork ${o.measured.forkLsn}`;
      } else {
        o.verdict = 'measured';
        o.why = `${n} rows lost, measured ${o.measured.lostBytes} bytes (${Math.round(o.measured.lostBytes / n)} per row; walEnd ${o.measured.walEnd}, fork ${o.measured.forkLsn}${positions(o)})`;
      }
    } else if (o.from && input.deadAgents.includes(o.from)) {
      o.verdict = 'unknown';
      o.why = `${n} rows lost, loss UNKNOWN: ${o.from}'s agent is dead, nothing measured (history lossMeasured ${String(h?.lossMeasured)}, estimate ${h?.lostBytes ?? o.estimatedBytes ?? '?'} bytes)`;
      unknown.push(`${o.operationId}: ${o.why}`);
    } else {
      o.verdict = 'violation';
      o.why = `${n} rows lost and no failover.loss journaled although ${o.from ?? 'the old primary'}'s agent lived (history lossMeasured ${String(h?.lossMeasured)}, estimate ${h?.lostBytes ?? o.estimatedBytes ?? '?'} bytes)`;
    }
    if (o.verdict === 'violation') violations.push(`${o.operationId} ${o.from ?? '?'}→${o.to}: ${o.why}`);
  }

  let detail = `${input.lost.length} acknowledged rows lost; ${ops.map((o) => `${o.operationId} ${o.kind} ${o.from ?? '?'}→${o.to}: ${o.verdict} (${o.why})`).join('; ') || 'no successful failover'}`;
  if (input.lost.length > 0) {
    const acks = input.lost.slice(0, 30).map((id) => {
      const at = input.ackedAt(id);
      return `id ${id} acked at fault${at === undefined ? '?' : sign(at - input.faultAt)} ms${input.lsnOf?.(id) ? ` (lsn ${input.lsnOf(id)!})` : ''}`;
    });
    const ev = started.map((e) => {
      const evidence = (e.data as unknown as { evidence?: Array<{ node: string; lsn?: string | null; receivedAt: number; reachable: boolean; error?: string }> }).evidence ?? [];
      return `${e.id} e${e.data.epoch} ${String(e.data.from)}→${String(e.data.to)} (${String(e.data.reason)}) estimated lostBytes ${String(e.data.lostBytes)}; evidence: ${evidence
        .map((x) => `${x.node} lsn=${x.lsn ?? 'null'} reachable=${x.reachable}${x.error ? ` ${x.error}` : ''} received at fault${sign(x.receivedAt - input.faultAt)} ms`)
        .join('; ')}`;
    });
    detail += `: ${acks.join(', ')}${input.lost.length > 30 ? ', …' : ''}; ${ev.join(' | ')}`;
  }
  return { violations, unknown, operations: ops, unexplained, detail };
}

/**
 * lossIsJournaled on the run's journal and history, after waiting (up to `waitMs`) for
 * the measurement of every failover that lost rows and whose old primary's agent lives.
 * Prints the verdict, and says so loudly when a loss is unknown (host loss).
 */
export async function lossAccountedFor(
  run: ChaosRun,
  f: Finish,
  faultAt: number,
  /** expectMeasured: every successful failover whose old primary's agent lives must get its failover.loss, rows lost or not (its postmaster crashed) */
  opts: { deadAgents?: string[]; waitMs?: number; avoid?: string[]; expectMeasured?: boolean } = {},
): Promise<LossVerdict> {
  const api = run.api(opts.avoid ?? []);
  const w = run.writer;
  const ackedAt = (id: number): number | undefined => {
    const i = w ? w.acked.indexOf(id) : -1;
    return i >= 0 ? w!.ackTimes[i] : undefined;
  };
  const judge = async (): Promise<LossVerdict> =>
    lossIsJournaled({ synchronous: run.synchronous, lost: f.lost, ackedAt, lsnOf: (id) => w?.lsnOf(id), events: await run.journal(api), history: await readHistory(api, run.cluster), deadAgents: opts.deadAgents ?? [], faultAt });
  const t0 = Date.now();
  let v = await judge();
  const unmeasured = (x: LossVerdict): OperationLoss[] =>
    x.operations.filter((o) => (o.rows.length > 0 || opts.expectMeasured) && o.kind === 'failover' && !o.measured && !(o.from && (opts.deadAgents ?? []).includes(o.from)));
  while (unmeasured(v).length > 0 && Date.now() - t0 < (opts.waitMs ?? 10_000)) {
    await sleep(250);
    v = await judge();
  }
  if (opts.expectMeasured) {
    for (const o of unmeasured(v)) v.violations.push(`${o.operationId} ${o.from ?? '?'}→${o.to}: no failover.loss journaled within ${opts.waitMs ?? 10_000} ms although ${o.from ?? 'the old primary'}'s agent lives`);
  }
  console.log(`[${run.name}] loss accounting after ${Date.now() - t0} ms: ${v.detail}`);
  for (const u of v.unknown) console.log(`[${run.name}] LOSS UNKNOWN (old primary's agent dead, not a failure): ${u}`);
  for (const x of v.violations) console.log(`[${run.name}] LOSS VIOLATION: ${x}`);
  return v;
}

export function isAlive(pid: number): boolean {
  return isProcessAlive(pid);
}

/** A fault that must not fail over: same primary throughout, no failover, no row lost, nobody else took writes. */
export function expectNoFailover(run: ChaosRun, f: Finish, primary: string): void {
  expectSafe(f);
  expect(f.events.filter((e) => e.type === 'failover.started').map((e) => `${e.id} ${JSON.stringify(e.data.reason)}`), 'failover.started in the journal').toEqual([]);
  expect(f.primary).toBe(primary);
  expect(run.watcher.primariesSeen(), 'primaries named by the routing tables').toEqual([primary]);
  expect(run.fence.writers(), 'nodes that accepted a fence probe').toEqual([primary]);
  expect(f.lost, 'acknowledged rows missing on the primary').toEqual([]);
}

/** Wait until the routing table (from `api`) shows `primary` writable and every other node a healthy replica. */
export async function waitAllHealthy(run: ChaosRun, primary: string, api = run.api(), timeoutMs = 60_000): Promise<void> {
  await waitFor(`${primary} writable and every replica healthy`, async () => {
    const t = await run.routing(api);
    return t.writable && t.primary?.id === primary && t.replicas.length === run.file.nodes.length - 1 && t.replicas.every((r) => r.healthy);
  }, timeoutMs, 50);
}

/** What a coordinator did (per its own log) from `sinceMs` on: journal appends, jobs sent, leases acquired. */
export function coordinatorActs(run: ChaosRun, coordinator: string, sinceMs: number): LogLine[] {
  return readLogs(run.logDir, `coordinator-${coordinator}`).filter((l) => l.time >= sinceMs && ['journaled', 'job sent', 'lease acquired: leading'].includes(l.msg));
}

export interface AgentJob {
  agent: string;
  jobId: string;
  epoch: number;
  action: string;
  receivedAt: number;
  doneAt: number | null;
  refusedAt: number | null;
  code: string | null;
}

/** Every job the agents received, from their logs, with how it ended. */
export function agentJobs(run: ChaosRun): AgentJob[] {
  const jobs = new Map<string, AgentJob>();
  for (const l of readLogs(run.logDir, 'agent-')) {
    const jobId = typeof l.jobId === 'string' ? l.jobId : null;
    if (!jobId) continue;
    const key = `${l.file}/${jobId}`;
    if (l.msg === 'job received') {
      jobs.set(key, { agent: l.file, jobId, epoch: Number(l.epoch), action: String(l.action), receivedAt: l.time, doneAt: null, refusedAt: null, code: null });
    } else {
      const j = jobs.get(key);
      if (!j) continue;
      if (l.msg === 'job done') j.doneAt = l.time;
      if (l.msg === 'job refused or failed') {
        j.refusedAt = l.time;
        j.code = typeof l.code === 'string' ? l.code : null;
      }
    }
  }
  return [...jobs.values()];
}
