/**
 * The MongoDB engine end to end, against the wire-protocol STAND-IN (test/support/mongo-standin/,
 * NOT a mongod): a coordination redis-server, one coordinator serving the API, and three real
 * agents (engine mongodb, observe-only) in this process, watching a 3-member stand-in set.
 * The routing table names the primary and the secondaries with staleness; an election the set
 * holds by itself (its primary stopped) is journaled with evidence and routed; a stale primary
 * after a partition is never routed; a switchover through the API steps down to the chosen
 * target; createMongoClient follows the new primary.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from '../../agent/agent.js';
import { startCoordinator, type RunningCoordinator } from '../../coordinator/main.js';
import { createMongoClient } from '../../src/client/mongo.js';
import { loadAgentConfigFrom } from '../../src/config/load.js';
import type { HistoryItem as Item } from '../../src/cli/ctl-render.js';
import type { RoutingTable } from '../../src/core/routing.js';
import { RedisServer } from '../../src/sandbox/redis.js';
import { MongoStandin } from '../support/mongo-standin/replset.js';
import { waitFor } from '../support/sandbox.js';

const CLUSTER = 'rs';
const TOKEN = 'mongo-e2e-admin-token-0123456789';
const quiet = () => pino({ level: 'silent' });

interface Ev {
  type: string;
  data: Record<string, unknown>;
}

describe('mongodb through agents and a coordinator (stand-in set, not a mongod)', () => {
  let dir: string;
  let redis: RedisServer;
  let set: MongoStandin;
  let coord: RunningCoordinator;
  const agents: Agent[] = [];
  const nodeOf = (name: string | undefined): string => `m${String(set.members.findIndex((m) => m.name === name) + 1)}`;

  async function table(): Promise<RoutingTable> {
    return (await (await fetch(`${coord.url}/v1/clusters/${CLUSTER}/routing`)).json()) as RoutingTable;
  }
  async function events(): Promise<Ev[]> {
    return ((await (await fetch(`${coord.url}/v1/clusters/${CLUSTER}/events?limit=1000`)).json()) as { events: Ev[] }).events;
  }
  const facts = async (fact: string): Promise<Array<Record<string, unknown>>> => (await events()).filter((e) => e.type === 'set.changed' && e.data.fact === fact).map((e) => e.data);
  const history = async (): Promise<Item[]> => (await (await fetch(`${coord.url}/v1/clusters/${CLUSTER}/history`)).json()) as Item[];
  const routedPrimary = async (id: string): Promise<RoutingTable | null> => {
    const t = await table();
    return t.writable && t.primary?.id === id ? t : null;
  };

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sy-mongo-e2e-'));
    redis = await RedisServer.start(dir);
    set = await MongoStandin.start({ members: 3, electionDelayMs: 100 });
    coord = await startCoordinator({
      id: 'c1',
      redis: redis.url,
      clusters: [{ name: CLUSTER, engine: 'mongodb', settings: { agentTimeoutMs: 3000 } }],
      api: { host: '127.0.0.1', port: 0 },
      adminToken: TOKEN,
      leaseTtlMs: 1000,
      tickMs: 50,
      logLevel: 'silent',
    });
    for (const [i, m] of set.members.entries()) {
      const cfg = loadAgentConfigFrom(undefined, {
        SWITCHYARD_CLUSTER: CLUSTER,
        SWITCHYARD_NODE: `m${String(i + 1)}`,
        SWITCHYARD_ENGINE: 'mongodb',
        SWITCHYARD_REDIS: redis.url,
        SWITCHYARD_PG_HOST: '127.0.0.1',
        SWITCHYARD_PG_PORT: String(m.port),
        SWITCHYARD_PROBE_INTERVAL_MS: '100',
        SWITCHYARD_LOG_LEVEL: 'silent',
      }).config;
      const a = new Agent(cfg, quiet());
      await a.start();
      agents.push(a);
    }
  }, 60_000);

  afterAll(async () => {
    for (const a of agents) await a.stop().catch(() => {});
    await coord?.stop().catch(() => {});
    await set?.close();
    await redis?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it('the routing table names the primary and the secondaries, each with lastWriteDate and staleness', async () => {
    const primary = nodeOf(set.primary()?.name);
    const t = await waitFor('the set routed', async () => {
      const x = await routedPrimary(primary);
      return x && x.replicas.filter((r) => r.healthy).length === 2 ? x : null;
    });
    expect(t.engine).toBe('mongodb');
    expect(t.setName).toBe('rs0');
    expect(t.primary?.lastWriteDate).toMatch(/^\d{4}-/);
    for (const r of t.replicas) {
      expect(r.lastWriteDate).toMatch(/^\d{4}-/);
      expect(typeof r.stalenessMs).toBe('number');
      expect(r.stalenessMs).toBeGreaterThanOrEqual(0);
    }
    const el = await facts('election');
    expect(el[0]).toMatchObject({ member: set.primary()?.name, node: primary });
    expect(String(el[0]?.evidence)).toMatch(/isWritablePrimary/);
    const list = (await (await fetch(`${coord.url}/v1/clusters`)).json()) as Array<{ name: string; engine: string; primary: string | null }>;
    expect(list).toEqual([expect.objectContaining({ name: CLUSTER, engine: 'mongodb', primary })]);
  }, 60_000);

  it('the primary dies: the set elects another by itself; the journal records the step-down and the election with evidence, and the table names the new primary', async () => {
    const old = set.primary()!;
    await set.stop(old.id);
    const next = await waitFor('the stand-in elects', async () => set.primary() ?? null);
    await waitFor('the new primary routed', () => routedPrimary(nodeOf(next.name)));
    // the old primary's end is journaled: a step-down (its agent reported first), or the election naming it previous
    const downs = await facts('step-down');
    const el = (await facts('election')).at(-1);
    expect(el).toMatchObject({ member: next.name, node: nodeOf(next.name) });
    expect(downs.some((d) => d.member === old.name) || el?.previous === old.name).toBe(true);
    expect(String(el?.evidence)).toMatch(new RegExp(`term ${String(next.term)}`));
    // no promotion, no failover by switchyard
    const types = (await events()).map((e) => e.type);
    expect(types).not.toContain('promotion.requested');
    expect(types).not.toContain('failover.started');
    // … but the change of primary is in the history: a failover the set did itself, with its evidence
    const item = await waitFor('the election in the history', async () => (await history()).find((h) => h.to === nodeOf(next.name)) ?? null);
    expect(item).toMatchObject({ id: expect.stringMatching(/^fo-\d+$/), kind: 'failover', from: nodeOf(old.name), outcome: 'success', lostBytes: 0 });
    expect(item.reason).toMatch(/^elected by the set: /);
    expect(item.durationMs).toBeGreaterThanOrEqual(0);
    expect(Date.parse(item.finishedAt!) - Date.parse(item.startedAt)).toBe(item.durationMs);
    const explained = (await (await fetch(`${coord.url}/v1/clusters/${CLUSTER}/operations/${item.id}`)).json()) as { operation: Item; evidence: Array<Record<string, unknown>>; entries: Ev[] };
    expect(explained.operation.id).toBe(item.id);
    expect(explained.entries.map((e) => `${e.type} ${String(e.data.fact)}`)).toEqual(['set.changed election']);
    expect(explained.evidence[0]).toMatchObject({ member: next.name, term: next.term });
    expect(String(explained.evidence[0]?.evidence)).toMatch(/isWritablePrimary/);
    await set.restart(old.id);
    await waitFor('the old primary back as a healthy secondary', async () => (await table()).replicas.find((r) => r.id === nodeOf(old.name))?.healthy === true);
  }, 60_000);

  it('a stale primary after a partition is journaled and never routed', async () => {
    const old = set.primary()!;
    set.partition(old.id);
    const next = await waitFor('the majority elects', async () => {
      const p = set.primary();
      return p && p.name !== old.name ? p : null;
    });
    await waitFor('the new primary routed', () => routedPrimary(nodeOf(next.name)));
    // the cut-off member still says PRIMARY, with the older election
    expect(old.state).toBe('PRIMARY');
    const stale = await waitFor('the stale primary journaled', async () => (await facts('stale-primary')).find((f) => f.member === old.name) ?? null);
    expect(String(stale.evidence)).toMatch(/older than/);
    for (let i = 0; i < 10; i++) {
      const t = await table();
      expect(t.primary?.id).not.toBe(nodeOf(old.name));
      expect(t.replicas.find((r) => r.id === nodeOf(old.name))?.healthy).toBe(false);
      await new Promise((r) => setTimeout(r, 100));
    }
    set.heal(old.id);
    await waitFor('the healed member a healthy secondary', async () => (await table()).replicas.find((r) => r.id === nodeOf(old.name))?.healthy === true, 30_000);
  }, 60_000);

  it('switchover through the API steps down to the chosen target; createMongoClient follows the new primary', async () => {
    const from = set.primary()!;
    await waitFor('all healthy', async () => (await table()).replicas.every((r) => r.healthy) && (await routedPrimary(nodeOf(from.name))));
    const client = await createMongoClient({ routing: coord.url, cluster: CLUSTER, heartbeatFrequencyMS: 500, serverSelectionTimeoutMS: 10_000, logger: quiet() });
    try {
      expect(client.seeds).toHaveLength(3);
      await client.writeWithConcern('orders', { insert: { n: 1 } });
      const target = set.members.find((m) => m.name !== from.name && m.state === 'SECONDARY')!;
      const res = await fetch(`${coord.url}/v1/clusters/${CLUSTER}/switchover`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
        body: JSON.stringify({ to: nodeOf(target.name) }),
      });
      expect(res.status).toBe(202);
      await waitFor('the target routed', () => routedPrimary(nodeOf(target.name)), 30_000);
      expect(set.primary()?.name).toBe(target.name);
      const items = await waitFor('the switchover done', async () => {
        const h = await history();
        return h.at(-1)?.outcome === 'success' ? h : null;
      });
      expect(items.at(-1)).toMatchObject({ id: expect.stringMatching(/^so-\d+$/), kind: 'switchover', from: nodeOf(from.name), to: nodeOf(target.name), outcome: 'success' });
      // the set's election it steered is not a second item; the earlier elections each have their own fo-N
      await waitFor('the election journaled', async () => (await facts('election')).some((f) => f.member === target.name));
      const after = await history();
      expect(after.filter((h) => h.to === nodeOf(target.name) && Date.parse(h.startedAt) >= Date.parse(items.at(-1)!.startedAt))).toHaveLength(1);
      expect(new Set(after.map((h) => h.id)).size).toBe(after.length);
      expect(after.filter((h) => h.kind === 'failover').length).toBeGreaterThanOrEqual(2);
      // the step-down is retried by the driver on the new primary
      await client.writeWithConcern('orders', { insert: { n: 2 } });
      const status = await client.getReplicaSetStatus();
      expect(status.me).toBe(target.name);
      const all = await client.db().collection('orders').find({}).toArray();
      expect(all.map((d) => d.n).sort()).toEqual([1, 2]);
    } finally {
      await client.close();
    }
  }, 90_000);

  it('pause with freezeSecs freezes elections on the secondaries (replSetFreeze); resume unfreezes them; a failover by hand is refused', async () => {
    const post = (what: string, body?: unknown) =>
      fetch(`${coord.url}/v1/clusters/${CLUSTER}/${what}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      });
    expect((await post('pause', { freezeSecs: 0 })).status).toBe(400);
    const primary = set.primary()!;
    const secondaries = () => set.members.filter((m) => m.name !== primary.name);
    expect((await post('pause', { freezeSecs: 120 })).status).toBe(200);
    await waitFor('the secondaries frozen', async () => secondaries().every((m) => m.frozenUntil > Date.now() + 60_000));
    expect((await table()).paused).toBe(true);
    expect((await post('resume')).status).toBe(200);
    await waitFor('the secondaries unfrozen', async () => secondaries().every((m) => m.frozenUntil <= Date.now()));
    const fo = await post('failover', { to: nodeOf(secondaries()[0]!.name) });
    expect(fo.status).toBe(409);
    expect(JSON.stringify(await fo.json())).toMatch(/elects its own primary/);
  }, 60_000);
});
