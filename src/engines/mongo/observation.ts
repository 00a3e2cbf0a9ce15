/**
 * A MongoDB member's observation as it travels on the observation stream: the agent puts
 * the Mongo-only fields of its probe (`MongoObservation`, ./probe.ts) in the observation's
 * optional `mongo` object; the coordinator's fold rebuilds the `MongoObservation` from the
 * observation to feed `foldMongo` (./topology.ts). Pure: types in, types out, no I/O.
 */
import type { MongoFields, Observation } from '../../events/observation.js';
import { parsePosition } from './position.js';
import type { MongoObservation } from './probe.js';
import type { MemberReport } from './topology.js';

/** The `mongo` object of an observation, from the probe's observation (what the agent publishes). */
export function mongoFields(o: MongoObservation, probeIntervalMs?: number): MongoFields {
  const f: MongoFields = {
    state: o.state.slice(0, 32),
    setName: o.setName,
    setVersion: o.setVersion,
    electionId: o.electionId,
    term: o.term,
    lastWriteDate: o.lastWriteDate,
    hosts: o.hosts.slice(0, 64),
    primary: o.primary,
    me: o.me,
    members: o.members.slice(0, 64).map((m) => ({ name: m.name, state: m.state.slice(0, 32), health: m.health, lagMs: m.lagMs })),
  };
  if (o.secondary) f.secondary = true;
  if (o.arbiterOnly) f.arbiterOnly = true;
  if (o.passives.length > 0) f.passives = o.passives.slice(0, 64);
  if (o.arbiters.length > 0) f.arbiters = o.arbiters.slice(0, 64);
  if (Object.keys(o.tags).length > 0) f.tags = o.tags;
  if (probeIntervalMs !== undefined) f.probeIntervalMs = probeIntervalMs;
  return f;
}

/**
 * The probe's observation again, from a published observation: null when the member was
 * not reached (or the observation carries no `mongo` object: an agent of another engine).
 */
export function mongoObservationOf(obs: Observation): MongoObservation | null {
  const m = obs.mongo;
  if (!obs.reachable || !m) return null;
  const opTime = parsePosition(obs.lsn);
  return {
    isWritablePrimary: obs.role === 'primary',
    secondary: m.secondary === true,
    arbiterOnly: m.arbiterOnly === true,
    state: m.state,
    setName: m.setName,
    setVersion: m.setVersion,
    electionId: m.electionId,
    term: m.term,
    opTime,
    position: opTime ? obs.lsn : null,
    lastWriteDate: m.lastWriteDate,
    hosts: m.hosts,
    passives: m.passives ?? [],
    arbiters: m.arbiters ?? [],
    primary: m.primary,
    me: m.me,
    tags: m.tags ?? {},
    syncSourceHost: obs.upstream,
    members: m.members.map((x) => ({ name: x.name, state: x.state, health: x.health, self: x.name === m.me, optime: null, optimeDate: null, lagMs: x.lagMs, lagOps: null, syncSourceHost: null })),
  };
}

/**
 * The address a member is known by: the agent's host:port, which must be the member's name
 * in the replica-set configuration (the same address whether or not the member answers).
 */
export function memberAddress(obs: Pick<Observation, 'host' | 'port'>): string {
  return `${obs.host}:${String(obs.port)}`;
}

/** The fold's input for one observation received at `receivedAt` (the coordinator's clock). */
export function memberReport(obs: Observation, receivedAt: number): MemberReport {
  return { address: memberAddress(obs), at: receivedAt, obs: mongoObservationOf(obs) };
}
