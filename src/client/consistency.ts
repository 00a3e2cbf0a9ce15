/**
 * Read-your-writes state, as GitLab's load balancer keeps it: after a write, the
 * primary's WAL insert LSN (read after COMMIT) and when it was taken. A later read
 * may use a replica only if its replay LSN has reached it; the mark expires after
 * `ttlMs`, and is dropped early once every replica has caught up.
 *
 * Scopes: the pool's own (default), one per request (AsyncLocalStorage), or one
 * carried across processes as a token (`consistencyToken()` / `withToken()`).
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { formatLsn, parseLsn } from '../core/lsn.js';
import { ClientError } from './errors.js';

export class ConsistencyScope {
  /** highest LSN written through this scope (null: nothing to wait for) */
  lsn: number | null = null;
  /** when the mark expires, ms since the epoch */
  expiresAt = 0;

  /** record a write: the mark only moves forward */
  wrote(lsn: number, now: number, ttlMs: number): void {
    if (this.lsn === null || lsn > this.lsn) this.lsn = lsn;
    this.expiresAt = now + ttlMs;
  }

  /** the LSN a read must see, or null (expired marks are dropped here) */
  required(now: number): number | null {
    if (this.lsn !== null && now >= this.expiresAt) this.lsn = null;
    return this.lsn;
  }

  clear(): void {
    this.lsn = null;
  }
}

export const scopes = new AsyncLocalStorage<ConsistencyScope>();

interface TokenBody {
  v: 1;
  c: string;
  l: string;
  e: number;
}

export function encodeToken(cluster: string, scope: ConsistencyScope, now: number): string {
  const lsn = scope.required(now);
  const body: TokenBody = { v: 1, c: cluster, l: lsn === null ? '' : formatLsn(lsn), e: lsn === null ? 0 : scope.expiresAt };
  return Buffer.from(JSON.stringify(body)).toString('base64url');
}

/** a token as a scope; an expired or empty token gives an empty scope */
export function decodeToken(cluster: string, token: string, now: number): ConsistencyScope {
  let body: Partial<TokenBody>;
  try {
    body = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as Partial<TokenBody>;
  } catch {
    throw new ClientError('TOKEN_INVALID', `consistency token ${JSON.stringify(token.slice(0, 40))} is not a switchyard token`);
  }
  if (body.v !== 1 || typeof body.c !== 'string' || typeof body.l !== 'string' || typeof body.e !== 'number') {
    throw new ClientError('TOKEN_INVALID', `consistency token ${JSON.stringify(token.slice(0, 40))} is malformed`);
  }
  if (body.c !== cluster) throw new ClientError('TOKEN_INVALID', `consistency token is for cluster ${JSON.stringify(body.c)}, not ${JSON.stringify(cluster)}`);
  const scope = new ConsistencyScope();
  const lsn = parseLsn(body.l);
  if (lsn !== null && body.e > now) {
    scope.lsn = lsn;
    scope.expiresAt = body.e;
  }
  return scope;
}

/** routing overrides set by the decorators for everything a method runs */
export const routeContexts = new AsyncLocalStorage<{ type?: 'read' | 'write'; requiresConsistency?: boolean }>();
