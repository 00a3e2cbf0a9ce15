/**
 * RoutingFollower against small HTTP servers that speak the routing API's SSE: a stream
 * to every URL at once, each generation taken from whichever delivers it first, never
 * an older one, and no error reported while one stream is open. And its long-poll, as
 * the API answers it (ETag = the table's version, generation plus lag digest): chosen
 * when the stream is refused, one request per change, never a busy loop.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { announce, type Announcement, type RoutingTable } from '../../src/core/routing.js';
import { matchesEtag } from '../../src/api/http.js';
import { RoutingFollower, type TableSource } from '../../src/client/follower.js';

function table(generation: number, primary: string): RoutingTable {
  return { cluster: 'c', engine: 'postgres', generation, epoch: 1, writable: true, updatedAt: new Date().toISOString(), primary: { id: primary, host: '127.0.0.1', port: 5432 }, replicas: [] };
}

interface FakeApi {
  url: string;
  send: (t: RoutingTable) => void;
  close: () => Promise<void>;
}

/** A coordinator's SSE endpoint: the current table on connect, then whatever `send` pushes. */
async function fakeApi(first: RoutingTable): Promise<FakeApi> {
  const streams = new Set<http.ServerResponse>();
  const server = http.createServer((req, res) => {
    if (!req.url?.endsWith('/routing/stream')) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'Content-Type': 'text/event-stream' });
    res.write(`event: routing\ndata: ${JSON.stringify(first)}\n\n`);
    streams.add(res);
    res.on('close', () => streams.delete(res));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    send: (t) => {
      for (const s of streams) s.write(`event: routing\ndata: ${JSON.stringify(t)}\n\n`);
    },
    close: async () => {
      for (const s of streams) s.destroy();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}

async function until(what: string, fn: () => boolean, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('RoutingFollower by SSE', () => {
  const cleanup: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const c of cleanup.splice(0)) await c();
  });

  it('holds a stream to every URL, takes a change from the first to deliver it, never goes back a generation', async () => {
    const a = await fakeApi(table(1, 'pg1'));
    const b = await fakeApi(table(1, 'pg1'));
    cleanup.push(a.close, b.close);
    const got: Array<{ generation: number; primary: string | null; source: TableSource }> = [];
    const f = new RoutingFollower({ urls: [a.url, b.url], cluster: 'c', transport: 'sse', refreshMs: 0, requestTimeoutMs: 1000 }, (t, source) => got.push({ generation: t.generation, primary: t.primary?.id ?? null, source }), () => {});
    cleanup.unshift(() => f.stop());
    f.start();
    await until('both streams', () => got.length >= 2);
    // only the second coordinator has the change yet (the leader): it arrives from there
    b.send(table(2, 'pg2'));
    await until('generation 2', () => got.some((g) => g.generation === 2));
    expect(got.find((g) => g.generation === 2)).toEqual({ generation: 2, primary: 'pg2', source: 'sse' });
    // the first one catches up later, and an older table from it changes nothing
    const n = got.length;
    a.send(table(1, 'pg1'));
    a.send(table(2, 'pg2'));
    await until('the late copy', () => got.length > n);
    expect(got.slice(n).every((g) => g.generation === 2 && g.primary === 'pg2')).toBe(true);
    expect(f.generation).toBe(2);
  });

  it('reports no error while one stream is open, though another URL refuses; the error once none is', async () => {
    const a = await fakeApi(table(5, 'pg1'));
    cleanup.push(a.close);
    const errors: string[] = [];
    const f = new RoutingFollower({ urls: ['http://127.0.0.1:1', a.url], cluster: 'c', transport: 'sse', refreshMs: 0, requestTimeoutMs: 1000 }, () => {}, (err, url) => errors.push(`${url}: ${err.message}`));
    cleanup.unshift(() => f.stop());
    f.start();
    await until('a table', () => f.generation === 5);
    await until('an error from the dead URL', () => errors.length > 0);
    expect(errors[0]).toMatch(/^http:\/\/127\.0\.0\.1:1: /);
    expect(f.lastError).toBeNull();
    await a.close();
    await until('the error, with no stream open', () => f.lastError !== null);
  });
});

