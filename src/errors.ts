/**
 * The product's error catalogue (in the manner of Fastify's `lib/errors.js`, with the
 * API's own catalogue, `src/api/errors.ts`, as the model): every expected failure of
 * the daemons, the engines and the sandbox has a machine code here, with what it means.
 * `SwitchyardError` is only ever made from a code of this catalogue; the CLI prints its
 * message on one line, without a stack, and exits non-zero. docs/errors.md lists them,
 * and a unit test keeps the two in step.
 *
 * The HTTP API answers with the codes of `src/api/errors.ts` (each with its status);
 * agents report job refusals with the wire codes of `JOB_CODES` below.
 */

export interface ErrorDef {
  readonly description: string;
}

export const ERRORS = {
  // start-up and configuration
  CONFIG_INVALID: { description: 'a config file or environment variable fails validation: the message names the path and the reason' },
  REDIS_UNREACHABLE: { description: 'the coordination Redis cannot be reached at start-up: the message names the URL (password redacted) and the cause' },
  // processes and binaries
  PROCESS_STUCK: { description: 'a process did not exit even after SIGKILL (uninterruptible sleep)' },
  PG_BINARIES_NOT_FOUND: { description: 'the PostgreSQL server binaries were not found: set pgBin (agent config) or PG_BIN, or install postgresql' },
  PG_USER_NOT_FOUND: { description: 'running as root but there is no "postgres" OS user to run PostgreSQL as' },
  REDIS_SERVER_NOT_FOUND: { description: 'redis-server was not found: set REDIS_SERVER or install redis-server' },
  MONGOD_NOT_FOUND: { description: '`sandbox up --engine mongodb` needs a mongod binary (MONGOD or PATH), and none was found' },
  // a PostgreSQL node's process (agent and sandbox)
  PG_EXITED: { description: 'PostgreSQL exited during start-up: its log file says why' },
  PG_START_TIMEOUT: { description: 'PostgreSQL did not accept connections within the start-up timeout' },
  PG_NOT_ADOPTED: { description: 'postmaster.pid names a live process that is not this data directory\'s postmaster (a stale pid after a reboot): it was left alone' },
  PORT_IN_USE: { description: 'the port is taken by another process (or another PostgreSQL serves it)' },
  PORT_DENIED: { description: 'not allowed to listen on the port (below 1024 without privileges)' },
  ADDRESS_UNAVAILABLE: { description: 'the address to listen on is not a local address' },
  DATA_DIR_EXISTS: { description: 'the data directory to create already exists and is not empty' },
  DATA_DIR_EMPTY: { description: 'the agent\'s data directory holds no PostgreSQL cluster' },
  INITDB_FAILED: { description: 'initdb failed: the message ends with its last output lines' },
  BASEBACKUP_FAILED: { description: 'pg_basebackup (cloning a replica) failed or timed out' },
  REWIND_FAILED: { description: 'pg_rewind (or the CHECKPOINT on the new primary before it) failed or timed out' },
  RECLONE_DISABLED: { description: 'a former primary could not be rewound and re-cloning is off (rejoin.reclone): it stays out of rotation, its data untouched' },
  SINGLE_USER_FAILED: { description: 'crash recovery in single-user mode, before pg_rewind, failed' },
  CONTROLDATA_FAILED: { description: 'pg_controldata could not read the data directory\'s control file' },
  WALDUMP_FAILED: { description: 'pg_waldump could not read the end of WAL' },
  ENGINE_NOT_SUPPORTED: { description: 'no engine of that name is registered (the message lists the engines there are)' },
  // the sandbox and its CLI
  BAD_FLAG: { description: 'a CLI flag has a value out of range' },
  INVALID_OPTIONS: { description: 'options given to the harness are inconsistent (e.g. node names and ports)' },
  DIR_EXISTS: { description: 'the sandbox directory already exists' },
  NO_SANDBOX: { description: 'no sandbox.json in the directory' },
  NOT_A_SANDBOX: { description: 'the directory was not written by `sandbox up` (no sandbox marker with a matching id): nothing is stopped or removed' },
  UNKNOWN_NODE: { description: 'no node of that id in the sandbox or test cluster' },
  REDIS_EXITED: { description: 'redis-server exited during start-up' },
  REDIS_START_TIMEOUT: { description: 'redis-server did not answer within the start-up timeout' },
  REPLICATION_TIMEOUT: { description: 'replicas were not streaming within the timeout' },
  SANDBOX_CHILD_EXITED: { description: 'a sandbox process exited during start-up' },
  SANDBOX_FAILED: { description: 'the detached sandbox did not start' },
  SANDBOX_NOT_HEALTHY: { description: 'the sandbox did not become healthy within the timeout' },
  // the coordination store
  DUPLICATE_COORDINATOR_ID: { description: 'another running coordinator already uses this id: give every coordinator its own id' },
  ENGINE_ACTION_UNSUPPORTED: { description: 'the engine does not support the action (e.g. promote on a MongoDB replica set, which elects itself)' },
  LEASE_LOST: { description: 'a fenced write was refused: the lease is no longer ours (a deposed leader)' },
} as const satisfies Record<string, ErrorDef>;

