/**
 * Deterministic simulation of a switchyard deployment around the pure core.
 *
 * One seed → one schedule. Everything runs on a simulated clock driven by an event
 * queue; the only randomness is the seeded PRNG. What is modelled (see README.md here
 * for what is not):
 *
 * - Nodes: a simulated PostgreSQL each (role, timeline history, LSN, read-only). A
 *   primary's LSN grows with writes; a replica receives from its upstream with some lag,
 *   and only while its history is compatible (past the fork point of a newer timeline it
 *   cannot follow until rewound). A promotion starts a new timeline. Both ends of a
 *   replication connection notice a dead peer at once (RST) but a partitioned or
 *   SIGSTOPped one only after wal_receiver_timeout / wal_sender_timeout (60 s).
 * - Agents (agent/agent.ts, as of commit d191ce4): probe every ~200 ms: read the
 *   published primary from Redis, probe the node, check the primary's port (an SSLRequest:
 *   a stopped server does not answer), XADD the Observation the real agent builds (dead
 *   postmaster: refused / process dead / role unknown / lsn null; SIGSTOP: process
 *   stopped / timeout, known from the process state without a probe; a primary on a
 *   timeline > 1 reports its fork point). Redis commands time out after 1 s when Redis
 *   is out of reach. Fencing: a primary that has not reached Redis for fenceAfterMs, with
 *   no standby that replied within fenceAfterMs, makes itself read-only; a primary that
 *   reads another node as the published primary makes itself read-only at once, or is
 *   killed by its agent if it is stopped (unless its agent promoted it less than 30 s
 *   ago). The agent of a primary that died, or that it rewinds, reads its end of WAL and
 *   reports it. Jobs run one at a time (BullMQ: at least once, a stalled job comes again):
 *   promote (reports the fork point; unfences a node that is primary already), demote,
 *   follow, rejoin (pg_rewind), unfence, restart, sync; a job past its expiresAt (the
 *   leader's clock + ttl) or older than the highest epoch seen is refused, the lease is
 *   re-read before an irreversible one. A crashed replica is restarted, a crashed primary
 *   is not. An agent that starts boots a former primary read-only (assumed: agent.ts
 *   rewinds it onto the published primary, SIM_AGENT_AS_IS=1).
 * - Coordinators (coordinator/cluster.ts): each folds what reaches it with evolve; the
 *   leaseholder runs decide every tick and again after its own appends (bounded, as the
 *   shell), appends through the fence (lease token checked as the Lua script does: a
 *   deposed leader's appends are dropped), folds its appends at once, sends jobs, and
 *   publishes the journal's primary. A new leader reads the journal to its end before
 *   its first append. A restarted coordinator replays the journal from scratch with
 *   empty soft state. One cut off from Redis (a known gap, behind SIM_STALE_READS) serves
 *   its view for 2 s, then answers 503.
 * - Operators: switchover (with or without a target), failover --to, pause / resume.
 * - Faults: node crash, hang shorter/longer than failAfterMs, agent loss with or without
 *   its node (host partition or power loss), lag bursts, write storms, coordinator pause
 *   (also between its deadline check and the fenced append) / crash / slow reads (the
 *   lease moves, epochs increase) / cut off from Redis (with SIM_STALE_READS), delayed /
 *   duplicated / reordered observation delivery, duplicated job delivery.
 *
 * Invariants are checked after every event (see `checkAll`).
 */
import { jobIdFor } from '../../src/bus/keys.js';
import { decide, type Decision, type JobSpec } from '../../src/core/decide.js';
import { evolve, fold } from '../../src/core/evolve.js';
import { formatLsn, lsnDiff, parseLsn } from '../../src/core/lsn.js';
import { routingTable, type RoutingTable } from '../../src/core/routing.js';
import { withDefaults, type Settings } from '../../src/core/settings.js';
import { initialState, type ClusterState, type CoreEvent } from '../../src/core/state.js';
import type { JournalDraft, JournalEntry, JournalOf } from '../../src/events/journal.js';
import type { Command, JobResult, Observation, ProbeError, ReplicationPeer } from '../../src/events/observation.js';
import { Rng } from './prng.js';

/* ------------------------------------------------------------------ constants */

const CLUSTER = 'sim';
const PORT = 5432;
const PROBE_INTERVAL_MS = 200;
const PROBE_TIMEOUT_MS = 1_000;
/** the agent's Redis connection: connectTimeout / commandTimeout */
const REDIS_TIMEOUT_MS = 1_000;
const TICK_MS = 100;
const LEASE_TTL_MS = 3_000;
const LEASE_MARGIN_MS = 500;
const LEASE_TICK_MS = 1_000;
/** the shell chains at most this many passes after passes that appended */
const CHAINED_PASSES = 8;
const WAL_TICK_MS = 100;
const STEP_MS = 200;
const WAL_RECEIVER_TIMEOUT_MS = 60_000;
const WAL_SENDER_TIMEOUT_MS = 60_000;
/** a standby replies after receiving WAL, and at least every wal_receiver_status_interval */
const WAL_RECEIVER_STATUS_INTERVAL_MS = 10_000;
/** agent/agent.ts: a node this agent promoted is not fenced as deposed for this long, until the leader names it */
const PROMOTED_GRACE_MS = 30_000;
/**
 * Invariant 8: a deposed primary whose agent is up and reaches Redis stops taking writes
 * within two of its probes (each at most PROBE_INTERVAL_MS + the probe's and the peer
 * check's 1 s timeouts) of the leader publishing another primary.
 */
const DEPOSED_FENCE_MS = 2_500;
/** coordinator/cluster.ts: a coordinator that has not read the streams for this long answers 503, naming no primary */
const STALE_AFTER_MS = 2_000;
/** withClient's connect timeout in the agent's actions */
const ACTION_TIMEOUT_MS = 5_000;
const KB = 1024;

export const QUIET_MS = 60_000;

/* ------------------------------------------------------------------ model types */

interface Segment {
  /** identity of this timeline's history (two promotions may pick the same number) */
  uid: number;
  tl: number;
  start: number;
}

interface PgNode {
  id: string;
  priority: number;
  proc: 'running' | 'dead' | 'stopped';
  /** host cut off from the network (agent, PostgreSQL and all) */
  isolated: boolean;
  powered: boolean;
  /** on disk: a standby (standby.signal) or not */
  role: 'primary' | 'replica';
  /** default_transaction_read_only, kept in postgresql.auto.conf */
  readOnly: boolean;
  hist: Segment[];
  lsn: number;
  upstream: string | null;
  /** the WAL receiver's view */
  streaming: boolean;
  stallSince: number | null;
  /** the WAL receiver's connection */
  streamFrom: string | null;
  /** the upstream's walsender's view: connected to it, last reply */
  senderOf: string | null;
  lastReplyAt: number;
  lagUntil: number;
  stormUntil: number;
  /** synchronous_standby_names = FIRST syncCount (syncNames) */
  syncNames: string[];
  syncCount: number;
}

interface SimJob {
  jobId: string;
  /** when the leader sent it (BullMQ's job timestamp) */
  sentAt: number;
  /** the leader's wall clock (its skew included) plus the job's ttl: the agent refuses it after */
  expiresAt: number;
  epoch: number;
  spec: JobSpec;
  availableAt: number;
  copy: boolean;
}

interface Agent {
  node: string;
  crashed: boolean;
  /** cannot reach Redis (network), the process runs */
  partitioned: boolean;
  /** start() done: connected, node booted, worker and probes running */
  started: boolean;
  booting: boolean;
  gen: number;
  bootN: number;
  bootId: string;
  seq: number;
  epochSeen: number;
  primaryId: string | null;
  probing: boolean;
  probeAgain: boolean;
  probeTimer: number;
  working: SimJob | null;
  busy: boolean;
  restartDelay: number;
  restartPending: boolean;
  lastRedisOk: number;
  fenced: boolean;
  /** when a promote job of this agent connected to its node (the deposed-fence grace), until the leader names it */
  promotedAt: number | null;
  /** the end of WAL read from disk after the node died as a primary (agent memory: lost on restart) */
  walEnd: number | null;
  /** a rejoin or restart waits for the end of WAL to be read first */
  walEndReadyAt: number;
}

interface PendingAct {
  decisions: Decision[];
  before: ClusterState;
  decidedAt: number;
}

interface Coord {
  id: string;
  up: boolean;
  paused: boolean;
  gen: number;
  skew: number;
  state: ClusterState;
  token: string | null;
  epoch: number;
  deadline: number;
  slowUntil: number;
  journalAt: number;
  backlog: Array<() => void>;
  pendingAct: PendingAct | null;
  /** cut off from Redis (not from its clients): reads, lease and appends fail; it serves what it has */
  cut: boolean;
  /** when its last read of the streams completed (while it reads, the view is refreshed continuously) */
  lastReadAt: number;
  /** a lease tick came due while it was paused: it runs first when it resumes (timers before I/O) */
  tickMissed: boolean;
  /** reading what arrived while it could not: newer entries queue behind */
  draining: boolean;
  passScheduled: boolean;
  chained: number;
  /** routing cache */
  table: RoutingTable | null;
  tableKey: [unknown, unknown, unknown] | null;
  checkedLogId: string;
}

export interface Violation {
  t: number;
  invariant: string;
  detail: string;
}

export interface Stats {
  schedules: number;
  failoversStarted: number;
  switchoversStarted: number;
  operationsSucceeded: number;
  operationsFailed: number;
  operationsAborted: number;
  commandsRejected: number;
  leaderChanges: number;
  fencedAppends: number;
  selfFenced: number;
  jobsRefused: Record<string, number>;
  duplicateJobRuns: number;
  faults: Record<string, number>;
  livenessChecked: number;
  livenessExcused: Record<string, number>;
  recoveryMsMax: number;
  /** two nodes taking writes from clients that can reach them: none is routed twice */
  splitBrainMs: number;
  splitBrainRuns: number;
  /** … by why the one the leader has not published has not refused writes yet */
  splitBrainMsBy: Record<string, number>;
  /** the longest stretch an unpublished node took writes with its agent up, connected and out of its promotion grace */
  splitUnexcusedMaxMs: number;
  /** primaries that fenced themselves because the leader names another node (agent fenceIfDeposed) */
  deposedFenced: number;
  /** … and deposed primaries that hung (SIGSTOP) killed by their agent (killIfDeposedAndHung) */
  deposedKilled: number;
  /** former primaries booted read-only instead of rewound (the assumed boot fix) */
  bootFenced: number;
  /** jobs refused as expired although sent less than their ttl ago: the leader's clock is behind the agent's */
  expiredBySkew: number;
  /** demote, rejoin or follow jobs that stopped the journal's primary outside an operation that asked it */
  staleDemotions: number;
  /** automatic and manual failovers that succeeded from a known old primary */
  lossFailovers: number;
  /** … whose loss the leader measured (failover.loss) */
  lossMeasured: number;
  /** … whose new primary was not on the old primary's line (the measurement cannot be right) */
  lossOffBranch: number;
  /** … whose old primary was promoted again since, by a job of an operation that was over */
  lossPromotedAgain: number;
  /** coordinators cut off from Redis long enough to answer 503 (a stale view) */
  staleRefusals: number;
  /** new leaders that read journal entries they had not read yet before their first append */
  caughtUp: number;
  /** a promotion while another primary could still take writes (not read-only), by where that one was */
  promotedBesideWritable: Record<string, number>;
  /** failovers whose candidate was further behind (in truth) than maxLagOnFailoverBytes */
  truthLagExceeded: number;
  truthLagExceededBlind: number;
  /** promotions by a job of an operation that was over (at-least-once delivery) */
  stalePromotions: number;
  events: number;
}

export function emptyStats(): Stats {
  return {
    schedules: 0,
    failoversStarted: 0,
    switchoversStarted: 0,
    operationsSucceeded: 0,
    operationsFailed: 0,
    operationsAborted: 0,
    commandsRejected: 0,
    leaderChanges: 0,
    fencedAppends: 0,
    selfFenced: 0,
    jobsRefused: {},
    duplicateJobRuns: 0,
    faults: {},
    livenessChecked: 0,
    livenessExcused: {},
    recoveryMsMax: 0,
    splitBrainMs: 0,
    splitBrainRuns: 0,
    splitBrainMsBy: {},
    splitUnexcusedMaxMs: 0,
    deposedFenced: 0,
    deposedKilled: 0,
    bootFenced: 0,
    expiredBySkew: 0,
    staleDemotions: 0,
    lossFailovers: 0,
    lossMeasured: 0,
    lossOffBranch: 0,
    lossPromotedAgain: 0,
    staleRefusals: 0,
    caughtUp: 0,
    promotedBesideWritable: {},
    truthLagExceeded: 0,
    truthLagExceededBlind: 0,
    stalePromotions: 0,
    events: 0,
  };
}

export function mergeStats(into: Stats, s: Stats): void {
  for (const k of Object.keys(s) as Array<keyof Stats>) {
    const v = s[k];
    if (typeof v === 'number') {
      if (k === 'recoveryMsMax' || k === 'splitUnexcusedMaxMs') into[k] = Math.max(into[k], v);
      else (into[k] as number) += v;
    } else {
      const acc = into[k] as Record<string, number>;
      for (const [kk, vv] of Object.entries(v)) acc[kk] = (acc[kk] ?? 0) + vv;
    }
  }
}

