/**
 * The agent's process supervisor, given a data directory: start the node the right way
 * at boot (a former primary never comes back as a second primary), restart a crashed
 * replica in place, leave a crashed primary to the coordinator (reading its end of log),
 * and the jobs that stop and start the process: demote, restart, rejoin.
 */
import { SwitchyardError } from '../src/errors.js';
import type { Upstream } from '../src/engines/types.js';
import { bootAction } from '../src/core/agent-rules.js';
import { ProbeLoop } from './probe-loop.js';
import { JobRefused } from './job.js';

export abstract class Supervisor extends ProbeLoop {
  /** point a running replica at `up` (the job worker's follow) */
  protected abstract follow(up: Upstream): Promise<string>;

  /** Start the node the right way: a former primary never comes back as a second primary. */
  protected async bootNode(): Promise<void> {
    const m = this.managed!;
    const running = m.findRunning();
    if (running) {
      m.adopt(running);
      // a primary adopted: fence or kill it now if it must not take writes (its host may
      // have been frozen through a failover), before the job worker and the probe loop start
      if (bootAction({ node: this.cfg.node, running: true, primaryOnDisk: !m.isStandby(), published: this.published }).action === 'adopt' && !m.isStandby()) {
        await this.guard(await this.observe()).catch((err: unknown) => this.log.warn({ err: (err as Error).message }, 'guard at start failed'));
      }
      return;
    }
    if (!m.exists()) throw new SwitchyardError('DATA_DIR_EMPTY', `data directory ${m.dataDir} holds no ${this.engine.name} node (dataDir in the agent config)`);
    const boot = bootAction({ node: this.cfg.node, running: false, primaryOnDisk: !m.isStandby(), published: this.published });
    if (boot.action === 'start' && boot.readOnly) {
      // The published primary may lag a promotion of this very node: never rewind on our
      // own say-so. Start it refusing writes; the leader rejoins it, or unfences it if it
      // is the journal's primary after all.
      this.log.warn({ primary: this.primaryId, reason: boot.reason }, 'this node was a primary: starting it read-only for the leader to decide');
      m.setReadOnlyOnDisk(true);
    }
    try {
      await m.start();
    } catch (err) {
      // Redis: a former master whose data did not survive never starts empty as a master
      // (it would wipe its replicas); it stays down until the leader rejoins it to the new primary
      if ((err as { code?: unknown }).code !== 'REDIS_EMPTY_RESTART') throw err;
      this.log.warn({ err: (err as Error).message }, 'not starting the node: waiting for the leader to rejoin it as a replica');
    }
  }

  protected onNodeExit(): void {
    this.tracer.mark('postmaster.exited', { node: this.cfg.node });
    // Report the death now, without waiting for a probe in flight to finish: with the
    // process gone, an observation needs no query (the coordinator orders reports by seq)
    if (!this.stopping) void this.publishNow();
    this.probeNow();
    if (this.stopping || this.busy) return;
    const m = this.managed!;
    if (m.isStandby()) {
      // a replica: safe to restart in place
      const delay = this.restartDelayMs;
      this.restartDelayMs = Math.min(5_000, this.restartDelayMs * 2);
      this.restartTimer = setTimeout(() => {
        this.restartTimer = null;
        if (this.stopping || this.busy || m.isRunning()) return;
        m.start().then(
          () => {
            this.restartDelayMs = 200;
            this.probeNow();
          },
          (err: unknown) => this.log.error({ err: (err as Error).message }, 'restart of the replica failed'),
        );
      }, delay);
    } else {
      // a primary: the coordinator decides (failover, then a rejoin job for us). Meanwhile
      // read our end of WAL: what a failover loses is measured against it.
      this.log.warn('the primary postmaster died: waiting for the coordinator (no restart in place)');
      const gen = this.walEndGen;
      this.walEndRead = m
        .endOfLog()
        .then((end) => {
          if (gen !== this.walEndGen) return; // restarted in place meanwhile: nothing was lost
          this.walEnd = end;
          this.log.info({ walEnd: end }, 'end of WAL on disk');
          this.probeNow();
        })
        .catch((err: unknown) => this.log.warn({ err: (err as Error).message }, 'could not read the end of WAL'));
    }
  }

