/**
 * The routing API over fake clusters (folded state from the test helpers), through
 * `app.inject`: answers against their documented schemas, bad input, the error
 * catalogue, /metrics, /docs (OpenAPI) and the dashboard.
 */
import fs from 'node:fs';
import http from 'node:http';
import type { FastifyInstance, InjectOptions } from 'fastify';
import { FormatRegistry, type TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { afterEach, describe, expect, it } from 'vitest';
import { buildApi, type ApiCluster } from '../../src/api/server.js';
import { ERRORS, ERROR_CODES } from '../../src/api/errors.js';
import { openApiPath } from '../../src/api/openapi.js';
import * as S from '../../src/api/schemas.js';
import { routingTable, type RoutingTable } from '../../src/core/routing.js';
import { compareStreamIds, type ClusterState, type HistoryItem } from '../../src/core/state.js';
import type { Command } from '../../src/events/observation.js';
import { CLUSTER, healthyCluster, obs, type Sim } from './helpers.js';

FormatRegistry.Set('date-time', (v) => !Number.isNaN(Date.parse(v)));

const TOKEN = 'test-admin-token';

interface FakeCluster extends ApiCluster {
  state: ClusterState;
  table: RoutingTable;
  isLeader: boolean;
  submitted: Command[];
}

/**
 * An ApiCluster over a Sim's folded state and journal. `answer` plays the leader: it
 * returns the reason a command is refused, or null to carry it out (pause / resume
 * flip `paused`).
 */
function fake(sim: Sim, opts: { name?: string; answer?: (cmd: Command) => string | null } = {}): FakeCluster {
  const answer = opts.answer ?? (() => null);
  const c: FakeCluster = {
    name: opts.name ?? sim.state.cluster,
    state: sim.state,
    table: routingTable(sim.state),
    isLeader: true,
    ready: true,
    submitted: [],
    waitForChange: () => Promise.resolve(null),
    on: () => undefined,
    off: () => undefined,
    readJournal: (after, limit) => Promise.resolve(sim.journal.filter((r) => compareStreamIds(r.id, after) > 0).slice(0, limit)),
    submit: (cmd) => {
      c.submitted.push(cmd);
      const rejected = answer(cmd);
      let paused = c.state.paused;
      if (rejected === null && cmd.action === 'pause') paused = true;
      if (rejected === null && cmd.action === 'resume') paused = false;
      // as the leader answers: an operation it starts gets the next fo-N / so-N
      const started = rejected === null && (cmd.action === 'switchover' || cmd.action === 'failover');
      const operationId = started ? `${cmd.action === 'switchover' ? 'so' : 'fo'}-${c.state.opSeq + 1}` : undefined;
      c.state = { ...c.state, paused, opSeq: c.state.opSeq + (started ? 1 : 0), handledCommands: [...c.state.handledCommands, operationId ? { id: cmd.id, rejected, operationId } : { id: cmd.id, rejected }] };
      return Promise.resolve('1-0');
    },
  };
  return c;
}

const apps: FastifyInstance[] = [];
function api(clusters: FakeCluster[], adminToken: string | null = TOKEN): FastifyInstance {
  const app = buildApi({ clusters: new Map(clusters.map((c) => [c.name, c])), coordinatorId: 'co1', adminToken: adminToken ?? undefined });
  apps.push(app);
  return app;
}
afterEach(async () => {
  await Promise.all(apps.splice(0).map((a) => a.close()));
});

const auth = { authorization: `Bearer ${TOKEN}` };

function history(patch: Partial<HistoryItem>): HistoryItem {
  return { id: 'op-1', kind: 'failover', from: 'pg1', to: 'pg2', reason: 'primary down', startedAt: '2026-01-01T00:00:00.000Z', finishedAt: '2026-01-01T00:00:01.000Z', durationMs: 1000, lostBytes: 0, outcome: 'success', forkLsn: null, lossMeasured: false, ...patch };
}

/** Assert a JSON body conforms to a documented response schema. */
function conforms(schema: TSchema, body: unknown): void {
  const errors = [...Value.Errors(schema, body)].map((e) => `${e.path}: ${e.message}`);
  expect(errors).toEqual([]);
}

describe('routes answer what they document', () => {
  it('lists clusters and serves the routing table with an ETag and 304', async () => {
    const c = fake(healthyCluster());
    const app = api([c]);
    const list = await app.inject('/v1/clusters');
    expect(list.statusCode).toBe(200);
    conforms(S.ClusterList, list.json());
    expect(list.json()).toEqual([expect.objectContaining({ name: CLUSTER, primary: 'pg1', generation: c.table.generation, paused: false })]);

    const r = await app.inject(`/v1/clusters/${CLUSTER}/routing`);
    expect(r.statusCode).toBe(200);
    conforms(S.RoutingTable, r.json());
    expect(r.json()).toEqual(c.table);
    expect(r.headers.etag).toBe(`"${c.table.generation}"`);

    const again = await app.inject({ url: `/v1/clusters/${CLUSTER}/routing?waitMs=10`, headers: { 'if-none-match': r.headers.etag! } });
    expect(again.statusCode).toBe(304);
  });

  it('pages through the journal as events, with a cursor and a type filter', async () => {
    const sim = healthyCluster();
    const app = api([fake(sim)]);
    const first = await app.inject(`/v1/clusters/${CLUSTER}/events?limit=2`);
    expect(first.statusCode).toBe(200);
    conforms(S.EventsPage, first.json());
    const page = first.json<{ events: Array<{ id: string; type: string }>; next: string }>();
    expect(page.events.map((e) => e.id)).toEqual(sim.journal.slice(0, 2).map((r) => r.id));
    expect(page.next).toBe(sim.journal[1]!.id);
    const rest = (await app.inject(`/v1/clusters/${CLUSTER}/events?after=${page.next}&limit=1000`)).json<typeof page>();
    expect(rest.events.length).toBe(sim.journal.length - 2);
    const registered = (await app.inject(`/v1/clusters/${CLUSTER}/events?type=node.registered`)).json<typeof page>();
    expect(registered.events.length).toBe(3);
    expect(new Set(registered.events.map((e) => e.type))).toEqual(new Set(['node.registered']));
  });

  it('serves the history and node health', async () => {
    const sim = healthyCluster();
    const c = fake(sim);
    c.state = { ...c.state, history: [history({})] };
    const app = api([c]);
    const h = await app.inject(`/v1/clusters/${CLUSTER}/history`);
    conforms(S.History, h.json());
    expect(h.json()).toEqual([history({})]);

    const primary = await app.inject(`/v1/clusters/${CLUSTER}/nodes/pg1/health?role=primary`);
    expect(primary.statusCode).toBe(200);
    conforms(S.HealthAnswer, primary.json());
    const notPrimary = await app.inject(`/v1/clusters/${CLUSTER}/nodes/pg2/health?role=primary`);
    expect(notPrimary.statusCode).toBe(503);
    expect(notPrimary.json()).toMatchObject({ ok: false, node: 'pg2', reason: 'not the primary' });
    expect((await app.inject(`/v1/clusters/${CLUSTER}/nodes/pg2/health?role=replica&maxLagBytes=0`)).statusCode).toBe(200);
  });

  it('liveness and readiness', async () => {
    const c = fake(healthyCluster());
    const app = api([c]);
    expect((await app.inject('/healthz')).json()).toEqual({ ok: true, coordinator: 'co1' });
    expect((await app.inject('/readyz')).statusCode).toBe(200);
    (c as { ready: boolean }).ready = false;
    const r = await app.inject('/readyz');
    expect(r.statusCode).toBe(503);
    expect(r.json()).toEqual({ ok: false, notReady: [CLUSTER] });
  });
});

describe('GET /v1/clusters/:c/routing/stream', () => {
  it('sends the table as an SSE event, and does not keep close() waiting', async () => {
    const c = fake(healthyCluster());
    const app = api([c]);
    const url = await app.listen({ port: 0, host: '127.0.0.1' });
    const first = await new Promise<{ type: string | undefined; chunk: string }>((resolve, reject) => {
      http.get(`${url}/v1/clusters/${CLUSTER}/routing/stream`, (res) => res.once('data', (d: Buffer) => resolve({ type: res.headers['content-type'], chunk: String(d) }))).on('error', reject);
    });
    expect(first.type).toBe('text/event-stream');
    expect(first.chunk).toBe(`event: routing\nid: ${c.table.generation}\ndata: ${JSON.stringify(c.table)}\n\n`);
    const closed = await Promise.race([app.close().then(() => 'closed'), new Promise((r) => setTimeout(() => r('hung'), 10_000))]);
    expect(closed).toBe('closed');
  });
});

describe('admin routes', () => {
  it('need the token, and say so with catalogued codes', async () => {
    const c = fake(healthyCluster());
    expect((await api([c], null).inject({ method: 'POST', url: `/v1/clusters/${CLUSTER}/pause` })).json()).toMatchObject({ error: 'ADMIN_DISABLED' });
    const app = api([c]);
    const none = await app.inject({ method: 'POST', url: `/v1/clusters/${CLUSTER}/pause` });
    expect(none.statusCode).toBe(401);
    expect(none.json()).toMatchObject({ error: 'UNAUTHORIZED' });
    const wrong = await app.inject({ method: 'POST', url: `/v1/clusters/${CLUSTER}/pause`, headers: { authorization: 'Bearer nope' } });
    expect(wrong.statusCode).toBe(401);
    expect(c.submitted).toEqual([]);
  });

  it('switchover: 202 with the operation id; 409 when the leader refuses', async () => {
    const sim = healthyCluster();
    const ok = fake(sim);
    const r = await api([ok]).inject({ method: 'POST', url: `/v1/clusters/${CLUSTER}/switchover`, headers: auth, payload: { to: 'pg2' } });
    expect(r.statusCode).toBe(202);
    conforms(S.OperationAccepted, r.json());
    // the leader names the operation (so-N, like automatic failovers' fo-N); the command keeps its own id
    expect(r.json()).toMatchObject({ accepted: true, operationId: 'so-1', commandId: expect.stringMatching(/^cmd-/) });
    expect(ok.submitted).toMatchObject([{ action: 'switchover', to: 'pg2' }]);

    const refusing = fake(sim, { answer: () => 'operation op-1 is in flight' });
    const no = await api([refusing]).inject({ method: 'POST', url: `/v1/clusters/${CLUSTER}/failover`, headers: auth, payload: { to: 'pg2' } });
    expect(no.statusCode).toBe(409);
    expect(no.json()).toEqual({ error: 'REJECTED', message: 'failover refused: operation op-1 is in flight' });
  });

  it('pause and resume', async () => {
    const c = fake(healthyCluster());
    const app = api([c]);
    const p = await app.inject({ method: 'POST', url: `/v1/clusters/${CLUSTER}/pause`, headers: auth });
    expect(p.statusCode).toBe(200);
    conforms(S.PauseState, p.json());
    expect(p.json()).toMatchObject({ paused: true });
    expect((await app.inject({ method: 'POST', url: `/v1/clusters/${CLUSTER}/pause`, headers: auth })).json()).toEqual({ paused: true });
    expect((await app.inject({ method: 'POST', url: `/v1/clusters/${CLUSTER}/resume`, headers: auth })).json()).toMatchObject({ paused: false });
  });
});

describe('bad input', () => {
  const bad = async (app: FastifyInstance, req: InjectOptions | string, message: string | RegExp): Promise<void> => {
    const r = await app.inject(req);
    expect(r.statusCode, r.body).toBe(400);
    const body = r.json<{ error: string; message: string }>();
    expect(body.error).toBe('BAD_REQUEST');
    if (typeof message === 'string') expect(body.message).toBe(message);
    else expect(body.message).toMatch(message);
  };

  it('answers 400 BAD_REQUEST naming the field', async () => {
    const app = api([fake(healthyCluster())]);
    const c = `/v1/clusters/${CLUSTER}`;
    await bad(app, `${c}/routing?waitMs=60001`, 'querystring/waitMs must be <= 60000');
    await bad(app, `${c}/routing?waitMs=soon`, 'querystring/waitMs must be integer');
    await bad(app, `${c}/events?limit=0`, 'querystring/limit must be >= 1');
    await bad(app, `${c}/events?after=yesterday`, /^querystring\/after must match pattern/);
    await bad(app, `${c}/nodes/pg1/health?role=leader`, 'querystring/role must be one of "primary", "replica", "any"');
    await bad(app, `${c}/nodes/pg1/health?maxLagMs=-1`, 'querystring/maxLagMs must be >= 0');
    await bad(app, `${c}/topology?at=someday`, 'querystring/at "someday" is neither a stream id nor a time');
    await bad(app, `/v1/clusters/${'x'.repeat(65)}/routing`, 'params/c must NOT have more than 64 characters');
    const post = (route: string, payload: InjectOptions['payload']): InjectOptions => ({ method: 'POST', url: `${c}/${route}`, headers: auth, payload });
    await bad(app, post('failover', {}), 'body/to is required');
    await bad(app, post('failover', { to: { node: 'pg2' } }), 'body/to must be string');
    await bad(app, post('failover', { to: 'pg2', force: true }), 'body/force is not allowed');
    await bad(app, post('switchover', { to: '' }), 'body/to must NOT have fewer than 1 characters');
    await bad(app, post('switchover', { to: 'pg9' }), `body/to names no node of cluster ${CLUSTER}: "pg9" (its nodes: pg1, pg2, pg3)`);
    await bad(app, { ...post('switchover', '{"to":'), headers: { ...auth, 'content-type': 'application/json' } }, /^body: Body is not valid JSON/);
  });

  it('every route with a cluster parameter: 400 for a bad name, 404 for an unknown one', async () => {
    const app = api([fake(healthyCluster())]);
    const doc = (await app.inject('/docs')).json<{ paths: Record<string, Record<string, unknown>> }>();
    const routes = Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => ({ method: m.toUpperCase() as 'GET' | 'POST', path })));
    const withCluster = routes.filter((r) => r.path.includes('{c}'));
    expect(withCluster.length).toBeGreaterThanOrEqual(11);
    for (const r of withCluster) {
      const url = (c: string) => r.path.replace('{c}', c).replace('{n}', 'pg1').replace('{id}', 'op-1');
      const payload = r.method === 'POST' ? { to: 'pg2' } : undefined;
      const long = await app.inject({ method: r.method, url: url('x'.repeat(65)), headers: auth, ...(payload ? { payload } : {}) });
      expect(long.statusCode, `${r.method} ${r.path}`).toBe(400);
      expect(long.json()).toEqual({ error: 'BAD_REQUEST', message: 'params/c must NOT have more than 64 characters' });
      const unknown = await app.inject({ method: r.method, url: url('nope'), headers: auth, ...(payload ? { payload } : {}) });
      expect(unknown.statusCode, `${r.method} ${r.path}`).toBe(404);
      expect(unknown.json()).toEqual({ error: 'CLUSTER_NOT_FOUND', message: 'no cluster named "nope"' });
    }
  });

  it('404 for an unknown node, operation or route', async () => {
    const app = api([fake(healthyCluster())]);
    const node = await app.inject(`/v1/clusters/${CLUSTER}/nodes/pg9/health`);
    expect(node.statusCode).toBe(404);
    expect(node.json()).toEqual({ error: 'NODE_NOT_FOUND', message: `no node "pg9" in cluster ${CLUSTER}` });
    const op = await app.inject(`/v1/clusters/${CLUSTER}/operations/op-9`);
    expect(op.statusCode).toBe(404);
    expect(op.json()).toMatchObject({ error: 'OPERATION_NOT_FOUND' });
    const route = await app.inject('/v2/nothing?x=1');
    expect(route.statusCode).toBe(404);
    expect(route.json()).toEqual({ error: 'ROUTE_NOT_FOUND', message: 'no route GET /v2/nothing' });
  });

  it('500s say INTERNAL and nothing more', async () => {
    const c = fake(healthyCluster());
    c.readJournal = () => Promise.reject(new Error('redis: connection lost to 10.0.0.1'));
    const r = await api([c]).inject(`/v1/clusters/${CLUSTER}/events`);
    expect(r.statusCode).toBe(500);
    expect(r.json()).toEqual({ error: 'INTERNAL', message: 'internal error' });
  });
});

