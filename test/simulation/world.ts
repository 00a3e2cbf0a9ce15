/**
 * The world of one schedule: every modelled component's state, the simulated clock and
 * its event queue, the seeded PRNG, and the bookkeeping the invariants need. The
 * behaviour lives in the model modules (postgres, agent, jobs, coordinator, redis),
 * the faults, the invariants and the runner: functions of the world.
 *
 * The constructor draws the schedule's configuration from the seed: settings, how many
 * nodes and coordinators, priorities, clock errors. The draws keep their order, so a
 * seed keeps its schedule.
 */
import { initialState, withDefaults, type ClusterState, type Settings } from '../../src/core/index.js';
import type { PublishedPrimary } from '../../src/core/agent-rules.js';
import { EventQueue } from './event-queue.js';
import { CLUSTER, KB } from './params.js';
import { Rng } from './prng.js';
import { emptyStats } from './stats.js';
import { GUARDS, type Agent, type Coord, type Guard, type JournalRecord, type Lease, type PgNode, type RunOptions, type Segment, type SimJob, type Violation } from './types.js';

export class World {
  readonly rng: Rng;
  readonly settings: Settings;
  now = 0;
  readonly q = new EventQueue();
  readonly traceOn: boolean;
  readonly trace: string[] = [];
  readonly violations: Violation[] = [];
  readonly stats = emptyStats();
  readonly config: string;
  readonly stopAtFirst: boolean;
  readonly staleReads: boolean;
  readonly guards: Set<Guard>;
  readonly clockSkew: boolean;

  readonly ids: string[];
  readonly nodes: Record<string, PgNode> = {};
  readonly agents: Record<string, Agent> = {};
  readonly coords: Coord[] = [];
  /** each database host's wall clock error (clockSkew: ±30 s): stamps only the agents' informational `at` */
  readonly hostSkew: Record<string, number> = {};

  /* "Redis" */
  lease: Lease | null = null;
  epochCounter = 0;
  primaryKey: string | null = null;
  /** sy:{c}:primary as the leader published it (publishedPrimary) */
  publishedKey: PublishedPrimary | null = null;
  readonly journal: JournalRecord[] = [];
  lastMs = -1;
  lastSeq = 0;
  readonly queues: Record<string, SimJob[]> = {};
  readonly jobIds: Record<string, Set<string>> = {};
  readonly queueAt: Record<string, number> = {};
  cmdSeq = 0;

  /* fault windows */
  obsDelayUntil = 0;
  obsDupUntil = 0;
  jobDupUntil = 0;
  readonly heals = new Map<number, () => void>();
  healSeq = 0;

  /* invariant bookkeeping */
  readonly prefix: ClusterState[] = [];
  readonly idIndex = new Map<string, number>();
  worldVersion = 0;
  checkedWorld = -1;
  splitSince: number | null = null;
  uidSeq = 1;
  /** the LSN each node had on a history segment when it left it, by `${node}:${uid}` */
  readonly segEnd = new Map<string, number>();
  /** the first promotion of each operation with an old primary: both histories then */
  readonly promotions = new Map<string, { from: string; fromHist: Segment[]; hist: Segment[]; lsn: number }>();
  /** the history a node had when its agent read an end of WAL, by `${node}:${walEnd}` */
  readonly walEndHist = new Map<string, Segment[]>();
  /** which node's promotion started each history segment */
  readonly promotedSeg = new Map<number, string>();
  /** split brain bookkeeping: the current category and since when, and the current unexcused stretch */
  splitCat: string | null = null;
  splitCatSince = 0;
  unexcusedSince: number | null = null;
  unexcusedReported = false;
  /** synchronous mode: the highest commit LSN acknowledged to a client, per timeline history segment */
  readonly acked = new Map<number, number>();
  readonly writeRate: number;
  /** job id → the journal entry that asked for it (coordinator act()) */
  readonly askedBy = new Map<string, string>();
  /** invariant 2's exception: open episodes, by node: since when, the history segment and the LSN reached */
  readonly frozenWriters = new Map<string, { since: number; seg: number; lsn: number }>();
  /** closed episodes not yet covered by a measured failover.loss */
  readonly uncovered: Array<{ node: string; seg: number; lsn: number; at: number }> = [];

