/**
 * The test-vector runner: plays one `test/vectors/*.json` file against the pure core
 * (evolve, decide, routingTable) and throws a `VectorError` naming the phase and the
 * path of the first expectation that does not hold.
 *
 * Like the SDAM spec runner, it fails on any key it does not know how to check: at the
 * top level, in a phase, in a `given` item, in `expect`, and in the partial objects
 * whose fields it knows (topology, nodes, operation, commands, routing, replicas, jobs,
 * settings). A typo in a
 * vector is an error, never a silently skipped check. The format is documented in
 * `test/vectors/README.md`.
 */
import { decide, type JobSpec } from '../../src/core/decide.js';
import { routingTable } from '../../src/core/routing.js';
import { DEFAULT_SETTINGS, type Settings } from '../../src/core/settings.js';
import { compareStreamIds } from '../../src/core/state.js';
import { parseCommand, parseJournalEntry, parseObsEntry } from '../../src/events/parse.js';
import { CommandV1, JobResultV1, ObservationV1, type Command, type JobResult, type Observation } from '../../src/events/observation.js';
import type { JournalDraft, JournalEntry } from '../../src/events/journal.js';
import { DEAD, Sim, jobResult, obs as baseObs, unreachable } from './helpers.js';

export class VectorError extends Error {
  override name = 'VectorError';
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type JsonObject = { [k: string]: Json };

/* ------------------------------------------------------------------ known keys */

const TOP_KEYS = ['description', 'settings', 'phases'];
const PHASE_KEYS = ['description', 'at', 'given', 'passes', 'expect'];
const EXPECT_KEYS = ['decisions', 'types', 'jobs', 'topology', 'routing', 'noDecisions'];
const TOPOLOGY_KEYS = ['primary', 'paused', 'operation', 'nodes', 'blocked', 'epoch', 'leader', 'lastFailoverAt', 'opSeq', 'sync', 'history', 'commands', 'handledCommands'];
const NODE_KEYS = ['id', 'host', 'port', 'priority', 'zone', 'healthy', 'healthReason', 'role', 'promotedAt', 'promotionAskedAt', 'demotionAskedAt', 'pending'];
const OPERATION_KEYS = ['id', 'kind', 'from', 'to', 'reason', 'manual', 'startedAt', 'phase', 'phaseAt', 'deposed', 'fenceResult', 'promoteResult', 'demoteResult', 'demoteLsn', 'commandId'];
const COMMAND_KEYS = ['id', 'action', 'to', 'by', 'at', 'receivedAt'];
const HANDLED_KEYS = ['id', 'rejected'];
const HISTORY_KEYS = ['id', 'kind', 'from', 'to', 'reason', 'startedAt', 'finishedAt', 'durationMs', 'lostBytes', 'outcome', 'forkLsn', 'lossMeasured'];
const ROUTING_KEYS = ['writable', 'primary', 'replicas', 'generation', 'epoch', 'updatedAt'];
const ROUTING_PRIMARY_KEYS = ['id', 'host', 'port', 'zone', 'draining'];
const REPLICA_KEYS = ['host', 'port', 'zone', 'healthy', 'lagBytes', 'lagMs', 'replayLsn', 'sync'];
const JOB_KEYS = ['node', 'action', 'operationId', 'upstream', 'sync'];
const SETTINGS_KEYS = Object.keys(DEFAULT_SETTINGS);
const GIVEN_FORMS = ['obs', 'rawObs', 'beat', 'silent', 'journal', 'jobResult', 'command'];

/** observation fields a vector may set (the envelope and seq/at are the runner's) */
const OBS_FIELDS = Object.keys(ObservationV1.properties).filter((k) => !['type', 'v', 'seq', 'at'].includes(k));
/** optional observation fields: `null` in a vector removes them */
const OBS_REQUIRED: readonly string[] = ObservationV1.required ?? [];
const OBS_OPTIONAL = OBS_FIELDS.filter((k) => !OBS_REQUIRED.includes(k));
const JOB_RESULT_FIELDS = Object.keys(JobResultV1.properties).filter((k) => !['type', 'v'].includes(k));
const COMMAND_FIELDS = Object.keys(CommandV1.properties).filter((k) => !['type', 'v', 'at'].includes(k));

/* ------------------------------------------------------------------ presets */

/** What the agent reports in a few well-known situations (see agent/agent.ts, src/engines/postgres/probe.ts). */
const PRESETS: Readonly<Record<string, Partial<Observation>>> = {
  // the postmaster is gone: the agent reports no role and no LSN
  dead: { ...DEAD, errorMessage: 'postmaster not running' },
  // the probe failed, the process (if managed) still runs
  refused: unreachable('refused'),
  timeout: unreachable('timeout'),
  starting: unreachable('starting'),
  auth: unreachable('auth'),
  // SIGSTOP'd: the process is alive, the probe times out
  stopped: { ...unreachable('timeout'), process: 'stopped' },
};

/* ------------------------------------------------------------------ small checks */

function fail(where: string, msg: string): never {
  throw new VectorError(`${where}: ${msg}`);
}

function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function object(v: unknown, where: string): JsonObject {
  if (!isObject(v)) fail(where, `expected an object, got ${JSON.stringify(v)}`);
  return v;
}

function array(v: unknown, where: string): Json[] {
  if (!Array.isArray(v)) fail(where, `expected an array, got ${JSON.stringify(v)}`);
  return v as Json[];
}

function onlyKeys(o: JsonObject, known: readonly string[], where: string): void {
  for (const k of Object.keys(o)) {
    if (!known.includes(k)) fail(where, `unknown key "${k}" (known: ${known.join(', ')})`);
  }
}

function str(v: unknown, where: string): string {
  if (typeof v !== 'string' || v === '') fail(where, `expected a non-empty string, got ${JSON.stringify(v)}`);
  return v;
}

function int(v: unknown, where: string, min = 0): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min) fail(where, `expected an integer >= ${min}, got ${JSON.stringify(v)}`);
  return v;
}

