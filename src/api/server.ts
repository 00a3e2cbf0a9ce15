/**
 * The routing API: a small Fastify app over the coordinator's in-memory state. Every
 * coordinator serves it, leader or not; answers come from folded state, never from a
 * Redis round trip on the hot path (the journal reads aside).
 */
import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';
import { Type, type Static } from '@sinclair/typebox';
import type { JournalRecord } from '../bus/journal.js';
import type { RoutingTable } from '../core/routing.js';
import type { ClusterState } from '../core/state.js';

export interface ApiCluster {
  readonly name: string;
  readonly state: ClusterState;
  readonly table: RoutingTable;
  readonly isLeader: boolean;
  readonly ready: boolean;
  waitForChange(generation: number, ms: number): Promise<RoutingTable | null>;
  on(event: 'routing', fn: (t: RoutingTable) => void): unknown;
  off(event: 'routing', fn: (t: RoutingTable) => void): unknown;
  readJournal(after: string, limit: number): Promise<JournalRecord[]>;
}

export interface ApiOptions {
  clusters: ReadonlyMap<string, ApiCluster>;
  coordinatorId: string;
  adminToken?: string | undefined;
  logger?: boolean;
}

const ClusterParams = Type.Object({ c: Type.String({ maxLength: 64 }) });
const RoutingQuery = Type.Object({ waitMs: Type.Optional(Type.Integer({ minimum: 0, maximum: 60_000 })) });
const HealthParams = Type.Object({ c: Type.String({ maxLength: 64 }), n: Type.String({ maxLength: 64 }) });
const HealthQuery = Type.Object({
  role: Type.Union([Type.Literal('primary'), Type.Literal('replica'), Type.Literal('any')], { default: 'any' }),
  maxLagMs: Type.Optional(Type.Integer({ minimum: 0 })),
  maxLagBytes: Type.Optional(Type.Integer({ minimum: 0 })),
});
const EventsQuery = Type.Object({
  after: Type.String({ default: '0-0', pattern: '^\\d+(-\\d+)?$' }),
  limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }),
  type: Type.Optional(Type.String({ maxLength: 64 })),
});

export class ApiError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export function buildApi(opts: ApiOptions): FastifyInstance {
  const app = Fastify({ logger: opts.logger ?? false, ajv: { customOptions: { coerceTypes: true, useDefaults: true, removeAdditional: false } } });

  app.setErrorHandler((err: Error & { statusCode?: number; code?: string; validation?: unknown }, _req, reply) => {
    if (err instanceof ApiError) return reply.code(err.statusCode).send({ error: err.code, message: err.message });
    if (err.validation) return reply.code(400).send({ error: 'BAD_REQUEST', message: err.message });
    const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
    return reply.code(status).send({ error: err.code ?? 'INTERNAL', message: status === 500 ? 'internal error' : err.message });
  });

  const cluster = (name: string): ApiCluster => {
    const c = opts.clusters.get(name);
    if (!c) throw new ApiError(404, 'CLUSTER_NOT_FOUND', `no cluster named ${JSON.stringify(name)}`);
    return c;
  };

  app.get('/healthz', async () => ({ ok: true, coordinator: opts.coordinatorId }));
  app.get('/readyz', async (_req, reply) => {
    const notReady = [...opts.clusters.values()].filter((c) => !c.ready).map((c) => c.name);
    if (notReady.length) return reply.code(503).send({ ok: false, notReady });
    return { ok: true };
  });

  app.get('/v1/clusters', async () =>
    [...opts.clusters.values()].map((c) => ({
      name: c.name,
      engine: c.state.engine,
      primary: c.table.primary?.id ?? null,
      generation: c.table.generation,
      paused: c.state.paused,
      leader: c.state.leader,
      servedByLeader: c.isLeader,
    })),
  );

  app.get<{ Params: Static<typeof ClusterParams>; Querystring: Static<typeof RoutingQuery> }>(
    '/v1/clusters/:c/routing',
    { schema: { params: ClusterParams, querystring: RoutingQuery } },
    async (req, reply) => {
      const c = cluster(req.params.c);
      let table = c.table;
      const inm = req.headers['if-none-match'];
      const etag = `"${table.generation}"`;
      if (inm !== undefined && matchesEtag(inm, etag)) {
        const waitMs = req.query.waitMs ?? 0;
        if (waitMs > 0) {
          const changed = await c.waitForChange(table.generation, waitMs);
          if (changed) table = changed;
        }
        if (table.generation === c.table.generation && matchesEtag(inm, `"${table.generation}"`)) {
          return reply.code(304).header('ETag', `"${table.generation}"`).header('Cache-Control', 'no-cache').send();
        }
      }
      return reply.header('ETag', `"${table.generation}"`).header('Cache-Control', 'no-cache').send(table);
    },
  );

