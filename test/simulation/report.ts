/**
 * What a run prints: a journal entry in a trace line, the summary of a batch of schedules
 * (the figures test/simulation/README.md quotes), and a failing schedule with the command
 * that replays it and its trace.
 */
import type { JournalEntry } from '../../src/events/journal.js';
import type { Stats } from './stats.js';
import type { RunResult } from './types.js';

/** A journal entry in one trace line: its type and the fields that say what it did. */
export function describe(e: JournalEntry): string {
  const x = e as JournalEntry & Record<string, unknown>;
  const parts: string[] = [e.type];
  for (const k of ['operationId', 'node', 'coordinator', 'from', 'to', 'role', 'action', 'upstream', 'outcome', 'priority']) {
    const v = x[k];
    if (typeof v === 'string' || typeof v === 'number') parts.push(`${k}=${v}`);
  }
  if (e.type === 'node.health-changed') parts.push(e.healthy ? 'healthy' : 'UNHEALTHY');
  if ('reason' in x && typeof x.reason === 'string') parts.push(`(${x.reason})`);
  return parts.join(' ');
}

/** The command that replays one schedule; `env` holds the switches of the run (e.g. `SIM_CLOCK_SKEW=1 `). */
export function replayCommand(env: string, seed: number): string {
  return `${env}SIM_SEED=${seed} npx vitest run test/simulation`;
}

/** One failed schedule in one line: its first violation and how to replay it. */
export function failureLine(r: RunResult, env: string): string {
  return `seed ${r.seed}: ${r.violations[0]!.invariant}: ${r.violations[0]!.detail} — replay: ${replayCommand(env, r.seed)}`;
}

/** A schedule with its first violations, the replay command, and the last `traceLines` of its trace. */
export function scheduleReport(r: RunResult, env: string, traceLines = 400): string {
  const lines = [`seed ${r.seed}: ${r.config}`, ...r.violations.slice(0, 5).map((v) => `  t=${v.t} ${v.invariant}: ${v.detail}`), `replay: ${replayCommand(env, r.seed)}`];
  if (r.trace.length) {
    const t = r.trace.length > traceLines ? ['  …', ...r.trace.slice(-traceLines)] : r.trace;
    lines.push('trace:', ...t.map((l) => '  ' + l));
  }
  return lines.join('\n');
}

/** The figures of a batch of schedules (seeds base..base+runs-1), as the test prints them. */
export function summary(stats: Stats, runs: number, base: number, ms: number): string {
  return [
    `simulation: ${runs} schedules (seeds ${base}..${base + runs - 1}) in ${ms} ms, ${stats.events} events`,
    `  failovers ${stats.failoversStarted}, switchovers ${stats.switchoversStarted}: succeeded ${stats.operationsSucceeded}, failed ${stats.operationsFailed}, aborted ${stats.operationsAborted}; commands rejected ${stats.commandsRejected}`,
    `  leader changes ${stats.leaderChanges} (${stats.caughtUp} caught up on the journal first); fenced appends ${stats.fencedAppends}; coordinators cut off long enough to answer 503 ${stats.staleRefusals}`,
    `  primaries that fenced themselves: without Redis ${stats.selfFenced}, deposed ${stats.deposedFenced}; deposed and hung, killed by their agent ${stats.deposedKilled}; former primaries started read-only ${stats.bootFenced}`,
    `  jobs refused ${JSON.stringify(stats.jobsRefused)}; duplicate job runs ${stats.duplicateJobRuns}`,
    `  failovers from a known primary ${stats.lossFailovers}: loss measured ${stats.lossMeasured} (not checked: the new primary off the old one's line ${stats.lossOffBranch}, the old one promoted again since ${stats.lossPromotedAgain})`,
    `  faults ${JSON.stringify(stats.faults)}`,
    `  liveness checked ${stats.livenessChecked} (slowest recovery ${stats.recoveryMsMax} ms), excused ${JSON.stringify(stats.livenessExcused)}`,
    `  at most one node takes writes: exceptions (async mode, an unpublished node taking writes with its agent not running: its host frozen) ${stats.hostFrozenExceptions} episodes, ${stats.hostFrozenMs} ms; covered by a measured failover.loss ${stats.hostFrozenCovered}`,
    `  findings (not invariants, see test/simulation/README.md):`,
    `    two nodes taking writes at once (one of them unrouted): ${stats.splitBrainRuns} schedules, ${stats.splitBrainMs} ms; by why the unpublished one still took writes ${JSON.stringify(stats.splitBrainMsBy)} (longest unexcused ${stats.splitUnexcusedMaxMs} ms)`,
    `    a promotion while another primary was still writable: ${JSON.stringify(stats.promotedBesideWritable)}`,
    `    candidate further behind than maxLagOnFailoverBytes in truth: ${stats.truthLagExceeded} (${stats.truthLagExceededBlind} with the old primary's LSN unknown to the leader)`,
    `    jobs of an operation that was over that acted: promotions ${stats.stalePromotions}, the journal's primary stopped ${stats.staleDemotions}`,
  ].join('\n');
}

/** Failed schedules grouped by their first violation. */
export function failuresByInvariant(failed: readonly RunResult[]): string {
  const by = new Map<string, number[]>();
  for (const r of failed) {
    const inv = r.violations[0]!.invariant;
    by.set(inv, [...(by.get(inv) ?? []), r.seed]);
  }
  return `FAILED ${failed.length} schedules: ${[...by].map(([k, v]) => `${k} ×${v.length} (e.g. ${v.slice(0, 5).join(', ')})`).join('; ')}`;
}