/* ------------------------------------------------------------------ matching */

/**
 * Does `actual` match the partial `expected`? Objects match as subsets, arrays
 * element by element with equal lengths, `null` matches null or absent, and
 * `{ "$contains": "text" }` matches a string containing the text. Returns the path
 * and reason of the first mismatch, or null.
 */
export function mismatch(actual: unknown, expected: Json, path: string): string | null {
  if (expected === null) return actual === null || actual === undefined ? null : `${path}: expected null, got ${show(actual)}`;
  if (Array.isArray(expected)) {
    if (!Array.isArray(actual)) return `${path}: expected an array, got ${show(actual)}`;
    if (actual.length !== expected.length) return `${path}: expected ${expected.length} items, got ${actual.length}: ${show(actual)}`;
    for (let i = 0; i < expected.length; i++) {
      const m = mismatch(actual[i], expected[i]!, `${path}[${i}]`);
      if (m) return m;
    }
    return null;
  }
  if (isObject(expected)) {
    if ('$contains' in expected) {
      onlyKeys(expected, ['$contains'], path);
      const text = expected.$contains;
      if (typeof text !== 'string') fail(path, '$contains takes a string');
      return typeof actual === 'string' && actual.includes(text) ? null : `${path}: expected a string containing ${JSON.stringify(text)}, got ${show(actual)}`;
    }
    if (!isObject(actual)) return `${path}: expected an object, got ${show(actual)}`;
    for (const [k, v] of Object.entries(expected)) {
      const m = mismatch(actual[k], v, `${path}.${k}`);
      if (m) return m;
    }
    return null;
  }
  return Object.is(actual, expected) ? null : `${path}: expected ${JSON.stringify(expected)}, got ${show(actual)}`;
}

function show(v: unknown): string {
  const s = v === undefined ? 'undefined (absent)' : JSON.stringify(v);
  return s.length > 600 ? s.slice(0, 600) + '…' : s;
}

function check(actual: unknown, expected: Json, path: string): void {
  const m = mismatch(actual, expected, path);
  if (m) throw new VectorError(m);
}

/* ------------------------------------------------------------------ the run */

