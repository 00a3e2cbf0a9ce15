/**
 * Lag reaches clients, on real processes: a long-polling client holding the current
 * ETag gets a new table (same generation, new version) once a replica whose replay is
 * paused (pg_wal_replay_pause) falls behind past the hysteresis, and again once it has
 * caught up.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RoutingTable } from '../../src/core/routing.js';
import type { SandboxFile } from '../../src/sandbox/deploy.js';
import { routing, sql, startSandbox, stopSandbox, waitFor } from '../support/sandbox.js';

describe('lag reaches long-polling clients (real replica, replay paused)', () => {
  let s: Awaited<ReturnType<typeof startSandbox>> | undefined;
  let file: SandboxFile;
  const url = (): string => `${file.api}/v1/clusters/${file.cluster}/routing`;

  beforeAll(async () => {
    s = await startSandbox({ replicas: 1, coordinators: 1 });
    file = s.file;
    await sql(file.nodes[0]!.port, 'CREATE TABLE big (id serial PRIMARY KEY, pad text)');
    await waitFor('pg2 healthy and caught up', async () => {
      const t = await routing(file.api, file.cluster);
      const r = t.replicas.find((x) => x.id === 'pg2');
      return r?.healthy && r.lagBytes === 0;
    }, 60_000, 100);
  }, 180_000);

  afterAll(async () => {
    if (s) await sql(file.nodes[1]!.port, 'SELECT pg_wal_replay_resume()').catch(() => {});
    await stopSandbox(s);
  }, 60_000);

  async function longPoll(etag: string, waitMs: number): Promise<{ status: number; etag: string | null; table: RoutingTable | null; ms: number }> {
    const t0 = Date.now();
    const res = await fetch(`${url()}?waitMs=${waitMs}`, { headers: { 'if-none-match': etag } });
    const table = res.status === 200 ? ((await res.json()) as RoutingTable) : null;
    return { status: res.status, etag: res.headers.get('etag'), table, ms: Date.now() - t0 };
  }

  it('announces the replica falling behind, then catching up, without a new generation', async () => {
    const first = await fetch(url());
    const etag = first.headers.get('etag')!;
    const before = (await first.json()) as RoutingTable;
    expect(etag).toMatch(/^"\d+(\.[0-9a-z]+)?"$/);

    // a quiet cluster announces nothing
    const quiet = await longPoll(etag, 1500);
    expect(quiet.status).toBe(304);

    await sql(file.nodes[1]!.port, 'SELECT pg_wal_replay_pause()');
    const poll = longPoll(etag, 30_000);
    // ~4 MiB of WAL the standby receives but does not replay
    await sql(file.nodes[0]!.port, "INSERT INTO big (pad) SELECT repeat('x', 1000) FROM generate_series(1, 4000)");
    const wrote = Date.now();
    let behind = await poll;
    expect(behind.status).toBe(200);
    expect(behind.etag).not.toBe(etag);
    // seen within a few probe intervals of the write, not at the long poll's end (30 s);
    // generous: a loaded machine streams and probes late
    expect(Date.now() - wrote).toBeLessThan(15_000);
    // the first announcement may catch the WAL still streaming in: follow until all of it is counted
    const rising: Array<number | null> = [];
    for (let i = 0; i < 10; i++) {
      expect(behind.table!.generation).toBe(before.generation); // the journal did not change
      const lag = behind.table!.replicas.find((x) => x.id === 'pg2')!.lagBytes;
      rising.push(lag);
      if (lag !== null && lag > 1024 * 1024) break;
      behind = await longPoll(behind.etag!, 30_000);
      expect(behind.status).toBe(200);
    }
    expect(rising.at(-1), `lag announced: ${rising.join(', ')}`).toBeGreaterThan(1024 * 1024);

    // and the replica catching up is announced too (perhaps in a few steps): the client
    // following the long-poll sees it reach 0 behind
    const poll2 = longPoll(behind.etag!, 30_000);
    await sql(file.nodes[1]!.port, 'SELECT pg_wal_replay_resume()');
    let next = await poll2;
    const seen: Array<number | null> = [];
    for (let i = 0; i < 10; i++) {
      expect(next.status).toBe(200);
      const lag = next.table!.replicas.find((x) => x.id === 'pg2')!.lagBytes;
      seen.push(lag);
      if (lag === 0) break;
      next = await longPoll(next.etag!, 30_000);
    }
    // within the loop's ten announcements: how many steps depends on how fast the paused
    // replica replays on this host (the hysteresis itself: test/unit/routing-lag.test.ts)
    expect(seen[seen.length - 1], `lag announced: ${seen.join(', ')}`).toBe(0);
  }, 120_000);
});
