/**
 * One schedule: 2-3 s to bootstrap, 30-80 steps of 200 ms with a fault drawn per step,
 * then every fault heals and the cluster is left alone for up to QUIET_MS; liveness, the
 * exception's writes and the fold are checked at the end. Every event is followed by the
 * invariants (checkAll).
 */
import { formatLsn } from '../../src/core/index.js';
import { bootAgent } from './agent.js';
import { finalChecks } from './checks.js';
import { command, startCoordinator, tick } from './coordinator.js';
import { healAll, injectFault } from './faults.js';
import { checkAll, checkLiveness, liveOk, splitCategory } from './invariants.js';
import { TICK_MS, LEASE_TICK_MS, STEP_MS, QUIET_MS } from './params.js';
import { walTick } from './postgres.js';
import type { RunOptions, RunResult } from './types.js';
import { World } from './world.js';

/** run every event up to and including time t */
export function runUntil(w: World, t: number): void {
  for (;;) {
    if (w.stopped()) return;
    if (w.q.peekT() > t) break;
    const ev = w.q.pop()!;
    w.now = ev.t;
    w.stats.events++;
    ev.fn();
    checkAll(w);
  }
  w.now = t;
}

export function run(w: World): RunResult {
  const r = w.rng;
  w.stats.schedules = 1;
  w.tr(() => `config ${w.config}`);
  for (const id of w.ids) bootAgent(w, w.agents[id]!);
  for (const c of w.coords) startCoordinator(w, c, r.int(0, LEASE_TICK_MS - 1));
  walTick(w);
  w.at(r.int(0, TICK_MS - 1), () => tick(w));
  runUntil(w, r.int(2_000, 3_000));

  const steps = r.int(30, 80);
  const pFault = r.pick([0.05, 0.1, 0.2]);
  for (let i = 0; i < steps && !w.stopped(); i++) {
    if (r.chance(pFault)) injectFault(w);
    runUntil(w, w.now + STEP_MS);
  }

  // the faults stop: everything heals; a crashed primary stays dead (no one restarts it)
  if (!w.stopped()) {
    healAll(w);
    const quietStart = w.now;
    w.tr(() => 'quiet: all faults healed');
    let live = false;
    while (w.now < quietStart + QUIET_MS && !w.stopped()) {
      // the operator resumes a paused cluster (again, should the command be lost)
      if ((w.now - quietStart) % 5_000 === 0 && w.prefix[w.prefix.length - 1]!.paused) command(w, 'resume');
      runUntil(w, w.now + 500);
      if (liveOk(w)) {
        live = true;
        break;
      }
    }
    if (live) {
      w.stats.livenessChecked++;
      w.stats.recoveryMsMax = Math.max(w.stats.recoveryMsMax, w.now - quietStart);
    } else if (!w.stopped()) checkLiveness(w);
    // the writes a frozen host took must show up in a measured failover.loss: give its
    // rejoin the rest of the quiet period
    while ((w.uncovered.length > 0 || w.frozenWriters.size > 0) && w.now < quietStart + QUIET_MS && !w.stopped()) runUntil(w, w.now + 500);
    for (const u of w.uncovered) {
      // writes the primary still holds at the end (its line runs through that segment
      // past them) were not lost: nothing to measure
      const p = w.primaryKey ? w.node(w.primaryKey) : null;
      const k = p ? p.hist.findIndex((x) => x.uid === u.seg) : -1;
      if (p && k >= 0 && (k === p.hist.length - 1 ? p.lsn >= u.lsn : p.hist[k + 1]!.start >= u.lsn)) {
        w.tr(() => `note: ${u.node}'s writes beside another primary (up to ${formatLsn(u.lsn)}) are on the primary's line: kept`);
        continue;
      }
      w.violate('frozen-writes-not-measured', `${u.node} took writes up to ${formatLsn(u.lsn)} beside the primary with its agent not running (until t=${u.at}), and no measured failover.loss covers them`);
    }
    finalChecks(w);
  }
  if (w.splitSince !== null) w.stats.splitBrainMs += w.now - w.splitSince;
  splitCategory(w, []);
  return { seed: w.seed, violations: w.violations, trace: w.trace, config: w.config, stats: w.stats };
}

/** Run one schedule: the same seed and options give the same result and trace. */
export function runSchedule(seed: number, opts: RunOptions = {}): RunResult {
  return run(new World(seed, opts));
}
