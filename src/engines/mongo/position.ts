/** MongoDB positions: optimes written `"<term>:<seconds>.<increment>"`, compared by term then Timestamp. Pure. */
import type { PositionCodec } from '../types.js';

/** A MongoDB optime: (term, Timestamp seconds, Timestamp increment). */
export interface OpTime {
  term: number;
  secs: number;
  inc: number;
}

export function formatPosition(o: OpTime): string {
  return `${String(o.term)}:${String(o.secs)}.${String(o.inc)}`;
}

const POSITION = /^(\d+):(\d+)\.(\d+)$/;

export function parsePosition(p: string | null | undefined): OpTime | null {
  const m = p ? POSITION.exec(p) : null;
  return m ? { term: Number(m[1]), secs: Number(m[2]), inc: Number(m[3]) } : null;
}

export function compareOpTime(a: OpTime, b: OpTime): number {
  return a.term - b.term || a.secs - b.secs || a.inc - b.inc;
}

/** MongoDB positions: `"<term>:<seconds>.<increment>"`, compared by term then Timestamp; distance in seconds. */
export const mongoPosition: PositionCodec = {
  unit: 'seconds',
  valid: (p) => parsePosition(p) !== null,
  compare(a, b) {
    const x = parsePosition(a);
    const y = parsePosition(b);
    return x && y ? compareOpTime(x, y) : null;
  },
  distance(a, b) {
    const x = parsePosition(a);
    const y = parsePosition(b);
    if (!x || !y) return null;
    return Math.max(0, x.secs - y.secs);
  },
};
