import { describe, expect, it } from 'vitest';
import { formatLsn, lsnDiff, parseLsn } from '../../src/core/lsn.js';
import { compareStreamIds } from '../../src/core/state.js';

describe('LSNs', () => {
  it('parses PostgreSQL text LSNs', () => {
    expect(parseLsn('0/0')).toBe(0);
    expect(parseLsn('0/3000000')).toBe(0x3000000);
    expect(parseLsn('16/B374D848')).toBe(0x16 * 2 ** 32 + 0xb374d848);
    expect(parseLsn('16/b374d848')).toBe(parseLsn('16/B374D848'));
    expect(parseLsn('FFFF/FFFFFFFF')).toBe(0xffff * 2 ** 32 + 0xffffffff);
  });

  it('returns null for missing or malformed LSNs instead of a wrong number', () => {
    for (const bad of [null, undefined, '', '/1', '1/', '0', 'G/1', '0/1zz', '1x/0', '-1/0', '0/-1', ' 0/1', '0/1 ', '0/100000000', '0//1', '0/1/2']) {
      expect(parseLsn(bad), String(bad)).toBeNull();
    }
  });

  it('formats back to the canonical form', () => {
    for (const s of ['0/0', '0/3000000', '16/B374D848', 'FFFF/FFFFFFFF']) expect(formatLsn(parseLsn(s)!)).toBe(s);
    expect(formatLsn(2 ** 32)).toBe('1/0');
  });

  it('diffs in bytes, never negative, null when unknown', () => {
    expect(lsnDiff('1/0', '0/FFFFFFFF')).toBe(1);
    expect(lsnDiff('0/3000000', '0/2FFF000')).toBe(0x1000);
    expect(lsnDiff('0/1', '0/2')).toBe(0);
    expect(lsnDiff(null, '0/2')).toBeNull();
    expect(lsnDiff('0/2', undefined)).toBeNull();
    expect(lsnDiff('0/2', 'garbage')).toBeNull();
  });
});

describe('stream ids', () => {
  it('compare numerically, ms then sequence', () => {
    expect(compareStreamIds('1000-0', '1000-0')).toBe(0);
    expect(compareStreamIds('999-5', '1000-0')).toBe(-1);
    expect(compareStreamIds('1000-10', '1000-9')).toBe(1);
    expect(compareStreamIds('10000-0', '9999-99')).toBe(1);
    expect(compareStreamIds('5', '5-0')).toBe(0);
    expect(compareStreamIds('0-0', '1-0')).toBe(-1);
  });
});