describe('the error catalogue', () => {
  it('has every code the API modules use, each documented in the OpenAPI document', async () => {
    const dir = new URL('../../src/api/', import.meta.url);
    const files = (fs.readdirSync(dir, { recursive: true }) as string[]).filter((f) => f.endsWith('.ts') && f !== 'errors.ts' && !f.startsWith('dashboard')); // (the dashboard's words are for people)
    expect(files).toEqual(expect.arrayContaining(['server.ts', 'routes/admin.ts', 'routes/journal.ts']));
    const source = files.map((f) => fs.readFileSync(new URL(f, dir), 'utf8')).join('\n');
    const methods = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);
    const used = new Set([...source.matchAll(/'([A-Z]+(?:_[A-Z]+)+|[A-Z]{4,})'/g)].map((m) => m[1]!).filter((w) => !methods.has(w)));
    expect(used.size).toBeGreaterThan(5);
    for (const code of used) expect(ERROR_CODES, `${code} is not in src/api/errors.ts`).toContain(code);

    const doc = (await api([fake(healthyCluster())]).inject('/docs')).json<{ paths: Record<string, Record<string, { responses: Record<string, { description?: string }> }>>; components: { responses: Record<string, { description: string }> } }>();
    const descriptions = [
      ...Object.values(doc.paths).flatMap((ops) => Object.values(ops).flatMap((op) => Object.values(op.responses).map((r) => r.description ?? ''))),
      ...Object.values(doc.components.responses).map((r) => r.description),
    ].join('\n');
    for (const code of [...ERROR_CODES, ...used]) expect(descriptions, code).toContain(`${code}: `);
    for (const code of ERROR_CODES) expect(doc.components.responses[code]!.description).toContain(ERRORS[code].description);
  });
});

