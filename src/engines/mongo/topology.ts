/**
 * The fold of a MongoDB replica set, pure: member observations in (each with the time the
 * observer received it), the set's state and journal-worthy facts out. Stale primaries are
 * fenced by (electionId, setVersion) as the drivers' SDAM does (electionId first, then
 * setVersion: the rule for servers of wire version 17 and later); a fenced member is never
 * routed. The routing projection computes each secondary's staleness with the
 * server-selection formula (./select.ts). No I/O, no clock.
 */
import type { MongoObservation } from './probe.js';
import { staleness, type ServerDescription, type ServerType, type TopologyDescription } from './select.js';

export interface MemberRecord {
  address: string;
  /** as last observed: PRIMARY, SECONDARY, RECOVERING, ROLLBACK, ARBITER, ..., or UNREACHABLE */
  state: string;
  /** claims primary but its (electionId, setVersion) is older than the set's: not routed */
  stale: boolean;
  electionId: string | null;
  setVersion: number | null;
  term: number | null;
  position: string | null;
  lastWriteDate: number | null;
  /** when the observer received the last observation (its clock, ms) */
  lastUpdateTime: number;
  /** since when the member is in `state` */
  since: number;
  /** a stuck-in-RECOVERING/ROLLBACK fact was journaled for the current spell */
  stuckReported: boolean;
  tags: Record<string, string>;
  rttMs: number;
}

export interface MongoSetState {
  setName: string | null;
  maxElectionId: string | null;
  maxSetVersion: number | null;
  primary: string | null;
  /** the set's members per the newest primary's hello (hosts, passives, arbiters) */
  hosts: string[];
  members: Record<string, MemberRecord>;
}

export type MongoFact =
  | { type: 'election'; primary: string; previous: string | null; electionId: string | null; setVersion: number | null; term: number | null; evidence: string }
  | { type: 'step-down'; member: string; state: string; evidence: string }
  | { type: 'stale-primary'; member: string; electionId: string | null; setVersion: number | null; maxElectionId: string | null; maxSetVersion: number | null; evidence: string }
  | { type: 'member-added' | 'member-removed'; member: string; setVersion: number | null; evidence: string }
  | { type: 'member-stuck'; member: string; state: string; forMs: number; evidence: string }
  | { type: 'set-name-mismatch'; member: string; expected: string; got: string | null; evidence: string };

/** One member's report: its address, when it was received, and what the probe saw (null: unreachable). */
export interface MemberReport {
  address: string;
  at: number;
  obs: MongoObservation | null;
  rttMs?: number;
}

export interface FoldOptions {
  /** a member in RECOVERING or ROLLBACK this long is journaled as stuck (default 60 s) */
  stuckAfterMs?: number;
}

export function initialMongoState(setName: string | null = null): MongoSetState {
  return { setName, maxElectionId: null, maxSetVersion: null, primary: null, hosts: [], members: {} };
}

/** < 0 when (e1, v1) is older than (e2, v2); nulls are oldest. electionId first, then setVersion. */
export function compareElection(e1: string | null, v1: number | null, e2: string | null, v2: number | null): number {
  if (e1 !== e2) {
    if (e1 === null) return -1;
    if (e2 === null) return 1;
    return e1 < e2 ? -1 : 1;
  }
  return (v1 ?? -1) - (v2 ?? -1);
}

const STUCK_STATES = new Set(['RECOVERING', 'ROLLBACK']);

