/** Optional prom-client metrics of the client library, on a registry the app passes in. */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export interface MetricsOptions {
  registry: Registry;
  /** metric name prefix (default `switchyard_client_`) */
  prefix?: string;
}

export class ClientMetrics {
  readonly queries: Counter<'node' | 'role' | 'kind'>;
  readonly errors: Counter<'node' | 'role' | 'kind'>;
  readonly duration: Histogram<'role' | 'kind'>;
  readonly generation: Gauge;
  readonly coalesced: Counter;
  private readonly children = new Map<string, { q: ReturnType<Counter<'node' | 'role' | 'kind'>['labels']>; h: ReturnType<Histogram<'role' | 'kind'>['labels']> }>();

  constructor(opts: MetricsOptions) {
    const p = opts.prefix ?? 'switchyard_client_';
    const registers = [opts.registry];
    this.queries = new Counter({ name: `${p}queries_total`, help: 'statements run, by node, role and kind', labelNames: ['node', 'role', 'kind'], registers });
    this.errors = new Counter({ name: `${p}query_errors_total`, help: 'statements that failed, by node, role and kind', labelNames: ['node', 'role', 'kind'], registers });
    this.duration = new Histogram({ name: `${p}query_duration_seconds`, help: 'statement duration', labelNames: ['role', 'kind'], buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1], registers });
    this.generation = new Gauge({ name: `${p}routing_generation`, help: 'generation of the routing table in use', registers });
    this.coalesced = new Counter({ name: `${p}coalesced_total`, help: 'reads that shared another identical read', registers });
  }

  observe(node: string, role: string, kind: string, ms: number): void {
    const key = `${node}\u0000${role}\u0000${kind}`;
    let c = this.children.get(key);
    if (!c) {
      c = { q: this.queries.labels(node, role, kind), h: this.duration.labels(role, kind) };
      this.children.set(key, c);
    }
    c.q.inc();
    c.h.observe(ms / 1000);
  }

  error(node: string, role: string, kind: string): void {
    this.errors.labels(node, role, kind).inc();
  }
}
