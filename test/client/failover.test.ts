/**
 * ReplicatedPool following the control plane on real processes (one sandbox, two
 * coordinators): several routing URLs, SSE and long-polling, the control plane down
 * (the pool keeps the last table, then finds the primary itself), draining at a
 * switchover (zero failed app queries), and a failover under load (kill -9 of the
 * primary: reads continue, writes move to the new primary). Write resumption is timed
 * from the routing change itself (the journal entry naming the new primary).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ReplicatedPool, RoutingUnavailableError, type ReplicatedPoolOptions, type RoutingChangedEvent } from '../../src/client/index.js';
import type { SandboxFile } from '../../src/sandbox/deploy.js';
import { postmasterPid, routing, sql, startSandbox, stopSandbox, waitFor } from '../support/sandbox.js';

interface Load {
  stop(): Promise<void>;
  reads: number;
  writes: number;
  readErrors: string[];
  writeErrors: Array<{ at: number; message: string }>;
  /** (start, answer, node) of each acknowledged write */
  acked: Array<{ startedAt: number; at: number; port: number }>;
  /** each write the pool ran, by its own account: when it was answered, where, and how long it took there */
  executed: Array<{ at: number; nodeId: string; durationMs: number }>;
}

/** Reads and writes in a loop through the pool (4 readers, 1 writer), counting every failure. */
function load(db: ReplicatedPool): Load {
  let running = true;
  const l: Load = { stop: async () => {}, reads: 0, writes: 0, readErrors: [], writeErrors: [], acked: [], executed: [] };
  db.on('query-executed', (e) => {
    if (e.kind === 'write') l.executed.push({ at: Date.now(), nodeId: e.nodeId, durationMs: e.durationMs });
  });
  const reader = async (): Promise<void> => {
    while (running) {
      try {
        await db.query('SELECT count(*) FROM ledger WHERE id < $1', [10]);
        l.reads++;
      } catch (err) {
        l.readErrors.push((err as Error).message);
      }
      await new Promise((r) => setTimeout(r, 2));
    }
  };
  const writer = async (): Promise<void> => {
    let i = 0;
    while (running) {
      const startedAt = Date.now();
      try {
        const r = await db.query<{ port: number }>('INSERT INTO ledger (v) VALUES ($1) RETURNING inet_server_port() AS port', [i++]);
        l.writes++;
        l.acked.push({ startedAt, at: Date.now(), port: r.rows[0]!.port });
      } catch (err) {
        l.writeErrors.push({ at: Date.now(), message: (err as Error).message });
      }
      await new Promise((r) => setTimeout(r, 2));
    }
  };
  const all = Promise.all([reader(), reader(), reader(), reader(), writer()]);
  l.stop = async () => {
    running = false;
    await all;
  };
  return l;
}

/**
 * What the app saw of a change of primary, timed from the routing change itself: the
 * journal entry that named the new primary (the table's `updatedAt`, the coordinator's
 * clock, on this same host), through the pool receiving that table and sending the
 * first write there, to that write's answer.
 */
interface Resume {
  /** the journal entry naming the new primary, ms since the epoch */
  journaledAt: number;
  /** journaled → the pool has the table (the control plane and SSE) */
  deliveryMs: number;
  /** the pool has the table → it sent the first write to the new primary (the pool's reaction) */
  dispatchMs: number;
  /** that write's own time on the new primary */
  writeMs: number;
  /** journaled → the first write acknowledged by the new primary */
  resumeMs: number;
  /** median time of a write on the old primary before the change, for scale */
  typicalWriteMs: number;
}

function resumeOf(changes: Array<RoutingChangedEvent & { at: number }>, l: Load, primary: { id: string; port: number }): Resume {
  const named = changes.find((c) => c.primary === primary.id && c.table !== null);
  if (!named) throw new Error(`the pool never received a table naming ${primary.id}`);
  const journaledAt = Date.parse(named.table!.updatedAt);
  const first = l.acked.find((a) => a.port === primary.port);
  if (!first) throw new Error(`no write acknowledged by ${primary.id}`);
  const ran = l.executed.find((e) => e.nodeId === primary.id)!;
  const before = l.executed.filter((e) => e.at < named.at && e.nodeId !== primary.id).map((e) => e.durationMs).sort((a, b) => a - b);
  const sentAt = ran.at - ran.durationMs;
  return {
    journaledAt,
    deliveryMs: named.at - journaledAt,
    dispatchMs: Math.max(0, Math.round(sentAt - named.at)),
    writeMs: Math.round(ran.durationMs),
    resumeMs: first.at - journaledAt,
    typicalWriteMs: Math.round(before[Math.floor(before.length / 2)] ?? NaN),
  };
}

