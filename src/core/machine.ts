/**
 * The state machine, as data. Node and cluster phases are derived from the folded
 * state by `nodePhase` / `clusterPhase` (served by the API); TRANSITIONS lists every
 * change of cluster phase that decide and evolve can make, with its trigger and action.
 *
 * docs/state-machine.md is generated from these tables (`renderStateMachineDoc`), and
 * tests check both that the doc matches and that every phase change seen in simulated
 * runs is listed here: the docs cannot drift from the code.
 *
 * "States do not cause actions; transitions do." (pg_auto_failover)
 */
import type { ClusterState, Operation, OperationPhase } from './state.js';

export type ClusterPhase = 'bootstrapping' | 'healthy' | 'degraded' | 'primary-down' | 'failing-over' | 'switching-over';
export type NodePhase = 'unknown' | 'primary' | 'primary-down' | 'replica' | 'replica-down' | 'fencing' | 'promoting' | 'draining' | 'demoting';

export const CLUSTER_PHASES: Readonly<Record<ClusterPhase, string>> = {
  bootstrapping:
    'No primary is journaled yet (a new cluster), or the last one was removed. Nothing is writable. The leader adopts the one node that reports itself primary; with several claimants it adopts none and journals why.',
  healthy: 'The journaled primary is healthy and every registered replica streams from it. The routing table is writable. The only phase in which nothing is pending.',
  degraded: 'The primary is healthy and writable; at least one replica is not (not streaming, unreachable, its agent silent, or following another upstream). Reads avoid it; follow and rejoin jobs bring it back.',
  'primary-down':
    'The journaled primary is unhealthy: not writable. Either the evidence is not yet enough (a timeout shorter than failAfterMs, a silent agent whose lease has not ended), or a failover is blocked (no candidate, cooldown, paused), or it fenced itself. No writes are routed anywhere.',
  'failing-over':
    'A failover is in flight: the old primary is deposed, fenced by its agent unless it is known dead or its lease is over, and only then a candidate is promoted. Not writable until the promotion is confirmed; then the others are sent follow/rejoin jobs.',
  'switching-over': 'A planned switchover is in flight: the primary drains for switchoverDrainMs (the routing table marks it `draining`: clients start no new transaction there), is demoted, the target catches up to its exact shutdown LSN, then it is promoted. Not writable during the operation.',
};

export const NODE_PHASES: Readonly<Record<NodePhase, string>> = {
  unknown: 'Registered, but its agent has not reported yet (or the coordinator has just started).',
  primary:
    'The journaled primary, healthy: the only node the routing table names writable. Its agent may be silent: as long as most peers that report on it reach its port, it stays the primary (journaled as a health change, reason "agent silent; peers reach it"); a silent agent alone never causes a failover.',
  'primary-down': 'The journaled primary, unhealthy: crashed, unreachable, stopped, fenced, or its agent is silent and its peers do not vouch for it (none report on it, or most of them cannot reach it).',
  replica: 'A healthy replica, streaming from the primary: routable for reads (within the client’s lag limits).',
  'replica-down': 'A replica that is not routable: not streaming, unreachable, following another upstream, claiming primary, or its agent is silent.',
  fencing: 'The primary a failover deposed, while its agent fences it (read-only, sessions ended; or SIGKILL of the whole instance when it does not answer). Nothing is promoted before it is fenced, dead, or out of its lease.',
  promoting: 'The target of the operation in flight, while it is being promoted.',
  draining: 'The primary at the start of a switchover, for switchoverDrainMs: still the primary, its transactions in flight finish, but the routing table marks it `draining` and not writable, so clients send it nothing new.',
  demoting: 'The primary being demoted by a switchover (stopping, handing over its last WAL).',
};

export interface Transition {
  from: ClusterPhase;
  to: ClusterPhase;
  trigger: string;
  action: string;
}

