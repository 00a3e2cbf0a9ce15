/**
 * What every rule of `decide` shares: the decisions it makes (journal drafts and jobs),
 * one pass's context, and the small readings of the state several rules need. Pure.
 */
import type { Evidence, JournalDraft } from '../../events/journal.js';
import { selfFenceCapMs, type Settings } from '../settings.js';
import type { ClusterState, NodeInfo, SoftNode } from '../state.js';

/** (`switchover`: an engine that elects itself hands over on the old primary's agent, e.g. MongoDB replSetStepDown) */
export type JobAction = 'promote' | 'demote' | 'follow' | 'rejoin' | 'unfence' | 'sync' | 'restart' | 'fence' | 'switchover' | 'freeze';

export interface JobSpec {
  node: string;
  action: JobAction;
  operationId: string;
  /** the primary to follow (follow, rejoin), or to hand over to (demote, switchover) */
  upstream?: { id: string; host: string; port: number };
  /** sync: synchronous_standby_names = <method> <count> (<names>) */
  sync?: { names: string[]; count: number; method: 'FIRST' | 'ANY' };
  /** freeze: elections frozen on the set's secondaries for this long; 0 unfreezes them */
  freezeSecs?: number;
}

export type Decision = { type: 'append'; entry: JournalDraft } | { type: 'job'; job: JobSpec };

/** the health reason of a node its agent keeps out of rotation */
export const OUT_OF_ROTATION = 'out of rotation: ';

export interface Verdict {
  healthy: boolean;
  reason: string;
}

/** One leader pass: the state it judges, the leader's clock, the settings, and the decisions so far. */
export interface Pass {
  readonly state: ClusterState;
  readonly now: number;
  readonly s: Settings;
  readonly out: Decision[];
}

/** A rule of `decide`: adds its decisions to `p.out`; returns true when the pass stops after it. */
export type Rule = (p: Pass) => boolean | void;

export function append(out: Decision[], entry: JournalDraft): void {
  out.push({ type: 'append', entry });
}

export function job(out: Decision[], spec: JobSpec): void {
  out.push({ type: 'job', job: spec });
}

export function isSilent(soft: SoftNode | undefined, now: number, s: Settings): boolean {
  return !soft || now - soft.receivedAt > s.agentTimeoutMs;
}

export function addressOf(n: Pick<NodeInfo, 'host' | 'port'>): string {
  return `${n.host}:${n.port}`;
}

export function evidenceOf(state: ClusterState, id: string, now: number): Evidence {
  const soft = state.soft[id];
  if (!soft) return { node: id, receivedAt: 0, reachable: false, error: 'no-observation' };
  const o = soft.obs;
  const ev: Evidence = {
    node: id,
    receivedAt: soft.receivedAt,
    reachable: o.reachable,
    process: o.process,
    role: o.role,
    lsn: o.lsn,
    timeline: o.timeline,
    silentMs: Math.max(0, now - soft.receivedAt),
  };
  if (o.error) ev.error = o.error;
  if (o.peer) ev.peer = o.peer;
  return ev;
}

/** Evidence of every node, the primary (or old primary) `from` first: what a failover decision is journaled with. */
export function evidenceAround(state: ClusterState, from: string | null, now: number): Evidence[] {
  return [...(from ? [from] : []), ...Object.keys(state.nodes).filter((id) => id !== from).sort()].map((id) => evidenceOf(state, id, now));
}

/** What the other agents see of `target` from their hosts. */
export function peerViews(state: ClusterState, target: string, now: number, s: Settings): { voters: number; unreachable: number; refused: number; reachable: number; lostAt: number | null } {
  let voters = 0;
  let unreachable = 0;
  let refused = 0;
  let reachable = 0;
  // the newest time a peer that cannot reach it now lost it (at the latest)
  let lostAt: number | null = null;
  for (const id of Object.keys(state.nodes)) {
    if (id === target) continue;
    voters++;
    const soft = state.soft[id];
    if (isSilent(soft, now, s) || !soft?.obs.peer || soft.obs.peer.node !== target) continue;
    if (soft.obs.peer.reachable) reachable++;
    else {
      unreachable++;
      const since = soft.peerUnreachableSince ?? null;
      if (since !== null) lostAt = lostAt === null ? since : Math.max(lostAt, since);
      // "refused" is definitive only if it is newer than the target's own last report of
      // running (a view from before a restart in place says nothing of the restarted node)
      const t = state.soft[target];
      const ranSince = !!t && t.obs.process !== 'dead' && t.obs.reachable && t.receivedAt >= soft.receivedAt;
      if (soft.obs.peer.error === 'refused' && !ranSince) refused++;
    }
  }
  return { voters, unreachable, refused, reachable, lostAt };
}

/**
 * How long a silent primary's lease lasts after its last observation: the largest
 * fenceAfterMs any agent reports (so agents and coordinators agree by construction),
 * plus the margin.
 */
export function leaseMs(state: ClusterState, id: string, s: Settings): number {
  const reported = state.soft[id]?.obs.fenceAfterMs;
  return Math.max(s.fenceAfterMs, typeof reported === 'number' ? reported : 0) + s.fenceMarginMs;
}

/**
 * How long a silent primary's lease lasts after its last observation when the leader
 * cannot tell whether a standby still replies to it (its agent stays writable while one
 * does, for selfFenceCapMs at most), plus the margin.
 */
export function capLeaseMs(state: ClusterState, id: string, s: Settings): number {
  const reported = state.soft[id]?.obs.fenceAfterMs;
  return selfFenceCapMs(Math.max(s.fenceAfterMs, typeof reported === 'number' ? reported : 0)) + s.fenceMarginMs;
}

/**
 * Is a restart in place asked of this node and not yet seen to take effect? Then a report
 * of it dead may be out of date (the restart job may have started it since).
 */
export function restartPending(state: ClusterState, id: string): number | null {
  const p = state.nodes[id]?.pending;
  return p && p.action === 'restart' ? p.at : null;
}

export function upstreamOf(n: NodeInfo): { id: string; host: string; port: number } {
  return { id: n.id, host: n.host, port: n.port };
}
