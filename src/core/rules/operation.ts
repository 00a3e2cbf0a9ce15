/**
 * Rule: operation progress. An operation (failover, switchover) starts and advances
 * through `OPERATION_TRANSITIONS` (src/core/machine.ts), the table the code reads: for
 * the operation's kind and phase, the rows' events are tried in the table's order; the
 * first whose guard holds gives the next phase, the decisions (built by the emitters
 * below, in the row's order) and, at the end, the outcome. Pure.
 */
import type { JournalDraft } from '../../events/journal.js';
import { electsItself } from '../../engines/traits.js';
import { operationRows, operationTransition, type OperationEvent, type OperationStep, type OperationTransition } from '../machine.js';
import { codecOf, reached } from '../positions.js';
import type { Operation } from '../state.js';
import { fenceDone, fenceNeeded } from './fencing.js';
import { append, job, upstreamOf, type Pass } from './pass.js';

/** What a guard found: the reason journaled, and for some steps a node or position. */
export interface Facts {
  reason: string;
  /** promotion.requested: the node to promote (default: the operation's target) */
  node?: string;
  /** demotion.succeeded: the old primary's final position */
  lsn?: string | null;
  /** failover.started: the entry, as the starting rule drafted it */
  started?: Extract<JournalDraft, { type: 'failover.started' }>;
}

type Guard = (p: Pass, op: Operation) => Facts | null;

const timedOut = (p: Pass, op: Operation): boolean => p.now - op.phaseAt > p.s.promoteTimeoutMs;
const deposedOf = (op: Operation): string | null => op.deposed ?? op.from;

/** Whether the target reports itself primary since the promote step began. */
function seenPrimary(p: Pass, op: Operation): boolean {
  const c = p.state.soft[op.to];
  return !!c && c.receivedAt >= op.phaseAt && c.obs.reachable && c.obs.role === 'primary';
}

function promotedGuard(p: Pass, op: Operation): boolean {
  return !!op.promoteResult?.ok || seenPrimary(p, op);
}

/** The guards, by event; some read the phase they are asked in. */
const GUARDS: Record<OperationEvent, Guard> = {
  'primary-alive': (p, op) => {
    const dep = deposedOf(op);
    const why = dep ? fenceNeeded(p.state, dep, p.now, p.s) : null;
    return why ? { reason: why } : null;
  },
  'primary-gone': () => ({ reason: 'no fence needed' }),
  asked: () => ({ reason: 'switchover asked' }),
  'primary-unhealthy': (p, op) => {
    const from = op.from ? p.state.nodes[op.from] : undefined;
    const bad = !from || !p.state.nodes[op.to] || from.id !== p.state.primary || !from.healthy;
    return bad ? { reason: `${op.from} became unhealthy while draining: not demoted` } : null;
  },
  'drain-over': (p, op) => (p.now - op.phaseAt >= p.s.switchoverDrainMs ? { reason: 'drain period over' } : null),
  fenced: (p, op) => {
    const dep = deposedOf(op);
    const done = !dep ? 'no old primary' : op.fenceResult?.ok ? `its agent reports: ${op.fenceResult.message ?? 'fenced'}` : fenceDone(p.state, dep, op.phaseAt, p.now, p.s);
    return done ? { reason: done } : null;
  },
  'fence-failed': (_p, op) => (op.fenceResult && !op.fenceResult.ok ? { reason: `could not fence ${deposedOf(op)} (${op.fenceResult.code ?? 'error'}: ${op.fenceResult.message ?? ''}): nothing promoted` } : null),
  // (a set that elects itself is never promoted: its switchover ends when the target is elected)
  demoted: (p, op) => (op.demoteResult?.ok && !electsItself(p.state.engine) ? { reason: 'demoted', lsn: op.demoteResult.lsn ?? null } : null),
  elected: (p, op) => (electsItself(p.state.engine) && seenPrimary(p, op) ? { reason: `${op.to} elected${op.demoteResult?.ok ? `: ${op.demoteResult.message ?? 'stepped down'}` : ''}`.slice(0, 500) } : null),
  'demote-failed': (_p, op) => {
    const r = op.demoteResult;
    return r && !r.ok ? { reason: `demotion of ${op.from} failed (${r.code ?? 'error'}: ${r.message ?? ''}); it keeps its role` } : null;
  },
  'caught-up': (p, op) => (reached(codecOf(p.state), p.state.soft[op.to]?.obs.lsn, op.demoteLsn) !== false ? { reason: 'caught up' } : null),
  promoted: (p, op) => (promotedGuard(p, op) && op.to !== op.from ? { reason: `${op.to} promoted` } : null),
  'rolled-back': (p, op) => (promotedGuard(p, op) && op.to === op.from ? { reason: `rolled back: ${op.to} promoted again` } : null),
  'promote-failed': (_p, op) => (op.promoteResult && !op.promoteResult.ok ? { reason: `${op.promoteResult.code ?? 'error'}: ${op.promoteResult.message ?? ''}`.slice(0, 900) } : null),
  timeout: (p, op) => {
    if (!timedOut(p, op)) return null;
    switch (op.phase) {
      case 'fencing':
        return { reason: `${deposedOf(op)} not fenced within promoteTimeoutMs: nothing promoted` };
      case 'demoting':
        return { reason: `demotion of ${op.from} not confirmed within promoteTimeoutMs` };
      case 'catching-up':
        return op.from ? { reason: `${op.to} did not reach ${op.demoteLsn} within promoteTimeoutMs: rolling back to ${op.from}`, node: op.from } : null;
      case 'promoting':
        return { reason: `promotion not confirmed within promoteTimeoutMs (${p.s.promoteTimeoutMs} ms)` };
      default:
        return null;
    }
  },
  'new-leader': (p, op) => {
    if (op.requestEpoch >= p.state.epoch) return null;
    const reason = 're-sent by a new leader';
    switch (op.phase) {
      case 'fencing':
        return deposedOf(op) ? { reason } : null;
      case 'demoting':
        return op.from && p.state.nodes[op.to] ? { reason } : null;
      case 'promoting':
        return !op.promoteResult && !seenPrimary(p, op) && !timedOut(p, op) ? { reason } : null;
      default:
        return null;
    }
  },
};

