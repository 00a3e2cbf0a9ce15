/** PostgreSQL LSNs ("16/B374D848") as plain numbers (exact below 2^53 bytes of WAL). */

export function parseLsn(lsn: string | null | undefined): number | null {
  if (!lsn) return null;
  const slash = lsn.indexOf('/');
  if (slash <= 0) return null;
  const hi = parseInt(lsn.slice(0, slash), 16);
  const lo = parseInt(lsn.slice(slash + 1), 16);
  if (!Number.isFinite(hi) || !Number.isFinite(lo)) return null;
  return hi * 0x1_0000_0000 + lo;
}

export function formatLsn(n: number): string {
  const hi = Math.floor(n / 0x1_0000_0000);
  const lo = n - hi * 0x1_0000_0000;
  return `${hi.toString(16).toUpperCase()}/${lo.toString(16).toUpperCase()}`;
}

/** a − b in bytes, never negative; null when either is unknown. */
export function lsnDiff(a: string | null | undefined, b: string | null | undefined): number | null {
  const x = parseLsn(a);
  const y = parseLsn(b);
  if (x === null || y === null) return null;
  return Math.max(0, x - y);
}
