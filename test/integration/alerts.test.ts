/**
 * Two real coordinators over a real Redis: admin token names journaled as who did it,
 * the read token, the admin rate limit; webhook alerts delivered exactly once per
 * journal entry (with a retry, and across a leader change in the middle of a send);
 * and the lease handed off on stop (SIGTERM) within a second.
 */
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCoordinator, type RunningCoordinator } from '../../coordinator/main.js';
import { appendFenced } from '../../src/bus/journal.js';
import { keys } from '../../src/bus/keys.js';
import type { JournalEntry } from '../../src/events/journal.js';
import type { CoordinatorConfig, WebhookConfig } from '../../src/config/schemas.js';
import { RedisServer } from '../../src/sandbox/redis.js';
import { waitFor } from '../support/sandbox.js';

const CLUSTER = 'alerts';
const k = keys(CLUSTER);
const ALICE = 'alice-token-0123456789';
const BOB = 'bob-token-0123456789ab';
const READ = 'read-token-0123456789';

interface Received {
  at: number;
  key: string;
  body: { event: string; journalId: string; details: Record<string, unknown> };
  status: number;
}

describe('tokens, alerts and lease hand-off with real coordinators', () => {
  let dir: string;
  let redis: RedisServer;
  let client: Redis;
  let receiver: http.Server;
  let hookUrl: string;
  const received: Received[] = [];
  /** how the receiver answers the next request: a status, or a promise to wait on first */
  const plan: Array<{ status?: number; hold?: Promise<void> }> = [];
  const running = new Map<string, RunningCoordinator>();

  const webhook: WebhookConfig = { name: 'hook', kind: 'generic', url: '', events: ['cluster.paused', 'cluster.resumed'], unhealthyAfterMs: 30_000, timeoutMs: 10_000, retries: 3, backoffMs: 50 };

  async function coordinator(id: string): Promise<RunningCoordinator> {
    const cfg: CoordinatorConfig = {
      id,
      redis: redis.url,
      clusters: [{ name: CLUSTER, engine: 'postgres' }],
      api: { host: '127.0.0.1', port: 0, adminRateLimit: 20 },
      adminTokens: [
        { name: 'alice', token: ALICE },
        { name: 'bob', token: BOB },
      ],
      readToken: READ,
      leaseTtlMs: 3000,
      tickMs: 50,
      webhooks: [{ ...webhook, url: hookUrl }],
      logLevel: 'silent',
    };
    const c = await startCoordinator(cfg);
    running.set(id, c);
    return c;
  }
  const rt = (c: RunningCoordinator) => [...c.clusters.values()][0]!;

  async function post(c: RunningCoordinator, action: string, token?: string): Promise<Response> {
    return fetch(`${c.url}/v1/clusters/${CLUSTER}/${action}`, { method: 'POST', headers: token ? { authorization: `Bearer ${token}` } : {} });
  }
  async function journal(c: RunningCoordinator, type: string): Promise<Array<{ id: string; data: Record<string, unknown> }>> {
    const res = await fetch(`${c.url}/v1/clusters/${CLUSTER}/events?limit=1000&type=${type}`, { headers: { authorization: `Bearer ${READ}` } });
    return ((await res.json()) as { events: Array<{ id: string; data: Record<string, unknown> }> }).events;
  }
  const delivered = (): Received[] => received.filter((r) => r.status === 200);

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sy-alerts-'));
    redis = await RedisServer.start(dir);
    client = new Redis(redis.url);
    receiver = http.createServer((req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => {
        const step = plan.shift() ?? {};
        const answer = (): void => {
          const status = step.status ?? 200;
          received.push({ at: Date.now(), key: String(req.headers['idempotency-key']), body: JSON.parse(body) as Received['body'], status });
          res.writeHead(status).end();
        };
        if (step.hold) void step.hold.then(answer);
        else answer();
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    hookUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
  }, 30_000);

  afterAll(async () => {
    for (const c of running.values()) await c.stop().catch(() => {});
    client?.disconnect();
    await redis?.stop();
    receiver?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }, 30_000);

  it('journals the admin token\'s name as who did it; read routes need the read token', async () => {
    const a = await coordinator('a');
    await waitFor('a leads', async () => rt(a).isLeader, 10_000);
    const b = await coordinator('b');
    expect((await post(b, 'pause')).status).toBe(401);
    expect((await post(b, 'pause', 'not-a-token-at-all-xx')).status).toBe(401);
    expect((await post(b, 'pause', READ)).status).toBe(401);
    const r = await post(b, 'pause', ALICE); // any coordinator takes commands; the leader carries them out
    expect(r.status).toBe(200);
    const paused = await waitFor('paused journaled', async () => (await journal(a, 'cluster.paused'))[0], 10_000);
    expect(paused.data.by).toBe('alice');

    expect((await fetch(`${a.url}/v1/clusters/${CLUSTER}/routing`)).status).toBe(401);
    expect((await fetch(`${a.url}/v1/clusters/${CLUSTER}/routing`, { headers: { authorization: `Bearer ${READ}` } })).status).toBe(200);
    expect((await fetch(`${a.url}/v1/clusters/${CLUSTER}/routing`, { headers: { authorization: `Bearer ${BOB}` } })).status).toBe(200);
    // health checks stay open for HAProxy and PgBouncer
    expect((await fetch(`${a.url}/v1/clusters/${CLUSTER}/nodes/pg1/health`)).status).not.toBe(401);
    expect((await fetch(`${a.url}/healthz`)).status).toBe(200);
  }, 60_000);

  it('sends each selected journal entry once, retrying a failed delivery with backoff', async () => {
    const a = running.get('a')!;
    await waitFor('paused alert', async () => delivered().find((x) => x.body.event === 'cluster.paused'), 10_000);
    plan.push({ status: 500 }, { status: 503 });
    expect((await post(a, 'resume', BOB)).status).toBe(200);
    const resumed = await waitFor('resumed alert', async () => delivered().find((x) => x.body.event === 'cluster.resumed'), 10_000);
    expect(resumed.body.details.by).toBe('bob');
    const attempts = received.filter((x) => x.body.event === 'cluster.resumed');
    expect(attempts.map((x) => x.status)).toEqual([500, 503, 200]);
    // the backoff doubles: at least backoffMs (50) before the first retry, 100 before the second
    expect(attempts[1]!.at - attempts[0]!.at).toBeGreaterThanOrEqual(50);
    expect(attempts[2]!.at - attempts[1]!.at).toBeGreaterThanOrEqual(100);
    await new Promise((r) => setTimeout(r, 800)); // nothing more comes
    expect(delivered().map((x) => x.body.event)).toEqual(['cluster.paused', 'cluster.resumed']);
  }, 60_000);

  it('a leader change in the middle of a send: the entry is still sent exactly once', async () => {
    const a = running.get('a')!;
    const b = running.get('b')!;
    let release!: () => void;
    plan.push({ hold: new Promise<void>((r) => (release = r)) });
    const before = received.length;
    expect((await post(a, 'pause', ALICE)).status).toBe(200);
    // the leader's send is in the receiver's hands; now the lease moves to b
    await waitFor('a send in flight', async () => plan.length === 0, 10_000);
    // take the lease from a (as an expiry would) and wake the followers, as a release does:
    // b contends at once, before a's next renewal (repeat in the rare case a wins the race)
    await waitFor('b leads', async () => {
      if (rt(b).isLeader) return true;
      await client.multi().del(k.leader).publish(k.wake, 'lease-released').exec();
      await new Promise((r) => setTimeout(r, 1200));
      if (!rt(b).isLeader) console.log(`lease after DEL: ${await client.get(k.leader)}; a leader ${rt(a).isLeader}, b holder seen ${rt(b).lease.holder}`);
      return rt(b).isLeader;
    }, 30_000);
    expect(rt(a).isLeader).toBe(false);
    expect((await post(b, 'resume', BOB)).status).toBe(200);
    await new Promise((r) => setTimeout(r, 1000)); // b must wait for a's claim, not resend
    expect(received.length).toBe(before);
    release();
    await waitFor('both alerts', async () => (delivered().length >= 4 ? true : null), 15_000);
    await new Promise((r) => setTimeout(r, 1000));
    const events = delivered().map((x) => x.body.event);
    expect(events).toEqual(['cluster.paused', 'cluster.resumed', 'cluster.paused', 'cluster.resumed']);
    // one delivery per journal entry, and the keys say so
    const ids = delivered().map((x) => x.body.journalId);
    expect(new Set(ids).size).toBe(ids.length);
    expect(new Set(delivered().map((x) => x.key)).size).toBe(ids.length);
    const pauses = await journal(b, 'cluster.paused');
    expect(pauses.map((p) => p.id)).toEqual(delivered().filter((x) => x.body.event === 'cluster.paused').map((x) => x.body.journalId));
  }, 60_000);

  it('a stopping leader releases its lease: another coordinator leads within a second', async () => {
    const a = running.get('a')!;
    const b = running.get('b')!;
    expect(rt(b).isLeader).toBe(true);
    await b.stop();
    const released = Date.now();
    running.delete('b');
    await waitFor('a leads', async () => rt(a).isLeader, 15_000, 10);
    const handoffMs = Date.now() - released;
    console.log(`lease hand-off after stop: ${handoffMs} ms`);
    // a release, not an expiry: the lease (3 s TTL, renewed every 1 s) had at least 2 s left (generous for a loaded machine)
    expect(handoffMs).toBeLessThan(2000);
  }, 30_000);

  it('PagerDuty: a node unhealthy past the limit triggers, healthy again resolves; a failover triggers and its completion resolves (sinks changed by reload)', async () => {
    const a = running.get('a')!;
    const r = rt(a);
    expect(r.isLeader).toBe(true);
    const pd: WebhookConfig = { name: 'pd', kind: 'pagerduty', url: hookUrl, routingKey: 'pd-routing-key', events: ['failover.started', 'failover.completed', 'failover.failed', 'node.unhealthy', 'node.healthy'], unhealthyAfterMs: 2000, timeoutMs: 5000, retries: 2, backoffMs: 50 };
    const cfg = { id: 'a', redis: redis.url, clusters: [{ name: CLUSTER, engine: 'postgres' as const }], api: { host: '127.0.0.1', port: 0 }, leaseTtlMs: 3000, tickMs: 50, webhooks: [pd], logLevel: 'silent' };
    const d = a.reload(cfg);
    expect(d.live).toContain('webhooks');
    // the new sink starts at the journal's end as of the reload: wait until the leader has
    // given it a cursor (a fixed sleep let a slow reload start it after the entries below)
    const pdHash = `${k.log.replace(/:log$/, '')}:alerts:pd`;
    await waitFor('the new sink\'s cursor', async () => (await client.hget(pdHash, 'cursor')) !== null, 10_000);
    const from = received.length;
    // journal entries as the leader writes them (fenced by its lease token)
    const append = async (e: Record<string, unknown>): Promise<string> => (await appendFenced(client, k, r.lease.token!, [{ v: 1, at: Date.now(), epoch: r.lease.epoch, ...e } as unknown as JournalEntry]))[0]!;
    const down1 = await append({ type: 'node.health-changed', node: 'pg7', healthy: false, reason: 'probe timeout' });
    await append({ type: 'node.health-changed', node: 'pg8', healthy: false, reason: 'probe timeout' });
    await new Promise((res) => setTimeout(res, 200));
    await append({ type: 'node.health-changed', node: 'pg8', healthy: true, reason: 'streaming' }); // back within the limit: no alert
    const trigger = await waitFor('unhealthy trigger', async () => received.slice(from).find((x) => (x.body as unknown as { event_action: string }).event_action === 'trigger'), 10_000);
    const t = trigger.body as unknown as { routing_key: string; dedup_key: string; payload: { summary: string; severity: string; source: string; class: string } };
    expect(t.routing_key).toBe('pd-routing-key');
    expect(t.dedup_key).toBe(`switchyard/${CLUSTER}/node/pg7/unhealthy/${down1}`);
    expect(t.payload).toMatchObject({ severity: 'error', class: 'node.unhealthy' });
    expect(t.payload.summary).toMatch(/pg7 unhealthy for \d+ s: probe timeout/);
    await append({ type: 'node.health-changed', node: 'pg7', healthy: true, reason: 'streaming' });
    await append({ type: 'failover.started', operationId: 'fo-test-1', kind: 'failover', from: 'pg7', to: 'pg9', reason: 'primary refused', manual: false, lostBytes: 0, evidence: [] });
    await append({ type: 'failover.completed', operationId: 'fo-test-1', outcome: 'success', durationMs: 1234, reason: 'promoted' });
    await waitFor('four PagerDuty events', async () => (received.slice(from).length >= 4 ? true : null), 10_000);
    await new Promise((res) => setTimeout(res, 800));
    const events = received.slice(from).map((x) => x.body as unknown as { event_action: string; dedup_key: string });
    expect(events.map((e) => [e.event_action, e.dedup_key])).toEqual([
      ['trigger', `switchyard/${CLUSTER}/node/pg7/unhealthy/${down1}`],
      ['resolve', `switchyard/${CLUSTER}/node/pg7/unhealthy/${down1}`],
      ['trigger', `switchyard/${CLUSTER}/operation/fo-test-1`],
      ['resolve', `switchyard/${CLUSTER}/operation/fo-test-1`],
    ]);
  }, 60_000);

  it('rate-limits admin requests per address', async () => {
    const a = running.get('a')!;
    const codes: number[] = [];
    for (let i = 0; i < 40; i++) codes.push((await post(a, 'pause', 'wrong-token-but-counted')).status);
    expect(codes.filter((c) => c === 429).length).toBeGreaterThan(0);
    expect(codes.slice(0, 15).every((c) => c === 401)).toBe(true);
  }, 30_000);
});
