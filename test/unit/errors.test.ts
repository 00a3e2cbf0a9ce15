/** One error catalogue, in one style, documented in docs/errors.md. */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES as API_CODES } from '../../src/api/errors.js';
import { ConfigError } from '../../src/config/load.js';
import { ERROR_CODES, JOB_CODE_LIST, StartupError, SwitchyardError, isSwitchyardError } from '../../src/errors.js';
import { HarnessError } from '../../src/sandbox/errors.js';
import { JobResultV1 } from '../../src/events/observation.js';
import { Value } from '@sinclair/typebox/value';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const doc = fs.readFileSync(path.join(root, 'docs/errors.md'), 'utf8');

describe('error catalogue', () => {
  it('codes are UPPER_SNAKE (job result codes are the documented lower-case wire values)', () => {
    for (const c of [...ERROR_CODES, ...API_CODES]) expect(c).toMatch(/^[A-Z][A-Z0-9]*(_[A-Z0-9]+)*$/);
    for (const c of JOB_CODE_LIST) expect(c).toMatch(/^[a-z]+(-[a-z]+)*$/);
  });

  it('docs/errors.md lists every code, and no code it does not know', () => {
    for (const c of [...ERROR_CODES, ...API_CODES, ...JOB_CODE_LIST]) expect(doc).toContain(`| \`${c}\` |`);
    const listed = [...doc.matchAll(/^\| `([^`]+)` \|/gm)].map((m) => m[1]);
    expect(new Set(listed)).toEqual(new Set([...ERROR_CODES, ...API_CODES, ...JOB_CODE_LIST]));
  });

  it('the harness, start-up and config errors are SwitchyardErrors with catalogue codes', () => {
    const h = new HarnessError('NO_SANDBOX', 'no sandbox');
    expect(h).toBeInstanceOf(SwitchyardError);
    expect(isSwitchyardError(new StartupError('REDIS_UNREACHABLE', 'x'), 'REDIS_UNREACHABLE')).toBe(true);
    const cfg = new ConfigError('invalid config in x: /port: must be integer');
    expect(cfg).toBeInstanceOf(SwitchyardError);
    expect(cfg.code).toBe('CONFIG_INVALID');
    expect(isSwitchyardError(new Error('x'))).toBe(false);
  });

  it('JobResult.code and .action are typed unions: the schema refuses an unknown one', () => {
    const base = { type: 'job.result', v: 1, node: 'pg1', bootId: 'b', at: 1, jobId: 'j', epoch: 1, operationId: 'o', ok: false, durationMs: 1 };
    expect(Value.Check(JobResultV1, { ...base, action: 'promote', code: 'stale-epoch' })).toBe(true);
    expect(Value.Check(JobResultV1, { ...base, action: 'promote', code: 'no-such-code' })).toBe(false);
    expect(Value.Check(JobResultV1, { ...base, action: 'explode' })).toBe(false);
  });
});
