/**
 * The topology state one coordinator holds for one cluster.
 *
 * Two layers, kept apart:
 * - the journal layer (`nodes`, `primary`, `operation`, `paused`, …): fold(journal),
 *   identical on every coordinator that has read the same journal;
 * - the soft layer (`soft`): the newest observation per node, rebuilt from the
 *   observation stream within one probe interval by any coordinator.
 */
import type { Command, JobResult, Observation } from '../events/observation.js';
import type { JournalEntry } from '../events/journal.js';
import type { EngineName } from '../engines/types.js';
import type { JournalSet, SetView } from './set.js';

/** The cluster's engine: its positions are read with that engine's codec (src/engines/positions.ts). */
export type Engine = EngineName;

export interface NodeInfo {
  id: string;
  host: string;
  port: number;
  priority: number;
  /** the zone label its agent reports (node.registered); absent when none is configured */
  zone?: string;
  /** the journal's verdict, as routed */
  healthy: boolean;
  healthReason: string;
  /** the journal's view of the role */
  role: 'primary' | 'replica';
  /** journal time of its newest promotion */
  promotedAt: number | null;
  /**
   * journal time of the newest promotion asked of it (promotion.requested), moved to the
   * operation's end when that ended unconfirmed: until it reports after that, the
   * promotion may have happened all the same
   */
  promotionAskedAt?: number | null;
  /**
   * journal time of the newest demotion asked of it (switchover), or of the abort that
   * left it in doubt: its reports from before no longer tell its role
   */
  demotionAskedAt: number | null;
  /** newest follow/rejoin request not yet seen to take effect */
  pending: PendingJob | null;
}

export interface PendingJob {
  operationId: string;
  action: 'follow' | 'rejoin' | 'unfence' | 'restart';
  upstream: string;
  at: number;
}

export interface SoftNode {
  obs: Observation;
  /** coordinator-local time the newest observation arrived */
  receivedAt: number;
  /** receivedAt of the first observation of the current unreachable streak */
  unreachableSince: number | null;
  /**
   * the newest non-null LSN this node reported: an unreachable or dead node reports
   * `lsn: null`, but failover still needs the old primary's last known position
   */
  lastLsn: string | null;
  /**
   * the newest replication history this node reported (`obs.history`, and the one it
   * continues): its lastLsn is a position on it (engines without histories: absent)
   */
  lastHistory?: { id: string; prev: string | null } | null;
  /** receivedAt of the first observation reporting the current role */
  roleSince: number;
  /**
   * receivedAt of the first observation of the current streak reporting its peer (the
   * same node) unreachable, after one reporting it reachable: that peer, perhaps a
   * standby keeping the primary writable without Redis, lost it no later than this
   * (null: no such streak, or not seen to start)
   */
  peerUnreachableSince?: number | null;
  /**
   * this observation's place in the observation stream as folded (ClusterState.obsArrivals):
   * the stream is one total order, so an observation that arrived after another was
   * appended after it
   */
  arrival?: number;
  /**
   * arrival of the previous observation of the same agent boot: the agent probes one at a
   * time, so this one was begun after that one was appended (null: none, or another boot)
   */
  prevArrival?: number | null;
  /** arrival of the first observation of the current unreachable streak (null: reachable) */
  unreachableArrival?: number | null;
}

/**
 * failover:   fencing → promoting (fencing skipped when the old primary is known dead,
 *             or its lease has run out)
 * switchover: draining → demoting → catching-up → promoting
 */
export type OperationPhase = 'fencing' | 'draining' | 'demoting' | 'catching-up' | 'promoting';

export interface Operation {
  id: string;
  kind: 'failover' | 'switchover';
  from: string | null;
  to: string;
  reason: string;
  manual: boolean;
  startedAt: number;
  phase: OperationPhase;
  /**
   * failover: the old primary, deposed by failover.started. Nothing is promoted until it
   * is fenced (its agent's report), known dead, or its lease has run out.
   */
  deposed: string | null;
  /** the fence job's reported result (soft, like promoteResult) */
  fenceResult: Pick<JobResult, 'ok' | 'code' | 'message'> | null;
  /** the promote job's reported result, when the agent has reported it */
  promoteResult: Pick<JobResult, 'ok' | 'code' | 'message' | 'lsn' | 'timeline'> | null;
  /** switchover: the demote job's reported result */
  demoteResult: Pick<JobResult, 'ok' | 'code' | 'message' | 'lsn'> | null;
  /** switchover: the LSN the target must have received before it is promoted */
  demoteLsn: string | null;
  /** when the current phase began (journal time) */
  phaseAt: number;
  /** the operator's command that started it */
  commandId: string | null;
  /**
   * the epoch of the leader that sent the current step's job: a new leader re-sends it
   * (its predecessor may have died between the journal entry and the job), and results
   * of older jobs are ignored
   */
  requestEpoch: number;
}

