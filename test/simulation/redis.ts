/**
 * The model of Redis, one node, always up and linearizable: the lease script
 * (src/bus/lua/lease-2.lua), the fenced append's token check (append-2.lua), stream ids
 * and the journal's XADD, the observation and command streams as each coordinator reads
 * them (with read lag, delays, duplicates), and BullMQ's queues (a job id added twice is
 * a no-op; a stalled job is handed out again). Its clock is the one clock of the world:
 * `now` here is Redis's time.
 */
import { evolve } from '../../src/core/index.js';
import type { JournalEntry } from '../../src/events/journal.js';
import { checkLoss, checkNoAcknowledgedCommitLost } from './checks.js';
import { foldSoft } from './coordinator.js';
import { kickWorker } from './jobs.js';
import { LEASE_TTL_MS } from './params.js';
import { describe } from './report.js';
import type { SimJob, Coord, JournalRecord, SoftEvent } from './types.js';
import type { World } from './world.js';

/** What the lease script answers (src/bus/lua/lease-2.lua): renewed, acquired (a new epoch), or held by another. */
export type LeaseReply = { code: 1; token: string; epoch: number } | { code: 2; token: string; epoch: number } | { code: 0; holder: string; epoch: number };

/** lease-2.lua: renew the lease the caller holds, take a free one with a new epoch, or name its holder. */
export function leaseScript(w: World, coordinator: string, token: string | null): LeaseReply {
  const l = w.lease;
  if (l && w.now < l.expiresAt) {
    if (token !== null && l.token === token) {
      l.expiresAt = w.now + LEASE_TTL_MS;
      return { code: 1, token, epoch: l.epoch };
    }
    return { code: 0, holder: l.holder, epoch: l.epoch };
  }
  const epoch = ++w.epochCounter;
  const t = `${epoch}:${coordinator}`;
  w.lease = { epoch, holder: coordinator, token: t, expiresAt: w.now + LEASE_TTL_MS };
  return { code: 2, token: t, epoch };
}

/** The epoch of the lease in force (0: none), as an agent reads it before an irreversible act. */
export function leaseEpochNow(w: World): number {
  const l = w.lease;
  return l && w.now < l.expiresAt ? l.epoch : 0;
}

/**
 * BullMQ Queue.add with a job id: a no-op when the id exists (false). A queue is FIFO:
 * first deliveries keep the order they were sent in. Some jobs are handed out twice
 * (a stalled lock; often during a job-dup fault).
 */
export function addJob(w: World, job: Omit<SimJob, 'availableAt' | 'copy'>): boolean {
  const node = job.spec.node;
  const ids = w.jobIds[node];
  if (!ids || ids.has(job.jobId)) return false;
  ids.add(job.jobId);
  const availableAt = Math.max(w.queueAt[node] ?? 0, w.now + w.rng.int(2, 20));
  w.queueAt[node] = availableAt;
  const j: SimJob = { ...job, availableAt, copy: false };
  w.queues[node]!.push(j);
  w.at(availableAt, () => kickWorker(w, w.agents[node]!));
  if (w.rng.chance(w.jobDupUntil > w.now ? 0.5 : 0.02)) requeue(w, node, j, w.now + stallDelay(w));
  return true;
}

/** when a stalled job is handed out again: its lock expires (30 s by default) and the stall checker runs */
export function stallDelay(w: World): number {
  return w.rng.chance(0.5) ? w.rng.int(50, 3_000) : w.rng.int(20_000, 40_000);
}

export function requeue(w: World, node: string, job: SimJob, at: number): void {
  const copy = { ...job, availableAt: at, copy: true };
  w.queues[node]!.push(copy);
  w.at(at, () => kickWorker(w, w.agents[node]!));
}

/** XADD to the observation (or command) stream: every coordinator reads it */
export function publish(w: World, node: string, ev: SoftEvent): void {
  for (const c of w.coords) {
    if (!c.up) continue;
    let d = w.rng.int(1, 15);
    if (c.slowUntil > w.now) d += slowReadMs(w);
    if (ev.kind !== 'command' && w.obsDelayUntil > w.now && w.rng.chance(0.5)) d += w.rng.int(0, 2_000);
    deliver(w, c, d, () => foldSoft(w, c, ev));
    if (ev.kind !== 'command' && w.obsDupUntil > w.now && w.rng.chance(0.3)) deliver(w, c, d + w.rng.int(0, 1_500), () => foldSoft(w, c, ev));
  }
  if (ev.kind === 'job.result') w.tr(() => `${node} result ${ev.entry.jobId} ok=${ev.entry.ok}${ev.entry.code ? ' ' + ev.entry.code : ''}`);
}

/**
 * Extra read lag of a slow coordinator. Its reads keep completing, so it stays "fresh"
 * (no 503) whatever the lag: past a few hundred ms a stale follower can route writes
 * to a demoted node (see README.md); SIM_STALE_READS=1 lets the lag reach 1.5 s.
 */
export function slowReadMs(w: World): number {
  return w.staleReads ? w.rng.int(200, 1_500) : w.rng.int(20, 150);
}

export function deliver(w: World, c: Coord, delay: number, fn: () => void): void {
  const g = c.gen;
  w.at(w.now + delay, () => {
    if (!c.up || c.gen !== g) return;
    if (c.paused || c.cut || c.draining) c.backlog.push(fn);
    else fn();
  });
}

export function fenceOk(w: World, c: Coord): boolean {
  const l = w.lease;
  return !!l && c.token !== null && l.token === c.token && w.now < l.expiresAt;
}

export function appendJournal(w: World, entry: JournalEntry): JournalRecord {
  const ms = w.now;
  if (ms > w.lastMs) {
    w.lastMs = ms;
    w.lastSeq = 0;
  } else w.lastSeq++;
  const rec: JournalRecord = { id: `${w.lastMs}-${w.lastSeq}`, entry };
  const before = w.prefix[w.prefix.length - 1]!;
  w.journal.push(rec);
  w.idIndex.set(rec.id, w.journal.length);
  w.prefix.push(evolve(w.prefix[w.prefix.length - 1]!, { kind: 'journal', id: rec.id, entry }));
  w.tr(() => `journal ${rec.id} e${entry.epoch} ${describe(entry)}`);
  if (entry.type === 'promotion.succeeded' && w.settings.synchronous) checkNoAcknowledgedCommitLost(w, entry.node);
  if (entry.type === 'failover.started') {
    if (entry.kind === 'switchover') w.stats.switchoversStarted++;
    else w.stats.failoversStarted++;
  }
  if (entry.type === 'failover.loss') checkLoss(w, entry);
  if (entry.type === 'failover.completed') {
    const op = before.operation;
    if (entry.outcome === 'success' && op?.id === entry.operationId && op.kind === 'failover' && op.from !== null && op.from !== op.to) w.stats.lossFailovers++;
    if (entry.outcome === 'success') w.stats.operationsSucceeded++;
    else if (entry.outcome === 'failed') w.stats.operationsFailed++;
    else w.stats.operationsAborted++;
  }
  if (entry.type === 'command.rejected') w.stats.commandsRejected++;
  // every coordinator follows the journal with XREAD, in order
  for (const c of w.coords) {
    if (!c.up) continue;
    let d = w.rng.int(1, 20);
    if (c.slowUntil > w.now) d += slowReadMs(w);
    const t = Math.max(c.journalAt, w.now + d);
    c.journalAt = t;
    deliver(w, c, t - w.now, () => {
      c.state = evolve(c.state, { kind: 'journal', id: rec.id, entry });
    });
  }
  return rec;
}
