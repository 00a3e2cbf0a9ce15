/** Pure helpers of the agent. */
import { describe, expect, it } from 'vitest';
import { walEndFromWaldumpError } from '../../src/engines/postgres/tools.js';
import { upstreamFromConninfo, classifyPgError } from '../../src/engines/postgres/probe.js';

describe('end of WAL from pg_waldump', () => {
  it('reads the LSN where the first invalid record starts', () => {
    expect(walEndFromWaldumpError('pg_waldump failed (exit code 1): pg_waldump: error: error in WAL record at 0/15373F8: invalid record length at 0/1537590: wanted 24, got 0')).toBe('0/1537590');
    expect(walEndFromWaldumpError('error in WAL record at 0/3000028: record with incorrect prev-link 0/0 at 0/3000110')).toBe('0/3000110');
  });
  it('computes the end from a segment name and offset', () => {
    expect(walEndFromWaldumpError('error in WAL record at 0/2FFFFD8: invalid magic number 0000 in log segment 000000010000000000000003, offset 0')).toBe('0/3000000');
    expect(walEndFromWaldumpError('invalid magic number 0000 in log segment 0000000100000001000000A2, offset 8192')).toBe('1/A2002000');
  });
  it('answers null when it cannot tell', () => {
    expect(walEndFromWaldumpError('could not open file')).toBeNull();
  });
});

describe('probe helpers', () => {
  it('reads the upstream from primary_conninfo', () => {
    expect(upstreamFromConninfo("host=127.0.0.1 port=5433 user=postgres application_name=pg2")).toBe('127.0.0.1:5433');
    expect(upstreamFromConninfo("user=postgres host='db1' ")).toBe('db1:5432');
    expect(upstreamFromConninfo('')).toBeNull();
  });
  it('tells a refused connection from a timeout from an auth error', () => {
    expect(classifyPgError({ code: 'ECONNREFUSED', message: 'connect ECONNREFUSED' }).error).toBe('refused');
    expect(classifyPgError(new Error('Connection terminated due to connection timeout')).error).toBe('timeout');
    expect(classifyPgError({ code: '28P01', message: 'password authentication failed' }).error).toBe('auth');
    expect(classifyPgError({ code: '57P03', message: 'the database system is starting up' }).error).toBe('starting');
  });
});
