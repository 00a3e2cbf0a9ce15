/** Fenced journal appends and journal reads. */
import type { Redis } from 'ioredis';
import type { JournalEntry } from '../events/journal.js';
import { MAX_ENTRY_BYTES, parseJournalEntry } from '../events/parse.js';
import type { ClusterKeys } from './keys.js';
import { checkScriptResult, scripted } from './scripts.js';

/** Append entries atomically, only while `token` holds the lease. Returns their stream ids. */
export async function appendFenced(redis: Redis, k: ClusterKeys, token: string, entries: JournalEntry[]): Promise<string[]> {
  if (entries.length === 0) return [];
  // -1: the lease is not ours (LeaseLostError)
  return checkScriptResult(await scripted(redis).syAppend(k.leader, k.log, token, k.wake, ...entries.map((e) => JSON.stringify(e))));
}

export interface JournalRecord {
  id: string;
  entry: JournalEntry | null;
  /** why the entry could not be read, when it could not */
  rejected?: string;
}

export function toRecords(raw: Array<[string, string]>): JournalRecord[] {
  return raw.map(([id, value]) => {
    const p = parseJournalEntry(value);
    return p.ok ? { id, entry: p.value } : { id, entry: null, rejected: p.reason };
  });
}

/**
 * Read a stream after `afterId` (exclusive), at most `count` entries, as [id, "e" field]
 * pairs; an oversized entry never leaves Redis (see src/bus/lua/range-1.lua).
 */
export async function readStream(redis: Redis, stream: string, afterId: string, count: number): Promise<Array<[string, string]>> {
  return scripted(redis).syRange(stream, afterId === '0' ? '0-0' : afterId, count, MAX_ENTRY_BYTES);
}

/** Read journal entries after `afterId` (exclusive), at most `count`. */
export async function readJournal(redis: Redis, k: ClusterKeys, afterId: string, count: number): Promise<JournalRecord[]> {
  return toRecords(await readStream(redis, k.log, afterId, count));
}
