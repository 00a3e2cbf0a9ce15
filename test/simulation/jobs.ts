/**
 * The model of the agent's job worker (agent/agent.ts runJob): one job at a time, BullMQ
 * at least once (a job whose result or lock is lost comes again). Every job passes the
 * shipped jobGate first (node, expiry on Redis's clock, epoch, journal id; restart and
 * unfence re-read the published key); the lease is re-read before an irreversible act.
 * Then: promote (reports the fork point; unfences a node that is primary already),
 * demote, follow, rejoin (pg_rewind, after the end of WAL is read), fence (guardAction
 * with the leader's ask), unfence, restart, sync.
 */
import { jobGate } from '../../src/core/agent-rules.js';
import { formatLsn } from '../../src/core/index.js';
import type { JobResult } from '../../src/events/observation.js';
import type { JobCode } from '../../src/errors.js';
import { agentConnected, carryOut, guardFor, probeNow, readPublished } from './agent.js';
import { observe } from './observe.js';
import { ACTION_TIMEOUT_MS } from './params.js';
import { killPg, net, promoteNode, rewind, startPg } from './postgres.js';
import { leaseEpochNow, publish, requeue, stallDelay } from './redis.js';
import type { PgNode, SimJob, Agent } from './types.js';
import type { World } from './world.js';

export function kickWorker(w: World, a: Agent): void {
  if (!agentConnected(w, a) || a.working) return;
  const q = w.queues[a.node]!;
  let best = -1;
  for (let i = 0; i < q.length; i++) {
    const j = q[i]!;
    if (j.availableAt <= w.now && (best < 0 || j.availableAt < q[best]!.availableAt)) best = i;
  }
  if (best < 0) return;
  const job = q.splice(best, 1)[0]!;
  a.working = job;
  if (job.copy) w.stats.duplicateJobRuns++;
  runJob(w, a, job);
}

