/**
 * The routing API: a small Fastify app over the coordinator's in-memory state. Every
 * coordinator serves it, leader or not; answers come from folded state, never from a
 * Redis round trip on the hot path (the journal reads aside).
 *
 * This file builds the app (logging, body limit, auth, errors, metrics, the OpenAPI
 * collector) and registers the route modules in routes/: routing, health, journal
 * (events, history, explain, topology), admin (operator commands) and meta (metrics,
 * docs, dashboard, lag history). http.ts holds the ETag and SSE helpers.
 */
import Fastify, { LogController, type FastifyInstance, type FastifyReply, type FastifyBaseLogger } from 'fastify';
import type { ServerResponse } from 'node:http';
import { ApiAuth, installAuth } from './auth.js';
import { ApiError, ERRORS, isErrorCode, validationMessage, type AjvLikeError, type ErrorCode } from './errors.js';
import { LagHistory } from './lag-history.js';
import { installMetrics } from './metrics.js';
import { collectOpenApi } from './openapi.js';
import { adminRoutes } from './routes/admin.js';
import { healthRoutes } from './routes/health.js';
import { journalRoutes } from './routes/journal.js';
import { metaRoutes } from './routes/meta.js';
import { routingRoutes } from './routes/routing.js';
import * as S from './schemas.js';
import type { ApiCluster, ApiContext, ApiOptions } from './types.js';

export { ApiError } from './errors.js';
export type { ApiCluster, ApiOptions } from './types.js';

export function buildApi(opts: ApiOptions): FastifyInstance {
  // (request logging off through a LogController: the top-level disableRequestLogging is deprecated, FSTDEP023)
  const logging = opts.loggerInstance ? { loggerInstance: opts.loggerInstance as FastifyBaseLogger, logController: new LogController({ disableRequestLogging: true }) } : { logger: opts.logger ?? false };
  const app: FastifyInstance = Fastify({ ...logging, bodyLimit: opts.bodyLimit ?? 16_384, ajv: { customOptions: { coerceTypes: true, useDefaults: true, removeAdditional: false } } });
  // before any route: the OpenAPI document is collected from the routes as they register
  const openapi = collectOpenApi(
    app,
    { title: 'switchyard routing API', version: '1', description: `Coordinator ${opts.coordinatorId}: where to send writes and reads, the journal, and operator commands.` },
    S.COMPONENTS,
  );
  const metrics = installMetrics(app, opts.clusters);
  const auth = opts.auth instanceof ApiAuth ? opts.auth : new ApiAuth({ ...opts.auth, adminTokens: [...(opts.adminToken ? [{ name: 'admin', token: opts.adminToken }] : []), ...(opts.auth?.adminTokens ?? [])] });
  installAuth(app, auth);
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

  // the dashboard's lag chart: sampled while the app listens
  const lag = new LagHistory(opts.clusters, { everyMs: opts.lagSampleMs });
  app.addHook('onReady', (done) => {
    lag.start();
    done();
  });
  app.addHook('onClose', (_app, done) => {
    lag.stop();
    done();
  });

  const cluster = (name: string): ApiCluster => {
    const c = opts.clusters.get(name);
    if (!c) throw new ApiError('CLUSTER_NOT_FOUND', `no cluster named ${JSON.stringify(name)}`);
    return c;
  };
  const ctx: ApiContext = {
    app,
    opts,
    auth,
    metrics,
    lag,
    streams,
    cluster,
    /** the routing answers (table, stream, health checks) come only from a fresh view */
    routable(name) {
      const c = cluster(name);
      if (c.fresh === false) throw new ApiError('STALE', `coordinator ${opts.coordinatorId} has not read cluster ${c.name}'s streams recently (Redis unreachable?): ask another coordinator`);
      return c;
    },
  };

  healthRoutes(ctx);
  routingRoutes(ctx);
  journalRoutes(ctx);
  adminRoutes(ctx);
  metaRoutes(ctx, openapi);
  return app;
}