export interface RunResult {
  seed: number;
  violations: Violation[];
  trace: string[];
  config: string;
  stats: Stats;
}

export interface RunOptions {
  trace?: boolean;
  /** stop at the first violation (the run up to it is the same) */
  stopAtFirst?: boolean;
  /**
   * stale followers (a known gap: README.md): a slow coordinator's reads lag up to 1.5 s
   * (default 150 ms), coordinators get cut off from Redis (they serve their view for
   * STALE_AFTER_MS), and one that resumes serves its pre-pause view for a read's round trip
   */
  staleReads?: boolean;
  /**
   * the agent exactly as agent.ts is: an agent that starts rewinds a former primary onto
   * the published primary (a known gap: README.md). By default the model assumes it starts
   * it read-only instead, and leaves the rest to the leader
   */
  agentAsIs?: boolean;
  /**
   * one coordinator's clock 3 s off in 15 % of the schedules (default: ±50 ms). A known gap:
   * a job's expiresAt is the leader's clock, checked against the agent's (README.md)
   */
  clockSkew?: boolean;
  /** model the agent and coordinator without these safeguards (to measure what each buys: README.md) */
  without?: readonly Guard[];
}

/**
 * Safeguards of the real agent and coordinator, all modelled by default:
 * - job-expiry: the agent refuses a job past its expiresAt (the leader's clock + ttl)
 * - deposed-fence: a primary whose agent reads another node as the journal's primary goes read-only
 * - reply-age: self-fencing counts a standby as connected only if it replied within fenceAfterMs
 * - catch-up: a new leader reads the journal to its end before its first append
 * - stale-503: a coordinator that has not read the streams for 2 s names no primary
 */
export const GUARDS = ['job-expiry', 'deposed-fence', 'reply-age', 'catch-up', 'stale-503'] as const;
export type Guard = (typeof GUARDS)[number];

/* ------------------------------------------------------------------ event queue */

interface Ev {
  t: number;
  seq: number;
  fn: () => void;
}

class EventQueue {
  private heap: Ev[] = [];
  private seq = 0;

  push(t: number, fn: () => void): void {
    const e: Ev = { t, seq: this.seq++, fn };
    const h = this.heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!less(h[i]!, h[p]!)) break;
      [h[i], h[p]] = [h[p]!, h[i]!];
      i = p;
    }
  }

  peekT(): number {
    return this.heap.length ? this.heap[0]!.t : Infinity;
  }

  pop(): Ev | undefined {
    const h = this.heap;
    if (h.length === 0) return undefined;
    const top = h[0]!;
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && less(h[l]!, h[m]!)) m = l;
        if (r < h.length && less(h[r]!, h[m]!)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m]!, h[i]!];
        i = m;
      }
    }
    return top;
  }
}

function less(a: Ev, b: Ev): boolean {
  return a.t < b.t || (a.t === b.t && a.seq < b.seq);
}

/* ------------------------------------------------------------------ the world */

interface JournalRecord {
  id: string;
  entry: JournalEntry;
}

interface Lease {
  epoch: number;
  holder: string;
  token: string;
  expiresAt: number;
}

type FaultKind =
  | 'crash'
  | 'hang-short'
  | 'hang-long'
  | 'agent-crash'
  | 'agent-partition'
  | 'host-partition'
  | 'host-power'
  | 'lag'
  | 'storm'
  | 'coord-pause'
  | 'coord-crash'
  | 'coord-slow'
  | 'coord-cut'
  | 'obs-delay'
  | 'obs-dup'
  | 'job-dup'
  | 'op-switchover'
  | 'op-failover'
  | 'op-pause';

type SoftEvent = { kind: 'obs'; entry: Observation } | { kind: 'job.result'; entry: JobResult } | { kind: 'command'; entry: Command };

export class World {
  readonly rng: Rng;
  readonly settings: Settings;
  now = 0;
  private readonly q = new EventQueue();
  private readonly traceOn: boolean;
  readonly trace: string[] = [];
  readonly violations: Violation[] = [];
  readonly stats = emptyStats();
  readonly config: string;
  private readonly stopAtFirst: boolean;
  private readonly staleReads: boolean;
  private readonly guards: Set<Guard>;
  private readonly clockSkew: boolean;
  private readonly agentAsIs: boolean;

  readonly ids: string[];
  readonly nodes: Record<string, PgNode> = {};
  readonly agents: Record<string, Agent> = {};
  readonly coords: Coord[] = [];

  /* "Redis" */
  private lease: Lease | null = null;
  private epochCounter = 0;
  private primaryKey: string | null = null;
  readonly journal: JournalRecord[] = [];
  private lastMs = -1;
  private lastSeq = 0;
  private readonly queues: Record<string, SimJob[]> = {};
  private readonly jobIds: Record<string, Set<string>> = {};
  private readonly queueAt: Record<string, number> = {};
  private cmdSeq = 0;

  /* fault windows */
  private obsDelayUntil = 0;
  private obsDupUntil = 0;
  private jobDupUntil = 0;
  private readonly heals = new Map<number, () => void>();
  private healSeq = 0;

  /* invariant bookkeeping */
  private readonly prefix: ClusterState[] = [];
  private readonly idIndex = new Map<string, number>();
  private worldVersion = 0;
  private checkedWorld = -1;
  private splitSince: number | null = null;
  private uidSeq = 1;
  /** the LSN each node had on a history segment when it left it, by `${node}:${uid}` */
  private readonly segEnd = new Map<string, number>();
  /** the first promotion of each operation with an old primary: both histories then */
  private readonly promotions = new Map<string, { from: string; fromHist: Segment[]; hist: Segment[]; lsn: number }>();
  /** the history a node had when its agent read an end of WAL, by `${node}:${walEnd}` */
  private readonly walEndHist = new Map<string, Segment[]>();
  /** which node's promotion started each history segment */
  private readonly promotedSeg = new Map<number, string>();
  /** split brain bookkeeping: the current category and since when, and the current unexcused stretch */
  private splitCat: string | null = null;
  private splitCatSince = 0;
  private unexcusedSince: number | null = null;
  private unexcusedReported = false;
  /** synchronous mode: the highest commit LSN acknowledged to a client, per timeline history segment */
  private readonly acked = new Map<number, number>();
  private readonly writeRate: number;

