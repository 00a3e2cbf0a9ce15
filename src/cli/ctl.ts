/**
 * `switchyard ctl`: the operator's tool, a thin client of the HTTP API. Text for people
 * by default, the API's JSON with --json. Every time is printed in one format (ISO 8601,
 * UTC, milliseconds), every duration in ms.
 */
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline/promises';
import { parseArgs } from 'node:util';
import { asInvoked } from './help.js';
import { fmtTime, renderExplain, renderHistory, renderList, summarize, type Explain, type HistoryItem, type Table } from './ctl-render.js';

export class CtlError extends Error {
  override name = 'CtlError';
}

export const CTL_COMMANDS = ['list', 'events', 'history', 'explain', 'switchover', 'failover', 'pause', 'resume'];

interface Target {
  api: string;
  cluster: string;
  token: string | undefined;
  /** where the token came from, for the error when the API refuses it */
  tokenFrom?: string;
}

interface SandboxJson {
  api: string;
  cluster: string;
  adminToken?: string;
  coordinators?: Array<{ api: string }>;
}

const norm = (u: string): string => u.replace(/\/+$/, '');

/**
 * Where to send requests, and with which token. The sandbox's own token goes only to
 * the sandbox's own API: with --api (or SWITCHYARD_API) pointing elsewhere, only
 * --token or SWITCHYARD_ADMIN_TOKEN are sent.
 */
export function resolveTarget(values: { api?: string | undefined; cluster?: string | undefined; dir?: string | undefined; token?: string | undefined }, env: NodeJS.ProcessEnv = process.env): Target {
  let api = values.api ?? env.SWITCHYARD_API;
  let cluster = values.cluster ?? env.SWITCHYARD_CLUSTER;
  let token = values.token ?? env.SWITCHYARD_ADMIN_TOKEN;
  let tokenFrom = values.token !== undefined ? '--token' : env.SWITCHYARD_ADMIN_TOKEN !== undefined ? 'SWITCHYARD_ADMIN_TOKEN' : undefined;
  const file = path.resolve(values.dir ?? '.switchyard/sandbox', 'sandbox.json');
  if (fs.existsSync(file)) {
    let sb: SandboxJson | null = null;
    try {
      sb = JSON.parse(fs.readFileSync(file, 'utf8')) as SandboxJson;
    } catch {
      throw new CtlError(`${file} is not valid JSON`);
    }
    const sandboxApis = new Set([sb.api, ...(sb.coordinators ?? []).map((c) => c.api)].filter(Boolean).map(norm));
    const own = api === undefined || sandboxApis.has(norm(api));
    api ??= sb.api;
    if (own) {
      cluster ??= sb.cluster;
      if (token === undefined && sb.adminToken !== undefined) {
        token = sb.adminToken;
        tokenFrom = `the sandbox's token (${file})`;
      }
    }
  }
  if (!api) throw new CtlError('no API to talk to: pass --api URL, set SWITCHYARD_API, or run where a sandbox is (.switchyard/sandbox, or --dir)');
  if (!cluster) throw new CtlError('no cluster named: pass --cluster NAME or set SWITCHYARD_CLUSTER');
  return { api: norm(api), cluster, token, ...(tokenFrom !== undefined && token !== undefined ? { tokenFrom } : {}) };
}

async function call(t: Target, method: string, route: string, body?: unknown, timeoutMs = 10_000): Promise<unknown> {
  const headers: Record<string, string> = {};
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (t.token) headers.authorization = `Bearer ${t.token}`;
  let res: Response;
  try {
    res = await fetch(`${t.api}${route}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal: AbortSignal.timeout(timeoutMs) });
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    const why = cause?.code === 'ECONNREFUSED' ? 'connection refused' : (err as Error).name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : (cause?.message ?? (err as Error).message);
    throw new CtlError(`cannot reach the API at ${t.api}: ${why}`);
  }
  const text = await res.text();
  let json: unknown = null;
  try {
    json = text ? (JSON.parse(text) as unknown) : null;
  } catch {
    json = null;
  }
  if (!res.ok) {
    const msg = (json as { message?: string } | null)?.message ?? text;
    if (res.status === 401) {
      // a token was sent and refused: say which one, not that one is missing
      if (t.token) throw new CtlError(`the API at ${t.api} refused the admin token from ${t.tokenFrom ?? '--token'}: pass the coordinators' admin token with --token or SWITCHYARD_ADMIN_TOKEN`);
      throw new CtlError(`${msg} (pass --token or set SWITCHYARD_ADMIN_TOKEN)`);
    }
    throw new CtlError(msg || `${method} ${route}: HTTP ${res.status}`);
  }
  return json;
}

