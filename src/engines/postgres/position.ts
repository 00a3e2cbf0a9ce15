/** PostgreSQL positions are LSNs ("16/B374D848"), compared as byte offsets in the WAL. Pure. */
import { lsnDiff, parseLsn } from '../../core/lsn.js';
import type { PositionCodec } from '../types.js';

export const lsnPositions: PositionCodec = {
  unit: 'bytes',
  valid: (p) => parseLsn(p) !== null,
  compare(a, b) {
    const x = parseLsn(a);
    const y = parseLsn(b);
    return x === null || y === null ? null : Math.sign(x - y);
  },
  distance: (a, b) => lsnDiff(a, b),
};
