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
import { steadyWriter, type Writer } from '../../bench/writer.js';
import type { RoutingTable } from '../../src/core/routing.js';
import { Sandbox, type SandboxFile, type SandboxNode, type SandboxOptions } from '../../src/sandbox/deploy.js';
import { isProcessAlive } from '../../src/sandbox/proc.js';
import { consecutiveFreePorts, postmasterPid, sql, stopSandbox, waitFor } from '../support/sandbox.js';

/**
 * As test/support/sandbox.ts startSandbox, in a directory of our own (`sy-chaos-*`):
 * other test runs on the machine clean up `sy-it-*`.
 */
export async function startChaosSandbox(over: Partial<SandboxOptions> = {}): Promise<{ sandbox: Sandbox; file: SandboxFile; dir: string }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sy-chaos-'));
  try {
    const coordinators = over.coordinators ?? 2;
    const apiPort = await consecutiveFreePorts(coordinators);
    const sandbox = new Sandbox({ engine: 'postgres', replicas: 2, sync: false, coordinators, apiPort, dir: path.join(dir, 'sb'), cluster: 'chaos', ...over });
    const file = await sandbox.up(() => {});
    return { sandbox, file, dir };
  } catch (err) {
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
  writer: Writer | null = null;
  watcher: RoutingWatcher;
  fence: FenceProber;
  /** signalled processes to resume if the test ends early: pid, or -pgid for a group */
  private readonly stopped = new Set<number>();
  private closed = false;
  private constructor(
    readonly s: Awaited<ReturnType<typeof startChaosSandbox>>,
    readonly name: string,
    readonly startedAt: number,
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
      return new ChaosRun(s, name, t0);
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

  async clusterInfo(api: string): Promise<{ leader: string | null; servedByLeader: boolean; generation: number; primary: string | null }> {
    const res = await fetch(`${api}/v1/clusters`, { signal: AbortSignal.timeout(1000) });
    const body = (await res.json()) as Array<{ name: string; leader: string | null; servedByLeader: boolean; generation: number; primary: string | null }>;
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

  startWriter(api = this.api()): Writer {
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
 * Async failover may lose acknowledged rows, but never silently: the failover journals
 * lostBytes > 0. `detail` explains a loss: when each lost row was acknowledged relative to
 * the fault, and the LSNs the failover decision was based on.
 */
export function lossIsJournaled(f: Finish, writer: Writer | null, faultAt: number): { silent: boolean; lostBytes: number[]; detail: string } {
  const started = f.events.filter((e) => e.type === 'failover.started');
  const lostBytes = started.map((e) => Number(e.data.lostBytes));
  const silent = f.lost.length > 0 && !lostBytes.some((b) => b > 0);
  let detail = `${f.lost.length} acknowledged rows lost, journaled lostBytes [${lostBytes.join(',')}]`;
  if (f.lost.length > 0) {
    const acks = f.lost.map((id) => {
      const i = writer ? writer.acked.indexOf(id) : -1;
      return `id ${id} acked at fault${i >= 0 ? `${writer!.ackTimes[i]! - faultAt >= 0 ? '+' : ''}${writer!.ackTimes[i]! - faultAt}` : '?'} ms`;
    });
    const ev = started.map((e) => {
      const evidence = (e.data as unknown as { evidence?: Array<{ node: string; lsn?: string | null; receivedAt: number; reachable: boolean; error?: string; silentMs?: number }> }).evidence ?? [];
      return `${e.id} e${e.data.epoch} ${String(e.data.from)}→${String(e.data.to)} (${String(e.data.reason)}) lostBytes ${String(e.data.lostBytes)}; evidence: ${evidence
        .map((x) => `${x.node} lsn=${x.lsn ?? 'null'} reachable=${x.reachable}${x.error ? ` ${x.error}` : ''} received at fault${x.receivedAt - faultAt >= 0 ? '+' : ''}${x.receivedAt - faultAt} ms`)
        .join('; ')}`;
    });
    detail += `: ${acks.join(', ')}; ${ev.join(' | ')}`;
  }
  return { silent, lostBytes, detail };
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