export const TRANSITIONS: readonly Transition[] = [
  { from: 'bootstrapping', to: 'primary-down', trigger: 'exactly one node reports itself primary', action: 'journal node.role-changed (bootstrap); its health is journaled on the next pass (then degraded, then healthy)' },
  { from: 'healthy', to: 'degraded', trigger: 'a replica stops streaming, becomes unreachable, its agent goes silent, or a new node registers', action: 'journal node.health-changed (or node.registered); reconcile sends follow/rejoin jobs' },
  { from: 'degraded', to: 'healthy', trigger: 'every replica streams from the primary again', action: 'journal node.health-changed' },
  { from: 'degraded', to: 'degraded', trigger: 'another replica changes health', action: 'journal node.health-changed' },
  { from: 'healthy', to: 'healthy', trigger: 'the primary’s agent goes silent (or comes back) while most peers that report on it reach its port', action: 'journal node.health-changed (still healthy, reason "agent silent; peers reach it"); no failover: a silent agent is not a dead primary' },
  { from: 'healthy', to: 'primary-down', trigger: 'the primary is unreachable (timeout), stopped, fenced, or its agent is silent and its peers do not vouch for it; evidence not yet enough, or failover blocked or paused', action: 'journal node.health-changed; wait failAfterMs / the primary lease; journal failover.blocked with its reason, once per reason (paused: "paused: primary … failed (…)", with the evidence)' },
  { from: 'degraded', to: 'primary-down', trigger: 'as from healthy', action: 'as from healthy' },
  { from: 'primary-down', to: 'failing-over', trigger: 'failAfterMs passed on ambiguous evidence, the silent primary’s lease ended with a peer majority unable to reach it, a peer majority gets connection refused, or an operator asked failover --to', action: 'journal failover.started (the old primary deposed); its agent alive and the postmaster not known gone: fence.requested and a fence job to the old primary; else (dead, refused, lease over) promotion.requested and a promote job at once' },
  { from: 'failing-over', to: 'failing-over', trigger: 'the deposed primary is fenced: its agent reports fenced or dead, or reports it gone / read-only, a peer majority gets connection refused, or its lease runs out', action: 'journal node.fenced and promotion.requested; promote job to the candidate' },
  { from: 'primary-down', to: 'healthy', trigger: 'the primary recovers (restarted in place, unfenced, back from a pause) and every replica is healthy', action: 'journal node.health-changed; clears failover.blocked' },
  { from: 'primary-down', to: 'degraded', trigger: 'the primary recovers, some replica is not healthy', action: 'journal node.health-changed' },
  { from: 'primary-down', to: 'primary-down', trigger: 'a replica changes health while the primary is down', action: 'journal node.health-changed' },
  { from: 'failing-over', to: 'failing-over', trigger: 'a node changes health during the failover (the old primary found dead, replicas losing their upstream)', action: 'journal node.health-changed' },
  { from: 'failing-over', to: 'healthy', trigger: 'the candidate is confirmed primary (job result or its own report) and the others already stream from it', action: 'journal promotion.succeeded, follow.requested / rejoin for the others, failover.completed' },
  { from: 'failing-over', to: 'degraded', trigger: 'the candidate is confirmed primary', action: 'journal promotion.succeeded, follow.requested (rejoin for the old primary) with jobs, failover.completed' },
  { from: 'failing-over', to: 'primary-down', trigger: 'the promotion failed or was not confirmed within promoteTimeoutMs', action: 'journal promotion.failed and failover.completed (failed); a later pass may choose again' },
  { from: 'failing-over', to: 'primary-down', trigger: 'the deposed primary could not be fenced (its agent reports failure) or not within promoteTimeoutMs', action: 'journal failover.completed (failed): nothing promoted; a fenced primary is unfenced if it is still the journal’s primary' },
  { from: 'healthy', to: 'switching-over', trigger: 'an operator asked for a switchover', action: 'journal failover.started (switchover): the primary drains; with switchoverDrainMs 0, demotion.requested and the demote job at once' },
  { from: 'degraded', to: 'switching-over', trigger: 'an operator asked for a switchover', action: 'as from healthy' },
  { from: 'switching-over', to: 'switching-over', trigger: 'a node changes health during the switchover (the demoted primary restarting as a standby)', action: 'journal node.health-changed' },
  { from: 'switching-over', to: 'switching-over', trigger: 'the drain period (switchoverDrainMs) is over', action: 'journal demotion.requested; demote job to the primary' },
  { from: 'switching-over', to: 'switching-over', trigger: 'the target reached the old primary’s final position (or catching up timed out: retargeted to the old primary)', action: 'journal promotion.requested (operation phase promoting; still a switchover); promote job' },
  { from: 'switching-over', to: 'healthy', trigger: 'the target is confirmed primary and the others already stream from it; or the demotion failed or timed out (the primary keeps its role), or the old primary was promoted again (rolled back)', action: 'journal promotion.succeeded and follow.requested (switchover, success or aborted), or failover.completed (aborted)' },
  { from: 'switching-over', to: 'degraded', trigger: 'the target is confirmed primary; or the demotion failed or timed out, or it was rolled back, with some replica not healthy', action: 'journal promotion.succeeded, follow.requested with jobs, failover.completed (kind switchover); or failover.completed (aborted)' },
  { from: 'switching-over', to: 'primary-down', trigger: 'the primary became unhealthy while draining, the demotion failed with the primary not healthy, or the promotion failed or was not confirmed within promoteTimeoutMs', action: 'journal failover.completed (aborted or failed; promotion.failed first); the primary’s failure is handled as any other' },
];

