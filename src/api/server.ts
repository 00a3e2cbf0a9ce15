/**
 * The routing API: a small Fastify app over the coordinator's in-memory state. Every
 * coordinator serves it, leader or not; answers come from folded state, never from a
 * Redis round trip on the hot path (the journal reads aside).
 */
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyBaseLogger } from 'fastify';
import { Type, type Static } from '@sinclair/typebox';
import type { JournalRecord } from '../bus/journal.js';
import type { RoutingTable } from '../core/routing.js';
import { timingSafeEqual, randomBytes } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { evolve } from '../core/evolve.js';
import { routingTable as project } from '../core/routing.js';
import { compareStreamIds, initialState, type ClusterState } from '../core/state.js';
import type { Command } from '../events/observation.js';
import { dashboard } from './dashboard.js';
import { ApiError, ERRORS, errorResponses, isErrorCode, validationMessage, type AjvLikeError, type ErrorCode } from './errors.js';
import { installMetrics } from './metrics.js';
import { collectOpenApi } from './openapi.js';
import * as S from './schemas.js';
import { doc } from './schemas.js';

export { ApiError } from './errors.js';

export interface ApiCluster {
  readonly name: string;
  readonly state: ClusterState;
  readonly table: RoutingTable;
  readonly isLeader: boolean;
  readonly ready: boolean;
  /** has it read the streams recently? A stale view must not route writes */
  readonly fresh?: boolean;
  waitForChange(generation: number, ms: number): Promise<RoutingTable | null>;
  on(event: 'routing', fn: (t: RoutingTable) => void): unknown;
  off(event: 'routing', fn: (t: RoutingTable) => void): unknown;
  readJournal(after: string, limit: number): Promise<JournalRecord[]>;
  /** queue an operator's command; the leader carries it out */
  submit(command: Command): Promise<string>;
}

export interface ApiOptions {
  clusters: ReadonlyMap<string, ApiCluster>;
  coordinatorId: string;
  adminToken?: string | undefined;
  logger?: boolean;
  /** a pino logger for the app's own errors (request logging stays off) */
  loggerInstance?: import('pino').Logger;
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

const SwitchoverBody = Type.Object({ to: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })) }, { additionalProperties: false });
const FailoverBody = Type.Object({ to: Type.String({ minLength: 1, maxLength: 64 }) }, { additionalProperties: false });
const OpParams = Type.Object({ c: Type.String({ maxLength: 64 }), id: Type.String({ maxLength: 128 }) });
const TopologyQuery = Type.Object({ at: Type.Optional(Type.String({ maxLength: 40, description: 'a stream id (1795669845922-0) or a time (ISO 8601 or ms)' })) });

/** How long an admin request waits for the leader to answer before it says 202. */
const ANSWER_WAIT_MS = 3_000;

