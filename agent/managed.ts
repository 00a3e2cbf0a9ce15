/**
 * The agent's hold on its node's process, when it is given a data directory: start,
 * watch (the postmaster is our direct child, so its death is an 'exit' event, at
 * once), stop, and turn a former primary into a standby of the new one (crash
 * recovery, pg_rewind, re-clone as the last resort).
 */
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { cloneReplica, confString, conninfoValue, runPgTool, spawnPostgres, stopPostgres, waitReady } from '../src/sandbox/postgres.js';
import { chownToPg, isProcessAlive, processTree } from '../src/sandbox/proc.js';
import { withClient } from '../src/engines/postgres/probe.js';

export interface Upstream {
  id: string;
  host: string;
  port: number;
}

export class ManagedPostgres {
  child: ChildProcess | null = null;
  /** a postmaster we found running and did not start (after an agent restart) */
  private adoptedPid: number | null = null;
  private expectedExit = false;
  private exitListeners: Array<(code: number | null, signal: NodeJS.Signals | null) => void> = [];

  constructor(
    readonly dataDir: string,
    readonly port: number,
    readonly nodeId: string,
    readonly user: string,
    private readonly log: Logger,
  ) {}

  get pid(): number | null {
    return this.child?.pid ?? this.adoptedPid;
  }

  onExit(fn: (code: number | null, signal: NodeJS.Signals | null) => void): void {
    this.exitListeners.push(fn);
  }

  isRunning(): boolean {
    const pid = this.pid;
    if (pid === null) return false;
    if (this.child) return this.child.exitCode === null && this.child.signalCode === null && isProcessAlive(pid);
    return isProcessAlive(pid);
  }

  /** Is the data directory set up as a standby (standby.signal present)? */
  isStandby(): boolean {
    return fs.existsSync(path.join(this.dataDir, 'standby.signal'));
  }

  exists(): boolean {
    return fs.existsSync(path.join(this.dataDir, 'PG_VERSION'));
  }

  /** A postmaster already running on our data directory (postmaster.pid names a live pid). */
  runningPid(): number | null {
    try {
      const first = fs.readFileSync(path.join(this.dataDir, 'postmaster.pid'), 'utf8').split('\n')[0];
      const pid = Number(first);
      return Number.isInteger(pid) && pid > 0 && isProcessAlive(pid) ? pid : null;
    } catch {
      return null;
    }
  }

  adopt(pid: number): void {
    this.adoptedPid = pid;
    this.log.info({ pid }, 'adopted a running postmaster');
  }

  async start(): Promise<void> {
    if (this.isRunning()) return;
    this.expectedExit = false;
    this.adoptedPid = null;
    const child = spawnPostgres({ dataDir: this.dataDir, port: this.port });
    this.child = child;
    this.log.info({ pid: child.pid, standby: this.isStandby() }, 'postgres started');
    child.once('exit', (code, signal) => {
      const expected = this.expectedExit;
      this.log[expected ? 'info' : 'warn']({ pid: child.pid, code, signal }, expected ? 'postgres stopped' : 'postgres exited unexpectedly');
      if (!expected) for (const fn of this.exitListeners) fn(code, signal);
    });
    await waitReady(this.port, 60_000, '127.0.0.1', { child, dataDir: this.dataDir });
  }

  async stop(mode: 'fast' | 'immediate' = 'fast'): Promise<void> {
    const target = this.child ?? this.adoptedPid;
    if (target === null) return;
    this.expectedExit = true;
    await stopPostgres(target, mode);
    this.child = null;
    this.adoptedPid = null;
  }

