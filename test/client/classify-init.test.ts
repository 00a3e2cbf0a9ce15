/** The classifier before and after its parser is loaded (a file of its own: a fresh module). */
import { describe, expect, it } from 'vitest';
import { classifierReady, classifyQuery, initClassifier } from '../../src/client/classify.js';

describe('initClassifier', () => {
  it('classifyQuery throws a clear error before the parser is loaded, and works after', async () => {
    expect(classifierReady()).toBe(false);
    expect(() => classifyQuery('SELECT 1')).toThrow('classifier not loaded: await initClassifier() before classifyQuery()');
    await Promise.all([initClassifier(), initClassifier()]);
    await initClassifier();
    expect(classifierReady()).toBe(true);
    expect(classifyQuery('SELECT 1')).toEqual({ kind: 'read', reason: 'read-only query' });
  });
});
