/**
 * The agent's job worker: the coordinator's jobs for its node (promote, demote, follow,
 * rejoin, sync, restart, fence, unfence), each gated by the pure rule (node, expiry,
 * epoch, journal id) and, when irreversible, by a fresh look at the lease; the result
 * is reported on the observation stream.
 */
import { performance } from 'node:perf_hooks';
import { UnrecoverableError, type Job } from 'bullmq';
import { SwitchyardError, type JobCode } from '../src/errors.js';
import { redisTimeMs } from '../src/bus/clock.js';
import { epochOfLeaseValue } from '../src/bus/lease.js';
import type { JobResult } from '../src/events/observation.js';
import { ENGINE_ACTIONS, type EngineAction, type Upstream } from '../src/engines/types.js';
import { jobGate } from '../src/core/agent-rules.js';
import { JobRefused, requireUpstream, type JobData } from './job.js';
import { Supervisor } from './supervisor.js';

export abstract class JobWorker extends Supervisor {
  /* ------------------------------------------------------------------ jobs */

  protected async report(job: Job<JobData>, ok: boolean, startedAt: number, code?: JobCode, message?: string, lsn?: string, timeline?: number): Promise<void> {
    const r: JobResult = {
      type: 'job.result',
      v: 1,
      node: this.cfg.node,
      bootId: this.bootId,
      at: Date.now(),
      jobId: job.id ?? '',
      epoch: job.data.epoch,
      operationId: job.data.operationId,
      action: job.data.action,
      ok,
      durationMs: Date.now() - startedAt,
    };
    if (code) r.code = code;
    if (message) r.message = message.slice(0, 1000);
    if (lsn) r.lsn = lsn;
    if (timeline) r.timeline = timeline;
    await this.append(JSON.stringify(r)).catch(() => {});
  }

  /** Fencing: refuse a job from an older epoch, and re-check the lease before an irreversible act. */
  async checkEpoch(data: JobData, irreversible: boolean): Promise<void> {
    if (!Number.isInteger(data.epoch) || data.epoch < this.epochSeen) {
      throw new JobRefused('stale-epoch', `job epoch ${data.epoch} is older than epoch ${this.epochSeen} already seen`);
    }
    this.epochSeen = data.epoch;
    if (irreversible) {
      const current = epochOfLeaseValue(await this.redis.get(this.k.leader));
      if (current !== data.epoch) {
        this.epochSeen = Math.max(this.epochSeen, current);
        throw new JobRefused('lease-changed', `the lease is at epoch ${current}, the job carries ${data.epoch}`);
      }
    }
  }

