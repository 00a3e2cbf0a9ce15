/** The pool's one reading of node-postgres's `query` overloads, and the options' checks (pure: no servers). */
import { describe, expect, it } from 'vitest';
import { parseQueryArgs, settle } from '../../src/client/args.js';
import { nodeConfig, resolveOptions } from '../../src/client/options.js';

describe('parseQueryArgs', () => {
  const cb = (): void => {};

  it('reads (text), (text, values), (text, values, callback) and (text, callback)', () => {
    expect(parseQueryArgs(['SELECT 1'], 'p')).toEqual({ kind: 'statement', query: 'SELECT 1', values: undefined, route: undefined, cb: undefined });
    expect(parseQueryArgs(['SELECT $1', [1]], 'p')).toEqual({ kind: 'statement', query: 'SELECT $1', values: [1], route: undefined, cb: undefined });
    expect(parseQueryArgs(['SELECT $1', [1], cb], 'p')).toMatchObject({ kind: 'statement', values: [1], cb });
    expect(parseQueryArgs(['SELECT 1', cb], 'p')).toMatchObject({ kind: 'statement', values: undefined, cb });
  });

  it('takes the routing overrides out of a query config, and leaves the rest for node-postgres', () => {
    const q = parseQueryArgs([{ text: 'SELECT 1', values: [2], rowMode: 'array', route: { preferredNode: 'pg2' } }], 'p');
    expect(q).toEqual({ kind: 'statement', query: { text: 'SELECT 1', values: [2], rowMode: 'array' }, values: undefined, route: { preferredNode: 'pg2' }, cb: undefined });
    const plain = { text: 'SELECT 1', name: 'one' };
    expect(parseQueryArgs([plain, cb], 'p')).toEqual({ kind: 'statement', query: plain, values: undefined, route: undefined, cb });
  });

  it('passes a Submittable through, and names the bad argument otherwise', () => {
    const cursor = { submit: () => {} };
    expect(parseQueryArgs([cursor], 'p')).toEqual({ kind: 'submittable', submittable: cursor });
    for (const [bad, what] of [[null, 'null'], [42, 'number'], [{ nope: 1 }, 'object'], [undefined, 'undefined']] as const) {
      const q = parseQueryArgs([bad], 'ReplicatedPool');
      expect(q.kind).toBe('invalid');
      if (q.kind === 'invalid') expect(q.error.message).toBe(`ReplicatedPool.query: expected SQL text or a query config, got ${what}`);
    }
  });

  it('settle: a promise without a callback, the callback with one', async () => {
    const res = { rows: [] } as never;
    await expect(settle(Promise.resolve(res), undefined)).resolves.toBe(res);
    const got = await new Promise<unknown[]>((resolve) => {
      expect(settle(Promise.reject(new Error('boom')), (err, r) => resolve([err?.message, r]))).toBeUndefined();
    });
    expect(got).toEqual(['boom', undefined]);
  });
});

describe('resolveOptions', () => {
  const base = { routing: 'http://127.0.0.1:7400', cluster: 'c' };

  it('fills in the defaults; an option given as undefined keeps its default', () => {
    const o = resolveOptions({ ...base, readPreference: undefined, holdWritesMs: 100 });
    expect(o).toMatchObject({ readPreference: 'secondaryPreferred', loadBalancing: 'round-robin', holdWritesMs: 100, staleAfterMs: 5000, keepWarm: true, transport: 'sse', refreshMs: 1000, urls: ['http://127.0.0.1:7400'], breakerOptions: { failures: 3, openMs: 2000 } });
  });

  it('names the option and the value it refuses', () => {
    expect(() => resolveOptions({ ...base, routing: [] })).toThrow(/routing: expected one or more http\(s\) URLs, got \[\]/);
    expect(() => resolveOptions({ ...base, routing: 'ftp://x' })).toThrow(/routing: .*"ftp:\/\/x"/);
    expect(() => resolveOptions({ ...base, cluster: '' })).toThrow(/cluster: expected a cluster name, got ""/);
    expect(() => resolveOptions({ ...base, readPreference: 'nearby' as never })).toThrow(/readPreference: "nearby" is not one of/);
    expect(() => resolveOptions({ ...base, loadBalancing: 'fastest' as never })).toThrow(/loadBalancing: "fastest" is not one of/);
    expect(() => resolveOptions({ ...base, holdWritesMs: -1 })).toThrow(/holdWritesMs: expected a number ≥ 0, got -1/);
    expect(() => resolveOptions({ ...base, transport: 'ws' as never })).toThrow(/transport: expected 'sse' or 'poll', got "ws"/);
  });

  it('a node pool keeps one warm connection unless keepWarm is off, with the role\'s timeouts', () => {
    const o = resolveOptions({ ...base, max: 4, timeouts: { primary: { connectMs: 700, statementMs: 900 } } });
    expect(nodeConfig(o, 'primary')).toMatchObject({ max: 4, min: 1, connectionTimeoutMillis: 700, query_timeout: 900 });
    expect(nodeConfig(o, 'replica')).toMatchObject({ max: 4, min: 1, connectionTimeoutMillis: 5000 });
    expect(nodeConfig(resolveOptions({ ...base, keepWarm: false }), 'replica').min).toBeUndefined();
  });
});