interface PollApi {
  url: string;
  /** every request: the path and its If-None-Match */
  requests: Array<{ path: string; inm: string | null }>;
  set: (t: RoutingTable) => void;
  close: () => Promise<void>;
}

/**
 * A coordinator that refuses the stream (404, an older API or a proxy) and long-polls as
 * the real routing route does: the ETag is the announced version (`routingVersion`:
 * generation and lag digest); If-None-Match on it with ?waitMs= waits for a change, then 304.
 */
async function pollApi(first: RoutingTable): Promise<PollApi> {
  let table = first;
  let ann: Announcement = announce(null, first, Date.now())!;
  const waiters = new Set<() => void>();
  const requests: PollApi['requests'] = [];
  const server = http.createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://x');
    const inm = req.headers['if-none-match'] ?? null;
    requests.push({ path: u.pathname, inm: typeof inm === 'string' ? inm : null });
    if (u.pathname.endsWith('/routing/stream')) {
      res.writeHead(404).end();
      return;
    }
    const send = (): void => {
      res.writeHead(200, { 'content-type': 'application/json', etag: `"${ann.version}"` }).end(JSON.stringify(table));
    };
    if (typeof inm !== 'string' || !matchesEtag(inm, `"${ann.version}"`)) return send();
    const version = ann.version;
    const timer = setTimeout(done, Number(u.searchParams.get('waitMs') ?? 0));
    function done(): void {
      clearTimeout(timer);
      waiters.delete(done);
      if (ann.version !== version) send();
      else res.writeHead(304, { etag: `"${version}"` }).end();
    }
    waiters.add(done);
    res.on('close', () => waiters.delete(done));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    set: (t) => {
      table = t;
      ann = announce(ann, t, Date.now() + 60_000) ?? ann;
      for (const w of [...waiters]) w();
    },
    close: async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}

describe('RoutingFollower by long-poll', () => {
  const cleanup: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const c of cleanup.splice(0)) await c();
  });

  const lagging = (generation: number, lagBytes: number): RoutingTable => ({ ...table(generation, 'pg1'), replicas: [{ id: 'pg2', host: '127.0.0.1', port: 5433, healthy: true, lagMs: 0, lagBytes, replayLsn: null } as unknown as RoutingTable['replicas'][number]] });

  it('falls back to long-polling when the stream is refused; waits on the ETag it was given (no busy loop); a lag change of the same generation arrives', async () => {
    const api = await pollApi(lagging(3, 0));
    cleanup.push(api.close);
    const got: Array<{ generation: number; lagBytes: number | null; source: TableSource }> = [];
    const f = new RoutingFollower({ urls: [api.url], cluster: 'c', transport: 'sse', refreshMs: 0, requestTimeoutMs: 1000 }, (t, source) => got.push({ generation: t.generation, lagBytes: t.replicas[0]?.lagBytes ?? null, source }), () => {});
    cleanup.unshift(() => f.stop());
    f.start();
    await until('a table by long-poll', () => got.length > 0);
    expect(got[0]).toEqual({ generation: 3, lagBytes: 0, source: 'poll' });
    // a quiet table: the long-poll waits on the server (one pending request), it does not spin
    await new Promise((r) => setTimeout(r, 1000));
    const polls = api.requests.filter((r) => !r.path.endsWith('/stream'));
    expect(polls.length, `requests in a quiet second: ${polls.length}`).toBeLessThanOrEqual(3);
    expect(got.length).toBe(1);
    expect(polls.at(-1)!.inm).toMatch(/^"3\.[0-9a-z]+"$/);
    // the replica falls behind (same generation, new version): delivered by the pending poll
    api.set(lagging(3, 50_000_000));
    await until('the lag', () => got.some((g) => g.lagBytes === 50_000_000));
    expect(got.at(-1)).toEqual({ generation: 3, lagBytes: 50_000_000, source: 'poll' });
    // a new generation, too
    api.set(lagging(4, 50_000_000));
    await until('generation 4', () => f.generation === 4);
  });
});