  async runJob(job: Job<JobData>): Promise<string> {
    const started = Date.now();
    const data = job.data;
    this.log.info({ jobId: job.id, action: data.action, epoch: data.epoch }, 'job received');
    if (this.afterJob) await this.afterJob;
    this.tracer.mark('job.started', { node: this.cfg.node, jobId: job.id ?? '', action: data.action, operationId: data.operationId }, started);
    try {
      if ((ENGINE_ACTIONS as readonly string[]).includes(data.action) && data.node === this.cfg.node && !this.engine.supports.has(data.action as EngineAction)) throw new JobRefused('unsupported', `the ${this.engine.name} engine does not support ${String(data.action)}`);
      // expiresAt is on Redis's clock (the leader's host clock may differ from ours)
      const redisNow = typeof data.expiresAt === 'number' && data.node === this.cfg.node ? await redisTimeMs(this.redis) : null;
      // a job that makes the node take writes is judged against the key as it is now
      const writes = data.action === 'restart' || data.action === 'unfence';
      if (writes) await this.refreshPrimary();
      const gate = jobGate({ self: this.cfg.node, job: data, epochSeen: this.epochSeen, redisNow, newestJournalId: this.newestJournalId, ...(writes ? { published: this.published } : {}) });
      if (!gate.ok) throw new JobRefused(gate.code, gate.message);
      // fencing is never unsafe: it needs no lease check
      await this.checkEpoch(data, data.action !== 'follow' && data.action !== 'sync' && data.action !== 'fence');
      if (typeof data.journalId === 'string') this.newestJournalId = data.journalId;
      let outcome: string;
      let lsn: string | undefined;
      let timeline: number | undefined;
      switch (data.action) {
        case 'promote': {
          const r = await this.promote(data.operationId);
          outcome = r.message;
          lsn = r.lsn;
          timeline = r.timeline;
          break;
        }
        case 'demote': {
          const r = await this.demote(requireUpstream(data));
          outcome = r.message;
          lsn = r.lsn ?? undefined;
          break;
        }
        case 'follow':
          outcome = await this.follow(requireUpstream(data));
          break;
        case 'rejoin':
          outcome = await this.rejoin(requireUpstream(data));
          break;
        case 'sync': {
          const r = await this.setSync(data);
          outcome = r.message;
          lsn = r.lsn;
          break;
        }
        case 'restart':
          outcome = await this.restartInPlace();
          break;
        case 'fence':
          outcome = await this.fence();
          break;
        case 'switchover': {
          // an engine that elects itself (MongoDB): step the primary down, the set elects the target
          const up = requireUpstream(data);
          if (!this.node.switchover) throw new JobRefused('unsupported', `the ${this.engine.name} engine does not steer switchovers`);
          outcome = (await this.node.switchover(up)).message;
          break;
        }
        case 'freeze': {
          // pause/resume of a set that elects itself: replSetFreeze on its secondaries
          const secs = data.freezeSecs;
          if (typeof secs !== 'number' || !Number.isInteger(secs) || secs < 0) throw new JobRefused('bad-job', `freeze needs freezeSecs (an integer ≥ 0), got ${JSON.stringify(secs)}`);
          if (!this.node.freezeElections) throw new JobRefused('unsupported', `the ${this.engine.name} engine does not freeze elections`);
          outcome = (await this.node.freezeElections(secs)).message;
          break;
        }
        case 'unfence':
          await this.setReadOnly(false);
          this.fenced = false;
          outcome = 'unfenced: taking writes again';
          break;
        default:
          throw new JobRefused('unknown-action', `unknown action ${String((data as { action: unknown }).action)}`);
      }
      this.log.info({ jobId: job.id, outcome, ms: Date.now() - started }, 'job done');
      this.tracer.mark('job.finished', { node: this.cfg.node, jobId: job.id ?? '', action: data.action, operationId: data.operationId, ok: true });
      await this.report(job, true, started, undefined, outcome, lsn, timeline);
      this.probeNow();
      return outcome;
    } catch (err) {
      const code = err instanceof JobRefused ? err.code : 'failed';
      // an engine error names its catalogue code (REWIND_FAILED, RECLONE_DISABLED...)
      const message = err instanceof SwitchyardError ? `${err.code}: ${err.message}` : (err as Error).message;
      this.log.warn({ jobId: job.id, code, err: message }, 'job refused or failed');
      await this.report(job, false, started, code, message);
      this.probeNow();
      if (err instanceof UnrecoverableError) throw err;
      throw new UnrecoverableError((err as Error).message);
    }
  }

  protected async promote(operationId: string): Promise<{ message: string; lsn?: string; timeline?: number }> {
    this.promoting = operationId;
    try {
      return await this.promoteNode(operationId);
    } finally {
      this.promoting = null;
    }
  }

  protected async promoteNode(operationId: string): Promise<{ message: string; lsn?: string; timeline?: number }> {
    // set before the promotion: the guard must not fence a node this job is making the primary
    this.promotion = { operationId, at: performance.now(), seenPublished: false };
    const r = await this.node.promote({
      promoted: () => {
        this.tracer.mark('pg_promote.returned', { node: this.cfg.node });
        // its next report says primary: the leader may confirm the promotion from it
        this.probeNow();
      },
    });
    this.managed?.markPrimary?.();
    if (r.alreadyPrimary || this.node.fenceHeld?.()) {
      // promoted before (a duplicate job), maybe fenced since: the leader wants it writable
      if (this.fenced || this.node.fenceHeld?.()) {
        await this.setReadOnly(false);
        this.fenced = false;
      }
      if (r.alreadyPrimary) return { message: r.message };
    }
    this.walEnd = null;
    // where the new timeline forked off (also what its reports carry from now on)
    if (r.timeline !== undefined) this.forkCache = { timeline: r.timeline, lsn: r.position ?? null };
    // the new timeline goes with the result: the leader may confirm the promotion before this node's next report
    return { message: r.message, ...(r.position ? { lsn: r.position } : {}), ...(r.timeline !== undefined ? { timeline: r.timeline } : {}) };
  }

