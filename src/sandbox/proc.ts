/**
 * Process helpers the sandbox uses to arrange processes on loopback. The helpers
 * themselves live in src/os/process.ts (OS) and src/engines/postgres/owner.ts (the
 * postgres OS user); this module only adapts them for the harness.
 */
import * as fs from 'node:fs';
import { chownToPg } from '../engines/postgres/owner.js';

export { isProcessAlive, isProcessStopped, waitForExit, killAndWait, killProcessGroup, processTree, cleanEnv } from '../os/process.js';
export { pgUser, chownToPg, ensureTraversable } from '../engines/postgres/owner.js';

/**
 * Creates `dir` (recursively) if needed, then sets its mode and owner: 'postgres' chowns
 * it to the postgres user when we are root; 'self' leaves it ours.
 */
export function ensureDir(dir: string, opts: { owner: 'postgres' | 'self'; mode: number }): void {
  fs.mkdirSync(dir, { recursive: true });
  fs.chmodSync(dir, opts.mode);
  if (opts.owner === 'postgres') chownToPg(dir);
}