export const OPERATION_PHASES: Readonly<Record<OperationPhase, string>> = {
  fencing: 'Failover: the old primary is deposed and its agent is fencing it. No node is promoted: at no instant may two nodes take writes.',
  draining: 'Switchover: for switchoverDrainMs the primary stays up, its transactions in flight finish, but the routing table marks it `draining` and not writable, so clients send it nothing new.',
  demoting: 'Switchover: the primary shuts down cleanly (walsenders ship every WAL record first) and reports its shutdown LSN. A set that elects itself (MongoDB): the old primary’s agent steps it down (replSetStepDown, the target’s priority raised) and the set elects the target; nothing is promoted.',
  'catching-up': 'Switchover: the target receives WAL up to the old primary’s shutdown LSN.',
  promoting: 'The target is promoted; done once the promotion is confirmed (job result or its own report).',
};

export type OperationKind = Operation['kind'];

/**
 * What moves an operation on: each is a guard `src/core/rules/operation.ts` evaluates on
 * the folded state (in the order the table lists them for the operation's phase).
 */
export type OperationEvent =
  | 'primary-alive'
  | 'primary-gone'
  | 'asked'
  | 'drain-over'
  | 'primary-unhealthy'
  | 'fenced'
  | 'fence-failed'
  | 'demoted'
  | 'demote-failed'
  | 'caught-up'
  | 'promoted'
  | 'rolled-back'
  | 'promote-failed'
  | 'timeout'
  | 'new-leader'
  | 'elected';

/**
 * What a transition journals and sends, in order. Each `*.requested` entry comes with its
 * job; `follow.requested` is one entry and one job per other node; `node.fenced` only when
 * there is an old primary; `node.health-changed` only when the old primary is still
 * journaled healthy (its role is in doubt until it reports again).
 */
export type OperationStep =
  | 'failover.started'
  | 'fence.requested'
  | 'node.fenced'
  | 'demotion.requested'
  | 'demotion.succeeded'
  | 'operation.retargeted'
  | 'promotion.requested'
  | 'promotion.succeeded'
  | 'promotion.failed'
  | 'follow.requested'
  | 'node.health-changed'
  | 'failover.completed';

/**
 * An operation's step: (kind, phase, event) → next phase, what the leader journals and
 * sends, and (for `done`) the outcome `failover.completed` records. decide reads this
 * table: for the operation's phase it tries the rows' events in this order, and the
 * first that holds is the step it takes. `to` is the phase evolve folds the decisions into.
 */
export interface OperationTransition {
  kinds: readonly OperationKind[];
  from: OperationPhase | 'start';
  event: OperationEvent;
  /** the event, in words (for the doc) */
  when: string;
  to: OperationPhase | 'done';
  outcome?: 'success' | 'failed' | 'aborted';
  decisions: readonly OperationStep[];
}

const FO = ['failover'] as const;
const SO = ['switchover'] as const;
const BOTH = ['failover', 'switchover'] as const;

