/**
 * evolve(state, event) → state. Pure: no I/O, no clock, no randomness. The journal
 * entry's own `at` and the observation's `receivedAt` are the only times it sees.
 */
import type { JournalEntry } from '../events/journal.js';
import type { Observation } from '../events/observation.js';
import { standbysByNodeId } from './standby-names.js';
import { electsItself } from '../engines/traits.js';
import { applySetChanged, electionHistoryItem, observeSet } from './set.js';
import { compareStreamIds, type ClusterState, type CoreEvent, type HistoryItem, type NodeInfo, type SoftNode } from './state.js';

const HISTORY_LIMIT = 200;

/** Journal entry types that change what the routing table says. */
const ROUTING_TYPES: ReadonlySet<JournalEntry['type']> = new Set([
  'node.registered',
  'node.removed',
  'node.health-changed',
  'node.role-changed',
  'failover.started',
  'promotion.succeeded',
  'failover.completed',
  'node.fenced',
  'sync.changed',
  'set.changed',
]);

/**
 * A demotion asked after a drain period changes routing (the primary marked draining
 * leaves the table); asked at once (no drain period: the same journal time as the
 * switchover's start) it changes nothing failover.started has not.
 */
function endsDrain(state: ClusterState, entry: JournalEntry): boolean {
  const op = state.operation;
  return entry.type === 'demotion.requested' && !!op && op.id === entry.operationId && op.phase === 'draining' && entry.at > op.phaseAt;
}

export function evolve(state: ClusterState, event: CoreEvent): ClusterState {
  switch (event.kind) {
    case 'journal': {
      // at-least-once delivery of the journal (the leader folds its own appends at once,
      // then reads them back): an id already folded is skipped.
      if (compareStreamIds(event.id, state.logId) <= 0) return state;
      const next = applyJournal(state, event.entry);
      const bumped = ROUTING_TYPES.has(event.entry.type) || endsDrain(state, event.entry);
      return {
        ...next,
        logId: event.id,
        epoch: Math.max(next.epoch, event.entry.epoch),
        generation: bumped ? next.generation + 1 : next.generation,
        // (an empty cluster's table dates from its first journal entry, not from 1970)
        generationAt: bumped || next.generationAt === 0 ? event.entry.at : next.generationAt,
      };
    }
    case 'obs':
      return applyObservation(state, event.entry, event.receivedAt);
    case 'job.result': {
      const r = event.entry;
      const op = state.operation;
      // a job from before the current request (a previous leader's) says nothing of it
      if (op && r.operationId === op.id && r.epoch < op.requestEpoch && (r.action === 'promote' || r.action === 'demote' || r.action === 'switchover' || r.action === 'fence')) return state;
      if (op && r.operationId === op.id && r.action === 'fence' && r.node === op.deposed) {
        return { ...state, operation: { ...op, fenceResult: { ok: r.ok, code: r.code, message: r.message } } };
      }
      if (op && r.operationId === op.id && r.action === 'promote' && r.node === op.to) {
        return { ...state, operation: { ...op, promoteResult: { ok: r.ok, code: r.code, message: r.message, lsn: r.lsn, timeline: r.timeline } } };
      }
      const sr = state.syncRequest;
      if (sr && r.operationId === sr.operationId && r.action === 'sync') {
        return { ...state, syncRequest: { ...sr, appliedLsn: r.ok ? (r.lsn ?? null) : null, failed: r.ok ? null : `${r.code ?? 'error'}: ${r.message ?? ''}` } };
      }
      // (an engine that elects itself steers the hand-over on the old primary: its switchover job is the demotion)
      if (op && r.operationId === op.id && (r.action === 'demote' || r.action === 'switchover') && r.node === op.from) {
        return { ...state, operation: { ...op, demoteResult: { ok: r.ok, code: r.code, message: r.message, lsn: r.lsn } } };
      }
      return state;
    }
    case 'command': {
      const c = event.entry;
      if (state.commands[c.id] || state.handledCommands.some((h) => h.id === c.id)) return state;
      return { ...state, commands: { ...state.commands, [c.id]: { ...c, receivedAt: event.receivedAt, streamId: event.id } } };
    }
  }
}