export interface SyncRequest {
  operationId: string;
  node: string;
  names: readonly string[];
  count: number;
  method: 'FIRST' | 'ANY';
  at: number;
  /** the primary applied it at this LSN (from the job result) */
  appliedLsn: string | null;
  failed: string | null;
}

export interface HandledCommand {
  id: string;
  /** why it was refused, when it was */
  rejected: string | null;
  /** the operation it started (fo-N, so-N), when it started one */
  operationId?: string;
}

export interface PendingCommand extends Command {
  receivedAt: number;
  /** its id in the command stream */
  streamId?: string;
}

export interface HistoryItem {
  id: string;
  kind: 'failover' | 'switchover';
  from: string | null;
  to: string;
  reason: string;
  startedAt: string;
  finishedAt: string | null;
  durationMs: number | null;
  /** at the decision, from the last LSNs observed; replaced by the measured loss (failover.loss) */
  lostBytes: number;
  outcome: 'running' | 'success' | 'failed' | 'aborted';
  /** where the new primary's timeline forked off */
  forkLsn: string | null;
  /** lostBytes is measured (the old primary's end of WAL against forkLsn), not estimated */
  lossMeasured: boolean;
}

export interface ClusterState {
  cluster: string;
  engine: Engine;
  /** highest lease epoch seen in the journal */
  epoch: number;
  leader: string | null;
  paused: boolean;
  primary: string | null;
  nodes: Readonly<Record<string, NodeInfo>>;
  soft: Readonly<Record<string, SoftNode>>;
  operation: Operation | null;
  /** number of operations ever started: makes operation ids deterministic */
  opSeq: number;
  lastFailoverAt: number | null;
  /** bumped by every journal entry that changes the routing table */
  generation: number;
  generationAt: number;
  /** stream id of the last journal entry folded */
  logId: string;
  /** the reason the last failover was blocked, until one starts or the primary recovers */
  blocked: string | null;
  history: readonly HistoryItem[];
  /** synchronous mode: the journaled synchronous standbys (failover candidates) */
  sync: readonly string[];
  /** synchronous mode: the newest configuration asked of the primary, and its result */
  syncRequest: SyncRequest | null;
  /** operator commands received and not yet carried out or refused (soft) */
  commands: Readonly<Record<string, PendingCommand>>;
  /** commands the journal has answered (bounded): a command is never carried out twice */
  handledCommands: readonly HandledCommand[];
  /** the command stream id of the last command the journal answered: a restarted coordinator reads on from there */
  commandsReadTo: string | null;
  /** observations folded so far (soft): numbers each one's arrival (SoftNode.arrival) */
  obsArrivals?: number;
  /** an engine that elects itself (MongoDB): the set as the journal knows it (src/core/set.ts) */
  replicaSet?: JournalSet;
  /** … and as the members' newest observations show it, with the facts not yet journaled (soft) */
  setView?: SetView;
}

export function initialState(cluster: string, engine: Engine = 'postgres'): ClusterState {
  return {
    cluster,
    engine,
    epoch: 0,
    leader: null,
    paused: false,
    primary: null,
    nodes: {},
    soft: {},
    operation: null,
    opSeq: 0,
    lastFailoverAt: null,
    generation: 0,
    generationAt: 0,
    logId: '0-0',
    blocked: null,
    history: [],
    sync: [],
    syncRequest: null,
    commands: {},
    handledCommands: [],
    commandsReadTo: null,
  };
}

/** What evolve folds: journal entries, and observation-stream entries stamped with their arrival time. */
export type CoreEvent =
  | { kind: 'journal'; id: string; entry: JournalEntry }
  | { kind: 'obs'; id: string; receivedAt: number; entry: Observation }
  | { kind: 'job.result'; id: string; receivedAt: number; entry: JobResult }
  | { kind: 'command'; id: string; receivedAt: number; entry: Command };

/** Compare Redis stream ids ("ms-seq"). */
export function compareStreamIds(a: string, b: string): number {
  const [am = '0', as = '0'] = a.split('-');
  const [bm = '0', bs = '0'] = b.split('-');
  const d = Number(am) - Number(bm);
  if (d !== 0) return d < 0 ? -1 : 1;
  const e = Number(as) - Number(bs);
  return e === 0 ? 0 : e < 0 ? -1 : 1;
}
