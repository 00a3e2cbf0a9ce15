/**
 * The routing projection: what apps, the client library and HAProxy see. Pure.
 * `generation` comes from the journal, so every coordinator that has folded the same
 * journal serves the same generation; lag figures come from the soft layer and are
 * refreshed without bumping it.
 */
import { bytesAhead, codecOf } from './positions.js';
import { clusterPhase, nodePhase, type ClusterPhase, type NodePhase } from './machine.js';
import { setRoutes } from './set.js';
import type { ClusterState, NodeInfo } from './state.js';

export interface RoutingReplica {
  id: string;
  host: string;
  port: number;
  healthy: boolean;
  lagBytes: number | null;
  lagMs: number | null;
  replayLsn: string | null;
  sync: boolean;
  /** the zone label its agent reports; absent when none is configured */
  zone?: string;
  /** a set that elects itself (MongoDB): the member's last write (ISO) and its server-selection staleness in ms (null: not routable as a secondary) */
  lastWriteDate?: string | null;
  stalenessMs?: number | null;
}

/**
 * Every registered node, down ones included, for operators (ctl list, the dashboard):
 * clients route by `primary` and the healthy `replicas`, never by this list.
 */
export interface RoutingNode {
  id: string;
  host: string;
  port: number;
  /** the journal's view of its role */
  role: 'primary' | 'replica';
  phase: NodePhase;
  healthy: boolean;
  /** why it is in its phase, as journaled ("streaming", "agent silent", "unreachable: refused", …) */
  reason: string;
  /** the zone label its agent reports; absent when none is configured */
  zone?: string;
}

export interface RoutingTable {
  cluster: string;
  engine: string;
  generation: number;
  epoch: number;
  writable: boolean;
  updatedAt: string;
  /** `draining`: a switchover is about to demote it: start no new transaction there (writable is false) */
  primary: { id: string; host: string; port: number; zone?: string; draining?: true; lastWriteDate?: string | null } | null;
  replicas: RoutingReplica[];
  /** a MongoDB replica set's name (clients connect with it) */
  setName?: string | null;
  /** the cluster's phase (healthy, degraded, primary-down, failing-over, …); see docs/state-machine.md */
  phase?: ClusterPhase;
  /** automatic failover is paused */
  paused?: boolean;
  /** why a failover is blocked (no candidate, cooldown, paused), until one starts or the primary recovers */
  blocked?: string | null;
  /** every registered node with its phase and reason (for operators; not for routing) */
  nodes?: RoutingNode[];
}

/** `{ zone }` when the node has one, else nothing: a table without zones keeps its shape. */
function zoneOf(n: NodeInfo): { zone?: string } {
  return n.zone !== undefined ? { zone: n.zone } : {};
}

export function routingTable(state: ClusterState): RoutingTable {
  const p = state.primary ? state.nodes[state.primary] : undefined;
  const writable = !!p && p.healthy && p.role === 'primary' && !state.operation;
  const op = state.operation;
  const draining = !!p && p.healthy && p.role === 'primary' && op?.kind === 'switchover' && op.phase === 'draining' && op.from === p.id;
  const primaryObs = p ? state.soft[p.id]?.obs : undefined;
  const standbys = new Map((primaryObs?.role === 'primary' ? primaryObs.standbys ?? [] : []).map((s) => [s.name, s]));
  const replicas: RoutingReplica[] = [];
  // a set that elects itself: lastWriteDate and staleness per member (src/core/set.ts)
  const set = setRoutes(state);
  for (const id of Object.keys(state.nodes).sort()) {
    if (p && id === p.id) continue;
    const n = state.nodes[id]!;
    const o = state.soft[id]?.obs;
    const seen = standbys.get(id);
    const replayLsn = o?.replayLsn ?? seen?.replayLsn ?? null;
    const lagBytes = primaryObs?.lsn ? bytesAhead(codecOf(state), primaryObs.lsn, replayLsn) : null;
    let lagMs: number | null = seen?.replayLagMs ?? o?.replayDelayMs ?? null;
    if (lagBytes === 0) lagMs = 0;
    const replica: RoutingReplica = {
      id,
      host: n.host,
      port: n.port,
      healthy: n.healthy && n.role === 'replica',
      lagBytes,
      lagMs,
      replayLsn,
      sync: seen ? seen.syncState === 'sync' || seen.syncState === 'quorum' : false,
      ...zoneOf(n),
    };
    if (set) {
      const r = set.byAddress.get(`${n.host}:${String(n.port)}`);
      replica.lastWriteDate = r?.lastWriteDate ?? null;
      replica.stalenessMs = r?.stalenessMs ?? null;
    }
    replicas.push(replica);
  }
  const primaryRoute = set && p ? set.byAddress.get(`${p.host}:${String(p.port)}`) : undefined;
  const extra = set && p ? { lastWriteDate: primaryRoute?.lastWriteDate ?? null } : {};
  return {
    cluster: state.cluster,
    engine: state.engine,
    generation: state.generation,
    epoch: state.epoch,
    writable,
    updatedAt: new Date(state.generationAt).toISOString(),
    primary: writable && p ? { id: p.id, host: p.host, port: p.port, ...zoneOf(p), ...extra } : draining && p ? { id: p.id, host: p.host, port: p.port, ...zoneOf(p), draining: true } : null,
    replicas,
    ...(set ? { setName: set.setName } : {}),
    phase: clusterPhase(state),
    paused: state.paused,
    blocked: state.blocked,
    nodes: Object.keys(state.nodes)
      .sort()
      .map((id) => {
        const n = state.nodes[id]!;
        return { id, host: n.host, port: n.port, role: n.role, phase: nodePhase(state, id), healthy: n.healthy, reason: n.healthReason, ...zoneOf(n) };
      }),
  };
}