export function runJob(w: World, a: Agent, job: SimJob): void {
  const g = a.gen;
  const n = w.node(a.node);
  const started = w.now;
  const spec = job.spec;
  const done = (after: number, ok: boolean, code?: string, message?: string, lsn?: string): void => {
    w.at(w.now + after, () => {
      if (a.gen !== g) return;
      a.working = null;
      if (!ok && code) w.count(w.stats.jobsRefused, code);
      if (agentConnected(w, a)) {
        const r: JobResult = {
          type: 'job.result',
          v: 1,
          node: n.id,
          bootId: a.bootId,
          at: w.now,
          jobId: job.jobId,
          epoch: job.epoch,
          operationId: spec.operationId,
          action: spec.action,
          ok,
          durationMs: w.now - started,
        };
        if (code) r.code = code as JobCode;
        if (message) r.message = message;
        if (lsn) r.lsn = lsn;
        publish(w, n.id, { kind: 'job.result', entry: r });
      } else {
        // the result is lost with the connection, and the lock: the job comes again
        requeue(w, n.id, job, w.now + stallDelay(w));
      }
      probeNow(w, a);
      kickWorker(w, a);
    });
  };
  w.tr(() => `${n.id} runs ${job.jobId}${job.copy ? ' (again)' : ''} [${n.proc} ${n.role}]`);
  // the pure gate the agent runs (src/core/agent-rules.ts jobGate): node, expiry on
  // Redis's clock (the one clock: true time here), epoch, journal id
  const writes = spec.action === 'restart' || spec.action === 'unfence';
  if (writes) readPublished(w, a);
  const gate = jobGate({
    self: n.id,
    job: { node: spec.node, action: spec.action, epoch: job.epoch, expiresAt: w.guards.has('job-expiry') ? job.expiresAt : undefined, journalId: w.guards.has('journal-id') ? job.journalId : undefined },
    epochSeen: a.epochSeen,
    redisNow: w.now,
    newestJournalId: a.newestJournalId,
    ...(writes ? { published: a.published } : {}),
  });
  if (!gate.ok) {
    return done(1, false, gate.code, gate.message);
  }
  a.epochSeen = job.epoch;
  const leaseCheck = (): boolean => {
    const cur = leaseEpochNow(w);
    if (cur !== a.epochSeen) {
      a.epochSeen = Math.max(a.epochSeen, cur);
      return false;
    }
    return true;
  };
  const up = spec.upstream;
  if (spec.action !== 'follow' && spec.action !== 'sync' && spec.action !== 'fence' && !leaseCheck()) return done(1, false, 'lease-changed');
  // (checkEpoch refused nothing: the job acts; a refused one leaves the newest journal id as it was)
  if (job.journalId !== undefined) a.newestJournalId = job.journalId;
  switch (spec.action) {
    case 'promote': {
      if (n.proc === 'dead') return done(2, false, 'failed', 'connect ECONNREFUSED');
      if (n.proc === 'stopped') return done(ACTION_TIMEOUT_MS, false, 'failed', 'timeout');
      a.promotion = { operationId: spec.operationId, at: w.now, seenPublished: false };
      if (n.role === 'primary') {
        // promoted before (a duplicate job), maybe fenced since: the leader wants it writable
        if (a.fenced) {
          a.fenced = false;
          if (n.readOnly) {
            n.readOnly = false;
            w.changed();
            w.tr(() => `${n.id} unfenced by a promote job: takes writes again`);
          }
        }
        return done(2, true, undefined, 'already primary');
      }
      const d = w.rng.int(50, 1_500);
      // pg_promote runs in the server: it finishes even if the agent dies meanwhile
      w.at(w.now + d, () => {
        if (n.proc === 'running' && n.role === 'replica') promoteNode(w, n, spec.operationId);
      });
      w.at(w.now + d, () => {
        if (a.gen !== g) return;
        if (n.role === 'primary' && n.proc === 'running') {
          a.walEnd = null;
          // where the new timeline forked off: the last line of its history file
          const fork = n.hist.length > 1 ? formatLsn(n.hist[n.hist.length - 1]!.start) : undefined;
          done(1, true, undefined, 'promoted', fork);
        } else done(1, false, 'failed', 'pg_promote failed');
      });
      return;
    }
    case 'demote': {
      if (!up) return done(1, false, 'bad-job');
      if (n.proc === 'running' && n.role === 'replica') return followUpstream(w, n, up.id, done, 'already a standby: ');
      if (n.proc === 'stopped') return done(ACTION_TIMEOUT_MS, false, 'failed', 'timeout');
      a.busy = true;
      if (n.proc === 'running') {
        const j = w.prefix[w.prefix.length - 1]!;
        if (j.primary === n.id && !(j.operation?.id === spec.operationId && j.operation.phase === 'demoting')) staleDemotion(w, n, job);
        // a fast shutdown: the walsenders ship every record to the connected standbys first
        for (const id of w.ids) {
          const r = w.node(id);
          if (r.senderOf === n.id && r.proc === 'running' && net(w, r, n) && r.hist[r.hist.length - 1]!.uid === n.hist[n.hist.length - 1]!.uid) r.lsn = Math.max(r.lsn, n.lsn);
        }
        n.proc = 'dead';
        w.changed();
        w.tr(() => `${n.id} shut down by its agent to demote it`);
      }
      const lsn = formatLsn(n.lsn);
      w.at(w.now + w.rng.int(200, 1_000), () => {
        if (a.gen !== g) return;
        a.busy = false;
        n.role = 'replica';
        n.readOnly = false;
        n.upstream = up.id;
        startPg(w, n);
        done(0, true, undefined, `demoted: standby of ${up.id}`, lsn);
      });
      return;
    }
    case 'follow': {
      if (!up) return done(1, false, 'bad-job');
      if (n.proc === 'stopped') return done(ACTION_TIMEOUT_MS, false, 'failed', 'timeout');
      if (n.proc === 'running' && n.role === 'primary') {
        // a primary asked to follow: a rejoin, which re-checks the lease
        if (!leaseCheck()) return done(2, false, 'lease-changed');
        return rejoin(w, a, g, n, up.id, job, done);
      }
      if (n.proc === 'dead') return rejoin(w, a, g, n, up.id, job, done);
      return followUpstream(w, n, up.id, done, '');
    }
    case 'rejoin': {
      if (!up) return done(1, false, 'bad-job');
      if (n.proc === 'stopped') {
        // the probe query times out; pg_ctl stop gives up and kills it
        w.at(w.now + ACTION_TIMEOUT_MS, () => {
          if (a.gen !== g) return;
          a.busy = true; // (no end of WAL read: the agent stops it itself)
          if (n.proc === 'stopped') {
            if (n.role === 'primary' && w.prefix[w.prefix.length - 1]!.primary === n.id) staleDemotion(w, n, job);
            killPg(w, n, 'killed by the agent for a rejoin');
          }
          rejoin(w, a, g, n, up.id, job, done);
        });
        return;
      }
      return rejoin(w, a, g, n, up.id, job, done);
    }
    case 'fence': {
      // agent fence(): read-only when it answers, SIGKILL of the instance when it does not
      if (n.proc === 'dead') return done(2, true, undefined, 'dead: the postmaster is not running');
      if (n.proc === 'running' && n.role === 'replica') return done(2, true, undefined, 'fenced: it is a standby');
      const obs = observe(w, a);
      const g = guardFor(w, a, obs, true);
      if (g.action === 'none' && n.proc === 'running' && n.readOnly) return done(w.rng.int(5, 30), true, undefined, 'fenced: read-only, client sessions ended');
      if (g.action === 'none') return done(2, false, 'failed', g.reason);
      carryOut(w, a, g);
      return done(w.rng.int(5, 30), true, undefined, g.action === 'kill' ? 'dead: killed (it did not answer)' : 'fenced: read-only, client sessions ended');
    }
    case 'unfence': {
      if (n.proc !== 'running') return done(n.proc === 'stopped' ? ACTION_TIMEOUT_MS : 2, false, 'failed', 'cannot connect');
      if (n.readOnly) {
        n.readOnly = false;
        w.changed();
        w.tr(() => `${n.id} unfenced: takes writes again`);
      }
      a.fenced = false;
      return done(w.rng.int(5, 30), true, undefined, 'unfenced: taking writes again');
    }
    case 'sync': {
      const want = spec.sync;
      if (!want || want.names.length === 0) return done(1, false, 'bad-job');
      if (n.proc === 'stopped') return done(ACTION_TIMEOUT_MS, false, 'failed', 'timeout');
      if (n.proc !== 'running') return done(2, false, 'failed', 'connect ECONNREFUSED');
      if (n.role !== 'primary') return done(2, false, 'not-primary', 'synchronous_standby_names is set on the primary only');
      n.syncNames = want.names.slice();
      n.syncCount = want.count;
      w.tr(() => `${n.id} synchronous_standby_names = FIRST ${want.count} (${want.names.join(', ')})`);
      return w.at(w.now + w.rng.int(20, 200), () => {
        if (a.gen !== g) return;
        done(0, true, undefined, 'synchronous_standby_names set', formatLsn(n.lsn));
      });
    }
    case 'restart': {
      // start the node in place, as it is on disk (a crashed primary comes back as a primary)
      if (n.proc === 'running') return done(2, true, undefined, 'already running');
      if (n.proc === 'stopped') return done(ACTION_TIMEOUT_MS, false, 'failed', 'timeout');
      a.busy = true;
      // (after the end of WAL is read)
      w.at(Math.max(w.now, a.walEndReadyAt) + w.rng.int(100, 300), () => {
        if (a.gen !== g) return;
        a.busy = false;
        a.walEnd = null;
        startPg(w, n);
        done(0, true, undefined, 'restarted');
      });
      return;
    }
    default:
      return done(1, false, 'unknown-action', `unknown action ${(spec as { action: string }).action}`);
  }
}