  constructor(
    readonly seed: number,
    opts: RunOptions = {},
  ) {
    this.rng = new Rng(seed);
    this.traceOn = !!opts.trace;
    this.stopAtFirst = !!opts.stopAtFirst;
    this.staleReads = !!opts.staleReads;
    this.clockSkew = !!opts.clockSkew;
    this.guards = new Set(GUARDS.filter((g) => !(opts.without ?? []).includes(g)));
    const r = this.rng;
    this.settings = withDefaults({
      failAfterMs: r.pick([1_000, 2_000, 3_000, 5_000]),
      refusedFailAfterMs: r.pick([0, 0, 0, 300]),
      agentTimeoutMs: r.pick([2_000, 3_000]),
      maxLagOnFailoverBytes: r.pick([256 * KB, 1024 * KB]),
      promoteTimeoutMs: r.pick([3_000, 5_000, 15_000]),
      cooldownMs: r.pick([1_000, 3_000, 10_000]),
      jobRetryMs: r.pick([2_000, 5_000, 15_000]),
      fenceAfterMs: r.pick([2_000, 4_000]),
      fenceMarginMs: r.pick([1_000, 1_000, 3_000]),
      policy: r.pick(['failover', 'failover', 'restart-first'] as const),
      synchronous: r.chance(0.3),
    });
    this.writeRate = r.pick([4 * KB, 16 * KB, 48 * KB]);
    const n = r.int(3, 5);
    const k = r.int(1, 3);
    this.ids = Array.from({ length: n }, (_, i) => `pg${i + 1}`);
    const zeroPrio = n >= 4 && r.chance(0.2) ? this.ids[n - 1] : null;
    const halfPrio = r.chance(0.3) ? r.pick(this.ids) : null;
    const seg: Segment = { uid: this.uidSeq++, tl: 1, start: 0 };
    for (const id of this.ids) {
      const primary = id === 'pg1';
      this.nodes[id] = {
        id,
        priority: id === zeroPrio ? 0 : id === halfPrio ? 50 : 100,
        proc: 'running',
        isolated: false,
        powered: true,
        role: primary ? 'primary' : 'replica',
        readOnly: false,
        hist: [seg],
        lsn: 0x3000000,
        upstream: primary ? null : 'pg1',
        streaming: !primary,
        stallSince: null,
        streamFrom: primary ? null : 'pg1',
        senderOf: primary ? null : 'pg1',
        lastReplyAt: 0,
        lagUntil: 0,
        stormUntil: 0,
        syncNames: [],
        syncCount: 0,
      };
      this.queues[id] = [];
      this.jobIds[id] = new Set();
      this.agents[id] = {
        node: id,
        crashed: false,
        partitioned: false,
        started: false,
        booting: false,
        gen: 0,
        bootN: 0,
        bootId: '',
        seq: 0,
        epochSeen: 0,
        primaryId: null,
        published: null,
        newestJournalId: null,
        probing: false,
        probeAgain: false,
        probeTimer: 0,
        working: null,
        busy: false,
        restartDelay: 200,
        restartPending: false,
        lastRedisOk: 0,
        lastReachable: null,
        fenceTimer: 0,
        fenced: false,
        promotion: null,
        walEnd: null,
        walEndReadyAt: 0,
      };
    }
    const bigSkew = r.chance(0.15) ? r.int(0, k - 1) : -1;
    // every host's wall clock ±30 s with clockSkew (its own generator: the schedule stays the same)
    const skewRng = new Rng(seed ^ 0x5eed);
    for (const id of this.ids) this.hostSkew[id] = this.clockSkew ? skewRng.pick([-30_000, 30_000]) : 0;
    for (let i = 0; i < k; i++) {
      this.coords.push({
        id: `c${i + 1}`,
        up: true,
        paused: false,
        gen: 0,
        // (the draws stay as they were, so that a seed keeps its schedule)
        skew: Math.round((i === bigSkew ? Math.sign(r.pick([-3_000, 3_000])) * 50 : r.int(-50, 50)) / 10),
        wallSkew: this.clockSkew ? skewRng.pick([-30_000, 30_000]) : 0,
        state: initialState(CLUSTER),
        token: null,
        epoch: 0,
        deadline: 0,
        slowUntil: 0,
        journalAt: 0,
        backlog: [],
        pendingAct: null,
        cut: false,
        lastReadAt: 0,
        tickMissed: false,
        draining: false,
        passScheduled: false,
        chained: 0,
        table: null,
        tableKey: null,
        checkedLogId: '',
      });
    }
    this.prefix.push(initialState(CLUSTER));
    const s = this.settings;
    this.config =
      `nodes=${n} coordinators=${k} prio=${this.ids.map((id) => this.nodes[id]!.priority).join('/')} ` +
      `skew=${this.coords.map((c) => c.skew).join('/')}${this.clockSkew ? ` wall=${[...this.ids.map((id) => this.hostSkew[id]), ...this.coords.map((c) => c.wallSkew)].join('/')}` : ''} writeRate=${this.writeRate / KB}KB/100ms ` +
      `failAfter=${s.failAfterMs} refusedFailAfter=${s.refusedFailAfterMs} agentTimeout=${s.agentTimeoutMs} ` +
      `maxLag=${s.maxLagOnFailoverBytes / KB}KB promoteTimeout=${s.promoteTimeoutMs} cooldown=${s.cooldownMs} jobRetry=${s.jobRetryMs} ` +
      `fenceAfter=${s.fenceAfterMs} fenceMargin=${s.fenceMarginMs} policy=${s.policy}${s.synchronous ? ' synchronous' : ''}`;
  }

  /* ---------------------------------------------------------------- plumbing */

  at(t: number, fn: () => void): void {
    this.q.push(Math.max(t, this.now), fn);
  }

  tr(msg: () => string): void {
    if (this.traceOn) this.trace.push(`${String(this.now).padStart(6)} ${msg()}`);
  }

  violate(invariant: string, detail: string): void {
    this.violations.push({ t: this.now, invariant, detail });
    this.tr(() => `!! VIOLATION ${invariant}: ${detail}`);
  }

  changed(): void {
    this.worldVersion++;
  }

  node(id: string): PgNode {
    const n = this.nodes[id];
    if (!n) throw new Error(`no node ${id}`);
    return n;
  }

  tl(n: PgNode): number {
    return n.hist[n.hist.length - 1]!.tl;
  }

  count(rec: Record<string, number>, key: string): void {
    rec[key] = (rec[key] ?? 0) + 1;
  }

  stopped(): boolean {
    return this.stopAtFirst && this.violations.length > 0;
  }
}
