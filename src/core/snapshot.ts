/**
 * Snapshots of the folded journal. The leader writes one every `SNAPSHOT_EVERY` journal
 * entries and at shutdown, with the stream id it covers; a starting coordinator loads
 * the newest and replays the journal after it, so fold(snapshot + tail) = fold(all).
 *
 * A snapshot holds the journal layer only: the soft layer (observations, commands not
 * yet answered, job results not yet journaled) is rebuilt from the streams within one
 * probe interval, exactly as for a coordinator that folds the whole journal.
 */
import { initialState, type ClusterState } from './state.js';

export const SNAPSHOT_VERSION = 1;
export const SNAPSHOT_EVERY = 1000;

export interface Snapshot {
  v: typeof SNAPSHOT_VERSION;
  cluster: string;
  /** the last journal stream id folded into it */
  logId: string;
  state: ClusterState;
}

/** The state without what only the soft layer knows: what fold(journal) alone gives. */
export function journalLayer(state: ClusterState): ClusterState {
  const op = state.operation;
  const sr = state.syncRequest;
  const { setView: _view, obsArrivals: _arrivals, ...rest } = state;
  return {
    ...rest,
    soft: {},
    commands: {},
    operation: op ? { ...op, promoteResult: null, demoteResult: null, fenceResult: null } : null,
    syncRequest: sr ? { ...sr, appliedLsn: null, failed: null } : null,
  };
}

export function toSnapshot(state: ClusterState): Snapshot {
  return { v: SNAPSHOT_VERSION, cluster: state.cluster, logId: state.logId, state: journalLayer(state) };
}

/** A snapshot's state, checked enough to trust: wrong cluster or version is refused. */
export function fromSnapshot(raw: unknown, cluster: string): ClusterState | null {
  const s = raw as Partial<Snapshot> | null;
  if (!s || s.v !== SNAPSHOT_VERSION || s.cluster !== cluster || typeof s.logId !== 'string' || !s.state) return null;
  // fields added after the snapshot was written take their initial values
  const op = s.state.operation;
  const operation = op ? { ...op, deposed: op.deposed ?? null, fenceResult: null } : null;
  const { setView: _view, obsArrivals: _arrivals, ...restored } = s.state;
  return { ...initialState(cluster, s.state.engine), ...restored, operation, soft: {}, commands: {}, logId: s.logId };
}
