/**
 * `switchyard/client`: the client library. `ReplicatedPool` (a drop-in pg.Pool that
 * follows the routing table), the query classifier, coded errors, and the request
 * scope helpers (Fastify plugin, Express-style middleware, decorators).
 */
export { ReplicatedPool } from './pool.js';
export type { ReplicatedPoolOptions, QueryContext, QueryExecutedEvent, QueryErrorEvent, RoutingChangedEvent, PoolStats, NodeStats, RoleTimeouts, ReadPreference, LoadBalancing } from './pool.js';
export { classifyQuery, initClassifier } from './classify.js';
export { ClientError, NoPrimaryError, NoReplicaError, RoutingUnavailableError } from './errors.js';
export { ConsistencyScope } from './consistency.js';
export { Breaker } from './breaker.js';
export type { BreakerOptions, BreakerState } from './breaker.js';
export type { MetricsOptions } from './metrics.js';
export { switchyardFastify, requestScope, readOnly, writes, consistentRead } from './middleware.js';
