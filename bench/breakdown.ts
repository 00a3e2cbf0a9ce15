/**
 * Where the time of a failover, a restart in place or a switchover goes. Every stage is
 * read back from Redis after the trial, never scraped from logs: the observation stream
 * (the agent's own `at` and Redis's stream id), the journal (stream ids), the operator
 * command stream, and the timing trace `sy:{c}:trace` (see src/bus/trace.ts) that
 * agents and coordinators write. All processes of the bench run on one host, so their
 * wall clocks and Redis's agree; stages are ms since the trial's start (the kill, or the
 * switchover request).
 */
import { Redis } from 'ioredis';
import { keys } from '../src/bus/keys.js';
import { readTrace, type TraceEntry } from '../src/bus/trace.js';

type Trace = TraceEntry & { id: string };
interface StreamEntry {
  id: string;
  ms: number;
  e: Record<string, unknown>;
}

export interface Window {
  trace: Trace[];
  obs: StreamEntry[];
  log: StreamEntry[];
  cmd: StreamEntry[];
}

/** Stage name → ms since the start of the trial (null: not seen). */
export type Stages = Record<string, number | null>;

const idMs = (id: string): number => Number(id.split('-')[0]);

async function readStream(redis: Redis, key: string, sinceMs: number): Promise<StreamEntry[]> {
  const rows = await redis.xrange(key, `${Math.floor(sinceMs)}-0`, '+', 'COUNT', 20_000);
  const out: StreamEntry[] = [];
  for (const [id, fields] of rows) {
    const i = fields.indexOf('e');
    if (i < 0) continue;
    try {
      out.push({ id, ms: idMs(id), e: JSON.parse(fields[i + 1]!) as Record<string, unknown> });
    } catch {
      // unreadable: not part of the timing
    }
  }
  return out;
}

/** Everything written to the cluster's streams since `sinceMs` (a little before the trial's start). */
export async function readWindow(redisUrl: string, cluster: string, sinceMs: number): Promise<Window> {
  const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 2 });
  redis.on('error', () => {});
  await redis.connect();
  try {
    const k = keys(cluster);
    const [trace, obs, log, cmd] = await Promise.all([readTrace(redis, k.trace, sinceMs), readStream(redis, k.obs, sinceMs), readStream(redis, k.log, sinceMs), readStream(redis, k.cmd, sinceMs)]);
    return { trace, obs, log, cmd };
  } finally {
    redis.disconnect();
  }
}

const rel = (t0: number, at: number | null | undefined): number | null => (at === null || at === undefined || !Number.isFinite(at) ? null : at - t0);
const first = <T>(xs: T[], p: (x: T) => boolean): T | undefined => xs.find(p);

function journaled(w: Window, type: string, p: (t: Trace) => boolean = () => true): Trace | undefined {
  return first(w.trace, (t) => t.stage === 'journaled' && t.type === type && p(t));
}

/** The agent's first sight of its primary's death: the exit of its postmaster or the loss of its probe connection. */
function deathSeen(w: Window, node: string, t0: number): number | null {
  const seen = w.trace.filter((t) => t.by === `agent:${node}` && (t.stage === 'postmaster.exited' || t.stage === 'probe.connection-lost') && t.at >= t0).map((t) => t.at);
  return seen.length ? Math.min(...seen) : null;
}

function deathObs(w: Window, node: string, t0: number): StreamEntry | undefined {
  return first(w.obs, (o) => o.e.type === 'obs' && o.e.node === node && Number(o.e.at) >= t0 && (o.e.process === 'dead' || o.e.reachable === false));
}

function routed(w: Window, stage: 'routing.published' | 'routing.changed', node: string, after: number, by?: string): number | null {
  return first(w.trace, (t) => t.stage === stage && t.primary === node && t.writable === true && t.at >= after && (!by || t.by === by))?.at ?? null;
}

/**
 * SIGKILL of the primary → write on the new primary.
 * `apiBy` names the coordinator whose API the bench reads (`coordinator:<id>`).
 */
export function failoverStages(w: Window, victim: string, t0: number, tWrite: number, apiBy: string): Stages {
  const started = journaled(w, 'failover.started', (t) => t.at >= t0);
  const op = (started?.operationId as string | undefined) ?? null;
  const log = op ? first(w.log, (l) => l.e.type === 'failover.started' && l.e.operationId === op) : undefined;
  const to = (log?.e.to as string | undefined) ?? null;
  const sent = first(w.trace, (t) => t.stage === 'job.sent' && t.operationId === op && t.action === 'promote');
  const picked = first(w.trace, (t) => t.stage === 'job.started' && t.operationId === op && t.action === 'promote');
  const promoted = to && picked ? first(w.trace, (t) => t.stage === 'pg_promote.returned' && t.by === `agent:${to}` && t.at >= picked.at) : undefined;
  const finished = first(w.trace, (t) => t.stage === 'job.finished' && t.operationId === op && t.action === 'promote');
  const result = first(w.obs, (o) => o.e.type === 'job.result' && o.e.operationId === op && o.e.action === 'promote');
  const succeeded = journaled(w, 'promotion.succeeded', (t) => t.operationId === op);
  const obs = deathObs(w, victim, t0);
  return {
    'death seen by the agent': rel(t0, deathSeen(w, victim, t0)),
    'observation stamped': rel(t0, obs ? Number(obs.e.at) : null),
    'observation in Redis': rel(t0, obs?.ms),
    'folded (leader)': rel(t0, started?.foldedAt as number | null | undefined),
    decided: rel(t0, started?.decidedAt as number | undefined),
    'failover.started journaled': rel(t0, started ? idMs(started.logId as string) : null),
    'promote job sent': rel(t0, sent?.at),
    'job picked up': rel(t0, picked?.at),
    'pg_promote returned': rel(t0, promoted?.at),
    'job finished': rel(t0, finished?.at),
    'job result in Redis': rel(t0, result?.ms),
    'promotion.succeeded journaled': rel(t0, succeeded ? idMs(succeeded.logId as string) : null),
    'routing published': to ? rel(t0, routed(w, 'routing.published', to, t0)) : null,
    'routing at the API': to ? rel(t0, routed(w, 'routing.changed', to, t0, apiBy)) : null,
    'first write': tWrite - t0,
  };
}