interface PhaseOutcome {
  appends: JournalDraft[];
  jobs: JobSpec[];
}

/** The simulated leader plus what the simulated agents last sent. */
class Run {
  readonly sim: Sim;
  /** the newest observation each agent sent through `obs` or `beat` (patches stick) */
  private readonly last = new Map<string, Observation>();
  private readonly seq = new Map<string, number>();
  private readonly boot = new Map<string, string>();
  private readonly silent = new Set<string>();
  private jobSeq = 0;

  constructor(settings: Partial<Settings>) {
    this.sim = new Sim(settings);
  }

  /** The leader appends at the highest epoch the journal has seen (at least 1). */
  private get leaderEpoch(): number {
    return Math.max(1, this.sim.state.epoch);
  }

  /** Build an observation: defaults (or `base`), then a preset, then the vector's fields. */
  private build(fields: JsonObject, where: string, base: Observation | null, envelope: { seq: number; at: number; bootId: string }): Observation {
    const node = str(fields.node, `${where}.node`);
    const { preset, ...rest } = fields;
    onlyKeys(rest, OBS_FIELDS, where);
    let presetPatch: Partial<Observation> = {};
    if (preset !== undefined) {
      const p = PRESETS[str(preset, `${where}.preset`)];
      if (!p) fail(`${where}.preset`, `unknown preset ${JSON.stringify(preset)} (known: ${Object.keys(PRESETS).join(', ')})`);
      presetPatch = p;
    }
    const patch = { ...presetPatch, ...(rest as Partial<Observation>), ...envelope };
    const merged = (base ? { ...base, ...patch } : baseObs(node, patch)) as Record<string, unknown>;
    for (const k of OBS_OPTIONAL) if (merged[k] === null || merged[k] === undefined) delete merged[k];
    for (const k of Object.keys(merged)) if (merged[k] === undefined) delete merged[k];
    const o = merged as unknown as Observation;
    const parsed = parseObsEntry(JSON.stringify(o));
    if (!parsed.ok) fail(where, `not a valid observation: ${parsed.reason}`);
    return o;
  }

  private nextSeq(node: string): number {
    const n = (this.seq.get(node) ?? 0) + 1;
    this.seq.set(node, n);
    return n;
  }

  private deliver(at: number, o: Observation): void {
    this.sim.fold({ kind: 'obs', id: `obs-${o.node}-${o.bootId}-${o.seq}`, receivedAt: at, entry: o });
  }