describe('GET /docs', () => {
  it('documents every registered route, with its parameters, body and responses', async () => {
    const app = api([fake(healthyCluster())]);
    await app.ready();
    const r = await app.inject('/docs');
    expect(r.statusCode).toBe(200);
    const doc = r.json<{ openapi: string; paths: Record<string, Record<string, { parameters?: Array<{ name: string; in: string; required?: boolean }>; requestBody?: unknown; responses: Record<string, unknown>; security?: unknown }>> }>();
    expect(doc.openapi).toBe('3.1.0');
    expect((await app.inject('/docs/openapi.json')).json()).toEqual(doc);

    // every route Fastify has, by its own account (HEAD routes are GET's shadows)
    // (printRoutes draws a tree: a line's path continues its parent's, by indentation)
    const registered: Array<{ method: string; url: string }> = [];
    const stack: string[] = [];
    for (const line of app.printRoutes({ commonPrefix: false }).split('\n')) {
      const m = /^([│ ]*)[├└]── (\S+)(?: \(([A-Z, ]+)\))?$/.exec(line);
      if (!m) continue;
      const depth = m[1]!.length / 4;
      stack.length = depth;
      const url = (stack[depth - 1] ?? '') + m[2]!;
      stack.push(url);
      for (const method of m[3]?.split(', ') ?? []) if (method !== 'HEAD') registered.push({ method, url });
    }
    expect(registered.length).toBeGreaterThanOrEqual(18);
    for (const { method, url } of registered) expect(doc.paths[openApiPath(url)]?.[method.toLowerCase()], `${method} ${url}`).toBeDefined();
    for (const path of ['/', '/metrics', '/docs', '/docs/openapi.json', '/healthz', '/readyz', '/v1/clusters']) expect(doc.paths[path]?.get, path).toBeDefined();

    // path parameters declared for every {param}; query parameters from the schema
    for (const [path, ops] of Object.entries(doc.paths)) {
      for (const op of Object.values(ops)) {
        for (const [, name] of path.matchAll(/\{(\w+)\}/g)) expect(op.parameters?.find((p) => p.name === name && p.in === 'path' && p.required), `${path} {${name}}`).toBeDefined();
      }
    }
    const health = doc.paths['/v1/clusters/{c}/nodes/{n}/health']!.get!;
    expect(health.parameters!.map((p) => `${p.in}:${p.name}`)).toEqual(['path:c', 'path:n', 'query:role', 'query:maxLagMs', 'query:maxLagBytes']);
    expect(Object.keys(health.responses)).toEqual(expect.arrayContaining(['200', '503', '400', '404']));
    const failover = doc.paths['/v1/clusters/{c}/failover']!.post!;
    expect(failover.requestBody).toMatchObject({ content: { 'application/json': { schema: { type: 'object', required: ['to'] } } } });
    expect(failover.security).toEqual([{ adminToken: [] }]);
    expect(Object.keys(failover.responses)).toEqual(expect.arrayContaining(['202', '400', '401', '403', '404', '409']));
    expect(doc.paths['/v1/clusters/{c}/routing']!.get!.responses['200']).toMatchObject({ content: { 'application/json': { schema: { $ref: '#/components/schemas/RoutingTable' } } } });
  });
});

