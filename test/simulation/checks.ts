/**
 * Invariants checked on the journal: the fold (an incremental fold equals a fold from
 * scratch; epochs never go back), every failover.started (evidence, candidate choice),
 * every failover.loss (exact against the model's truth), and in synchronous mode every
 * promotion.succeeded (no acknowledged commit lost).
 */
import { fold, formatLsn, journalLayer, lsnDiff, parseLsn, initialState, type ClusterState, type CoreEvent } from '../../src/core/index.js';
import type { JournalOf } from '../../src/events/journal.js';
import { CLUSTER } from './params.js';
import type { Coord, Segment } from './types.js';
import type { World } from './world.js';

/** (4) the incrementally folded journal layer equals a fold of the journal from scratch */
export function checkFold(w: World, c: Coord): void {
  const idx = c.state.logId === '0-0' ? 0 : w.idIndex.get(c.state.logId);
  if (idx === undefined) {
    w.violate('fold-determinism', `${c.id} folded an id that is not in the journal: ${c.state.logId}`);
    return;
  }
  const diff = firstDiff(journalCore(w.prefix[idx]!), journalCore(c.state), '');
  if (diff) w.violate('fold-determinism', `${c.id} at ${c.state.logId}: ${diff}`);
}

/** (2) and (3), against the state the leader decided on */
export function checkFailoverStarted(w: World, c: Coord, e: JournalOf<'failover.started'>, before: ClusterState, now: number): void {
  if (e.evidence.length === 0) w.violate('failover-evidence', `${e.operationId} has no evidence`);
  else if (e.from !== null && !e.evidence.some((x) => x.node === e.from)) w.violate('failover-evidence', `${e.operationId}: no evidence about the old primary ${e.from}`);
  if (e.manual) return; // the operator chose (chooseCandidate still applies its rules to the one node)
  const s = w.settings;
  const oldLsn = e.from ? (before.soft[e.from]?.lastLsn ?? null) : null;
  // synchronous mode: only the journaled synchronous standby, which holds every acknowledged commit
  const syncOnly = s.synchronous ? before.sync : null;
  const view = (id: string): { lsn: string | null; tl: number; lag: number | null } | null => {
    const soft = before.soft[id];
    const n = before.nodes[id];
    if (!soft || !n || now - soft.receivedAt > s.agentTimeoutMs) return null;
    if (syncOnly && !syncOnly.includes(id)) return null;
    const o = soft.obs;
    // a replica, or a node that a failed operation from this primary promoted after all
    const late = o.role === 'primary' && before.history.some((h) => h.outcome === 'failed' && h.from === e.from && h.to === id);
    if (n.priority <= 0 || !o.reachable || o.process === 'dead' || o.process === 'stopped' || (o.role !== 'replica' && !late)) return null;
    const lsn = o.lsn ?? o.replayLsn;
    return { lsn, tl: o.timeline ?? 0, lag: lsnDiff(oldLsn, lsn) };
  };
  const chosen = view(e.to);
  if (!chosen) {
    w.violate('failover-candidate', `${e.operationId}: ${e.to} was not an eligible candidate as ${c.id} saw it`);
    return;
  }
  const within = (v: { lsn: string | null; lag: number | null }): boolean => !!syncOnly || oldLsn === null || (v.lsn !== null && (v.lag ?? 0) <= s.maxLagOnFailoverBytes);
  if (!within(chosen)) w.violate('failover-lag', `${e.operationId}: ${e.to} is ${chosen.lag ?? '?'} bytes behind ${e.from} (limit ${s.maxLagOnFailoverBytes})`);
  for (const id of Object.keys(before.nodes)) {
    if (id === e.from || id === e.to) continue;
    const v = view(id);
    if (!v || !within(v)) continue;
    const better = v.tl > chosen.tl || (v.tl === chosen.tl && (parseLsn(v.lsn) ?? 0) > (parseLsn(chosen.lsn) ?? 0));
    if (better) w.violate('failover-candidate', `${e.operationId}: chose ${e.to} (tl ${chosen.tl}, ${chosen.lsn}) over ${id} (tl ${v.tl}, ${v.lsn})`);
  }
  // in truth: how far behind the old primary's real position the candidate is
  if (e.from) {
    const from = w.nodes[e.from];
    const to = w.nodes[e.to];
    if (from && to && !syncOnly && from.lsn - to.lsn > s.maxLagOnFailoverBytes) {
      w.stats.truthLagExceeded++;
      if (oldLsn === null) w.stats.truthLagExceededBlind++;
      w.tr(() => `note: ${e.to} is ${from.lsn - to.lsn} bytes behind ${e.from} in truth (leader knew ${oldLsn ?? 'no LSN'} for ${e.from})`);
    }
  }
}

/**
 * (7) A measured loss (failover.loss) is what the old primary had on its timeline beyond
 * the point where the new primary's timeline forked off it — when the new primary was on
 * the old primary's line. A new primary from another branch (a replica left on the
 * timeline of a primary deposed earlier) forked off it further back than its own fork
 * point, which is all the measurement knows: counted, not checked.
 */