  /**
   * Failover, on the deposed primary: make sure it takes no write before another node is
   * promoted. Answers: read-only, client sessions ended ('fenced'). Stopped or not
   * answering: SIGKILL of the whole instance ('dead'). Already down: 'dead'.
   */
  protected async fence(): Promise<string> {
    const m = this.managed;
    if (m && !m.isRunning()) return 'dead: the postmaster is not running';
    const obs = await this.observe();
    if (obs.process === 'dead') return 'dead: the postmaster is not running';
    if (obs.reachable && obs.role === 'replica') return 'fenced: it is a standby';
    const g = this.guardFor(obs, true);
    if (g.action === 'read-only' || (g.action === 'none' && obs.reachable && obs.role === 'primary' && this.fenced)) {
      if (g.action === 'read-only') await this.carryOut(g);
      // read-only failed and it was killed instead
      if (m && !m.isRunning()) return 'dead: killed (read-only failed)';
      if (!this.fenced) throw new Error('could not make it read-only');
      // (a reload takes effect per session: re-assert and end every client session)
      if (g.action === 'none') await this.setReadOnly(true);
      return 'fenced: read-only, client sessions ended';
    }
    if (g.action === 'kill') {
      if (!m) throw new JobRefused('cannot-fence', 'the server does not answer and this agent does not manage its process');
      await this.carryOut(g);
      await waitFor(() => !m.isRunning(), 5_000);
      if (m.isRunning()) throw new Error('the instance is still running after SIGKILL');
      return 'dead: killed (it did not answer)';
    }
    if (!obs.reachable) {
      if (!m) throw new JobRefused('cannot-fence', `the server does not answer (${obs.error ?? 'unknown'}) and this agent does not manage its process`);
      m.killTree();
      await waitFor(() => !m.isRunning(), 5_000);
      if (m.isRunning()) throw new Error('the instance is still running after SIGKILL');
      return 'dead: killed (it did not answer)';
    }
    return `fenced: ${g.reason}`;
  }


  /**
   * Synchronous mode, on the primary: the engine sets which replicas must acknowledge
   * (PostgreSQL: synchronous_standby_names, once the walsenders apply it; Redis:
   * min-replicas-to-write) and reports from where commits wait.
   */
  protected async setSync(data: JobData): Promise<{ message: string; lsn?: string }> {
    const sync = data.sync;
    if (!sync || !Array.isArray(sync.names) || sync.names.length === 0 || !Number.isInteger(sync.count)) throw new JobRefused('bad-job', 'sync needs { names, count }');
    try {
      const r = await this.node.sync({ names: sync.names, count: sync.count, method: sync.method === 'ANY' ? 'ANY' : 'FIRST' });
      return { message: r.message, ...(r.position ? { lsn: r.position } : {}) };
    } catch (err) {
      if ((err as { code?: unknown }).code === 'not-primary') throw new JobRefused('not-primary', (err as Error).message);
      throw err;
    }
  }

  protected override async follow(up: Upstream): Promise<string> {
    const rec = await this.node.inRecovery();
    if (rec === false) {
      // a primary asked to follow: that is a rejoin (demote), which re-checks the lease
      await this.checkEpoch({ epoch: this.epochSeen, operationId: '', action: 'rejoin', node: this.cfg.node }, true);
      return this.rejoin(up);
    }
    if (rec === null && this.managed && !this.managed.isRunning()) return this.rejoin(up);
    const how = await this.node.follow(up);
    // (Redis: a restart starts it as a replica of `up` from now on)
    this.managed?.recordUpstream?.(up);
    return how;
  }
}

async function waitFor(cond: () => boolean, ms: number): Promise<void> {
  const until = performance.now() + ms;
  while (!cond() && performance.now() < until) await new Promise((r) => setTimeout(r, 10));
}
