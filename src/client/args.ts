/**
 * node-postgres's `query` overloads, read once for the pool and its clients:
 * `(text, values?, callback?)`, `(config, callback?)` and a Submittable (cursor, stream).
 */
import type pg from 'pg';
import type { QueryContext } from './options.js';

export type Callback = (err: Error | null, res?: pg.QueryResult) => void;
export type QueryConfigWithRoute = pg.QueryConfig & { route?: QueryContext };

export type QueryArgs =
  | { kind: 'submittable'; submittable: pg.Submittable }
  | { kind: 'statement'; query: string | pg.QueryConfig; values: unknown[] | undefined; route: QueryContext | undefined; cb: Callback | undefined }
  | { kind: 'invalid'; error: TypeError; cb: Callback | undefined };

export function parseQueryArgs(args: unknown[], who: string): QueryArgs {
  const [a, b, c] = args as [unknown, unknown, unknown];
  let values: unknown[] | undefined;
  let cb: Callback | undefined;
  if (typeof b === 'function') cb = b as Callback;
  else {
    values = b as unknown[] | undefined;
    if (typeof c === 'function') cb = c as Callback;
  }
  if (typeof a === 'string') return { kind: 'statement', query: a, values, route: undefined, cb };
  if (a && typeof a === 'object') {
    if (typeof (a as { submit?: unknown }).submit === 'function') return { kind: 'submittable', submittable: a as pg.Submittable };
    const cfg = a as QueryConfigWithRoute;
    if (typeof cfg.text === 'string') {
      if (!cfg.route) return { kind: 'statement', query: cfg, values, route: undefined, cb };
      // the routing overrides are ours: node-postgres never sees them
      const { route, ...rest } = cfg;
      return { kind: 'statement', query: rest, values, route, cb };
    }
  }
  return { kind: 'invalid', error: new TypeError(`${who}.query: expected SQL text or a query config, got ${a === null ? 'null' : typeof a}`), cb };
}

/** A promise, or (given a callback) nothing: the callback gets the outcome. */
export function settle(p: Promise<pg.QueryResult>, cb: Callback | undefined): Promise<pg.QueryResult> | undefined {
  if (!cb) return p;
  p.then((r) => cb(null, r), (e: Error) => cb(e));
  return undefined;
}
