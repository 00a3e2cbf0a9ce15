/**
 * Clusters whose engine elects its own primary (MongoDB replica sets). Switchyard never
 * promotes there: the soft layer folds every member's observation with the engine's own
 * pure fold (`foldMongo`: SDAM fencing by (electionId, setVersion), facts with evidence),
 * and the leader journals each fact that is news to the journal (`set.changed`), which
 * adopts the primary the set elected. A member claiming primary with an older election is
 * a stale primary: journaled, never adopted, never routed. Pure: no I/O, no clock.
 *
 *   obs ──▶ foldMongo (soft: set view + pending facts) ──▶ decide: set.changed ──▶ evolve: primary
 */
import type { JournalDraft, JournalOf } from '../events/journal.js';
import type { Observation } from '../events/observation.js';
import { memberReport } from '../engines/mongo/observation.js';
import { compareElection, foldMongo, initialMongoState, mongoRouting, type MongoFact, type MongoSetState } from '../engines/mongo/topology.js';
import type { ClusterState, HistoryItem, NodeInfo } from './state.js';

/** The set as the journal knows it. */
export interface JournalSet {
  setName: string | null;
  /** the elected primary's address (host:port) */
  primary: string | null;
  electionId: string | null;
  setVersion: number | null;
  term: number | null;
  /** the members, by the newest primary's word */
  hosts: readonly string[];
  /** the newest primary the journal adopted, kept across its step-down (the `from` of the next election) */
  lastPrimary?: string | null;
  /** keys of one-off facts already journaled (stale primaries, stuck members, set-name mismatches), newest last */
  seen: readonly string[];
}

/** A fact the soft fold found, with when its observation arrived. */
export interface PendingFact {
  fact: MongoFact;
  at: number;
}

/** The soft layer's view of the set: the fold of the members' newest observations, and the facts not yet journaled. */
export interface SetView {
  set: MongoSetState;
  facts: readonly PendingFact[];
}

const SEEN_LIMIT = 64;
const PENDING_LIMIT = 32;

export function initialJournalSet(): JournalSet {
  return { setName: null, primary: null, electionId: null, setVersion: null, term: null, hosts: [], seen: [] };
}

/** The dedupe key of a one-off fact (null for facts judged against the journal's primary and hosts). */
export function factKey(f: MongoFact, at: number): string | null {
  switch (f.type) {
    case 'stale-primary':
      return `stale:${f.member}:${String(f.electionId)}:${String(f.setVersion)}`;
    case 'member-stuck':
      return `stuck:${f.member}:${f.state}:${String(at - f.forMs)}`;
    case 'set-name-mismatch':
      return `mismatch:${f.member}:${String(f.got)}`;
    default:
      return null;
  }
}

/** Is the fact news to the journal? An older election, a step-down of a member no longer primary, a membership already known are not. */
export function factIsNews(j: JournalSet, p: PendingFact): boolean {
  const f = p.fact;
  switch (f.type) {
    case 'election': {
      const cmp = compareElection(f.electionId, f.setVersion, j.electionId, j.setVersion);
      return cmp > 0 || (cmp === 0 && f.primary !== j.primary);
    }
    case 'step-down':
      return j.primary === f.member;
    case 'member-added':
      return !j.hosts.includes(f.member);
    case 'member-removed':
      return j.hosts.includes(f.member);
    default:
      return !j.seen.includes(factKey(f, p.at) ?? '');
  }
}

/** The journal's set after a `set.changed` entry (or a draft of one). */
export function advanceSet(j: JournalSet, e: Pick<JournalOf<'set.changed'>, 'fact' | 'member' | 'electionId' | 'setVersion' | 'term' | 'hosts' | 'key' | 'setName'>): JournalSet {
  switch (e.fact) {
    case 'election':
      return { ...j, primary: e.member, lastPrimary: e.member, electionId: e.electionId ?? null, setVersion: e.setVersion ?? null, term: e.term ?? j.term, hosts: e.hosts ?? j.hosts, setName: e.setName ?? j.setName };
    case 'step-down':
      return j.primary === e.member ? { ...j, primary: null } : j;
    case 'member-added':
      return j.hosts.includes(e.member) ? j : { ...j, hosts: [...j.hosts, e.member].sort() };
    case 'member-removed':
      return { ...j, hosts: j.hosts.filter((h) => h !== e.member) };
    default:
      return e.key && !j.seen.includes(e.key) ? { ...j, seen: [...j.seen, e.key].slice(-SEEN_LIMIT) } : j;
  }
}

/** The node at a member's address, if any: registered, or registering in this pass (its agent reports). */
export function nodeAt(state: Pick<ClusterState, 'nodes' | 'soft'>, address: string): string | null {
  for (const n of Object.values(state.nodes)) if (`${n.host}:${String(n.port)}` === address) return n.id;
  for (const s of Object.values(state.soft)) if (`${s.obs.host}:${String(s.obs.port)}` === address) return s.obs.node;
  return null;
}