export function checkLoss(w: World, e: JournalOf<'failover.loss'>): void {
  w.stats.lossMeasured++;
  const p = w.promotions.get(e.operationId);
  if (!p || p.from !== e.node) return; // promoted by a job the sim did not attribute (cannot happen for a success with a fork point)
  const a = w.node(p.from);
  const seg = p.fromHist[p.fromHist.length - 1]!.uid;
  // promoted again after that failover (by a job of an operation that was over): its end
  // of WAL is of that newer timeline, whose writes the rewind discarded too
  const read = w.walEndHist.get(`${a.id}:${e.walEnd}`);
  const k = read ? read.findIndex((x) => x.uid === seg) : -1;
  if (read && k >= 0 && read.slice(k + 1).some((x) => w.promotedSeg.get(x.uid) === a.id)) {
    w.stats.lossPromotedAgain++;
    w.tr(() => `note: ${e.operationId}: ${a.id} was promoted again since; ${e.lostBytes} bytes journaled lost`);
    return;
  }
  const end = w.segEnd.get(`${a.id}:${seg}`) ?? (a.hist[a.hist.length - 1]!.uid === seg ? a.lsn : null);
  if (end === null) return;
  const fork = forkPoint(p.fromHist, end, p.hist, p.lsn);
  const truth = Math.max(0, end - fork);
  if (fork !== p.lsn) {
    w.stats.lossOffBranch++;
    w.tr(() => `note: ${e.operationId} promoted a node off ${a.id}'s line: ${truth} bytes lost, ${e.lostBytes} journaled`);
    return;
  }
  // exception writes on that segment up to its end are inside the measured loss
  for (let i = w.uncovered.length - 1; i >= 0; i--) {
    const u = w.uncovered[i]!;
    if (u.node === a.id && u.seg === seg && u.lsn <= end && truth === e.lostBytes) {
      w.uncovered.splice(i, 1);
      w.stats.hostFrozenCovered++;
    }
  }
  if (truth !== e.lostBytes) {
    w.violate('failover-loss', `${e.operationId}: journaled ${e.lostBytes} bytes lost (walEnd ${e.walEnd}, fork ${e.forkLsn}), but ${a.id} had ${truth} bytes beyond the fork (end ${formatLsn(end)}, fork ${formatLsn(fork)})`);
  }
}

/** (6) synchronous mode: the journal's new primary holds every commit acknowledged on the timeline it left */
export function checkNoAcknowledgedCommitLost(w: World, id: string): void {
  const n = w.nodes[id];
  if (!n || n.role !== 'primary' || n.hist.length < 2) return;
  const cur = n.hist[n.hist.length - 1]!;
  const prev = n.hist[n.hist.length - 2]!;
  const acked = w.acked.get(prev.uid) ?? -1;
  if (cur.start < acked) {
    w.violate('sync-acknowledged-commit-lost', `${id} left timeline ${prev.tl} at ${formatLsn(cur.start)}, but commits up to ${formatLsn(acked)} were acknowledged on it`);
  }
}

export function finalChecks(w: World): void {
  // every coordinator's whole journal layer, against the fold of the same prefix
  for (const c of w.coords) {
    if (!c.up) continue;
    const idx = c.state.logId === '0-0' ? 0 : w.idIndex.get(c.state.logId);
    const d = idx === undefined ? 'unknown id' : firstDiff(journalLayer(w.prefix[idx]!), journalLayer(c.state), '');
    if (d) w.violate('fold-determinism', `${c.id} at ${c.state.logId}: ${d}`);
  }
  // a literal re-fold of the whole journal from scratch agrees with the memoized prefix
  const all = fold(
    initialState(CLUSTER),
    w.journal.map((r): CoreEvent => ({ kind: 'journal', id: r.id, entry: r.entry })),
  );
  const diff = firstDiff(journalLayer(w.prefix[w.prefix.length - 1]!), journalLayer(all), '');
  if (diff) w.violate('fold-determinism', `re-fold from scratch differs: ${diff}`);
  // the fence: epochs never go back in the journal
  let epoch = 0;
  for (const r of w.journal) {
    if (r.entry.epoch < epoch) w.violate('fence', `${r.id} carries epoch ${r.entry.epoch} after epoch ${epoch}`);
    epoch = Math.max(epoch, r.entry.epoch);
  }
}

/**
 * Where history b (a node at lsnB on it) parts from history a (a node that reached endA
 * on it): the end of their common WAL.
 */
export function forkPoint(a: Segment[], endA: number, b: Segment[], lsnB: number): number {
  let k = 0;
  while (k < a.length && k < b.length && a[k]!.uid === b[k]!.uid) k++;
  if (k === b.length) return Math.min(lsnB, a[k]?.start ?? endA);
  if (k === a.length) return Math.min(endA, b[k]!.start);
  return Math.min(a[k]!.start, b[k]!.start);
}

/** What is checked after every journal entry (the whole layer at the end of a run): cheap enough to do always. */
export function journalCore(s: ClusterState): Record<string, unknown> {
  const last = s.history.length ? s.history[s.history.length - 1] : null;
  return {
    nodes: s.nodes,
    primary: s.primary,
    operation: s.operation ? { ...s.operation, promoteResult: null, demoteResult: null, fenceResult: null } : null,
    paused: s.paused,
    generation: s.generation,
    epoch: s.epoch,
    opSeq: s.opSeq,
    lastFailoverAt: s.lastFailoverAt,
    blocked: s.blocked,
    history: [s.history.length, last],
  };
}

export function firstDiff(a: unknown, b: unknown, path: string): string | null {
  if (a === b) return null;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return `${path || '/'}: ${JSON.stringify(a)} ≠ ${JSON.stringify(b)}`;
  if (Array.isArray(a) !== Array.isArray(b)) return `${path}: array vs object`;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  for (const k of ka.length >= kb.length ? ka : kb) {
    const x = (a as Record<string, unknown>)[k];
    const y = (b as Record<string, unknown>)[k];
    if (x === y) continue;
    const d = firstDiff(x, y, `${path}/${k}`);
    if (d) return d;
  }
  if (ka.length === kb.length) return null;
  return `${path}: keys ${ka.join(',')} ≠ ${kb.join(',')}`;
}