/* the formatting lives in ctl-render.ts; tests and other commands import it from here too */
export { columns, fmtAgo, fmtBytes, fmtTime, renderExplain, renderHistory, renderList, str, summarize, whyNotOthers } from './ctl-render.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** `--after` as a stream id: an id as is, a time (ISO 8601 or ms) as the ids after it. */
export function afterId(v: string): string {
  if (/^\d+-\d+$/.test(v)) return v;
  const ms = /^\d+$/.test(v) ? Number(v) : Date.parse(v);
  if (!Number.isFinite(ms)) throw new CtlError(`--after ${JSON.stringify(v)} is neither a stream id (1795669845922-0) nor a time (ISO 8601)`);
  return `${ms}-0`;
}

async function confirm(question: string, yes: boolean): Promise<void> {
  if (yes) return;
  if (!process.stdin.isTTY) throw new CtlError(`${question.replace(/\?$/, '')}: confirmation needed, and stdin is not a terminal: pass --yes`);
  const rl = readline.createInterface({ input: process.stdin, output: process.stdout });
  try {
    const a = (await rl.question(`${question} [y/N] `)).trim().toLowerCase();
    if (a !== 'y' && a !== 'yes') throw new CtlError('aborted: nothing was done');
  } finally {
    rl.close();
  }
}

/** Wait for an operation's outcome in the history; print it. */
async function awaitOutcome(t: Target, c: string, id: string, timeoutMs: number): Promise<HistoryItem | null> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const items = (await call(t, 'GET', `${c}/history`)) as HistoryItem[];
    const h = items.find((x) => x.id === id);
    if (h && h.outcome !== 'running') return h;
    await sleep(200);
  }
  return null;
}

