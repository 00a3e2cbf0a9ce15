/**
 * Deterministic simulation of a switchyard deployment around the pure core: the entry
 * point (simulation.test.ts runs it; README.md says what it models and finds).
 *
 * One seed → one schedule, on a simulated clock driven by an event queue; the only
 * randomness is the seeded PRNG (prng.ts). The shipped pure code decides: the core
 * (evolve, decide, routingTable) and the agent's rules (src/core/agent-rules.ts:
 * guardAction, jobGate, bootAction, publishedPrimary). Around it, the modules model what
 * does I/O:
 *
 *   world.ts        the state of one schedule, the clock, the event queue, the PRNG
 *   postgres.ts     a PostgreSQL node: role, timelines, LSN, replication, sync standbys
 *   agent.ts        the agent: start, probe loop, fence timer, guard (agent/agent.ts)
 *   observe.ts      the Observation the agent builds             (agent/agent.ts observe)
 *   jobs.ts         the agent's job worker                      (agent/agent.ts runJob)
 *   coordinator.ts  follow, lease, decide, act, send jobs       (coordinator/cluster.ts)
 *   redis.ts        Redis: lease and append scripts, streams, BullMQ queues
 *   faults.ts       the faults and the operator's commands
 *   invariants.ts   what is checked after every event, liveness
 *   checks.ts       what is checked on the journal (fold, failover.started, failover.loss)
 *   runner.ts       one schedule: bootstrap, faults, quiet period, final checks
 *   report.ts       what a run prints
 */
export { runSchedule } from './runner.js';
export { emptyStats, mergeStats, type Stats } from './stats.js';
export { GUARDS, type Guard, type RunOptions, type RunResult, type Violation } from './types.js';
export { World } from './world.js';
export { QUIET_MS } from './params.js';
