/** Redis positions: the replication offset as a decimal string ("123456"), counted in bytes. Pure. */
import type { PositionCodec } from '../types.js';

/** Redis positions: the replication offset as a decimal string ("123456"). Offsets compare only on one replid. */
export const offsetPositions: PositionCodec = {
  unit: 'bytes',
  valid: (p) => /^\d{1,20}$/.test(p),
  compare(a, b) {
    if (!offsetPositions.valid(a) || !offsetPositions.valid(b)) return null;
    return Math.sign(Number(a) - Number(b));
  },
  distance(a, b) {
    if (a == null || b == null || !offsetPositions.valid(a) || !offsetPositions.valid(b)) return null;
    return Math.max(0, Number(a) - Number(b));
  },
};
