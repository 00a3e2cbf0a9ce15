/**
 * The agent's hold on its node's process, when it is given a data directory: start,
 * watch (the postmaster is our direct child, so its death is an 'exit' event, at once),
 * stop, adopt a running postmaster after an agent restart (only once verified), and
 * turn a former primary into a standby of the new one (crash recovery, pg_rewind; a
 * re-clone only when `rejoin.reclone` is on, keeping the old data directory aside).
 */
import { readCheckpointLsn } from './pgcontrol.js';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { SwitchyardError } from '../../errors.js';
import { isProcessAlive, isProcessStopped, killTree } from '../../os/process.js';
import type { EngineLog, ManagedNode, ManagedSpec, RejoinHow, StopMode, Upstream } from '../types.js';
import { setPgBin } from './binaries.js';
import { cloneReplica } from './clone.js';
import { appendNodeConf, updateAutoConf, writeStandbySignal } from './conf.js';
import { conninfo, libpqEnv, replicationConninfo } from './connection.js';
import { withClient } from './probe.js';
import { isPostmasterOf, killLeftovers, readPostmasterPid, spawnPostgres, stopPostgres, waitReady } from './process.js';
import { controlData, runPgTool, singleUserRecovery, walEnd } from './tools.js';

export type { Upstream };

/** The last `listen_addresses` set in a postgresql.conf, or undefined. */
export function listenAddressesOf(dataDir: string): string | undefined {
  let text: string;
  try {
    text = fs.readFileSync(path.join(dataDir, 'postgresql.conf'), 'utf8');
  } catch {
    return undefined;
  }
  let value: string | undefined;
  for (const line of text.split('\n')) {
    const m = /^\s*listen_addresses\s*=?\s*'((?:[^']|'')*)'/.exec(line);
    if (m) value = m[1]!.replace(/''/g, "'");
  }
  return value;
}

export class ManagedPostgres implements ManagedNode {
  child: ChildProcess | null = null;
  /** a postmaster we found running and did not start (after an agent restart) */
  private adoptedPid: number | null = null;
  private expectedExit = false;
  private exitListeners: Array<(code: number | null, signal: NodeJS.Signals | null) => void> = [];
  /** where the last re-clone put the former data directory (never removed by switchyard) */
  keptAside: string | null = null;
  readonly dataDir: string;
  readonly nodeId: string;

  constructor(
    readonly spec: ManagedSpec,
    private readonly log: EngineLog,
  ) {
    this.dataDir = path.resolve(spec.dataDir);
    this.nodeId = spec.nodeId;
    if (spec.binDir !== undefined) setPgBin(spec.binDir);
  }

  get port(): number {
    return this.spec.connection.port;
  }

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

  processState(): 'running' | 'stopped' | 'dead' {
    if (!this.isRunning()) return 'dead';
    return isProcessStopped(this.pid!) ? 'stopped' : 'running';
  }

  /** Is the data directory set up as a standby (standby.signal present)? */
  isStandby(): boolean {
    return fs.existsSync(path.join(this.dataDir, 'standby.signal'));
  }

  exists(): boolean {
    return fs.existsSync(path.join(this.dataDir, 'PG_VERSION'));
  }

  /**
   * A postmaster already running on our data directory: the pid in postmaster.pid, only
   * if /proc shows it is this directory's postmaster. A live pid that is something else
   * (a stale file after a reboot) is never adopted nor signalled; the stale lock file is
   * renamed aside so the server can start.
   */
  findRunning(): number | null {
    const pid = readPostmasterPid(this.dataDir);
    if (pid === null || !isProcessAlive(pid)) return null;
    if (isPostmasterOf(pid, this.dataDir)) return pid;
    const aside = path.join(this.dataDir, `postmaster.pid.stale-${Date.now()}`);
    this.log.warn({ pid, aside }, 'postmaster.pid names a live process that is not this data directory\'s postmaster (stale after a reboot?): not adopting it, lock file moved aside');
    try {
      fs.renameSync(path.join(this.dataDir, 'postmaster.pid'), aside);
    } catch {
      // gone meanwhile
    }
    return null;
  }

  adopt(pid: number): void {
    if (!isPostmasterOf(pid, this.dataDir)) {
      throw new SwitchyardError('PG_NOT_ADOPTED', `process ${pid} is not the postmaster of ${this.dataDir}: not adopting it`);
    }
    this.adoptedPid = pid;
    this.log.info({ pid }, 'adopted a running postmaster');
  }

  async start(): Promise<void> {
    if (this.isRunning()) return;
    // a postmaster killed with SIGKILL leaves its backends behind, holding the shared memory
    const left = await killLeftovers(this.dataDir);
    if (left > 0) this.log.warn({ processes: left }, 'killed the previous instance\'s leftover processes before starting');
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
    await waitReady(this.spec.connection, { timeoutMs: 60_000, child, dataDir: this.dataDir });
  }

  async stop(mode: StopMode = 'fast'): Promise<void> {
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
    if (pid !== null) killTree(pid);
  }

