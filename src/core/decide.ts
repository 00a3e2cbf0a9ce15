/**
 * decide(state, now, settings) → decisions. Pure: the leader's shell passes `now` in,
 * appends the journal drafts (fenced), and sends the jobs, in order.
 *
 * Level-triggered: each pass re-reads the whole state and asks what should be true
 * (registered nodes, journaled health, one healthy primary, replicas following it),
 * so a lost or duplicated message is corrected on a later pass.
 *
 * The rules live in `./rules/`, one module each; RULES lists them in the order a pass
 * runs them. A rule that returns true ends the pass (the next pass judges what it did).
 */
import type { Settings } from './settings.js';
import type { ClusterState } from './state.js';
import { bootstrapRule } from './rules/bootstrap.js';
import { commandsRule } from './rules/commands.js';
import { failureRule, holdRule } from './rules/failure.js';
import { healthRule } from './rules/health.js';
import { lossRule } from './rules/loss.js';
import { operationRule } from './rules/operation.js';
import type { Decision, Rule } from './rules/pass.js';
import { followRule, unfenceRule } from './rules/reconcile.js';
import { registrationRule } from './rules/registration.js';
import { NOT_FOR_SETS, setRule } from './rules/set.js';
import { syncRule } from './rules/sync.js';
import { electsItself } from '../engines/traits.js';

export { addressOf, evidenceOf, isSilent, leaseMs, OUT_OF_ROTATION, peerViews, type Decision, type JobAction, type JobSpec, type Pass, type Rule, type Verdict } from './rules/pass.js';
export { observedHealth, reasonNewsworthy } from './rules/health.js';
export { primaryVerdict, promotionInDoubt, type PrimaryVerdict } from './rules/failure.js';
export { chooseCandidate, type CandidateChoice } from './rules/candidate.js';
export { fenceDone, fenceNeeded } from './rules/fencing.js';

/** The rules of one pass, in order. */
export const RULES: ReadonlyArray<{ name: string; rule: Rule }> = [
  // every node that reports is known, with its current address
  { name: 'registration', rule: registrationRule },
  // a set that elects itself: journal what it did (elections, step-downs, members), adopt its primary
  { name: 'set', rule: setRule },
  // adopt the one node that reports itself primary (stops the pass when it does)
  { name: 'bootstrap', rule: bootstrapRule },
  // an operation in flight: see it through (stops the pass when it concludes)
  { name: 'operation', rule: operationRule },
  // health, as the routing table will show it
  { name: 'health', rule: healthRule },
  // what a finished failover lost, once the old primary's end of WAL is known
  { name: 'loss', rule: lossRule },
  // operators' commands, oldest first (stops the pass when one changed the state)
  { name: 'commands', rule: commandsRule },
  // an operation in flight, or paused: nothing automatic starts (a blocked outage is journaled)
  { name: 'hold', rule: holdRule },
  // has the primary failed? restart it, fail over, or journal why not (stops the pass)
  { name: 'failure', rule: failureRule },
  // a self-fenced primary that is still the primary takes writes again …
  { name: 'unfence', rule: unfenceRule },
  // … synchronous mode keeps its synchronous standbys …
  { name: 'sync', rule: syncRule },
  // … and every other node is a replica of the primary
  { name: 'follow', rule: followRule },
];

export function decide(state: ClusterState, now: number, s: Settings): Decision[] {
  const out: Decision[] = [];
  const pass = { state, now, s, out };
  // (a set that elects itself: nothing is promoted, fenced or re-pointed, see NOT_FOR_SETS)
  const sets = electsItself(state.engine);
  for (const { name, rule } of RULES) {
    if (sets && NOT_FOR_SETS.has(name)) continue;
    if (rule(pass) === true) break;
  }
  return out;
}
