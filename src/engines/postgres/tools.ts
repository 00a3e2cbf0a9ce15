/**
 * Running PostgreSQL's own tools (pg_controldata, pg_waldump, pg_rewind, pg_basebackup,
 * initdb, postgres --single): as the postgres user when we are root, stdin closed, the
 * libpq PG* variables of our own environment removed (the configured connection's come
 * in through `env`), bounded by a timeout. A failure is a SwitchyardError with the
 * caller's code and the tool's last output lines.
 */
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { SwitchyardError, type ErrorCode } from '../../errors.js';
import { cleanEnv } from '../../os/process.js';
import { pgBinary } from './binaries.js';
import { spawnIdentity } from './owner.js';

function lastLines(text: string, n: number): string {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .slice(-n)
    .join(' | ');
}

export interface ToolOptions {
  cwd: string;
  timeoutMs: number;
  errorCode: ErrorCode;
  /** extra environment (PGPASSWORD, PGPASSFILE, PGSSLMODE for a libpq tool) */
  env?: NodeJS.ProcessEnv;
}

/** Runs a PostgreSQL tool and collects its output; rejects on a non-zero exit or after timeoutMs (SIGKILL). */
export function runPgTool(name: string, args: string[], opts: ToolOptions): Promise<{ stdout: string; stderr: string }> {
  const file = pgBinary(name);
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      cwd: opts.cwd,
      env: cleanEnv({ LC_ALL: 'C', ...opts.env }),
      stdio: ['ignore', 'pipe', 'pipe'],
      ...spawnIdentity(),
    });
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new SwitchyardError(opts.errorCode, `${name} did not finish within ${opts.timeoutMs} ms`));
    }, opts.timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(new SwitchyardError(opts.errorCode, `${name} could not be started: ${err.message}`));
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve({ stdout, stderr });
      else reject(new SwitchyardError(opts.errorCode, `${name} failed (${signal ?? `exit code ${code}`}): ${lastLines(stderr || stdout, 3) || 'no output'}`));
    });
  });
}

export interface ControlData {
  /** "shut down", "shut down in recovery", "in production", "in crash recovery"... */
  state: string;
  checkpointLsn: string | null;
  redoLsn: string | null;
  timeline: number | null;
}

/** pg_controldata of a data directory, parsed. */
export async function controlData(dataDir: string): Promise<ControlData> {
  const { stdout } = await runPgTool('pg_controldata', ['-D', dataDir], { cwd: dataDir, timeoutMs: 30_000, errorCode: 'CONTROLDATA_FAILED' });
  const tli = /Latest checkpoint's TimeLineID:\s*(\d+)/.exec(stdout)?.[1];
  return {
    state: /Database cluster state:\s*(.+)/.exec(stdout)?.[1]?.trim() ?? '',
    checkpointLsn: /Latest checkpoint location:\s*([0-9A-F]+\/[0-9A-F]+)/.exec(stdout)?.[1] ?? null,
    redoLsn: /Latest checkpoint's REDO location:\s*([0-9A-F]+\/[0-9A-F]+)/.exec(stdout)?.[1] ?? null,
    timeline: tli ? Number(tli) : null,
  };
}

/**
 * The end of the WAL on disk of a stopped server: pg_waldump from the last checkpoint's
 * redo point reads until the first invalid record, and says where that is.
 */
export async function walEnd(dataDir: string): Promise<string | null> {
  const cd = await controlData(dataDir);
  if (!cd.redoLsn || cd.timeline === null) return null;
  try {
    await runPgTool('pg_waldump', ['-p', path.join(dataDir, 'pg_wal'), '-s', cd.redoLsn, '-t', String(cd.timeline), '-q'], {
      cwd: dataDir,
      timeoutMs: 60_000,
      errorCode: 'WALDUMP_FAILED',
    });
    return null; // it never ends cleanly on a live WAL directory
  } catch (err) {
    return walEndFromWaldumpError((err as Error).message);
  }
}

/**
 * pg_waldump stops at the first record it cannot read: "invalid record length at 0/1537590:
 * wanted 24, got 0" (that LSN is the end), or "invalid magic number 0000 in log segment
 * 000000010000000000000003, offset 0" (the end is that segment's start plus the offset).
 */
export function walEndFromWaldumpError(message: string): string | null {
  // the reason follows "error in WAL record at <start of the last good record>: "
  const reason = message.replace(/^[\s\S]*?error in WAL record at [0-9A-F]+\/[0-9A-F]+:\s*/i, '');
  const ats = [...reason.matchAll(/ at ([0-9A-F]+\/[0-9A-F]+)/gi)];
  if (ats.length > 0) return ats[ats.length - 1]![1]!;
  const seg = /in log segment ([0-9A-F]{24}), offset (\d+)/i.exec(message);
  if (seg) {
    const name = seg[1]!;
    const segno = parseInt(name.slice(8, 16), 16) * 0x100 + parseInt(name.slice(16, 24), 16);
    const lsn = segno * 16 * 1024 * 1024 + Number(seg[2]);
    const hi = Math.floor(lsn / 0x1_0000_0000);
    return `${hi.toString(16).toUpperCase()}/${(lsn - hi * 0x1_0000_0000).toString(16).toUpperCase()}`;
  }
  return null;
}

/** Crash recovery of a stopped data directory in single-user mode (pg_rewind needs a clean shutdown). */
export async function singleUserRecovery(dataDir: string): Promise<void> {
  await runPgTool('postgres', ['--single', '-D', dataDir, '-c', 'archive_mode=off', 'postgres'], { cwd: dataDir, timeoutMs: 120_000, errorCode: 'SINGLE_USER_FAILED' });
}
