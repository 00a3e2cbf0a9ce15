/**
 * Deterministic simulation: SIM_RUNS seeded schedules (default 10 000) through the pure
 * core, invariants checked after every event. A failing seed is printed with the
 * command that replays it:
 *
 *   SIM_SEED=12345 npx vitest run test/simulation
 *
 * SIM_SEED runs that one schedule and prints its trace. SIM_BASE moves the first seed
 * of the batch (default 1), to explore other schedules. SIM_STALE_READS, SIM_CLOCK_SKEW
 * and SIM_AGENT_AS_IS show known gaps; SIM_WITHOUT turns safeguards off (README.md).
 */
import { describe, expect, it } from 'vitest';
import { emptyStats, GUARDS, mergeStats, runSchedule, type Guard, type RunResult } from './sim.js';

const RUNS = Number(process.env.SIM_RUNS ?? 10_000);
const BASE = Number(process.env.SIM_BASE ?? 1);
const ONE = process.env.SIM_SEED === undefined ? null : Number(process.env.SIM_SEED);
/** stale followers: reads that lag up to 1.5 s, coordinators cut off from Redis, a read's round trip after a pause (README.md) */
const STALE = process.env.SIM_STALE_READS === '1';
/** model the agent and coordinator without some of their safeguards, to measure what each buys: README.md */
const WITHOUT = (process.env.SIM_WITHOUT ?? '').split(',').filter((g) => g !== '') as Guard[];
const unknown = WITHOUT.filter((g) => !(GUARDS as readonly string[]).includes(g));
if (unknown.length) throw new Error(`SIM_WITHOUT: unknown ${unknown.join(', ')} (known: ${GUARDS.join(', ')})`);
/** one coordinator's clock 3 s off in 15 % of the schedules: shows the clock-skew gap of job expiry (README.md) */
const SKEW = process.env.SIM_CLOCK_SKEW === '1';
/** the agent exactly as agent.ts is: it rewinds a former primary when it starts (README.md) */
const AS_IS = process.env.SIM_AGENT_AS_IS === '1';
const OPTS = { staleReads: STALE, clockSkew: SKEW, agentAsIs: AS_IS, without: WITHOUT };
const ENV = `${STALE ? 'SIM_STALE_READS=1 ' : ''}${SKEW ? 'SIM_CLOCK_SKEW=1 ' : ''}${AS_IS ? 'SIM_AGENT_AS_IS=1 ' : ''}${WITHOUT.length ? `SIM_WITHOUT=${WITHOUT.join(',')} ` : ''}`;

function report(r: RunResult, traceLines = 400): string {
  const lines = [
    `seed ${r.seed}: ${r.config}`,
    ...r.violations.slice(0, 5).map((v) => `  t=${v.t} ${v.invariant}: ${v.detail}`),
    `replay: ${ENV}SIM_SEED=${r.seed} npx vitest run test/simulation`,
  ];
  if (r.trace.length) {
    const t = r.trace.length > traceLines ? ['  …', ...r.trace.slice(-traceLines)] : r.trace;
    lines.push('trace:', ...t.map((l) => '  ' + l));
  }
  return lines.join('\n');
}

describe('deterministic simulation', () => {
  if (ONE !== null) {
    it(`replays seed ${ONE}`, () => {
      const r = runSchedule(ONE, { trace: true, ...OPTS });
      console.log(report(r, 100_000));
      const again = runSchedule(ONE, { trace: true, ...OPTS });
      expect(again.trace).toEqual(r.trace);
      expect(r.violations).toEqual([]);
    });
    return;
  }

  it(`${RUNS} random schedules keep every invariant`, () => {
    const started = performance.now();
    const stats = emptyStats();
    const failed: RunResult[] = [];
    for (let seed = BASE; seed < BASE + RUNS; seed++) {
      const r = runSchedule(seed, { stopAtFirst: true, ...OPTS });
      mergeStats(stats, r.stats);
      if (r.violations.length) failed.push(r);
    }
    const ms = Math.round(performance.now() - started);
    console.log(
      [
        `simulation: ${RUNS} schedules (seeds ${BASE}..${BASE + RUNS - 1}) in ${ms} ms, ${stats.events} events`,
        `  failovers ${stats.failoversStarted}, switchovers ${stats.switchoversStarted}: succeeded ${stats.operationsSucceeded}, failed ${stats.operationsFailed}, aborted ${stats.operationsAborted}; commands rejected ${stats.commandsRejected}`,
        `  leader changes ${stats.leaderChanges} (${stats.caughtUp} caught up on the journal first); fenced appends ${stats.fencedAppends}; coordinators cut off long enough to answer 503 ${stats.staleRefusals}`,
        `  primaries that fenced themselves: without Redis ${stats.selfFenced}, deposed ${stats.deposedFenced}; deposed and hung, killed by their agent ${stats.deposedKilled}; former primaries started read-only ${stats.bootFenced}`,
        `  jobs refused ${JSON.stringify(stats.jobsRefused)} (expired within their ttl: the leader's clock behind ${stats.expiredBySkew}); duplicate job runs ${stats.duplicateJobRuns}`,
        `  failovers from a known primary ${stats.lossFailovers}: loss measured ${stats.lossMeasured} (not checked: the new primary off the old one's line ${stats.lossOffBranch}, the old one promoted again since ${stats.lossPromotedAgain})`,
        `  faults ${JSON.stringify(stats.faults)}`,
        `  liveness checked ${stats.livenessChecked} (slowest recovery ${stats.recoveryMsMax} ms), excused ${JSON.stringify(stats.livenessExcused)}`,
        `  findings (not invariants, see test/simulation/README.md):`,
        `    two nodes taking writes at once (one of them unrouted): ${stats.splitBrainRuns} schedules, ${stats.splitBrainMs} ms; by why the unpublished one still took writes ${JSON.stringify(stats.splitBrainMsBy)} (longest unexcused ${stats.splitUnexcusedMaxMs} ms)`,
        `    a promotion while another primary was still writable: ${JSON.stringify(stats.promotedBesideWritable)}`,
        `    candidate further behind than maxLagOnFailoverBytes in truth: ${stats.truthLagExceeded} (${stats.truthLagExceededBlind} with the old primary's LSN unknown to the leader)`,
        `    jobs of an operation that was over that acted: promotions ${stats.stalePromotions}, the journal's primary stopped ${stats.staleDemotions}`,
      ].join('\n'),
    );
    if (failed.length) {
      const byInvariant = new Map<string, number[]>();
      for (const r of failed) {
        const inv = r.violations[0]!.invariant;
        byInvariant.set(inv, [...(byInvariant.get(inv) ?? []), r.seed]);
      }
      console.log(`FAILED ${failed.length} schedules: ${[...byInvariant].map(([k, v]) => `${k} ×${v.length} (e.g. ${v.slice(0, 5).join(', ')})`).join('; ')}`);
      // the first failure, replayed with its trace
      console.log(report(runSchedule(failed[0]!.seed, { trace: true, stopAtFirst: true, ...OPTS })));
    }
    expect(failed.map((r) => `seed ${r.seed}: ${r.violations[0]!.invariant}: ${r.violations[0]!.detail} — replay: ${ENV}SIM_SEED=${r.seed} npx vitest run test/simulation`)).toEqual([]);
  });
});