export const OPERATION_TRANSITIONS: readonly OperationTransition[] = [
  { kinds: FO, from: 'start', event: 'primary-alive', when: 'the primary failed; its agent alive and its postmaster not known gone', to: 'fencing', decisions: ['failover.started', 'fence.requested'] },
  { kinds: FO, from: 'start', event: 'primary-gone', when: 'the primary failed: postmaster gone (its live agent says so), connection refused, or its lease is over (the crash path has no fence step)', to: 'promoting', decisions: ['failover.started', 'promotion.requested'] },
  { kinds: FO, from: 'fencing', event: 'fenced', when: 'fence job result ok (fenced / dead), a report of it gone or read-only, a peer majority refused, or its lease over', to: 'promoting', decisions: ['node.fenced', 'promotion.requested'] },
  { kinds: FO, from: 'fencing', event: 'fence-failed', when: 'the fence job failed: nothing promoted', to: 'done', outcome: 'failed', decisions: ['failover.completed'] },
  { kinds: FO, from: 'fencing', event: 'timeout', when: 'not fenced within promoteTimeoutMs: nothing promoted', to: 'done', outcome: 'failed', decisions: ['failover.completed'] },
  { kinds: FO, from: 'fencing', event: 'new-leader', when: 'a new leader since the request (its predecessor may have died before sending the job)', to: 'fencing', decisions: ['fence.requested'] },
  { kinds: SO, from: 'start', event: 'asked', when: 'an operator asked for a switchover (with switchoverDrainMs 0 the drain-over row follows in the same pass)', to: 'draining', decisions: ['failover.started'] },
  { kinds: SO, from: 'draining', event: 'primary-unhealthy', when: 'the primary became unhealthy while draining (nothing was done to it)', to: 'done', outcome: 'aborted', decisions: ['failover.completed'] },
  { kinds: SO, from: 'draining', event: 'drain-over', when: 'switchoverDrainMs passed', to: 'demoting', decisions: ['demotion.requested'] },
  { kinds: SO, from: 'demoting', event: 'elected', when: 'a set that elects itself (MongoDB; its old primary’s agent was sent a switchover job: step down, the target elected): the target reports itself primary since the request', to: 'done', outcome: 'success', decisions: ['promotion.succeeded', 'failover.completed'] },
  { kinds: SO, from: 'demoting', event: 'demoted', when: 'demote job result ok (with the old primary’s final position)', to: 'catching-up', decisions: ['demotion.succeeded'] },
  { kinds: SO, from: 'demoting', event: 'demote-failed', when: 'the demote job failed: the primary keeps its role', to: 'done', outcome: 'aborted', decisions: ['node.health-changed', 'failover.completed'] },
  { kinds: SO, from: 'demoting', event: 'timeout', when: 'the demotion not confirmed within promoteTimeoutMs', to: 'done', outcome: 'aborted', decisions: ['node.health-changed', 'failover.completed'] },
  { kinds: SO, from: 'demoting', event: 'new-leader', when: 'a new leader since the request', to: 'demoting', decisions: ['demotion.requested'] },
  { kinds: SO, from: 'catching-up', event: 'caught-up', when: 'the target has the old primary’s final position (or it is unknown)', to: 'promoting', decisions: ['promotion.requested'] },
  { kinds: SO, from: 'catching-up', event: 'timeout', when: 'promoteTimeoutMs passed: roll back, promote the old primary again', to: 'promoting', decisions: ['operation.retargeted', 'promotion.requested'] },
  { kinds: BOTH, from: 'promoting', event: 'new-leader', when: 'a new leader since the request, no result and no report of it primary yet, within promoteTimeoutMs (promotion is idempotent)', to: 'promoting', decisions: ['promotion.requested'] },
  { kinds: BOTH, from: 'promoting', event: 'promoted', when: 'promote job result ok, or the target reports itself primary', to: 'done', outcome: 'success', decisions: ['promotion.succeeded', 'follow.requested', 'failover.completed'] },
  { kinds: SO, from: 'promoting', event: 'rolled-back', when: 'the old primary, retargeted, is promoted again: the switchover did not happen', to: 'done', outcome: 'aborted', decisions: ['promotion.succeeded', 'follow.requested', 'failover.completed'] },
  { kinds: BOTH, from: 'promoting', event: 'promote-failed', when: 'the promote job failed', to: 'done', outcome: 'failed', decisions: ['promotion.failed', 'failover.completed'] },
  { kinds: BOTH, from: 'promoting', event: 'timeout', when: 'the promotion not confirmed within promoteTimeoutMs', to: 'done', outcome: 'failed', decisions: ['promotion.failed', 'failover.completed'] },
];

