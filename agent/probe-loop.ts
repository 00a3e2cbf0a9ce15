/**
 * The agent's probe loop: probe the node every probeIntervalMs (at once when its
 * connection drops or its process exits), publish the observation (the heartbeat the
 * coordinators judge), and fence on the pure rule's say-so (src/core/agent-rules.ts):
 * read-only when it answers, killed when it does not, on time even while Redis is away.
 */
import { performance } from 'node:perf_hooks';
import type { Observation } from '../src/events/observation.js';
import { guardAction, standbysRepliedLately, type GuardAction } from '../src/core/agent-rules.js';
import { DEFAULT_SETTINGS } from '../src/core/settings.js';
import { AgentCore } from './core.js';

export abstract class ProbeLoop extends AgentCore {
  /* ---------------------------------------------------------------- probes */

  protected schedule(delay: number): void {
    if (this.stopping) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      this.runProbe();
    }, delay);
  }

  /** Probe at once (the connection dropped, the process exited). */
  probeNow(): void {
    if (this.stopping) return;
    if (this.probing) {
      this.probeAgain = true;
      return;
    }
    this.schedule(0);
  }

  protected runProbe(): void {
    if (this.probing) {
      this.probeAgain = true;
      return;
    }
    this.probing = this.probeOnce()
      .catch((err: unknown) => this.log.warn({ err: (err as Error).message }, 'probe failed'))
      .finally(() => {
        this.probing = null;
        if (this.probeAgain) {
          this.probeAgain = false;
          this.schedule(0);
        } else {
          this.schedule(this.cfg.probeIntervalMs);
        }
      });
  }

  protected async probeOnce(): Promise<void> {
    const observedAt = performance.now();
    let obs = await this.observe();
    if (obs.reachable) this.lastReachableObs = obs;
    // the lease is judged before any Redis call of this probe: those may each take their
    // full timeout when Redis is away, which would make the fence late. Fencing runs aside
    // (fenceAside): a hung server must not hold up the heartbeats. Killing a hung deposed
    // primary is immediate (a signal), so it is done inline and the node observed again.
    if (performance.now() - this.lastRedisOk >= this.cfg.fenceAfterMs) this.fenceAside(() => this.guard(obs));
    await this.refreshPrimary();
    const g = this.guardFor(obs);
    if (g.action === 'kill') {
      if (await this.carryOut(g)) obs = await this.observe();
    } else if (g.action !== 'none') this.fenceAside(() => this.carryOut(g));
    // the setting itself says whether the node is fenced (it survives agent restarts);
    // while a fence is running, it is not settled yet
    if (obs.reachable && !this.fencing && observedAt >= this.fenceDoneAt) this.fenced = obs.fenced === true;
    // a promote job that started since the observation began (the GET may have taken its
    // timeout): the leader must not take this report as the node's answer to it
    this.markPromoting(obs, observedAt);
    try {
      await this.append(JSON.stringify(obs));
      this.lastRedisOk = performance.now();
      this.armFenceTimer();
    } catch (err) {
      // judged on a fresh observation (the standbys' reply ages moved on while the XADD waited), aside from the probe loop
      this.fenceAside(async () => this.guard(await this.observe()));
      throw err;
    }
  }

  /** a fencing action in flight: at most one at a time, outside the probe's serial path */
  protected fencing: Promise<void> | null = null;
  protected fenceTimer: NodeJS.Timeout | null = null;
  /** when the last fencing action finished: an observation begun before it says nothing of it */
  protected fenceDoneAt = 0;

  /**
   * Run a fencing action without making the probe loop wait for it (the server it talks
   * to may hang; every query of it is bounded anyway). When it fenced, probe at once so
   * that the next observation says so.
   */
  protected fenceAside(action: () => Promise<boolean>): void {
    if (this.fencing || this.stopping) return;
    this.fencing = action()
      .then((acted) => {
        if (!acted) return;
        this.fenceDoneAt = performance.now();
        this.probeNow();
      })
      .catch((err: unknown) => this.log.warn({ err: (err as Error).message }, 'fencing failed'))
      .finally(() => {
        this.fencing = null;
      });
  }

  /**
   * Self-fencing on time, whatever the probe loop is doing: fenceAfterMs after the last
   * observation Redis accepted, judge the newest reachable observation.
   */
  protected armFenceTimer(): void {
    if (this.fenceTimer) clearTimeout(this.fenceTimer);
    this.fenceTimer = setTimeout(() => this.fenceTick(), this.cfg.fenceAfterMs + 1);
    this.fenceTimer.unref();
  }

  /**
   * The fence timer fired: judge the newest reachable observation, its reply ages aged to
   * now. While Redis stays lost and the node is not fenced, judge again every
   * probeIntervalMs (a standby that replied lately stops replying; the probe loop itself
   * may wait on a 1 s peer check and a 1 s GET).
   */
  protected fenceTick(): void {
    this.fenceTimer = null;
    if (this.stopping || performance.now() - this.lastRedisOk < this.cfg.fenceAfterMs) return;
    const obs = this.lastReachableObs;
    if (obs) this.fenceAside(() => this.guard(obs));
    const m = this.managed;
    // (nothing left to fence: read-only already, or no primary running here)
    if (!this.fenced && (!m || (m.isRunning() && !m.isStandby()))) {
      this.fenceTimer = setTimeout(() => this.fenceTick(), this.cfg.probeIntervalMs);
      this.fenceTimer.unref();
    }
  }

  /* -------------------------------------------------------------- fencing */

  /** monotonic time of the last observation Redis accepted (our primary lease, as the coordinators see it) */
  protected lastRedisOk = performance.now();


  /** What the pure rule says of the node now (src/core/agent-rules.ts). */
  protected guardFor(obs: Observation, fenceAsked = false): GuardAction {
    // a set that elects itself fences its own stale primary (it steps down when it sees the newer term); switchyard never does
    if (this.engine.electsItself) return { action: 'none', reason: `the ${this.engine.name} set elects its own primary` };
    const m = this.managed;
    const own = this.promotion;
    return guardAction({
      node: this.cfg.node,
      process: obs.process,
      reachable: obs.reachable,
      role: obs.role,
      error: obs.error,
      primaryOnDisk: m ? m.isRunning() && !m.isStandby() : null,
      fenced: this.fenced,
      lostRedisMs: performance.now() - this.lastRedisOk,
      fenceAfterMs: this.cfg.fenceAfterMs,
      // (aged by the time since the observation was begun: its reply ages were frozen then)
      standbysRepliedLately: standbysRepliedLately(obs.standbys, this.cfg.fenceAfterMs, performance.now() - (this.observedAt.get(obs) ?? performance.now())),
      published: this.published,
      promotion: own ? { operationId: own.operationId, agoMs: performance.now() - own.at, seenPublished: own.seenPublished } : null,
      promotedGraceMs: DEFAULT_SETTINGS.promotedGraceMs,
      fenceAsked,
    });
  }

  /**
   * Fence, kill or nothing, as the rule says: a primary that must not take writes (the
   * leader deposed it or names another node; or this agent lost Redis for fenceAfterMs
   * with no standby replying) is made read-only when it answers, and killed with its
   * whole process tree when it does not (a frozen server would take the writes queued on
   * its sockets the moment it runs again). True when it acted.
   */
  protected async guard(obs: Observation, fenceAsked = false): Promise<boolean> {
    const g = this.guardFor(obs, fenceAsked);
    if (g.action === 'none') return false;
    return this.carryOut(g);
  }

  protected async carryOut(g: GuardAction): Promise<boolean> {
    if (g.action === 'read-only') {
      this.log.error({ reason: g.reason }, 'fencing the primary: read-only, client sessions ended');
      try {
        await this.setReadOnly(true);
        this.fenced = true;
        return true;
      } catch (err) {
        // it answered the probe but not this: treat it as hung
        this.log.warn({ err: (err as Error).message }, 'fencing failed');
        if (!this.managed?.isRunning() || this.managed.isStandby()) return false;
        return this.carryOut({ action: 'kill', reason: `${g.reason}; read-only failed` });
      }
    }
    if (g.action === 'kill') {
      const m = this.managed;
      if (!m || !m.isRunning()) return false;
      this.log.error({ reason: g.reason, pid: m.pid }, 'killing the primary instance (whole process tree) before it can take a write');
      m.killTree();
      return true;
    }
    return false;
  }

  /** Refuse writes and end the sessions that could still write (PostgreSQL: default_transaction_read_only; Redis: a renewed CLIENT PAUSE WRITE), or take writes again. */
  protected async setReadOnly(on: boolean): Promise<void> {
    await (on ? this.node.fence() : this.node.unfence());
  }
}
