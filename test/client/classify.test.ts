/**
 * The query classifier against its corpus (test/client/classify-corpus.json): every
 * case's kind, reason and stickiness. Pure: no server (the corpus is checked against a
 * real hot standby in classify-standby.test.ts).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { loadCorpus } from './corpus.js';
import { CACHE_SIZE, classifierCacheSize, classifyQuery, clearClassifierCache, initClassifier } from '../../src/client/classify.js';

const corpus = loadCorpus();

describe('classifyQuery', () => {
  beforeAll(async () => {
    await initClassifier();
  });

  it('has a corpus of at least 150 statements, each with a kind and a reason', () => {
    expect(corpus.cases.length).toBeGreaterThanOrEqual(150);
    for (const c of corpus.cases) {
      expect(['read', 'write']).toContain(c.kind);
      expect(c.reason.length).toBeGreaterThan(0);
      if (c.kind === 'write') expect(c.standby, c.sql).toBeDefined();
    }
    expect(new Set(corpus.cases.map((c) => `${c.sql}\u0000${JSON.stringify(c.opts ?? {})}`)).size).toBe(corpus.cases.length);
  });

  it.each(corpus.cases.map((c) => [c.sql, c] as const))('%s', (_sql, c) => {
    const got = classifyQuery(c.sql, c.opts);
    expect({ kind: got.kind, reason: got.reason, sticky: got.sticky ?? false }).toEqual({ kind: c.kind, reason: c.reason, sticky: c.sticky ?? false });
  });

  it('answers the same from its cache, and the same again after the cache is cleared', () => {
    for (const c of corpus.cases) {
      const a = classifyQuery(c.sql, c.opts);
      const b = classifyQuery(c.sql, c.opts);
      expect(b).toEqual(a);
    }
    clearClassifierCache();
    const c = corpus.cases.find((x) => x.reason === 'data-modifying CTE')!;
    expect(classifyQuery(c.sql)).toEqual({ kind: 'write', reason: 'data-modifying CTE' });
  });

  it('keeps the cache bounded and still classifies evicted texts', () => {
    clearClassifierCache();
    for (let i = 0; i < CACHE_SIZE * 3; i++) {
      classifyQuery(`SELECT ${i}`);
      classifyQuery('SELECT 0'); // kept: used all along
      expect(classifierCacheSize()).toBeLessThanOrEqual(CACHE_SIZE);
    }
    expect(classifierCacheSize()).toBeGreaterThanOrEqual(CACHE_SIZE / 2);
    expect(classifyQuery('SELECT 0')).toEqual({ kind: 'read', reason: 'read-only query' });
    expect(classifyQuery(`SELECT ${CACHE_SIZE * 3 - 1}`)).toEqual({ kind: 'read', reason: 'read-only query' });
  });

  it('writeFunctions applies per call, not through the cache', () => {
    const sql = 'SELECT add_user_row(1)';
    expect(classifyQuery(sql).kind).toBe('read');
    expect(classifyQuery(sql, { writeFunctions: ['add_user_row'] })).toEqual({ kind: 'write', reason: 'function add_user_row' });
    expect(classifyQuery(sql).kind).toBe('read');
    expect(classifyQuery(sql, { writeFunctions: ['ADD_USER_ROW'] }).kind).toBe('write');
  });

  it('returns results a caller cannot change', () => {
    const r = classifyQuery('SELECT 1');
    expect(Object.isFrozen(r)).toBe(true);
  });

  it('the DESIGN.md example', () => {
    expect(classifyQuery('WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d')).toEqual({ kind: 'write', reason: 'data-modifying CTE' });
  });

  it('rejects a non-string with a clear error', () => {
    expect(() => classifyQuery(42 as unknown as string)).toThrow(/sql must be a string, got number/);
  });
});
