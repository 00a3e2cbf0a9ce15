/** `switchyard ctl`: the operator's tool, a thin client of the HTTP API. */
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';

export class CtlError extends Error {
  override name = 'CtlError';
}

interface Target {
  api: string;
  cluster: string;
  token: string | undefined;
}

function resolveTarget(values: { api?: string | undefined; cluster?: string | undefined; dir?: string | undefined }): Target {
  let api = values.api ?? process.env.SWITCHYARD_API;
  let cluster = values.cluster ?? process.env.SWITCHYARD_CLUSTER;
  let token = process.env.SWITCHYARD_ADMIN_TOKEN;
  const file = path.resolve(values.dir ?? '.switchyard/sandbox', 'sandbox.json');
  if ((!api || !cluster || !token) && fs.existsSync(file)) {
    const sb = JSON.parse(fs.readFileSync(file, 'utf8')) as { api: string; cluster: string; adminToken: string };
    api ??= sb.api;
    cluster ??= sb.cluster;
    token ??= sb.adminToken;
  }
  if (!api) throw new CtlError('no API to talk to: pass --api URL, set SWITCHYARD_API, or run where a sandbox is (.switchyard/sandbox)');
  if (!cluster) throw new CtlError('no cluster named: pass --cluster NAME or set SWITCHYARD_CLUSTER');
  return { api: api.replace(/\/$/, ''), cluster, token };
}

async function call(t: Target, method: string, route: string, body?: unknown): Promise<unknown> {
  const headers: Record<string, string> = {};
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (t.token) headers.authorization = `Bearer ${t.token}`;
  let res: Response;
  try {
    res = await fetch(`${t.api}${route}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal: AbortSignal.timeout(10_000) });
  } catch (err) {
    throw new CtlError(`cannot reach the API at ${t.api}: ${(err as Error).message}`);
  }
  const text = await res.text();
  const json = text ? (JSON.parse(text) as unknown) : null;
  if (!res.ok) throw new CtlError(`${method} ${route} → ${res.status}: ${(json as { message?: string } | null)?.message ?? text}`);
  return json;
}

export async function runCtl(sub: string | undefined, argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      api: { type: 'string' },
      cluster: { type: 'string' },
      dir: { type: 'string' },
      to: { type: 'string' },
      follow: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
    },
  });
  const t = resolveTarget(values);
  const c = `/v1/clusters/${encodeURIComponent(t.cluster)}`;
  const print = (v: unknown): void => console.log(JSON.stringify(v, null, 2));
  switch (sub) {
    case 'list': {
      const table = (await call(t, 'GET', `${c}/routing`)) as {
        generation: number;
        writable: boolean;
        primary: { id: string; host: string; port: number } | null;
        replicas: Array<{ id: string; host: string; port: number; healthy: boolean; lagBytes: number | null; lagMs: number | null }>;
      };
      if (values.json) return print(table);
      console.log(`cluster ${t.cluster}  generation ${table.generation}  ${table.writable ? 'writable' : 'NOT WRITABLE'}`);
      if (table.primary) console.log(`  primary  ${table.primary.id}  ${table.primary.host}:${table.primary.port}`);
      else console.log('  primary  (none)');
      for (const r of table.replicas) {
        console.log(`  replica  ${r.id}  ${r.host}:${r.port}  ${r.healthy ? 'healthy' : 'unhealthy'}  lag ${r.lagBytes ?? '?'} B / ${r.lagMs ?? '?'} ms`);
      }
      return;
    }
    case 'events': {
      let after = '0-0';
      for (;;) {
        const page = (await call(t, 'GET', `${c}/events?after=${after}&limit=500`)) as { events: Array<{ id: string; type: string; at: string; data: unknown }>; next: string };
        for (const e of page.events) console.log(values.json ? JSON.stringify(e) : `${e.at}  ${e.id.padEnd(16)} ${e.type.padEnd(22)} ${JSON.stringify(e.data)}`);
        after = page.next;
        if (page.events.length === 0) {
          if (!values.follow) return;
          await new Promise((r) => setTimeout(r, 500));
        }
      }
    }
    case 'history':
      return print(await call(t, 'GET', `${c}/history`));
    case 'explain':
      if (!positionals[0]) throw new CtlError('explain needs an operation id (see `switchyard ctl history`)');
      return print(await call(t, 'GET', `${c}/operations/${encodeURIComponent(positionals[0])}`));
    case 'switchover':
      return print(await call(t, 'POST', `${c}/switchover`, values.to ? { to: values.to } : {}));
    case 'failover':
      if (!values.to) throw new CtlError('failover needs --to NODE');
      return print(await call(t, 'POST', `${c}/failover`, { to: values.to }));
    case 'pause':
    case 'resume':
      return print(await call(t, 'POST', `${c}/${sub}`, {}));
    default:
      throw new CtlError(`unknown ctl command ${JSON.stringify(sub ?? '')}: use list, events, history, explain, switchover, failover, pause or resume`);
  }
}
