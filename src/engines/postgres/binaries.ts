/**
 * Where the PostgreSQL server binaries are: found once and cached. In order: the
 * `pgBin` setting (agent config), $PG_BIN, `pg_config --bindir` (only if it really holds
 * initdb and postgres: on Debian it may be /usr/bin, which has client wrappers only),
 * the newest /usr/lib/postgresql/<version>/bin.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SwitchyardError } from '../../errors.js';

export const PG_NOT_FOUND = 'PostgreSQL server binaries not found: install postgresql or set PG_BIN (or pgBin in the agent config)';

/** A regular file this process may execute. */
export function isExecutable(file: string): boolean {
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

let configured: string | undefined;
let cached: string | undefined;

/**
 * The `pgBin` setting: binaries are taken from this directory from now on (undefined:
 * look them up). A directory without initdb and postgres is an error at once, naming it.
 */
export function setPgBin(dir: string | undefined): void {
  if (dir !== undefined && dir !== '' && !hasServerBinaries(dir)) {
    throw new SwitchyardError('PG_BINARIES_NOT_FOUND', `pgBin ${dir} holds no PostgreSQL server binaries (initdb, postgres): fix pgBin in the agent config`);
  }
  configured = dir === '' ? undefined : dir;
  cached = configured;
}

function lookUp(): string {
  const env = process.env['PG_BIN'];
  if (env !== undefined && env !== '') {
    if (hasServerBinaries(env)) return env;
    // An explicit setting that is wrong is an error, not a hint to guess.
    throw new SwitchyardError('PG_BINARIES_NOT_FOUND', `PostgreSQL server binaries not found: install postgresql or set PG_BIN (PG_BIN=${env} holds no initdb and postgres)`);
  }
  try {
    const dir = execFileSync('pg_config', ['--bindir'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 10_000 }).trim();
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
  throw new SwitchyardError('PG_BINARIES_NOT_FOUND', PG_NOT_FOUND);
}

/** The directory holding the server binaries (looked up once, then cached). */
export function findPgBin(): string {
  cached ??= configured ?? lookUp();
  return cached;
}

/** Full path of a PostgreSQL binary (e.g. "pg_basebackup"). */
export function pgBinary(name: string): string {
  const file = path.join(findPgBin(), name);
  if (!isExecutable(file)) {
    throw new SwitchyardError('PG_BINARIES_NOT_FOUND', `PostgreSQL binary ${name} not found in ${path.dirname(file)}: install it, or set pgBin or PG_BIN`);
  }
  return file;
}
