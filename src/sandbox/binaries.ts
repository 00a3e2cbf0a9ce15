import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { HarnessError } from './errors.js';

export const PG_NOT_FOUND = 'PostgreSQL server binaries not found: install postgresql or set PG_BIN';
export const REDIS_NOT_FOUND = 'redis-server not found: install redis-server or set REDIS_SERVER';

function isExecutable(file: string): boolean {
  try {
    const st = fs.statSync(file);
    if (!st.isFile()) return false;
    fs.accessSync(file, fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function hasServerBinaries(dir: string): boolean {
  return isExecutable(path.join(dir, 'initdb')) && isExecutable(path.join(dir, 'postgres'));
}

function versionKey(v: string): number[] {
  return v.split(/[^0-9]+/).filter(Boolean).map(Number);
}

function compareVersionsDesc(a: string, b: string): number {
  const ka = versionKey(a);
  const kb = versionKey(b);
  for (let i = 0; i < Math.max(ka.length, kb.length); i++) {
    const d = (kb[i] ?? -1) - (ka[i] ?? -1);
    if (d !== 0) return d;
  }
  return b.localeCompare(a);
}

/**
 * Directory holding the PostgreSQL server binaries (initdb, postgres,
 * pg_basebackup...). Looked up in order: $PG_BIN, `pg_config --bindir`
 * (only if it really contains initdb and postgres: on Debian it may be
 * /usr/bin, which has only client wrappers), the newest
 * /usr/lib/postgresql/<version>/bin.
 */
export function findPgBin(): string {
  const env = process.env['PG_BIN'];
  if (env !== undefined && env !== '') {
    if (hasServerBinaries(env)) return env;
    // An explicit setting that is wrong is an error, not a hint to guess.
    throw new HarnessError('PG_BINARIES_NOT_FOUND', PG_NOT_FOUND);
  }
  try {
    const dir = execFileSync('pg_config', ['--bindir'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
      timeout: 10_000,
    }).trim();
    if (dir && hasServerBinaries(dir)) return dir;
  } catch {
    // no pg_config on PATH
  }
  const root = '/usr/lib/postgresql';
  let versions: string[] = [];
  try {
    versions = fs.readdirSync(root);
  } catch {
    // not a Debian-style layout
  }
  for (const v of versions.sort(compareVersionsDesc)) {
    const dir = path.join(root, v, 'bin');
    if (hasServerBinaries(dir)) return dir;
  }
  throw new HarnessError('PG_BINARIES_NOT_FOUND', PG_NOT_FOUND);
}

/** Full path of a PostgreSQL binary (e.g. "pg_basebackup") in findPgBin(). */
export function pgBinary(name: string): string {
  const file = path.join(findPgBin(), name);
  if (!isExecutable(file)) {
    throw new HarnessError(
      'PG_BINARIES_NOT_FOUND',
      `PostgreSQL binary ${name} not found in ${path.dirname(file)}: install it or set PG_BIN`,
    );
  }
  return file;
}

/**
 * Full path of redis-server: $REDIS_SERVER (a path to the binary), else
 * redis-server on $PATH, else /usr/bin or /usr/local/bin.
 */
export function findRedisServer(): string {
  const env = process.env['REDIS_SERVER'];
  if (env !== undefined && env !== '') {
    if (isExecutable(env)) return env;
    throw new HarnessError('REDIS_SERVER_NOT_FOUND', REDIS_NOT_FOUND);
  }
  const dirs = (process.env['PATH'] ?? '').split(path.delimiter).filter(Boolean);
  for (const d of [...dirs, '/usr/bin', '/usr/local/bin', '/usr/sbin']) {
    const file = path.join(d, 'redis-server');
    if (isExecutable(file)) return file;
  }
  throw new HarnessError('REDIS_SERVER_NOT_FOUND', REDIS_NOT_FOUND);
}
