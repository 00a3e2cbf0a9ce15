/**
 * Config loading for both daemons: a YAML (or JSON) file given by `--config`, then the
 * environment (SWITCHYARD_* and the seed's aliases), which wins over the file; then the
 * schema's defaults, secrets read from their files, validation and the timing
 * cross-checks. A bad config stops start-up with one line per problem naming the exact
 * path (ConfigError, exit code 2), never a stack trace.
 */
import { readFileSync } from 'node:fs';
import type { TSchema, Static } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { Value, ValueErrorType, type ValueError } from '@sinclair/typebox/value';
import { parseDocument } from 'yaml';
import { SwitchyardError } from '../errors.js';
import { AgentConfig, CoordinatorConfig } from './schemas.js';
import { agentCrossChecks, coordinatorCrossChecks } from './checks.js';
import { aliasesFor } from './aliases.js';
import { stripCredentials } from '../log.js';

/** A config that fails validation (catalogue code CONFIG_INVALID), one line per problem. */
export class ConfigError extends SwitchyardError {
  constructor(
    message: string,
    readonly problems: string[] = [message],
  ) {
    super('CONFIG_INVALID', message);
    this.name = 'ConfigError';
  }
}

export type DaemonKind = 'agent' | 'coordinator';

export function schemaFor(kind: DaemonKind): TSchema {
  return kind === 'agent' ? AgentConfig : CoordinatorConfig;
}

export interface Loaded<T> {
  config: T;
  /** non-fatal remarks (an alias shadowed by its SWITCHYARD_* variable, a password in a URL) */
  warnings: string[];
  /** where each set value came from: path → file or variable name */
  origins: Map<string, string>;
}

type Path = Array<string | number>;
type Json = Record<string, unknown>;

export function loadAgentConfigFrom(file: string | undefined, env: NodeJS.ProcessEnv = process.env): Loaded<AgentConfig> {
  return load('agent', file, env) as Loaded<AgentConfig>;
}

export function loadCoordinatorConfigFrom(file: string | undefined, env: NodeJS.ProcessEnv = process.env): Loaded<CoordinatorConfig> {
  return load('coordinator', file, env) as Loaded<CoordinatorConfig>;
}

export function load(kind: DaemonKind, file: string | undefined, env: NodeJS.ProcessEnv): Loaded<unknown> {
  const schema = schemaFor(kind);
  const source = file ?? 'the environment';
  const raw: Json = file ? readConfigFile(file) : {};
  const origins = new Map<string, string>();
  const warnings: string[] = [];
  if (file) for (const p of leafPaths(raw)) origins.set(p, file);
  applyEnv(schema, raw, env, origins, warnings, kind);
  const problems: string[] = [];
  // the login name's default follows the engine: Redis's is `default` (an AUTH as `postgres` fails)
  if (kind === 'agent' && raw.engine === 'redis' && raw.user === undefined) raw.user = 'default';
  const withDefaults = Value.Default(schema, raw) as Json;
  readSecretFiles(withDefaults, problems);
  const check = TypeCompiler.Compile(schema);
  if (!check.Check(withDefaults)) {
    problems.push(...describeErrors(schema, [...check.Errors(withDefaults)], origins));
  }
  if (problems.length === 0) {
    problems.push(...(kind === 'agent' ? agentCrossChecks(withDefaults as AgentConfig) : coordinatorCrossChecks(withDefaults as CoordinatorConfig)));
  }
  const url = withDefaults.redis;
  if (typeof url === 'string' && /\/\/[^@/]*:[^@/]+@/.test(url)) warnings.push('redis: the URL carries a password; prefer redisPassword or redisPasswordFile (URLs end up in process lists and logs)');
  if (problems.length > 0) throw new ConfigError(`invalid configuration (${source}):\n  ${problems.join('\n  ')}`, problems);
  return { config: withDefaults, warnings, origins };
}

/** Validate an object already in memory (the sandbox and tests build configs this way). */
export function validateConfig<S extends TSchema>(schema: S, raw: unknown, source: string): Static<S> {
  const withDefaults = Value.Default(schema, Value.Clone(raw)) as Static<S>;
  const check = TypeCompiler.Compile(schema);
  if (!check.Check(withDefaults)) {
    const problems = describeErrors(schema, [...check.Errors(withDefaults)], new Map());
    throw new ConfigError(`invalid configuration (${source}):\n  ${problems.join('\n  ')}`, problems);
  }
  return withDefaults;
}