const HANDLED_LIMIT = 200;

/** The journal answered a command: drop it from the pending ones, remember its id. */
function handled(state: ClusterState, commandId: string | undefined, rejected: string | null = null, streamId?: string, operationId?: string): ClusterState {
  if (!commandId) return state;
  const { [commandId]: _done, ...commands } = state.commands;
  return {
    ...state,
    commands,
    handledCommands: [...state.handledCommands, operationId === undefined ? { id: commandId, rejected } : { id: commandId, rejected, operationId }].slice(-HANDLED_LIMIT),
    commandsReadTo: streamId ?? state.commandsReadTo,
  };
}

/** The stale gate: an observation older than the one we hold for its node is dropped. */
export function isStale(held: Observation | undefined, obs: Observation): boolean {
  if (!held) return false;
  if (held.bootId === obs.bootId) return obs.seq <= held.seq;
  // a different boot of the agent: ordered by the boot counter it took from Redis at start
  if (typeof held.bootSeq === 'number' && typeof obs.bootSeq === 'number') return obs.bootSeq < held.bootSeq;
  // (agents from before the counter: the same host's wall clock, the best there is)
  return obs.at < held.at;
}

function applyObservation(state: ClusterState, reported: Observation, receivedAt: number): ClusterState {
  const held = state.soft[reported.node];
  if (isStale(held?.obs, reported)) return state;
  const obs = standbysByNodeId(state, reported);
  const unreachable = !obs.reachable || obs.process === 'dead' || obs.process === 'stopped';
  const arrival = (state.obsArrivals ?? 0) + 1;
  const soft: SoftNode = {
    obs,
    receivedAt,
    unreachableSince: unreachable ? (held?.unreachableSince ?? receivedAt) : null,
    lastLsn: obs.lsn ?? held?.lastLsn ?? null,
    lastHistory: obs.history ? { id: obs.history, prev: obs.historyPrev ?? null } : (held?.lastHistory ?? null),
    roleSince: held && held.obs.role === obs.role ? held.roleSince : receivedAt,
    // (only a loss seen happen, or the first report of an agent, say to a coordinator that
    // just started: that loss is of unknown age, it happened no later than now. Counted from
    // now, so a lease is never taken as over on evidence that may be a moment old)
    peerUnreachableSince:
      !obs.peer || obs.peer.reachable
        ? null
        : !held
          ? receivedAt
          : !held.obs.peer || held.obs.peer.node !== obs.peer.node
            ? null
            : held.obs.peer.reachable
              ? receivedAt
              : (held.peerUnreachableSince ?? null),
    arrival,
    prevArrival: held && held.obs.bootId === obs.bootId ? (held.arrival ?? null) : null,
    unreachableArrival: !unreachable ? null : held && held.unreachableSince !== null ? (held.unreachableArrival ?? null) : arrival,
  };
  const next = { ...state, obsArrivals: arrival, soft: { ...state.soft, [obs.node]: soft } };
  // a set that elects itself: the engine's own fold of the members' reports (src/core/set.ts)
  return electsItself(state.engine) ? { ...next, setView: observeSet(state, obs, receivedAt) } : next;
}

function setNode(state: ClusterState, id: string, patch: Partial<NodeInfo>): ClusterState {
  const node = state.nodes[id];
  if (!node) return state;
  return { ...state, nodes: { ...state.nodes, [id]: { ...node, ...patch } } };
}

function updateHistory(state: ClusterState, id: string, patch: Partial<HistoryItem>): readonly HistoryItem[] {
  return state.history.map((h) => (h.id === id ? { ...h, ...patch } : h));
}