export function buildApi(opts: ApiOptions): FastifyInstance {
  const logging = opts.loggerInstance ? { loggerInstance: opts.loggerInstance as FastifyBaseLogger, disableRequestLogging: true } : { logger: opts.logger ?? false };
  const app: FastifyInstance = Fastify({ ...logging, ajv: { customOptions: { coerceTypes: true, useDefaults: true, removeAdditional: false } } });
  // before any route: the OpenAPI document is collected from the routes as they register
  const openapi = collectOpenApi(
    app,
    { title: 'switchyard routing API', version: '1', description: `Coordinator ${opts.coordinatorId}: where to send writes and reads, the journal, and operator commands.` },
    S.COMPONENTS,
  );
  const metrics = installMetrics(app, opts.clusters);
  // response schemas document the answers; they must never reshape them (see schemas.ts)
  app.setSerializerCompiler(() => (data) => JSON.stringify(data));

  const fail = (reply: FastifyReply, code: ErrorCode, message: string): FastifyReply => reply.code(ERRORS[code].status).send({ error: code, message });

  app.setErrorHandler((err: Error & { statusCode?: number; code?: string; validation?: AjvLikeError[]; validationContext?: string }, req, reply) => {
    if (err instanceof ApiError) return fail(reply, err.code, err.message);
    if (err.validation) return fail(reply, 'BAD_REQUEST', validationMessage(err.validation, err.validationContext));
    const status = err.statusCode ?? 500;
    if (status >= 400 && status < 500) {
      // Fastify's own client errors (bad JSON, body too large, wrong content type, …)
      const code: ErrorCode = isErrorCode(err.code) ? err.code : status === 413 ? 'PAYLOAD_TOO_LARGE' : status === 415 ? 'UNSUPPORTED_MEDIA_TYPE' : 'BAD_REQUEST';
      return fail(reply, code, err.code?.startsWith('FST_ERR_CTP_') ? `body: ${err.message}` : err.message);
    }
    req.log.error({ err }, 'API request failed');
    return fail(reply, 'INTERNAL', 'internal error');
  });
  // open event streams would keep close() waiting for as long as a client (say, a
  // dashboard tab) stays: end them first
  const streams = new Set<ServerResponse>();
  app.addHook('preClose', (done) => {
    for (const res of streams) res.end();
    done();
  });
  app.setNotFoundHandler((req, reply) => fail(reply, 'ROUTE_NOT_FOUND', `no route ${req.method} ${req.url.split('?')[0]}`));

  const cluster = (name: string): ApiCluster => {
    const c = opts.clusters.get(name);
    if (!c) throw new ApiError('CLUSTER_NOT_FOUND', `no cluster named ${JSON.stringify(name)}`);
    return c;
  };
  /** the routing answers (table, stream, health checks) come only from a fresh view */
  const routable = (name: string): ApiCluster => {
    const c = cluster(name);
    if (c.fresh === false) throw new ApiError('STALE', `coordinator ${opts.coordinatorId} has not read cluster ${c.name}'s streams recently (Redis unreachable?): ask another coordinator`);
    return c;
  };

  app.get('/healthz', { schema: doc({ summary: 'liveness', response: { 200: S.Liveness } }) }, async () => ({ ok: true, coordinator: opts.coordinatorId }));
  app.get('/readyz', { schema: doc({ summary: 'readiness: every cluster has loaded its journal', response: { 200: S.Readiness, 503: { ...S.Readiness, description: 'some clusters are not ready yet (notReady)' } } }) }, async (_req, reply) => {
    const notReady = [...opts.clusters.values()].filter((c) => !c.ready).map((c) => c.name);
    if (notReady.length) return reply.code(503).send({ ok: false, notReady });
    return { ok: true };
  });

  app.get('/v1/clusters', { schema: doc({ summary: 'the clusters this coordinator serves', response: { 200: S.ClusterList } }) }, async () =>
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
    {
      schema: doc({
        summary: 'the routing table',
        description: 'With If-None-Match: "<generation>" and ?waitMs=, long-polls and answers 304 when nothing changed.',
        params: ClusterParams,
        querystring: RoutingQuery,
        response: { 200: S.RoutingTable, 304: { description: 'not modified: the generation is still the one in If-None-Match' }, ...errorResponses('BAD_REQUEST', 'CLUSTER_NOT_FOUND', 'STALE') },
      }),
    },
    async (req, reply) => {
      const c = routable(req.params.c);
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

  app.get<{ Params: Static<typeof ClusterParams> }>('/v1/clusters/:c/routing/stream',
    {
      // a HEAD would open a stream that never ends
      exposeHeadRoute: false,
      schema: doc({
        summary: 'the routing table as Server-Sent Events',
        description: 'One `routing` event (id: the generation, data: the table as JSON) now and for every new table; a comment every 15 s keeps the stream open.',
        params: ClusterParams,
        response: { 200: S.text('text/event-stream', 'event: routing, data: the routing table'), ...errorResponses('BAD_REQUEST', 'CLUSTER_NOT_FOUND', 'STALE') },
      }),
    },
    (req, reply) => {
    const c = routable(req.params.c);
    sse(reply, c, streams);
  });

  app.get<{ Params: Static<typeof HealthParams>; Querystring: Static<typeof HealthQuery> }>(
    '/v1/clusters/:c/nodes/:n/health',
    {
      schema: doc({
        summary: "a node's health, for HAProxy and PgBouncer checks",
        params: HealthParams,
        querystring: HealthQuery,
        response: { 200: S.HealthAnswer, 503: { ...S.HealthAnswer, description: 'not usable in that role (reason says why)' }, ...errorResponses('BAD_REQUEST', 'CLUSTER_NOT_FOUND', 'NODE_NOT_FOUND') },
      }),
    },
    async (req, reply) => {
      const c = cluster(req.params.c);
      const t = c.table;
      const id = req.params.n;
      if (!c.state.nodes[id]) throw new ApiError('NODE_NOT_FOUND', `no node ${JSON.stringify(id)} in cluster ${c.name}`);
      const { role, maxLagMs, maxLagBytes } = req.query;
      if (c.fresh === false) {
        return reply.code(503).send({ ok: false, node: id, role: c.state.nodes[id]?.role ?? 'replica', reason: 'this coordinator’s view is stale (it has not read Redis recently)', generation: t.generation });
      }
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
      return reply.code(ok ? 200 : 503).send({ ok, node: id, role: isPrimary ? 'primary' : (c.state.nodes[id]?.role ?? 'replica'), reason: why, generation: t.generation });
    },
  );

  app.get<{ Params: Static<typeof ClusterParams>; Querystring: Static<typeof EventsQuery> }>(
    '/v1/clusters/:c/events',
    {
      schema: doc({
        summary: 'the journal, a page at a time',
        params: ClusterParams,
        querystring: EventsQuery,
        response: { 200: S.EventsPage, ...errorResponses('BAD_REQUEST', 'CLUSTER_NOT_FOUND') },
      }),
    },
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

  app.get<{ Params: Static<typeof ClusterParams> }>('/v1/clusters/:c/history',
    { schema: doc({ summary: 'failovers and switchovers', params: ClusterParams, response: { 200: S.History, ...errorResponses('BAD_REQUEST', 'CLUSTER_NOT_FOUND') } }) },
    async (req) => {
    const c = cluster(req.params.c);
    return c.state.history;
  });

  /* ------------------------------------------------------------- admin */

  const admin = (auth: string | undefined): string => {
    if (!opts.adminToken) throw new ApiError('ADMIN_DISABLED', 'admin routes are disabled: configure adminToken');
    const m = /^Bearer (.+)$/.exec(auth ?? '');
    const given = Buffer.from(m?.[1] ?? '');
    const want = Buffer.from(opts.adminToken);
    if (!m || given.length !== want.length || !timingSafeEqual(given, want)) throw new ApiError('UNAUTHORIZED', 'admin routes need Authorization: Bearer <adminToken>');
    return 'api';
  };

  /** Submit a command and wait (briefly) for the journal's answer. */
  const command = async (c: ApiCluster, action: Command['action'], to: string | undefined, by: string): Promise<{ id: string; answer: 'done' | 'rejected' | 'pending'; reason?: string }> => {
    // a body naming an unknown node is bad input (400), not an unknown resource (404)
    if (to !== undefined && !c.state.nodes[to]) throw new ApiError('BAD_REQUEST', `body/to names no node of cluster ${c.name}: ${JSON.stringify(to)}`);
    const prefix = { pause: 'pause', resume: 'resume', switchover: 'so', failover: 'mf' }[action];
    const id = `${prefix}-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
    const cmd: Command = { type: 'command', v: 1, id, action, by, at: Date.now() };
    if (to !== undefined) cmd.to = to;
    await c.submit(cmd);
    const deadline = Date.now() + ANSWER_WAIT_MS;
    while (Date.now() < deadline) {
      const h = c.state.handledCommands.find((x) => x.id === id);
      if (h) return h.rejected === null ? { id, answer: 'done' } : { id, answer: 'rejected', reason: h.rejected };
      await new Promise((r) => setTimeout(r, 20));
    }
    return { id, answer: 'pending' };
  };

  /** the token is checked before the body is validated: no field details without it */
  const adminFirst = async (req: { headers: { authorization?: string } }): Promise<void> => {
    admin(req.headers.authorization);
  };

  const operation = (action: 'switchover' | 'failover') => async (req: { params: { c: string }; body: { to?: string }; headers: { authorization?: string } }, reply: FastifyReply) => {
    const by = admin(req.headers.authorization);
    const c = cluster(req.params.c);
    const r = await command(c, action, req.body.to, by);
    if (r.answer === 'rejected') throw new ApiError('REJECTED', `${action} refused: ${r.reason}`);
    return reply.code(202).send({ operationId: r.id, accepted: r.answer === 'done' });
  };

  const ADMIN = [{ adminToken: [] }];
  const adminErrors = errorResponses('BAD_REQUEST', 'UNAUTHORIZED', 'ADMIN_DISABLED', 'CLUSTER_NOT_FOUND');
  const operationResponses = { 202: S.OperationAccepted, ...adminErrors, ...errorResponses('REJECTED') };
  app.post<{ Params: Static<typeof ClusterParams>; Body: Static<typeof SwitchoverBody> }>(
    '/v1/clusters/:c/switchover',
    { onRequest: adminFirst, schema: doc({ summary: 'planned switchover, to a node or the best candidate (admin)', security: ADMIN, params: ClusterParams, body: SwitchoverBody, response: operationResponses }) },
    operation('switchover'),
  );
  app.post<{ Params: Static<typeof ClusterParams>; Body: Static<typeof FailoverBody> }>(
    '/v1/clusters/:c/failover',
    { onRequest: adminFirst, schema: doc({ summary: 'manual failover to a node, when the primary is down (admin)', security: ADMIN, params: ClusterParams, body: FailoverBody, response: operationResponses }) },
    operation('failover'),
  );

  for (const action of ['pause', 'resume'] as const) {
    const summary = action === 'pause' ? 'pause automatic failover (admin)' : 'resume automatic failover (admin)';
    const response = { 200: S.PauseState, 202: { ...S.PauseState, description: 'queued: the leader has not answered yet' }, ...adminErrors };
    app.post<{ Params: Static<typeof ClusterParams> }>(`/v1/clusters/:c/${action}`, { onRequest: adminFirst, schema: doc({ summary, security: ADMIN, params: ClusterParams, response }) }, async (req, reply) => {
      const by = admin(req.headers.authorization);
      const c = cluster(req.params.c);
      const want = action === 'pause';
      if (c.state.paused === want) return reply.code(200).send({ paused: want });
      const r = await command(c, action, undefined, by);
      if (r.answer === 'pending') return reply.code(202).send({ paused: c.state.paused, commandId: r.id });
      return reply.code(200).send({ paused: c.state.paused, commandId: r.id });
    });
  }

  /* --------------------------------------------------- explain, time travel */

  app.get<{ Params: Static<typeof OpParams> }>('/v1/clusters/:c/operations/:id',
    { schema: doc({ summary: 'explain an operation: its history item, evidence and journal entries', params: OpParams, response: { 200: S.OperationExplain, ...errorResponses('BAD_REQUEST', 'CLUSTER_NOT_FOUND', 'OPERATION_NOT_FOUND') } }) },
    async (req) => {
    const c = cluster(req.params.c);
    const item = c.state.history.find((h) => h.id === req.params.id);
    if (!item) throw new ApiError('OPERATION_NOT_FOUND', `no operation ${JSON.stringify(req.params.id)} in the history of ${c.name}`);
    const from = `${Math.max(0, Date.parse(item.startedAt) - 60_000)}-0`;
    const entries: Array<{ id: string; type: string; at: string; data: unknown }> = [];
    let cursor = from;
    for (let rounds = 0; rounds < 20; rounds++) {
      const batch = await c.readJournal(cursor, 1000);
      if (batch.length === 0) break;
      for (const r of batch) {
        cursor = r.id;
        const e = r.entry as (Record<string, unknown> & { type: string; at: number }) | null;
        if (!e || (e.operationId !== item.id && e.commandId !== item.id)) continue;
        const { type, at, v: _v, ...data } = e;
        entries.push({ id: r.id, type, at: new Date(at).toISOString(), data });
      }
      if (item.finishedAt && compareStreamIds(cursor, `${Date.parse(item.finishedAt) + 60_000}-0`) > 0) break;
    }
    const started = entries.find((e) => e.type === 'failover.started')?.data as { evidence?: unknown } | undefined;
    return { operation: item, evidence: started?.evidence ?? [], entries };
  });

  app.get<{ Params: Static<typeof ClusterParams>; Querystring: Static<typeof TopologyQuery> }>(
    '/v1/clusters/:c/topology',
    {
      schema: doc({
        summary: 'the topology and routing table as of a point in the journal',
        params: ClusterParams,
        querystring: TopologyQuery,
        response: { 200: S.TopologyAt, ...errorResponses('BAD_REQUEST', 'CLUSTER_NOT_FOUND') },
      }),
    },
    async (req) => {
      const c = cluster(req.params.c);
      const until = parseAt(req.query.at);
      let s = initialState(c.name, c.state.engine);
      let cursor = '0-0';
      for (;;) {
        const batch = await c.readJournal(cursor, 1000);
        if (batch.length === 0) break;
        let done = false;
        for (const r of batch) {
          if (until && compareStreamIds(r.id, until) > 0) {
            done = true;
            break;
          }
          cursor = r.id;
          if (r.entry) s = evolve(s, { kind: 'journal', id: r.id, entry: r.entry });
        }
        if (done) break;
      }
      const { soft: _soft, commands: _c, handledCommands: _h, ...topology } = s;
      return { at: cursor, topology, routing: project(s) };
    },
  );

  /* ------------------------------------------------ metrics, docs, dashboard */

  app.get('/metrics', { schema: doc({ summary: 'Prometheus metrics', response: { 200: S.text('text/plain', 'Prometheus text exposition format 0.0.4') } }) }, async (_req, reply) =>
    reply.header('Content-Type', metrics.contentType).header('Cache-Control', 'no-cache').send(await metrics.scrape()),
  );

  for (const url of ['/docs', '/docs/openapi.json']) {
    app.get(url, { schema: doc({ summary: 'this OpenAPI document', response: { 200: S.OpenApiDocument } }) }, async () => openapi.document());
  }

  app.get('/', { schema: doc({ summary: 'the dashboard: topology, lag, live event timeline', response: { 200: S.text('text/html', 'a self-contained page') } }) }, async (_req, reply) => {
    const page = dashboard({
      coordinatorId: opts.coordinatorId,
      clusters: [...opts.clusters.values()].map((c) => ({ name: c.name, engine: c.state.engine, paused: c.state.paused, leader: c.state.leader, servedByLeader: c.isLeader, table: c.table })),
    });
    return reply
      .header('Content-Type', 'text/html; charset=utf-8')
      .header('Content-Security-Policy', page.csp)
      .header('Cache-Control', 'no-store')
      .header('X-Content-Type-Options', 'nosniff')
      .send(page.html);
  });

  return app;
}

/** `?at=` as a stream id: a stream id as is, a time (ISO or ms) as the last id of that ms. */
function parseAt(at: string | undefined): string | null {
  if (!at) return null;
  if (/^\d+-\d+$/.test(at)) return at;
  const ms = /^\d+$/.test(at) ? Number(at) : Date.parse(at);
  if (!Number.isFinite(ms)) throw new ApiError('BAD_REQUEST', `querystring/at ${JSON.stringify(at)} is neither a stream id nor a time`);
  return `${ms}-${Number.MAX_SAFE_INTEGER}`;
}

function matchesEtag(header: string | string[], etag: string): boolean {
  const values = Array.isArray(header) ? header : header.split(',');
  return values.some((v) => {
    const t = v.trim();
    return t === etag || t === `W/${etag}` || t === '*';
  });
}

function sse(reply: FastifyReply, c: ApiCluster, streams: Set<ServerResponse>): void {
  reply.hijack();
  const res = reply.raw;
  streams.add(res);
  res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache', Connection: 'keep-alive', 'X-Accel-Buffering': 'no' });
  const send = (t: RoutingTable): void => {
    res.write(`event: routing\nid: ${t.generation}\ndata: ${JSON.stringify(t)}\n\n`);
  };
  send(c.table);
  const ping = setInterval(() => res.write(': ping\n\n'), 15_000);
  c.on('routing', send);
  res.on('close', () => {
    streams.delete(res);
    clearInterval(ping);
    c.off('routing', send);
  });
}