  given(item: Json, at: number, where: string): void {
    const g = object(item, where);
    const forms = GIVEN_FORMS.filter((k) => k in g);
    if (forms.length !== 1) fail(where, `expected exactly one of ${GIVEN_FORMS.join(', ')}; got keys ${Object.keys(g).join(', ')}`);
    const form = forms[0]!;
    onlyKeys(g, form === 'journal' ? ['journal', 'id'] : [form], where);
    const w = `${where}.${form}`;
    switch (form) {
      case 'obs': {
        const fields = object(g.obs, w);
        const node = str(fields.node, `${w}.node`);
        const bootId = fields.bootId === undefined ? (this.boot.get(node) ?? `${node}-boot-1`) : str(fields.bootId, `${w}.bootId`);
        if (this.boot.has(node) && this.boot.get(node) !== bootId) this.seq.delete(node); // a new agent boot counts from 1
        this.boot.set(node, bootId);
        const o = this.build(fields, w, null, { seq: this.nextSeq(node), at, bootId });
        this.last.set(node, o);
        this.silent.delete(node);
        this.deliver(at, o);
        return;
      }
      case 'rawObs': {
        const fields = object(g.rawObs, w);
        const { seq, at: agentAt, ...rest } = fields;
        for (const k of ['bootId'] as const) str(fields[k], `${w}.${k}`);
        const envelope = { seq: int(seq, `${w}.seq`), at: int(agentAt, `${w}.at`), bootId: fields.bootId as string };
        // delivered as is: it changes neither what `obs`/`beat` send next nor their seq
        this.deliver(at, this.build(rest, w, null, envelope));
        return;
      }
      case 'beat': {
        const patches = object(g.beat, w);
        for (const node of Object.keys(patches)) {
          if (!this.last.has(node)) fail(`${w}.${node}`, 'no previous observation to re-send (use obs)');
          if (this.silent.has(node)) fail(`${w}.${node}`, 'this agent is silent: send an obs to bring it back');
        }
        for (const node of [...this.last.keys()].sort()) {
          if (this.silent.has(node)) continue;
          const prev = this.last.get(node)!;
          const patch = patches[node] === undefined ? {} : object(patches[node], `${w}.${node}`);
          const o = this.build({ ...patch, node }, `${w}.${node}`, prev, { seq: this.nextSeq(node), at, bootId: prev.bootId });
          this.last.set(node, o);
          this.deliver(at, o);
        }
        return;
      }
      case 'silent': {
        for (const [i, node] of array(g.silent, w).entries()) {
          const id = str(node, `${w}[${i}]`);
          if (!this.last.has(id)) fail(`${w}[${i}]`, `no agent ${id} has reported`);
          this.silent.add(id);
        }
        return;
      }
      case 'journal': {
        const { epoch, at: entryAt, ...draft } = object(g.journal, w);
        const entry = {
          ...draft,
          v: 1,
          at: entryAt === undefined ? at : int(entryAt, `${w}.at`),
          epoch: epoch === undefined ? this.leaderEpoch : int(epoch, `${w}.epoch`),
        } as unknown as JournalEntry;
        const parsed = parseJournalEntry(JSON.stringify(entry));
        if (!parsed.ok) fail(w, `not a valid journal entry: ${parsed.reason}`);
        if (g.id === undefined) {
          this.sim.append(entry.at, draft as unknown as JournalDraft, entry.epoch);
          return;
        }
        // an explicit stream id: a redelivery of an id already folded (or older)
        const id = str(g.id, `${where}.id`);
        if (!/^\d+-\d+$/.test(id)) fail(`${where}.id`, `not a stream id: ${id}`);
        if (compareStreamIds(id, this.sim.state.logId) > 0) fail(`${where}.id`, `explicit ids are for redelivery: ${id} is newer than the last folded ${this.sim.state.logId}`);
        this.sim.fold({ kind: 'journal', id, entry });
        return;
      }
      case 'jobResult': {
        const fields = object(g.jobResult, w);
        onlyKeys(fields, JOB_RESULT_FIELDS, w);
        const defaults: Partial<JobResult> = { epoch: this.leaderEpoch, at };
        const r = jobResult(str(fields.node, `${w}.node`), { ...defaults, ...(fields as unknown as JobResult) });
        const parsed = parseObsEntry(JSON.stringify(r));
        if (!parsed.ok) fail(w, `not a valid job result: ${parsed.reason}`);
        this.sim.report(at, r);
        return;
      }
      case 'command': {
        const fields = object(g.command, w);
        onlyKeys(fields, COMMAND_FIELDS, w);
        const c = { type: 'command', v: 1, by: 'ops', ...fields, at } as unknown as Command;
        const parsed = parseCommand(JSON.stringify(c));
        if (!parsed.ok) fail(w, `not a valid command: ${parsed.reason}`);
        this.sim.fold({ kind: 'command', id: `cmd-${c.id}-${at}`, receivedAt: at, entry: c });
        return;
      }
    }
  }

  /** One leader pass: decide, then append the drafts (fenced by the leader's epoch) and record the jobs. */
  pass(at: number, where: string, out: PhaseOutcome): void {
    for (const d of decide(this.sim.state, at, this.sim.settings)) {
      if (d.type === 'job') {
        out.jobs.push(d.job);
        continue;
      }
      out.appends.push(d.entry);
      const draft = { ...d.entry } as JournalDraft & { jobId?: string };
      if (draft.type === 'promotion.requested' || draft.type === 'follow.requested') draft.jobId = `job-${++this.jobSeq}`;
      const rec = this.sim.append(at, draft, this.leaderEpoch);
      const parsed = parseJournalEntry(JSON.stringify(rec.entry));
      if (!parsed.ok) fail(where, `decide produced an invalid journal entry: ${parsed.reason}`);
    }
  }
}