/* ------------------------------------------------------------------ file */

export function readConfigFile(path: string): Json {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read config file ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const problems = doc.errors.map((e) => `${path}:${e.linePos?.[0] ? `${e.linePos[0].line}:${e.linePos[0].col}` : ''} ${e.message.split('\n')[0]}`);
    throw new ConfigError(`config file ${path} is not valid YAML:\n  ${problems.join('\n  ')}`, problems);
  }
  const value: unknown = doc.toJS();
  if (value === null || value === undefined) return {};
  if (typeof value !== 'object' || Array.isArray(value)) throw new ConfigError(`config file ${path}: expected a mapping of settings at the top, got ${Array.isArray(value) ? 'a list' : JSON.stringify(value)}`);
  return value as Json;
}

/** Kept for callers of the JSON-only loader: JSON is YAML. */
export function readJsonFile(path: string): unknown {
  return readConfigFile(path);
}

/* ------------------------------------------------------------ environment */

interface EnvSpec {
  env: string;
  path: string[];
  schema: TSchema;
}

/** Every field with an `env` keyword, with its path (`*` = each element of an array). */
export function envSpecs(schema: TSchema, path: string[] = []): EnvSpec[] {
  const out: EnvSpec[] = [];
  const s = schema as TSchema & { env?: string; properties?: Record<string, TSchema>; items?: TSchema };
  if (s.env && path.length > 0) out.push({ env: s.env, path, schema: s });
  if (s.type === 'object' && s.properties) {
    for (const [k, sub] of Object.entries(s.properties)) out.push(...envSpecs(sub, [...path, k]));
  } else if (s.type === 'array' && s.items && (s.items as { type?: string }).type === 'object') {
    out.push(...envSpecs(s.items, [...path, '*']));
  }
  return out;
}

function applyEnv(schema: TSchema, raw: Json, env: NodeJS.ProcessEnv, origins: Map<string, string>, warnings: string[], kind: DaemonKind): void {
  const specs = envSpecs(schema);
  // aliases first: a SWITCHYARD_* variable set too wins over its alias
  for (const a of aliasesFor(kind)) {
    const v = env[a.alias];
    if (v === undefined || v === '') continue;
    if (a.target && env[a.target] !== undefined && env[a.target] !== '') {
      warnings.push(`${a.alias} is ignored: ${a.target} is set too and wins`);
      continue;
    }
    a.apply(raw, v, (p) => origins.set(p, a.alias));
  }
  for (const spec of specs) {
    const v = env[spec.env];
    if (v === undefined || v === '') continue;
    if (spec.path.length === 1 && spec.path[0] === 'clusters') {
      // SWITCHYARD_CLUSTER=a,b: these clusters, keeping what the file says of each
      const have = Array.isArray(raw.clusters) ? (raw.clusters as Json[]) : [];
      // an alias may have filled an unnamed cluster: its settings apply to each one named here
      const template = have.find((c) => c.name === undefined) ?? {};
      raw.clusters = v.split(',').map((n) => n.trim()).filter(Boolean).map((name) => have.find((c) => c.name === name) ?? { ...structuredClone(template), name });
      origins.set('clusters', spec.env);
      continue;
    }
    const value = coerceEnv(spec.schema, v);
    setPath(raw, spec.path, value, (p) => origins.set(p, spec.env));
  }
}

/** An environment string as the field's type; a value that does not fit stays a string so validation names it. */
export function coerceEnv(schema: TSchema, v: string): unknown {
  const s = schema as TSchema & { anyOf?: TSchema[] };
  const types = new Set<string>();
  const collect = (x: TSchema): void => {
    const y = x as TSchema & { anyOf?: TSchema[]; const?: unknown };
    if (y.anyOf) y.anyOf.forEach(collect);
    else if (y.const !== undefined) types.add(typeof y.const);
    else if (typeof y.type === 'string') types.add(y.type);
  };
  collect(s);
  const t = v.trim();
  if ((types.has('integer') || types.has('number')) && t !== '' && Number.isFinite(Number(t))) return Number(t);
  if (types.has('boolean')) {
    if (/^(true|1|yes|on)$/i.test(t)) return true;
    if (/^(false|0|no|off)$/i.test(t)) return false;
  }
  if (types.has('array')) return t.split(',').map((x) => x.trim()).filter(Boolean);
  return v;
}

