/**
 * Rule: loss. What a finished failover lost, once the old primary's agent read its end
 * of WAL (or offset): measured against the new primary's fork point, in the engine's
 * positions. Pure.
 */
import { bytesAhead, codecOf } from '../positions.js';
import { append, type Pass } from './pass.js';

/**
 * Only an end of the timeline that failover left: reported after it finished (an older
 * report may predate a restart in place that wrote more), by a node not promoted since
 * (its end of WAL is then of its own newer timeline).
 */
export function lossRule({ state, out }: Pass): void {
  const recent = state.history.slice(-5);
  for (const [i, h] of recent.entries()) {
    if (h.kind !== 'failover' || h.outcome !== 'success' || h.lossMeasured || !h.from || !h.finishedAt) continue;
    const soft = state.soft[h.from];
    const walEnd = soft?.obs.walEnd;
    if (!walEnd || soft.receivedAt <= Date.parse(h.finishedAt)) continue;
    if (recent.slice(i + 1).some((x) => x.to === h.from)) continue;
    // the fork point from the promote job's result, or else from the new primary's own
    // reports (a promotion confirmed by its role before the job's result arrived)
    const toObs = state.soft[h.to]?.obs;
    const laterOps = recent.slice(i + 1).some((x) => x.to === h.to || x.from === h.to);
    const forkLsn = h.forkLsn ?? (!laterOps && toObs?.role === 'primary' ? toObs.forkLsn : undefined);
    if (!forkLsn) continue;
    append(out, { type: 'failover.loss', operationId: h.id, node: h.from, walEnd, forkLsn, lostBytes: bytesAhead(codecOf(state), walEnd, forkLsn) ?? 0 });
  }
}