/* ------------------------------------------------------- lag reaches clients */

/**
 * Lag figures change with every probe; a client that long-polls or follows the SSE
 * stream should hear of a change that matters (a replica crossing its lag limit) within
 * a second, and not of every wobble. The coordinator remembers the figures of the last
 * table it announced (the marks) and announces again when a replica's lag has moved
 * from its mark by a step: at least `minStep`, else `ratio` of the mark, at most
 * `maxStep`, and not sooner than `minIntervalMs` after the last lag announcement. A
 * figure appearing or vanishing (null) always counts. Small wobbles never count; a
 * replica falling behind at 1 s per second is announced at most once per
 * max(minIntervalMs, step) and always within `maxStepMs` of crossing any limit.
 */
export interface LagHysteresis {
  minStepMs: number;
  maxStepMs: number;
  minStepBytes: number;
  maxStepBytes: number;
  ratio: number;
  minIntervalMs: number;
}

export const DEFAULT_LAG_HYSTERESIS: Readonly<LagHysteresis> = Object.freeze({
  minStepMs: 100,
  maxStepMs: 1000,
  minStepBytes: 1024 * 1024,
  maxStepBytes: 64 * 1024 * 1024,
  ratio: 0.2,
  minIntervalMs: 200,
});

export interface LagMark {
  lagMs: number | null;
  lagBytes: number | null;
}

/** The lag figures last announced, per replica, and when. */
export interface LagMarks {
  at: number;
  replicas: Readonly<Record<string, LagMark>>;
}

function figureMoved(mark: number | null, now: number | null, minStep: number, maxStep: number, ratio: number): boolean {
  if (mark === null || now === null) return mark !== now;
  const step = Math.min(Math.max(minStep, ratio * Math.abs(mark)), maxStep);
  return Math.abs(now - mark) >= step;
}

/** Has this replica's lag moved far enough from its mark to announce? */
export function lagMoved(mark: LagMark | undefined, now: LagMark, h: LagHysteresis = DEFAULT_LAG_HYSTERESIS): boolean {
  if (!mark) return true;
  return figureMoved(mark.lagMs, now.lagMs, h.minStepMs, h.maxStepMs, h.ratio) || figureMoved(mark.lagBytes, now.lagBytes, h.minStepBytes, h.maxStepBytes, h.ratio);
}

export function marksOf(table: RoutingTable, now: number): LagMarks {
  const replicas: Record<string, LagMark> = {};
  for (const r of table.replicas) replicas[r.id] = { lagMs: r.lagMs, lagBytes: r.lagBytes };
  return { at: now, replicas };
}

/**
 * The marks to announce with `table`, or null when its lag figures have not moved enough
 * since `prev` (or moved too soon after the last announcement). A replica that appears
 * or leaves always counts. Pure: `now` is passed in.
 */
export function nextLagMarks(prev: LagMarks | null, table: RoutingTable, now: number, h: LagHysteresis = DEFAULT_LAG_HYSTERESIS): LagMarks | null {
  if (!prev) return marksOf(table, now);
  const ids = Object.keys(prev.replicas);
  let moved = ids.length !== table.replicas.length || table.replicas.some((r) => !(r.id in prev.replicas));
  let membership = moved;
  for (const r of table.replicas) {
    const m = prev.replicas[r.id];
    const cur = { lagMs: r.lagMs, lagBytes: r.lagBytes };
    if (lagMoved(m, cur, h)) {
      moved = true;
      // a figure that appears or vanishes is news at once, like a replica joining
      if (!m || (m.lagMs === null) !== (cur.lagMs === null) || (m.lagBytes === null) !== (cur.lagBytes === null)) membership = true;
    }
  }
  if (!moved) return null;
  if (!membership && now - prev.at < h.minIntervalMs) return null;
  return marksOf(table, now);
}

/**
 * The table's version, for the ETag and the SSE id: the journal's generation (the same
 * on every coordinator) and a digest of the announced lag figures.
 */
export function routingVersion(generation: number, marks: LagMarks | null): string {
  if (!marks) return String(generation);
  // FNV-1a over the marks, in replica id order
  let h = 0x811c9dc5;
  const text = Object.keys(marks.replicas)
    .sort()
    .map((id) => `${id}:${marks.replicas[id]!.lagMs}:${marks.replicas[id]!.lagBytes}`)
    .join(',');
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return `${generation}.${h.toString(36)}`;
}

/** The table clients were last told about: its version and the lag figures announced with it. */
export interface Announcement {
  version: string;
  generation: number;
  marks: LagMarks;
}

/**
 * Should `table` be announced (a new ETag, an SSE event)? Always when its generation is
 * new; otherwise only when a replica's lag moved past the hysteresis. Returns the new
 * announcement, or null to keep the previous one.
 */
export function announce(prev: Announcement | null, table: RoutingTable, now: number, h: LagHysteresis = DEFAULT_LAG_HYSTERESIS): Announcement | null {
  const marks = !prev || prev.generation !== table.generation ? marksOf(table, now) : nextLagMarks(prev.marks, table, now, h);
  return marks ? { version: routingVersion(table.generation, marks), generation: table.generation, marks } : null;
}
