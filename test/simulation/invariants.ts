/**
 * The invariants checked after every event (checkAll) and the liveness check at the end
 * of the quiet period. Routing: no serving coordinator routes writes to a replica, at most
 * one node taking writes is routed as writable. At most one node takes writes at any
 * instant (one exception, counted: an unpublished node whose agent is not running, in
 * asynchronous mode; its writes must be measured by a later failover.loss). A deposed
 * node with its agent up stops taking writes within DEPOSED_FENCE_MS. Two nodes taking
 * writes at once, routed or not, is measured by reason (a finding, not an invariant).
 */
import { formatLsn, routingTable, type RoutingTable } from '../../src/core/index.js';
import { agentRunning } from './agent.js';
import { checkFold } from './checks.js';
import { leader, serving, staleness } from './coordinator.js';
import { PROMOTED_GRACE_MS, DEPOSED_FENCE_MS, QUIET_MS } from './params.js';
import { acksWrites, takingWrites } from './postgres.js';
import type { Coord } from './types.js';
import type { World } from './world.js';

export function tableOf(w: World, c: Coord): RoutingTable {
  const s = c.state;
  const k = c.tableKey;
  if (!c.table || !k || k[0] !== s.nodes || k[1] !== s.primary || k[2] !== s.operation) {
    c.table = routingTable(s);
    c.tableKey = [s.nodes, s.primary, s.operation];
  }
  return c.table;
}

export function checkAll(w: World): void {
  let journalMoved = false;
  for (const c of w.coords) {
    if (!c.up) continue;
    if (c.state.logId !== c.checkedLogId) {
      journalMoved = true;
      c.checkedLogId = c.state.logId;
      checkFold(w, c);
    }
  }
  // (while two nodes take writes, on every event: how long each reason lasts is measured)
  if (!journalMoved && w.checkedWorld === w.worldVersion && w.splitSince === null) return;
  w.checkedWorld = w.worldVersion;

  // (1) never two writable primaries, never a replica routed as the primary
  let named: string[] = [];
  for (const c of w.coords) {
    // a paused coordinator serves nothing; on resuming it reads its backlog first
    if (!serving(w, c)) continue;
    const t = tableOf(w, c);
    if (!t.primary) continue;
    const n = w.nodes[t.primary.id];
    if (!n) {
      w.violate('routing-names-unknown', `${c.id} routes writes to unknown node ${t.primary.id}`);
      continue;
    }
    if (n.role !== 'primary') w.violate('routing-names-replica', `${c.id}${staleness(w, c)} routes writes to ${n.id}, which is a replica (${n.proc})`);
    if (!named.includes(n.id)) named.push(n.id);
  }
  named = named.filter((id) => takingWrites(w, w.node(id)));
  if (named.length > 1) w.violate('two-writable-primaries', `routed as writable and taking writes: ${named.join(', ')} (${w.coords.map((c) => c.id + staleness(w, c)).join(', ')})`);

  // (1b) at most one node takes writes at any instant, routed or not. The one exception: an
  // unpublished node whose agent is not running (its whole host frozen, or its agent down
  // with it) in asynchronous mode; every write it takes must fall inside the failover.loss
  // measured later (checkLoss)
  const ackers = w.ids.filter((id) => acksWrites(w, w.node(id)));
  checkOneWriter(w, ackers);

  // two nodes taking writes at once, routed or not, however long (statistics by reason)
  const writers = w.ids.filter((id) => takingWrites(w, w.node(id)));
  if (writers.length > 1 && w.splitSince === null) {
    w.splitSince = w.now;
    w.stats.splitBrainRuns = 1;
  } else if (writers.length <= 1 && w.splitSince !== null) {
    w.stats.splitBrainMs += w.now - w.splitSince;
    w.splitSince = null;
  }
  splitCategory(w, writers.length > 1 ? writers : []);
}

export function checkOneWriter(w: World, ackers: string[]): void {
  const excused = new Set<string>();
  if (ackers.length > 1) {
    const published = w.primaryKey;
    // a node whose agent is not running (published or not: a failover may be on its way
    // to promote another) is the exception; every other one counts
    for (const id of ackers) {
      const a = w.agents[id]!;
      const n = w.node(id);
      if (!w.settings.synchronous && (!a.started || !agentRunning(w, a))) {
        excused.add(id);
        const seg = n.hist[n.hist.length - 1]!.uid;
        const open = w.frozenWriters.get(id);
        if (!open) {
          w.frozenWriters.set(id, { since: w.now, seg, lsn: n.lsn });
          w.stats.hostFrozenExceptions++;
          w.tr(() => `EXCEPTION ${id} takes writes beside ${published ?? 'none'} with its agent not running (host frozen): allowed in async mode, its writes must be measured lost`);
        } else open.lsn = n.lsn;
      }
    }
    const unexcused = ackers.filter((id) => !excused.has(id));
    if (unexcused.length > 1) {
      w.violate('two-nodes-take-writes', `${unexcused.join(' and ')} acknowledge writes at once (published primary ${published ?? 'none'}; ${unexcused.map((id) => `${id}: ${whyWriter(w, id)}`).join('; ')})`);
    }
  }
  for (const [id, ep] of w.frozenWriters) {
    if (excused.has(id)) continue;
    w.frozenWriters.delete(id);
    w.stats.hostFrozenMs += w.now - ep.since;
    w.uncovered.push({ node: id, seg: ep.seg, lsn: ep.lsn, at: w.now });
  }
}

