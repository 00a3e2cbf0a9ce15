/**
 * SIGHUP: which settings changed, and which of them take effect without a restart
 * (the schema marks those `live`). Values of secrets are never named, only their paths.
 */
import type { TSchema } from '@sinclair/typebox';
import { formatPath } from './load.js';

export interface ConfigDiff {
  /** changed, and applied live */
  live: string[];
  /** changed, but only read at start-up: takes effect after a restart */
  restart: string[];
}

export function diffConfig(schema: TSchema, before: unknown, after: unknown): ConfigDiff {
  const out: ConfigDiff = { live: [], restart: [] };
  walk(schema, before, after, [], false, out);
  return out;
}

function walk(schema: TSchema | undefined, a: unknown, b: unknown, path: Array<string | number>, live: boolean, out: ConfigDiff): void {
  const s = schema;
  const isLive = live || s?.live === true;
  if (JSON.stringify(a) === JSON.stringify(b)) return;
  const objA = a && typeof a === 'object' && !Array.isArray(a);
  const objB = b && typeof b === 'object' && !Array.isArray(b);
  if (s?.properties && objA && objB) {
    const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
    for (const k of keys) walk(s.properties[k], (a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], [...path, k], isLive, out);
    return;
  }
  if (s?.type === 'array' && Array.isArray(a) && Array.isArray(b) && a.length === b.length && !isLive) {
    a.forEach((x, i) => walk(s.items, x, b[i], [...path, i], isLive, out));
    return;
  }
  (isLive ? out.live : out.restart).push(formatPath(path));
}
