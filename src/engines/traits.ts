/**
 * What the pure core needs to know of each engine beyond its positions, by name. Types and
 * constants only: no I/O, so `src/core/` may import it (the engine objects themselves load
 * drivers). A test checks it agrees with the registered engines (src/engines/index.ts).
 */
import type { EngineName } from './types.js';

/** Engines that elect their own primary (MongoDB): the core adopts the primary the members report and never promotes. */
const ELECTS_ITSELF: Readonly<Record<EngineName, boolean>> = {
  postgres: false,
  redis: false,
  mongodb: true,
};

export function electsItself(engine: string): boolean {
  return (ELECTS_ITSELF as Record<string, boolean | undefined>)[engine] ?? false;
}
