import { describe, expect, it } from 'vitest';
import { MAX_ENTRY_BYTES, fieldOf, parseJournalEntry, parseObsEntry } from '../../src/events/parse.js';
import { jobResult, obs } from './helpers.js';

const reason = (p: { ok: boolean; reason?: string }): string => {
  expect(p.ok).toBe(false);
  return p.reason ?? '';
};

describe('parseObsEntry', () => {
  it('accepts observations and job results', () => {
    const o = obs('pg1', { role: 'primary', standbys: [{ name: 'pg2', state: 'streaming', replayLsn: '0/1', flushLsn: '0/1', replayLagMs: null, syncState: 'async' }], peer: { node: 'pg3', reachable: false, error: 'timeout' } });
    expect(parseObsEntry(JSON.stringify(o))).toEqual({ ok: true, value: o });
    const r = jobResult('pg1', { operationId: 'fo-1', action: 'promote', ok: false, code: 'stale-epoch' });
    expect(parseObsEntry(JSON.stringify(r))).toEqual({ ok: true, value: r });
  });

  it('rejects a missing field, malformed JSON and oversized entries without throwing', () => {
    expect(reason(parseObsEntry(undefined))).toContain('no "e" field');
    expect(reason(parseObsEntry('{"type":"obs",'))).toMatch(/^not JSON/);
    expect(reason(parseObsEntry(''))).toMatch(/^not JSON/);
    const big = JSON.stringify({ ...obs('pg1'), errorMessage: 'x'.repeat(MAX_ENTRY_BYTES) });
    expect(reason(parseObsEntry(big))).toMatch(/too large/);
  });

  it('names the offending field of a schema violation', () => {
    const bad = (patch: Record<string, unknown>): string => reason(parseObsEntry(JSON.stringify({ ...obs('pg1'), ...patch })));
    expect(bad({ seq: 'x' })).toContain('/seq');
    expect(bad({ port: 0 })).toContain('/port');
    expect(bad({ role: 'leader' })).toContain('/role');
    expect(bad({ process: 'zombie' })).toContain('/process');
    expect(bad({ error: 'boom' })).toContain('/error');
    expect(bad({ node: '' })).toContain('/node');
    expect(bad({ peer: { node: 'pg2' } })).toContain('/peer/reachable');
    expect(bad({ standbys: [{ name: 'pg2' }] })).toContain('/standbys/0/');
    expect(bad({ v: 2 })).toContain('/v');
    const { bootId: _b, ...noBoot } = obs('pg1');
    expect(reason(parseObsEntry(JSON.stringify(noBoot)))).toContain('/bootId');
    expect(reason(parseObsEntry(JSON.stringify({ ...jobResult('pg1', { operationId: 'x', action: 'promote', ok: true }), ok: 'yes' })))).toContain('/ok');
  });

  it('names the type when it is unknown, and rejects non-objects', () => {
    expect(reason(parseObsEntry(JSON.stringify({ ...obs('pg1'), type: 'obz' })))).toContain('/type');
    for (const raw of ['42', 'null', '[]', '"obs"']) expect(reason(parseObsEntry(raw))).toMatch(/^schema: /);
  });
});

describe('parseJournalEntry', () => {
  const env = { v: 1, at: 1_000, epoch: 1 };

  it('accepts journal entries', () => {
    const e = { ...env, type: 'node.registered', node: 'pg1', host: 'pg1', port: 5432, priority: 100 };
    expect(parseJournalEntry(JSON.stringify(e))).toEqual({ ok: true, value: e });
  });

  it('names the offending field', () => {
    expect(reason(parseJournalEntry(JSON.stringify({ ...env, type: 'node.registered', node: 'pg1', host: 'pg1', port: 70_000, priority: 1 })))).toContain('/port');
    expect(reason(parseJournalEntry(JSON.stringify({ ...env, type: 'failover.completed', operationId: 'fo-1', outcome: 'meh', durationMs: 1, reason: '' })))).toContain('/outcome');
    expect(reason(parseJournalEntry(JSON.stringify({ ...env, epoch: -1, type: 'cluster.paused', by: 'x' })))).toContain('/epoch');
    expect(reason(parseJournalEntry(JSON.stringify({ ...env, type: 'node.exploded' })))).toContain('/type');
  });

  it('keeps reasons short', () => {
    const r = reason(parseJournalEntry(JSON.stringify({ type: 'failover.started' })));
    expect(r.length).toBeLessThanOrEqual(500);
    expect(r).toContain('/');
  });
});

describe('fieldOf', () => {
  it('reads a field of a flat Redis [k, v, …] list', () => {
    expect(fieldOf(['a', '1', 'e', '{}'], 'e')).toBe('{}');
    expect(fieldOf(['a', '1', 'e'], 'e')).toBeUndefined();
    expect(fieldOf([], 'e')).toBeUndefined();
    expect(fieldOf(['x', 'e', 'e', 'v'], 'e')).toBe('v'); // values are not keys
  });
});