/** why a node may take writes (for a violation's detail) */
export function whyWriter(w: World, id: string): string {
  const a = w.agents[id]!;
  if (id === w.primaryKey) return 'the published primary';
  if (!a.started || !agentRunning(w, a)) return 'agent down';
  if (a.partitioned || w.node(id).isolated) return 'agent cut off from Redis';
  if (a.promotion) return `promoted by its agent for ${a.promotion.operationId} ${w.now - a.promotion.at} ms ago`;
  return `agent up, published ${a.published ? JSON.stringify(a.published) : 'nothing'}`;
}

/**
 * Why a node the leader has not published as the primary still takes writes beside
 * another: time is accounted per reason. 'unexcused' (its agent is up, reaches Redis,
 * and did not promote it lately) lasts until its next probe at most.
 */
export function splitCategory(w: World, writers: string[]): void {
  let cat: string | null = null;
  for (const id of writers) {
    if (id === w.primaryKey) continue;
    const a = w.agents[id]!;
    let c: string;
    if (!a.started || !agentRunning(w, a)) c = 'agent down';
    else if (a.partitioned) c = 'agent cut off from Redis';
    else if (a.promotion !== null && w.now - a.promotion.at < PROMOTED_GRACE_MS) c = 'in its promotion grace';
    else if (w.primaryKey === null) c = 'no primary published';
    else c = 'unexcused';
    // the worst reason of any of them
    if (cat === null || c === 'unexcused') cat = c;
  }
  if (cat !== w.splitCat) {
    if (w.splitCat !== null) w.stats.splitBrainMsBy[w.splitCat] = (w.stats.splitBrainMsBy[w.splitCat] ?? 0) + (w.now - w.splitCatSince);
    w.splitCat = cat;
    w.splitCatSince = w.now;
  }
  if (cat === 'unexcused') {
    w.unexcusedSince ??= w.now;
    if (w.now - w.unexcusedSince > DEPOSED_FENCE_MS && !w.unexcusedReported) {
      w.unexcusedReported = true;
      const who = writers.filter((id) => id !== w.primaryKey).join(', ');
      w.violate('deposed-takes-writes', `${who} took writes for ${w.now - w.unexcusedSince} ms while ${w.primaryKey} is the published primary, its agent up and connected`);
    }
  } else if (w.unexcusedSince !== null) {
    w.stats.splitUnexcusedMaxMs = Math.max(w.stats.splitUnexcusedMaxMs, w.now - w.unexcusedSince);
    w.unexcusedSince = null;
    w.unexcusedReported = false;
  }
}

/** (5) every live coordinator routes writes to the same node, which takes writes */
export function liveOk(w: World): boolean {
  let named: string | null = null;
  for (const c of w.coords) {
    if (!c.up) continue;
    const t = tableOf(w, c);
    if (!t.writable || !t.primary) return false;
    if (named !== null && named !== t.primary.id) return false;
    named = t.primary.id;
  }
  return named !== null && takingWrites(w, w.node(named));
}

/**
 * Liveness is owed only with a majority of nodes running and a way forward that loses
 * no more than maxLagOnFailoverBytes: the journal's primary takes writes, or some node
 * (a replica, or one already promoted from the primary's timeline) is that close to it.
 */
export function livenessExcuse(w: World): string | null {
  const majority = Math.floor(w.ids.length / 2) + 1;
  if (w.ids.filter((id) => w.node(id).proc === 'running').length < majority) return 'no majority of running nodes';
  const journal = w.prefix[w.prefix.length - 1]!;
  const pid = journal.primary;
  const p = pid ? w.nodes[pid] : undefined;
  if (!p) return null;
  if (takingWrites(w, p) || (p.proc === 'running' && p.role === 'primary')) return null;
  // synchronous mode fails over to the journaled synchronous standby only
  if (w.settings.synchronous && !journal.sync.some((id) => w.nodes[id]?.proc === 'running')) return 'synchronous mode and its synchronous standby is down';
  const pseg = p.hist[p.hist.length - 1]!;
  const close = w.ids.some((id) => {
    const n = w.node(id);
    if (n === p || n.proc !== 'running' || n.priority <= 0) return false;
    const k = n.hist.findIndex((x) => x.uid === pseg.uid);
    if (k < 0) return false;
    const reached = k + 1 < n.hist.length ? n.hist[k + 1]!.start : n.lsn;
    return p.lsn - reached <= w.settings.maxLagOnFailoverBytes;
  });
  return close ? null : `no node within maxLagOnFailoverBytes of ${p.id}, which is down`;
}

export function checkLiveness(w: World): void {
  const excuse = livenessExcuse(w);
  if (excuse) {
    w.count(w.stats.livenessExcused, excuse.replace(/pg\d+/g, 'the primary'));
    w.tr(() => `liveness excused: ${excuse}`);
    return;
  }
  w.stats.livenessChecked++;
  const l = leader(w);
  const why = l ? (l.state.blocked ?? `operation ${l.state.operation?.id ?? 'none'}, primary ${l.state.primary ?? 'none'}`) : 'no leader';
  const nodes = w.ids.map((id) => {
    const n = w.node(id);
    return `${id}:${n.role}/${n.proc}${n.readOnly ? '/ro' : ''}/tl${w.tl(n)}/${formatLsn(n.lsn)}${n.upstream ? '→' + n.upstream : ''}${n.streaming ? '+' : ''}`;
  });
  w.violate('liveness', `not writable ${QUIET_MS} ms after the faults stopped (${why}); nodes ${nodes.join(' ')}`);
}
