/**
 * For people and their tools: Prometheus metrics, the OpenAPI document, the dashboard
 * page, and the lag history behind its chart.
 */
import { Type, type Static } from '@sinclair/typebox';
import { dashboard } from '../dashboard.js';
import { ApiError, errorResponses } from '../errors.js';
import type { collectOpenApi } from '../openapi.js';
import * as S from '../schemas.js';
import { doc } from '../schemas.js';
import type { ApiContext } from '../types.js';
import { ClusterParams } from './routing.js';

const LagQuery = Type.Object({
  after: Type.Optional(Type.String({ maxLength: 40, description: 'only samples taken after this time (ms since the epoch or ISO 8601)' })),
});

export function metaRoutes(ctx: ApiContext, openapi: ReturnType<typeof collectOpenApi>): void {
  const { app, opts, metrics, lag } = ctx;

  app.get('/metrics', { schema: doc({ summary: 'Prometheus metrics', response: { 200: S.text('text/plain', 'Prometheus text exposition format 0.0.4') } }) }, async (_req, reply) =>
    reply.header('Content-Type', metrics.contentType).header('Cache-Control', 'no-cache').send(await metrics.scrape()),
  );

  for (const url of ['/docs', '/docs/openapi.json']) {
    app.get(url, { schema: doc({ summary: 'this OpenAPI document', response: { 200: S.OpenApiDocument } }) }, async () => openapi.document());
  }

  app.get<{ Params: Static<typeof ClusterParams>; Querystring: Static<typeof LagQuery> }>(
    '/v1/clusters/:c/lag',
    {
      schema: doc({
        summary: "each replica's lag over the last 15 minutes (the dashboard's chart)",
        description: 'Samples of the routing table taken by this coordinator every intervalMs, kept in memory for windowMs: a coordinator that just started has only what it saw since. lagMs and lagBytes are null while a replica is unhealthy or its lag unknown.',
        params: ClusterParams,
        querystring: LagQuery,
        response: { 200: S.LagHistory, ...errorResponses('BAD_REQUEST', 'CLUSTER_NOT_FOUND') },
      }),
    },
    async (req) => {
      const c = ctx.cluster(req.params.c);
      const raw = req.query.after;
      let after = 0;
      if (raw !== undefined && raw !== '') {
        after = /^\d+$/.test(raw) ? Number(raw) : Date.parse(raw);
        if (!Number.isFinite(after)) throw new ApiError('BAD_REQUEST', `querystring/after ${JSON.stringify(raw)} is not a time (ms since the epoch or ISO 8601)`);
      }
      return { cluster: c.name, windowMs: lag.windowMs, intervalMs: lag.everyMs, samples: lag.since(c.name, after) };
    },
  );

  app.get('/', { schema: doc({ summary: 'the dashboard: topology, lag over time, failover history with explain, live event timeline', response: { 200: S.text('text/html', 'a self-contained page') } }) }, async (_req, reply) => {
    const page = dashboard({
      coordinatorId: opts.coordinatorId,
      readTokenRequired: Boolean(ctx.auth.opts.readToken),
      clusters: [...opts.clusters.values()].map((c) => ({ name: c.name, engine: c.state.engine, paused: c.state.paused, leader: c.state.leader, servedByLeader: c.isLeader, table: c.table })),
    });
    return reply
      .header('Content-Type', 'text/html; charset=utf-8')
      .header('Content-Security-Policy', page.csp)
      .header('Cache-Control', 'no-store')
      .header('X-Content-Type-Options', 'nosniff')
      .send(page.html);
  });
}
