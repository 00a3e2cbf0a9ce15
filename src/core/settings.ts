/**
 * Every timing threshold and limit the pure core uses, with its default, in one place.
 * Rules never use literals for these; tests and configs override them by name.
 */
export interface Settings {
  /** A primary unreachable for an ambiguous reason (timeout, a stopped process) is failed over after this long. */
  failAfterMs: number;
  /** A primary with definitive evidence of death (connection refused, postmaster gone) is failed over after this long. */
  refusedFailAfterMs: number;
  /** An agent that has sent nothing for this long is silent: its view no longer counts. */
  agentTimeoutMs: number;
  /** A replica further behind the old primary than this is not a failover candidate. */
  maxLagOnFailoverBytes: number;
  /** A promotion not confirmed within this long is failed. */
  promoteTimeoutMs: number;
  /** Minimum time between two automatic failovers. */
  cooldownMs: number;
  /** A follow/rejoin job that has not taken effect is sent again after this long. */
  jobRetryMs: number;
  /**
   * A primary's agent that cannot reach Redis for this long (and sees no replica
   * connected) makes its node refuse writes. Every observation renews the primary's
   * lease for this long: must match the agents' `fenceAfterMs`.
   */
  fenceAfterMs: number;
  /** A silent primary's lease is over only fenceMarginMs after fenceAfterMs (clock drift, the fencing itself). */
  fenceMarginMs: number;
  /**
   * A primary whose agent is silent this long while a majority of peers get "connection
   * refused" from its port is failed over without waiting for its lease: nothing listens.
   */
  peerRefusedAfterMs: number;
  /**
   * Synchronous mode. `true`: the leader keeps one synchronous standby on the primary
   * (`FIRST 1 (s)`), changes it through `FIRST 2 (old, new)` so that an acknowledged
   * commit is always on the journaled one, and fails over only to it. `'quorum'`:
   * `ANY 1 (every healthy standby)`; a failover needs every journaled standby reachable
   * and promotes the one with the most WAL.
   */
  synchronous: boolean | 'quorum';
  /**
   * 'failover' (default): a crashed primary is failed over at once. 'restart-first': it
   * is restarted in place, and failed over only if it is not back within failAfterMs
   * (for asynchronous replication, when waiting beats losing the last commits).
   * Either way, a crashed primary with no failover candidate is restarted in place.
   */
  policy: 'failover' | 'restart-first';
  /**
   * A switchover first marks the primary `draining` in the routing table for this long
   * (clients start no new transaction there and hold new writes; those in flight
   * finish), then demotes it. 0: demote at once.
   */
  switchoverDrainMs: number;
  /**
   * A node its agent promoted may stay primary this long while the leader's published key
   * still predates the operation (the leader has not published since). Once the agent has
   * read a key naming the operation, the grace ends with the operation.
   */
  promotedGraceMs: number;
  /** A coordinator that has not read the streams for this long names no primary to anyone (the API answers 503). */
  staleAfterMs: number;
}

export const DEFAULT_SETTINGS: Readonly<Settings> = Object.freeze({
  failAfterMs: 5_000,
  refusedFailAfterMs: 0,
  agentTimeoutMs: 3_000,
  maxLagOnFailoverBytes: 1024 * 1024,
  promoteTimeoutMs: 15_000,
  cooldownMs: 10_000,
  jobRetryMs: 15_000,
  fenceAfterMs: 4_000,
  fenceMarginMs: 1_000,
  peerRefusedAfterMs: 1_000,
  synchronous: false,
  policy: 'failover',
  switchoverDrainMs: 0,
  promotedGraceMs: 30_000,
  staleAfterMs: 2_000,
});

export function withDefaults(partial: Partial<Settings> | undefined): Settings {
  return { ...DEFAULT_SETTINGS, ...(partial ?? {}) };
}

/**
 * The longest an agent cut off from Redis keeps its primary writable: fenceAfterMs, or
 * while a standby keeps replying, twice that at most. The leader cannot see a standby's
 * replies (a restarted or paused leader may not have heard of the primary's loss at all),
 * so it counts a silent primary's lease as over on its agent's word alone only this long
 * (plus fenceMarginMs) after its last report: the agent and the leader agree by
 * construction.
 */
export function selfFenceCapMs(fenceAfterMs: number): number {
  return 2 * fenceAfterMs;
}