/** A fresh soft view, seeded from the journal (a restarted coordinator must not take a stale primary's election for the newest). */
function seededView(j: JournalSet): SetView {
  return { set: { ...initialMongoState(j.setName), maxElectionId: j.electionId, maxSetVersion: j.setVersion, primary: j.primary, hosts: [...j.hosts] }, facts: [] };
}

/** Fold one (fresh) observation into the soft view; the facts that are news to the journal wait for the leader. */
export function observeSet(state: ClusterState, obs: Observation, receivedAt: number): SetView {
  const j = state.replicaSet ?? initialJournalSet();
  const view = state.setView ?? seededView(j);
  const { state: set, facts } = foldMongo(view.set, memberReport(obs, receivedAt));
  const news = facts.map((fact) => ({ fact, at: receivedAt })).filter((p) => factIsNews(j, p));
  return { set, facts: news.length > 0 ? [...view.facts, ...news].slice(-PENDING_LIMIT) : view.facts };
}

/** The pending facts still news once the journal moved on. */
export function prunePending(view: SetView | undefined, j: JournalSet): SetView | undefined {
  if (!view) return view;
  const facts = view.facts.filter((p) => factIsNews(j, p));
  return facts.length === view.facts.length ? view : { ...view, facts };
}

/** The journal drafts for the pending facts that are news, in order (each judged against the journal as the ones before it leave it). */
export function setDrafts(state: ClusterState): JournalDraft[] {
  const view = state.setView;
  if (!view) return [];
  let j = state.replicaSet ?? initialJournalSet();
  const out: JournalDraft[] = [];
  for (const p of view.facts) {
    if (!factIsNews(j, p)) continue;
    const d = draftOf(state, view.set, p, j, out.filter((x) => x.type === 'set.changed' && x.operationId).length);
    out.push(d);
    j = advanceSet(j, d);
  }
  return out;
}

/** Seconds and increment of a position "<term>:<seconds>.<increment>" (null when it is not one). */
function timestampOf(position: string | null | undefined): [number, number] | null {
  const m = /^-?\d+:(\d+)\.(\d+)$/.exec(position ?? '');
  return m ? [Number(m[1]), Number(m[2])] : null;
}

/**
 * An election that changes the set's primary by the set's own doing (a primary died or stepped
 * down) is a history item: a failover with its own operation id (fo-N, one counter with the
 * leader's operations), from the former primary, since it was last seen as primary (its last
 * report as primary, or the moment it left that state), with why. Not when switchyard steered
 * it (a running switchover to that member) nor when the journal already has it as primary
 * (a switchover's promotion), nor the first primary the journal learns of.
 */
function electionItem(state: ClusterState, set: MongoSetState, p: PendingFact & { fact: { type: 'election' } }, j: JournalSet, node: string | null, earlier: number): { operationId: string; since: number; reason: string } | null {
  const f = p.fact;
  const previous = f.previous ?? j.primary ?? j.lastPrimary ?? null;
  if (!previous || previous === f.primary) return null;
  if (node && (node === state.primary || state.operation?.to === node)) return null;
  const old = set.members[previous];
  const lastAsPrimary = !old ? p.at : old.state === 'PRIMARY' || old.state === 'UNKNOWN' ? old.lastUpdateTime : old.since;
  const since = Math.min(p.at, lastAsPrimary);
  const name = nodeAt(state, previous) ?? previous;
  const why = !old
    ? `${name} no longer reported`
    : old.state === 'PRIMARY' || old.state === 'UNKNOWN'
      ? `${name} superseded before it reported otherwise`
      : old.state === 'UNREACHABLE'
        ? `${name} unreachable`
        : `${name} stepped down (${old.state})`;
  const a = timestampOf(old?.position);
  const b = timestampOf(set.members[f.primary]?.position);
  const ahead = a && b && (a[0] > b[0] || (a[0] === b[0] && a[1] > b[1]));
  const rollback = ahead ? `; ${name}'s optime ${String(old?.position)} was ahead of ${nodeAt(state, f.primary) ?? f.primary}'s ${String(set.members[f.primary]?.position)}: its unreplicated writes are rolled back when it rejoins` : '';
  return { operationId: `fo-${String(state.opSeq + 1 + earlier)}`, since, reason: `elected by the set: ${why}, term ${String(f.term)}${rollback}`.slice(0, 500) };
}

