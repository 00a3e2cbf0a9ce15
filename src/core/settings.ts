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
}

export const DEFAULT_SETTINGS: Readonly<Settings> = Object.freeze({
  failAfterMs: 5_000,
  refusedFailAfterMs: 0,
  agentTimeoutMs: 3_000,
  maxLagOnFailoverBytes: 1024 * 1024,
  promoteTimeoutMs: 15_000,
  cooldownMs: 10_000,
  jobRetryMs: 15_000,
});

export function withDefaults(partial: Partial<Settings> | undefined): Settings {
  return { ...DEFAULT_SETTINGS, ...(partial ?? {}) };
}
