/**
 * Request scopes for read-your-writes, and method decorators.
 *
 * - `switchyardFastify(db, opts)`: a Fastify plugin; each request runs in its own
 *   read-your-writes scope, seeded from the request's consistency token (header
 *   `x-switchyard-token` by default), and the reply carries the new token after a write.
 * - `requestScope(db, opts)`: the same as an Express-style `(req, res, next)` middleware.
 * - `@readOnly`, `@writes`, `@consistentRead`: TypeScript standard decorators that route
 *   every statement of the method (and of what it awaits) as reads, as writes, or as
 *   reads that must see every committed write (the primary).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ConsistencyScope, decodeToken, routeContexts, scopes } from './consistency.js';
import type { QueryContext, ReplicatedPool } from './pool.js';

export interface ScopeOptions {
  /** request header carrying the token in, and response header carrying it out (default `x-switchyard-token`) */
  header?: string;
}

interface PoolLike {
  consistencyToken(): string;
  readonly cluster: string;
}

function scopeFor(db: ReplicatedPool, token: string | string[] | undefined): ConsistencyScope {
  const t = Array.isArray(token) ? token[0] : token;
  if (!t) return new ConsistencyScope();
  try {
    return decodeToken((db as unknown as PoolLike).cluster, t, Date.now());
  } catch {
    // a bad or foreign token only loses read-your-writes, never the request
    return new ConsistencyScope();
  }
}

interface FastifyLike {
  addHook(name: 'onRequest', fn: (req: { headers: IncomingMessage['headers'] }, reply: unknown, done: () => void) => void): unknown;
  addHook(name: 'onSend', fn: (req: unknown, reply: { header(k: string, v: string): unknown }, payload: unknown, done: (err: null, payload: unknown) => void) => void): unknown;
}

/** A Fastify plugin (not encapsulated: it applies to the whole app): one read-your-writes scope per request. */
export function switchyardFastify(db: ReplicatedPool, opts: ScopeOptions = {}): (app: FastifyLike, _o: unknown, done: () => void) => void {
  const header = (opts.header ?? 'x-switchyard-token').toLowerCase();
  const plugin = (app: FastifyLike, _o: unknown, done: () => void): void => {
    app.addHook('onRequest', (req, _reply, next) => {
      scopes.run(scopeFor(db, req.headers[header]), next);
    });
    app.addHook('onSend', (_req, reply, payload, next) => {
      const s = scopes.getStore();
      if (s && s.lsn !== null) reply.header(header, db.consistencyToken());
      next(null, payload);
    });
    done();
  };
  (plugin as unknown as Record<symbol, unknown>)[Symbol.for('skip-override')] = true;
  return plugin;
}

/** An Express/Connect-style middleware: one read-your-writes scope per request; the response carries the token after a write. */
export function requestScope(db: ReplicatedPool, opts: ScopeOptions = {}): (req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void) => void {
  const header = (opts.header ?? 'x-switchyard-token').toLowerCase();
  return (req, res, next) => {
    const scope = scopeFor(db, req.headers[header]);
    // eslint-disable-next-line @typescript-eslint/unbound-method
    const writeHead = res.writeHead;
    // the token goes out with the headers, whenever the handler sends them
    res.writeHead = function (this: ServerResponse, ...args: Parameters<ServerResponse['writeHead']>) {
      if (scope.lsn !== null && !res.headersSent) res.setHeader(header, scopes.run(scope, () => db.consistencyToken()));
      return writeHead.apply(this, args);
    } as ServerResponse['writeHead'];
    scopes.run(scope, () => next());
  };
}

function routeWith<This, A extends unknown[], R>(ctx: QueryContext) {
  return (target: (this: This, ...args: A) => R, _context: ClassMethodDecoratorContext<This, (this: This, ...args: A) => R>) =>
    function (this: This, ...args: A): R {
      return routeContexts.run(ctx, () => target.apply(this, args));
    };
}

/** Every statement of the method is routed as a read (per the pool's read preference). */
export const readOnly = routeWith<unknown, unknown[], unknown>({ type: 'read' }) as <This, A extends unknown[], R>(target: (this: This, ...args: A) => R, context: ClassMethodDecoratorContext<This, (this: This, ...args: A) => R>) => (this: This, ...args: A) => R;
/** Every statement of the method goes to the primary. */
export const writes = routeWith<unknown, unknown[], unknown>({ type: 'write' }) as typeof readOnly;
/** Reads of the method must see every committed write: they go to the primary. */
export const consistentRead = routeWith<unknown, unknown[], unknown>({ requiresConsistency: true }) as typeof readOnly;
