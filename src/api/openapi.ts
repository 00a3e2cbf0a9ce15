/**
 * The OpenAPI 3.1 document of the routing API, generated from the routes' own schemas
 * (TypeBox, i.e. JSON Schema): an onRoute hook collects every route as it is
 * registered, and `/docs` turns them into paths. No @fastify/swagger: route schemas
 * may carry `summary`, `description`, `tags` and `security` (as in OpenAPI);
 * `response` entries may carry a `description`, or a `content` map for non-JSON answers.
 */
import type { FastifyInstance, RouteOptions } from 'fastify';
import { ERRORS, ERROR_CODES, ErrorBody, describeError } from './errors.js';

type Json = Record<string, unknown>;

interface CollectedRoute {
  method: string;
  url: string;
  schema: Json | undefined;
}

export interface OpenApiInfo {
  title: string;
  version: string;
  description?: string;
}

export interface OpenApi {
  /** routes seen so far (HEAD routes Fastify adds for GET routes left out) */
  readonly routes: readonly CollectedRoute[];
  /** the document, built once, after the app is ready */
  document(): Json;
}

/**
 * Start collecting routes: call before any route is registered. `components` names
 * schemas the document should show once under `components/schemas` and refer to by
 * `$ref` (matched by object identity).
 */
export function collectOpenApi(app: FastifyInstance, info: OpenApiInfo, components: Record<string, object> = {}): OpenApi {
  const routes: CollectedRoute[] = [];
  app.addHook('onRoute', (r: RouteOptions) => {
    const methods = Array.isArray(r.method) ? r.method : [r.method];
    for (const m of methods) routes.push({ method: m.toUpperCase(), url: r.url, schema: r.schema as Json | undefined });
  });
  let cached: Json | null = null;
  return {
    get routes() {
      const gets = new Set(routes.filter((r) => r.method === 'GET').map((r) => r.url));
      return routes.filter((r) => !(r.method === 'HEAD' && gets.has(r.url)));
    },
    document() {
      cached ??= buildDocument(this.routes, info, { Error: ErrorBody, ...components });
      return cached;
    },
  };
}

/** `/v1/clusters/:c/routing` → `/v1/clusters/{c}/routing` */
export function openApiPath(url: string): string {
  return url.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
}