function draftOf(state: ClusterState, set: MongoSetState, p: PendingFact, j: JournalSet, earlier: number): Extract<JournalDraft, { type: 'set.changed' }> {
  const f = p.fact;
  const base = { type: 'set.changed' as const, fact: f.type, member: f.type === 'election' ? f.primary : f.member, evidence: f.evidence.slice(0, 1000) };
  const node = nodeAt(state, base.member);
  const key = factKey(f, p.at);
  switch (f.type) {
    case 'election':
      return { ...base, node, ...(electionItem(state, set, { ...p, fact: f }, j, node, earlier) ?? {}), previous: f.previous, electionId: f.electionId, setVersion: f.setVersion, term: f.term, hosts: [...set.hosts].slice(0, 64), ...(set.setName ? { setName: set.setName } : {}) };
    case 'step-down':
      return { ...base, node, state: f.state.slice(0, 32) };
    case 'stale-primary':
      return { ...base, node, electionId: f.electionId, setVersion: f.setVersion, ...(key ? { key } : {}) };
    case 'member-added':
    case 'member-removed':
      return { ...base, node, setVersion: f.setVersion };
    case 'member-stuck':
      return { ...base, node, state: f.state.slice(0, 32), forMs: f.forMs, ...(key ? { key } : {}) };
    case 'set-name-mismatch':
      return { ...base, node, ...(key ? { key } : {}) };
  }
}

/** The history item of an election the set held by itself (one the leader gave an operation id). */
export function electionHistoryItem(state: ClusterState, e: JournalOf<'set.changed'>): HistoryItem | null {
  if (e.fact !== 'election' || !e.operationId) return null;
  const j = state.replicaSet ?? initialJournalSet();
  const previous = e.previous ?? j.primary ?? j.lastPrimary ?? null;
  const since = Math.min(e.at, e.since ?? e.at);
  return {
    id: e.operationId,
    kind: 'failover',
    from: previous ? (nodeAt(state, previous) ?? previous) : null,
    to: e.node ?? e.member,
    reason: e.reason ?? 'elected by the set',
    startedAt: new Date(since).toISOString(),
    finishedAt: new Date(e.at).toISOString(),
    durationMs: e.at - since,
    lostBytes: 0,
    outcome: 'success',
    forkLsn: null,
    lossMeasured: false,
  };
}

/** evolve's part: the journal adopts what the set did (an election names the primary; a step-down clears it). */
export function applySetChanged(state: ClusterState, e: JournalOf<'set.changed'>): ClusterState {
  const j = advanceSet(state.replicaSet ?? initialJournalSet(), e);
  let nodes = state.nodes;
  let primary = state.primary;
  const set = (id: string, patch: Partial<NodeInfo>): void => {
    const n = nodes[id];
    if (n) nodes = { ...nodes, [id]: { ...n, ...patch } };
  };
  const node = e.node && nodes[e.node] ? e.node : null;
  if (e.fact === 'election') {
    if (primary && primary !== node) set(primary, { role: 'replica', healthy: false, healthReason: `replaced by ${e.member} (election)` });
    if (node) set(node, { role: 'primary', healthy: true, healthReason: 'elected', promotedAt: e.at, pending: null });
    primary = node;
  } else if (e.fact === 'step-down' && node && primary === node) {
    set(node, { role: 'replica' });
    primary = null;
  }
  return { ...state, nodes, primary, replicaSet: j, setView: prunePending(state.setView, j), blocked: e.fact === 'election' ? null : state.blocked };
}

/** The staleness formula's heartbeat when no member says its probe interval: the agents' default. */
export const DEFAULT_HEARTBEAT_MS = 250;

export interface SetRoute {
  /** ISO time of the member's last write, as it reports it */
  lastWriteDate: string | null;
  /** server-selection staleness, ms (0 for the primary); null when the set view does not route it */
  stalenessMs: number | null;
}

/**
 * The routing projection's part for a set: each routed member's lastWriteDate and its
 * staleness by the server-selection formula (src/engines/mongo/select.ts), with the
 * members' own probe interval as heartbeatFrequencyMS and the coordinator's receive times
 * as lastUpdateTime (passed in through the fold). A stale primary is not among them.
 */
export function setRoutes(state: ClusterState): { setName: string | null; byAddress: Map<string, SetRoute> } | null {
  const view = state.setView;
  if (!view) return null;
  let heartbeat = 0;
  for (const s of Object.values(state.soft)) heartbeat = Math.max(heartbeat, s.obs.mongo?.probeIntervalMs ?? 0);
  const r = mongoRouting(view.set, heartbeat || DEFAULT_HEARTBEAT_MS);
  const iso = (ms: number | null): string | null => (ms !== null && ms > 0 ? new Date(ms).toISOString() : null);
  const byAddress = new Map<string, SetRoute>();
  if (r.primary) byAddress.set(r.primary.address, { lastWriteDate: iso(r.primary.lastWriteDate), stalenessMs: 0 });
  // (members probed at different moments can come out a little below zero: shown as 0, fresh)
  for (const s of r.secondaries) byAddress.set(s.address, { lastWriteDate: iso(s.lastWriteDate), stalenessMs: Math.max(0, s.stalenessMs) });
  return { setName: r.setName ?? state.replicaSet?.setName ?? null, byAddress };
}