export async function runCtl(sub: string, argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      api: { type: 'string' },
      cluster: { type: 'string' },
      dir: { type: 'string' },
      token: { type: 'string' },
      to: { type: 'string' },
      follow: { type: 'boolean', default: false },
      limit: { type: 'string' },
      type: { type: 'string' },
      after: { type: 'string' },
      json: { type: 'boolean', default: false },
      yes: { type: 'boolean', short: 'y', default: false },
      'no-wait': { type: 'boolean', default: false },
    },
  });
  const allowed: Record<string, string[]> = {
    events: ['follow', 'limit', 'type', 'after'],
    switchover: ['to', 'yes', 'no-wait'],
    failover: ['to', 'yes', 'no-wait'],
  };
  for (const k of ['to', 'follow', 'limit', 'type', 'after', 'yes', 'no-wait'] as const) {
    const given = values[k] !== undefined && values[k] !== false;
    if (given && !(allowed[sub] ?? []).includes(k)) throw new CtlError(`ctl ${sub} takes no --${k} (see \`switchyard ctl ${sub} --help\`)`);
  }
  if (positionals.length > (sub === 'explain' ? 1 : 0)) throw new CtlError(`ctl ${sub}: unexpected argument ${JSON.stringify(positionals.at(-1))}`);
  const t = resolveTarget(values);
  const c = `/v1/clusters/${encodeURIComponent(t.cluster)}`;
  const print = (v: unknown): void => console.log(JSON.stringify(v, null, 2));
  const lines = (ls: string[]): void => console.log(asInvoked(ls.join('\n')));
  switch (sub) {
    case 'list': {
      const table = (await call(t, 'GET', `${c}/routing`)) as Table;
      return values.json ? print(table) : lines(renderList(table));
    }
    case 'events': {
      let limit = Number.POSITIVE_INFINITY;
      if (values.limit !== undefined) {
        limit = Number(values.limit);
        if (!Number.isInteger(limit) || limit < 1) throw new CtlError(`--limit ${JSON.stringify(values.limit)}: use a whole number of at least 1`);
      }
      let after = values.after !== undefined ? afterId(values.after) : '0-0';
      const type = values.type !== undefined ? `&type=${encodeURIComponent(values.type)}` : '';
      let printed = 0;
      for (;;) {
        const page = (await call(t, 'GET', `${c}/events?after=${after}&limit=${Math.min(500, limit - printed)}${type}`)) as {
          events: Array<{ id: string; type: string; at: string; data: Record<string, unknown> }>;
          next: string;
        };
        for (const e of page.events) {
          console.log(values.json ? JSON.stringify(e) : `${fmtTime(e.at)}  ${e.id.padEnd(16)}  ${e.type.padEnd(21)}  ${summarize(e.data)}`);
          printed++;
        }
        after = page.next;
        if (printed >= limit) return;
        if (page.events.length === 0) {
          if (!values.follow) return;
          await sleep(500);
        }
      }
    }
    case 'history': {
      const items = (await call(t, 'GET', `${c}/history`)) as HistoryItem[];
      return values.json ? print(items) : lines(renderHistory(items));
    }
    case 'explain': {
      if (!positionals[0]) throw new CtlError('explain needs an operation id (see `switchyard ctl history`)');
      const x = (await call(t, 'GET', `${c}/operations/${encodeURIComponent(positionals[0])}`)) as Explain;
      return values.json ? print(x) : lines(renderExplain(x));
    }
    case 'switchover':
    case 'failover': {
      if (sub === 'failover' && !values.to) throw new CtlError('failover needs --to NODE (see `switchyard ctl list`)');
      const table = (await call(t, 'GET', `${c}/routing`)) as Table;
      const ids = (table.nodes ?? [...(table.primary ? [table.primary] : []), ...table.replicas]).map((n) => n.id);
      if (values.to !== undefined && ids.length > 0 && !ids.includes(values.to)) throw new CtlError(`no node ${JSON.stringify(values.to)} in cluster ${t.cluster}: its nodes are ${ids.join(', ')}`);
      const from = table.primary?.id ?? table.nodes?.find((n) => n.role === 'primary')?.id ?? '(none)';
      const target = values.to ?? 'the best candidate';
      await confirm(sub === 'switchover' ? `Switch over cluster ${t.cluster} from ${from} to ${target}?` : `Fail over cluster ${t.cluster} (primary ${from}) to ${target}? Writes not yet on ${target} are lost`, values.yes);
      const r = (await call(t, 'POST', `${c}/${sub}`, values.to ? { to: values.to } : {})) as { operationId: string | null; commandId?: string; accepted?: boolean };
      if (values['no-wait'] && values.json) return print(r);
      // the leader names the operation when it starts it; not within 3 s: queued, see the history
      if (r.operationId === null) throw new CtlError(`${sub} queued as command ${r.commandId ?? '?'}: the leader has not answered within 3 s (see \`switchyard ctl history\`)`);
      if (values['no-wait']) return console.log(`${sub} ${r.operationId} requested`);
      if (!values.json) console.log(`${sub} ${r.operationId} requested; waiting for the outcome…`);
      const h = await awaitOutcome(t, c, r.operationId, 60_000);
      if (!h) throw new CtlError(`${sub} ${r.operationId}: no outcome within 60 s (see \`switchyard ctl explain ${r.operationId}\`)`);
      if (values.json) return print(h);
      console.log(`${h.kind} ${h.id}: ${h.from ?? '(none)'} → ${h.to} ${h.outcome}${h.durationMs === null ? '' : ` in ${h.durationMs} ms`}${h.outcome === 'success' ? '' : `: ${h.reason}`}`);
      // the table follows the journal within moments: give it a few seconds to name the primary
      let after = (await call(t, 'GET', `${c}/routing`)) as Table;
      for (let i = 0; i < 25 && !after.primary && h.outcome === 'success'; i++) {
        await sleep(200);
        after = (await call(t, 'GET', `${c}/routing`)) as Table;
      }
      console.log(`primary now: ${after.primary?.id ?? '(none: not writable yet)'}`);
      if (h.outcome !== 'success') throw new CtlError(`${sub} ${h.outcome} (see \`switchyard ctl explain ${h.id}\`)`);
      return;
    }
    case 'pause':
    case 'resume': {
      const r = (await call(t, 'POST', `${c}/${sub}`, {})) as { paused: boolean; commandId?: string };
      if (values.json) return print(r);
      if (sub === 'pause') console.log(asInvoked(r.paused ? `cluster ${t.cluster} paused: no automatic failover until \`switchyard ctl resume\`` : `pause of ${t.cluster} requested (${r.commandId ?? '?'}): the leader has not answered yet`));
      else console.log(!r.paused ? `cluster ${t.cluster} resumed: automatic failover is on` : `resume of ${t.cluster} requested (${r.commandId ?? '?'}): the leader has not answered yet`);
      return;
    }
    default:
      throw new CtlError(`unknown ctl command ${JSON.stringify(sub)}: use ${CTL_COMMANDS.join(', ')}`);
  }
}