describe('GET /metrics', () => {
  it('exposes cluster gauges computed at scrape time, and HTTP counters by route pattern', async () => {
    const sim = healthyCluster();
    const c = fake(sim);
    c.state = { ...c.state, history: [history({ id: 'op-1' }), history({ id: 'op-2', kind: 'switchover', outcome: 'aborted' }), history({ id: 'op-3', outcome: 'running', finishedAt: null })] };
    const app = api([c]);
    await app.inject(`/v1/clusters/${CLUSTER}/routing`);
    await app.inject(`/v1/clusters/${CLUSTER}/routing`);
    await app.inject(`/v1/clusters/nope/routing`);
    await app.inject('/no/such/route');
    const r = await app.inject('/metrics');
    expect(r.statusCode).toBe(200);
    expect(r.headers['content-type']).toMatch(/^text\/plain/);
    const text = r.body;
    const line = (s: string) => expect(text.split('\n'), s).toContain(s);
    line(`switchyard_cluster_writable{cluster="${CLUSTER}"} 1`);
    line(`switchyard_cluster_generation{cluster="${CLUSTER}"} ${c.table.generation}`);
    line(`switchyard_cluster_paused{cluster="${CLUSTER}"} 0`);
    line(`switchyard_leader{cluster="${CLUSTER}"} 1`);
    line(`switchyard_node_healthy{cluster="${CLUSTER}",node="pg1",role="primary"} 1`);
    line(`switchyard_node_healthy{cluster="${CLUSTER}",node="pg2",role="replica"} 1`);
    line(`switchyard_replica_lag_bytes{cluster="${CLUSTER}",node="pg2"} 0`);
    line(`switchyard_replica_lag_seconds{cluster="${CLUSTER}",node="pg3"} 0`);
    line(`switchyard_failovers_total{cluster="${CLUSTER}",kind="failover",outcome="success"} 1`);
    line(`switchyard_failovers_total{cluster="${CLUSTER}",kind="switchover",outcome="aborted"} 1`);
    expect(text).not.toContain('outcome="running"');
    line(`switchyard_http_requests_total{method="GET",route="/v1/clusters/:c/routing",status="200"} 2`);
    line(`switchyard_http_requests_total{method="GET",route="/v1/clusters/:c/routing",status="404"} 1`);
    line(`switchyard_http_requests_total{method="GET",route="unmatched",status="404"} 1`);
    expect(text).toMatch(/^switchyard_http_request_duration_seconds_bucket\{le="0\.0005",method="GET",route="\/v1\/clusters\/:c\/routing",status="200"\} \d+$/m);
    expect(text).not.toContain('/no/such/route');
    expect(text).not.toContain('route="/v1/clusters/nope');
    expect(text).toMatch(/^process_cpu_user_seconds_total \d/m);

    // state changes show at the next scrape; lost leadership and pause too
    c.isLeader = false;
    c.state = { ...c.state, paused: true, history: [history({ id: 'op-2', kind: 'switchover', outcome: 'aborted' }), history({ id: 'op-3' })] };
    const next = (await app.inject('/metrics')).body.split('\n');
    expect(next).toContain(`switchyard_leader{cluster="${CLUSTER}"} 0`);
    expect(next).toContain(`switchyard_cluster_paused{cluster="${CLUSTER}"} 1`);
    // op-1 fell off the bounded history: the counter does not go down; op-3 finished
    expect(next).toContain(`switchyard_failovers_total{cluster="${CLUSTER}",kind="failover",outcome="success"} 2`);
  });

  it('keeps a registry per app: two apps in one process do not clash', async () => {
    const a = api([fake(healthyCluster(), { name: 'a' })]);
    const b = api([fake(healthyCluster(), { name: 'b' })]);
    const [ma, mb] = await Promise.all([a.inject('/metrics'), b.inject('/metrics')]);
    expect(ma.statusCode).toBe(200);
    expect(mb.statusCode).toBe(200);
    expect(ma.body).toContain('switchyard_cluster_writable{cluster="a"} 1');
    expect(ma.body).not.toContain('cluster="b"');
    expect(mb.body).toContain('switchyard_cluster_writable{cluster="b"} 1');
  });
});

