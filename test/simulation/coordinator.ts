/**
 * The model of a coordinator (coordinator/cluster.ts): each folds what reaches it with
 * evolve; the lease holder (src/bus/lease.ts: renewed every second, its own deadline at
 * sent + TTL - margin) runs decide every tick and again after its own appends (bounded,
 * as the shell), appends through the fence (a deposed leader's appends are dropped),
 * folds its appends at once, sends jobs, and publishes the journal's primary
 * (publishedPrimary). A new leader reads the journal to its end before its first append.
 * A restarted coordinator replays the journal from scratch with empty soft state. One
 * cut off from Redis (SIM_STALE_READS) serves its view for staleAfterMs, then answers 503.
 */
import { jobIdFor } from '../../src/bus/keys.js';
import { publishedPrimary } from '../../src/core/agent-rules.js';
import { decide, evolve, fold, initialState, type Decision, type JobSpec, type ClusterState, type CoreEvent } from '../../src/core/index.js';
import type { JournalDraft, JournalEntry } from '../../src/events/journal.js';
import type { Command } from '../../src/events/observation.js';
import { checkFailoverStarted } from './checks.js';
import { checkAll } from './invariants.js';
import { CLUSTER, TICK_MS, LEASE_TTL_MS, LEASE_MARGIN_MS, LEASE_TICK_MS, CHAINED_PASSES, STALE_AFTER_MS } from './params.js';
import { addJob, appendJournal, fenceOk, leaseScript, publish } from './redis.js';
import type { Coord, SoftEvent } from './types.js';
import type { World } from './world.js';

export function foldSoft(w: World, c: Coord, ev: SoftEvent): void {
  const receivedAt = clock(w, c);
  let e: CoreEvent;
  if (ev.kind === 'obs') e = { kind: 'obs', id: `${ev.entry.bootId}-${ev.entry.seq}`, receivedAt, entry: ev.entry };
  else if (ev.kind === 'job.result') e = { kind: 'job.result', id: ev.entry.jobId, receivedAt, entry: ev.entry };
  else e = { kind: 'command', id: ev.entry.id, receivedAt, entry: ev.entry };
  c.state = evolve(c.state, e);
}

export function clock(w: World, c: Coord): number {
  return w.now + c.skew;
}

export function isLeaderLocal(w: World, c: Coord): boolean {
  return c.token !== null && w.now < c.deadline;
}

/** every coordinator's tick timer (one event for all: the phase between them does not matter) */
export function tick(w: World): void {
  for (const c of w.coords) if (c.up && !c.paused) pass(w, c);
  w.at(w.now + TICK_MS, () => tick(w));
}

export function startCoordinator(w: World, c: Coord, leasePhase: number): void {
  const g = c.gen;
  const timer = (): void => {
    if (c.gen !== g) return;
    if (c.up && !c.paused) leaseTick(w, c);
    else if (c.up) c.tickMissed = true;
    w.at(w.now + LEASE_TICK_MS, timer);
  };
  w.at(w.now + leasePhase, timer);
}

/** Lease.tick (src/bus/lease.ts): the lease script; a holder's own deadline is sent + TTL - margin. */
export function leaseTick(w: World, c: Coord): void {
  if (c.cut) return; // the lease script cannot reach Redis: the holder runs out at its own deadline
  const r = leaseScript(w, c.id, c.token);
  if (r.code === 1) {
    c.deadline = w.now + LEASE_TTL_MS - LEASE_MARGIN_MS;
    return;
  }
  if (r.code === 2) {
    const epoch = r.epoch;
    c.token = r.token;
    c.epoch = epoch;
    c.deadline = w.now + LEASE_TTL_MS - LEASE_MARGIN_MS;
    if (epoch > 1) w.stats.leaderChanges++;
    w.tr(() => `${c.id} acquired the lease: epoch ${epoch}`);
    // onLease('acquired'): read the journal to its end, then the first append
    if (w.guards.has('catch-up')) catchUp(w, c);
    act(w, c, [{ type: 'append', entry: { type: 'leader.changed', coordinator: c.id } }], c.state, clock(w, c), false);
    schedulePass(w, c, 1);
    return;
  }
  const holder = r.holder;
  if (c.token !== null) w.tr(() => `${c.id} lost the lease to ${holder}`);
  c.token = null;
  c.deadline = 0;
  c.epoch = Math.max(c.epoch, r.epoch);
}

export function schedulePass(w: World, c: Coord, delay: number): void {
  if (c.passScheduled) return;
  c.passScheduled = true;
  const g = c.gen;
  w.at(w.now + delay, () => {
    if (c.gen !== g) return;
    c.passScheduled = false;
    if (c.up && !c.paused) pass(w, c);
  });
}

/**
 * catchUpJournal: a new leader reads the journal to its end before its first append (an
 * entry of its own with a higher id would make its fold skip any of its predecessor's
 * entries not read yet).
 */