  constructor(
    readonly seed: number,
    opts: RunOptions = {},
  ) {
    this.rng = new Rng(seed);
    this.traceOn = !!opts.trace;
    this.stopAtFirst = !!opts.stopAtFirst;
    this.staleReads = !!opts.staleReads;
    this.clockSkew = !!opts.clockSkew;
    this.agentAsIs = !!opts.agentAsIs;
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
        probing: false,
        probeAgain: false,
        probeTimer: 0,
        working: null,
        busy: false,
        restartDelay: 200,
        restartPending: false,
        lastRedisOk: 0,
        fenced: false,
        promotedAt: null,
        walEnd: null,
        walEndReadyAt: 0,
      };
    }
    // a clock 3 s off (drawn always, used with clockSkew only: the schedule stays the same)
    const bigSkew = r.chance(0.15) ? r.int(0, k - 1) : -1;
    for (let i = 0; i < k; i++) {
      this.coords.push({
        id: `c${i + 1}`,
        up: true,
        paused: false,
        gen: 0,
        skew: i === bigSkew ? this.bigSkew(r.pick([-3_000, 3_000])) : r.int(-50, 50),
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
      `skew=${this.coords.map((c) => c.skew).join('/')} writeRate=${this.writeRate / KB}KB/100ms ` +
      `failAfter=${s.failAfterMs} refusedFailAfter=${s.refusedFailAfterMs} agentTimeout=${s.agentTimeoutMs} ` +
      `maxLag=${s.maxLagOnFailoverBytes / KB}KB promoteTimeout=${s.promoteTimeoutMs} cooldown=${s.cooldownMs} jobRetry=${s.jobRetryMs} ` +
      `fenceAfter=${s.fenceAfterMs} fenceMargin=${s.fenceMarginMs} policy=${s.policy}${s.synchronous ? ' synchronous' : ''}`;
  }

  /* ---------------------------------------------------------------- plumbing */

  private bigSkew(ms: number): number {
    return this.clockSkew ? ms : Math.sign(ms) * 50;
  }

  private at(t: number, fn: () => void): void {
    this.q.push(Math.max(t, this.now), fn);
  }

  private tr(msg: () => string): void {
    if (this.traceOn) this.trace.push(`${String(this.now).padStart(6)} ${msg()}`);
  }

  private violate(invariant: string, detail: string): void {
    this.violations.push({ t: this.now, invariant, detail });
    this.tr(() => `!! VIOLATION ${invariant}: ${detail}`);
  }

  private changed(): void {
    this.worldVersion++;
  }

  private node(id: string): PgNode {
    const n = this.nodes[id];
    if (!n) throw new Error(`no node ${id}`);
    return n;
  }

  private tl(n: PgNode): number {
    return n.hist[n.hist.length - 1]!.tl;
  }

  private count(rec: Record<string, number>, key: string): void {
    rec[key] = (rec[key] ?? 0) + 1;
  }

  private stopped(): boolean {
    return this.stopAtFirst && this.violations.length > 0;
  }

  /** run every event up to and including time t */
  private runUntil(t: number): void {
    for (;;) {
      if (this.stopped()) return;
      if (this.q.peekT() > t) break;
      const ev = this.q.pop()!;
      this.now = ev.t;
      this.stats.events++;
      ev.fn();
      this.checkAll();
    }
    this.now = t;
  }

  /* ---------------------------------------------------------------- the schedule */

  run(): RunResult {
    const r = this.rng;
    this.stats.schedules = 1;
    this.tr(() => `config ${this.config}`);
    for (const id of this.ids) this.bootAgent(this.agents[id]!);
    for (const c of this.coords) this.startCoordinator(c, r.int(0, LEASE_TICK_MS - 1));
    this.walTick();
    this.at(r.int(0, TICK_MS - 1), () => this.tick());
    this.runUntil(r.int(2_000, 3_000));

    const steps = r.int(30, 80);
    const pFault = r.pick([0.05, 0.1, 0.2]);
    for (let i = 0; i < steps && !this.stopped(); i++) {
      if (r.chance(pFault)) this.injectFault();
      this.runUntil(this.now + STEP_MS);
    }

    // the faults stop: everything heals; a crashed primary stays dead (no one restarts it)
    if (!this.stopped()) {
      this.healAll();
      const quietStart = this.now;
      this.tr(() => 'quiet: all faults healed');
      let live = false;
      while (this.now < quietStart + QUIET_MS && !this.stopped()) {
        // the operator resumes a paused cluster (again, should the command be lost)
        if ((this.now - quietStart) % 5_000 === 0 && this.prefix[this.prefix.length - 1]!.paused) this.command('resume');
        this.runUntil(this.now + 500);
        if (this.liveOk()) {
          live = true;
          break;
        }
      }
      if (live) {
        this.stats.livenessChecked++;
        this.stats.recoveryMsMax = Math.max(this.stats.recoveryMsMax, this.now - quietStart);
      } else if (!this.stopped()) this.checkLiveness();
      this.finalChecks();
    }
    if (this.splitSince !== null) this.stats.splitBrainMs += this.now - this.splitSince;
    this.splitCategory([]);
    return { seed: this.seed, violations: this.violations, trace: this.trace, config: this.config, stats: this.stats };
  }

  /* ---------------------------------------------------------------- WAL */

  private walTick(): void {
    const now = this.now;
    for (const id of this.ids) {
      const n = this.node(id);
      if (n.role !== 'primary' || !this.takingWrites(n)) continue;
      const storm = n.stormUntil > now;
      n.lsn += this.rng.int(0, storm ? 12 * this.writeRate : this.writeRate);
    }
    for (const id of this.ids) {
      const n = this.node(id);
      // the sender's view (pg_stat_replication on the upstream): it drops the standby at once
      // when a FIN or RST reaches it, else only wal_sender_timeout after the last reply
      if (n.senderOf) {
        const p = this.nodes[n.senderOf];
        const live = !!p && n.role === 'replica' && n.proc === 'running' && n.powered && n.upstream === p.id && n.streamFrom === p.id && this.net(n, p);
        if (!p || p.proc === 'dead' || !p.powered) n.senderOf = null;
        else if (!live && this.net(n, p) && n.proc !== 'stopped') n.senderOf = null;
      }
      if (n.role !== 'replica' || !n.powered || n.proc === 'dead') {
        if (n.streaming) {
          n.streaming = false;
          this.changed();
        }
        n.streamFrom = null;
        continue;
      }
      if (n.proc === 'stopped') continue;
      const was = n.streaming;
      // a new upstream (primary_conninfo reloaded): the WAL receiver starts over
      if (n.streamFrom !== null && n.streamFrom !== n.upstream) {
        n.streaming = false;
        n.stallSince = null;
        n.streamFrom = null;
      }
      const u = n.upstream ? this.nodes[n.upstream] : undefined;
      if (!u || u.id === n.id) {
        n.streaming = false;
        n.streamFrom = null;
      } else if (!this.net(n, u) || u.proc === 'stopped') {
        // no FIN, no RST: the WAL receiver keeps its connection until wal_receiver_timeout
        if (n.streaming) {
          n.stallSince ??= now;
          if (now - n.stallSince > WAL_RECEIVER_TIMEOUT_MS) {
            n.streaming = false;
            n.streamFrom = null;
          }
        }
      } else if (u.proc === 'dead' || !this.compatible(n, u)) {
        n.streaming = false;
        n.stallSince = null;
        n.streamFrom = null;
      } else {
        const fresh = !n.streaming || n.senderOf !== u.id;
        n.stallSince = null;
        n.streaming = true;
        n.streamFrom = u.id;
        n.senderOf = u.id;
        const cur = n.hist[n.hist.length - 1]!;
        const ucur = u.hist[u.hist.length - 1]!;
        if (cur.uid !== ucur.uid) this.setHist(n, u.hist.slice());
        const had = n.lsn;
        if (u.lsn > n.lsn) {
          const rate = n.lagUntil > now ? this.rng.int(0, Math.floor(this.writeRate / 4)) : 64 * 1024 * KB;
          n.lsn = Math.min(u.lsn, n.lsn + rate);
        }
        // the standby replies (reply_time) after receiving WAL, and every wal_receiver_status_interval
        if (fresh || n.lsn > had || now - n.lastReplyAt >= WAL_RECEIVER_STATUS_INTERVAL_MS) n.lastReplyAt = now;
      }
      if (was !== n.streaming) this.changed();
    }
    if (this.settings.synchronous) {
      for (const id of this.ids) {
        const p = this.node(id);
        if (!this.writable(p)) continue;
        const sync = this.syncStandbys(p);
        const seg = p.hist[p.hist.length - 1]!.uid;
        // a commit is acknowledged once its synchronous standbys have flushed it (async: at once)
        const upTo = p.syncNames.length === 0 ? p.lsn : sync.length < p.syncCount ? -1 : Math.min(...sync.map((r) => r.lsn));
        if (upTo > (this.acked.get(seg) ?? -1)) this.acked.set(seg, upTo);
      }
    }
    this.at(now + WAL_TICK_MS, () => this.walTick());
  }

  /** FIRST k (names): the first k named standbys connected to p and streaming from it */
  private syncStandbys(p: PgNode): PgNode[] {
    const out: PgNode[] = [];
    for (const name of p.syncNames) {
      const r = this.nodes[name];
      if (r && r.streamFrom === p.id && r.streaming && r.proc === 'running' && this.net(r, p)) out.push(r);
      if (out.length === p.syncCount) break;
    }
    return out;
  }

  /** can replica `r` stream from `u`: is its current history a prefix of u's? */
  private compatible(r: PgNode, u: PgNode): boolean {
    const cur = r.hist[r.hist.length - 1]!;
    const k = u.hist.findIndex((s) => s.uid === cur.uid);
    if (k < 0) return false;
    const next = u.hist[k + 1];
    return next === undefined || r.lsn <= next.start;
  }

  private net(a: PgNode, b: PgNode): boolean {
    return a.powered && b.powered && !a.isolated && !b.isolated;
  }

  /** a primary that takes writes, from any client that can reach it */
  private writable(n: PgNode): boolean {
    return n.role === 'primary' && n.proc === 'running' && n.powered && !n.readOnly;
  }

  /** … and the clients can reach it */
  private takingWrites(n: PgNode): boolean {
    return this.writable(n) && !n.isolated;
  }

  /* ---------------------------------------------------------------- agents */

  private agentRunning(a: Agent): boolean {
    return !a.crashed && this.node(a.node).powered;
  }

  private agentConnected(a: Agent): boolean {
    const n = this.node(a.node);
    return a.started && this.agentRunning(a) && !a.partitioned && !n.isolated;
  }

  private leaseEpochNow(): number {
    const l = this.lease;
    return l && this.now < l.expiresAt ? l.epoch : 0;
  }

  /** Agent.start(): connect, read the lease epoch and the primary, boot the node, start the worker and probes. */
  private bootAgent(a: Agent): void {
    if (!this.agentRunning(a) || a.started || a.booting) return;
    const n = this.node(a.node);
    if (a.partitioned || n.isolated) {
      // connectRedis fails: the process exits, and its supervisor starts it again
      this.at(this.now + 1_000, () => this.bootAgent(a));
      return;
    }
    a.booting = true;
    const g = ++a.gen;
    a.bootN++;
    a.bootId = `${a.node}-b${a.bootN}`;
    a.seq = 0;
    a.epochSeen = this.leaseEpochNow();
    a.primaryId = this.primaryKey;
    a.working = null;
    a.busy = false;
    a.probing = false;
    a.probeAgain = false;
    a.restartPending = false;
    a.restartDelay = 200;
    a.lastRedisOk = this.now;
    a.fenced = false;
    a.promotedAt = null;
    a.walEnd = null;
    a.walEndReadyAt = 0;
    const finish = (): void => {
      if (a.gen !== g) return;
      a.booting = false;
      a.started = true;
      this.tr(() => `agent ${a.node} started (${a.bootId}, epochSeen ${a.epochSeen})`);
      this.scheduleProbe(a, 0);
      this.kickWorker(a);
    };
    if (n.proc === 'running' || n.proc === 'stopped') {
      finish(); // adopt the running postmaster
      return;
    }
    if (n.role === 'primary' && a.primaryId && a.primaryId !== n.id && !this.agentAsIs) {
      // (assumed, not what agent.ts does yet: README.md) a former primary comes back
      // read-only, not rewound: the published primary may lag an operation in flight, and
      // this node may be its newest primary; the leader rejoins it, or adopts it
      this.tr(() => `agent ${a.node} boot: was primary, ${a.primaryId} is the published primary: starting it read-only`);
      this.at(this.now + this.rng.int(100, 300), () => {
        if (a.gen !== g) return;
        if (n.proc === 'dead' && n.powered && n.role === 'primary') {
          n.readOnly = true;
          this.stats.bootFenced++;
          this.startPg(n);
        }
        finish();
      });
      return;
    }
    if (n.role === 'primary' && a.primaryId && a.primaryId !== n.id) {
      // agent.ts bootNode: a former primary never comes back as a second primary: rewind it first
      const up = a.primaryId;
      this.tr(() => `agent ${a.node} boot: was primary, ${up} is the primary now: rewinding`);
      this.at(this.now + this.rng.int(300, 3_000), () => {
        if (a.gen !== g) return;
        if (this.rewind(n, up)) {
          this.tr(() => `${n.id} rewound onto ${up} at boot`);
          this.at(this.now + this.rng.int(100, 300), () => {
            if (a.gen !== g) return;
            this.startPg(n);
            finish();
          });
        } else {
          // start() throws: the agent exits; its supervisor starts it again
          this.tr(() => `agent ${a.node} boot: rewind onto ${up} failed; agent exits`);
          a.booting = false;
          a.gen++;
          this.at(this.now + 2_000, () => this.bootAgent(a));
        }
      });
      return;
    }
    this.at(this.now + this.rng.int(100, 300), () => {
      if (a.gen !== g) return;
      if (n.proc === 'dead' && n.powered) this.startPg(n);
      finish();
    });
  }

  private agentDown(a: Agent, why: string): void {
    const wasStarted = a.started || a.booting;
    a.started = false;
    a.booting = false;
    a.gen++;
    const job = a.working;
    a.working = null;
    a.busy = false;
    // BullMQ: the lock is not renewed; the stall checker hands the job out again
    if (job) this.requeue(a.node, job, this.now + this.stallDelay());
    if (wasStarted) this.tr(() => `agent ${a.node} down (${why})`);
  }

  /** when a stalled job is handed out again: its lock expires (30 s by default) and the stall checker runs */
  private stallDelay(): number {
    return this.rng.chance(0.5) ? this.rng.int(50, 3_000) : this.rng.int(20_000, 40_000);
  }

  private requeue(node: string, job: SimJob, at: number): void {
    const copy = { ...job, availableAt: at, copy: true };
    this.queues[node]!.push(copy);
    this.at(at, () => this.kickWorker(this.agents[node]!));
  }

  private startPg(n: PgNode): void {
    if (!n.powered || n.proc !== 'dead') return;
    n.proc = 'running';
    n.streaming = false;
    n.streamFrom = null;
    n.stallSince = null;
    this.changed();
    this.tr(() => `${n.id} postgres started as ${n.role}${n.readOnly ? ' (read-only)' : ''}`);
  }

  private scheduleProbe(a: Agent, delay: number): void {
    const g = a.gen;
    const token = ++a.probeTimer;
    this.at(this.now + delay, () => {
      if (a.gen !== g || a.probeTimer !== token) return;
      this.runProbe(a);
    });
  }

  private probeNow(a: Agent): void {
    if (!a.started) return;
    if (a.probing) {
      a.probeAgain = true;
      return;
    }
    this.scheduleProbe(a, 0);
  }

  /** probeOnce: GET the primary, probe the node and the primary's port, XADD; fence if Redis is lost */
  private runProbe(a: Agent): void {
    if (a.probing) {
      a.probeAgain = true;
      return;
    }
    a.probing = true;
    const g = a.gen;
    const end = (): void => {
      a.probing = false;
      if (a.probeAgain) {
        a.probeAgain = false;
        this.scheduleProbe(a, 0);
      } else this.scheduleProbe(a, PROBE_INTERVAL_MS + this.rng.int(-20, 20));
    };
    // refreshPrimary: a GET, which times out when Redis is out of reach
    const probe = (): void => {
      if (a.gen !== g) return;
      if (this.agentConnected(a)) a.primaryId = this.primaryKey;
      let obs = this.observe(a);
      let probeMs = this.rng.int(1, 4);
      // (a stopped postmaster is known from its process state, without a probe that would time out)
      if (obs.peer?.error === 'timeout') probeMs += PROBE_TIMEOUT_MS;
      this.at(this.now + probeMs, () => {
        if (a.gen !== g) return;
        if (this.fenceIfDeposed(a, obs) || this.killIfDeposedAndHung(a, obs)) obs = this.observe(a);
        // the setting itself says whether the node is fenced (it survives agent restarts)
        if (obs.reachable) a.fenced = obs.fenced === true;
        if (this.agentConnected(a)) {
          this.publish(a.node, { kind: 'obs', entry: obs });
          a.lastRedisOk = this.now;
          end();
          return;
        }
        this.at(this.now + REDIS_TIMEOUT_MS, () => {
          if (a.gen !== g) return;
          this.maybeFence(a, obs);
          end();
        });
      });
    };
    if (this.agentConnected(a)) probe();
    else this.at(this.now + REDIS_TIMEOUT_MS, probe);
  }

  /**
   * agent fenceIfDeposed: a primary that reports reachable while the journal's primary (as
   * the leader published it) is another node refuses writes at once, unless this agent
   * promoted it less than PROMOTED_GRACE_MS ago (the leader has not named it yet).
   */
  private fenceIfDeposed(a: Agent, obs: Observation): boolean {
    if (!this.guards.has('deposed-fence')) return false;
    const n = this.node(a.node);
    if (a.fenced || !obs.reachable || obs.role !== 'primary' || !a.primaryId || a.primaryId === n.id) {
      if (a.primaryId === n.id) a.promotedAt = null;
      return false;
    }
    if (a.promotedAt !== null && this.now - a.promotedAt < PROMOTED_GRACE_MS) return false;
    // setReadOnly: fails on a node that is no longer running (the next probe says so)
    if (n.proc === 'running' && !n.readOnly) {
      n.readOnly = true;
      this.changed();
      this.stats.deposedFenced++;
      this.tr(() => `${n.id} FENCED itself (read-only): ${a.primaryId} is the journal's primary`);
    }
    a.fenced = true;
    return true;
  }

  /**
   * agent killIfDeposedAndHung: a deposed primary that does not answer (stopped) cannot be
   * made read-only and would take the writes queued on its sockets once it runs again:
   * its agent kills it (then reads its end of WAL, as for any primary that exits).
   */
  private killIfDeposedAndHung(a: Agent, obs: Observation): boolean {
    if (!this.guards.has('deposed-fence')) return false;
    const n = this.node(a.node);
    if (!a.primaryId || a.primaryId === n.id || n.role !== 'primary' || n.proc === 'dead') return false;
    if (a.promotedAt !== null && this.now - a.promotedAt < PROMOTED_GRACE_MS) return false;
    if (n.proc !== 'stopped' && !(!obs.reachable && obs.error === 'timeout')) return false;
    this.stats.deposedKilled++;
    this.killPg(n, `killed by its agent: deposed (${a.primaryId} is the journal's primary) and hung`);
    return true;
  }

  /** Self-fencing: a primary that cannot reach Redis for fenceAfterMs, with no replica connected, goes read-only. */
  private maybeFence(a: Agent, obs: Observation): void {
    if (a.fenced || obs.role !== 'primary' || !obs.reachable) return;
    if (this.now - a.lastRedisOk < this.settings.fenceAfterMs) return;
    // a standby cut off with it stays 'streaming' until wal_sender_timeout: only those that replied lately count
    const ageOk = (ms: number | null | undefined): boolean => !this.guards.has('reply-age') || ms === undefined || ms === null || ms < this.settings.fenceAfterMs;
    if ((obs.standbys ?? []).some((s) => s.state === 'streaming' && ageOk(s.replyAgeMs))) return;
    const n = this.node(a.node);
    if (n.proc !== 'running') return; // withClient fails: not fenced
    if (!n.readOnly) {
      n.readOnly = true;
      this.changed();
      this.stats.selfFenced++;
    }
    a.fenced = true;
    this.tr(() => `${n.id} FENCED itself (read-only): no Redis for ${this.now - a.lastRedisOk} ms, no standby replied lately`);
  }

  /** what agent/agent.ts observe() reports */
  private observe(a: Agent): Observation {
    const n = this.node(a.node);
    const o: Observation = {
      type: 'obs',
      v: 1,
      node: n.id,
      bootId: a.bootId,
      seq: ++a.seq,
      at: this.now,
      host: n.id,
      port: PORT,
      priority: n.priority,
      reachable: false,
      process: 'running',
      role: 'unknown',
      timeline: null,
      lsn: null,
      replayLsn: null,
      replayDelayMs: null,
      upstream: null,
      walReceiver: null,
      epochSeen: a.epochSeen,
    };
    if (n.proc === 'dead') {
      o.process = 'dead';
      o.error = 'refused';
      o.errorMessage = 'postmaster not running';
    } else if (n.proc === 'stopped') {
      o.process = 'stopped';
      o.error = 'timeout';
      o.errorMessage = 'postmaster stopped (SIGSTOP)';
    } else {
      const lsn = formatLsn(n.lsn);
      o.reachable = true;
      o.role = n.role;
      o.timeline = this.tl(n);
      o.lsn = lsn;
      o.replayLsn = lsn;
      if (n.role === 'replica') {
        o.replayDelayMs = 0;
        o.upstream = n.upstream ? `${n.upstream}:${PORT}` : null;
        o.walReceiver = n.streaming ? 'streaming' : null;
      } else {
        // pg_stat_replication: a partitioned or stopped standby stays until wal_sender_timeout
        const standbys: ReplicationPeer[] = [];
        const sync = this.syncStandbys(n);
        for (const id of this.ids) {
          const r = this.node(id);
          if (r.senderOf === n.id && this.now - r.lastReplyAt < WAL_SENDER_TIMEOUT_MS) {
            const rl = formatLsn(r.lsn);
            const syncState = sync.includes(r) ? 'sync' : n.syncNames.includes(id) ? 'potential' : 'async';
            standbys.push({ name: id, state: 'streaming', replayLsn: rl, flushLsn: rl, replayLagMs: 0, syncState, replyAgeMs: this.now - r.lastReplyAt });
          }
        }
        o.standbys = standbys;
        if (n.readOnly) o.fenced = true;
        // where its timeline forked off (the history file): the fork point without the promote job's result
        if (n.hist.length > 1) o.forkLsn = formatLsn(n.hist[n.hist.length - 1]!.start);
      }
    }
    if (a.walEnd !== null) o.walEnd = formatLsn(a.walEnd);
    const p = a.primaryId;
    if (p && p !== n.id && this.nodes[p]) {
      const err = this.tcp(n, this.node(p));
      o.peer = err ? { node: p, reachable: false, error: err } : { node: p, reachable: true };
    }
    return o;
  }

  /** agent.ts tcpCheck from `from`'s host to `to`'s port: an SSLRequest the server must answer */
  private tcp(from: PgNode, to: PgNode): ProbeError | null {
    if (!this.net(from, to)) return 'timeout';
    if (to.proc === 'dead') return 'refused';
    if (to.proc === 'stopped') return 'timeout'; // the kernel completes the connect, the server never answers
    return null;
  }

  /** XADD to the observation (or command) stream: every coordinator reads it */
  private publish(node: string, ev: SoftEvent): void {
    for (const c of this.coords) {
      if (!c.up) continue;
      let d = this.rng.int(1, 15);
      if (c.slowUntil > this.now) d += this.slowReadMs();
      if (ev.kind !== 'command' && this.obsDelayUntil > this.now && this.rng.chance(0.5)) d += this.rng.int(0, 2_000);
      this.deliver(c, d, () => this.foldSoft(c, ev));
      if (ev.kind !== 'command' && this.obsDupUntil > this.now && this.rng.chance(0.3)) this.deliver(c, d + this.rng.int(0, 1_500), () => this.foldSoft(c, ev));
    }
    if (ev.kind === 'job.result') this.tr(() => `${node} result ${ev.entry.jobId} ok=${ev.entry.ok}${ev.entry.code ? ' ' + ev.entry.code : ''}`);
  }

  /**
   * Extra read lag of a slow coordinator. Its reads keep completing, so it stays "fresh"
   * (no 503) whatever the lag: past a few hundred ms a stale follower can route writes
   * to a demoted node (see README.md); SIM_STALE_READS=1 lets the lag reach 1.5 s.
   */
  private slowReadMs(): number {
    return this.staleReads ? this.rng.int(200, 1_500) : this.rng.int(20, 150);
  }

  private deliver(c: Coord, delay: number, fn: () => void): void {
    const g = c.gen;
    this.at(this.now + delay, () => {
      if (!c.up || c.gen !== g) return;
      if (c.paused || c.cut || c.draining) c.backlog.push(fn);
      else fn();
    });
  }

  private foldSoft(c: Coord, ev: SoftEvent): void {
    const receivedAt = this.clock(c);
    let e: CoreEvent;
    if (ev.kind === 'obs') e = { kind: 'obs', id: `${ev.entry.bootId}-${ev.entry.seq}`, receivedAt, entry: ev.entry };
    else if (ev.kind === 'job.result') e = { kind: 'job.result', id: ev.entry.jobId, receivedAt, entry: ev.entry };
    else e = { kind: 'command', id: ev.entry.id, receivedAt, entry: ev.entry };
    c.state = evolve(c.state, e);
  }

  /* ---------------------------------------------------------------- jobs */

  private kickWorker(a: Agent): void {
    if (!this.agentConnected(a) || a.working) return;
    const q = this.queues[a.node]!;
    let best = -1;
    for (let i = 0; i < q.length; i++) {
      const j = q[i]!;
      if (j.availableAt <= this.now && (best < 0 || j.availableAt < q[best]!.availableAt)) best = i;
    }
    if (best < 0) return;
    const job = q.splice(best, 1)[0]!;
    a.working = job;
    if (job.copy) this.stats.duplicateJobRuns++;
    this.runJob(a, job);
  }

  private runJob(a: Agent, job: SimJob): void {
    const g = a.gen;
    const n = this.node(a.node);
    const started = this.now;
    const spec = job.spec;
    const done = (after: number, ok: boolean, code?: string, message?: string, lsn?: string): void => {
      this.at(this.now + after, () => {
        if (a.gen !== g) return;
        a.working = null;
        if (!ok && code) this.count(this.stats.jobsRefused, code);
        if (this.agentConnected(a)) {
          const r: JobResult = {
            type: 'job.result',
            v: 1,
            node: n.id,
            bootId: a.bootId,
            at: this.now,
            jobId: job.jobId,
            epoch: job.epoch,
            operationId: spec.operationId,
            action: spec.action,
            ok,
            durationMs: this.now - started,
          };
          if (code) r.code = code;
          if (message) r.message = message;
          if (lsn) r.lsn = lsn;
          this.publish(n.id, { kind: 'job.result', entry: r });
        } else {
          // the result is lost with the connection, and the lock: the job comes again
          this.requeue(n.id, job, this.now + this.stallDelay());
        }
        this.probeNow(a);
        this.kickWorker(a);
      });
    };
    this.tr(() => `${n.id} runs ${job.jobId}${job.copy ? ' (again)' : ''} [${n.proc} ${n.role}]`);
    if (spec.node !== n.id) return done(1, false, 'wrong-node');
    // a job delivered late (at least once: BullMQ hands a stalled job out again) past its
    // expiresAt, which the leader stamped with its own clock, is refused
    if (this.guards.has('job-expiry') && this.now > job.expiresAt) {
      if (this.now - job.sentAt <= this.jobTtl(spec.action)) this.stats.expiredBySkew++;
      return done(1, false, 'expired', `job expired ${this.now - job.expiresAt} ms ago (sent ${this.now - job.sentAt} ms ago)`);
    }
    // checkEpoch(data, irreversible)
    if (job.epoch < a.epochSeen) return done(1, false, 'stale-epoch', `job epoch ${job.epoch} < ${a.epochSeen}`);
    a.epochSeen = job.epoch;
    const leaseCheck = (): boolean => {
      const cur = this.leaseEpochNow();
      if (cur !== a.epochSeen) {
        a.epochSeen = Math.max(a.epochSeen, cur);
        return false;
      }
      return true;
    };
    const up = spec.upstream;
    if (spec.action !== 'follow' && !leaseCheck()) return done(1, false, 'lease-changed');
    switch (spec.action) {
      case 'promote': {
        if (n.proc === 'dead') return done(2, false, 'failed', 'connect ECONNREFUSED');
        if (n.proc === 'stopped') return done(ACTION_TIMEOUT_MS, false, 'failed', 'timeout');
        a.promotedAt = this.now;
        if (n.role === 'primary') {
          // promoted before (a duplicate job), maybe fenced since: the leader wants it writable
          if (a.fenced) {
            a.fenced = false;
            if (n.readOnly) {
              n.readOnly = false;
              this.changed();
              this.tr(() => `${n.id} unfenced by a promote job: takes writes again`);
            }
          }
          return done(2, true, undefined, 'already primary');
        }
        const d = this.rng.int(50, 1_500);
        // pg_promote runs in the server: it finishes even if the agent dies meanwhile
        this.at(this.now + d, () => {
          if (n.proc === 'running' && n.role === 'replica') this.promoteNode(n, spec.operationId);
        });
        this.at(this.now + d, () => {
          if (a.gen !== g) return;
          if (n.role === 'primary' && n.proc === 'running') {
            a.walEnd = null;
            // where the new timeline forked off: the last line of its history file
            const fork = n.hist.length > 1 ? formatLsn(n.hist[n.hist.length - 1]!.start) : undefined;
            done(1, true, undefined, 'promoted', fork);
          } else done(1, false, 'failed', 'pg_promote failed');
        });
        return;
      }
      case 'demote': {
        if (!up) return done(1, false, 'bad-job');
        if (n.proc === 'running' && n.role === 'replica') return this.followUpstream(n, up.id, done, 'already a standby: ');
        if (n.proc === 'stopped') return done(ACTION_TIMEOUT_MS, false, 'failed', 'timeout');
        a.busy = true;
        if (n.proc === 'running') {
          const j = this.prefix[this.prefix.length - 1]!;
          if (j.primary === n.id && !(j.operation?.id === spec.operationId && j.operation.phase === 'demoting')) this.staleDemotion(n, job);
          // a fast shutdown: the walsenders ship every record to the connected standbys first
          for (const id of this.ids) {
            const r = this.node(id);
            if (r.senderOf === n.id && r.proc === 'running' && this.net(r, n) && r.hist[r.hist.length - 1]!.uid === n.hist[n.hist.length - 1]!.uid) r.lsn = Math.max(r.lsn, n.lsn);
          }
          n.proc = 'dead';
          this.changed();
          this.tr(() => `${n.id} shut down by its agent to demote it`);
        }
        const lsn = formatLsn(n.lsn);
        this.at(this.now + this.rng.int(200, 1_000), () => {
          if (a.gen !== g) return;
          a.busy = false;
          n.role = 'replica';
          n.readOnly = false;
          n.upstream = up.id;
          this.startPg(n);
          done(0, true, undefined, `demoted: standby of ${up.id}`, lsn);
        });
        return;
      }
      case 'follow': {
        if (!up) return done(1, false, 'bad-job');
        if (n.proc === 'stopped') return done(ACTION_TIMEOUT_MS, false, 'failed', 'timeout');
        if (n.proc === 'running' && n.role === 'primary') {
          // a primary asked to follow: a rejoin, which re-checks the lease
          if (!leaseCheck()) return done(2, false, 'lease-changed');
          return this.rejoin(a, g, n, up.id, job, done);
        }
        if (n.proc === 'dead') return this.rejoin(a, g, n, up.id, job, done);
        return this.followUpstream(n, up.id, done, '');
      }
      case 'rejoin': {
        if (!up) return done(1, false, 'bad-job');
        if (n.proc === 'stopped') {
          // the probe query times out; pg_ctl stop gives up and kills it
          this.at(this.now + ACTION_TIMEOUT_MS, () => {
            if (a.gen !== g) return;
            a.busy = true; // (no end of WAL read: the agent stops it itself)
            if (n.proc === 'stopped') {
              if (n.role === 'primary' && this.prefix[this.prefix.length - 1]!.primary === n.id) this.staleDemotion(n, job);
              this.killPg(n, 'killed by the agent for a rejoin');
            }
            this.rejoin(a, g, n, up.id, job, done);
          });
          return;
        }
        return this.rejoin(a, g, n, up.id, job, done);
      }
      case 'unfence': {
        if (n.proc !== 'running') return done(n.proc === 'stopped' ? ACTION_TIMEOUT_MS : 2, false, 'failed', 'cannot connect');
        if (n.readOnly) {
          n.readOnly = false;
          this.changed();
          this.tr(() => `${n.id} unfenced: takes writes again`);
        }
        a.fenced = false;
        return done(this.rng.int(5, 30), true, undefined, 'unfenced: taking writes again');
      }
      case 'sync': {
        const want = spec.sync;
        if (!want || want.names.length === 0) return done(1, false, 'bad-job');
        if (n.proc === 'stopped') return done(ACTION_TIMEOUT_MS, false, 'failed', 'timeout');
        if (n.proc !== 'running') return done(2, false, 'failed', 'connect ECONNREFUSED');
        if (n.role !== 'primary') return done(2, false, 'not-primary', 'synchronous_standby_names is set on the primary only');
        n.syncNames = want.names.slice();
        n.syncCount = want.count;
        this.tr(() => `${n.id} synchronous_standby_names = FIRST ${want.count} (${want.names.join(', ')})`);
        return this.at(this.now + this.rng.int(20, 200), () => {
          if (a.gen !== g) return;
          done(0, true, undefined, 'synchronous_standby_names set', formatLsn(n.lsn));
        });
      }
      case 'restart': {
        // start the node in place, as it is on disk (a crashed primary comes back as a primary)
        if (n.proc === 'running') return done(2, true, undefined, 'already running');
        if (n.proc === 'stopped') return done(ACTION_TIMEOUT_MS, false, 'failed', 'timeout');
        a.busy = true;
        // (after the end of WAL is read)
        this.at(Math.max(this.now, a.walEndReadyAt) + this.rng.int(100, 300), () => {
          if (a.gen !== g) return;
          a.busy = false;
          a.walEnd = null;
          this.startPg(n);
          done(0, true, undefined, 'restarted');
        });
        return;
      }
      default:
        return done(1, false, 'unknown-action', `unknown action ${(spec as { action: string }).action}`);
    }
  }

  /** a job of an operation that is over stops the journal's primary (delivered again, or sent by a deposed leader) */
  private staleDemotion(n: PgNode, job: SimJob): void {
    this.stats.staleDemotions++;
    this.tr(() => `note: ${job.jobId} stops ${n.id}, the journal's primary`);
  }

  private followUpstream(n: PgNode, up: string, done: (after: number, ok: boolean, code?: string, message?: string) => void, prefix: string): void {
    if (n.upstream !== up) {
      n.upstream = up;
      this.changed();
      this.tr(() => `${n.id} now follows ${up}`);
    }
    done(this.rng.int(5, 50), true, undefined, `${prefix}following ${up}`);
  }

  private rejoin(a: Agent, g: number, n: PgNode, up: string, job: SimJob, done: (after: number, ok: boolean, code?: string, message?: string) => void): void {
    // the end of WAL must be read before pg_rewind rewrites it
    if (a.walEndReadyAt > this.now) {
      this.at(a.walEndReadyAt, () => {
        if (a.gen === g) this.rejoin(a, g, n, up, job, done);
      });
      return;
    }
    if (n.proc === 'running' && n.role === 'replica') return this.followUpstream(n, up, done, '');
    a.busy = true;
    if (n.proc === 'running') {
      if (this.prefix[this.prefix.length - 1]!.primary === n.id) this.staleDemotion(n, job);
      n.proc = 'dead';
      this.changed();
      this.tr(() => `${n.id} stopped by its agent for a rejoin`);
    }
    const wasStandby = n.role === 'replica';
    this.at(this.now + (wasStandby ? this.rng.int(100, 400) : this.rng.int(300, 4_000)), () => {
      if (a.gen !== g) return; // the agent died: the rejoin is abandoned, the node stays down
      a.busy = false;
      if (wasStandby) {
        n.upstream = up;
        n.readOnly = false;
        this.changed();
        this.startPg(n);
        return done(0, true, undefined, `rejoined ${up} (restarted)`);
      }
      // a former primary, however it stopped: its end of WAL is read and reported before pg_rewind discards the tail
      if (a.walEnd === null) {
        a.walEnd = n.lsn;
        this.walEndHist.set(`${n.id}:${formatLsn(n.lsn)}`, n.hist);
        this.tr(() => `agent ${n.id}: end of WAL on disk ${formatLsn(n.lsn)}, before rewinding`);
      }
      if (this.agentConnected(a)) this.publish(n.id, { kind: 'obs', entry: this.observe(a) });
      if (this.rewind(n, up)) {
        this.startPg(n);
        this.tr(() => `${n.id} rejoined ${up} (rewound)`);
        return done(this.rng.int(100, 300), true, undefined, `rejoined ${up} (rewound)`);
      }
      return done(0, false, 'failed', `pg_rewind from ${up} failed`);
    });
  }

  /** pg_rewind (or a re-clone) from `up`: the node's history becomes up's. Needs up running and reachable. */
  private rewind(n: PgNode, upId: string): boolean {
    const u = this.nodes[upId];
    if (!u || u.id === n.id || !this.net(n, u) || u.proc !== 'running') return false;
    n.role = 'replica';
    n.readOnly = false;
    this.setHist(n, u.hist.slice());
    n.lsn = u.lsn;
    n.upstream = u.id;
    n.streaming = false;
    n.streamFrom = null;
    this.changed();
    return true;
  }

  /** a node's history changes: what it had on its last segment is final (for the loss check) */
  private setHist(n: PgNode, hist: Segment[]): void {
    const last = n.hist[n.hist.length - 1]!;
    this.segEnd.set(`${n.id}:${last.uid}`, n.lsn);
    n.hist = hist;
  }

  private promoteNode(n: PgNode, operationId: string): void {
    const tl = this.tl(n) + 1;
    // not the target of the journal's operation: a job from an older one, delivered again
    const op = this.prefix[this.prefix.length - 1]!.operation;
    if (!op || op.id !== operationId || op.to !== n.id) {
      this.stats.stalePromotions++;
      this.tr(() => `note: ${n.id} promoted by a job of an operation that is over`);
    } else if (op.from && op.from !== n.id && !this.promotions.has(op.id)) {
      const from = this.node(op.from);
      this.promotions.set(op.id, { from: from.id, fromHist: from.hist, hist: n.hist, lsn: n.lsn });
    }
    n.syncNames = [];
    n.syncCount = 0;
    this.promotedSeg.set(this.uidSeq, n.id);
    this.setHist(n, [...n.hist, { uid: this.uidSeq++, tl, start: n.lsn }]);
    n.role = 'primary';
    n.readOnly = false;
    n.upstream = null;
    n.streaming = false;
    this.changed();
    this.tr(() => `${n.id} PROMOTED: timeline ${tl} at ${formatLsn(n.lsn)}`);
    for (const id of this.ids) {
      const o = this.node(id);
      if (o !== n && this.writable(o)) {
        // why it has not fenced itself yet
        const a = this.agents[id]!;
        let where: string;
        if (!a.started || !this.agentRunning(a)) where = 'agent down';
        else if (o.isolated) {
          const peers = this.ids.map((r) => this.node(r)).filter((r) => r.senderOf === id && this.now - r.lastReplyAt < WAL_SENDER_TIMEOUT_MS);
          const replied = peers.some((r) => this.now - r.lastReplyAt < this.settings.fenceAfterMs);
          if (replied) where = 'a standby replied within fenceAfterMs';
          else if (peers.length && !this.guards.has('reply-age')) where = 'standbys still listed';
          else if (this.now - a.lastRedisOk < this.settings.fenceAfterMs) where = 'fenceAfterMs not reached yet';
          else where = 'fence due, its probe still waiting on Redis';
        } else if (a.partitioned) where = 'agent cut off from Redis';
        else if (a.promotedAt !== null && this.now - a.promotedAt < PROMOTED_GRACE_MS) where = 'in its promotion grace';
        else where = 'agent up: the leader has not published the new primary';
        where = `${o.isolated ? 'isolated' : 'reachable'} (${where})`;
        this.count(this.stats.promotedBesideWritable, where);
        this.tr(() => `note: ${id} (${where}) is still a writable primary`);
      }
    }
  }

  private killPg(n: PgNode, why: string): void {
    if (n.proc === 'dead') return;
    n.proc = 'dead';
    n.streaming = false;
    this.changed();
    this.tr(() => `${n.id} postgres ${why}`);
    // the agent (its child's 'exit' event) reacts at once
    const a = this.agents[n.id]!;
    if (!a.started || !this.agentRunning(a)) return;
    this.probeNow(a);
    if (!a.busy && n.role === 'primary') {
      // the agent reads its end of WAL from disk (pg_waldump): what a failover loses is measured against it
      const g = a.gen;
      const end = n.lsn;
      const hist = n.hist;
      const d = this.rng.int(50, 500);
      a.walEndReadyAt = this.now + d;
      this.at(this.now + d, () => {
        if (a.gen !== g) return;
        a.walEnd = end;
        this.walEndHist.set(`${n.id}:${formatLsn(end)}`, hist);
        this.tr(() => `agent ${n.id}: end of WAL on disk ${formatLsn(end)}`);
        this.probeNow(a);
      });
    }
    if (a.busy) return;
    if (n.role === 'replica') {
      if (a.restartPending) return;
      a.restartPending = true;
      const g = a.gen;
      const delay = a.restartDelay;
      a.restartDelay = Math.min(5_000, a.restartDelay * 2);
      this.at(this.now + delay, () => {
        if (a.gen !== g) return;
        a.restartPending = false;
        if (a.busy || n.proc !== 'dead' || !n.powered) return;
        this.at(this.now + this.rng.int(100, 300), () => {
          if (a.gen !== g || a.busy || n.proc !== 'dead') return;
          this.startPg(n);
          a.restartDelay = 200;
          this.probeNow(a);
        });
      });
    } else {
      this.tr(() => `agent ${n.id}: the primary died; not restarting it in place`);
    }
  }

  /* ---------------------------------------------------------------- coordinators */

  private clock(c: Coord): number {
    return this.now + c.skew;
  }

  private isLeaderLocal(c: Coord): boolean {
    return c.token !== null && this.now < c.deadline;
  }

  private fenceOk(c: Coord): boolean {
    const l = this.lease;
    return !!l && c.token !== null && l.token === c.token && this.now < l.expiresAt;
  }

  /** every coordinator's tick timer (one event for all: the phase between them does not matter) */
  private tick(): void {
    for (const c of this.coords) if (c.up && !c.paused) this.pass(c);
    this.at(this.now + TICK_MS, () => this.tick());
  }

  private startCoordinator(c: Coord, leasePhase: number): void {
    const g = c.gen;
    const leaseTick = (): void => {
      if (c.gen !== g) return;
      if (c.up && !c.paused) this.leaseTick(c);
      else if (c.up) c.tickMissed = true;
      this.at(this.now + LEASE_TICK_MS, leaseTick);
    };
    this.at(this.now + leasePhase, leaseTick);
  }

  private leaseTick(c: Coord): void {
    if (c.cut) return; // the lease script cannot reach Redis: the holder runs out at its own deadline
    const l = this.lease;
    if (l && c.token !== null && l.token === c.token && this.now < l.expiresAt) {
      l.expiresAt = this.now + LEASE_TTL_MS;
      c.deadline = this.now + LEASE_TTL_MS - LEASE_MARGIN_MS;
      return;
    }
    if (!l || this.now >= l.expiresAt) {
      const epoch = ++this.epochCounter;
      const token = `${epoch}:${c.id}`;
      this.lease = { epoch, holder: c.id, token, expiresAt: this.now + LEASE_TTL_MS };
      c.token = token;
      c.epoch = epoch;
      c.deadline = this.now + LEASE_TTL_MS - LEASE_MARGIN_MS;
      if (epoch > 1) this.stats.leaderChanges++;
      this.tr(() => `${c.id} acquired the lease: epoch ${epoch}`);
      if (this.guards.has('catch-up')) this.catchUp(c);
      this.act(c, [{ type: 'append', entry: { type: 'leader.changed', coordinator: c.id } }], c.state, this.clock(c), false);
      this.schedulePass(c, 1);
      return;
    }
    if (c.token !== null) this.tr(() => `${c.id} lost the lease to ${l.holder}`);
    c.token = null;
    c.deadline = 0;
    c.epoch = Math.max(c.epoch, l.epoch);
  }

  private schedulePass(c: Coord, delay: number): void {
    if (c.passScheduled) return;
    c.passScheduled = true;
    const g = c.gen;
    this.at(this.now + delay, () => {
      if (c.gen !== g) return;
      c.passScheduled = false;
      if (c.up && !c.paused) this.pass(c);
    });
  }

  /**
   * catchUpJournal: a new leader reads the journal to its end before its first append (an
   * entry of its own with a higher id would make its fold skip any of its predecessor's
   * entries not read yet).
   */
  private catchUp(c: Coord): void {
    const from = c.state.logId === '0-0' ? 0 : this.idIndex.get(c.state.logId);
    if (from === undefined) return;
    if (from < this.journal.length) {
      this.stats.caughtUp++;
      this.tr(() => `${c.id} catches up: ${this.journal.length - from} journal entries not read yet`);
    }
    for (let i = from; i < this.journal.length; i++) {
      const r = this.journal[i]!;
      c.state = evolve(c.state, { kind: 'journal', id: r.id, entry: r.entry });
    }
  }

  /** one decide pass of the leader's shell (decidePass) */
  private pass(c: Coord): void {
    if (!this.isLeaderLocal(c) || c.cut) return; // (cut off: its appends fail)
    const before = c.state;
    const now = this.clock(c);
    const decisions = decide(before, now, this.settings);
    if (decisions.length === 0) {
      c.chained = 0;
    } else {
      this.act(c, decisions, before, now, false);
      // what was just journaled may enable the next step at once (bounded, as the shell)
      if (++c.chained < CHAINED_PASSES) this.schedulePass(c, this.rng.int(1, 5));
    }
    this.publishRouting(c);
  }

  /** act(): consecutive appends go in one fenced call; a job flushes first. */
  private act(c: Coord, decisions: Decision[], before: ClusterState, decidedAt: number, zombie: boolean): void {
    let batch: JournalEntry[] = [];
    let skipLocal = zombie;
    const flush = (): boolean => {
      if (batch.length === 0) return true;
      if (c.cut) return false; // the append cannot reach Redis (not a lost lease: it keeps it until its deadline)
      // the shell checks its own deadline first; a coordinator paused right after that check reaches the fence
      if (!skipLocal && !this.isLeaderLocal(c)) {
        this.dropLease(c, 'lease deadline passed');
        return false;
      }
      skipLocal = false;
      if (!this.fenceOk(c)) {
        this.stats.fencedAppends += batch.length;
        this.tr(() => `${c.id} append FENCED (epoch ${c.epoch}): dropped ${batch.map((e) => e.type).join(', ')}`);
        this.dropLease(c, 'append refused: the lease is no longer ours');
        return false;
      }
      for (const entry of batch) {
        const rec = this.appendJournal(entry);
        if (entry.type === 'failover.started') this.checkFailoverStarted(c, entry, before, decidedAt);
        c.state = evolve(c.state, { kind: 'journal', id: rec.id, entry });
      }
      batch = [];
      // the shell refreshes its routing table after every flush: check what it serves
      this.checkAll();
      return true;
    };
    for (const d of decisions) {
      if (d.type === 'append') batch.push(this.complete(c, d.entry, decidedAt));
      else {
        if (!flush() || c.cut) return;
        if (!this.isLeaderLocal(c)) {
          this.dropLease(c, 'lease deadline passed');
          return;
        }
        this.sendJob(c, d.job);
      }
    }
    flush();
  }

  private dropLease(c: Coord, why: string): void {
    if (c.token === null) return;
    this.tr(() => `${c.id} drops the lease: ${why}`);
    c.token = null;
    c.deadline = 0;
  }

  private complete(c: Coord, draft: JournalDraft, at: number): JournalEntry {
    const d = { ...draft } as JournalDraft & { jobId?: string; node?: string; operationId?: string; action?: string };
    const action: Record<string, string> = {
      'promotion.requested': 'promote',
      'demotion.requested': 'demote',
      'unfence.requested': 'unfence',
      'sync.requested': 'sync',
      'restart.requested': 'restart',
    };
    const a = d.type === 'follow.requested' ? d.action : action[d.type];
    if (a && d.operationId && d.node) d.jobId = jobIdFor(c.epoch, d.operationId, a, d.node);
    const entry: JournalEntry = { ...d, v: 1, at, epoch: c.epoch };
    return entry;
  }

  private appendJournal(entry: JournalEntry): JournalRecord {
    const ms = this.now;
    if (ms > this.lastMs) {
      this.lastMs = ms;
      this.lastSeq = 0;
    } else this.lastSeq++;
    const rec: JournalRecord = { id: `${this.lastMs}-${this.lastSeq}`, entry };
    const before = this.prefix[this.prefix.length - 1]!;
    this.journal.push(rec);
    this.idIndex.set(rec.id, this.journal.length);
    this.prefix.push(evolve(this.prefix[this.prefix.length - 1]!, { kind: 'journal', id: rec.id, entry }));
    this.tr(() => `journal ${rec.id} e${entry.epoch} ${describe(entry)}`);
    if (entry.type === 'promotion.succeeded' && this.settings.synchronous) this.checkNoAcknowledgedCommitLost(entry.node);
    if (entry.type === 'failover.started') {
      if (entry.kind === 'switchover') this.stats.switchoversStarted++;
      else this.stats.failoversStarted++;
    }
    if (entry.type === 'failover.loss') this.checkLoss(entry);
    if (entry.type === 'failover.completed') {
      const op = before.operation;
      if (entry.outcome === 'success' && op?.id === entry.operationId && op.kind === 'failover' && op.from !== null && op.from !== op.to) this.stats.lossFailovers++;
      if (entry.outcome === 'success') this.stats.operationsSucceeded++;
      else if (entry.outcome === 'failed') this.stats.operationsFailed++;
      else this.stats.operationsAborted++;
    }
    if (entry.type === 'command.rejected') this.stats.commandsRejected++;
    // every coordinator follows the journal with XREAD, in order
    for (const c of this.coords) {
      if (!c.up) continue;
      let d = this.rng.int(1, 20);
      if (c.slowUntil > this.now) d += this.slowReadMs();
      const t = Math.max(c.journalAt, this.now + d);
      c.journalAt = t;
      this.deliver(c, t - this.now, () => {
        c.state = evolve(c.state, { kind: 'journal', id: rec.id, entry });
      });
    }
    return rec;
  }

  private sendJob(c: Coord, spec: JobSpec): void {
    const jobId = jobIdFor(c.epoch, spec.operationId, spec.action, spec.node);
    const ids = this.jobIds[spec.node];
    if (!ids) return;
    // BullMQ: adding a job id that exists is a no-op
    if (ids.has(jobId)) return;
    ids.add(jobId);
    // a BullMQ queue is FIFO: first deliveries keep the order they were sent in
    const availableAt = Math.max(this.queueAt[spec.node] ?? 0, this.now + this.rng.int(2, 20));
    this.queueAt[spec.node] = availableAt;
    // a job delivered late must not act on an operation that is over: it expires when the
    // decision that sent it would be retried (the leader's clock: its skew included)
    const expiresAt = this.clock(c) + this.jobTtl(spec.action);
    const job: SimJob = { jobId, sentAt: this.now, expiresAt, epoch: c.epoch, spec, availableAt, copy: false };
    this.queues[spec.node]!.push(job);
    this.tr(() => `${c.id} sends ${jobId}${spec.upstream ? ' → ' + spec.upstream.id : ''}`);
    const a = this.agents[spec.node]!;
    this.at(job.availableAt, () => this.kickWorker(a));
    if (this.rng.chance(this.jobDupUntil > this.now ? 0.5 : 0.02)) this.requeue(spec.node, job, this.now + this.stallDelay());
  }

  private jobTtl(action: JobSpec['action']): number {
    return action === 'follow' || action === 'rejoin' || action === 'sync' ? this.settings.jobRetryMs : this.settings.promoteTimeoutMs;
  }

  private publishRouting(c: Coord): void {
    if (!this.isLeaderLocal(c) || !this.fenceOk(c) || c.cut) return;
    if (this.primaryKey !== c.state.primary) this.changed();
    this.primaryKey = c.state.primary;
  }

  /** a coordinator (re)started: replay the whole journal, no soft state, only new commands */
  private coldStart(c: Coord): void {
    c.up = true;
    c.paused = false;
    c.gen++;
    c.token = null;
    c.deadline = 0;
    c.epoch = 0;
    c.backlog = [];
    c.pendingAct = null;
    c.cut = false;
    c.tickMissed = false;
    c.draining = false;
    c.passScheduled = false;
    c.chained = 0;
    c.journalAt = 0;
    c.state = fold(
      initialState(CLUSTER),
      this.journal.map((r): CoreEvent => ({ kind: 'journal', id: r.id, entry: r.entry })),
    );
    this.changed();
    this.tr(() => `${c.id} restarted: replayed ${this.journal.length} journal entries`);
    this.startCoordinator(c, this.rng.int(0, 50));
  }

  private resume(c: Coord): void {
    if (!c.up || !c.paused) return;
    c.paused = false;
    this.tr(() => `${c.id} resumes`);
    const p = c.pendingAct;
    c.pendingAct = null;
    if (p) this.act(c, p.decisions, p.before, p.decidedAt, true);
    // timers come due before I/O: the lease tick (it may acquire the lease) and a decide
    // pass run on what it read before the pause; then the read that was in flight returns
    // (its reply predates the pause, but it counts as a read: fresh), and the next one
    // brings what arrived meanwhile — at once here, a read's round trip later with
    // SIM_STALE_READS (it serves its pre-pause view meanwhile)
    if (c.tickMissed && !c.cut) this.leaseTick(c);
    c.tickMissed = false;
    this.pass(c);
    if (!c.cut) {
      c.lastReadAt = this.now;
      this.drain(c, this.staleReads ? this.rng.int(1, 20) : 0, true);
    }
    this.changed();
  }

  /** read what arrived while it could not read (paused, cut off), after `delay` */
  private drain(c: Coord, delay: number, freshNow: boolean): void {
    const run = (): void => {
      c.draining = false;
      if (!freshNow) c.lastReadAt = this.now;
      const backlog = c.backlog;
      c.backlog = [];
      for (const fn of backlog) fn();
      this.changed();
    };
    if (delay <= 0) return run();
    c.draining = true;
    const g = c.gen;
    this.at(this.now + delay, () => {
      if (c.gen === g && c.up) run();
    });
  }

  /** how stale its view may be, for a violation's detail */
  private staleness(c: Coord): string {
    if (c.cut) return ` (cut off from Redis ${this.now - c.lastReadAt} ms ago)`;
    if (c.slowUntil > this.now) return ' (reads slowly)';
    return '';
  }

  /** can it serve its routing table? A paused one serves nothing; one that has not read for STALE_AFTER_MS answers 503 */
  private serving(c: Coord): boolean {
    if (!c.up || c.paused) return false;
    if (!c.cut || !this.guards.has('stale-503')) return true;
    return this.now - c.lastReadAt < STALE_AFTER_MS;
  }

  /** an operator's command, through the API of any coordinator (sy:{c}:cmd) */
  private command(action: Command['action'], to?: string): void {
    // the API of a live coordinator XADDs it; with none, the operator tries again
    if (!this.coords.some((c) => c.up && !c.paused && !c.cut)) {
      this.at(this.now + 1_000, () => this.command(action, to));
      return;
    }
    const cmd: Command = { type: 'command', v: 1, id: `cmd-${++this.cmdSeq}`, action, by: 'operator', at: this.now };
    if (to !== undefined) cmd.to = to;
    this.tr(() => `OPERATOR ${action}${to ? ' --to ' + to : ''} (${cmd.id})`);
    this.publish('api', { kind: 'command', entry: cmd });
  }

  /* ---------------------------------------------------------------- faults */

  private leader(): Coord | undefined {
    return this.coords.find((c) => c.up && c.token !== null && c.token === this.lease?.token);
  }

  private heal(d: number, fn: () => void): void {
    const id = this.healSeq++;
    this.heals.set(id, fn);
    this.at(this.now + d, () => {
      const h = this.heals.get(id);
      if (!h) return;
      this.heals.delete(id);
      h();
    });
  }

  private healAll(): void {
    const all = [...this.heals.values()];
    this.heals.clear();
    for (const h of all) h();
    this.obsDelayUntil = this.obsDupUntil = this.jobDupUntil = 0;
  }

  private primaryNode(): PgNode | undefined {
    const p = this.primaryKey;
    return p ? this.nodes[p] : undefined;
  }

  private injectFault(): void {
    const r = this.rng;
    const kind = r.weighted<FaultKind>([
      ['crash', 3],
      ['hang-short', 2],
      ['hang-long', 2],
      ['agent-crash', 1],
      ['agent-partition', 1],
      ['host-partition', 2],
      ['host-power', 1],
      ['lag', 2],
      ['storm', 1],
      ['coord-pause', 2],
      ['coord-crash', 1],
      ['coord-slow', 1],
      // a stale follower (a known gap): cut off, it serves its view for STALE_AFTER_MS
      ['coord-cut', this.staleReads ? 1 : 0],
      ['obs-delay', 1],
      ['obs-dup', 1],
      ['job-dup', 1],
      ['op-switchover', 1],
      ['op-failover', 0.5],
      ['op-pause', 0.5],
    ]);
    const pickNode = (primaryBias: number): PgNode => {
      const p = this.primaryNode();
      return p && r.chance(primaryBias) ? p : this.node(r.pick(this.ids));
    };
    this.count(this.stats.faults, kind);
    const s = this.settings;
    switch (kind) {
      case 'crash': {
        const n = pickNode(0.6);
        if (!n.powered || n.proc === 'dead') return;
        this.tr(() => `FAULT crash ${n.id} (${n.role})`);
        this.killPg(n, 'crashed');
        return;
      }
      case 'hang-short':
      case 'hang-long': {
        const n = pickNode(0.6);
        if (!n.powered || n.proc !== 'running') return;
        const d = kind === 'hang-short' ? r.int(100, Math.floor(s.failAfterMs * 0.8)) : r.int(Math.ceil(s.failAfterMs * 1.2), s.failAfterMs * 2 + 2_000);
        n.proc = 'stopped';
        this.changed();
        this.tr(() => `FAULT SIGSTOP ${n.id} (${n.role}) for ${d} ms`);
        this.heal(d, () => {
          if (n.proc !== 'stopped') return;
          n.proc = 'running';
          this.changed();
          this.tr(() => `heal SIGCONT ${n.id}`);
        });
        return;
      }
      case 'agent-crash': {
        const a = this.agents[pickNode(0.5).id]!;
        if (a.crashed) return;
        const d = r.int(500, 8_000);
        a.crashed = true;
        this.agentDown(a, 'crashed');
        this.tr(() => `FAULT agent ${a.node} crashed for ${d} ms`);
        this.heal(d, () => {
          a.crashed = false;
          this.tr(() => `heal agent ${a.node} restarts`);
          this.bootAgent(a);
        });
        return;
      }
      case 'agent-partition': {
        const a = this.agents[pickNode(0.5).id]!;
        if (a.partitioned) return;
        const d = r.int(500, 8_000);
        a.partitioned = true;
        this.tr(() => `FAULT agent ${a.node} cut off from Redis for ${d} ms`);
        this.heal(d, () => {
          a.partitioned = false;
          this.tr(() => `heal agent ${a.node} reaches Redis again`);
          this.kickWorker(a);
          this.bootAgent(a);
        });
        return;
      }
      case 'host-partition': {
        const n = pickNode(0.5);
        if (n.isolated || !n.powered) return;
        const d = r.int(1_000, 10_000);
        n.isolated = true;
        this.changed();
        this.tr(() => `FAULT host ${n.id} (${n.role}, ${n.proc}) isolated for ${d} ms`);
        this.heal(d, () => {
          n.isolated = false;
          this.changed();
          this.tr(() => `heal host ${n.id} back on the network`);
          const a = this.agents[n.id]!;
          this.kickWorker(a);
          this.bootAgent(a);
        });
        return;
      }
      case 'host-power': {
        const n = pickNode(0.5);
        if (!n.powered) return;
        const d = r.int(1_000, 10_000);
        const a = this.agents[n.id]!;
        this.tr(() => `FAULT host ${n.id} (${n.role}) powered off for ${d} ms`);
        n.powered = false;
        n.proc = 'dead';
        n.streaming = false;
        this.changed();
        this.agentDown(a, 'host powered off');
        this.heal(d, () => {
          n.powered = true;
          this.changed();
          this.tr(() => `heal host ${n.id} powered on`);
          this.bootAgent(a);
        });
        return;
      }
      case 'lag': {
        const replicas = this.ids.filter((id) => this.node(id).role === 'replica');
        if (!replicas.length) return;
        const n = this.node(r.pick(replicas));
        const d = r.int(1_000, 10_000);
        n.lagUntil = this.now + d;
        this.tr(() => `FAULT lag burst on ${n.id} for ${d} ms`);
        this.heal(d, () => {
          n.lagUntil = 0;
        });
        return;
      }
      case 'storm': {
        const p = this.primaryNode();
        if (!p) return;
        const d = r.int(500, 5_000);
        p.stormUntil = this.now + d;
        this.tr(() => `FAULT write storm on ${p.id} for ${d} ms`);
        this.heal(d, () => {
          p.stormUntil = 0;
        });
        return;
      }
      case 'coord-pause': {
        const l = this.leader();
        const c = l && r.chance(0.7) ? l : r.pick(this.coords);
        if (!c.up || c.paused) return;
        const d = r.int(500, 6_000);
        c.paused = true;
        if (!c.cut) c.lastReadAt = this.now;
        // paused between its deadline check and the fenced append: they run when it resumes
        if (this.isLeaderLocal(c) && r.chance(0.5)) {
          const now = this.clock(c);
          const decisions = decide(c.state, now, this.settings);
          if (decisions.length) c.pendingAct = { decisions, before: c.state, decidedAt: now };
        }
        this.changed();
        this.tr(() => `FAULT ${c.id} paused for ${d} ms${c.pendingAct ? ' mid-append' : ''}`);
        this.heal(d, () => this.resume(c));
        return;
      }
      case 'coord-crash': {
        const l = this.leader();
        const c = l && r.chance(0.7) ? l : r.pick(this.coords);
        if (!c.up) return;
        const d = r.int(500, 6_000);
        c.up = false;
        c.gen++;
        c.token = null;
        this.changed();
        this.tr(() => `FAULT ${c.id} crashed for ${d} ms`);
        this.heal(d, () => this.coldStart(c));
        return;
      }
      case 'coord-slow': {
        const c = r.pick(this.coords);
        const d = r.int(1_000, 5_000);
        c.slowUntil = this.now + d;
        this.tr(() => `FAULT ${c.id} reads slowly for ${d} ms`);
        this.heal(d, () => {
          c.slowUntil = 0;
        });
        return;
      }
      case 'coord-cut': {
        // cut off from Redis, not from its clients (an asymmetric partition)
        const l = this.leader();
        const c = l && r.chance(0.5) ? l : r.pick(this.coords);
        if (!c.up || c.cut) return;
        const d = r.int(500, 8_000);
        const g = c.gen;
        c.cut = true;
        if (!c.paused) c.lastReadAt = this.now;
        this.changed();
        this.tr(() => `FAULT ${c.id} cut off from Redis for ${d} ms`);
        this.heal(d, () => {
          if (c.gen !== g || !c.cut) return;
          c.cut = false;
          if (this.now - c.lastReadAt >= STALE_AFTER_MS) this.stats.staleRefusals++;
          this.tr(() => `heal ${c.id} reaches Redis again`);
          // its reads fail, then retry after 200 ms (coordinator follow loop); the lease tick keeps its own rhythm
          if (!c.paused) this.drain(c, r.int(0, 200) + r.int(1, 20), false);
          this.changed();
        });
        return;
      }
      case 'obs-delay': {
        const d = r.int(1_000, 6_000);
        this.obsDelayUntil = this.now + d;
        this.tr(() => `FAULT observations delayed/reordered for ${d} ms`);
        return;
      }
      case 'obs-dup': {
        const d = r.int(1_000, 6_000);
        this.obsDupUntil = this.now + d;
        this.tr(() => `FAULT observations duplicated for ${d} ms`);
        return;
      }
      case 'job-dup': {
        const d = r.int(2_000, 8_000);
        this.jobDupUntil = this.now + d;
        this.tr(() => `FAULT jobs delivered twice for ${d} ms`);
        return;
      }
      case 'op-switchover':
        this.command('switchover', r.chance(0.5) ? r.pick(this.ids) : undefined);
        return;
      case 'op-failover':
        this.command('failover', r.pick(this.ids));
        return;
      case 'op-pause': {
        this.command('pause');
        this.heal(r.int(500, 5_000), () => this.command('resume'));
        return;
      }
    }
  }

  /* ---------------------------------------------------------------- invariants */

  private tableOf(c: Coord): RoutingTable {
    const s = c.state;
    const k = c.tableKey;
    if (!c.table || !k || k[0] !== s.nodes || k[1] !== s.primary || k[2] !== s.operation) {
      c.table = routingTable(s);
      c.tableKey = [s.nodes, s.primary, s.operation];
    }
    return c.table;
  }

  private checkAll(): void {
    let journalMoved = false;
    for (const c of this.coords) {
      if (!c.up) continue;
      if (c.state.logId !== c.checkedLogId) {
        journalMoved = true;
        c.checkedLogId = c.state.logId;
        this.checkFold(c);
      }
    }
    // (while two nodes take writes, on every event: how long each reason lasts is measured)
    if (!journalMoved && this.checkedWorld === this.worldVersion && this.splitSince === null) return;
    this.checkedWorld = this.worldVersion;

    // (1) never two writable primaries, never a replica routed as the primary
    let named: string[] = [];
    for (const c of this.coords) {
      // a paused coordinator serves nothing; on resuming it reads its backlog first
      if (!this.serving(c)) continue;
      const t = this.tableOf(c);
      if (!t.primary) continue;
      const n = this.nodes[t.primary.id];
      if (!n) {
        this.violate('routing-names-unknown', `${c.id} routes writes to unknown node ${t.primary.id}`);
        continue;
      }
      if (n.role !== 'primary') this.violate('routing-names-replica', `${c.id}${this.staleness(c)} routes writes to ${n.id}, which is a replica (${n.proc})`);
      if (!named.includes(n.id)) named.push(n.id);
    }
    named = named.filter((id) => this.takingWrites(this.node(id)));
    if (named.length > 1) this.violate('two-writable-primaries', `routed as writable and taking writes: ${named.join(', ')} (${this.coords.map((c) => c.id + this.staleness(c)).join(', ')})`);

    // two nodes taking writes at once, routed or not (a finding, not an invariant: see README.md)
    const writers = this.ids.filter((id) => this.takingWrites(this.node(id)));
    if (writers.length > 1 && this.splitSince === null) {
      this.splitSince = this.now;
      this.stats.splitBrainRuns = 1;
    } else if (writers.length <= 1 && this.splitSince !== null) {
      this.stats.splitBrainMs += this.now - this.splitSince;
      this.splitSince = null;
    }
    this.splitCategory(writers.length > 1 ? writers : []);
  }

  /**
   * Why a node the leader has not published as the primary still takes writes beside
   * another: time is accounted per reason. 'unexcused' (its agent is up, reaches Redis,
   * and did not promote it lately) lasts until its next probe at most.
   */
  private splitCategory(writers: string[]): void {
    let cat: string | null = null;
    for (const id of writers) {
      if (id === this.primaryKey) continue;
      const a = this.agents[id]!;
      let c: string;
      if (!a.started || !this.agentRunning(a)) c = 'agent down';
      else if (a.partitioned) c = 'agent cut off from Redis';
      else if (a.promotedAt !== null && this.now - a.promotedAt < PROMOTED_GRACE_MS) c = 'in its promotion grace';
      else if (this.primaryKey === null) c = 'no primary published';
      else c = 'unexcused';
      // the worst reason of any of them
      if (cat === null || c === 'unexcused') cat = c;
    }
    if (cat !== this.splitCat) {
      if (this.splitCat !== null) this.stats.splitBrainMsBy[this.splitCat] = (this.stats.splitBrainMsBy[this.splitCat] ?? 0) + (this.now - this.splitCatSince);
      this.splitCat = cat;
      this.splitCatSince = this.now;
    }
    if (cat === 'unexcused') {
      this.unexcusedSince ??= this.now;
      if (this.now - this.unexcusedSince > DEPOSED_FENCE_MS && !this.unexcusedReported) {
        this.unexcusedReported = true;
        const who = writers.filter((id) => id !== this.primaryKey).join(', ');
        this.violate('deposed-takes-writes', `${who} took writes for ${this.now - this.unexcusedSince} ms while ${this.primaryKey} is the published primary, its agent up and connected`);
      }
    } else if (this.unexcusedSince !== null) {
      this.stats.splitUnexcusedMaxMs = Math.max(this.stats.splitUnexcusedMaxMs, this.now - this.unexcusedSince);
      this.unexcusedSince = null;
      this.unexcusedReported = false;
    }
  }

  /** (4) the incrementally folded journal layer equals a fold of the journal from scratch */
  private checkFold(c: Coord): void {
    const idx = c.state.logId === '0-0' ? 0 : this.idIndex.get(c.state.logId);
    if (idx === undefined) {
      this.violate('fold-determinism', `${c.id} folded an id that is not in the journal: ${c.state.logId}`);
      return;
    }
    const diff = firstDiff(journalCore(this.prefix[idx]!), journalCore(c.state), '');
    if (diff) this.violate('fold-determinism', `${c.id} at ${c.state.logId}: ${diff}`);
  }

  /** (2) and (3), against the state the leader decided on */
  private checkFailoverStarted(c: Coord, e: JournalOf<'failover.started'>, before: ClusterState, now: number): void {
    if (e.evidence.length === 0) this.violate('failover-evidence', `${e.operationId} has no evidence`);
    else if (e.from !== null && !e.evidence.some((x) => x.node === e.from)) this.violate('failover-evidence', `${e.operationId}: no evidence about the old primary ${e.from}`);
    if (e.manual) return; // the operator chose (chooseCandidate still applies its rules to the one node)
    const s = this.settings;
    const oldLsn = e.from ? (before.soft[e.from]?.lastLsn ?? null) : null;
    // synchronous mode: only the journaled synchronous standby, which holds every acknowledged commit
    const syncOnly = s.synchronous ? before.sync : null;
    const view = (id: string): { lsn: string | null; tl: number; lag: number | null } | null => {
      const soft = before.soft[id];
      const n = before.nodes[id];
      if (!soft || !n || now - soft.receivedAt > s.agentTimeoutMs) return null;
      if (syncOnly && !syncOnly.includes(id)) return null;
      const o = soft.obs;
      // a replica, or a node that a failed operation from this primary promoted after all
      const late = o.role === 'primary' && before.history.some((h) => h.outcome === 'failed' && h.from === e.from && h.to === id);
      if (n.priority <= 0 || !o.reachable || o.process === 'dead' || o.process === 'stopped' || (o.role !== 'replica' && !late)) return null;
      const lsn = o.lsn ?? o.replayLsn;
      return { lsn, tl: o.timeline ?? 0, lag: lsnDiff(oldLsn, lsn) };
    };
    const chosen = view(e.to);
    if (!chosen) {
      this.violate('failover-candidate', `${e.operationId}: ${e.to} was not an eligible candidate as ${c.id} saw it`);
      return;
    }
    const within = (v: { lsn: string | null; lag: number | null }): boolean => !!syncOnly || oldLsn === null || (v.lsn !== null && (v.lag ?? 0) <= s.maxLagOnFailoverBytes);
    if (!within(chosen)) this.violate('failover-lag', `${e.operationId}: ${e.to} is ${chosen.lag ?? '?'} bytes behind ${e.from} (limit ${s.maxLagOnFailoverBytes})`);
    for (const id of Object.keys(before.nodes)) {
      if (id === e.from || id === e.to) continue;
      const v = view(id);
      if (!v || !within(v)) continue;
      const better = v.tl > chosen.tl || (v.tl === chosen.tl && (parseLsn(v.lsn) ?? 0) > (parseLsn(chosen.lsn) ?? 0));
      if (better) this.violate('failover-candidate', `${e.operationId}: chose ${e.to} (tl ${chosen.tl}, ${chosen.lsn}) over ${id} (tl ${v.tl}, ${v.lsn})`);
    }
    // in truth: how far behind the old primary's real position the candidate is
    if (e.from) {
      const from = this.nodes[e.from];
      const to = this.nodes[e.to];
      if (from && to && !syncOnly && from.lsn - to.lsn > s.maxLagOnFailoverBytes) {
        this.stats.truthLagExceeded++;
        if (oldLsn === null) this.stats.truthLagExceededBlind++;
        this.tr(() => `note: ${e.to} is ${from.lsn - to.lsn} bytes behind ${e.from} in truth (leader knew ${oldLsn ?? 'no LSN'} for ${e.from})`);
      }
    }
  }

  /**
   * (7) A measured loss (failover.loss) is what the old primary had on its timeline beyond
   * the point where the new primary's timeline forked off it — when the new primary was on
   * the old primary's line. A new primary from another branch (a replica left on the
   * timeline of a primary deposed earlier) forked off it further back than its own fork
   * point, which is all the measurement knows: counted, not checked.
   */
  private checkLoss(e: JournalOf<'failover.loss'>): void {
    this.stats.lossMeasured++;
    const p = this.promotions.get(e.operationId);
    if (!p || p.from !== e.node) return; // promoted by a job the sim did not attribute (cannot happen for a success with a fork point)
    const a = this.node(p.from);
    const seg = p.fromHist[p.fromHist.length - 1]!.uid;
    // promoted again after that failover (by a job of an operation that was over): its end
    // of WAL is of that newer timeline, whose writes the rewind discarded too
    const read = this.walEndHist.get(`${a.id}:${e.walEnd}`);
    const k = read ? read.findIndex((x) => x.uid === seg) : -1;
    if (read && k >= 0 && read.slice(k + 1).some((x) => this.promotedSeg.get(x.uid) === a.id)) {
      this.stats.lossPromotedAgain++;
      this.tr(() => `note: ${e.operationId}: ${a.id} was promoted again since; ${e.lostBytes} bytes journaled lost`);
      return;
    }
    const end = this.segEnd.get(`${a.id}:${seg}`) ?? (a.hist[a.hist.length - 1]!.uid === seg ? a.lsn : null);
    if (end === null) return;
    const fork = forkPoint(p.fromHist, end, p.hist, p.lsn);
    const truth = Math.max(0, end - fork);
    if (fork !== p.lsn) {
      this.stats.lossOffBranch++;
      this.tr(() => `note: ${e.operationId} promoted a node off ${a.id}'s line: ${truth} bytes lost, ${e.lostBytes} journaled`);
      return;
    }
    if (truth !== e.lostBytes) {
      this.violate('failover-loss', `${e.operationId}: journaled ${e.lostBytes} bytes lost (walEnd ${e.walEnd}, fork ${e.forkLsn}), but ${a.id} had ${truth} bytes beyond the fork (end ${formatLsn(end)}, fork ${formatLsn(fork)})`);
    }
  }

  /** (6) synchronous mode: the journal's new primary holds every commit acknowledged on the timeline it left */
  private checkNoAcknowledgedCommitLost(id: string): void {
    const n = this.nodes[id];
    if (!n || n.role !== 'primary' || n.hist.length < 2) return;
    const cur = n.hist[n.hist.length - 1]!;
    const prev = n.hist[n.hist.length - 2]!;
    const acked = this.acked.get(prev.uid) ?? -1;
    if (cur.start < acked) {
      this.violate('sync-acknowledged-commit-lost', `${id} left timeline ${prev.tl} at ${formatLsn(cur.start)}, but commits up to ${formatLsn(acked)} were acknowledged on it`);
    }
  }

  /** (5) every live coordinator routes writes to the same node, which takes writes */
  private liveOk(): boolean {
    let named: string | null = null;
    for (const c of this.coords) {
      if (!c.up) continue;
      const t = this.tableOf(c);
      if (!t.writable || !t.primary) return false;
      if (named !== null && named !== t.primary.id) return false;
      named = t.primary.id;
    }
    return named !== null && this.takingWrites(this.node(named));
  }

  /**
   * Liveness is owed only with a majority of nodes running and a way forward that loses
   * no more than maxLagOnFailoverBytes: the journal's primary takes writes, or some node
   * (a replica, or one already promoted from the primary's timeline) is that close to it.
   */
  private livenessExcuse(): string | null {
    const majority = Math.floor(this.ids.length / 2) + 1;
    if (this.ids.filter((id) => this.node(id).proc === 'running').length < majority) return 'no majority of running nodes';
    const journal = this.prefix[this.prefix.length - 1]!;
    const pid = journal.primary;
    const p = pid ? this.nodes[pid] : undefined;
    if (!p) return null;
    if (this.takingWrites(p) || (p.proc === 'running' && p.role === 'primary')) return null;
    // synchronous mode fails over to the journaled synchronous standby only
    if (this.settings.synchronous && !journal.sync.some((id) => this.nodes[id]?.proc === 'running')) return 'synchronous mode and its synchronous standby is down';
    const pseg = p.hist[p.hist.length - 1]!;
    const close = this.ids.some((id) => {
      const n = this.node(id);
      if (n === p || n.proc !== 'running' || n.priority <= 0) return false;
      const k = n.hist.findIndex((x) => x.uid === pseg.uid);
      if (k < 0) return false;
      const reached = k + 1 < n.hist.length ? n.hist[k + 1]!.start : n.lsn;
      return p.lsn - reached <= this.settings.maxLagOnFailoverBytes;
    });
    return close ? null : `no node within maxLagOnFailoverBytes of ${p.id}, which is down`;
  }

  private checkLiveness(): void {
    const excuse = this.livenessExcuse();
    if (excuse) {
      this.count(this.stats.livenessExcused, excuse.replace(/pg\d+/g, 'the primary'));
      this.tr(() => `liveness excused: ${excuse}`);
      return;
    }
    this.stats.livenessChecked++;
    const l = this.leader();
    const why = l ? (l.state.blocked ?? `operation ${l.state.operation?.id ?? 'none'}, primary ${l.state.primary ?? 'none'}`) : 'no leader';
    const nodes = this.ids.map((id) => {
      const n = this.node(id);
      return `${id}:${n.role}/${n.proc}${n.readOnly ? '/ro' : ''}/tl${this.tl(n)}/${formatLsn(n.lsn)}${n.upstream ? '→' + n.upstream : ''}${n.streaming ? '+' : ''}`;
    });
    this.violate('liveness', `not writable ${QUIET_MS} ms after the faults stopped (${why}); nodes ${nodes.join(' ')}`);
  }

  private finalChecks(): void {
    // every coordinator's whole journal layer, against the fold of the same prefix
    for (const c of this.coords) {
      if (!c.up) continue;
      const idx = c.state.logId === '0-0' ? 0 : this.idIndex.get(c.state.logId);
      const d = idx === undefined ? 'unknown id' : firstDiff(journalLayer(this.prefix[idx]!), journalLayer(c.state), '');
      if (d) this.violate('fold-determinism', `${c.id} at ${c.state.logId}: ${d}`);
    }
    // a literal re-fold of the whole journal from scratch agrees with the memoized prefix
    const all = fold(
      initialState(CLUSTER),
      this.journal.map((r): CoreEvent => ({ kind: 'journal', id: r.id, entry: r.entry })),
    );
    const diff = firstDiff(journalLayer(this.prefix[this.prefix.length - 1]!), journalLayer(all), '');
    if (diff) this.violate('fold-determinism', `re-fold from scratch differs: ${diff}`);
    // the fence: epochs never go back in the journal
    let epoch = 0;
    for (const r of this.journal) {
      if (r.entry.epoch < epoch) this.violate('fence', `${r.id} carries epoch ${r.entry.epoch} after epoch ${epoch}`);
      epoch = Math.max(epoch, r.entry.epoch);
    }
  }
}

/* ------------------------------------------------------------------ helpers */

/**
 * Where history b (a node at lsnB on it) parts from history a (a node that reached endA
 * on it): the end of their common WAL.
 */
function forkPoint(a: Segment[], endA: number, b: Segment[], lsnB: number): number {
  let k = 0;
  while (k < a.length && k < b.length && a[k]!.uid === b[k]!.uid) k++;
  if (k === b.length) return Math.min(lsnB, a[k]?.start ?? endA);
  if (k === a.length) return Math.min(endA, b[k]!.start);
  return Math.min(a[k]!.start, b[k]!.start);
}

/** The journal layer of a state: everything but what comes from the observation and command streams. */
function journalLayer(s: ClusterState): Record<string, unknown> {
  const { soft: _soft, commands: _commands, ...rest } = s as ClusterState & Record<string, unknown>;
  const out: Record<string, unknown> = { ...rest };
  // job results arrive on the observation stream: soft
  if (s.operation) out.operation = { ...s.operation, promoteResult: null, demoteResult: null };
  const sr = (s as { syncRequest?: Record<string, unknown> | null }).syncRequest;
  if (sr) out.syncRequest = { ...sr, appliedLsn: null, failed: null };
  return out;
}

/** What is checked after every journal entry (the whole layer at the end of a run): cheap enough to do always. */
function journalCore(s: ClusterState): Record<string, unknown> {
  const last = s.history.length ? s.history[s.history.length - 1] : null;
  return {
    nodes: s.nodes,
    primary: s.primary,
    operation: s.operation ? { ...s.operation, promoteResult: null, demoteResult: null } : null,
    paused: s.paused,
    generation: s.generation,
    epoch: s.epoch,
    opSeq: s.opSeq,
    lastFailoverAt: s.lastFailoverAt,
    blocked: s.blocked,
    history: [s.history.length, last],
  };
}

function firstDiff(a: unknown, b: unknown, path: string): string | null {
  if (a === b) return null;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return `${path || '/'}: ${JSON.stringify(a)} ≠ ${JSON.stringify(b)}`;
  if (Array.isArray(a) !== Array.isArray(b)) return `${path}: array vs object`;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  for (const k of ka.length >= kb.length ? ka : kb) {
    const x = (a as Record<string, unknown>)[k];
    const y = (b as Record<string, unknown>)[k];
    if (x === y) continue;
    const d = firstDiff(x, y, `${path}/${k}`);
    if (d) return d;
  }
  if (ka.length === kb.length) return null;
  return `${path}: keys ${ka.join(',')} ≠ ${kb.join(',')}`;
}

function describe(e: JournalEntry): string {
  const x = e as JournalEntry & Record<string, unknown>;
  const parts: string[] = [e.type];
  for (const k of ['operationId', 'node', 'coordinator', 'from', 'to', 'role', 'action', 'upstream', 'outcome', 'priority']) {
    const v = x[k];
    if (typeof v === 'string' || typeof v === 'number') parts.push(`${k}=${v}`);
  }
  if (e.type === 'node.health-changed') parts.push(e.healthy ? 'healthy' : 'UNHEALTHY');
  if ('reason' in x && typeof x.reason === 'string') parts.push(`(${x.reason})`);
  return parts.join(' ');
}

export function runSchedule(seed: number, opts: RunOptions = {}): RunResult {
  return new World(seed, opts).run();
}
