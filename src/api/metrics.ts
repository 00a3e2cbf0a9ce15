/**
 * `GET /metrics`: Prometheus text from a registry of this app's own (never prom-client's
 * global one, so several apps in one process do not clash). Cluster gauges are
 * computed at scrape time from the folded state; HTTP counters are kept by an
 * onResponse hook, labelled by route pattern (bounded), never by raw URL.
 */
import type { FastifyInstance } from 'fastify';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { ApiCluster } from './types.js';

export interface ApiMetrics {
  readonly registry: Registry;
  /** the Prometheus text exposition */
  scrape(): Promise<string>;
  readonly contentType: string;
}

export function installMetrics(app: FastifyInstance, clusters: ReadonlyMap<string, ApiCluster>): ApiMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const registers = [registry];
  const all = (): ApiCluster[] => [...clusters.values()];

  new Gauge({
    name: 'switchyard_cluster_writable',
    help: '1 while the routing table has a writable primary',
    labelNames: ['cluster'] as const,
    registers,
    collect() {
      this.reset();
      for (const c of all()) this.set({ cluster: c.name }, c.table.writable ? 1 : 0);
    },
  });
  new Gauge({
    name: 'switchyard_cluster_generation',
    help: 'generation of the routing table (bumped by every journal entry that changes it)',
    labelNames: ['cluster'] as const,
    registers,
    collect() {
      this.reset();
      for (const c of all()) this.set({ cluster: c.name }, c.table.generation);
    },
  });
  new Gauge({
    name: 'switchyard_cluster_paused',
    help: '1 while automatic failover is paused',
    labelNames: ['cluster'] as const,
    registers,
    collect() {
      this.reset();
      for (const c of all()) this.set({ cluster: c.name }, c.state.paused ? 1 : 0);
    },
  });
  new Gauge({
    name: 'switchyard_leader',
    help: '1 if this coordinator holds the cluster lease',
    labelNames: ['cluster'] as const,
    registers,
    collect() {
      this.reset();
      for (const c of all()) this.set({ cluster: c.name }, c.isLeader ? 1 : 0);
    },
  });
  new Gauge({
    name: 'switchyard_operation_in_progress',
    help: '1 while a failover or switchover is in flight',
    labelNames: ['cluster', 'kind'] as const,
    registers,
    collect() {
      this.reset();
      for (const c of all()) {
        for (const kind of ['failover', 'switchover'] as const) this.set({ cluster: c.name, kind }, c.state.operation?.kind === kind ? 1 : 0);
      }
    },
  });
  new Gauge({
    name: 'switchyard_node_healthy',
    help: "1 if the journal's verdict on the node is healthy; role is the journal's view",
    labelNames: ['cluster', 'node', 'role'] as const,
    registers,
    collect() {
      this.reset();
      for (const c of all()) {
        for (const n of Object.values(c.state.nodes)) this.set({ cluster: c.name, node: n.id, role: n.role }, n.healthy ? 1 : 0);
      }
    },
  });
  new Gauge({
    name: 'switchyard_replica_lag_bytes',
    help: "replica replay lag behind the primary's LSN, in bytes (absent while unknown)",
    labelNames: ['cluster', 'node'] as const,
    registers,
    collect() {
      this.reset();
      for (const c of all()) {
        for (const r of c.table.replicas) if (r.lagBytes !== null) this.set({ cluster: c.name, node: r.id }, r.lagBytes);
      }
    },
  });
  new Gauge({
    name: 'switchyard_replica_lag_seconds',
    help: 'replica replay lag, in seconds (absent while unknown)',
    labelNames: ['cluster', 'node'] as const,
    registers,
    collect() {
      this.reset();
      for (const c of all()) {
        for (const r of c.table.replicas) if (r.lagMs !== null) this.set({ cluster: c.name, node: r.id }, r.lagMs / 1000);
      }
    },
  });

  // Finished operations, counted once each as they appear in state.history. The history
  // is bounded (old items fall off) and a running item changes outcome, so the counter
  // is accumulated per seen id instead of recomputed from the list: it never goes down.
  const counted = new Map<string, Set<string>>();
  new Counter({
    name: 'switchyard_failovers_total',
    help: 'finished failovers and switchovers, by kind and outcome (success, failed, aborted)',
    labelNames: ['cluster', 'kind', 'outcome'] as const,
    registers,
    collect() {
      for (const c of all()) {
        let seen = counted.get(c.name);
        if (!seen) counted.set(c.name, (seen = new Set()));
        const present = new Set<string>();
        for (const h of c.state.history) {
          present.add(h.id);
          if (h.outcome === 'running' || seen.has(h.id)) continue;
          seen.add(h.id);
          this.inc({ cluster: c.name, kind: h.kind, outcome: h.outcome });
        }
        for (const id of seen) if (!present.has(id)) seen.delete(id);
      }
    },
  });

  const requests = new Counter({
    name: 'switchyard_http_requests_total',
    help: 'HTTP requests answered, by method, route pattern and status',
    labelNames: ['method', 'route', 'status'] as const,
    registers,
  });
  const durations = new Histogram({
    name: 'switchyard_http_request_duration_seconds',
    help: 'HTTP request duration, by method, route pattern and status (long polls and streams included)',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 60],
    registers,
  });

  // hot path (the routing table is polled hard): a sync hook, label children cached
  // per method/route/status (bounded: routes are patterns, 'unmatched' for the rest)
  const children = new Map<string, { count: { inc(): void }; time: { observe(v: number): void } }>();
  app.addHook('onResponse', (req, reply, done) => {
    const route = req.routeOptions.url ?? 'unmatched';
    const key = `${req.method} ${reply.statusCode} ${route}`;
    let child = children.get(key);
    if (!child) {
      const labels = { method: req.method, route, status: String(reply.statusCode) };
      child = { count: requests.labels(labels), time: durations.labels(labels) };
      children.set(key, child);
    }
    child.count.inc();
    child.time.observe(reply.elapsedTime / 1000);
    done();
  });

  return { registry, contentType: registry.contentType, scrape: () => registry.metrics() };
}
