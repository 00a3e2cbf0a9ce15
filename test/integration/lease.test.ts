/**
 * The leader lease against a real Redis whose every client is stalled (CLIENT PAUSE):
 * each lease call gives up after its commandTimeout, no call overlaps another, the
 * holder stops counting itself leader at its deadline, and it renews again once Redis
 * answers. A follower plans its next attempt for the moment the holder's lease ends.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keys } from '../../src/bus/keys.js';
import { Lease, leaseCommandTimeoutMs, leaseConnectionOptions, type LeaseOutcome } from '../../src/bus/lease.js';
import { RedisServer } from '../../src/sandbox/redis.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('leader lease with a stalled Redis', () => {
  let dir: string;
  let redis: RedisServer;
  let admin: Redis;
  const conns: Redis[] = [];

  async function leaseConn(ttlMs: number): Promise<Redis> {
    const c = new Redis(redis.url, leaseConnectionOptions(ttlMs));
    c.on('error', () => {});
    await c.connect();
    conns.push(c);
    return c;
  }

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sy-lease-'));
    redis = await RedisServer.start(dir);
    admin = new Redis(redis.url);
  }, 30_000);

  afterAll(async () => {
    for (const c of conns) c.disconnect();
    admin.disconnect();
    await redis.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }, 30_000);

  it('bounds every renewal by its commandTimeout and never overlaps two', { timeout: 30_000 }, async () => {
    const ttl = 1200;
    const k = keys('stall');
    const lease = new Lease(await leaseConn(ttl), k, 'a', ttl);
    expect(await lease.tick()).toBe('acquired');
    // a second tick while one is in flight joins it
    const p1 = lease.tick();
    const p2 = lease.tick();
    expect(p2).toBe(p1);
    expect(await p1).toBe('renewed');

    const outcomes: Array<LeaseOutcome | null> = [];
    const failedAfterMs: number[] = [];
    let notLeaderPastTtl = true;
    let sentAt = performance.now();
    lease.keep((o) => {
      outcomes.push(o);
      if (o === null) failedAfterMs.push(performance.now() - sentAt);
    });
    const origTick = lease.tick.bind(lease);
    lease.tick = () => {
      sentAt = performance.now();
      return origTick();
    };
    await sleep(300);
    // every client of this Redis stalls for 2.5 s (longer than the TTL)
    await admin.call('CLIENT', 'PAUSE', '2500', 'ALL');
    const stallStart = performance.now();
    while (performance.now() - stallStart < 2300) {
      if (performance.now() - stallStart > ttl) notLeaderPastTtl &&= !lease.isLeader();
      await sleep(50);
    }
    expect(lease.isLeader()).toBe(false);
    expect(notLeaderPastTtl).toBe(true); // never counted itself leader past its TTL without an answer
    // wait for Redis to answer again, then for a renewal
    const healed = performance.now();
    while (!lease.isLeader() && performance.now() - healed < 10_000) await sleep(50);
    lease.stopKeeping();
    expect(lease.isLeader()).toBe(true);
    expect(lease.stats.maxInFlight).toBe(1);
    // renewals failed during the stall, each within its timeout (plus scheduling slack)
    expect(failedAfterMs.length).toBeGreaterThan(0);
    for (const ms of failedAfterMs) expect(ms).toBeLessThan(leaseCommandTimeoutMs(ttl) + 1500);
    // retried at a bounded pace, not in a tight loop: at most one attempt per ~100 ms
    expect(lease.stats.attempts).toBeLessThan(60);
  });

  it('a follower tries again right when the holder lease ends', { timeout: 30_000 }, async () => {
    const ttl = 3000;
    const k = keys('follow');
    const a = new Lease(await leaseConn(ttl), k, 'a', ttl);
    const b = new Lease(await leaseConn(ttl), k, 'b', ttl);
    expect(await a.tick()).toBe('acquired');
    await sleep(200);
    // the holder's PTTL read before b's attempt bounds what b saw from above (nobody renews a's
    // lease); read after, a slow host's delay between the two calls could exceed the slack
    const left = await admin.pttl(k.leader);
    expect(await b.tick()).toBe('follower');
    expect(b.holder).toBe('a');
    const next = b.nextDelayMs('follower');
    // not a whole renewal interval later: right after the holder's lease (PTTL + a little)
    expect(next).toBeLessThanOrEqual(Math.min(ttl / 3, left + 50));
    // the holder gone (key expired or deleted): at once
    await admin.del(k.leader);
    expect(await b.tick()).toBe('acquired');
    expect(b.epoch).toBeGreaterThan(a.epoch);
    expect(a.nextDelayMs(null)).toBeLessThanOrEqual(100);
  });
});
