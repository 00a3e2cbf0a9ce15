/** PostgreSQL LSNs ("16/B374D848") as plain numbers (exact below 2^53 bytes of WAL). */

const LSN = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/;

export function parseLsn(lsn: string | null | undefined): number | null {
  if (!lsn) return null;
  // strict: parseInt alone reads "0/1zz" as 1 and "-1/0" as a negative position
  const m = LSN.exec(lsn);
  if (!m) return null;
  return parseInt(m[1]!, 16) * 0x1_0000_0000 + parseInt(m[2]!, 16);
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
