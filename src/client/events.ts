/** What `ReplicatedPool` reports: its events' payloads and `stats()`. */
import type { RoutingTable } from '../core/routing.js';
import type { TableSource } from './follower.js';

export interface QueryExecutedEvent {
  nodeId: string;
  role: 'primary' | 'replica';
  kind: 'read' | 'write';
  durationMs: number;
  retried: boolean;
}

export interface RoutingChangedEvent {
  generation: number;
  primary: string | null;
  previousPrimary: string | null;
  /** where the change came from: the SSE stream, a long poll, a refresh, or the pool's own discovery */
  source: TableSource | 'discovery';
  table: RoutingTable | null;
}

export interface QueryErrorEvent {
  nodeId: string | null;
  role: 'primary' | 'replica' | null;
  kind: 'read' | 'write';
  error: Error;
  willRetry: boolean;
}

export interface NodeStats {
  role: 'primary' | 'replica';
  healthy: boolean;
  draining: boolean;
  breaker: 'closed' | 'open' | 'half-open';
  queries: number;
  errors: number;
  inflight: number;
  latencyMs: number | null;
  lagMs: number | null;
  totalCount: number;
  idleCount: number;
}

export interface PoolStats {
  generation: number;
  primary: string | null;
  stale: boolean;
  discoveredPrimary: string | null;
  coalesced: number;
  retries: number;
  nodes: Record<string, NodeStats>;
}

/** The events the pool's parts raise (the pool itself, an EventEmitter, is one). */
export interface Emitter {
  emit(event: string | symbol, ...args: unknown[]): boolean;
  listenerCount(event: string | symbol): number;
}