  app.get<{ Params: Static<typeof ClusterParams> }>('/v1/clusters/:c/routing/stream', { schema: { params: ClusterParams } }, (req, reply) => {
    const c = cluster(req.params.c);
    sse(reply, c);
  });

  app.get<{ Params: Static<typeof HealthParams>; Querystring: Static<typeof HealthQuery> }>(
    '/v1/clusters/:c/nodes/:n/health',
    { schema: { params: HealthParams, querystring: HealthQuery } },
    async (req, reply) => {
      const c = cluster(req.params.c);
      const t = c.table;
      const id = req.params.n;
      if (!c.state.nodes[id]) throw new ApiError(404, 'NODE_NOT_FOUND', `no node ${JSON.stringify(id)} in cluster ${c.name}`);
      const { role, maxLagMs, maxLagBytes } = req.query;
      const isPrimary = t.primary?.id === id;
      const replica = t.replicas.find((r) => r.id === id);
      let ok = false;
      let why = '';
      if (isPrimary) {
        ok = role !== 'replica';
        why = ok ? 'primary' : 'is the primary, not a replica';
      } else if (replica?.healthy) {
        if (role === 'primary') why = 'not the primary';
        else if (maxLagMs !== undefined && (replica.lagMs === null || replica.lagMs > maxLagMs)) why = `lag ${replica.lagMs ?? 'unknown'} ms > ${maxLagMs}`;
        else if (maxLagBytes !== undefined && (replica.lagBytes === null || replica.lagBytes > maxLagBytes)) why = `lag ${replica.lagBytes ?? 'unknown'} bytes > ${maxLagBytes}`;
        else {
          ok = true;
          why = 'replica';
        }
      } else why = c.state.nodes[id]?.healthReason ?? 'unhealthy';
      return reply.code(ok ? 200 : 503).send({ ok, node: id, role: isPrimary ? 'primary' : 'replica', reason: why, generation: t.generation });
    },
  );

  app.get<{ Params: Static<typeof ClusterParams>; Querystring: Static<typeof EventsQuery> }>(
    '/v1/clusters/:c/events',
    { schema: { params: ClusterParams, querystring: EventsQuery } },
    async (req) => {
      const c = cluster(req.params.c);
      const { after, limit, type } = req.query;
      const events: Array<{ id: string; type: string; at: string; data: unknown }> = [];
      let cursor = after;
      // scan forward until `limit` matching entries or the end
      for (let rounds = 0; rounds < 50 && events.length < limit; rounds++) {
        const batch = await c.readJournal(cursor, 500);
        if (batch.length === 0) break;
        for (const r of batch) {
          cursor = r.id;
          if (!r.entry) continue;
          if (type && r.entry.type !== type) continue;
          const { type: t, at, v: _v, ...data } = r.entry;
          events.push({ id: r.id, type: t, at: new Date(at).toISOString(), data });
          if (events.length >= limit) break;
        }
      }
      return { events, next: cursor };
    },
  );

  app.get<{ Params: Static<typeof ClusterParams> }>('/v1/clusters/:c/history', { schema: { params: ClusterParams } }, async (req) => {
    const c = cluster(req.params.c);
    return c.state.history;
  });

  return app;
}

function matchesEtag(header: string | string[], etag: string): boolean {
  const values = Array.isArray(header) ? header : header.split(',');
  return values.some((v) => {
    const t = v.trim();
    return t === etag || t === `W/${etag}` || t === '*';
  });
}

function sse(reply: FastifyReply, c: ApiCluster): void {
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache', Connection: 'keep-alive', 'X-Accel-Buffering': 'no' });
  const send = (t: RoutingTable): void => {
    res.write(`event: routing\nid: ${t.generation}\ndata: ${JSON.stringify(t)}\n\n`);
  };
  send(c.table);
  const ping = setInterval(() => res.write(': ping\n\n'), 15_000);
  c.on('routing', send);
  res.on('close', () => {
    clearInterval(ping);
    c.off('routing', send);
  });
}