export function catchUp(w: World, c: Coord): void {
  const from = c.state.logId === '0-0' ? 0 : w.idIndex.get(c.state.logId);
  if (from === undefined) return;
  if (from < w.journal.length) {
    w.stats.caughtUp++;
    w.tr(() => `${c.id} catches up: ${w.journal.length - from} journal entries not read yet`);
  }
  for (let i = from; i < w.journal.length; i++) {
    const r = w.journal[i]!;
    c.state = evolve(c.state, { kind: 'journal', id: r.id, entry: r.entry });
  }
}

/** one decide pass of the leader's shell (decidePass) */
export function pass(w: World, c: Coord): void {
  if (!isLeaderLocal(w, c) || c.cut) return; // (cut off: its appends fail)
  const before = c.state;
  const now = clock(w, c);
  const decisions = decide(before, now, w.settings);
  if (decisions.length === 0) {
    c.chained = 0;
  } else {
    act(w, c, decisions, before, now, false);
    // what was just journaled may enable the next step at once (bounded, as the shell)
    if (++c.chained < CHAINED_PASSES) schedulePass(w, c, w.rng.int(1, 5));
  }
  publishRouting(w, c);
}

/**
 * act() (coordinator/cluster.ts): every append of the pass in one fenced call, in order,
 * then the routing table and the published primary, then the jobs, in order; a job is
 * sent only while the lease is ours by its own deadline. `zombie`: decided before a pause
 * that came right after the deadline check, so the append reaches the fence unchecked.
 */
export function act(w: World, c: Coord, decisions: Decision[], before: ClusterState, decidedAt: number, zombie: boolean): void {
  const batch: JournalEntry[] = [];
  const jobs: JobSpec[] = [];
  for (const d of decisions) {
    if (d.type === 'append') batch.push(complete(w, c, d.entry, decidedAt));
    else jobs.push(d.job);
  }
  if (batch.length > 0) {
    if (c.cut) return; // the append cannot reach Redis (not a lost lease: it keeps it until its deadline)
    if (!zombie && !isLeaderLocal(w, c)) {
      dropLease(w, c, 'lease deadline passed');
      return;
    }
    if (!fenceOk(w, c)) {
      w.stats.fencedAppends += batch.length;
      w.tr(() => `${c.id} append FENCED (epoch ${c.epoch}): dropped ${batch.map((e) => e.type).join(', ')}`);
      dropLease(w, c, 'append refused: the lease is no longer ours');
      return;
    }
    for (const entry of batch) {
      const rec = appendJournal(w, entry);
      const jid = (entry as { jobId?: string }).jobId;
      if (jid) w.askedBy.set(jid, rec.id);
      if (entry.type === 'failover.started') checkFailoverStarted(w, c, entry, before, decidedAt);
      c.state = evolve(c.state, { kind: 'journal', id: rec.id, entry });
    }
    // the shell refreshes its routing table after the flush: check what it serves
    checkAll(w);
    // … and publishes it before anything else (clients wait on it to write again)
    publishRouting(w, c);
  }
  for (const job of jobs) {
    if (c.cut) return; // Queue.add cannot reach Redis: the pass fails
    if (!isLeaderLocal(w, c)) {
      dropLease(w, c, 'lease deadline passed');
      return;
    }
    sendJob(w, c, job);
  }
}

export function dropLease(w: World, c: Coord, why: string): void {
  if (c.token === null) return;
  w.tr(() => `${c.id} drops the lease: ${why}`);
  c.token = null;
  c.deadline = 0;
}

export function complete(w: World, c: Coord, draft: JournalDraft, at: number): JournalEntry {
  const d = { ...draft } as JournalDraft & { jobId?: string; node?: string; operationId?: string; action?: string };
  const action: Record<string, string> = {
    'promotion.requested': 'promote',
    'demotion.requested': 'demote',
    'unfence.requested': 'unfence',
    'sync.requested': 'sync',
    'restart.requested': 'restart',
    'fence.requested': 'fence',
  };
  const a = d.type === 'follow.requested' ? d.action : action[d.type];
  if (a && d.operationId && d.node) d.jobId = jobIdFor(c.epoch, d.operationId, a, d.node);
  const entry: JournalEntry = { ...d, v: 1, at, epoch: c.epoch };
  return entry;
}

/** sendJob: the job carries its epoch, the journal id of the entry that asked for it, and its expiry on Redis's clock. */
export function sendJob(w: World, c: Coord, spec: JobSpec): void {
  const jobId = jobIdFor(c.epoch, spec.operationId, spec.action, spec.node);
  const journalId = w.askedBy.get(jobId);
  w.askedBy.delete(jobId);
  // a job delivered late must not act on an operation that is over: it expires when the
  // decision that sent it would be retried (on Redis's clock, which every host shares)
  const expiresAt = w.now + jobTtl(w, spec.action);
  if (!addJob(w, { jobId, sentAt: w.now, expiresAt, epoch: c.epoch, spec, journalId })) return;
  w.tr(() => `${c.id} sends ${jobId}${spec.upstream ? ' → ' + spec.upstream.id : ''}`);
}

