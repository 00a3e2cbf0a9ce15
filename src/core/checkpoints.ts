/**
 * Checkpoints of the folded journal kept in memory, so that "the topology as of journal
 * id X" (`GET /v1/clusters/:c/topology?at=`) folds a bounded tail from the nearest
 * checkpoint at or before X instead of the whole journal on every request. Pure: no I/O,
 * no clock. States are immutable (evolve returns new objects sharing structure), so a
 * checkpoint costs little more than a reference.
 *
 * A coordinator adds one every `every` journal entries it folds (and one for the snapshot
 * it starts from); a request that had to fold an older stretch adds the ones it passed.
 * When there are more than `max`, every other one is dropped (the older tail doubles).
 */
import { compareStreamIds, type ClusterState } from './state.js';

export interface Checkpoint {
  /** the last journal id folded into `state` */
  logId: string;
  /** the journal layer only (see journalLayer in snapshot.ts) */
  state: ClusterState;
}

export const CHECKPOINT_EVERY = 256;
export const CHECKPOINT_MAX = 512;

export class JournalCheckpoints {
  private points: Checkpoint[] = [];

  constructor(
    readonly every = CHECKPOINT_EVERY,
    readonly max = CHECKPOINT_MAX,
  ) {}

  get size(): number {
    return this.points.length;
  }

  /** Record the journal layer as of `logId` (kept sorted; a duplicate id is ignored). */
  add(logId: string, state: ClusterState): void {
    const i = this.indexAfter(logId);
    if (i > 0 && compareStreamIds(this.points[i - 1]!.logId, logId) === 0) return;
    this.points.splice(i, 0, { logId, state });
    if (this.points.length > this.max) this.points = this.points.filter((_, j) => j % 2 === 1 || j === this.points.length - 1);
  }

  /** The newest checkpoint at or before `at` (null `at`: the newest of all), or null. */
  nearest(at: string | null): Checkpoint | null {
    if (this.points.length === 0) return null;
    if (at === null) return this.points.at(-1)!;
    const i = this.indexAfter(at);
    return i > 0 ? this.points[i - 1]! : null;
  }

  /** index of the first checkpoint with logId > id (binary search) */
  private indexAfter(id: string): number {
    let lo = 0;
    let hi = this.points.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (compareStreamIds(this.points[mid]!.logId, id) <= 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}