function parseSettings(v: unknown): Partial<Settings> {
  if (v === undefined) return {};
  const o = object(v, 'settings');
  onlyKeys(o, SETTINGS_KEYS, 'settings');
  for (const [k, x] of Object.entries(o)) {
    const d: unknown = (DEFAULT_SETTINGS as unknown as Record<string, unknown>)[k];
    if (typeof d === 'number') int(x, `settings.${k}`);
    else if (k === 'synchronous' && x === 'quorum') continue;
    else if (typeof x !== typeof d) fail(`settings.${k}`, `expected a ${typeof d}, got ${JSON.stringify(x)}`);
  }
  return o;
}

/** Check the keys of a partial object against the fields the runner knows, then match it. */
function checkPartial(actual: unknown, expected: Json, known: readonly string[], path: string): void {
  if (expected !== null) onlyKeys(object(expected, path), known, path);
  check(actual, expected, path);
}

function checkExpect(run: Run, out: PhaseOutcome, e: JsonObject, where: string): void {
  onlyKeys(e, EXPECT_KEYS, where);
  if (Object.keys(e).length === 0) fail(where, 'empty expect');

  if ('noDecisions' in e) {
    if (e.noDecisions !== true) fail(`${where}.noDecisions`, 'only `true` is meaningful');
    for (const k of ['decisions', 'types', 'jobs']) if (k in e) fail(where, `noDecisions contradicts ${k}`);
    if (out.appends.length || out.jobs.length) {
      fail(`${where}.noDecisions`, `expected no decisions, got ${show(out.appends.map((a) => a.type))} and ${out.jobs.length} job(s): ${show(out.appends)}`);
    }
  }

  if ('types' in e) {
    const types = array(e.types, `${where}.types`).map((t, i) => str(t, `${where}.types[${i}]`));
    check(
      out.appends.map((a) => a.type),
      types,
      `${where}.types`,
    );
  }

  // every phase states its full outcome: the exact list of journal drafts (each a partial
  // object, in order, as many as were appended) and of jobs, or noDecisions
  if (!('decisions' in e) && !('noDecisions' in e)) fail(where, `state the full outcome: decisions (every appended draft, in order) or noDecisions; appended ${show(out.appends.map((a) => a.type))}`);
  if ('decisions' in e) {
    const want = array(e.decisions, `${where}.decisions`);
    if (want.length !== out.appends.length) {
      fail(`${where}.decisions`, `expected ${want.length} drafts, got ${out.appends.length}: ${show(out.appends.map((a) => a.type))}`);
    }
    for (const [i, d] of want.entries()) {
      const w = `${where}.decisions[${i}]`;
      str(object(d, w).type, `${w}.type`);
      const m = mismatch(out.appends[i], d, w);
      if (m) fail(w, `${m}. Appended: ${show(out.appends)}`);
    }
    if (out.jobs.length > 0 && !('jobs' in e)) fail(where, `state the jobs too: ${out.jobs.length} sent: ${show(out.jobs)}`);
  }

  if ('jobs' in e) {
    const jobs = array(e.jobs, `${where}.jobs`);
    jobs.forEach((j, i) => onlyKeys(object(j, `${where}.jobs[${i}]`), JOB_KEYS, `${where}.jobs[${i}]`));
    check(out.jobs, jobs, `${where}.jobs`);
  }

  if ('topology' in e) {
    const w = `${where}.topology`;
    const t = object(e.topology, w);
    onlyKeys(t, TOPOLOGY_KEYS, w);
    const s = run.sim.state;
    for (const [k, v] of Object.entries(t)) {
      if (k === 'operation') checkPartial(s.operation, v, OPERATION_KEYS, `${w}.operation`);
      else if (k === 'nodes') {
        for (const [id, n] of Object.entries(object(v, `${w}.nodes`))) checkPartial(s.nodes[id], n, NODE_KEYS, `${w}.nodes.${id}`);
      } else if (k === 'commands') {
        for (const [id, c] of Object.entries(object(v, `${w}.commands`))) checkPartial(s.commands[id], c, COMMAND_KEYS, `${w}.commands.${id}`);
      } else if (k === 'handledCommands') {
        const items = array(v, `${w}.handledCommands`);
        items.forEach((h, i) => onlyKeys(object(h, `${w}.handledCommands[${i}]`), HANDLED_KEYS, `${w}.handledCommands[${i}]`));
        check(s.handledCommands, items, `${w}.handledCommands`);
      } else if (k === 'history') {
        const items = array(v, `${w}.history`);
        items.forEach((h, i) => onlyKeys(object(h, `${w}.history[${i}]`), HISTORY_KEYS, `${w}.history[${i}]`));
        check(s.history, items, `${w}.history`);
      } else check((s as unknown as Record<string, unknown>)[k], v, `${w}.${k}`);
    }
  }

  if ('routing' in e) {
    const w = `${where}.routing`;
    const r = object(e.routing, w);
    onlyKeys(r, ROUTING_KEYS, w);
    const table = routingTable(run.sim.state);
    for (const [k, v] of Object.entries(r)) {
      if (k === 'primary') checkPartial(table.primary, v, ROUTING_PRIMARY_KEYS, `${w}.primary`);
      else if (k === 'replicas') {
        for (const [id, rep] of Object.entries(object(v, `${w}.replicas`))) {
          checkPartial(
            table.replicas.find((x) => x.id === id),
            rep,
            REPLICA_KEYS,
            `${w}.replicas.${id}`,
          );
        }
      } else check((table as unknown as Record<string, unknown>)[k], v, `${w}.${k}`);
    }
  }
}