function buildDocument(routes: readonly CollectedRoute[], info: OpenApiInfo, components: Record<string, object>): Json {
  const refs = new Map<object, string>(Object.entries(components).map(([name, s]) => [s, name]));
  const plain = (schema: unknown, root?: object): unknown => toJsonSchema(schema, refs, root);
  const paths: Record<string, Record<string, Json>> = {};
  for (const r of routes) {
    const s = r.schema ?? {};
    const op: Json = { operationId: operationId(r.method, r.url) };
    for (const k of ['summary', 'description', 'tags', 'security'] as const) if (s[k] !== undefined) op[k] = s[k];
    op.tags ??= [!r.url.startsWith('/v1/') ? 'service' : s.security ? 'admin' : 'clusters'];
    const parameters = [...params(s.params, 'path', r.url, plain), ...params(s.querystring, 'query', r.url, plain), ...params(s.headers, 'header', r.url, plain)];
    if (parameters.length) op.parameters = parameters;
    if (s.body) op.requestBody = { required: true, content: { 'application/json': { schema: plain(s.body) } } };
    const res = responses(s.response as Record<string, Json> | undefined, plain);
    // errors any route may answer, described once under components/responses
    if (s.body) for (const c of ['PAYLOAD_TOO_LARGE', 'UNSUPPORTED_MEDIA_TYPE'] as const) res[ERRORS[c].status] ??= { $ref: `#/components/responses/${c}` };
    res.default ??= { $ref: '#/components/responses/INTERNAL' };
    op.responses = res;
    (paths[openApiPath(r.url)] ??= {})[r.method.toLowerCase()] = op;
  }
  return {
    openapi: '3.1.0',
    info: {
      ...info,
      description: `${info.description ?? ''}\n\nErrors are answered as \`{ error, message }\`; the codes:\n\n${ERROR_CODES.map((c) => `- \`${c}\` (${ERRORS[c].status}): ${ERRORS[c].description}`).join('\n')}`.trim(),
    },
    paths,
    components: {
      schemas: Object.fromEntries(Object.entries(components).map(([name, s]) => [name, plain(s, s)])),
      responses: Object.fromEntries(
        ERROR_CODES.map((c) => [c, { description: describeError(c), content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } }]),
      ),
      securitySchemes: { adminToken: { type: 'http', scheme: 'bearer', description: "the coordinator's adminToken" } },
    },
  };
}

function operationId(method: string, url: string): string {
  const words = url
    .split('/')
    .filter((p) => p && p !== 'v1')
    .map((p) => (p.startsWith(':') ? `by-${p.slice(1)}` : p))
    .join('-')
    .split(/[^A-Za-z0-9]+/)
    .filter(Boolean);
  return method.toLowerCase() + (words.length ? words.map((w) => w[0]!.toUpperCase() + w.slice(1)).join('') : 'Root');
}

function params(schema: unknown, where: 'path' | 'query' | 'header', url: string, plain: (s: unknown) => unknown): Json[] {
  const out: Json[] = [];
  const s = schema as { properties?: Record<string, Json>; required?: string[] } | undefined;
  const props = s?.properties ?? {};
  const required = new Set(s?.required ?? []);
  for (const [name, prop] of Object.entries(props)) {
    const p = plain(prop) as Json;
    const param: Json = { name, in: where };
    if (where === 'path' || (required.has(name) && p.default === undefined)) param.required = true;
    if (typeof p.description === 'string') param.description = p.description;
    param.schema = p;
    out.push(param);
  }
  // a path parameter without a schema still has to be declared
  if (where === 'path') {
    for (const m of url.matchAll(/:([A-Za-z0-9_]+)/g)) {
      if (!(m[1]! in props)) out.push({ name: m[1], in: 'path', required: true, schema: { type: 'string' } });
    }
  }
  return out;
}

function responses(response: Record<string, Json> | undefined, plain: (s: unknown, root?: object) => unknown): Json {
  if (!response) return { 200: { description: 'OK' } };
  const out: Json = {};
  for (const [status, schema] of Object.entries(response)) {
    const { description, content, ...rest } = schema as Json & { description?: string; content?: Record<string, { schema: unknown }> };
    const desc = description ?? (status.startsWith('2') ? 'OK' : 'error');
    if (content) {
      out[status] = { description: desc, content: Object.fromEntries(Object.entries(content).map(([type, c]) => [type, { schema: plain(c.schema) }])) };
    } else if (Object.keys(rest).length === 0) {
      out[status] = { description: desc };
    } else {
      // an error response keeps its own description, and shows the shared Error schema
      const body = isErrorBody(schema) ? { $ref: '#/components/schemas/Error' } : plain(schema);
      out[status] = { description: desc, content: { 'application/json': { schema: body } } };
    }
  }
  return out;
}

function isErrorBody(s: Json): boolean {
  return s.properties === ErrorBody.properties;
}

/**
 * A JSON copy of a (TypeBox) schema: symbols dropped, known component schemas replaced
 * by `$ref` (except at `root`, the component itself).
 */
function toJsonSchema(schema: unknown, refs: ReadonlyMap<object, string>, root?: object): unknown {
  if (Array.isArray(schema)) return schema.map((x) => toJsonSchema(x, refs));
  if (!schema || typeof schema !== 'object') return schema;
  if (schema !== root) {
    const name = refs.get(schema);
    if (name) return { $ref: `#/components/schemas/${name}` };
  }
  const out: Json = {};
  for (const [k, v] of Object.entries(schema)) out[k] = toJsonSchema(v, refs);
  return out;
}