/** Folds one report into the state; returns the next state and the facts to journal. */
export function foldMongo(prev: MongoSetState, r: MemberReport, opts: FoldOptions = {}): { state: MongoSetState; facts: MongoFact[] } {
  const stuckAfterMs = opts.stuckAfterMs ?? 60_000;
  const facts: MongoFact[] = [];
  const state: MongoSetState = { ...prev, hosts: [...prev.hosts], members: { ...prev.members } };
  const old = prev.members[r.address];
  const o = r.obs;

  if (o && state.setName !== null && o.setName !== state.setName) {
    facts.push({ type: 'set-name-mismatch', member: r.address, expected: state.setName, got: o.setName, evidence: `hello.setName ${JSON.stringify(o.setName)}` });
    return { state, facts };
  }
  if (o && state.setName === null) state.setName = o.setName;

  const newState = o ? o.state : 'UNREACHABLE';
  const rec: MemberRecord = {
    address: r.address,
    state: newState,
    stale: false,
    electionId: o?.electionId ?? null,
    setVersion: o?.setVersion ?? old?.setVersion ?? null,
    term: o?.term ?? old?.term ?? null,
    position: o?.position ?? old?.position ?? null,
    lastWriteDate: o?.lastWriteDate ?? old?.lastWriteDate ?? null,
    lastUpdateTime: r.at,
    since: old && old.state === newState ? old.since : r.at,
    stuckReported: old && old.state === newState ? old.stuckReported : false,
    tags: o?.tags ?? old?.tags ?? {},
    rttMs: r.rttMs ?? old?.rttMs ?? 0,
  };

  if (o?.isWritablePrimary) {
    const cmp = compareElection(o.electionId, o.setVersion, state.maxElectionId, state.maxSetVersion);
    if (cmp < 0) {
      rec.stale = true;
      if (!old?.stale) {
        facts.push({
          type: 'stale-primary',
          member: r.address,
          electionId: o.electionId,
          setVersion: o.setVersion,
          maxElectionId: state.maxElectionId,
          maxSetVersion: state.maxSetVersion,
          evidence: `hello: isWritablePrimary with (electionId ${String(o.electionId)}, setVersion ${String(o.setVersion)}) older than (${String(state.maxElectionId)}, ${String(state.maxSetVersion)}); not routed`,
        });
      }
    } else {
      const electionChanged = o.electionId !== state.maxElectionId;
      state.maxElectionId = o.electionId;
      state.maxSetVersion = o.setVersion;
      if (state.primary !== r.address || electionChanged) {
        const previous = state.primary;
        if (previous !== r.address || electionChanged) {
          facts.push({
            type: 'election',
            primary: r.address,
            previous: previous === r.address ? null : previous,
            electionId: o.electionId,
            setVersion: o.setVersion,
            term: o.term,
            evidence: `hello: isWritablePrimary, electionId ${String(o.electionId)}, term ${String(o.term)}, setVersion ${String(o.setVersion)}`,
          });
        }
        // the former primary is no longer routed as one until it says otherwise
        if (previous && previous !== r.address) {
          const p = state.members[previous];
          if (p && p.state === 'PRIMARY') state.members[previous] = { ...p, state: 'UNKNOWN', since: r.at };
        }
        state.primary = r.address;
      }
      // membership, by the primary's word
      const hosts = [...new Set([...o.hosts, ...o.passives, ...o.arbiters])].sort();
      if (prev.hosts.length > 0) {
        for (const h of hosts) if (!prev.hosts.includes(h)) facts.push({ type: 'member-added', member: h, setVersion: o.setVersion, evidence: `primary ${r.address} hello lists ${h} (setVersion ${String(o.setVersion)})` });
        for (const h of prev.hosts) if (!hosts.includes(h)) facts.push({ type: 'member-removed', member: h, setVersion: o.setVersion, evidence: `primary ${r.address} hello no longer lists ${h} (setVersion ${String(o.setVersion)})` });
      }
      state.hosts = hosts;
      for (const h of prev.hosts) if (!hosts.includes(h) && h !== r.address) delete state.members[h];
    }
  } else if (state.primary === r.address) {
    facts.push({
      type: 'step-down',
      member: r.address,
      state: newState,
      evidence: o ? `hello: isWritablePrimary false, state ${newState}${o.primary ? `, primary ${o.primary}` : ', no primary known'}` : 'unreachable',
    });
    state.primary = null;
  }

  if (STUCK_STATES.has(newState) && !rec.stuckReported && r.at - rec.since >= stuckAfterMs) {
    rec.stuckReported = true;
    facts.push({ type: 'member-stuck', member: r.address, state: newState, forMs: r.at - rec.since, evidence: `${newState} since ${new Date(rec.since).toISOString()} (${String(r.at - rec.since)} ms)` });
  }
  state.members[r.address] = rec;
  return { state, facts };
}

function serverType(m: MemberRecord, primary: string | null): ServerType {
  if (m.stale) return 'Unknown';
  switch (m.state) {
    case 'PRIMARY':
      return m.address === primary ? 'RSPrimary' : 'Unknown';
    case 'SECONDARY':
      return 'RSSecondary';
    case 'ARBITER':
      return 'RSArbiter';
    case 'UNREACHABLE':
      return 'Unknown';
    default:
      return 'RSOther';
  }
}

/** The set as a server-selection topology description (stale primaries are Unknown). */
export function topologyDescription(state: MongoSetState, heartbeatFrequencyMS: number): TopologyDescription {
  const servers: ServerDescription[] = Object.values(state.members).map((m) => ({
    address: m.address,
    type: serverType(m, state.primary),
    avgRttMs: m.rttMs,
    lastUpdateTime: m.lastUpdateTime,
    lastWriteDate: m.lastWriteDate ?? 0,
    tags: m.tags,
  }));
  return { type: servers.some((s) => s.type === 'RSPrimary') ? 'ReplicaSetWithPrimary' : 'ReplicaSetNoPrimary', servers, heartbeatFrequencyMS };
}

export interface MongoRoute {
  address: string;
  lastWriteDate: number | null;
  /** server-selection staleness, ms (0 for the primary) */
  stalenessMs: number;
}

export interface MongoRouting {
  setName: string | null;
  primary: MongoRoute | null;
  secondaries: MongoRoute[];
  /** members not routed, with why */
  excluded: { address: string; reason: string }[];
}

/** The routing projection: the primary, the secondaries with lastWriteDate and staleness, the rest excluded with a reason. */
export function mongoRouting(state: MongoSetState, heartbeatFrequencyMS: number): MongoRouting {
  const td = topologyDescription(state, heartbeatFrequencyMS);
  const p = td.servers.find((s) => s.type === 'RSPrimary');
  return {
    setName: state.setName,
    primary: p ? { address: p.address, lastWriteDate: p.lastWriteDate, stalenessMs: 0 } : null,
    secondaries: td.servers
      .filter((s) => s.type === 'RSSecondary')
      .map((s) => ({ address: s.address, lastWriteDate: s.lastWriteDate, stalenessMs: staleness(s, td) }))
      .sort((a, b) => a.address.localeCompare(b.address)),
    excluded: Object.values(state.members)
      .filter((m) => !td.servers.some((s) => s.address === m.address && (s.type === 'RSPrimary' || s.type === 'RSSecondary')))
      .map((m) => ({ address: m.address, reason: m.stale ? 'stale primary (older electionId/setVersion)' : m.state.toLowerCase() })),
  };
}
