/**
 * Operator commands (admin token): switchover, manual failover, pause and resume. The
 * command is queued for the leader; the request waits briefly for its answer in the
 * folded journal.
 */
import { randomBytes } from 'node:crypto';
import { Type, type Static } from '@sinclair/typebox';
import type { FastifyReply } from 'fastify';
import type { Command } from '../../events/observation.js';
import { ApiError, errorResponses } from '../errors.js';
import * as S from '../schemas.js';
import { doc } from '../schemas.js';
import type { ApiCluster, ApiContext } from '../types.js';
import { ClusterParams } from './routing.js';

const SwitchoverBody = Type.Object({ to: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })) }, { additionalProperties: false });
/** pause's optional body: `{ freezeSecs }` (a MongoDB set), checked here (the route takes no body otherwise) */
function freezeOf(body: unknown): number | undefined {
  if (body === undefined || body === null || body === '') return undefined;
  const v = typeof body === 'object' ? (body as { freezeSecs?: unknown }).freezeSecs : undefined;
  if (typeof body !== 'object' || Object.keys(body).some((k) => k !== 'freezeSecs')) throw new ApiError('BAD_REQUEST', 'body: pause takes only { "freezeSecs": N }');
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 86_400) throw new ApiError('BAD_REQUEST', `body/freezeSecs must be an integer from 1 to 86400, got ${JSON.stringify(v)}`);
  return v;
}

const FailoverBody = Type.Object({ to: Type.String({ minLength: 1, maxLength: 64 }) }, { additionalProperties: false });

/** How long an admin request waits for the leader to answer before it says 202. */
const ANSWER_WAIT_MS = 3_000;

export function adminRoutes(ctx: ApiContext): void {
  const { app, auth } = ctx;

  /** the admin token's name: journaled as who did it */
  const admin = (header: string | undefined): string => auth.admin(header);

  /** Submit a command and wait (briefly) for the journal's answer. */
  const command = async (c: ApiCluster, action: Command['action'], to: string | undefined, by: string, freezeSecs?: number): Promise<{ id: string; operationId?: string; answer: 'done' | 'rejected' | 'pending'; reason?: string }> => {
    // a body naming an unknown node is bad input (400), not an unknown resource (404)
    if (to !== undefined && !c.state.nodes[to]) {
      throw new ApiError('BAD_REQUEST', `body/to names no node of cluster ${c.name}: ${JSON.stringify(to)} (its nodes: ${Object.keys(c.state.nodes).sort().join(', ') || 'none yet'})`);
    }
    // a command's id; the operation it starts is named by the leader, one format for all: fo-N, so-N
    const id = `cmd-${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
    const cmd: Command = { type: 'command', v: 1, id, action, by, at: Date.now() };
    if (to !== undefined) cmd.to = to;
    if (freezeSecs !== undefined) cmd.freezeSecs = freezeSecs;
    await c.submit(cmd);
    const deadline = Date.now() + ANSWER_WAIT_MS;
    while (Date.now() < deadline) {
      const h = c.state.handledCommands.find((x) => x.id === id);
      if (h) return h.rejected === null ? { id, answer: 'done', ...(h.operationId !== undefined ? { operationId: h.operationId } : {}) } : { id, answer: 'rejected', reason: h.rejected };
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
    const c = ctx.cluster(req.params.c);
    const r = await command(c, action, req.body.to, by);
    if (r.answer === 'rejected') throw new ApiError('REJECTED', `${action} refused: ${r.reason}`);
    // not answered within 3 s: the leader names the operation when it starts it (null until then)
    return reply.code(202).send({ operationId: r.operationId ?? null, commandId: r.id, accepted: r.answer === 'done' });
  };

  const ADMIN = [{ adminToken: [] }];
  const adminErrors = errorResponses('BAD_REQUEST', 'UNAUTHORIZED', 'ADMIN_DISABLED', 'CLUSTER_NOT_FOUND', 'RATE_LIMITED');
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
    const summary =
      action === 'pause'
        ? 'pause automatic failover (admin); a MongoDB set also takes an optional JSON body { "freezeSecs": N }: no secondary may be elected for N s (replSetFreeze), until resume'
        : 'resume automatic failover (admin); a MongoDB set frozen by pause is unfrozen';
    const response = { 200: S.PauseState, 202: { ...S.PauseState, description: 'queued: the leader has not answered yet' }, ...adminErrors };
    app.post<{ Params: Static<typeof ClusterParams> }>(`/v1/clusters/:c/${action}`, { onRequest: adminFirst, schema: doc({ summary, security: ADMIN, params: ClusterParams, response }) }, async (req, reply) => {
      const by = admin(req.headers.authorization);
      const c = ctx.cluster(req.params.c);
      const want = action === 'pause';
      const freezeSecs = want ? freezeOf(req.body) : undefined;
      if (c.state.paused === want) return reply.code(200).send({ paused: want });
      const r = await command(c, action, undefined, by, freezeSecs);
      // (a freeze refused says why; a plain pause or resume refused answers the state as it is)
      if (r.answer === 'rejected' && freezeSecs !== undefined) throw new ApiError('REJECTED', `${action} refused: ${r.reason}`);
      if (r.answer === 'pending') return reply.code(202).send({ paused: c.state.paused, commandId: r.id });
      return reply.code(200).send({ paused: c.state.paused, commandId: r.id });
    });
  }
}
