/**
 * What the pure core needs to know of each engine beyond its positions, by name. Types and
 * constants only: no I/O, so `src/core/` may import it (the engine objects themselves load
 * drivers). A test checks it agrees with the registered engines (src/engines/index.ts).
 */
import type { EngineName } from './types.js';

/** Engines that elect their own primary (MongoDB): the core adopts the primary the members report and never promotes. */
const ELECTS_ITSELF: Readonly<Record<EngineName, boolean>> = {
  postgres: false,
  redis: false,
  mongodb: true,
};

export function electsItself(engine: string): boolean {
  return (ELECTS_ITSELF as Record<string, boolean | undefined>)[engine] ?? false;
}

/**
 * Engines whose clients acknowledge a write by its replicas outside any synchronous mode
 * the core keeps (Redis `WAIT n`): a write so acknowledged is on the replica furthest
 * ahead, so a failover must promote the replica truly furthest ahead, judged on positions
 * reported after the primary stopped, not on reports a probe interval old (see
 * unsettledPositions in src/core/rules/candidate.ts). PostgreSQL acknowledges through
 * synchronous_standby_names, which the core keeps and fails over by; its asynchronous
 * failover records what it may have lost.
 */
const ACKED_BY_REPLICAS: Readonly<Record<EngineName, boolean>> = {
  postgres: false,
  redis: true,
  mongodb: false,
};

export function ackedByReplicas(engine: string): boolean {
  return (ACKED_BY_REPLICAS as Record<string, boolean | undefined>)[engine] ?? false;
}
