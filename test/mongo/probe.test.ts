/** The probe's pure part on recorded hello + replSetGetStatus documents (test/mongo/fixtures/, EJSON, field lists from the MongoDB docs). */
import { readFileSync } from 'node:fs';
import { EJSON, type Document } from 'bson';
import { describe, expect, it } from 'vitest';
import { mongoObservation, mongoPosition, toNodeProbe } from '../../src/engines/mongo/probe.js';

const BASE = 1764633600;
function fixture(name: string): { hello: Document; status: Document } {
  return EJSON.parse(readFileSync(new URL(`./fixtures/${name}.json`, import.meta.url), 'utf8'), { relaxed: false }) as { hello: Document; status: Document };
}
const obs = (name: string) => {
  const f = fixture(name);
  return mongoObservation(f.hello, f.status);
};

describe('mongo probe: recorded documents', () => {
  it('primary: writable, electionId, optime position, secondaries lag in ms and ops', () => {
    const o = obs('primary');
    expect(o.isWritablePrimary).toBe(true);
    expect(o.state).toBe('PRIMARY');
    expect(o.setName).toBe('rs0');
    expect(o.setVersion).toBe(4);
    expect(o.electionId).toBe('7fffffff0000000000000003');
    expect(o.position).toBe(`3:${String(BASE)}.7`);
    expect(o.lastWriteDate).toBe(BASE * 1000);
    expect(o.hosts).toHaveLength(3);
    const [, s1, s2] = o.members;
    expect(s1).toMatchObject({ state: 'SECONDARY', lagMs: 0, lagOps: 0, syncSourceHost: 'db0.example.net:27017' });
    expect(s2).toMatchObject({ state: 'SECONDARY', lagMs: 4000, lagOps: null });
    const p = toNodeProbe(o);
    expect(p).toMatchObject({ reachable: true, role: 'primary', timeline: 3, lsn: `3:${String(BASE)}.7`, upstream: null });
    expect(p.standbys?.map((s) => [s.name, s.replayLagMs])).toEqual([
      ['db1.example.net:27017', 0],
      ['db2.example.net:27017', 4000],
    ]);
  });

  it('secondary: its own lag against the primary, sync source, streaming', () => {
    const o = obs('secondary');
    expect(o).toMatchObject({ isWritablePrimary: false, secondary: true, primary: 'db0.example.net:27017', me: 'db1.example.net:27017', electionId: null, syncSourceHost: 'db0.example.net:27017' });
    const p = toNodeProbe(o);
    expect(p).toMatchObject({ role: 'replica', replayDelayMs: 2000, upstream: 'db0.example.net:27017', walReceiver: 'streaming' });
  });

  it('recovering: a replica, not readable, ten minutes behind', () => {
    const o = obs('recovering');
    expect(o.state).toBe('RECOVERING');
    expect(o.secondary).toBe(false);
    const p = toNodeProbe(o);
    expect(p).toMatchObject({ role: 'replica', replayDelayMs: 600_000, walReceiver: 'recovering' });
  });

  it('arbiter: no data, no position, role unknown', () => {
    const o = obs('arbiter');
    expect(o).toMatchObject({ arbiterOnly: true, state: 'ARBITER', position: null, lastWriteDate: null, arbiters: ['db3.example.net:27017'] });
    expect(o.members.find((m) => m.self)?.lagMs).toBeNull();
    expect(toNodeProbe(o).role).toBe('unknown');
  });

  it('step-down in progress: not writable, no primary known, no electionId', () => {
    const o = obs('stepdown');
    expect(o).toMatchObject({ isWritablePrimary: false, secondary: true, primary: null, electionId: null, state: 'SECONDARY' });
    // without a primary, lag is measured against the newest member
    expect(o.members.map((m) => m.lagMs)).toEqual([0, 0, 0]);
    expect(o.members.map((m) => m.lagOps)).toEqual([0, 0, 1]);
  });

  it('stale primary: claims primary of term 3, sees nobody; unreachable members have no lag', () => {
    const o = obs('stale-primary');
    expect(o).toMatchObject({ isWritablePrimary: true, electionId: '7fffffff0000000000000003', term: 3 });
    expect(o.members.slice(1).map((m) => [m.state, m.health, m.optime, m.lagMs])).toEqual([
      ['DOWN', 0, null, null],
      ['DOWN', 0, null, null],
    ]);
    const fresh = obs('new-primary');
    expect(fresh.electionId).toBe('7fffffff0000000000000004');
    expect(mongoPosition.compare(fresh.position ?? '', o.position ?? '')).toBeGreaterThan(0);
  });

  it('hello alone (replSetGetStatus refused) still gives role and position', () => {
    const o = mongoObservation(fixture('secondary').hello, null);
    expect(o.state).toBe('SECONDARY');
    expect(o.members).toEqual([]);
    expect(toNodeProbe(o)).toMatchObject({ role: 'replica', lsn: `3:${String(BASE - 2)}.3` });
  });

  it('position codec: term first, then Timestamp; distance in seconds; malformed is null', () => {
    expect(mongoPosition.valid('3:100.2')).toBe(true);
    expect(mongoPosition.valid('3/100')).toBe(false);
    expect(mongoPosition.compare('4:100.1', '3:200.9')).toBeGreaterThan(0);
    expect(mongoPosition.compare('3:100.2', '3:100.3')).toBeLessThan(0);
    expect(mongoPosition.compare('3:100.2', '3:100.2')).toBe(0);
    expect(mongoPosition.compare('x', '3:100.2')).toBeNull();
    expect(mongoPosition.distance('3:130.1', '3:100.9')).toBe(30);
    expect(mongoPosition.distance('3:100.1', '3:130.9')).toBe(0);
    expect(mongoPosition.distance(null, '3:1.1')).toBeNull();
  });
});