type Emitter = (p: Pass, op: Operation, f: Facts, row: OperationTransition) => void;

/** The decisions of each step, built from the state, the operation and the guard's facts. */
const EMITTERS: Record<OperationStep, Emitter> = {
  'failover.started': (p, _op, f) => {
    if (f.started) append(p.out, f.started);
  },
  'fence.requested': (p, op, f) => {
    const dep = deposedOf(op);
    if (!dep) return;
    append(p.out, { type: 'fence.requested', operationId: op.id, node: dep, reason: f.reason, jobId: '' });
    job(p.out, { node: dep, action: 'fence', operationId: op.id });
  },
  'node.fenced': (p, op, f) => {
    const dep = deposedOf(op);
    if (dep) append(p.out, { type: 'node.fenced', node: dep, reason: `deposed by ${op.id}: ${f.reason}`.slice(0, 500) });
  },
  'demotion.requested': (p, op) => {
    const target = p.state.nodes[op.to];
    if (!op.from || !target) return;
    append(p.out, { type: 'demotion.requested', operationId: op.id, node: op.from, jobId: '' });
    // (a set that elects itself: the old primary's agent steps it down and steers the election to the target)
    job(p.out, { node: op.from, action: electsItself(p.state.engine) ? 'switchover' : 'demote', operationId: op.id, upstream: upstreamOf(target) });
  },
  'demotion.succeeded': (p, op, f) => {
    append(p.out, { type: 'demotion.succeeded', operationId: op.id, node: op.from!, lsn: f.lsn ?? null });
  },
  'operation.retargeted': (p, op, f) => {
    append(p.out, { type: 'operation.retargeted', operationId: op.id, to: op.from!, reason: f.reason });
  },
  'promotion.requested': (p, op, f) => {
    const node = f.node ?? op.to;
    append(p.out, { type: 'promotion.requested', operationId: op.id, node, jobId: '' });
    job(p.out, { node, action: 'promote', operationId: op.id });
  },
  'promotion.succeeded': (p, op) => {
    const c = p.state.soft[op.to];
    // the candidate's timeline as it reports it once promoted, or the one its promote job
    // reported (a switchover's result often comes first)
    const timeline = c?.obs.role === 'primary' ? c.obs.timeline : (op.promoteResult?.timeline ?? null);
    append(p.out, { type: 'promotion.succeeded', operationId: op.id, node: op.to, timeline, forkLsn: op.promoteResult?.lsn ?? c?.obs.forkLsn ?? null });
  },
  'follow.requested': (p, op) => {
    const target = p.state.nodes[op.to];
    if (!target) return;
    const demoted = op.kind === 'switchover' && op.demoteLsn !== null;
    for (const id of Object.keys(p.state.nodes).sort()) {
      if (id === op.to) continue;
      const action = id === op.from && !demoted ? 'rejoin' : 'follow';
      append(p.out, { type: 'follow.requested', operationId: op.id, node: id, upstream: op.to, action, jobId: '' });
      job(p.out, { node: id, action, operationId: op.id, upstream: upstreamOf(target) });
    }
  },
  'promotion.failed': (p, op, f) => {
    append(p.out, { type: 'promotion.failed', operationId: op.id, node: op.to, reason: f.reason });
  },
  // aborted with the demotion unconfirmed: it may have stepped down after all (a job is
  // delivered at least once). The routing table would turn writable again on its
  // journaled health: it is unhealthy until it reports after the abort.
  'node.health-changed': (p, op) => {
    const from = op.from ? p.state.nodes[op.from] : undefined;
    if (from && from.id === p.state.primary && from.healthy) append(p.out, { type: 'node.health-changed', node: from.id, healthy: false, reason: 'switchover aborted: awaiting its next report' });
  },
  'failover.completed': (p, op, f, row) => {
    append(p.out, { type: 'failover.completed', operationId: op.id, kind: op.kind, outcome: row.outcome ?? 'failed', durationMs: Math.max(0, p.now - op.startedAt), reason: f.reason.slice(0, 500) });
  },
};