  /**
   * Switchover, on the old primary: stop taking writes (a fast shutdown: sessions end,
   * walsenders ship every WAL record to the connected standbys before they exit), report
   * the shutdown checkpoint's LSN, and come back as a standby of the target.
   */
  protected async demote(up: Upstream): Promise<{ message: string; lsn: string | null }> {
    if (this.node.demote) return this.demoteLive(up);
    const m = this.managed;
    if (!m) throw new JobRefused('unmanaged', 'demote needs an agent that manages its node (dataDir)');
    if (m.isRunning() && m.isStandby()) return { message: `already a standby: ${await this.follow(up)}`, lsn: null };
    this.busy = true;
    let busyUntilStarted = false;
    try {
      if (m.isRunning()) {
        await this.node.checkpoint?.().catch((err: unknown) => this.log.warn({ err: (err as Error).message }, 'checkpoint before demotion failed'));
        await m.stop('fast');
        this.tracer.mark('demote.stopped', { node: this.cfg.node });
      }
      const lsn = await m.stoppedPosition();
      m.writeStandbyConfig(up);
      // The switchover waits on this report, not on the standby's start: report now and
      // start it after; the next job waits until it is up (see runJob).
      busyUntilStarted = true;
      this.afterJob = m
        .start()
        .then(() => this.tracer.mark('demote.standby-started', { node: this.cfg.node }))
        .catch((err: unknown) => this.log.error({ err: (err as Error).message }, 'starting the demoted primary as a standby failed'))
        .finally(() => {
          this.busy = false;
          this.afterJob = null;
          this.probeNow();
        });
      return { message: `demoted: standby of ${up.id} (starting)`, lsn };
    } finally {
      if (!busyUntilStarted) this.busy = false;
    }
  }

  /**
   * Switchover on an engine that hands over without a restart (Redis): the node stops
   * taking writes (a renewed CLIENT PAUSE WRITE) and reports its offset; the target is
   * promoted once it has it, and this node follows it on the follow job that comes then.
   */
  private async demoteLive(up: Upstream): Promise<{ message: string; lsn: string | null }> {
    if ((await this.node.inRecovery()) === true) return { message: `already a replica: ${await this.follow(up)}`, lsn: null };
    const r = await this.node.demote!(up);
    this.fenced = true;
    this.tracer.mark('demote.stopped', { node: this.cfg.node });
    this.probeNow();
    return { message: r.message, lsn: r.position ?? null };
  }

  /** The leader asks: start the crashed primary again as it is (no failover possible, or restart-first). */
  protected async restartInPlace(): Promise<string> {
    const m = this.managed;
    if (!m) throw new JobRefused('unmanaged', 'restart needs an agent that manages its node (dataDir)');
    if (m.isRunning()) return 'already running';
    // no wait for the end-of-WAL read: a restart in place loses nothing, so it is void
    this.walEndGen++;
    this.busy = true;
    try {
      this.walEnd = null;
      await m.start();
      this.tracer.mark('restart.started', { node: this.cfg.node });
      return 'restarted in place';
    } finally {
      this.busy = false;
    }
  }

  protected async rejoin(up: Upstream): Promise<string> {
    const m = this.managed;
    if (!m) throw new JobRefused('unmanaged', 'rejoin needs an agent that manages its node (dataDir)');
    // the end of WAL must be read before pg_rewind rewrites it
    await this.walEndRead;
    this.busy = true;
    try {
      if (m.isRunning()) {
        const rec = await this.node.inRecovery();
        if (rec === true && m.isStandby()) {
          // already a standby: just point it at the primary
          this.busy = false;
          return this.follow(up);
        }
        if (this.engine.rejoinsRunning && rec !== null) return await this.rejoinRunning(up);
        await m.stop('fast');
      }
      let how = 'restarted';
      if (!m.isStandby()) {
        // a former primary, however it stopped (crashed, stopped here, killed when hung):
        // read and report its end of WAL before pg_rewind or a re-clone discards the tail
        if (!this.walEnd) {
          this.walEnd = await m.endOfLog().catch(() => null);
          this.log.info({ walEnd: this.walEnd }, 'end of WAL on disk, before rewinding');
        }
        if (this.walEnd) await this.publishNow();
        how = await m.makeStandbyOf(up).catch((err: unknown) => {
          // the data directory is left as it was: the node stays down until an operator acts
          if (err instanceof SwitchyardError && err.code === 'RECLONE_DISABLED') this.outOfRotation = err.message;
          throw err;
        });
        this.outOfRotation = null;
      } else m.writeStandbyConfig(up);
      await m.start();
      if (this.node.fenceHeld?.()) await this.setReadOnly(false);
      return `rejoined ${up.id} (${how}${m.keptAside ? `; the old data directory is kept at ${m.keptAside}` : ''})`;
    } finally {
      this.busy = false;
    }
  }

  /**
   * A running former primary becomes a replica in place (Redis: REPLICAOF, a partial
   * resync where the new master's history allows). The fence it holds is lifted only
   * once it is a replica: writes it held back are then refused (READONLY), not taken.
   */
  private async rejoinRunning(up: Upstream): Promise<string> {
    const m = this.managed!;
    const how = await this.node.follow(up);
    m.recordUpstream?.(up);
    this.outOfRotation = null;
    if (this.node.fenceHeld?.()) {
      await this.setReadOnly(false);
      this.fenced = false;
    }
    return `rejoined ${up.id} in place (${how})`;
  }
}