export function setPath(raw: Json, path: string[], value: unknown, mark: (p: string) => void, at: Path = []): void {
  const [head, ...rest] = path;
  if (head === undefined) return;
  if (head === '*') {
    const arr = raw as unknown as unknown[];
    if (!Array.isArray(arr)) return;
    arr.forEach((el, i) => {
      if (el && typeof el === 'object') setPath(el as Json, rest, value, mark, [...at, i]);
    });
    return;
  }
  if (rest.length === 0) {
    raw[head] = value;
    mark(formatPath([...at, head]));
    return;
  }
  let next = raw[head];
  if (rest[0] === '*') {
    if (!Array.isArray(next)) return;
  } else if (!next || typeof next !== 'object' || Array.isArray(next)) {
    next = {};
    raw[head] = next;
  }
  setPath(next as Json, rest, value, mark, [...at, head]);
}

/* ---------------------------------------------------------------- secrets */

const SECRET_FILES: Array<[file: string, into: string]> = [
  ['passwordFile', 'password'],
  ['replicationPasswordFile', 'replicationPassword'],
  ['redisPasswordFile', 'redisPassword'],
  ['adminTokenFile', 'adminToken'],
  ['readTokenFile', 'readToken'],
  ['tokenFile', 'token'],
  ['urlFile', 'url'],
  ['routingKeyFile', 'routingKey'],
];