export function jobTtl(w: World, action: JobSpec['action']): number {
  return action === 'follow' || action === 'rejoin' || action === 'sync' ? w.settings.jobRetryMs : action === 'promote' ? Math.floor(w.settings.promoteTimeoutMs / 2) : w.settings.promoteTimeoutMs;
}

export function publishRouting(w: World, c: Coord): void {
  if (!isLeaderLocal(w, c) || !fenceOk(w, c) || c.cut) return;
  if (w.primaryKey !== c.state.primary) w.changed();
  w.primaryKey = c.state.primary;
  w.publishedKey = publishedPrimary(c.state, { now: clock(w, c), settings: w.settings });
}

/** a coordinator (re)started: replay the whole journal, no soft state, only new commands */
export function coldStart(w: World, c: Coord): void {
  c.up = true;
  c.paused = false;
  c.gen++;
  c.token = null;
  c.deadline = 0;
  c.epoch = 0;
  c.backlog = [];
  c.pendingAct = null;
  c.cut = false;
  c.tickMissed = false;
  c.draining = false;
  c.passScheduled = false;
  c.chained = 0;
  c.journalAt = 0;
  c.state = fold(
    initialState(CLUSTER),
    w.journal.map((r): CoreEvent => ({ kind: 'journal', id: r.id, entry: r.entry })),
  );
  w.changed();
  w.tr(() => `${c.id} restarted: replayed ${w.journal.length} journal entries`);
  startCoordinator(w, c, w.rng.int(0, 50));
}

export function resume(w: World, c: Coord): void {
  if (!c.up || !c.paused) return;
  c.paused = false;
  w.tr(() => `${c.id} resumes`);
  const p = c.pendingAct;
  c.pendingAct = null;
  if (p) act(w, c, p.decisions, p.before, p.decidedAt, true);
  // timers come due before I/O: the lease tick (it may acquire the lease) and a decide
  // pass run on what it read before the pause; then the read that was in flight returns
  // (its reply predates the pause, but it counts as a read: fresh), and the next one
  // brings what arrived meanwhile — at once here, a read's round trip later with
  // SIM_STALE_READS (it serves its pre-pause view meanwhile)
  if (c.tickMissed && !c.cut) leaseTick(w, c);
  c.tickMissed = false;
  pass(w, c);
  if (!c.cut) {
    c.lastReadAt = w.now;
    drain(w, c, w.staleReads ? w.rng.int(1, 20) : 0, true);
  }
  w.changed();
}

/** read what arrived while it could not read (paused, cut off), after `delay` */
export function drain(w: World, c: Coord, delay: number, freshNow: boolean): void {
  const run = (): void => {
    c.draining = false;
    if (!freshNow) c.lastReadAt = w.now;
    const backlog = c.backlog;
    c.backlog = [];
    for (const fn of backlog) fn();
    w.changed();
  };
  if (delay <= 0) return run();
  c.draining = true;
  const g = c.gen;
  w.at(w.now + delay, () => {
    if (c.gen === g && c.up) run();
  });
}

/** how stale its view may be, for a violation's detail */
export function staleness(w: World, c: Coord): string {
  if (c.cut) return ` (cut off from Redis ${w.now - c.lastReadAt} ms ago)`;
  if (c.slowUntil > w.now) return ' (reads slowly)';
  return '';
}

/** can it serve its routing table? A paused one serves nothing; one that has not read for STALE_AFTER_MS answers 503 */
export function serving(w: World, c: Coord): boolean {
  if (!c.up || c.paused) return false;
  if (!c.cut || !w.guards.has('stale-503')) return true;
  return w.now - c.lastReadAt < STALE_AFTER_MS;
}

/** an operator's command, through the API of any coordinator (sy:{c}:cmd) */
export function command(w: World, action: Command['action'], to?: string): void {
  // the API of a live coordinator XADDs it; with none, the operator tries again
  if (!w.coords.some((c) => c.up && !c.paused && !c.cut)) {
    w.at(w.now + 1_000, () => command(w, action, to));
    return;
  }
  const cmd: Command = { type: 'command', v: 1, id: `cmd-${++w.cmdSeq}`, action, by: 'operator', at: w.now };
  if (to !== undefined) cmd.to = to;
  w.tr(() => `OPERATOR ${action}${to ? ' --to ' + to : ''} (${cmd.id})`);
  publish(w, 'api', { kind: 'command', entry: cmd });
}

export function leader(w: World): Coord | undefined {
  return w.coords.find((c) => c.up && c.token !== null && c.token === w.lease?.token);
}
