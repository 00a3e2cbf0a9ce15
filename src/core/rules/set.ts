/**
 * Rule: the set (engines that elect their own primary: MongoDB). Journal each change the
 * members' reports show that is news to the journal (`set.changed`: an election, a
 * step-down, a stale primary, a member added, removed or stuck), with its evidence; the
 * journal adopts the elected primary from it. No promotion, ever. Pure.
 */
import { electsItself } from '../../engines/traits.js';
import { setDrafts } from '../set.js';
import { append, type Pass } from './pass.js';

/** Stops the pass once it journaled a change of primary: the rest is judged against the new one. */
export function setRule({ state, out }: Pass): boolean {
  if (!electsItself(state.engine)) return false;
  const drafts = setDrafts(state);
  for (const d of drafts) append(out, d);
  return drafts.some((d) => d.type === 'set.changed' && (d.fact === 'election' || d.fact === 'step-down'));
}

/** The rules that promote, fail over, fence or re-point replicas: never for a set that elects itself. */
export const NOT_FOR_SETS: ReadonlySet<string> = new Set(['bootstrap', 'hold', 'failure', 'unfence', 'sync', 'follow']);