/** a job of an operation that is over stops the journal's primary (delivered again, or sent by a deposed leader) */
export function staleDemotion(w: World, n: PgNode, job: SimJob): void {
  w.stats.staleDemotions++;
  w.tr(() => `note: ${job.jobId} stops ${n.id}, the journal's primary`);
}

export function followUpstream(w: World, n: PgNode, up: string, done: (after: number, ok: boolean, code?: string, message?: string) => void, prefix: string): void {
  if (n.upstream !== up) {
    n.upstream = up;
    w.changed();
    w.tr(() => `${n.id} now follows ${up}`);
  }
  done(w.rng.int(5, 50), true, undefined, `${prefix}following ${up}`);
}

export function rejoin(w: World, a: Agent, g: number, n: PgNode, up: string, job: SimJob, done: (after: number, ok: boolean, code?: string, message?: string) => void): void {
  // the end of WAL must be read before pg_rewind rewrites it
  if (a.walEndReadyAt > w.now) {
    w.at(a.walEndReadyAt, () => {
      if (a.gen === g) rejoin(w, a, g, n, up, job, done);
    });
    return;
  }
  if (n.proc === 'running' && n.role === 'replica') return followUpstream(w, n, up, done, '');
  a.busy = true;
  if (n.proc === 'running') {
    if (w.prefix[w.prefix.length - 1]!.primary === n.id) staleDemotion(w, n, job);
    n.proc = 'dead';
    w.changed();
    w.tr(() => `${n.id} stopped by its agent for a rejoin`);
  }
  const wasStandby = n.role === 'replica';
  w.at(w.now + (wasStandby ? w.rng.int(100, 400) : w.rng.int(300, 4_000)), () => {
    if (a.gen !== g) return; // the agent died: the rejoin is abandoned, the node stays down
    a.busy = false;
    if (wasStandby) {
      n.upstream = up;
      n.readOnly = false;
      w.changed();
      startPg(w, n);
      return done(0, true, undefined, `rejoined ${up} (restarted)`);
    }
    // a former primary, however it stopped: its end of WAL is read and reported before pg_rewind discards the tail
    if (a.walEnd === null) {
      a.walEnd = n.lsn;
      w.walEndHist.set(`${n.id}:${formatLsn(n.lsn)}`, n.hist);
      w.tr(() => `agent ${n.id}: end of WAL on disk ${formatLsn(n.lsn)}, before rewinding`);
    }
    if (agentConnected(w, a)) publish(w, n.id, { kind: 'obs', entry: observe(w, a) });
    if (rewind(w, n, up)) {
      startPg(w, n);
      w.tr(() => `${n.id} rejoined ${up} (rewound)`);
      return done(w.rng.int(100, 300), true, undefined, `rejoined ${up} (rewound)`);
    }
    return done(0, false, 'failed', `pg_rewind from ${up} failed`);
  });
}
