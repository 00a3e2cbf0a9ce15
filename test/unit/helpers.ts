/**
 * Test helpers for the pure core: an observation builder with sane defaults, a
 * `given(steps).when(now)` helper for one decide pass, and `Sim`, which plays the
 * leader's shell (coordinator/cluster.ts): decide, fill each draft's envelope, fold it
 * back with evolve under increasing stream ids, record the jobs.
 */
import { decide, type Decision, type JobSpec } from '../../src/core/decide.js';
import { evolve } from '../../src/core/evolve.js';
import { routingTable, type RoutingTable } from '../../src/core/routing.js';
import { withDefaults, type Settings } from '../../src/core/settings.js';
import { initialState, type ClusterState, type CoreEvent } from '../../src/core/state.js';
import type { JournalDraft, JournalEntry, JournalOf, JournalType } from '../../src/events/journal.js';
import type { JobResult, Observation } from '../../src/events/observation.js';

export const CLUSTER = 'c1';
export const PORT = 5432;
/** the address a node registers with (host = node id) */
export const addr = (node: string): string => `${node}:${PORT}`;

/* --------------------------------------------------------------- observations */

const seqs = new Map<string, number>();

/**
 * An observation of `node`, with defaults that describe a healthy streaming replica of
 * pg1 (or, with `role: 'primary'`, a healthy primary). Each call takes the node's next
 * seq; `at` defaults to seq-derived agent time.
 */
export function obs(node: string, patch: Partial<Observation> = {}): Observation {
  const seq = patch.seq ?? (seqs.get(node) ?? 0) + 1;
  seqs.set(node, Math.max(seq, seqs.get(node) ?? 0));
  const role = patch.role ?? 'replica';
  const lsn = patch.lsn === undefined ? '0/3000000' : patch.lsn;
  const base: Observation = {
    type: 'obs',
    v: 1,
    node,
    bootId: `${node}-boot-1`,
    seq,
    at: 1_700_000_000_000 + seq,
    host: node,
    port: PORT,
    priority: 100,
    reachable: true,
    process: 'running',
    role,
    timeline: 1,
    lsn,
    replayLsn: lsn,
    replayDelayMs: role === 'replica' ? 0 : null,
    upstream: role === 'replica' ? addr('pg1') : null,
    walReceiver: role === 'replica' ? 'streaming' : null,
    epochSeen: 0,
  };
  if (role === 'primary') base.standbys = [];
  return clean({ ...base, ...patch, seq });
}

/** drop optional keys set to undefined, as JSON would */
function clean(o: Observation): Observation {
  const out = { ...o } as Record<string, unknown>;
  for (const k of Object.keys(out)) if (out[k] === undefined) delete out[k];
  return out as unknown as Observation;
}

/** What the agent reports when the postmaster is gone (agent/agent.ts: no LSN, no role). */
export const DEAD: Partial<Observation> = {
  process: 'dead',
  reachable: false,
  error: 'refused',
  role: 'unknown',
  timeline: null,
  lsn: null,
  replayLsn: null,
  replayDelayMs: null,
  upstream: null,
  walReceiver: null,
  standbys: undefined,
};

/** What the agent reports when probing its server fails (src/engines/postgres/probe.ts). */
export function unreachable(error: NonNullable<Observation['error']>): Partial<Observation> {
  return { ...DEAD, process: 'running', error };
}

export function jobResult(node: string, patch: Partial<JobResult> & Pick<JobResult, 'operationId' | 'action' | 'ok'>): JobResult {
  return { type: 'job.result', v: 1, node, bootId: `${node}-boot-1`, at: 0, jobId: 'job-x', epoch: 1, durationMs: 5, ...patch };
}

/* ---------------------------------------------------------------- steps */

export type Step =
  | { kind: 'obs'; at: number; obs: Observation }
  | { kind: 'journal'; at: number; draft: JournalDraft }
  | { kind: 'job.result'; at: number; result: JobResult };

