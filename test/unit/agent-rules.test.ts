/**
 * The agent's pure rules (src/core/agent-rules.ts), played from data: every
 * `test/vectors/agent/*.json` file holds cases `{ description, rule, given, expect }`.
 * `expect` is the full outcome: every key the rule returns must be stated (a message may
 * be matched with `{ "$contains": "…" }`). Unknown keys fail, as in the core's vectors.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { bootAction, guardAction, jobGate, parsePublishedPrimary, publishedPrimary, type GuardInput, type JobGateInput } from '../../src/core/agent-rules.js';
import { initialState } from '../../src/core/state.js';
import { mismatch } from './vector-runner.js';

const DIR = new URL('../vectors/agent/', import.meta.url);
const files = readdirSync(DIR).filter((f) => f.endsWith('.json')).sort();

const RULES: Record<string, { keys: readonly string[]; run: (given: never) => unknown }> = {
  guard: {
    keys: ['node', 'process', 'reachable', 'role', 'error', 'primaryOnDisk', 'fenced', 'lostRedisMs', 'fenceAfterMs', 'standbysRepliedLately', 'published', 'promotion', 'promotedGraceMs', 'fenceAsked'],
    run: (g: GuardInput) => guardAction(g),
  },
  jobGate: { keys: ['self', 'job', 'epochSeen', 'redisNow', 'newestJournalId', 'published'], run: (g: JobGateInput) => jobGate(g) },
  boot: { keys: ['node', 'running', 'primaryOnDisk', 'published'], run: (g: Parameters<typeof bootAction>[0]) => bootAction(g) },
};

interface Case {
  description: string;
  rule: string;
  given: Record<string, unknown>;
  expect: Record<string, unknown>;
}

function runCase(c: Case, where: string): void {
  expect(Object.keys(c).sort(), `${where}: keys`).toEqual(['description', 'expect', 'given', 'rule']);
  const rule = RULES[c.rule];
  if (!rule) throw new Error(`${where}: unknown rule ${c.rule} (known: ${Object.keys(RULES).join(', ')})`);
  for (const k of Object.keys(c.given)) if (!rule.keys.includes(k)) throw new Error(`${where}.given: unknown key "${k}"`);
  // null in the data stands for an absent optional field
  const given = Object.fromEntries(Object.entries(c.given).map(([k, v]) => [k, v === null && k !== 'published' && k !== 'promotion' && k !== 'newestJournalId' && k !== 'redisNow' ? undefined : v]));
  if (given.job && typeof given.job === 'object') given.job = Object.fromEntries(Object.entries(given.job).filter(([, v]) => v !== null));
  const actual = rule.run(given as never) as Record<string, unknown>;
  // the full outcome: every key returned is stated, and matches
  expect(Object.keys(c.expect).sort(), `${where}: state every key of ${JSON.stringify(actual)}`).toEqual(Object.keys(actual).sort());
  const m = mismatch(actual, c.expect as never, `${where}.expect`);
  if (m) throw new Error(m);
}

describe('agent rule vectors', () => {
  it('there are vectors for the guard, the job gate and the boot', () => {
    expect(files).toEqual(['boot.json', 'guard.json', 'job-gate.json']);
  });
  for (const f of files) {
    const v = JSON.parse(readFileSync(new URL(f, DIR), 'utf8')) as { description: string; cases: Case[] };
    describe(f, () => {
      expect(Object.keys(v).sort()).toEqual(['cases', 'description']);
      v.cases.forEach((c, i) => it(c.description, () => runCase(c, `${f}.cases[${i}]`)));
    });
  }
});

describe('the published key', () => {
  it('names the primary, and during a failover the deposed node and the operation; reads back', () => {
    const s0 = initialState('c');
    expect(publishedPrimary(s0)).toBeNull();
    const node = { id: 'pg1', host: 'h1', port: 5432, priority: 100, healthy: true, healthReason: '', role: 'primary' as const, promotedAt: null, demotionAskedAt: null, pending: null };
    const s1 = { ...s0, primary: 'pg1', nodes: { pg1: node } };
    expect(publishedPrimary(s1)).toEqual({ id: 'pg1', host: 'h1', port: 5432 });
    const op = { id: 'fo-1', kind: 'failover' as const, from: 'pg1', to: 'pg2', reason: '', manual: false, startedAt: 0, phase: 'fencing' as const, phaseAt: 0, deposed: 'pg1', fenceResult: null, promoteResult: null, demoteResult: null, demoteLsn: null, commandId: null, requestEpoch: 1 };
    const p = publishedPrimary({ ...s1, operation: op });
    expect(p).toEqual({ id: 'pg1', host: 'h1', port: 5432, deposed: 'pg1', operation: { id: 'fo-1', to: 'pg2' } });
    expect(parsePublishedPrimary(JSON.stringify(p))).toEqual(p);
    // the key as written before this change still reads
    expect(parsePublishedPrimary('{"id":"pg1","host":"h1","port":5432}')).toEqual({ id: 'pg1', host: 'h1', port: 5432 });
    expect(parsePublishedPrimary('not json')).toBeNull();
    expect(parsePublishedPrimary('{"id":1}')).toBeNull();
  });
});
