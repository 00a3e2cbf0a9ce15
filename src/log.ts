/** pino, with secrets redacted wherever they appear in a logged object. */
import { pino, type DestinationStream, type Logger } from 'pino';

/** Keys that hold secrets in any config, header or job we might log. */
const SECRET_KEYS = ['password', 'replicationPassword', 'redisPassword', 'adminToken', 'readToken', 'token', 'routingKey', 'authorization', 'cookie'];
/** Keys that hold URLs: only their credentials are hidden. */
const URL_KEYS = ['redis', 'redisUrl', 'url'];

/**
 * Redaction paths: every secret key at the top, one and two levels down, and inside the
 * config's arrays (adminTokens[*].token, webhooks[*].url). pino's paths are explicit,
 * so the depth is spelled out.
 */
export const REDACT = [
  ...[...SECRET_KEYS, ...URL_KEYS].flatMap((k) => [k, `*.${k}`, `*.*.${k}`]),
  'adminTokens[*].token',
  'webhooks[*].url',
  'webhooks[*].routingKey',
  '*.adminTokens[*].token',
  '*.webhooks[*].url',
  '*.webhooks[*].routingKey',
  'req.headers.authorization',
  'req.headers.cookie',
];

/** Webhook URLs are secrets whole (Slack's carry the token in the path); other URLs lose their credentials. */
function censor(value: unknown, path: string[]): unknown {
  const key = path[path.length - 1] ?? '';
  if (URL_KEYS.includes(key) && typeof value === 'string') {
    if (path.includes('webhooks')) return '[redacted]';
    return stripCredentials(value);
  }
  return '[redacted]';
}

export function stripCredentials(url: string): string {
  return url.replace(/\/\/([^:@/]*):([^@/]*)@/, '//$1:[redacted]@');
}

export function createLogger(name: string, level = process.env.SWITCHYARD_LOG_LEVEL ?? 'info', destination?: DestinationStream): Logger {
  // the paths catch the usual places fast; the log formatter catches a secret at any depth
  const opts = { name, level, redact: { paths: REDACT, censor }, base: { pid: process.pid }, formatters: { log: (o: Record<string, unknown>) => redactDeep(o) } };
  return destination ? pino(opts, destination) : pino(opts);
}

const isPlain = (v: unknown): v is Record<string, unknown> => !!v && typeof v === 'object' && (Object.getPrototypeOf(v) === Object.prototype || Object.getPrototypeOf(v) === null);

/** Secrets replaced at any depth of plain objects and arrays (errors and other classes pass as they are). Copies only what it changes. */
function redactDeep<T>(v: T, key = '', inWebhook = false, depth = 0): T {
  if (depth > 12) return v;
  if (Array.isArray(v)) {
    let changed = false;
    const out = v.map((x) => {
      const y = redactDeep(x, key, inWebhook || key === 'webhooks', depth + 1);
      if (y !== x) changed = true;
      return y;
    });
    return (changed ? out : v) as T;
  }
  if (isPlain(v)) {
    let out: Record<string, unknown> | null = null;
    for (const [k, x] of Object.entries(v)) {
      const y = redactDeep(x, k, inWebhook, depth + 1);
      if (y !== x) (out ??= { ...v })[k] = y;
    }
    return (out ?? v) as T;
  }
  if (typeof v !== 'string' || v === '[redacted]') return v;
  if (SECRET_KEYS.includes(key) || (inWebhook && key === 'url')) return '[redacted]' as T;
  const stripped = URL_KEYS.includes(key) ? stripCredentials(v) : v;
  return stripped as T;
}

/** A config as it may be logged or printed: secrets replaced, URLs stripped of credentials. */
export function redactConfig<T>(cfg: T): T {
  const walk = (v: unknown, key: string, inWebhook: boolean): unknown => {
    if (Array.isArray(v)) return v.map((x) => walk(x, key, inWebhook || key === 'webhooks'));
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x, k, inWebhook)]));
    if (typeof v !== 'string') return v;
    if (SECRET_KEYS.includes(key) || (inWebhook && key === 'url')) return '[redacted]';
    return stripCredentials(v);
  };
  return walk(cfg, '', false) as T;
}