export const seen = (at: number, o: Observation): Step => ({ kind: 'obs', at, obs: o });
export const journaled = (at: number, draft: JournalDraft): Step => ({ kind: 'journal', at, draft });
export const reported = (at: number, result: JobResult): Step => ({ kind: 'job.result', at, result });

/* ---------------------------------------------------------------- decisions */

export class Decisions {
  constructor(readonly all: Decision[]) {}
  get appends(): JournalDraft[] {
    return this.all.flatMap((d) => (d.type === 'append' ? [d.entry] : []));
  }
  get jobs(): JobSpec[] {
    return this.all.flatMap((d) => (d.type === 'job' ? [d.job] : []));
  }
  get types(): JournalType[] {
    return this.appends.map((e) => e.type);
  }
  of<T extends JournalType>(type: T): Array<Omit<JournalOf<T>, 'at' | 'epoch' | 'v'>> {
    return this.appends.filter((e) => e.type === type) as unknown as Array<Omit<JournalOf<T>, 'at' | 'epoch' | 'v'>>;
  }
  one<T extends JournalType>(type: T): Omit<JournalOf<T>, 'at' | 'epoch' | 'v'> {
    const found = this.of(type);
    if (found.length !== 1) throw new Error(`expected one ${type}, got ${found.length}: ${JSON.stringify(this.types)}`);
    return found[0]!;
  }
}

/* ---------------------------------------------------------------- the simulated leader */

export interface JournalRecord {
  id: string;
  entry: JournalEntry;
}

/** What a leader pass saw and did, for property tests that watch every pass (`passWatchers`). */
export interface PassRecord {
  before: ClusterState;
  after: ClusterState;
  now: number;
  settings: Settings;
  decisions: Decision[];
}

/** Called after every `Sim.pass`; a test adds a watcher and removes it when done. */
export const passWatchers = new Set<(r: PassRecord) => void>();

export class Sim {
  state: ClusterState;
  readonly settings: Settings;
  readonly journal: JournalRecord[] = [];
  readonly jobs: Array<JobSpec & { jobId: string; at: number }> = [];
  /** the newest observation fed per node, for `beat` */
  readonly last = new Map<string, Observation>();
  private lastMs = -1;
  private lastSeq = -1;
  private jobSeq = 0;

  constructor(settings: Partial<Settings> = {}, state: ClusterState = initialState(CLUSTER)) {
    this.settings = withDefaults(settings);
    this.state = state;
  }

  /** A Redis-like stream id: `${ms}-${n}`, strictly increasing even within one ms. */
  nextId(ms: number): string {
    if (ms > this.lastMs) {
      this.lastMs = ms;
      this.lastSeq = 0;
    } else this.lastSeq++;
    return `${this.lastMs}-${this.lastSeq}`;
  }

  /** Fold one event. States are deep-frozen, so an evolve or decide that mutates its input throws. */
  fold(ev: CoreEvent): this {
    this.state = deepFreeze(evolve(this.state, ev));
    return this;
  }

  observe(at: number, ...list: Observation[]): this {
    for (const o of list) {
      this.last.set(o.node, o);
      this.fold({ kind: 'obs', id: `obs-${o.node}-${o.seq}`, receivedAt: at, entry: o });
    }
    return this;
  }

  report(at: number, r: JobResult): this {
    return this.fold({ kind: 'job.result', id: `res-${at}`, receivedAt: at, entry: r });
  }

  /** Append a draft as the leader would: envelope { v: 1, at, epoch: 1 }, next stream id, fold. */
  append(at: number, draft: JournalDraft, epoch = 1): JournalRecord {
    const entry = { ...draft, v: 1, at, epoch } as JournalEntry;
    const rec = { id: this.nextId(at), entry };
    this.journal.push(rec);
    this.fold({ kind: 'journal', id: rec.id, entry });
    return rec;
  }