/**
 * A node off the primary (claiming primary, its process gone, or following another
 * upstream) is brought back as a replica of the journal's primary: `follow` moves a
 * running replica, `rejoin` turns a former primary into one (rewind; re-clone only when
 * allowed). Per node, level-triggered: `rejoining` while a follow.requested for the
 * current primary is pending; it ends when the node reports streaming from the primary
 * (no row matches: nothing to do). The follow rule (src/core/rules/reconcile.ts) reads this table.
 */
export type RejoinPhase = 'start' | 'rejoining';
export type RejoinEvent = 'off-primary' | 'wrong-upstream' | 'retry-due';

export interface RejoinTransition {
  kind: 'rejoin';
  from: RejoinPhase;
  event: RejoinEvent;
  when: string;
  to: 'rejoining';
  decisions: readonly ['follow.requested'];
}

export const REJOIN_TRANSITIONS: readonly RejoinTransition[] = [
  { kind: 'rejoin', from: 'start', event: 'off-primary', when: 'with a healthy primary, another node whose agent reports claims primary or its process is gone', to: 'rejoining', decisions: ['follow.requested'] },
  { kind: 'rejoin', from: 'start', event: 'wrong-upstream', when: 'with a healthy primary, a replica reports following another upstream', to: 'rejoining', decisions: ['follow.requested'] },
  { kind: 'rejoin', from: 'rejoining', event: 'retry-due', when: 'still off the primary jobRetryMs after the request (the job may be lost): asked again', to: 'rejoining', decisions: ['follow.requested'] },
];

/** The rejoin rows for a node in phase `from`, in the order the follow rule tries them. */
export function rejoinRows(from: RejoinPhase): RejoinTransition[] {
  return REJOIN_TRANSITIONS.filter((t) => t.from === from);
}

/** The rows an operation of `kind` in phase `from` may take, in the order decide tries them. */
export function operationRows(kind: OperationKind, from: OperationPhase | 'start'): OperationTransition[] {
  return OPERATION_TRANSITIONS.filter((t) => t.from === from && t.kinds.includes(kind));
}

/** The row for (kind, phase, event), or null when the table has none. */
export function operationTransition(kind: OperationKind, from: OperationPhase | 'start', event: OperationEvent): OperationTransition | null {
  return OPERATION_TRANSITIONS.find((t) => t.from === from && t.event === event && t.kinds.includes(kind)) ?? null;
}

/**
 * The cluster's phase, from the folded state: an operation in flight is `failing-over` or
 * `switching-over` by its kind, in every one of its phases (a switchover's promote step
 * included); otherwise by the journaled primary's and replicas' health.
 */
export function clusterPhase(state: ClusterState): ClusterPhase {
  const op = state.operation;
  if (op) return op.kind === 'switchover' ? 'switching-over' : 'failing-over';
  const p = state.primary ? state.nodes[state.primary] : undefined;
  if (!p) return 'bootstrapping';
  if (!p.healthy) return 'primary-down';
  const replicas = Object.values(state.nodes).filter((n) => n.id !== p.id);
  return replicas.every((n) => n.healthy) ? 'healthy' : 'degraded';
}

/** A node's phase, from the folded state: its part in the operation in flight first, then its journaled role and health. */
export function nodePhase(state: ClusterState, id: string): NodePhase {
  const n = state.nodes[id];
  if (!n) return 'unknown';
  const op = state.operation;
  if (op && op.to === id && op.phase === 'promoting') return 'promoting';
  if (op && op.deposed === id && op.phase === 'fencing') return 'fencing';
  if (op && op.from === id && op.phase === 'draining') return 'draining';
  if (op && op.from === id && op.phase === 'demoting') return 'demoting';
  if (id === state.primary) return n.healthy ? 'primary' : 'primary-down';
  if (!state.soft[id] && !n.healthy) return 'unknown';
  return n.healthy ? 'replica' : 'replica-down';
}

