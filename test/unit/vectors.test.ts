/**
 * Data-driven tests of the pure core: every `test/vectors/*.json` file is one scenario
 * (format: test/vectors/README.md), played by `runVector`.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { VectorError, mismatch, runVector } from './vector-runner.js';

const DIR = new URL('../vectors/', import.meta.url);
const files = readdirSync(DIR)
  .filter((f) => f.endsWith('.json'))
  .sort();

describe('test vectors', () => {
  it('there are vectors to run, named in kebab case', () => {
    expect(files.length).toBeGreaterThanOrEqual(45);
    for (const f of files) expect(f).toMatch(/^[a-z0-9]+(-[a-z0-9]+)*\.json$/);
  });

  it.each(files)('%s', (file) => {
    const vector: unknown = JSON.parse(readFileSync(new URL(file, DIR), 'utf8'));
    runVector(vector, file);
  });
});

describe('the vector runner', () => {
  /** What the bootstrap passes append, in full. */
  const FULL = [
    { type: 'node.registered', node: 'pg1' },
    { type: 'node.registered', node: 'pg2' },
    { type: 'node.role-changed', node: 'pg1' },
    { type: 'node.health-changed', node: 'pg1' },
    { type: 'node.health-changed', node: 'pg2' },
  ];
  /** A minimal valid vector: pg1 and pg2 bootstrap into a healthy cluster. */
  const ok = (more: Record<string, unknown> = { topology: { primary: 'pg1' } }, phase: Record<string, unknown> = {}): Record<string, unknown> => ({
    description: 'bootstrap',
    phases: [{ at: 1000, given: [{ obs: { node: 'pg1', role: 'primary' } }, { obs: { node: 'pg2' } }], passes: 3, expect: 'noDecisions' in more || 'decisions' in more ? more : { decisions: FULL, ...more }, ...phase }],
  });

  it('runs a valid vector', () => {
    expect(() => runVector(ok())).not.toThrow();
  });

  it('fails on an unknown key in expect', () => {
    expect(() => runVector(ok({ topology: { primary: 'pg1' }, outcome: { primary: 'pg1' } }))).toThrow(VectorError);
    expect(() => runVector(ok({ outcome: {} }))).toThrow(/unknown key "outcome"/);
  });

  it('fails on unknown keys in a phase, at the top level, and in given items', () => {
    expect(() => runVector(ok(undefined, { responses: [] }))).toThrow(/unknown key "responses"/);
    expect(() => runVector({ ...ok(), outcome: {} })).toThrow(/unknown key "outcome"/);
    expect(() => runVector({ ...ok(), settings: { failAfter: 1 } })).toThrow(/unknown key "failAfter"/);
    expect(() => runVector({ ...ok(), settings: { synchronous: 'yes' } })).toThrow(/expected a boolean/);
    expect(() => runVector({ ...ok(), settings: { failAfterMs: 1.5 } })).toThrow(/expected an integer/);
    expect(() => runVector(ok(undefined, { given: [{ obs: { node: 'pg1', roel: 'primary' } }] }))).toThrow(/unknown key "roel"/);
    expect(() => runVector(ok(undefined, { given: [{ observe: { node: 'pg1' } }] }))).toThrow(/exactly one of/);
    expect(() => runVector(ok(undefined, { given: [{ obs: { node: 'pg1', role: 'primery' } }] }))).toThrow(/not a valid observation/);
    expect(() => runVector(ok(undefined, { given: [{ command: { id: 'c', action: 'switchover', target: 'pg2' } }] }))).toThrow(/unknown key "target"/);
    expect(() => runVector(ok(undefined, { given: [{ obs: { node: 'pg1', preset: 'crashed' } }] }))).toThrow(/unknown preset/);
    expect(() => runVector(ok(undefined, { given: [{ obs: { node: 'pg1', seq: 3 } }] }))).toThrow(/unknown key "seq"/);
  });

  it('fails on unknown keys in the partial objects it knows', () => {
    expect(() => runVector(ok({ topology: { nodes: { pg1: { healty: true } } } }))).toThrow(/unknown key "healty"/);
    expect(() => runVector(ok({ topology: { operation: { too: 'pg2' } } }))).toThrow(/unknown key "too"/);
    expect(() => runVector(ok({ routing: { replicas: { pg2: { lag: 0 } } } }))).toThrow(/unknown key "lag"/);
    expect(() => runVector(ok({ routing: { writeable: true } }))).toThrow(/unknown key "writeable"/);
    expect(() => runVector(ok({ jobs: [{ nod: 'pg2' }] }))).toThrow(/unknown key "nod"/);
    expect(() => runVector(ok({ topology: { handledCommands: [{ ids: 'x' }] } }))).toThrow(/unknown key "ids"/);
    expect(() => runVector(ok({ noDecisions: false }))).toThrow(/only `true`/);
  });

  it('fails when an expectation does not hold', () => {
    expect(() => runVector(ok({ topology: { primary: 'pg2' } }))).toThrow(/topology\.primary: expected "pg2", got "pg1"/);
    expect(() => runVector(ok({ noDecisions: true }))).toThrow(/expected no decisions/);
    expect(() => runVector(ok({ types: ['node.registered'] }))).toThrow(/types/);
    // the full outcome: every appended draft, in order, no more, no fewer
    expect(() => runVector(ok({ decisions: [...FULL, { type: 'failover.started' }] }))).toThrow(/expected 6 drafts, got 5/);
    expect(() => runVector(ok({ decisions: FULL.slice(1) }))).toThrow(/expected 4 drafts, got 5/);
    expect(() => runVector(ok({ decisions: [FULL[2], FULL[0], FULL[1], FULL[3], FULL[4]] }))).toThrow(/decisions\[0\]/);
    expect(() => runVector(ok({ topology: { primary: 'pg1' } }, { expect: { topology: { primary: 'pg1' } } }))).toThrow(/state the full outcome/);
    expect(() => runVector(ok({ routing: { replicas: { pg9: { healthy: true } } } }))).toThrow(/replicas\.pg9/);
    expect(() => runVector(ok({ jobs: [{ node: 'pg2' }] }))).toThrow(/expected 1 items, got 0/);
  });

  it('fails on a vector with nothing to check', () => {
    expect(() => runVector({ description: 'x', phases: [{ at: 1, given: [] }] })).toThrow(/no phase has an expect/);
    expect(() => runVector(ok({}, { expect: {} }))).toThrow(/empty expect/);
  });

  it('matches partials: subsets, null as absent, $contains, arrays by length', () => {
    expect(mismatch({ a: 1, b: 2 }, { a: 1 }, '$')).toBeNull();
    expect(mismatch(undefined, null, '$')).toBeNull();
    expect(mismatch('no candidate: pg2', { $contains: 'pg2' }, '$')).toBeNull();
    expect(mismatch([1, 2], [1], '$')).toMatch(/expected 1 items/);
    expect(mismatch({ a: 0 }, { a: null }, '$')).toMatch(/\$\.a: expected null/);
  });
});
