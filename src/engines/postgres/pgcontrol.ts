/**
 * The latest checkpoint's LSN read straight from `global/pg_control`, without spawning
 * pg_controldata: a demoted primary reports it on the switchover's critical path, where a
 * process spawn on a loaded host costs more than the rest of the step.
 *
 * Layout of ControlFileData (PostgreSQL 11 and later, pg_control_version 1100-1799):
 * system_identifier u64 @0, pg_control_version u32 @8, catalog_version_no u32 @12,
 * state i32 @16, time i64 @24, checkPoint u64 @32 (the "Latest checkpoint location").
 * Anything else (another version, a short file) answers null: use pg_controldata.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export function readCheckpointLsn(dataDir: string): string | null {
  if (os.endianness() !== 'LE') return null;
  let buf: Buffer;
  try {
    buf = fs.readFileSync(path.join(dataDir, 'global', 'pg_control'));
  } catch {
    return null;
  }
  if (buf.length < 40) return null;
  const version = buf.readUInt32LE(8);
  if (version < 1100 || version >= 1800) return null;
  const lsn = buf.readBigUInt64LE(32);
  const hi = Number(lsn >> 32n);
  const lo = Number(lsn & 0xffffffffn);
  return `${hi.toString(16).toUpperCase()}/${lo.toString(16).toUpperCase()}`;
}
