/**
 * The routing projection: what apps, the client library and HAProxy see. Pure.
 * `generation` comes from the journal, so every coordinator that has folded the same
 * journal serves the same generation; lag figures come from the soft layer and are
 * refreshed without bumping it.
 */
import { lsnDiff } from './lsn.js';
import type { ClusterState } from './state.js';

export interface RoutingReplica {
  id: string;
  host: string;
  port: number;
  healthy: boolean;
  lagBytes: number | null;
  lagMs: number | null;
  replayLsn: string | null;
  sync: boolean;
}

export interface RoutingTable {
  cluster: string;
  engine: string;
  generation: number;
  epoch: number;
  writable: boolean;
  updatedAt: string;
  primary: { id: string; host: string; port: number } | null;
  replicas: RoutingReplica[];
}

export function routingTable(state: ClusterState): RoutingTable {
  const p = state.primary ? state.nodes[state.primary] : undefined;
  const writable = !!p && p.healthy && p.role === 'primary' && !state.operation;
  const primaryObs = p ? state.soft[p.id]?.obs : undefined;
  const standbys = new Map((primaryObs?.role === 'primary' ? primaryObs.standbys ?? [] : []).map((s) => [s.name, s]));
  const replicas: RoutingReplica[] = [];
  for (const id of Object.keys(state.nodes).sort()) {
    if (p && id === p.id) continue;
    const n = state.nodes[id]!;
    const o = state.soft[id]?.obs;
    const seen = standbys.get(id);
    const replayLsn = o?.replayLsn ?? seen?.replayLsn ?? null;
    const lagBytes = primaryObs?.lsn ? lsnDiff(primaryObs.lsn, replayLsn) : null;
    let lagMs: number | null = seen?.replayLagMs ?? o?.replayDelayMs ?? null;
    if (lagBytes === 0) lagMs = 0;
    replicas.push({
      id,
      host: n.host,
      port: n.port,
      healthy: n.healthy && n.role === 'replica',
      lagBytes,
      lagMs,
      replayLsn,
      sync: seen ? seen.syncState === 'sync' || seen.syncState === 'quorum' : false,
    });
  }
  return {
    cluster: state.cluster,
    engine: state.engine,
    generation: state.generation,
    epoch: state.epoch,
    writable,
    updatedAt: new Date(state.generationAt).toISOString(),
    primary: writable && p ? { id: p.id, host: p.host, port: p.port } : null,
    replicas,
  };
}
