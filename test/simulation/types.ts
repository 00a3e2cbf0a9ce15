/**
 * The model's types: a simulated PostgreSQL node, its agent, a job as BullMQ holds it,
 * a coordinator, and what Redis holds (the lease, journal records). Options of a run.
 */
import type { Decision, JobSpec, RoutingTable, ClusterState } from '../../src/core/index.js';
import type { PublishedPrimary } from '../../src/core/agent-rules.js';
import type { JournalEntry } from '../../src/events/journal.js';
import type { Command, JobResult, Observation } from '../../src/events/observation.js';
import type { Stats } from './stats.js';

export interface Segment {
  /** identity of this timeline's history (two promotions may pick the same number) */
  uid: number;
  tl: number;
  start: number;
}

export interface PgNode {
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

export interface SimJob {
  jobId: string;
  /** when the leader sent it (BullMQ's job timestamp) */
  sentAt: number;
  /** Redis's clock plus the job's ttl: the agent refuses it after (on Redis's clock too) */
  expiresAt: number;
  epoch: number;
  spec: JobSpec;
  availableAt: number;
  copy: boolean;
  /** the stream id of the journal entry that asked for it */
  journalId: string | undefined;
}

export interface Agent {
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
  /** the published key as last read */
  published: PublishedPrimary | null;
  /** the journal id of the newest job acted on */
  newestJournalId: string | null;
  probing: boolean;
  probeAgain: boolean;
  probeTimer: number;
  working: SimJob | null;
  busy: boolean;
  restartDelay: number;
  restartPending: boolean;
  lastRedisOk: number;
  /** the newest observation of a reachable server (what the fence timer judges) */
  lastReachable: Observation | null;
  /** the fence timer armed after the last accepted observation (a newer one replaces it) */
  fenceTimer: number;
  fenced: boolean;
  /** a promote job of this agent connected to its node (the deposed-fence grace), until the leader names it */
  promotion: { operationId: string; at: number; seenPublished: boolean } | null;
  /** the end of WAL read from disk after the node died as a primary (agent memory: lost on restart) */
  walEnd: number | null;
  /** a rejoin or restart waits for the end of WAL to be read first */
  walEndReadyAt: number;
}

export interface PendingAct {
  decisions: Decision[];
  before: ClusterState;
  decidedAt: number;
}

export interface Coord {
  id: string;
  up: boolean;
  paused: boolean;
  gen: number;
  /** the error of its reading of Redis's clock (the one clock the core sees) */
  skew: number;
  /** its host's wall clock, off by this much (only with clockSkew: ±30 s); the core never reads it */
  wallSkew: number;
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
   * every host's wall clock ±30 s (database hosts and coordinators). The core reads only
   * Redis's clock (journal `at`, receivedAt, `now`, job expiry) and orders an agent's boots
   * by a Redis counter, so this must break nothing: run in every `npm test` for some seeds
   */
  clockSkew?: boolean;
  /** model the agent and coordinator without these safeguards (to measure what each buys: README.md) */
  without?: readonly Guard[];
}

/**
 * Safeguards of the real agent and coordinator, all modelled by default (SIM_WITHOUT
 * turns some off, to measure what each buys):
 * - job-expiry: the agent refuses a job past its expiresAt (Redis's clock when sent + the job's ttl)
 * - journal-id: the agent refuses a job asked by a journal entry older than the newest it acted on
 * - deposed-fence: a primary whose agent reads that the leader deposed it, or names another node, goes read-only (or is killed)
 * - reply-age: self-fencing counts a standby as connected only if it replied within fenceAfterMs
 * - catch-up: a new leader reads the journal to its end before its first append
 * - stale-503: a coordinator that has not read the streams for staleAfterMs names no primary
 * - boot-read-only: a former primary whose place the key gives another node starts read-only;
 *   without it, the agent before fc9daef: rewound onto the published primary at start
 */
export const GUARDS = ['job-expiry', 'journal-id', 'deposed-fence', 'reply-age', 'catch-up', 'stale-503', 'boot-read-only'] as const;
export type Guard = (typeof GUARDS)[number];


export interface JournalRecord {
  id: string;
  entry: JournalEntry;
}

export interface Lease {
  epoch: number;
  holder: string;
  token: string;
  expiresAt: number;
}

export type FaultKind =
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

export type SoftEvent = { kind: 'obs'; entry: Observation } | { kind: 'job.result'; entry: JobResult } | { kind: 'command'; entry: Command };

