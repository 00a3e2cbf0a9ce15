/**
 * Parsing stream entries: never throws, never loads an oversized entry whole.
 * A bad entry comes back as `{ ok: false, reason }` so the caller can journal it as
 * `entry.rejected` and go on.
 */
import type { TUnion } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { JournalEntry } from './journal.js';
import { CommandV1, ObsStreamEntry, type Command } from './observation.js';

/** Stream entries larger than this are rejected without parsing. */
export const MAX_ENTRY_BYTES = 64 * 1024;

interface Checker {
  Check(v: unknown): boolean;
  Errors(v: unknown): Iterable<{ path: string; message: string }>;
}

/**
 * A union of objects tagged by `type`, plus one compiled check per tag: the union's own
 * errors say only "/: Expected union value", the tag's variant names the bad field.
 */
interface TaggedCheck extends Checker {
  byType: ReadonlyMap<string, Checker>;
}

function compileTagged(union: TUnion): TaggedCheck {
  const all = TypeCompiler.Compile(union);
  const byType = new Map<string, Checker>();
  for (const variant of union.anyOf) {
    const tag = (variant as { properties?: { type?: { const?: unknown } } }).properties?.type?.const;
    if (typeof tag === 'string') byType.set(tag, TypeCompiler.Compile(variant));
  }
  return { Check: (v) => all.Check(v), Errors: (v) => all.Errors(v), byType };
}

const obsCheck = compileTagged(ObsStreamEntry);
const journalCheck = compileTagged(JournalEntry);
const commandOnly = TypeCompiler.Compile(CommandV1);
const commandCheck: TaggedCheck = { Check: (v) => commandOnly.Check(v), Errors: (v) => commandOnly.Errors(v), byType: new Map([['command', commandOnly]]) };

export type Parsed<T> = { ok: true; value: T } | { ok: false; reason: string };

function schemaErrors(value: unknown, check: TaggedCheck): string[] {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return ['/: expected an object'];
  const tag = (value as { type?: unknown }).type;
  const variant = typeof tag === 'string' ? check.byType.get(tag) : undefined;
  if (!variant) return [`/type: expected one of ${[...check.byType.keys()].join(', ')}`];
  return [...take(variant.Errors(value), 3)].map((e) => `${e.path || '/'}: ${e.message}`);
}

function parseWith<T>(raw: string | undefined, check: TaggedCheck): Parsed<T> {
  // range-1 answers "\0-" for an entry without an "e" field, "\0<bytes>" for an oversized one (never sent)
  if (raw === undefined || raw === '\u0000-') return { ok: false, reason: 'entry has no "e" field' };
  if (raw.startsWith('\u0000')) return { ok: false, reason: `entry too large: ${raw.slice(1)} bytes > ${MAX_ENTRY_BYTES}` };
  if (raw.length > MAX_ENTRY_BYTES) return { ok: false, reason: `entry too large: ${raw.length} bytes > ${MAX_ENTRY_BYTES}` };
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch (err) {
    return { ok: false, reason: `not JSON: ${(err as Error).message}`.slice(0, 300) };
  }
  if (check.Check(value)) return { ok: true, value: value as T };
  return { ok: false, reason: `schema: ${schemaErrors(value, check).join('; ')}`.slice(0, 500) };
}

function* take<T>(it: Iterable<T>, n: number): Iterable<T> {
  if (n <= 0) return;
  for (const x of it) {
    yield x;
    if (--n <= 0) return;
  }
}

export function parseObsEntry(raw: string | undefined): Parsed<ObsStreamEntry> {
  return parseWith<ObsStreamEntry>(raw, obsCheck);
}

export function parseJournalEntry(raw: string | undefined): Parsed<JournalEntry> {
  return parseWith<JournalEntry>(raw, journalCheck);
}

/** Redis returns stream fields as a flat [k, v, k, v] list. */
export function fieldOf(fields: string[], name: string): string | undefined {
  for (let i = 0; i + 1 < fields.length; i += 2) if (fields[i] === name) return fields[i + 1];
  return undefined;
}

export function parseCommand(raw: string | undefined): Parsed<Command> {
  return parseWith<Command>(raw, commandCheck);
}
