/**
 * What the routing API serves (a coordinator's clusters, as ApiCluster) and what its
 * route modules share (ApiContext). Kept apart from server.ts so that the route
 * modules import no cycle.
 */
import type { FastifyInstance } from 'fastify';
import type { ServerResponse } from 'node:http';
import type { JournalRecord } from '../bus/journal.js';
import type { JournalCheckpoints } from '../core/checkpoints.js';
import type { RoutingTable } from '../core/routing.js';
import type { ClusterState } from '../core/state.js';
import type { Command } from '../events/observation.js';
import type { ApiAuth, AuthOptions } from './auth.js';
import type { ApiMetrics } from './metrics.js';
import type { LagHistory } from './lag-history.js';

export interface ApiCluster {
  readonly name: string;
  readonly state: ClusterState;
  readonly table: RoutingTable;
  /** the table's version, for the ETag and the SSE id: changes with the generation and with lag past the hysteresis (default: the generation) */
  readonly version?: string;
  readonly isLeader: boolean;
  readonly ready: boolean;
  /** has it read the streams recently? A stale view must not route writes */
  readonly fresh?: boolean;
  /** resolves with the table once its version differs from `version`, or null after `ms` */
  waitForChange(version: string, ms: number): Promise<RoutingTable | null>;
  on(event: 'routing', fn: (t: RoutingTable) => void): unknown;
  off(event: 'routing', fn: (t: RoutingTable) => void): unknown;
  readJournal(after: string, limit: number): Promise<JournalRecord[]>;
  /** checkpoints of the folded journal: `?at=` folds from the nearest one (else from the start) */
  readonly checkpoints?: JournalCheckpoints;
  /** queue an operator's command; the leader carries it out */
  submit(command: Command): Promise<string>;
}

export interface ApiOptions {
  clusters: ReadonlyMap<string, ApiCluster>;
  coordinatorId: string;
  adminToken?: string | undefined;
  /** named admin tokens, a read token, the admin rate limit (see auth.ts); adminToken counts as one named "admin" */
  auth?: AuthOptions | ApiAuth | undefined;
  /** largest request body, bytes */
  bodyLimit?: number | undefined;
  /** health checks with role=replica and no maxLagMs use this (REPLICATION_LAG_THRESHOLD_MS) */
  defaultMaxLagMs?: number | undefined;
  /** how often the lag history behind the dashboard's chart takes a sample, ms (default 2000) */
  lagSampleMs?: number | undefined;
  logger?: boolean;
  /** a pino logger for the app's own errors (request logging stays off) */
  loggerInstance?: import('pino').Logger;
}

/** What buildApi hands each route module. */
export interface ApiContext {
  readonly app: FastifyInstance;
  readonly opts: ApiOptions;
  readonly auth: ApiAuth;
  readonly metrics: ApiMetrics;
  readonly lag: LagHistory;
  /** open event streams, ended before close() */
  readonly streams: Set<ServerResponse>;
  /** the cluster by name, or CLUSTER_NOT_FOUND */
  cluster(name: string): ApiCluster;
  /** the cluster, but STALE when this coordinator's view of it is not fresh (routing answers) */
  routable(name: string): ApiCluster;
}