/** Replace every `xFile` by the content of the file it names (trimmed), anywhere in the config. */
function readSecretFiles(o: unknown, problems: string[], at: Path = []): void {
  if (Array.isArray(o)) {
    o.forEach((x, i) => readSecretFiles(x, problems, [...at, i]));
    return;
  }
  if (!o || typeof o !== 'object') return;
  const obj = o as Json;
  for (const [fileKey, into] of SECRET_FILES) {
    const f = obj[fileKey];
    if (typeof f !== 'string' || f === '') continue;
    if (obj[into] !== undefined) {
      problems.push(`${formatPath([...at, fileKey])}: set ${into} or ${fileKey}, not both`);
      continue;
    }
    try {
      const text = readFileSync(f, 'utf8').replace(/\r?\n$/, '');
      if (text === '') problems.push(`${formatPath([...at, fileKey])}: ${f} is empty`);
      else obj[into] = text;
    } catch (err) {
      problems.push(`${formatPath([...at, fileKey])}: cannot read ${f}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  }
  for (const [k, v] of Object.entries(obj)) if (v && typeof v === 'object') readSecretFiles(v, problems, [...at, k]);
}

/* ----------------------------------------------------------------- errors */

/** `clusters[0].settings.failAfterMs` */
export function formatPath(p: Path): string {
  let s = '';
  for (const part of p) {
    if (typeof part === 'number' || /^\d+$/.test(String(part))) s += `[${part}]`;
    else s += s === '' ? part : `.${part}`;
  }
  return s || '(top level)';
}

function pointerToPath(pointer: string): Path {
  return pointer
    .split('/')
    .slice(1)
    .map((x) => x.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((x) => (/^\d+$/.test(x) ? Number(x) : x));
}

function schemaAt(schema: TSchema, path: Path): TSchema | undefined {
  let s: TSchema | undefined = schema;
  for (const part of path) {
    if (!s) return undefined;
    const x = s as TSchema & { properties?: Record<string, TSchema>; items?: TSchema };
    s = typeof part === 'number' ? x.items : x.properties?.[part];
  }
  return s;
}

export function expectation(schema: TSchema): string {
  const s = schema as TSchema & { anyOf?: TSchema[]; const?: unknown; minimum?: number; maximum?: number; minLength?: number; pattern?: string; minItems?: number };
  if (s.anyOf) return `one of ${s.anyOf.map((x) => expectation(x)).join(', ')}`;
  if (s.const !== undefined) return JSON.stringify(s.const);
  const bounds: string[] = [];
  if (s.minimum !== undefined) bounds.push(`≥ ${s.minimum}`);
  if (s.maximum !== undefined) bounds.push(`≤ ${s.maximum}`);
  switch (s.type) {
    case 'integer':
    case 'number':
      return `${s.type}${bounds.length ? ` ${bounds.join(' and ')}` : ''}`;
    case 'string':
      if (s.pattern === '^[A-Za-z0-9_.-]{1,64}$') return 'a name of 1-64 letters, digits, _ . -';
      if (s.pattern) return `a string matching ${s.pattern}`;
      if (s.minLength) return `a string of at least ${s.minLength} characters`;
      return 'a string';
    case 'boolean':
      return 'true or false';
    case 'array':
      return s.minItems ? `a list of at least ${s.minItems}` : 'a list';
    case 'object':
      return 'a mapping';
    default:
      return String(s.type ?? 'a value');
  }
}

function got(v: unknown): string {
  if (v === undefined) return 'nothing';
  // a URL's password is as secret as a password field
  const s = JSON.stringify(typeof v === 'string' ? stripCredentials(v) : v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

export function describeErrors(schema: TSchema, errors: ValueError[], origins: Map<string, string>): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  for (const e of errors) {
    const path = pointerToPath(e.path);
    const name = formatPath(path);
    if (seen.has(name)) continue;
    // a failed union also reports each member; the union's own line says it all
    if ([...seen].some((s) => name.startsWith(`${s}.`) || name.startsWith(`${s}[`))) continue;
    seen.add(name);
    const from = origins.get(name);
    const suffix = from && !from.includes('/') && !from.includes('.') ? ` (from ${from})` : '';
    if (e.type === ValueErrorType.ObjectAdditionalProperties) {
      const key = String(path[path.length - 1]);
      const parent = schemaAt(schema, path.slice(0, -1));
      const hint = didYouMean(key, Object.keys(parent?.properties ?? {}));
      out.push(`${name}: unknown setting${hint ? `; did you mean ${formatPath([...path.slice(0, -1), hint])}?` : ''}`);
      continue;
    }
    if (e.type === ValueErrorType.ObjectRequiredProperty || (e.value === undefined && e.type !== ValueErrorType.Union)) {
      out.push(`${name}: required, missing${envHint(schemaAt(schema, path))}`);
      continue;
    }
    // a secret's value never goes to the terminal or the journal of a service manager
    const value = (e.schema as { secret?: boolean }).secret ? '[redacted]' : got(e.value);
    out.push(`${name}: expected ${expectation(e.schema)}, got ${value}${suffix}`);
  }
  return out;
}

function envHint(s: TSchema | undefined): string {
  const env = (s as { env?: string } | undefined)?.env;
  return env ? ` (set it in the file or ${env})` : '';
}

/** The closest known key within a small edit distance. */
export function didYouMean(key: string, known: string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const k of known) {
    const d = levenshtein(key.toLowerCase(), k.toLowerCase());
    if (d < bestD) {
      bestD = d;
      best = k;
    }
  }
  return best !== undefined && bestD <= Math.max(2, Math.floor(key.length / 3)) ? best : undefined;
}

function levenshtein(a: string, b: string): number {
  const dp = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = dp[0]!;
    dp[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = dp[j]!;
      dp[j] = Math.min(dp[j]! + 1, dp[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return dp[b.length]!;
}

function leafPaths(o: unknown, at: Path = []): string[] {
  if (o && typeof o === 'object') {
    return Object.entries(o as Json).flatMap(([k, v]) => leafPaths(v, [...at, Array.isArray(o) ? Number(k) : k]));
  }
  return [formatPath(at)];
}

/* ------------------------------------------------------- older helpers */

/** Numbers from the environment: a non-numeric value is an error naming the variable. */
export function envNumber(env: NodeJS.ProcessEnv, name: string): number | undefined {
  const v = env[name];
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new ConfigError(`environment variable ${name}=${JSON.stringify(v)} is not a number`);
  return n;
}

/** Drop undefined values so schema defaults apply. */
export function compact<T extends Record<string, unknown>>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
