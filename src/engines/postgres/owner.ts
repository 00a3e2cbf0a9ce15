/**
 * PostgreSQL refuses to run as root: when we are root, its processes, data directories
 * and files belong to the `postgres` OS user.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SwitchyardError } from '../../errors.js';

let cachedPgUser: { uid: number; gid: number } | null | undefined;

/**
 * uid/gid of the `postgres` OS user when we run as root, null when we are not root
 * (then PostgreSQL runs as ourselves). Throws PG_USER_NOT_FOUND when root and there is
 * no such user.
 */
export function pgUser(): { uid: number; gid: number } | null {
  if (cachedPgUser !== undefined) return cachedPgUser;
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) {
    cachedPgUser = null;
    return null;
  }
  try {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
    if (!Number.isInteger(uid) || !Number.isInteger(gid)) throw new Error('bad id output');
    cachedPgUser = { uid, gid };
    return cachedPgUser;
  } catch {
    throw new SwitchyardError('PG_USER_NOT_FOUND', 'running as root but there is no "postgres" OS user to run PostgreSQL as: create one or run as a non-root user');
  }
}

/** uid/gid options for spawn: the postgres user when we are root. */
export function spawnIdentity(): { uid?: number; gid?: number } {
  const u = pgUser();
  return u ? { uid: u.uid, gid: u.gid } : {};
}

/** Chowns `p` to the postgres user when we are root; no-op otherwise. */
export function chownToPg(p: string): void {
  const u = pgUser();
  if (u) fs.chownSync(p, u.uid, u.gid);
}

/**
 * Makes `dir` and its ancestors traversable by others (o+x), so that the postgres user
 * can reach data directories below it. Only when we are root (a mkdtemp dir in /tmp is
 * 0700 root).
 */
export function ensureTraversable(dir: string): void {
  if (pgUser() === null) return;
  let cur = path.resolve(dir);
  for (;;) {
    try {
      const st = fs.statSync(cur);
      if (st.isDirectory() && (st.mode & 0o001) === 0) fs.chmodSync(cur, (st.mode & 0o7777) | 0o001);
    } catch {
      // does not exist (yet) or not ours to change
    }
    const parent = path.dirname(cur);
    if (parent === cur) return;
    cur = parent;
  }
}

/** Creates `dir` if needed, with `mode`, owned by the postgres user when we are root. */
export function ensurePgDir(dir: string, mode: number): void {
  fs.mkdirSync(dir, { recursive: true });
  fs.chmodSync(dir, mode);
  chownToPg(dir);
}

/** Throws DATA_DIR_EXISTS when `dir` exists and is not an empty directory. */
export function assertDataDirUnused(dir: string): void {
  let entries: string[];
  try {
    entries = fs.readdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw new SwitchyardError('DATA_DIR_EXISTS', `data directory ${dir} already exists: remove it or choose another`);
  }
  if (entries.length > 0) throw new SwitchyardError('DATA_DIR_EXISTS', `data directory ${dir} already exists: remove it or choose another`);
}

/** Prepares an (absent or empty) data directory: parents traversable, dir owned by postgres, 0700. */
export function prepareDataDir(dataDir: string): void {
  assertDataDirUnused(dataDir);
  const parent = path.dirname(dataDir);
  fs.mkdirSync(parent, { recursive: true });
  ensureTraversable(parent);
  ensurePgDir(dataDir, 0o700);
}