  apply(step: Step): this {
    if (step.kind === 'obs') return this.observe(step.at, step.obs);
    if (step.kind === 'job.result') return this.report(step.at, step.result);
    this.append(step.at, step.draft);
    return this;
  }

  /** What decide would do now, without acting on it. */
  peek(now: number): Decisions {
    return new Decisions(decide(this.state, now, this.settings));
  }

  /** One leader pass: decide, then carry the decisions out in order. */
  pass(now: number): Decisions {
    const before = this.state;
    const decisions = decide(this.state, now, this.settings);
    for (const d of decisions) {
      if (d.type === 'append') {
        const draft = { ...d.entry } as JournalDraft & { jobId?: string };
        if (draft.type === 'promotion.requested' || draft.type === 'follow.requested') draft.jobId = `job-${++this.jobSeq}`;
        this.append(now, draft, Math.max(1, this.state.epoch)); // as the current leader would
      } else {
        this.jobs.push({ ...d.job, jobId: `job-${++this.jobSeq}`, at: now });
      }
    }
    for (const watch of passWatchers) watch({ before, after: this.state, now, settings: this.settings, decisions });
    return new Decisions(decisions);
  }

  /** Passes at `now` until one appends nothing; returns every decision made. */
  settle(now: number, maxPasses = 10): Decisions {
    const all: Decision[] = [];
    for (let i = 0; i < maxPasses; i++) {
      const d = this.pass(now);
      all.push(...d.all);
      if (d.appends.length === 0) return new Decisions(all);
    }
    throw new Error(`no quiescence after ${maxPasses} passes at ${now}`);
  }

  /**
   * Every node whose agent is alive reports again at `now` (its previous observation,
   * patched; patches stick), then one pass runs. Nodes in `silent` send nothing.
   */
  beat(now: number, patches: Record<string, Partial<Observation>> = {}, silent: string[] = []): Decisions {
    for (const [node, prev] of this.last) {
      if (silent.includes(node)) continue;
      const { seq: _seq, at: _at, ...rest } = prev;
      this.observe(now, obs(node, { ...rest, ...(patches[node] ?? {}) }));
    }
    return this.pass(now);
  }

  table(): RoutingTable {
    return routingTable(this.state);
  }

  /** journal entries of one type, in order */
  entries<T extends JournalType>(type: T): Array<JournalOf<T>> {
    return this.journal.filter((r) => r.entry.type === type).map((r) => r.entry as JournalOf<T>);
  }
}

function deepFreeze<T>(v: T): T {
  if (v && typeof v === 'object' && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const x of Object.values(v)) deepFreeze(x);
  }
  return v;
}

/** `given(steps).when(now)`: fold the steps (journal steps get increasing ids), then one decide pass. */
export function given(steps: Step[], settings: Partial<Settings> = {}): { sim: Sim; state: ClusterState; when(now: number): Decisions } {
  const sim = new Sim(settings);
  for (const s of steps) sim.apply(s);
  return { sim, state: sim.state, when: (now: number) => sim.peek(now) };
}

/**
 * A settled, healthy cluster at t0: pg1 primary, the others streaming replicas of it,
 * all registered, pg1 adopted, every node journaled healthy.
 */
export function healthyCluster(
  opts: { t0?: number; replicas?: Record<string, Partial<Observation>>; primary?: Partial<Observation>; settings?: Partial<Settings> } = {},
): Sim {
  const t0 = opts.t0 ?? 1_000;
  const sim = new Sim(opts.settings);
  const replicas = opts.replicas ?? { pg2: {}, pg3: {} };
  sim.observe(t0, obs('pg1', { role: 'primary', ...(opts.primary ?? {}) }));
  for (const [id, patch] of Object.entries(replicas)) sim.observe(t0, obs(id, patch));
  sim.settle(t0);
  if (sim.state.primary !== 'pg1') throw new Error('healthyCluster: pg1 not adopted');
  return sim;
}