describe('GET / (dashboard)', () => {
  it('is one self-contained HTML page naming the clusters, with nothing external', async () => {
    const app = api([fake(healthyCluster()), fake(healthyCluster(), { name: 'orders' })]);
    const r = await app.inject('/');
    expect(r.statusCode).toBe(200);
    expect(r.headers['content-type']).toBe('text/html; charset=utf-8');
    const html = r.body;
    expect(html).toMatch(/^<!doctype html>/);
    expect(html).toContain(`<h2>${CLUSTER}</h2>`);
    expect(html).toContain('<h2>orders</h2>');
    // no absolute or protocol-relative URLs, no external assets
    expect(html).not.toMatch(/https?:/i);
    expect(html).not.toMatch(/["'(]\/\//);
    expect(html).not.toMatch(/<(link|img|iframe)\b|\ssrc=|\shref=/i);
    // live: the SSE stream and the event poll, relative
    expect(html).toContain("'/routing/stream'");
    expect(html).toContain("'/events?limit=500&after='");
    expect(html).toContain("'v1/clusters/'");
    // a strict CSP whose nonce the inline script and style carry
    const nonce = /script-src 'nonce-([^']+)'/.exec(r.headers['content-security-policy'] as string)?.[1];
    expect(nonce).toBeTruthy();
    expect(html).toContain(`<script nonce="${nonce}">`);
    expect(html).toContain(`<style nonce="${nonce}">`);
  });

  it('escapes everything it inserts', async () => {
    const evil = `x</script><img src=x onerror=alert(1)>&"'`;
    const c = fake(healthyCluster(), { name: evil });
    const html = (await api([c]).inject('/')).body;
    expect(html).not.toContain('<img');
    expect(html).not.toContain(evil);
    expect(html.match(/<\/script>/g)!.length).toBe(2);
    expect(html).toContain('<h2>x&#60;/script&#62;&#60;img src=x onerror=alert(1)&#62;&#38;&#34;&#39;</h2>');
    // the embedded JSON still parses back to the name
    const json = /<script type="application\/json" id="init">(.*?)<\/script>/s.exec(html)![1]!;
    expect((JSON.parse(json) as Array<{ name: string }>)[0]!.name).toBe(evil);
  });
});

