/**
 * Health checks: the coordinator's own liveness and readiness, and a node's health in
 * a role, for HAProxy's and PgBouncer's checks.
 */
import { Type, type Static } from '@sinclair/typebox';
import { ApiError, errorResponses } from '../errors.js';
import * as S from '../schemas.js';
import { doc } from '../schemas.js';
import type { ApiContext } from '../types.js';

const HealthParams = Type.Object({ c: Type.String({ maxLength: 64 }), n: Type.String({ maxLength: 64 }) });
const HealthQuery = Type.Object({
  role: Type.Union([Type.Literal('primary'), Type.Literal('replica'), Type.Literal('any')], { default: 'any' }),
  maxLagMs: Type.Optional(Type.Integer({ minimum: 0 })),
  maxLagBytes: Type.Optional(Type.Integer({ minimum: 0 })),
});

export function healthRoutes(ctx: ApiContext): void {
  const { app, opts } = ctx;

  app.get('/healthz', { schema: doc({ summary: 'liveness', response: { 200: S.Liveness } }) }, async () => ({ ok: true, coordinator: opts.coordinatorId }));
  app.get('/readyz', { schema: doc({ summary: 'readiness: every cluster has loaded its journal', response: { 200: S.Readiness, 503: { ...S.Readiness, description: 'some clusters are not ready yet (notReady)' } } }) }, async (_req, reply) => {
    const notReady = [...opts.clusters.values()].filter((c) => !c.ready).map((c) => c.name);
    if (notReady.length) return reply.code(503).send({ ok: false, notReady });
    return { ok: true };
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
      const c = ctx.cluster(req.params.c);
      const t = c.table;
      const id = req.params.n;
      if (!c.state.nodes[id]) throw new ApiError('NODE_NOT_FOUND', `no node ${JSON.stringify(id)} in cluster ${c.name}`);
      const { role, maxLagBytes } = req.query;
      const maxLagMs = req.query.maxLagMs ?? (role === 'replica' ? opts.defaultMaxLagMs : undefined);
      if (c.fresh === false) {
        return reply.code(503).send({ ok: false, node: id, role: c.state.nodes[id]?.role ?? 'replica', reason: 'this coordinator’s view is stale (it has not read Redis recently)', generation: t.generation });
      }
      const isPrimary = t.primary?.id === id;
      const replica = t.replicas.find((r) => r.id === id);
      let ok = false;
      let why = '';
      if (isPrimary && t.primary?.draining) {
        why = 'draining: a switchover is about to demote it';
      } else if (isPrimary) {
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
}
