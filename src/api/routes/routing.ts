/**
 * Where to send writes and reads: the cluster list, the routing table (ETag, long
 * poll) and the table as Server-Sent Events. Answers come from the folded state only.
 */
import { Type, type Static } from '@sinclair/typebox';
import { errorResponses } from '../errors.js';
import { matchesEtag, sse, versionOf } from '../http.js';
import * as S from '../schemas.js';
import { doc } from '../schemas.js';
import type { ApiContext } from '../types.js';

export const ClusterParams = Type.Object({ c: Type.String({ maxLength: 64 }) });
const RoutingQuery = Type.Object({ waitMs: Type.Optional(Type.Integer({ minimum: 0, maximum: 60_000 })) });

export function routingRoutes(ctx: ApiContext): void {
  const { app, opts } = ctx;

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
        description: 'The ETag is the table\'s version: it changes with the generation (routing) and when a replica\'s lag moves past the hysteresis. With If-None-Match and ?waitMs=, long-polls and answers 304 when nothing changed.',
        params: ClusterParams,
        querystring: RoutingQuery,
        response: { 200: S.RoutingTable, 304: { description: 'not modified: the version is still the one in If-None-Match' }, ...errorResponses('BAD_REQUEST', 'CLUSTER_NOT_FOUND', 'STALE') },
      }),
    },
    async (req, reply) => {
      const c = ctx.routable(req.params.c);
      const inm = req.headers['if-none-match'];
      const version = versionOf(c);
      if (inm !== undefined && matchesEtag(inm, `"${version}"`)) {
        const waitMs = req.query.waitMs ?? 0;
        if (waitMs > 0) await c.waitForChange(version, waitMs);
        if (versionOf(c) === version) {
          return reply.code(304).header('ETag', `"${version}"`).header('Cache-Control', 'no-cache').send();
        }
      }
      // the table and its version read together (no await between them)
      return reply.header('ETag', `"${versionOf(c)}"`).header('Cache-Control', 'no-cache').send(c.table);
    },
  );

  app.get<{ Params: Static<typeof ClusterParams> }>(
    '/v1/clusters/:c/routing/stream',
    {
      // a HEAD would open a stream that never ends
      exposeHeadRoute: false,
      schema: doc({
        summary: 'the routing table as Server-Sent Events',
        description: 'One `routing` event (id: the table\'s version, as the ETag; data: the table as JSON) now and for every new table, lag moves past the hysteresis included; a comment every 15 s keeps the stream open.',
        params: ClusterParams,
        response: { 200: S.text('text/event-stream', 'event: routing, data: the routing table'), ...errorResponses('BAD_REQUEST', 'CLUSTER_NOT_FOUND', 'STALE') },
      }),
    },
    (req, reply) => {
      const c = ctx.routable(req.params.c);
      sse(reply, c, ctx.streams);
    },
  );
}