  /** default_transaction_read_only in postgresql.auto.conf, for a server that is down (ALTER SYSTEM's file). */
  setReadOnlyOnDisk(on: boolean): void {
    updateAutoConf(this.dataDir, { default_transaction_read_only: on ? 'on' : null });
  }

  /** Write primary_conninfo (with our application_name) and standby.signal. Server must be down, or reloaded after. */
  writeStandbyConfig(up: Upstream): void {
    updateAutoConf(this.dataDir, {
      primary_slot_name: null,
      default_transaction_read_only: null,
      synchronous_standby_names: null,
      primary_conninfo: this.conninfo(up),
    });
    writeStandbySignal(this.dataDir);
  }

  /** primary_conninfo for following `up`: the configured user, password or passfile, sslmode; our node id as application_name. */
  conninfo(up: Upstream): string {
    return replicationConninfo(this.spec.connection, up, this.nodeId);
  }

  /** The latest checkpoint's LSN (after a clean shutdown: the shutdown checkpoint). */
  async stoppedPosition(): Promise<string | null> {
    // read global/pg_control directly (no process spawn on a switchover's critical path), else pg_controldata
    return readCheckpointLsn(this.dataDir) ?? (await controlData(this.dataDir)).checkpointLsn;
  }

  /** The end of the WAL on disk of a stopped server (what a failover lost is measured against it). */
  endOfLog(): Promise<string | null> {
    return walEnd(this.dataDir);
  }

  /** Was the cluster shut down cleanly? pg_rewind needs it. */
  async cleanlyShutDown(): Promise<boolean> {
    const state = (await controlData(this.dataDir)).state;
    return state === 'shut down' || state === 'shut down in recovery';
  }

  /** The configured connection pointed at another node (the new primary). */
  private connectionTo(up: Upstream): ManagedSpec['connection'] {
    return { ...this.spec.connection, host: up.host, port: up.port };
  }

  /**
   * Turn this stopped data directory into a standby of `up`: crash recovery in single-user
   * mode if needed, CHECKPOINT on `up`, pg_rewind. If that fails: re-clone only when
   * `reclone` is on (the old directory is renamed aside, reported in `keptAside`, never
   * removed); otherwise RECLONE_DISABLED and the data directory stays as it was.
   */
  async makeStandbyOf(up: Upstream): Promise<RejoinHow> {
    if (this.isRunning()) throw new Error('makeStandbyOf needs the server stopped');
    // pg_rewind and pg_basebackup copy the source's postgresql.conf: keep our own listen address
    const listen = this.spec.listen ?? listenAddressesOf(this.dataDir);
    const source = this.connectionTo(up);
    try {
      if (!(await this.cleanlyShutDown())) {
        this.log.info({}, 'crash recovery in single-user mode before pg_rewind');
        // standby.signal must not be there, or single-user mode refuses to run
        fs.rmSync(path.join(this.dataDir, 'standby.signal'), { force: true });
        await killLeftovers(this.dataDir);
        await singleUserRecovery(this.dataDir);
      }
      // A just-promoted primary has not checkpointed yet: its control file still shows
      // the old timeline, and pg_rewind would wrongly answer "no rewind required".
      await withClient(source, 10_000, (c) => c.query('CHECKPOINT')).catch((err: unknown) => {
        throw new SwitchyardError('REWIND_FAILED', `CHECKPOINT on the new primary ${up.id} (${up.host}:${up.port}) failed: ${(err as Error).message}`);
      });
      const out = await runPgTool('pg_rewind', ['--target-pgdata', this.dataDir, '--source-server', conninfo(source, { dbname: this.spec.connection.database })], {
        cwd: this.dataDir,
        timeoutMs: 300_000,
        errorCode: 'REWIND_FAILED',
        env: libpqEnv(source),
      });
      this.log.info({ output: (out.stdout + out.stderr).trim().slice(-500) }, 'pg_rewind done');
      appendNodeConf(this.dataDir, `agent ${this.nodeId}`, { port: this.port, listen });
      this.writeStandbyConfig(up);
      return 'rewound';
    } catch (err) {
      const why = (err as Error).message;
      if (!this.spec.reclone) {
        this.log.error({ err: why }, 'pg_rewind failed and re-cloning is off (rejoin.reclone): the node stays out of rotation, its data directory untouched');
        throw new SwitchyardError('RECLONE_DISABLED', `pg_rewind failed (${why}); re-cloning is off (rejoin.reclone): ${this.nodeId} stays out of rotation with its data directory untouched`);
      }
      const aside = `${this.dataDir}.before-reclone-${new Date().toISOString().replace(/[:.]/g, '-')}`;
      this.log.warn({ err: why, keptAside: aside }, 'pg_rewind failed: re-cloning with pg_basebackup (the old data directory is kept aside, never removed)');
      fs.renameSync(this.dataDir, aside);
      this.keptAside = aside;
      await cloneReplica({ source, dataDir: this.dataDir, port: this.port, listen, appName: this.nodeId });
      this.writeStandbyConfig(up);
      return 'recloned';
    }
  }
}
