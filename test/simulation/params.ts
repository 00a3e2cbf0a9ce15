/** Timings of the modelled components (the shipped defaults where the product has a setting). */
import { DEFAULT_SETTINGS } from '../../src/core/index.js';

export const CLUSTER = 'sim';
export const PORT = 5432;
export const PROBE_INTERVAL_MS = 200;
export const PROBE_TIMEOUT_MS = 1_000;
/** the agent's Redis connection: connectTimeout / commandTimeout */
export const REDIS_TIMEOUT_MS = 1_000;
export const TICK_MS = 100;
export const LEASE_TTL_MS = 3_000;
export const LEASE_MARGIN_MS = 500;
export const LEASE_TICK_MS = 1_000;
/** the shell chains at most this many passes after passes that appended */
export const CHAINED_PASSES = 8;
export const WAL_TICK_MS = 100;
export const STEP_MS = 200;
export const WAL_RECEIVER_TIMEOUT_MS = 60_000;
export const WAL_SENDER_TIMEOUT_MS = 60_000;
/** a standby replies after receiving WAL, and at least every wal_receiver_status_interval */
export const WAL_RECEIVER_STATUS_INTERVAL_MS = 10_000;
/** agent/agent.ts: a node this agent promoted is not fenced as deposed for this long, until the leader names it */
export const PROMOTED_GRACE_MS = DEFAULT_SETTINGS.promotedGraceMs;
/**
 * deposed-takes-writes: a deposed primary whose agent is up and reaches Redis stops taking writes
 * within two of its probes (each at most PROBE_INTERVAL_MS + the probe's and the peer
 * check's 1 s timeouts) of the leader publishing another primary.
 */
export const DEPOSED_FENCE_MS = 2_500;
/** coordinator/cluster.ts: a coordinator that has not read the streams for this long answers 503, naming no primary */
export const STALE_AFTER_MS = DEFAULT_SETTINGS.staleAfterMs;
/** withClient's connect timeout in the agent's actions */
export const ACTION_TIMEOUT_MS = 5_000;
export const KB = 1024;

export const QUIET_MS = 60_000;
