/**
 * Config loading for both daemons: a JSON file (`--config`) or environment variables,
 * validated by a TypeBox schema. A bad config stops start-up with the exact path and
 * reason (ConfigError), never a stack trace.
 */
import { readFileSync } from 'node:fs';
import type { TSchema, Static } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { Value } from '@sinclair/typebox/value';

export class ConfigError extends Error {
  readonly code = 'CONFIG_INVALID';
}

export function validateConfig<S extends TSchema>(schema: S, raw: unknown, source: string): Static<S> {
  const withDefaults = Value.Default(schema, Value.Clone(raw));
  const check = TypeCompiler.Compile(schema);
  if (!check.Check(withDefaults)) {
    const errs = [...check.Errors(withDefaults)].slice(0, 5).map((e) => `${e.path || '/'}: ${e.message}${e.value === undefined ? '' : ` (got ${JSON.stringify(e.value)?.slice(0, 60)})`}`);
    throw new ConfigError(`invalid config in ${source}: ${errs.join('; ')}`);
  }
  return withDefaults;
}

export function readJsonFile(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read config file ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`config file ${path} is not valid JSON: ${(err as Error).message}`);
  }
}

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
