/**
 * The engines switchyard has. Adding one: implement `Engine` (src/engines/types.ts) in
 * src/engines/<name>/ and add it to ENGINES below; the agent, the sandbox and the CLI
 * take the list from here.
 */
import { SwitchyardError } from '../errors.js';
import { mongoEngine } from './mongo/index.js';
import { postgresEngine } from './postgres/index.js';
import { redisEngine } from './redis/engine.js';
import type { Engine, EngineName } from './types.js';

export type * from './types.js';

// (MongoDB elects its own primary: observe-only, no managed process, switchover steered: src/engines/mongo/)
const ENGINES = new Map<string, Engine>([
  [postgresEngine.name, postgresEngine],
  [redisEngine.name, redisEngine],
  [mongoEngine.name, mongoEngine],
]);

/** Adds an engine (for an engine living outside this package, or a test). */
export function registerEngine(engine: Engine): void {
  ENGINES.set(engine.name, engine);
}

/** The names of the registered engines, e.g. for `--engine` help. */
export function engineNames(): string[] {
  return [...ENGINES.keys()];
}

/** The engine of that name; ENGINE_NOT_SUPPORTED (listing the engines there are) otherwise. */
export function getEngine(name: string): Engine {
  const e = ENGINES.get(name);
  if (!e) throw new SwitchyardError('ENGINE_NOT_SUPPORTED', `engine ${JSON.stringify(name)} is not supported: use one of ${engineNames().join(', ')}`);
  return e;
}

export function isEngineName(name: string): name is EngineName {
  return ENGINES.has(name);
}