export type ErrorCode = keyof typeof ERRORS;

export const ERROR_CODES = Object.keys(ERRORS) as ErrorCode[];

export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.hasOwn(ERRORS, code);
}

/** An expected failure with a catalogue code: the CLI prints its message on one line. */
export class SwitchyardError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'SwitchyardError';
  }
}

/** True when `err` is a SwitchyardError (optionally with the given code). */
export function isSwitchyardError(err: unknown, code?: ErrorCode): err is SwitchyardError {
  return err instanceof SwitchyardError && (code === undefined || err.code === code);
}

/**
 * Why an agent refused or failed a job, as written in `JobResult.code` on the
 * observation stream and quoted in the journal. These are wire values (journals written
 * by earlier versions carry them), so they keep their lower-case spelling.
 */
export const JOB_CODES = {
  'wrong-node': 'the job names another node than this agent\'s',
  expired: 'the job expired (on Redis\'s clock) before the agent picked it up: its operation is over or was retried',
  'stale-epoch': 'the job carries an epoch below the highest the agent has seen (a deposed leader sent it)',
  'stale-journal-id': 'the job was asked for by a journal entry older than the newest one the agent has acted on',
  deposed: 'the action would make the node take writes, but it was deposed (a newer operation named another primary)',
  'cannot-fence': 'the deposed primary could be neither made read-only nor killed',
  'lease-changed': 'the lease moved to another epoch before an irreversible action',
  'bad-job': 'the job lacks a field its action needs (upstream, sync)',
  'unknown-action': 'the agent does not know the action',
  unmanaged: 'the action needs an agent that manages its node (dataDir)',
  'not-primary': 'the action runs on a primary only',
  'unsupported': 'the node\'s engine does not support the action',
  failed: 'the action was tried and failed: the message says why',
} as const satisfies Record<string, string>;

export type JobCode = keyof typeof JOB_CODES;

export const JOB_CODE_LIST = Object.keys(JOB_CODES) as JobCode[];

/**
 * Expected start-up errors of the daemons (a Redis that cannot be reached...). Kept as
 * its own class for `instanceof` checks; its codes are the catalogue's.
 */
export class StartupError extends SwitchyardError {}

/** Turn a Redis connection failure into a one-line error naming the URL and the fix. */
export function redisUnreachable(url: string, err: unknown, envName = 'SWITCHYARD_REDIS'): StartupError {
  const e = err as NodeJS.ErrnoException;
  const why = e.code === 'ECONNREFUSED' ? 'connection refused' : e.code === 'ENOTFOUND' ? 'host not found' : (e.message ?? String(err));
  return new StartupError('REDIS_UNREACHABLE', `cannot reach Redis at ${redactUrl(url)}: ${why} (start Redis, or fix "redis" in the config / ${envName})`);
}

export function redactUrl(url: string): string {
  return url.replace(/\/\/([^:@/]*):([^@/]*)@/, '//$1:***@');
}

interface Connectable {
  connect(): Promise<void>;
  disconnect(): void;
  on(event: 'error', fn: (err: Error) => void): unknown;
  off(event: 'error', fn: (err: Error) => void): unknown;
}

/** Connect, or fail with a one-line error that names the real cause (not "Connection is closed"). */
export async function connectRedis(redis: Connectable, url: string): Promise<void> {
  let last: unknown = null;
  const onError = (err: Error): void => {
    last = err;
  };
  redis.on('error', onError);
  try {
    await redis.connect();
  } catch (err) {
    redis.disconnect();
    throw redisUnreachable(url, last ?? err);
  } finally {
    redis.off('error', onError);
  }
}

