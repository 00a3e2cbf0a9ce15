/**
 * Strict runner for the server-selection / max-staleness vectors in test/mongo/vectors/
 * (our own cases, in the layout of the MongoDB spec tests: topology_description,
 * heartbeatFrequencyMS, operation, read_preference, then either suitable_servers and
 * in_latency_window as whole server descriptions, or error): every file must have exactly
 * the known fields; an unknown field, mode or server type fails the file.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { isSwitchyardError } from '../../src/errors.js';
import { selectServers, type ReadMode, type ReadPreference, type ServerDescription, type ServerType, type TopologyDescription, type TopologyType } from '../../src/engines/mongo/select.js';

const DIR = fileURLToPath(new URL('./vectors/', import.meta.url));
const MODES: Record<string, ReadMode> = { Primary: 'primary', PrimaryPreferred: 'primaryPreferred', Secondary: 'secondary', SecondaryPreferred: 'secondaryPreferred', Nearest: 'nearest' };
const SERVER_TYPES = new Set<string>(['RSPrimary', 'RSSecondary', 'RSArbiter', 'RSOther', 'RSGhost', 'Standalone', 'Mongos', 'Unknown']);
const TOPOLOGY_TYPES = new Set<string>(['ReplicaSetWithPrimary', 'ReplicaSetNoPrimary', 'Single', 'Sharded', 'Unknown']);

type Json = Record<string, unknown>;

function only(obj: unknown, allowed: string[], where: string): Json {
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) throw new Error(`${where}: not an object`);
  for (const k of Object.keys(obj)) if (!allowed.includes(k)) throw new Error(`${where}: unknown field ${JSON.stringify(k)}`);
  return obj as Json;
}

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? files(p) : f.endsWith('.json') ? [p] : [];
  });
}

const SERVER_FIELDS = ['address', 'type', 'avg_rtt_ms', 'lastUpdateTime', 'lastWrite', 'maxWireVersion', 'tags'];

function server(raw: unknown, where: string): ServerDescription {
  const s = only(raw, SERVER_FIELDS, where);
  if (typeof s.address !== 'string') throw new Error(`${where}: address`);
  if (typeof s.type !== 'string' || !SERVER_TYPES.has(s.type)) throw new Error(`${where}: server type ${String(s.type)}`);
  const lw = only(s.lastWrite ?? { lastWriteDate: 0 }, ['lastWriteDate'], `${where}.lastWrite`);
  const d: ServerDescription = {
    address: s.address,
    type: s.type as ServerType,
    avgRttMs: Number(s.avg_rtt_ms ?? 0),
    lastUpdateTime: Number(s.lastUpdateTime ?? 0),
    lastWriteDate: Number(lw.lastWriteDate),
  };
  if (s.maxWireVersion !== undefined) d.maxWireVersion = Number(s.maxWireVersion);
  if (s.tags !== undefined) d.tags = s.tags as Record<string, string>;
  return d;
}

/**
 * The expected servers, as in the spec's files: whole server descriptions, each the very one
 * the topology lists under that address (compared field by field); their sorted addresses.
 */
function expected(raw: unknown, topology: unknown[], where: string): string[] {
  if (!Array.isArray(raw)) throw new Error(`${where}: not an array`);
  return raw
    .map((x, i) => {
      const s = only(x, SERVER_FIELDS, `${where}[${String(i)}]`);
      const same = topology.find((t) => (t as Json).address === s.address);
      if (!same) throw new Error(`${where}[${String(i)}]: ${String(s.address)} is not in the topology`);
      if (JSON.stringify(same) !== JSON.stringify(s)) throw new Error(`${where}[${String(i)}]: differs from the topology's ${String(s.address)}`);
      return String(s.address);
    })
    .sort();
}

interface Vector {
  name: string;
  topology: TopologyDescription;
  operation: 'read' | 'write';
  rp: ReadPreference | undefined;
  error: boolean;
  suitable: string[];
  window: string[];
}

function load(path: string): Vector {
  const name = relative(DIR, path);
  const v = only(JSON.parse(readFileSync(path, 'utf8')), ['description', 'topology_description', 'heartbeatFrequencyMS', 'operation', 'read_preference', 'suitable_servers', 'in_latency_window', 'error'], name);
  if (typeof v.description !== 'string' || v.description.length === 0) throw new Error(`${name}: description`);
  const td = only(v.topology_description, ['type', 'servers'], `${name}.topology_description`);
  if (typeof td.type !== 'string' || !TOPOLOGY_TYPES.has(td.type)) throw new Error(`${name}: topology type ${String(td.type)}`);
  if (!Array.isArray(td.servers)) throw new Error(`${name}: servers`);
  const op = v.operation ?? 'read';
  if (op !== 'read' && op !== 'write') throw new Error(`${name}: operation ${JSON.stringify(op)}`);
  let rp: ReadPreference | undefined;
  if (v.read_preference !== undefined) {
    const r = only(v.read_preference, ['mode', 'tag_sets', 'maxStalenessSeconds'], `${name}.read_preference`);
    rp = { mode: (MODES[String(r.mode)] ?? String(r.mode)) as ReadMode };
    if (r.tag_sets !== undefined) rp.tagSets = r.tag_sets as Record<string, string>[];
    if (r.maxStalenessSeconds !== undefined) rp.maxStalenessSeconds = Number(r.maxStalenessSeconds);
  }
  const error = v.error === true;
  if (error === (v.suitable_servers !== undefined)) throw new Error(`${name}: exactly one of error / suitable_servers`);
  if (!error && !Array.isArray(v.in_latency_window)) throw new Error(`${name}: in_latency_window`);
  return {
    name,
    topology: { type: td.type as TopologyType, servers: td.servers.map((s, i) => server(s, `${name}.servers[${String(i)}]`)), heartbeatFrequencyMS: Number(v.heartbeatFrequencyMS ?? 10_000) },
    operation: op,
    rp,
    error,
    suitable: expected(v.suitable_servers ?? [], td.servers, `${name}.suitable_servers`),
    window: expected(v.in_latency_window ?? [], td.servers, `${name}.in_latency_window`),
  };
}

const vectors = files(DIR).sort().map(load);

describe('mongo server selection vectors', () => {
  it('has at least 40 vectors, including the maxStalenessSeconds error cases', () => {
    expect(vectors.length).toBeGreaterThanOrEqual(40);
    expect(vectors.some((v) => v.error && v.rp?.mode === 'primary' && v.rp.maxStalenessSeconds !== undefined)).toBe(true);
    expect(vectors.some((v) => v.error && (v.rp?.maxStalenessSeconds ?? 999) < 90)).toBe(true);
  });

  for (const v of vectors) {
    it(v.name, () => {
      if (v.error) {
        let caught: unknown;
        try {
          selectServers(v.topology, v.operation, v.rp);
        } catch (err) {
          caught = err;
        }
        expect(isSwitchyardError(caught, 'INVALID_OPTIONS'), `${v.name} must fail with INVALID_OPTIONS`).toBe(true);
        return;
      }
      const got = selectServers(v.topology, v.operation, v.rp);
      expect(got.suitable.map((s) => s.address).sort()).toEqual(v.suitable);
      expect(got.inLatencyWindow.map((s) => s.address).sort()).toEqual(v.window);
    });
  }
});
