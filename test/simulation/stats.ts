/** What a run counts (summed over runs by mergeStats): the figures simulation.test.ts prints. */

export interface Stats {
  schedules: number;
  failoversStarted: number;
  switchoversStarted: number;
  operationsSucceeded: number;
  operationsFailed: number;
  operationsAborted: number;
  commandsRejected: number;
  leaderChanges: number;
  fencedAppends: number;
  selfFenced: number;
  jobsRefused: Record<string, number>;
  duplicateJobRuns: number;
  faults: Record<string, number>;
  livenessChecked: number;
  livenessExcused: Record<string, number>;
  recoveryMsMax: number;
  /** two nodes taking writes from clients that can reach them: none is routed twice */
  splitBrainMs: number;
  splitBrainRuns: number;
  /** … by why the one the leader has not published has not refused writes yet */
  splitBrainMsBy: Record<string, number>;
  /** the longest stretch an unpublished node took writes with its agent up, connected and out of its promotion grace */
  splitUnexcusedMaxMs: number;
  /**
   * the one allowed exception to "at most one node takes writes": an unpublished node that
   * acknowledges writes beside the primary while its agent is not running (its host frozen
   * or its agent down with it), in asynchronous mode: episodes, their total time, and how
   * many of them the measured failover.loss covered (every one must be)
   */
  hostFrozenExceptions: number;
  hostFrozenMs: number;
  hostFrozenCovered: number;
  /** primaries made read-only by their agent because the leader deposed them or names another node (guardAction) */
  deposedFenced: number;
  /** … and primaries that did not answer killed by their agent (guardAction: kill) */
  deposedKilled: number;
  /** former primaries started read-only (bootAction) */
  bootFenced: number;
  /** demote, rejoin or follow jobs that stopped the journal's primary outside an operation that asked it */
  staleDemotions: number;
  /** automatic and manual failovers that succeeded from a known old primary */
  lossFailovers: number;
  /** … whose loss the leader measured (failover.loss) */
  lossMeasured: number;
  /** … whose new primary was not on the old primary's line (the measurement cannot be right) */
  lossOffBranch: number;
  /** … whose old primary was promoted again since, by a job of an operation that was over */
  lossPromotedAgain: number;
  /** coordinators cut off from Redis long enough to answer 503 (a stale view) */
  staleRefusals: number;
  /** new leaders that read journal entries they had not read yet before their first append */
  caughtUp: number;
  /** a promotion while another primary could still take writes (not read-only), by where that one was */
  promotedBesideWritable: Record<string, number>;
  /** failovers whose candidate was further behind (in truth) than maxLagOnFailoverBytes */
  truthLagExceeded: number;
  truthLagExceededBlind: number;
  /** promotions by a job of an operation that was over (at-least-once delivery) */
  stalePromotions: number;
  events: number;
}

export function emptyStats(): Stats {
  return {
    schedules: 0,
    failoversStarted: 0,
    switchoversStarted: 0,
    operationsSucceeded: 0,
    operationsFailed: 0,
    operationsAborted: 0,
    commandsRejected: 0,
    leaderChanges: 0,
    fencedAppends: 0,
    selfFenced: 0,
    jobsRefused: {},
    duplicateJobRuns: 0,
    faults: {},
    livenessChecked: 0,
    livenessExcused: {},
    recoveryMsMax: 0,
    splitBrainMs: 0,
    splitBrainRuns: 0,
    splitBrainMsBy: {},
    splitUnexcusedMaxMs: 0,
    hostFrozenExceptions: 0,
    hostFrozenMs: 0,
    hostFrozenCovered: 0,
    deposedFenced: 0,
    deposedKilled: 0,
    bootFenced: 0,
    staleDemotions: 0,
    lossFailovers: 0,
    lossMeasured: 0,
    lossOffBranch: 0,
    lossPromotedAgain: 0,
    staleRefusals: 0,
    caughtUp: 0,
    promotedBesideWritable: {},
    truthLagExceeded: 0,
    truthLagExceededBlind: 0,
    stalePromotions: 0,
    events: 0,
  };
}

export function mergeStats(into: Stats, s: Stats): void {
  for (const k of Object.keys(s) as Array<keyof Stats>) {
    const v = s[k];
    if (typeof v === 'number') {
      if (k === 'recoveryMsMax' || k === 'splitUnexcusedMaxMs') into[k] = Math.max(into[k], v);
      else (into[k] as number) += v;
    } else {
      const acc = into[k] as Record<string, number>;
      for (const [kk, vv] of Object.entries(v)) acc[kk] = (acc[kk] ?? 0) + vv;
    }
  }
}
