/**
 * Each engine's position codec, by engine name: what the pure core compares and measures
 * positions with (`state.engine` picks the codec). Types and pure code only: no I/O, no
 * engine runtime, so `src/core/` may import it.
 *
 * Adding an engine: put its codec in a pure `src/engines/<name>/position.ts` and list it here.
 */
import { mongoPosition } from './mongo/position.js';
import { lsnPositions } from './postgres/position.js';
import { offsetPositions } from './redis/position.js';
import type { EngineName, PositionCodec } from './types.js';

export const POSITION_CODECS: Readonly<Record<EngineName, PositionCodec>> = {
  postgres: lsnPositions,
  redis: offsetPositions,
  mongodb: mongoPosition,
};

/** The position codec of an engine; PostgreSQL's LSNs for a name it does not know (states folded before engines had names). */
export function positionCodec(engine: string): PositionCodec {
  return (POSITION_CODECS as Record<string, PositionCodec | undefined>)[engine] ?? lsnPositions;
}