function describeResume(r: Resume): string {
  return `writes resumed ${r.resumeMs} ms after the routing change (journaled → pool has the table ${r.deliveryMs} ms, → first write sent to the new primary ${r.dispatchMs} ms, → answered ${r.writeMs} ms; a write took ${r.typicalWriteMs} ms before the change)`;
}

/** Reads retried (once, on another node) and reads that failed, from the pool's own events. */
function readRetries(db: ReplicatedPool): { retried: number; failed: number } {
  const c = { retried: 0, failed: 0 };
  db.on('query-executed', (e) => {
    if (e.kind === 'read' && e.retried) c.retried++;
  });
  db.on('query-error', (e) => {
    if (e.kind === 'read' && !e.willRetry) c.failed++;
  });
  return c;
}

describe('ReplicatedPool following the control plane on real processes', () => {
  let s: Awaited<ReturnType<typeof startSandbox>> | undefined;
  let file: SandboxFile;
  const pools: ReplicatedPool[] = [];
  const stopped: number[] = [];

  const open = async (over: Partial<ReplicatedPoolOptions> = {}): Promise<ReplicatedPool> => {
    const db = new ReplicatedPool({ routing: file.coordinators.map((c) => c.api), cluster: file.cluster, connection: { user: 'postgres', database: 'postgres' }, max: 6, holdWritesMs: 15_000, ...over });
    pools.push(db);
    await db.ready();
    return db;
  };

  /** Waits for a writable primary other than `oldId` to take the load's writes, lets it run 0.5 s more, stops the load. */
  const newPrimaryTakesWrites = async (oldId: string, l: Load): Promise<{ id: string; port: number }> => {
    const after = await waitFor('a new primary', async () => {
      const t = await routing(file.api, file.cluster).catch(() => null);
      return t?.writable && t.primary && t.primary.id !== oldId ? t.primary : null;
    }, 60_000);
    await waitFor('writes on the new primary', async () => l.acked.some((a) => a.port === after.port), 30_000);
    await new Promise((r) => setTimeout(r, 500));
    await l.stop();
    return after;
  };

  beforeAll(async () => {
    s = await startSandbox({ settings: { cooldownMs: 0 } });
    file = s.file;
    await sql(file.nodes[0]!.port, 'CREATE TABLE ledger (id bigserial PRIMARY KEY, v int)');
    for (const r of file.nodes.slice(1)) await waitFor(`ledger on ${r.id}`, async () => (await sql(r.port, "SELECT to_regclass('ledger') IS NOT NULL AS ok")).rows[0]?.ok === true);
  }, 180_000);

  afterAll(async () => {
    for (const pid of stopped) {
      try {
        process.kill(pid, 'SIGCONT');
      } catch {
        // gone
      }
    }
    for (const db of pools) await db.end();
    await stopSandbox(s);
  }, 60_000);

  it('follows the table from any of several URLs, by SSE or by long-polling', async () => {
    const sse = await open({ routing: ['http://127.0.0.1:1', file.api] });
    expect(sse.routingTable?.primary?.id).toBe('pg1');
    const poll = await open({ transport: 'poll' });
    expect(poll.routingTable?.generation).toBe(sse.routingTable?.generation);
    const r = await poll.query<{ n: string }>('SELECT count(*) AS n FROM ledger');
    expect(r.rows[0]!.n).toBe('0');
    // nothing answers: ready() fails with a coded error naming the URLs
    const dead = new ReplicatedPool({ routing: 'http://127.0.0.1:1', cluster: file.cluster });
    pools.push(dead);
    await expect(dead.ready(500)).rejects.toBeInstanceOf(RoutingUnavailableError);
    await expect(dead.ready(500)).rejects.toThrow(/127\.0\.0\.1:1/);
  });

  it('control plane down: keeps the last table, finds the primary itself past the staleness limit, no app query fails', async () => {
    const db = await open({ staleAfterMs: 1500, refreshMs: 300 });
    const l = load(db);
    await waitFor('some traffic', async () => l.writes > 10 && l.reads > 10);
    for (const c of file.coordinators) {
      process.kill(c.pid, 'SIGSTOP');
      stopped.push(c.pid);
    }
    try {
      await waitFor('the pool to find the primary itself', async () => db.stats().discoveredPrimary === 'pg1', 20_000, 100);
      expect(db.stats().stale).toBe(true);
      const w0 = l.writes;
      const r0 = l.reads;
      await waitFor('traffic without the control plane', async () => l.writes > w0 + 20 && l.reads > r0 + 20, 20_000);
      // a new pool has no table to keep: a coded error, not a hang
      const late = new ReplicatedPool({ routing: file.coordinators.map((c) => c.api), cluster: file.cluster });
      pools.push(late);
      await expect(late.ready(1000)).rejects.toBeInstanceOf(RoutingUnavailableError);
    } finally {
      for (const c of file.coordinators) process.kill(c.pid, 'SIGCONT');
      stopped.length = 0;
    }
    await waitFor('the pool following the control plane again', async () => !db.stats().stale && db.stats().discoveredPrimary === null, 30_000, 100);
    await l.stop();
    expect(l.readErrors).toEqual([]);
    expect(l.writeErrors).toEqual([]);
  });

  it('drains at a switchover: no new transaction on the old primary, writes held and sent to the new one, zero failed app queries', async () => {
    await waitFor('a healthy cluster', async () => {
      const t = await routing(file.api, file.cluster);
      return t.writable && t.replicas.every((r) => r.healthy);
    }, 60_000);
    // no periodic refresh: the new table can only come by the SSE push (a refresh GET in flight could otherwise bring it first)
    const db = await open({ refreshMs: 0 });
    const changes: Array<RoutingChangedEvent & { at: number }> = [];
    db.on('routing-changed', (e) => changes.push({ ...e, at: Date.now() }));
    const errs: Array<{ at: number; nodeId: string | null; message: string; willRetry: boolean }> = [];
    db.on('query-error', (e) => errs.push({ at: Date.now(), nodeId: e.nodeId, message: e.error.message, willRetry: e.willRetry }));
    const l = load(db);
    await waitFor('some traffic', async () => l.writes > 20);
    const before = (await routing(file.api, file.cluster)).primary!;
    const res = await fetch(`${file.api}/v1/clusters/${file.cluster}/switchover`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${file.adminToken}` }, body: JSON.stringify({}) });
    expect(res.status).toBe(202);
    const after = await newPrimaryTakesWrites(before.id, l);
    expect(l.readErrors).toEqual([]);
    expect(l.writeErrors).toEqual([]);
    const newPrimarySeen = changes.find((c) => c.primary === after.id)!;
    expect(newPrimarySeen.source).toBe('sse');
    const resume = resumeOf(changes, l, after);
    if (errs.length > 0) console.log(`retried or failed statements: ${errs.map((e) => `${e.nodeId} ${e.willRetry ? 'retried' : 'failed'}: ${e.message}`).join(' | ')}`);
    console.log(`switchover: ${l.writes} writes, ${l.reads} reads, 0 failed; ${describeResume(resume)}`);
    // no write acknowledged by the old primary after the pool learned of the new one
    expect(l.acked.filter((a) => a.port === before.port && a.at > newPrimarySeen.at)).toEqual([]);
    // the goal is 100 ms (measured by the bench); the bound is generous for a loaded CI machine, and still far below the hold (15 s)
    expect(resume.resumeMs).toBeLessThan(5000);
    // the pool's own part: the held write goes out as soon as the table is in (no waiting out the hold)
    expect(resume.dispatchMs).toBeLessThan(1000);
  });

  it('a failover under load (kill -9 of the primary): reads continue, writes move to the new primary', async () => {
    await waitFor('a healthy cluster', async () => {
      const t = await routing(file.api, file.cluster);
      return t.writable && t.replicas.every((r) => r.healthy) ? t : null;
    }, 90_000);
    const db = await open();
    const changes: Array<RoutingChangedEvent & { at: number }> = [];
    db.on('routing-changed', (e) => changes.push({ ...e, at: Date.now() }));
    const retries = readRetries(db);
    const l = load(db);
    await waitFor('some traffic', async () => l.writes > 20);
    const before = (await routing(file.api, file.cluster)).primary!;
    const node = file.nodes.find((n) => n.id === before.id)!;
    const killedAt = Date.now();
    process.kill(postmasterPid(node.dataDir), 'SIGKILL');
    const after = await newPrimaryTakesWrites(before.id, l);
    const resume = resumeOf(changes, l, after);
    console.log(`failover: routing changed ${resume.journaledAt - killedAt} ms after the kill; ${describeResume(resume)}; ${l.writeErrors.length} write errors (${[...new Set(l.writeErrors.map((e) => e.message))].join(' | ')}); ${l.reads} reads, ${retries.retried} retried once on another node, ${l.readErrors.length} failed`);
    // reads never fail: a read on the dying node is retried once on another, and that one succeeds
    expect(l.readErrors).toEqual([]);
    expect(retries.failed).toBe(0);
    // writes resume on the new primary right after the routing change (goal 100 ms, measured by the bench; a generous bound for a loaded CI machine, far below the hold)
    expect(resume.resumeMs).toBeLessThan(5000);
    expect(resume.dispatchMs).toBeLessThan(1000);
    // a write may fail only if it was in flight on the killed primary: at most one (one writer)
    expect(l.writeErrors.length, JSON.stringify(l.writeErrors)).toBeLessThanOrEqual(1);
  });
});