function applyJournal(state: ClusterState, e: JournalEntry): ClusterState {
  switch (e.type) {
    case 'leader.changed':
      return { ...state, leader: e.coordinator };
    case 'node.registered': {
      const old = state.nodes[e.node];
      const base: NodeInfo = old
        ? { ...old, host: e.host, port: e.port, priority: e.priority }
        : { id: e.node, host: e.host, port: e.port, priority: e.priority, healthy: false, healthReason: 'registered', role: 'replica', pending: null, promotedAt: null, demotionAskedAt: null };
      // the zone is the newest registration's: one without it clears an old label (never `zone: undefined`)
      const { zone: _oldZone, ...node } = base;
      return { ...state, nodes: { ...state.nodes, [e.node]: e.zone !== undefined ? { ...node, zone: e.zone } : node } };
    }
    case 'node.removed': {
      const { [e.node]: _gone, ...nodes } = state.nodes;
      const { [e.node]: _soft, ...soft } = state.soft;
      return { ...state, nodes, soft, primary: state.primary === e.node ? null : state.primary };
    }
    case 'node.health-changed':
      return {
        // healthy again: a restart asked for has taken effect (the next crash gets its own)
        ...setNode(state, e.node, {
          healthy: e.healthy,
          healthReason: e.reason,
          ...(e.healthy && state.nodes[e.node]?.pending?.action === 'restart' ? { pending: null } : {}),
        }),
        blocked: e.healthy && e.node === state.primary ? null : state.blocked,
      };
    case 'node.role-changed': {
      let next = setNode(state, e.node, { role: e.role });
      if (e.role === 'primary') {
        const demoted = state.primary && state.primary !== e.node ? state.primary : null;
        if (demoted) next = setNode(next, demoted, { role: 'replica' });
        next = { ...next, primary: e.node };
      } else if (state.primary === e.node) {
        next = { ...next, primary: null };
      }
      return next;
    }
    case 'failover.started': {
      const item: HistoryItem = {
        id: e.operationId,
        kind: e.kind,
        from: e.from,
        to: e.to,
        reason: e.reason,
        startedAt: new Date(e.at).toISOString(),
        finishedAt: null,
        durationMs: null,
        lostBytes: e.lostBytes,
        outcome: 'running',
        forkLsn: null,
        lossMeasured: false,
      };
      return {
        ...handled(state, e.commandId, null, e.commandStreamId, e.operationId),
        operation: {
          id: e.operationId,
          kind: e.kind,
          from: e.from,
          to: e.to,
          reason: e.reason,
          manual: e.manual,
          startedAt: e.at,
          phase: e.kind === 'switchover' ? 'draining' : 'promoting',
          phaseAt: e.at,
          deposed: e.kind === 'failover' ? (e.deposed ?? null) : null,
          fenceResult: null,
          promoteResult: null,
          demoteResult: null,
          demoteLsn: null,
          commandId: e.commandId ?? null,
          requestEpoch: e.epoch,
        },
        opSeq: state.opSeq + 1,
        blocked: null,
        history: [...state.history, item].slice(-HISTORY_LIMIT),
      };
    }
    case 'fence.requested': {
      const op = state.operation;
      if (!op || op.id !== e.operationId) return state;
      // (a re-send by a new leader keeps the phase's start: its deadline does not move)
      return op.phase !== 'fencing'
        ? { ...state, operation: { ...op, phase: 'fencing', phaseAt: e.at, fenceResult: null, requestEpoch: e.epoch } }
        : { ...state, operation: { ...op, requestEpoch: e.epoch } };
    }
    case 'promotion.requested': {
      const op = state.operation;
      if (!op || op.id !== e.operationId) return state;
      const next = setNode(state, e.node, { promotionAskedAt: e.at });
      return op.phase !== 'promoting'
        ? { ...next, operation: { ...op, phase: 'promoting', phaseAt: e.at, requestEpoch: e.epoch } }
        : { ...next, operation: { ...op, requestEpoch: e.epoch } };
    }
    case 'demotion.requested': {
      const next = setNode(state, e.node, { demotionAskedAt: e.at });
      const op = next.operation;
      if (!op || op.id !== e.operationId) return next;
      // the drain period is over: the demotion begins
      return { ...next, operation: { ...op, requestEpoch: e.epoch, ...(op.phase === 'draining' ? { phase: 'demoting' as const, phaseAt: e.at } : {}) } };
    }
    case 'sync.requested':
      return { ...state, syncRequest: { operationId: e.operationId, node: e.node, names: e.names, count: e.count, method: e.method ?? 'FIRST', at: e.at, appliedLsn: null, failed: null } };
    case 'sync.changed':
      return { ...state, sync: e.names };
    case 'restart.requested':
      return setNode(state, e.node, { pending: { operationId: e.operationId, action: 'restart', upstream: e.node, at: e.at } });
    case 'unfence.requested':
      return setNode(state, e.node, { pending: { operationId: e.operationId, action: 'unfence', upstream: e.node, at: e.at } });
    case 'demotion.succeeded':
      return state.operation && state.operation.id === e.operationId
        ? { ...state, operation: { ...state.operation, phase: 'catching-up', phaseAt: e.at, demoteLsn: e.lsn } }
        : state;
    case 'operation.retargeted':
      return state.operation && state.operation.id === e.operationId
        ? {
            ...state,
            operation: { ...state.operation, to: e.to, phase: 'promoting', phaseAt: e.at, promoteResult: null },
            history: updateHistory(state, e.operationId, { to: e.to }),
          }
        : state;
    case 'command.rejected':
      return handled(state, e.commandId, e.reason, e.commandStreamId);
    case 'promotion.succeeded': {
      let next = state;
      const old = state.primary;
      if (old && old !== e.node) next = setNode(next, old, { role: 'replica', healthy: false, healthReason: 'replaced by ' + e.node });
      next = setNode(next, e.node, { role: 'primary', healthy: true, healthReason: 'promoted', pending: null, promotedAt: e.at });
      // a new primary starts with no synchronous standby: re-established from scratch
      return { ...next, primary: e.node, sync: [], syncRequest: null, history: e.forkLsn ? updateHistory(next, e.operationId, { forkLsn: e.forkLsn }) : next.history };
    }
    case 'promotion.failed':
      return state;
    case 'failover.loss':
      return { ...state, history: updateHistory(state, e.operationId, { lostBytes: e.lostBytes, lossMeasured: true }) };
    case 'follow.requested':
      return setNode(state, e.node, {
        pending: { operationId: e.operationId, action: e.action, upstream: e.upstream, at: e.at },
      });
    case 'failover.completed': {
      if (!state.operation || state.operation.id !== e.operationId) {
        return { ...state, history: updateHistory(state, e.operationId, { outcome: e.outcome }) };
      }
      const automatic = !state.operation.manual;
      // a switchover aborted before its demotion was confirmed: the old primary's reports
      // from before say nothing of its role (decide waits for a newer one)
      const doubt = state.operation.kind === 'switchover' && state.operation.phase === 'demoting' ? state.operation.from : null;
      // … and one that ended in its promote step without a confirmed promotion: its target
      // may become a primary until then (a promote job still running): its reports count from now
      const unconfirmed = e.outcome !== 'success' && state.operation.phase === 'promoting' ? state.operation.to : null;
      let base = doubt ? setNode(state, doubt, { demotionAskedAt: e.at }) : state;
      if (unconfirmed && unconfirmed !== state.primary) base = setNode(base, unconfirmed, { promotionAskedAt: e.at });
      return {
        ...base,
        operation: null,
        lastFailoverAt: automatic ? e.at : state.lastFailoverAt,
        history: updateHistory(state, e.operationId, {
          outcome: e.outcome,
          finishedAt: new Date(e.at).toISOString(),
          durationMs: e.durationMs,
        }),
      };
    }
    case 'failover.blocked':
      return { ...state, blocked: e.reason };
    case 'node.fenced':
      return setNode(state, e.node, { healthy: false, healthReason: 'fenced: ' + e.reason });
    case 'cluster.paused':
      return { ...handled(state, e.commandId, null, e.commandStreamId), paused: true };
    case 'cluster.resumed':
      return { ...handled(state, e.commandId, null, e.commandStreamId), paused: false };
    case 'entry.rejected':
      return state;
    case 'set.changed': {
      // an election the set held by itself is a history item (a failover with its own fo-N)
      const item = electionHistoryItem(state, e);
      const next = applySetChanged(state, e);
      return item ? { ...next, opSeq: next.opSeq + 1, history: [...next.history, item].slice(-HISTORY_LIMIT) } : next;
    }
    default: {
      const never: never = e;
      return never;
    }
  }
}

/** Fold a whole sequence (replay). */
export function fold(state: ClusterState, events: Iterable<CoreEvent>): ClusterState {
  let s = state;
  for (const ev of events) s = evolve(s, ev);
  return s;
}
