/**
 * MongoDB server selection, pure: read preferences (mode, tag sets, maxStalenessSeconds),
 * staleness by the server-selection formula, and the latency window. Used by the routing
 * projection of a MongoDB set and checked against test/mongo/vectors/. No I/O, no clock:
 * every time is in the topology description.
 */
import { SwitchyardError } from '../../errors.js';

export type ServerType = 'RSPrimary' | 'RSSecondary' | 'RSArbiter' | 'RSOther' | 'RSGhost' | 'Standalone' | 'Mongos' | 'Unknown';
export type TopologyType = 'ReplicaSetWithPrimary' | 'ReplicaSetNoPrimary' | 'Single' | 'Sharded' | 'Unknown';
export type ReadMode = 'primary' | 'primaryPreferred' | 'secondary' | 'secondaryPreferred' | 'nearest';
export const READ_MODES: readonly ReadMode[] = ['primary', 'primaryPreferred', 'secondary', 'secondaryPreferred', 'nearest'];

export interface ServerDescription {
  address: string;
  type: ServerType;
  /** round-trip time average, ms */
  avgRttMs: number;
  /** when this description was last updated (the observer's clock), ms */
  lastUpdateTime: number;
  /** hello's lastWrite.lastWriteDate, ms */
  lastWriteDate: number;
  maxWireVersion?: number;
  tags?: Record<string, string>;
}

export interface TopologyDescription {
  type: TopologyType;
  servers: ServerDescription[];
  heartbeatFrequencyMS: number;
}

export type TagSet = Record<string, string>;

export interface ReadPreference {
  mode: ReadMode;
  tagSets?: TagSet[];
  /** absent or -1: no maximum */
  maxStalenessSeconds?: number;
}

/** the spec's smallest allowed maxStalenessSeconds */
export const SMALLEST_MAX_STALENESS_SECONDS = 90;
/** how often an idle primary writes a no-op (mongod's periodic noop writer) */
export const IDLE_WRITE_PERIOD_MS = 10_000;
/** the default latency window */
export const LOCAL_THRESHOLD_MS = 15;

function invalid(msg: string): SwitchyardError {
  return new SwitchyardError('INVALID_OPTIONS', `readPreference: ${msg}`);
}

function hasMaxStaleness(rp: ReadPreference): rp is ReadPreference & { maxStalenessSeconds: number } {
  return rp.maxStalenessSeconds !== undefined && rp.maxStalenessSeconds !== -1;
}

function nonEmptyTags(rp: ReadPreference): boolean {
  return (rp.tagSets ?? []).some((t) => Object.keys(t).length > 0);
}

/**
 * Throws INVALID_OPTIONS naming the field when the read preference cannot be used:
 * an unknown mode, tag sets or maxStalenessSeconds with `primary`, maxStalenessSeconds not
 * a number, 0 or below -1, or below max(90 s, heartbeatFrequencyMS + idle write period).
 */
export function validateReadPreference(rp: ReadPreference, heartbeatFrequencyMS: number): void {
  if (!READ_MODES.includes(rp.mode)) throw invalid(`mode ${JSON.stringify(rp.mode)} is not one of ${READ_MODES.join(', ')}`);
  if (rp.tagSets !== undefined && !Array.isArray(rp.tagSets)) throw invalid('tagSets must be an array of tag documents');
  if (rp.mode === 'primary' && nonEmptyTags(rp)) throw invalid('tagSets cannot be combined with mode primary');
  if (!hasMaxStaleness(rp)) return;
  const s = rp.maxStalenessSeconds;
  if (typeof s !== 'number' || !Number.isFinite(s) || s <= 0) throw invalid(`maxStalenessSeconds ${String(s)} must be a positive number of seconds (or -1 for none)`);
  if (rp.mode === 'primary') throw invalid('maxStalenessSeconds cannot be combined with mode primary');
  const floor = Math.max(SMALLEST_MAX_STALENESS_SECONDS, (heartbeatFrequencyMS + IDLE_WRITE_PERIOD_MS) / 1000);
  if (s < floor) throw invalid(`maxStalenessSeconds ${String(s)} is below the minimum of ${String(floor)} s`);
}

/**
 * A secondary's staleness in ms:
 * with a primary P: (S.lastUpdateTime − S.lastWriteDate) − (P.lastUpdateTime − P.lastWriteDate) + heartbeatFrequencyMS;
 * without: SMax.lastWriteDate − S.lastWriteDate + heartbeatFrequencyMS (SMax: the secondary with the newest lastWriteDate).
 */
