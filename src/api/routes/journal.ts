/**
 * The journal and what it tells: events a page at a time, the failover and switchover
 * history, an operation explained (its evidence and journal entries), and the topology
 * as of a point in the journal (time travel).
 */
import { Type, type Static } from '@sinclair/typebox';
import { evolve } from '../../core/evolve.js';
import { JournalCheckpoints } from '../../core/checkpoints.js';
import { routingTable as project } from '../../core/routing.js';
import { compareStreamIds, initialState } from '../../core/state.js';
import { ApiError, errorResponses } from '../errors.js';
import { parseAt } from '../http.js';
import * as S from '../schemas.js';
import { doc } from '../schemas.js';
import type { ApiContext } from '../types.js';
import { ClusterParams } from './routing.js';

const EventsQuery = Type.Object({
  after: Type.String({ default: '0-0', pattern: '^\\d+(-\\d+)?$' }),
  limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }),
  type: Type.Optional(Type.String({ maxLength: 64 })),
});
const OpParams = Type.Object({ c: Type.String({ maxLength: 64 }), id: Type.String({ maxLength: 128 }) });
const TopologyQuery = Type.Object({ at: Type.Optional(Type.String({ maxLength: 40, description: 'a stream id (1795669845922-0) or a time (ISO 8601 or ms)' })) });

type Event = { id: string; type: string; at: string; data: unknown };

export function journalRoutes(ctx: ApiContext): void {
  const { app } = ctx;
  /** checkpoints for clusters that keep none of their own (stand-ins in tests) */
  const topologyCheckpoints = new Map<string, JournalCheckpoints>();

  app.get<{ Params: Static<typeof ClusterParams>; Querystring: Static<typeof EventsQuery> }>(
    '/v1/clusters/:c/events',
    {
      schema: doc({
        summary: 'the journal, a page at a time',
        params: ClusterParams,
        querystring: EventsQuery,
        response: { 200: S.EventsPage, ...errorResponses('BAD_REQUEST', 'CLUSTER_NOT_FOUND') },
      }),
    },
    async (req) => {
      const c = ctx.cluster(req.params.c);
      const { after, limit, type } = req.query;
      const events: Event[] = [];
      let cursor = after;
      // scan forward until `limit` matching entries or the end
      for (let rounds = 0; rounds < 50 && events.length < limit; rounds++) {
        const batch = await c.readJournal(cursor, 500);
        if (batch.length === 0) break;
        for (const r of batch) {
          cursor = r.id;
          if (!r.entry) continue;
          if (type && r.entry.type !== type) continue;
          const { type: t, at, v: _v, ...data } = r.entry;
          events.push({ id: r.id, type: t, at: new Date(at).toISOString(), data });
          if (events.length >= limit) break;
        }
      }
      return { events, next: cursor };
    },
  );

  app.get<{ Params: Static<typeof ClusterParams> }>(
    '/v1/clusters/:c/history',
    { schema: doc({ summary: 'failovers and switchovers', params: ClusterParams, response: { 200: S.History, ...errorResponses('BAD_REQUEST', 'CLUSTER_NOT_FOUND') } }) },
    async (req) => ctx.cluster(req.params.c).state.history,
  );

  app.get<{ Params: Static<typeof OpParams> }>(
    '/v1/clusters/:c/operations/:id',
    { schema: doc({ summary: 'explain an operation: its history item, evidence and journal entries', params: OpParams, response: { 200: S.OperationExplain, ...errorResponses('BAD_REQUEST', 'CLUSTER_NOT_FOUND', 'OPERATION_NOT_FOUND') } }) },
    async (req) => {
      const c = ctx.cluster(req.params.c);
      const item = c.state.history.find((h) => h.id === req.params.id);
      if (!item) throw new ApiError('OPERATION_NOT_FOUND', `no operation ${JSON.stringify(req.params.id)} in the history of ${c.name}`);
      const from = `${Math.max(0, Date.parse(item.startedAt) - 60_000)}-0`;
      const entries: Event[] = [];
      let cursor = from;
      for (let rounds = 0; rounds < 20; rounds++) {
        const batch = await c.readJournal(cursor, 1000);
        if (batch.length === 0) break;
        for (const r of batch) {
          cursor = r.id;
          const e = r.entry as (Record<string, unknown> & { type: string; at: number }) | null;
          if (!e || (e.operationId !== item.id && e.commandId !== item.id)) continue;
          const { type, at, v: _v, ...data } = e;
          entries.push({ id: r.id, type, at: new Date(at).toISOString(), data });
        }
        if (item.finishedAt && compareStreamIds(cursor, `${Date.parse(item.finishedAt) + 60_000}-0`) > 0) break;
      }
      const started = entries.find((e) => e.type === 'failover.started')?.data as { evidence?: unknown } | undefined;
      // an election the set held by itself (MongoDB): its set.changed entry is the evidence
      const elected = entries.find((e) => e.type === 'set.changed')?.data as { evidence?: unknown; member?: unknown; previous?: unknown; electionId?: unknown; term?: unknown; since?: unknown } | undefined;
      const evidence = started?.evidence ?? (elected ? [{ member: elected.member, previous: elected.previous ?? null, electionId: elected.electionId ?? null, term: elected.term ?? null, lastSeenAsPrimary: typeof elected.since === 'number' ? new Date(elected.since).toISOString() : null, evidence: elected.evidence }] : []);
      return { operation: item, evidence, entries };
    },
  );

  app.get<{ Params: Static<typeof ClusterParams>; Querystring: Static<typeof TopologyQuery> }>(
    '/v1/clusters/:c/topology',
    {
      schema: doc({
        summary: 'the topology and routing table as of a point in the journal',
        params: ClusterParams,
        querystring: TopologyQuery,
        response: { 200: S.TopologyAt, ...errorResponses('BAD_REQUEST', 'CLUSTER_NOT_FOUND') },
      }),
    },
    async (req) => {
      const c = ctx.cluster(req.params.c);
      const until = parseAt(req.query.at);
      // from the nearest checkpoint at or before `at`, then a bounded tail of the journal
      const cps = c.checkpoints ?? (topologyCheckpoints.get(c.name) ?? topologyCheckpoints.set(c.name, new JournalCheckpoints()).get(c.name)!);
      const from = cps.nearest(until);
      let s = from ? from.state : initialState(c.name, c.state.engine);
      let cursor = from ? from.logId : '0-0';
      let folded = 0;
      for (;;) {
        const batch = await c.readJournal(cursor, Math.min(1000, cps.every));
        if (batch.length === 0) break;
        let done = false;
        for (const r of batch) {
          if (until && compareStreamIds(r.id, until) > 0) {
            done = true;
            break;
          }
          cursor = r.id;
          if (r.entry) s = evolve(s, { kind: 'journal', id: r.id, entry: r.entry });
          else s = { ...s, logId: r.id };
          // a stretch no checkpoint covered yet (before the snapshot this coordinator
          // started from): leave checkpoints behind for the next request
          if (++folded % cps.every === 0 && cps.nearest(r.id)?.logId === from?.logId) cps.add(r.id, s);
        }
        if (done) break;
      }
      const { soft: _soft, commands: _c, handledCommands: _h, ...topology } = s;
      return { at: cursor, topology, routing: project(s) };
    },
  );
}