  /** SIGKILL the postmaster and every process under it (a stopped process dies too, without running again). */
  killTree(): void {
    const pid = this.pid;
    if (pid === null) return;
    for (const p of processTree(pid)) {
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        // gone
      }
    }
  }

  /** default_transaction_read_only in postgresql.auto.conf, for a server that is down (ALTER SYSTEM's file). */
  setReadOnlyOnDisk(on: boolean): void {
    const autoConf = path.join(this.dataDir, 'postgresql.auto.conf');
    const existing = fs.existsSync(autoConf) ? fs.readFileSync(autoConf, 'utf8') : '';
    const kept = existing.split('\n').filter((l) => l !== '' && !/^\s*default_transaction_read_only\s*=/.test(l));
    if (on) kept.push("default_transaction_read_only = 'on'");
    fs.writeFileSync(autoConf, kept.join('\n') + '\n');
    chownToPg(autoConf);
  }

  /** Write primary_conninfo (with our application_name) and standby.signal. Server must be down, or reloaded after. */
  writeStandbyConfig(up: Upstream): void {
    const autoConf = path.join(this.dataDir, 'postgresql.auto.conf');
    const existing = fs.existsSync(autoConf) ? fs.readFileSync(autoConf, 'utf8') : '';
    const kept = existing.split('\n').filter((l) => l !== '' && !/^\s*(primary_conninfo|primary_slot_name|default_transaction_read_only|synchronous_standby_names)\s*=/.test(l));
    kept.push(`primary_conninfo = ${confString(this.conninfo(up))}`);
    fs.writeFileSync(autoConf, kept.join('\n') + '\n');
    chownToPg(autoConf);
    const signal = path.join(this.dataDir, 'standby.signal');
    if (!fs.existsSync(signal)) {
      fs.writeFileSync(signal, '');
      chownToPg(signal);
    }
  }

  conninfo(up: Upstream): string {
    return [`host=${conninfoValue(up.host)}`, `port=${up.port}`, `user=${conninfoValue(this.user)}`, `application_name=${conninfoValue(this.nodeId)}`].join(' ');
  }

  /** The latest checkpoint's LSN from pg_controldata (after a clean shutdown: the shutdown checkpoint). */
  async checkpointLsn(): Promise<string | null> {
    const { stdout } = await runPgTool('pg_controldata', ['-D', this.dataDir], { cwd: this.dataDir, timeoutMs: 30_000, errorCode: 'CONTROLDATA_FAILED' });
    return /Latest checkpoint location:\s*([0-9A-F]+\/[0-9A-F]+)/.exec(stdout)?.[1] ?? null;
  }

  /**
   * The end of the WAL on disk of a stopped server: pg_waldump from the last checkpoint's
   * redo point reads until the first invalid record, and says where that is. What a
   * failover lost is the WAL between the new timeline's fork point and this.
   */
  async walEnd(): Promise<string | null> {
    const { stdout } = await runPgTool('pg_controldata', ['-D', this.dataDir], { cwd: this.dataDir, timeoutMs: 30_000, errorCode: 'CONTROLDATA_FAILED' });
    const redo = /Latest checkpoint's REDO location:\s*([0-9A-F]+\/[0-9A-F]+)/.exec(stdout)?.[1];
    const tli = /Latest checkpoint's TimeLineID:\s*(\d+)/.exec(stdout)?.[1];
    if (!redo || !tli) return null;
    try {
      await runPgTool('pg_waldump', ['-p', path.join(this.dataDir, 'pg_wal'), '-s', redo, '-t', tli, '-q'], { cwd: this.dataDir, timeoutMs: 60_000, errorCode: 'WALDUMP' });
      return null; // it never ends cleanly on a live WAL directory
    } catch (err) {
      return walEndFromWaldumpError((err as Error).message);
    }
  }

  /** Was the cluster shut down cleanly (pg_controldata)? pg_rewind needs it. */
  async cleanlyShutDown(): Promise<boolean> {
    const { stdout } = await runPgTool('pg_controldata', ['-D', this.dataDir], { cwd: this.dataDir, timeoutMs: 30_000, errorCode: 'CONTROLDATA_FAILED' });
    const state = /Database cluster state:\s*(.+)/.exec(stdout)?.[1]?.trim() ?? '';
    return state === 'shut down' || state === 'shut down in recovery';
  }

  /**
   * Turn this (stopped) data directory into a standby of `up`: finish crash recovery
   * in single-user mode if needed, pg_rewind; if that fails, re-clone. Returns how.
   */
  async makeStandbyOf(up: Upstream): Promise<'rewound' | 'recloned'> {
    if (this.isRunning()) throw new Error('makeStandbyOf needs the server stopped');
    try {
      if (!(await this.cleanlyShutDown())) {
        this.log.info('crash recovery in single-user mode before pg_rewind');
        // standby.signal must not be there, or single-user mode refuses to run
        fs.rmSync(path.join(this.dataDir, 'standby.signal'), { force: true });
        await runPgTool('postgres', ['--single', '-D', this.dataDir, '-c', 'archive_mode=off', 'postgres'], {
          cwd: this.dataDir,
          timeoutMs: 120_000,
          errorCode: 'SINGLE_USER_FAILED',
        });
      }
      // A just-promoted primary has not checkpointed yet: its control file still shows
      // the old timeline, and pg_rewind would wrongly answer "no rewind required".
      await withClient({ host: up.host, port: up.port, user: this.user, database: 'postgres' }, 10_000, (c) => c.query('CHECKPOINT'));
      const source = `host=${conninfoValue(up.host)} port=${up.port} user=${conninfoValue(this.user)} dbname=postgres`;
      const out = await runPgTool('pg_rewind', ['--target-pgdata', this.dataDir, '--source-server', source], {
        cwd: this.dataDir,
        timeoutMs: 300_000,
        errorCode: 'REWIND_FAILED',
      });
      this.log.info({ output: (out.stdout + out.stderr).trim().slice(-500) }, 'pg_rewind done');
      this.fixConfigAfterCopy();
      this.writeStandbyConfig(up);
      return 'rewound';
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'pg_rewind failed: re-cloning with pg_basebackup');
      const aside = `${this.dataDir}.failed-${Date.now()}`;
      fs.renameSync(this.dataDir, aside);
      await cloneReplica({ primaryHost: up.host, primaryPort: up.port, dataDir: this.dataDir, port: this.port, appName: this.nodeId, user: this.user });
      fs.rmSync(aside, { recursive: true, force: true });
      this.writeStandbyConfig(up);
      return 'recloned';
    }
  }

  /** pg_rewind copies the source's config files: put our own port back. */
  private fixConfigAfterCopy(): void {
    const conf = path.join(this.dataDir, 'postgresql.conf');
    fs.appendFileSync(conf, `\n# --- switchyard agent ${this.nodeId} ---\nport = ${this.port}\n`);
    chownToPg(conf);
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
