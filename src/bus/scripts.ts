/**
 * The Lua scripts, one per atomic operation, and the only module that knows their
 * KEYS/ARGV order. Time never comes from inside a script; TTLs are passed in.
 * Negative return codes map to errors with a `.code` (see LeaseLostError).
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Redis } from 'ioredis';
import { SwitchyardError, type ErrorCode } from '../errors.js';

/**
 * Each script is its own file under `lua/`, named `<name>-<numberOfKeys>.lua` with a
 * header listing its KEYS, ARGV and output (as BullMQ does). They are read once, when
 * this module loads, next to it: `npm run build` copies `src/bus/lua/` to
 * `dist/src/bus/lua/`, which the published package contains.
 */
const LUA_DIR = new URL('./lua/', import.meta.url);

/** The scripts by name: the file's text. */
export const LUA = {
  lease: loadScript('lease-2.lua'),
  release: loadScript('release-1.lua'),
  append: loadScript('append-2.lua'),
  range: loadScript('range-1.lua'),
  routing: loadScript('routing-3.lua'),
  snapshot: loadScript('snapshot-2.lua'),
} as const;

function loadScript(file: string): string {
  try {
    return readFileSync(new URL(file, LUA_DIR), 'utf8');
  } catch (err) {
    throw new Error(`cannot read the Lua script ${fileURLToPath(new URL(file, LUA_DIR))}: ${(err as Error).message} (a build without its lua/ directory?)`);
  }
}

/** The keys a script takes: the number at the end of its file name. */
export function numberOfKeys(file: string): number {
  const m = /-(\d+)\.lua$/.exec(file);
  if (!m) throw new Error(`Lua script file ${file} is not named <name>-<numberOfKeys>.lua`);
  return Number(m[1]);
}

/** What a script's negative return codes mean (each becomes an error with that `.code`). */
export const SCRIPT_ERRORS = { [-1]: 'LEASE_LOST' } as const satisfies Record<number, ErrorCode>;

/** A fenced write refused: the lease is no longer ours. */
export class LeaseLostError extends SwitchyardError {
  constructor(message = 'the leader lease is no longer ours') {
    super('LEASE_LOST', message);
    this.name = 'LeaseLostError';
  }
}

/** Throws the error a script's negative return code stands for; returns the result otherwise. */
export function checkScriptResult<T>(result: T | number): T {
  if (typeof result === 'number' && result < 0) {
    const code = SCRIPT_ERRORS[result as keyof typeof SCRIPT_ERRORS];
    if (code === 'LEASE_LOST') throw new LeaseLostError();
    throw new Error(`a Lua script returned the unknown code ${result}`);
  }
  return result as T;
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
    redis.defineCommand('syLease', { numberOfKeys: numberOfKeys('lease-2.lua'), lua: LUA.lease });
    redis.defineCommand('syRelease', { numberOfKeys: numberOfKeys('release-1.lua'), lua: LUA.release });
    redis.defineCommand('syAppend', { numberOfKeys: numberOfKeys('append-2.lua'), lua: LUA.append });
    redis.defineCommand('syRange', { numberOfKeys: numberOfKeys('range-1.lua'), lua: LUA.range });
    redis.defineCommand('syRouting', { numberOfKeys: numberOfKeys('routing-3.lua'), lua: LUA.routing });
    redis.defineCommand('sySnapshot', { numberOfKeys: numberOfKeys('snapshot-2.lua'), lua: LUA.snapshot });
    defined.add(redis);
  }
  return redis as Scripted;
}
