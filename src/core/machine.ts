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
import { observedHealth } from './decide.js';
import type { Settings } from './settings.js';
import type { ClusterState } from './state.js';

export type ClusterPhase = 'bootstrapping' | 'healthy' | 'degraded' | 'primary-down' | 'failing-over' | 'switching-over';
export type NodePhase = 'unknown' | 'primary' | 'primary-down' | 'replica' | 'replica-down' | 'promoting' | 'demoting';

export const CLUSTER_PHASES: Readonly<Record<ClusterPhase, string>> = {
  bootstrapping:
    'No primary is journaled yet (a new cluster), or the last one was removed. Nothing is writable. The leader adopts the one node that reports itself primary; with several claimants it adopts none and journals why.',
  healthy: 'The journaled primary is healthy and every registered replica streams from it. The routing table is writable. The only phase in which nothing is pending.',
  degraded: 'The primary is healthy and writable; at least one replica is not (not streaming, unreachable, its agent silent, or following another upstream). Reads avoid it; follow and rejoin jobs bring it back.',
  'primary-down':
    'The journaled primary is unhealthy: not writable. Either the evidence is not yet enough (a timeout shorter than failAfterMs, a silent agent whose lease has not ended), or a failover is blocked (no candidate, cooldown, paused), or it fenced itself. No writes are routed anywhere.',
  'failing-over': 'A failover is in flight: a candidate is being promoted. Not writable until the promotion is confirmed; then the others are sent follow/rejoin jobs.',
  'switching-over': 'A planned switchover is in flight: the primary is demoted, the target catches up to its exact shutdown LSN, then it is promoted. Not writable during the operation.',
};

export const NODE_PHASES: Readonly<Record<NodePhase, string>> = {
  unknown: 'Registered, but its agent has not reported yet (or the coordinator has just started).',
  primary: 'The journaled primary, healthy: the only node the routing table names writable.',
  'primary-down': 'The journaled primary, unhealthy: crashed, unreachable, stopped, fenced, or its agent is silent.',
  replica: 'A healthy replica, streaming from the primary: routable for reads (within the client’s lag limits).',
  'replica-down': 'A replica that is not routable: not streaming, unreachable, following another upstream, claiming primary, or its agent is silent.',
  promoting: 'The target of the operation in flight, while it is being promoted.',
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
  { from: 'healthy', to: 'primary-down', trigger: 'the primary is unreachable (timeout), stopped, fenced, or its agent is silent; evidence not yet enough, or failover blocked or paused', action: 'journal node.health-changed; wait failAfterMs / the primary lease; journal failover.blocked with its reason' },
  { from: 'degraded', to: 'primary-down', trigger: 'as from healthy', action: 'as from healthy' },
  { from: 'primary-down', to: 'failing-over', trigger: 'failAfterMs passed on ambiguous evidence, the silent primary’s lease ended with a peer majority unable to reach it, a peer majority gets connection refused, or an operator asked failover --to', action: 'journal failover.started and promotion.requested; promote job' },
  { from: 'primary-down', to: 'healthy', trigger: 'the primary recovers (restarted in place, unfenced, back from a pause) and every replica is healthy', action: 'journal node.health-changed; clears failover.blocked' },
  { from: 'primary-down', to: 'degraded', trigger: 'the primary recovers, some replica is not healthy', action: 'journal node.health-changed' },
  { from: 'primary-down', to: 'primary-down', trigger: 'a replica changes health while the primary is down', action: 'journal node.health-changed' },
  { from: 'failing-over', to: 'failing-over', trigger: 'a node changes health during the failover (the old primary found dead, replicas losing their upstream)', action: 'journal node.health-changed' },
  { from: 'failing-over', to: 'healthy', trigger: 'the candidate is confirmed primary (job result or its own report) and the others already stream from it', action: 'journal promotion.succeeded, follow.requested / rejoin for the others, failover.completed' },
  { from: 'failing-over', to: 'degraded', trigger: 'the candidate is confirmed primary', action: 'journal promotion.succeeded, follow.requested (rejoin for the old primary) with jobs, failover.completed' },
  { from: 'failing-over', to: 'primary-down', trigger: 'the promotion failed or was not confirmed within promoteTimeoutMs', action: 'journal promotion.failed and failover.completed (failed); a later pass may choose again' },
  { from: 'healthy', to: 'switching-over', trigger: 'an operator asked for a switchover', action: 'journal failover.started (switchover) and demotion.requested; demote job to the primary' },
  { from: 'degraded', to: 'switching-over', trigger: 'an operator asked for a switchover', action: 'as from healthy' },
  { from: 'switching-over', to: 'switching-over', trigger: 'a node changes health during the switchover (the demoted primary restarting as a standby)', action: 'journal node.health-changed' },
  { from: 'switching-over', to: 'failing-over', trigger: 'the target reached the old primary’s shutdown LSN', action: 'journal promotion.requested (phase promoting); promote job to the target' },
  { from: 'switching-over', to: 'healthy', trigger: 'the demotion failed or timed out (the primary keeps its role)', action: 'journal failover.completed (aborted)' },
  { from: 'switching-over', to: 'degraded', trigger: 'the demotion failed or timed out', action: 'journal failover.completed (aborted)' },
  { from: 'switching-over', to: 'primary-down', trigger: 'the demotion failed and the primary is not healthy', action: 'journal failover.completed (aborted); the primary’s failure is handled as any other' },
];

/** Is this node the journal's primary, healthy, and not in an operation? */
export function clusterPhase(state: ClusterState): ClusterPhase {
  const op = state.operation;
  if (op) return op.kind === 'switchover' && op.phase !== 'promoting' ? 'switching-over' : 'failing-over';
  const p = state.primary ? state.nodes[state.primary] : undefined;
  if (!p) return 'bootstrapping';
  if (!p.healthy) return 'primary-down';
  const replicas = Object.values(state.nodes).filter((n) => n.id !== p.id);
  return replicas.every((n) => n.healthy) ? 'healthy' : 'degraded';
}

export function nodePhase(state: ClusterState, id: string): NodePhase {
  const n = state.nodes[id];
  if (!n) return 'unknown';
  const op = state.operation;
  if (op && op.to === id && op.phase === 'promoting') return 'promoting';
  if (op && op.from === id && op.phase === 'demoting') return 'demoting';
  if (id === state.primary) return n.healthy ? 'primary' : 'primary-down';
  if (!state.soft[id] && !n.healthy) return 'unknown';
  return n.healthy ? 'replica' : 'replica-down';
}

/** Why a node is in its phase, in words (for the API and the dashboard). */
export function nodeReason(state: ClusterState, id: string, now: number, s: Settings): string {
  return observedHealth(state, id, now, s).reason;
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
  lines.push('', '## Diagram', '', '```');
  const byFrom = new Map<string, string[]>();
  for (const t of TRANSITIONS) if (t.from !== t.to) byFrom.set(t.from, [...(byFrom.get(t.from) ?? []), t.to]);
  for (const [from, tos] of byFrom) lines.push(`${from.padEnd(15)} ──▶ ${[...new Set(tos)].join(', ')}`);
  lines.push('```', '');
  return lines.join('\n');
}