/** SIGKILL of the primary inside the cooldown → the leader restarts it in place → first write on it. */
export function restartStages(w: Window, victim: string, t0: number, tWrite: number): Stages {
  const asked = journaled(w, 'restart.requested', (t) => t.node === victim && t.at >= t0);
  const op = (asked?.operationId as string | undefined) ?? null;
  const picked = first(w.trace, (t) => t.stage === 'job.started' && t.operationId === op && t.action === 'restart');
  const up = first(w.trace, (t) => t.stage === 'restart.started' && t.by === `agent:${victim}` && t.at >= t0);
  const obs = deathObs(w, victim, t0);
  return {
    'death seen by the agent': rel(t0, deathSeen(w, victim, t0)),
    'observation in Redis': rel(t0, obs?.ms),
    'folded (leader)': rel(t0, asked?.foldedAt as number | null | undefined),
    decided: rel(t0, asked?.decidedAt as number | undefined),
    'job picked up': rel(t0, picked?.at),
    'postmaster ready': rel(t0, up?.at),
    'first write': tWrite - t0,
  };
}

/**
 * Switchover request → write on the new primary. `gap` is the writer's longest gap
 * between two acknowledged writes (its last write on the old primary, its first on the
 * new), on the same clock.
 */
export function switchoverStages(w: Window, from: string, t0: number, gap: { fromMs: number; toMs: number }): Stages {
  const started = journaled(w, 'failover.started', (t) => t.at >= t0);
  const op = (started?.operationId as string | undefined) ?? null;
  const log = op ? first(w.log, (l) => l.e.type === 'failover.started' && l.e.operationId === op) : undefined;
  const to = (log?.e.to as string | undefined) ?? null;
  const cmd = first(w.cmd, (c) => c.e.action === 'switchover' && c.ms >= t0 - 5);
  const job = (action: string, stage: string): Trace | undefined => first(w.trace, (t) => t.stage === stage && t.operationId === op && t.action === action);
  const stopped = first(w.trace, (t) => t.stage === 'demote.stopped' && t.by === `agent:${from}` && t.at >= t0);
  const promoteAsked = journaled(w, 'promotion.requested', (t) => t.operationId === op);
  const picked = job('promote', 'job.started');
  const promoted = to && picked ? first(w.trace, (t) => t.stage === 'pg_promote.returned' && t.by === `agent:${to}` && t.at >= picked.at) : undefined;
  const demoted = journaled(w, 'demotion.succeeded', (t) => t.operationId === op);
  const succeeded = journaled(w, 'promotion.succeeded', (t) => t.operationId === op);
  return {
    'command in Redis': rel(t0, cmd?.ms),
    decided: rel(t0, started?.decidedAt as number | undefined),
    'demote job picked up': rel(t0, job('demote', 'job.started')?.at),
    'last write on the old primary': rel(t0, gap.fromMs),
    'old primary stopped': rel(t0, stopped?.at),
    'demote job finished': rel(t0, job('demote', 'job.finished')?.at),
    'demotion.succeeded journaled': rel(t0, demoted ? idMs(demoted.logId as string) : null),
    'promotion.requested journaled': rel(t0, promoteAsked ? idMs(promoteAsked.logId as string) : null),
    'promote job picked up': rel(t0, picked?.at),
    'pg_promote returned': rel(t0, promoted?.at),
    'promotion.succeeded journaled': rel(t0, succeeded ? idMs(succeeded.logId as string) : null),
    'routing published': to ? rel(t0, routed(w, 'routing.published', to, t0)) : null,
    'first write on the new primary': rel(t0, gap.toMs),
  };
}

/** Median of each stage over trials (stages missing in a trial are left out of its median). */
export function medianStages(trials: Stages[]): Stages {
  const out: Stages = {};
  for (const name of Object.keys(trials[0] ?? {})) {
    const xs = trials
      .map((t) => t[name])
      .filter((v): v is number => typeof v === 'number')
      .sort((a, b) => a - b);
    out[name] = xs.length ? xs[Math.floor(xs.length / 2)]! : null;
  }
  return out;
}

/** A table: stage, median ms since the start, and the step from the stage before. */
export function formatStages(title: string, stages: Stages): string {
  const lines = [`${title}`, `  ${'stage'.padEnd(34)} ${'at (ms)'.padStart(8)} ${'step'.padStart(8)}`];
  let prev = 0;
  for (const [name, v] of Object.entries(stages)) {
    const step = v === null ? null : v - prev;
    if (v !== null) prev = v;
    lines.push(`  ${name.padEnd(34)} ${(v === null ? '—' : String(Math.round(v))).padStart(8)} ${(step === null ? '—' : `${step >= 0 ? '+' : ''}${Math.round(step)}`).padStart(8)}`);
  }
  return lines.join('\n');
}