export function staleness(s: ServerDescription, topology: TopologyDescription): number {
  const p = topology.servers.find((x) => x.type === 'RSPrimary');
  if (p) return s.lastUpdateTime - s.lastWriteDate - (p.lastUpdateTime - p.lastWriteDate) + topology.heartbeatFrequencyMS;
  const secs = topology.servers.filter((x) => x.type === 'RSSecondary');
  const sMax = Math.max(...secs.map((x) => x.lastWriteDate), s.lastWriteDate);
  return sMax - s.lastWriteDate + topology.heartbeatFrequencyMS;
}

function tagsMatch(server: ServerDescription, set: TagSet): boolean {
  const tags = server.tags ?? {};
  return Object.entries(set).every(([k, v]) => tags[k] === v);
}

/** The servers matching the first tag set that matches any; all servers when no tag sets are given. */
function byTags(servers: ServerDescription[], tagSets: TagSet[] | undefined): ServerDescription[] {
  if (!tagSets || tagSets.length === 0) return servers;
  for (const set of tagSets) {
    const hit = servers.filter((s) => tagsMatch(s, set));
    if (hit.length > 0) return hit;
  }
  return [];
}

function fresh(servers: ServerDescription[], topology: TopologyDescription, rp: ReadPreference): ServerDescription[] {
  if (!hasMaxStaleness(rp)) return servers;
  const maxMs = rp.maxStalenessSeconds * 1000;
  return servers.filter((s) => s.type !== 'RSSecondary' || staleness(s, topology) <= maxMs);
}

/**
 * The servers suitable for the operation, before the latency window. Throws
 * INVALID_OPTIONS for an invalid read preference (reads only; writes ignore it).
 */
export function suitableServers(topology: TopologyDescription, operation: 'read' | 'write', rp: ReadPreference = { mode: 'primary' }): ServerDescription[] {
  const { servers } = topology;
  switch (topology.type) {
    case 'Unknown':
      return [];
    case 'Single':
      return servers.filter((s) => s.type !== 'Unknown').slice(0, 1);
    case 'Sharded':
      return servers.filter((s) => s.type === 'Mongos');
    default:
      break;
  }
  const primary = servers.filter((s) => s.type === 'RSPrimary');
  if (operation === 'write') return primary;
  validateReadPreference(rp, topology.heartbeatFrequencyMS);
  if (hasMaxStaleness(rp)) {
    const old = servers.find((s) => (s.type === 'RSPrimary' || s.type === 'RSSecondary') && s.maxWireVersion !== undefined && s.maxWireVersion < 5);
    if (old) throw invalid(`maxStalenessSeconds needs maxWireVersion 5 or later; ${old.address} has ${String(old.maxWireVersion)}`);
  }
  const secondaries = () => byTags(fresh(servers.filter((s) => s.type === 'RSSecondary'), topology, rp), rp.tagSets);
  switch (rp.mode) {
    case 'primary':
      return primary;
    case 'primaryPreferred':
      return primary.length > 0 ? primary : secondaries();
    case 'secondary':
      return secondaries();
    case 'secondaryPreferred': {
      const s = secondaries();
      return s.length > 0 ? s : primary;
    }
    case 'nearest':
      return byTags(fresh(servers.filter((s) => s.type === 'RSPrimary' || s.type === 'RSSecondary'), topology, rp), rp.tagSets);
  }
}

/** The suitable servers whose average RTT is within `localThresholdMS` of the fastest. */
export function inLatencyWindow(suitable: ServerDescription[], localThresholdMS = LOCAL_THRESHOLD_MS): ServerDescription[] {
  if (suitable.length === 0) return [];
  const min = Math.min(...suitable.map((s) => s.avgRttMs));
  return suitable.filter((s) => s.avgRttMs <= min + localThresholdMS);
}

export interface Selection {
  suitable: ServerDescription[];
  inLatencyWindow: ServerDescription[];
}

export function selectServers(topology: TopologyDescription, operation: 'read' | 'write', rp?: ReadPreference, localThresholdMS?: number): Selection {
  const suitable = suitableServers(topology, operation, rp);
  return { suitable, inLatencyWindow: inLatencyWindow(suitable, localThresholdMS) };
}
