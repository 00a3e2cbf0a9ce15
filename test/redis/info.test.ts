import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { chooseRedisCandidate } from '../../src/engines/redis/candidate.js';
import { InfoParseError, lagBytes, lossBytes, parseReplication, parseRole, sameHistory } from '../../src/engines/redis/info.js';
import { probeFromReplies } from '../../src/engines/redis/probe.js';
import { restartPlan } from '../../src/engines/redis/restart.js';

const fixture = (name: string): string => fs.readFileSync(path.join(import.meta.dirname, 'fixtures', name), 'utf8');

describe('INFO replication (recorded from redis 7.0)', () => {
  it('a master with two replicas', () => {
    const r = parseReplication(fixture('info-master-7.0.txt'));
    expect(r.role).toBe('master');
    expect(r.replid).toBe('ddbc076a7352d6b15ac38aba7d568ce9ab711350');
    expect(r.replid2).toBe('2201e58e29c90529d695b2e408ac76d83083b673');
    expect(r.secondOffset).toBe(88);
    expect(r.offset).toBe(137);
    expect(r.masterHost).toBeNull();
    expect(r.linkStatus).toBeNull();
    expect(r.replicas).toEqual([
      { ip: '127.0.0.1', port: 47313, state: 'online', offset: 137, lagSeconds: 1 },
      { ip: '127.0.0.1', port: 47312, state: 'online', offset: 137, lagSeconds: 1 },
    ]);
  });

  it('a replica with its link up', () => {
    const r = parseReplication(fixture('info-replica-7.0.txt'));
    expect(r).toMatchObject({ role: 'replica', masterHost: '127.0.0.1', masterPort: 47311, linkStatus: 'up', masterLastIoSeconds: 2, offset: 137, linkDownSeconds: null });
    expect(r.replicaPriority).toBe(100);
  });

  it('a replica whose master died', () => {
    const r = parseReplication(fixture('info-replica-down-7.0.txt'));
    expect(r).toMatchObject({ role: 'replica', linkStatus: 'down', masterLastIoSeconds: null, linkDownSeconds: 1, offset: 87, replid2: '' });
  });

  it('names the missing field on text that is not INFO replication', () => {
    expect(() => parseReplication('# Server\r\nredis_version:7.0.15\r\n')).toThrow(InfoParseError);
    expect(() => parseReplication('role:master\r\n')).toThrow(/master_repl_offset/);
  });
});

describe('ROLE', () => {
  it('master, replica and sentinel answers', () => {
    expect(parseRole(['master', 137, [['127.0.0.1', '47313', '137'], ['127.0.0.1', '47312', '130']]])).toEqual({
      role: 'master',
      offset: 137,
      replicas: [{ ip: '127.0.0.1', port: 47313, offset: 137 }, { ip: '127.0.0.1', port: 47312, offset: 130 }],
    });
    expect(parseRole(['slave', '127.0.0.1', 47311, 'connected', 137])).toEqual({ role: 'replica', masterHost: '127.0.0.1', masterPort: 47311, state: 'connected', offset: 137 });
    expect(parseRole(['sentinel', ['mymaster']])).toEqual({ role: 'sentinel', masters: ['mymaster'] });
    expect(() => parseRole('nope')).toThrow(/ROLE/);
  });
});

describe('probe from replies', () => {
  it('a replica: lag 0 bytes and 0 ms when it has everything', () => {
    const p = probeFromReplies(fixture('info-replica-7.0.txt'), ['slave', '127.0.0.1', 47311, 'connected', 137]);
    expect(p).toMatchObject({ reachable: true, role: 'replica', offset: 137, upstream: '127.0.0.1:47311', lagBytes: 0, lagMs: 0 });
  });
  it('a replica with its link down: lag unknown', () => {
    const p = probeFromReplies(fixture('info-replica-down-7.0.txt'), ['slave', '127.0.0.1', 47311, 'connect', -1]);
    expect(p).toMatchObject({ role: 'replica', lagBytes: null, lagMs: null });
  });
  it('a master', () => {
    const p = probeFromReplies(fixture('info-master-7.0.txt'), ['master', 137, []]);
    expect(p).toMatchObject({ role: 'primary', offset: 137, upstream: null });
  });
});

describe('offsets', () => {
  it('lag and loss compare only on the same history', () => {
    expect(lagBytes({ replid: 'a', offset: 100 }, { replid: 'a', offset: 60 })).toBe(40);
    expect(lagBytes({ replid: 'a', offset: 100 }, { replid: 'b', offset: 60 })).toBeNull();
    expect(lossBytes({ replid: 'a', offset: 500 }, { replid: 'a', offset: 420 })).toBe(80);
    expect(lossBytes({ replid: 'a', offset: 500 }, { replid: 'a', offset: 500 })).toBe(0);
    expect(lossBytes({ replid: 'a', offset: 500 }, { replid: 'b', offset: 400 })).toBeNull();
  });
  it('a promoted master carries the old history in replid2 up to second_repl_offset', () => {
    const m = parseReplication(fixture('info-master-7.0.txt'));
    expect(sameHistory(m, { replid: '2201e58e29c90529d695b2e408ac76d83083b673', offset: 87 })).toBe(true);
    expect(sameHistory(m, { replid: '2201e58e29c90529d695b2e408ac76d83083b673', offset: 90 })).toBe(false);
    expect(sameHistory(m, { replid: 'other', offset: 1 })).toBe(false);
  });
});

describe('candidate rule', () => {
  const n = (id: string, offset: number | null, extra: Partial<{ healthy: boolean; priority: number; replid: string }> = {}) => ({ id, offset, healthy: true, priority: 100, replid: 'r1', ...extra });
  it('highest offset on the current replid wins', () => {
    const c = chooseRedisCandidate([n('a', 100), n('b', 140), n('c', 200, { replid: 'r0' })], 'r1', null, 1000);
    expect(c.id).toBe('b');
    expect(c.excluded.c).toMatch(/another history/);
    expect(c.excluded.a).toMatch(/offset 100 < 140/);
  });
  it('excludes unhealthy, priority 0 and unknown offsets; lag limit against the old master', () => {
    const c = chooseRedisCandidate([n('a', 100, { healthy: false }), n('b', 900, { priority: 0 }), n('c', null), n('d', 50)], 'r1', 1000, 500);
    expect(c.id).toBeNull();
    expect(c.excluded.d).toMatch(/950 bytes behind/);
  });
  it('ties by priority then id', () => {
    expect(chooseRedisCandidate([n('b', 10), n('a', 10)], 'r1', null, 0).id).toBe('a');
    expect(chooseRedisCandidate([n('b', 10, { priority: 200 }), n('a', 10)], 'r1', null, 0).id).toBe('b');
  });
});

describe('empty-restart rule', () => {
  const p = { id: 'r2', host: '127.0.0.1', port: 7002 };
  it('restarts as a replica when another node is primary', () => {
    expect(restartPlan({ self: 'r1', currentPrimary: p, dataIntact: false })).toMatchObject({ start: 'replica', of: p });
    expect(restartPlan({ self: 'r1', currentPrimary: p, dataIntact: true })).toMatchObject({ start: 'replica', of: p });
  });
  it('never restarts a former primary empty as a master', () => {
    expect(restartPlan({ self: 'r2', currentPrimary: p, dataIntact: false }).start).toBe('wait');
    expect(restartPlan({ self: 'r2', currentPrimary: null, dataIntact: false }).start).toBe('wait');
  });
  it('restarts as master only with its data intact while still the primary', () => {
    expect(restartPlan({ self: 'r2', currentPrimary: p, dataIntact: true }).start).toBe('master');
  });
});
