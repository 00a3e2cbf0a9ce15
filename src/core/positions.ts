/**
 * Positions as the core reads them: through the codec of the cluster's engine
 * (`src/engines/positions.ts`), so the same rules pick the most advanced replica and
 * measure lag and loss for PostgreSQL LSNs, Redis offsets and MongoDB optimes. Pure.
 *
 * Unknown or malformed positions sort below every known one; distances in bytes are
 * null for an engine whose positions do not count bytes (MongoDB: seconds).
 */
import { positionCodec } from '../engines/positions.js';
import type { PositionCodec } from '../engines/types.js';
import type { ClusterState } from './state.js';

export type { PositionCodec };

/** The codec of the cluster's engine. */
export function codecOf(state: Pick<ClusterState, 'engine'>): PositionCodec {
  return positionCodec(state.engine);
}

function known(c: PositionCodec, p: string | null | undefined): p is string {
  return typeof p === 'string' && c.valid(p);
}

/** Sort order, unknown lowest: < 0 when a is behind b, 0 when equal (or both unknown), > 0 when a is ahead. */
export function comparePositions(c: PositionCodec, a: string | null | undefined, b: string | null | undefined): number {
  const ka = known(c, a);
  const kb = known(c, b);
  if (!ka || !kb) return ka === kb ? 0 : ka ? 1 : -1;
  return Math.sign(c.compare(a, b) ?? 0);
}

/** The most advanced of the positions (unknown ones ignored); null when none is known. */
export function newestPosition(c: PositionCodec, list: ReadonlyArray<string | null | undefined>): string | null {
  let best: string | null = null;
  for (const p of list) if (known(c, p) && (best === null || comparePositions(c, p, best) > 0)) best = p;
  return best;
}

/** Has `have` reached `need`? False when `have` is unknown; null when `need` is (the caller decides). */
export function reached(c: PositionCodec, have: string | null | undefined, need: string | null | undefined): boolean | null {
  if (!known(c, need)) return null;
  return known(c, have) && comparePositions(c, have, need) >= 0;
}

/** How many bytes `a` is ahead of `b`, never negative; null when either is unknown or the engine does not count bytes. */
export function bytesAhead(c: PositionCodec, a: string | null | undefined, b: string | null | undefined): number | null {
  return c.unit === 'bytes' ? c.distance(a, b) : null;
}
