/**
 * The Lua scripts, one per atomic operation, and the only module that knows their
 * KEYS/ARGV order. Time never comes from inside a script; TTLs are passed in.
 * Negative return codes map to errors with a `.code` (see LeaseLostError).
 */
import type { Redis } from 'ioredis';

/**
 * lease-2: acquire or renew the cluster's leader lease.
 * KEYS[1] sy:{c}:leader   KEYS[2] sy:{c}:epoch
 * ARGV[1] coordinator id  ARGV[2] ttl ms  ARGV[3] token we hold ('' if none)
 * → { 1, token } renewed, { 2, token } acquired (new epoch), { 0, holder } held by another
 */
const LEASE = `
local cur = redis.call('GET', KEYS[1])
if cur then
  if cur == ARGV[3] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return {1, cur}
  end
  return {0, cur}
end
local epoch = redis.call('INCR', KEYS[2])
local token = epoch .. ':' .. ARGV[1]
redis.call('SET', KEYS[1], token, 'PX', ARGV[2])
return {2, token}
`;

/**
 * range-1: read a stream after a cursor, without ever sending an oversized entry.
 * KEYS[1] the stream
 * ARGV[1] cursor (exclusive; '0-0' = from the start), or 'newest' for the newest entries
 *         (newest first)   ARGV[2] count  ARGV[3] max bytes
 * → [[id, value], …] where value is the entry's "e" field, "\0-" when it has none, or
 *   "\0<bytes>" when it is larger than max bytes (the caller rejects it unread)
 */
const RANGE = `
local rows
if ARGV[1] == 'newest' then
  rows = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', tonumber(ARGV[2]))
else
  rows = redis.call('XRANGE', KEYS[1], '(' .. ARGV[1], '+', 'COUNT', tonumber(ARGV[2]))
end
local max = tonumber(ARGV[3])
local out = {}
for i, row in ipairs(rows) do
  local value = '\0-'
  local fields = row[2]
  for j = 1, #fields, 2 do
    if fields[j] == 'e' then value = fields[j + 1] end
  end
  if #value > max then value = '\0' .. #value end
  out[i] = {row[1], value}
end
return out
`;

/**
 * release-1: give the lease up if we still hold it.
 * KEYS[1] sy:{c}:leader  ARGV[1] token → 1 released, 0 not ours
 */
const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
`;

/**
 * append-2: append entries to the journal if, and only if, the lease is ours, and wake
 * the readers.
 * KEYS[1] sy:{c}:leader  KEYS[2] sy:{c}:log
 * ARGV[1] token  ARGV[2] wake channel  ARGV[3..n] JSON entries
 * → list of stream ids, or -1 when the lease is not ours (a deposed leader)
 */
const APPEND = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return -1
end
local ids = {}
for i = 3, #ARGV do
  ids[#ids + 1] = redis.call('XADD', KEYS[2], '*', 'e', ARGV[i])
end
redis.call('PUBLISH', ARGV[2], '1')
return ids
`;

/**
 * routing-3: publish the routing table and the journal's primary if the lease is ours.
 * KEYS[1] sy:{c}:leader  KEYS[2] sy:{c}:routing  KEYS[3] sy:{c}:primary
 * ARGV[1] token  ARGV[2] table JSON  ARGV[3] channel  ARGV[4] primary JSON ('' = none)
 * → 1 written, -1 not the leader
 */
const ROUTING = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return -1
end
redis.call('SET', KEYS[2], ARGV[2])
if ARGV[4] == '' then
  redis.call('DEL', KEYS[3])
else
  redis.call('SET', KEYS[3], ARGV[4])
end
redis.call('PUBLISH', ARGV[3], ARGV[2])
return 1
`;

/**
 * snapshot-2: store the snapshot of the folded journal if the lease is ours.
 * KEYS[1] sy:{c}:leader  KEYS[2] sy:{c}:snapshot
 * ARGV[1] token  ARGV[2] snapshot JSON
 * → 1 written, -1 not the leader
 */
const SNAPSHOT = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return -1
end
redis.call('SET', KEYS[2], ARGV[2])
return 1
`;

export const SCRIPT_ERRORS = { [-1]: 'LEASE_LOST' } as const;

export class LeaseLostError extends Error {
  readonly code = 'LEASE_LOST';
  constructor(message = 'the leader lease is no longer ours') {
    super(message);
  }
}

type Scripted = Redis & {
  syLease(leader: string, epoch: string, id: string, ttlMs: number, token: string): Promise<[number, string]>;
  syRelease(leader: string, token: string): Promise<number>;
  syAppend(leader: string, log: string, token: string, wake: string, ...entries: string[]): Promise<string[] | number>;
  syRange(stream: string, cursor: string, count: number, maxBytes: number): Promise<Array<[string, string]>>;
  sySnapshot(leader: string, snapshot: string, token: string, json: string): Promise<number>;
  syRouting(leader: string, routing: string, primary: string, token: string, json: string, channel: string, primaryJson: string): Promise<number>;
};

const defined = new WeakSet<Redis>();

/** Register the scripts on a connection (EVALSHA with automatic fallback to EVAL). */
export function scripted(redis: Redis): Scripted {
  if (!defined.has(redis)) {
    redis.defineCommand('syLease', { numberOfKeys: 2, lua: LEASE });
    redis.defineCommand('syRelease', { numberOfKeys: 1, lua: RELEASE });
    redis.defineCommand('syAppend', { numberOfKeys: 2, lua: APPEND });
    redis.defineCommand('syRange', { numberOfKeys: 1, lua: RANGE });
    redis.defineCommand('syRouting', { numberOfKeys: 3, lua: ROUTING });
    redis.defineCommand('sySnapshot', { numberOfKeys: 2, lua: SNAPSHOT });
    defined.add(redis);
  }
  return redis as Scripted;
}
