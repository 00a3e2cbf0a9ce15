/**
 * API access: named admin tokens (the name is journaled as who did it), an optional
 * read token for the read routes, constant-time comparison, and a per-address rate
 * limit on admin routes. Registered from server.ts.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ApiError } from './errors.js';

export interface NamedToken {
  name: string;
  token: string;
}

export interface AuthOptions {
  /** admin tokens; none: admin routes answer 403 */
  adminTokens: NamedToken[];
  /** when set, read routes need it (or an admin token) */
  readToken?: string | undefined;
  /** admin requests per address per minute */
  adminRateLimit?: number | undefined;
}

/** Compare digests: equal length always, so neither content nor length leaks through timing. */
function same(a: string, b: string): boolean {
  return timingSafeEqual(createHash('sha256').update(a).digest(), createHash('sha256').update(b).digest());
}

function bearer(header: string | undefined): string | null {
  const m = /^Bearer (.+)$/.exec(header ?? '');
  return m ? m[1]! : null;
}

export class ApiAuth {
  private windows = new Map<string, { count: number; resetAt: number }>();

  constructor(public opts: AuthOptions) {}

  get adminEnabled(): boolean {
    return this.opts.adminTokens.length > 0;
  }

  /** The name of the admin token in the header, or an ApiError (401/403). Every token is compared. */
  admin(header: string | undefined): string {
    if (!this.adminEnabled) throw new ApiError('ADMIN_DISABLED', 'admin routes are disabled: configure adminTokens (or adminToken)');
    const given = bearer(header);
    let found: string | null = null;
    for (const t of this.opts.adminTokens) if (same(given ?? '', t.token) && given !== null) found ??= t.name;
    if (found === null) throw new ApiError('UNAUTHORIZED', 'admin routes need Authorization: Bearer <admin token>');
    return found;
  }

  /** Read routes: open unless a read token is configured; then the read token or an admin token. */
  read(header: string | undefined): void {
    const want = this.opts.readToken;
    if (!want) return;
    const given = bearer(header);
    if (given !== null && same(given, want)) return;
    if (given !== null && this.opts.adminTokens.some((t) => same(given, t.token))) return;
    throw new ApiError('UNAUTHORIZED', 'this route needs Authorization: Bearer <read token>');
  }

  /** Count an admin request from `ip`; false when over the limit this minute. */
  take(ip: string, now = Date.now()): { ok: boolean; retryAfterS: number } {
    const limit = this.opts.adminRateLimit ?? 30;
    let w = this.windows.get(ip);
    if (!w || now >= w.resetAt) {
      w = { count: 0, resetAt: now + 60_000 };
      this.windows.set(ip, w);
      if (this.windows.size > 10_000) for (const [k, v] of this.windows) if (now >= v.resetAt) this.windows.delete(k);
    }
    w.count += 1;
    return { ok: w.count <= limit, retryAfterS: Math.ceil((w.resetAt - now) / 1000) };
  }
}

/** Routes that need the read token when one is set (health checks, liveness and metrics stay open for probes). */
const READ_ROUTES = new Set([
  '/v1/clusters',
  '/v1/clusters/:c/routing',
  '/v1/clusters/:c/routing/stream',
  '/v1/clusters/:c/events',
  '/v1/clusters/:c/history',
  '/v1/clusters/:c/operations/:id',
  '/v1/clusters/:c/topology',
  '/v1/clusters/:c/lag',
]);

export function installAuth(app: FastifyInstance, auth: ApiAuth): void {
  app.addHook('onRequest', async (req: FastifyRequest, reply) => {
    const route = req.routeOptions.url ?? '';
    if (req.method === 'POST' && route.startsWith('/v1/')) {
      const r = auth.take(req.ip);
      if (!r.ok) {
        void reply.header('retry-after', String(r.retryAfterS));
        throw new ApiError('RATE_LIMITED', `more than ${auth.opts.adminRateLimit ?? 30} admin requests from ${req.ip} in a minute`);
      }
      return;
    }
    if (req.method === 'GET' && READ_ROUTES.has(route)) auth.read(req.headers.authorization);
  });
}