describe('admin checks come first', () => {
  it('answers 401 to a bad body without the token (no field details to strangers)', async () => {
    const app = api([fake(healthyCluster())]);
    const res = await app.inject({ method: 'POST', url: '/v1/clusters/c1/failover', payload: { to: { nested: true } } });
    expect(res.statusCode).toBe(401);
    const ok = await app.inject({ method: 'POST', url: '/v1/clusters/c1/failover', payload: { to: { nested: true } }, headers: auth });
    expect(ok.statusCode).toBe(400);
  });

  it('refuses a body over the limit with 413 PAYLOAD_TOO_LARGE, before reading it into a command', async () => {
    const c = fake(healthyCluster());
    const app = buildApi({ clusters: new Map([[c.name, c]]), coordinatorId: 'co1', adminToken: TOKEN, bodyLimit: 256 });
    apps.push(app);
    const big = await app.inject({ method: 'POST', url: '/v1/clusters/c1/switchover', payload: { to: 'pg2', pad: 'x'.repeat(300) }, headers: auth });
    expect(big.statusCode).toBe(413);
    expect(big.json()).toMatchObject({ error: 'PAYLOAD_TOO_LARGE' });
    expect(c.submitted).toEqual([]);
    const small = await app.inject({ method: 'POST', url: '/v1/clusters/c1/switchover', payload: { to: 'pg2' }, headers: auth });
    expect(small.statusCode).not.toBe(413);
  });

  it('has no HEAD route on the SSE stream', async () => {
    const app = api([fake(healthyCluster())]);
    const res = await app.inject({ method: 'HEAD', url: '/v1/clusters/c1/routing/stream' });
    expect(res.statusCode).toBe(404);
  });

  it('the health route reports the journal role of a primary that is not writable', async () => {
    const sim = healthyCluster();
    sim.observe(2_000, obs('pg1', { role: 'primary', reachable: false, error: 'timeout', lsn: null }));
    sim.pass(2_000);
    const app = api([fake(sim)]);
    const res = await app.inject({ method: 'GET', url: '/v1/clusters/c1/nodes/pg1/health' });
    expect(res.statusCode).toBe(503);
    expect(res.json()).toMatchObject({ role: 'primary' });
  });
});