export function renderStateMachineDoc(): string {
  const lines: string[] = [];
  lines.push('# State machine', '');
  lines.push('<!-- generated from src/core/machine.ts by `npm run docs`; test/unit/machine.test.ts fails if it differs -->', '');
  lines.push(
    'Switchyard derives a phase for the cluster and for each node from the folded journal',
    '(`clusterPhase`, `nodePhase` in `src/core/machine.ts`). States do not cause actions;',
    'transitions do: each row below is a change of cluster phase that `decide` (or an',
    'agent’s report folded by `evolve`) makes, with what triggers it and what the leader',
    'journals and sends. A pause stops every automatic transition (health is still',
    'journaled, operators can still switch over or fail over by hand).',
    '',
  );
  lines.push('## Cluster phases', '', '| phase | what it guarantees |', '|---|---|');
  for (const [k, v] of Object.entries(CLUSTER_PHASES)) lines.push(`| \`${k}\` | ${v} |`);
  lines.push('', '## Node phases', '', '| phase | meaning |', '|---|---|');
  for (const [k, v] of Object.entries(NODE_PHASES)) lines.push(`| \`${k}\` | ${v} |`);
  lines.push('', '## Transitions', '', '| from | to | trigger | action |', '|---|---|---|---|');
  for (const t of TRANSITIONS) lines.push(`| \`${t.from}\` | \`${t.to}\` | ${t.trigger} | ${t.action} |`);
  lines.push('', '## Operation phases', '', 'An operation in flight (`failover.started` … `failover.completed`, which records its `kind`) steps through these. A switchover’s promote step is a switchover’s: the cluster is `switching-over` until it ends.', '', '| phase | meaning |', '|---|---|');
  for (const [k, v] of Object.entries(OPERATION_PHASES)) lines.push(`| \`${k}\` | ${v} |`);
  lines.push(
    '',
    'The table decide reads (`OPERATION_TRANSITIONS`): for an operation’s kind and phase it tries the rows’ events in this order and takes the first that holds. Each `*.requested` entry comes with its job; `follow.requested` is one entry and job per other node (`rejoin` for a failed-over old primary).',
    '',
    '| kind | phase | event | when | next | journal and jobs |',
    '|---|---|---|---|---|---|',
  );
  for (const t of OPERATION_TRANSITIONS) {
    const next = t.to === 'done' ? `done (${t.outcome ?? ''})` : `\`${t.to}\``;
    lines.push(`| ${t.kinds.join(', ')} | \`${t.from}\` | \`${t.event}\` | ${t.when} | ${next} | ${t.decisions.join(', ')} |`);
  }
  lines.push(
    '',
    '### Rejoin',
    '',
    'A node off the primary is brought back per node (`REJOIN_TRANSITIONS`, read by the follow rule): `follow.requested` with action `rejoin` for a node that claims primary or whose process is gone, `follow` for a replica of another upstream; `rejoining` while that request is pending; done once it streams from the primary. After a failover or switchover, the operation’s own `promoted` row sends these requests to every other node.',
    '',
    '| kind | phase | event | when | next | journal and jobs |',
    '|---|---|---|---|---|---|',
  );
  for (const t of REJOIN_TRANSITIONS) lines.push(`| ${t.kind} | \`${t.from}\` | \`${t.event}\` | ${t.when} | \`${t.to}\` | ${t.decisions.join(', ')} |`);
  lines.push('', '## Diagram', '', '```');
  const byFrom = new Map<string, string[]>();
  for (const t of TRANSITIONS) if (t.from !== t.to) byFrom.set(t.from, [...(byFrom.get(t.from) ?? []), t.to]);
  for (const [from, tos] of byFrom) lines.push(`${from.padEnd(15)} ──▶ ${[...new Set(tos)].join(', ')}`);
  lines.push('```', '');
  return lines.join('\n');
}