/** What each phase's passes decided (for tooling that writes a phase's full outcome). */
export function phaseOutcomes(vector: unknown): PhaseOutcome[] {
  const v = object(vector, 'vector');
  const run = new Run(parseSettings(v.settings));
  return array(v.phases, 'phases').map((p, i) => {
    const phase = object(p, `phases[${i}]`);
    const at = int(phase.at, 'at');
    array(phase.given ?? [], 'given').forEach((g, j) => run.given(g, at, `phases[${i}].given[${j}]`));
    const passes = phase.passes === undefined ? 1 : int(phase.passes, 'passes');
    const out: PhaseOutcome = { appends: [], jobs: [] };
    for (let k = 0; k < passes; k++) run.pass(at, `phases[${i}]`, out);
    return out;
  });
}

/** Run one vector; throws a VectorError at the first unknown key or failed expectation. */
export function runVector(vector: unknown, name = 'vector'): void {
  const v = object(vector, name);
  onlyKeys(v, TOP_KEYS, name);
  str(v.description, `${name}.description`);
  const run = new Run(parseSettings(v.settings));
  const phases = array(v.phases, `${name}.phases`);
  if (phases.length === 0) fail(`${name}.phases`, 'no phases');
  let expectations = 0;
  let prevAt = -Infinity;
  phases.forEach((p, i) => {
    const where = `${name}.phases[${i}]`;
    const phase = object(p, where);
    onlyKeys(phase, PHASE_KEYS, where);
    if (phase.description !== undefined) str(phase.description, `${where}.description`);
    const at = int(phase.at, `${where}.at`);
    if (at < prevAt) fail(`${where}.at`, `time goes backwards (${at} < ${prevAt})`);
    prevAt = at;
    const label = `${where} (at ${at})`;
    array(phase.given ?? [], `${where}.given`).forEach((g, j) => run.given(g, at, `${where}.given[${j}]`));
    const passes = phase.passes === undefined ? 1 : int(phase.passes, `${where}.passes`);
    const out: PhaseOutcome = { appends: [], jobs: [] };
    for (let k = 0; k < passes; k++) run.pass(at, label, out);
    if (phase.expect !== undefined) {
      checkExpect(run, out, object(phase.expect, `${label}.expect`), `${label}.expect`);
      expectations++;
    }
  });
  if (expectations === 0) fail(name, 'no phase has an expect');
}