/** Carry out a row: its decisions, in order. */
function take(p: Pass, op: Operation, row: OperationTransition, f: Facts): OperationTransition {
  for (const step of row.decisions) EMITTERS[step](p, op, f, row);
  return row;
}

/** The step the operation in flight takes this pass (the first row whose guard holds), or null: waiting. */
export function operationStep(p: Pass, op: Operation): { row: OperationTransition; facts: Facts } | null {
  for (const row of operationRows(op.kind, op.phase)) {
    const facts = GUARDS[row.event](p, op);
    if (facts) return { row, facts };
  }
  return null;
}

/** Stops the pass when the operation concluded: health is judged on the next pass, against the new primary. */
export function operationRule(p: Pass): boolean {
  const op = p.state.operation;
  if (!op) return false;
  const step = operationStep(p, op);
  return !!step && take(p, op, step.row, step.facts).to === 'done';
}

/**
 * Start an operation from its `failover.started` draft: the table's start row for its
 * kind (a failover fences a primary that may still take writes, else promotes at once; a
 * switchover drains, and with switchoverDrainMs 0 its drain-over row follows at once).
 */
export function startOperation(p: Pass, started: Extract<JournalDraft, { type: 'failover.started' }>): void {
  const op: Operation = {
    id: started.operationId,
    kind: started.kind,
    from: started.from,
    to: started.to,
    reason: started.reason,
    manual: started.manual,
    startedAt: p.now,
    phase: started.kind === 'switchover' ? 'draining' : 'promoting',
    phaseAt: p.now,
    deposed: started.kind === 'failover' ? (started.deposed ?? null) : null,
    fenceResult: null,
    promoteResult: null,
    demoteResult: null,
    demoteLsn: null,
    commandId: started.commandId ?? null,
    requestEpoch: p.state.epoch,
  };
  for (const row of operationRows(op.kind, 'start')) {
    const facts = GUARDS[row.event](p, op);
    if (!facts) continue;
    take(p, op, row, { ...facts, started });
    break;
  }
  if (op.kind === 'switchover' && p.s.switchoverDrainMs <= 0) {
    const drained = operationTransition('switchover', 'draining', 'drain-over');
    if (drained) take(p, { ...op, phase: 'draining' }, drained, { reason: 'no drain period' });
  }
}
