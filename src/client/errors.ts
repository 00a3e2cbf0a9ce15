/** The client library's coded errors. Each has a stable `code`; match on it, not on the message. */
export class ClientError extends Error {
  constructor(
    readonly code: 'NO_PRIMARY' | 'NO_REPLICA' | 'ROUTING_UNAVAILABLE' | 'POOL_ENDED' | 'BAD_OPTION' | 'TOKEN_INVALID' | 'NODE_UNAVAILABLE',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** No node may take writes now (failover in flight, or every route is unknown). */
export class NoPrimaryError extends ClientError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('NO_PRIMARY', message, options);
  }
}

/** The read preference asks for a replica (`secondary`) and none qualifies. */
export class NoReplicaError extends ClientError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('NO_REPLICA', message, options);
  }
}

/** No routing table yet, and no coordinator URL answers. */
export class RoutingUnavailableError extends ClientError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ROUTING_UNAVAILABLE', message, options);
  }
}

/** SQLSTATEs that prove the statement did not run (a write may be retried). */
const NOT_RUN = new Set([
  '57P01', // admin_shutdown (terminated before it started: only when no result)
  '57P03', // cannot_connect_now
  '08001', '08004', '08006', // could not establish / rejected connection
  '25006', // read_only_sql_transaction: it was refused, nothing was written
  '53300', // too_many_connections
  '28000', '28P01', // the node refused the login
  '3D000', // no such database there
]);

const CONNECTION_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE', 'ENOTFOUND']);

export function sqlState(err: unknown): string | undefined {
  const c = (err as { code?: unknown } | null)?.code;
  return typeof c === 'string' && /^[0-9A-Z]{5}$/.test(c) ? c : undefined;
}

/** A failure to reach the node at all (connect refused/timed out): the statement was never sent. */
export function isConnectFailure(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown } | null;
  if (!e) return false;
  if (typeof e.code === 'string' && CONNECTION_CODES.has(e.code) && (e as { syscall?: string }).syscall === 'connect') return true;
  const msg = typeof e.message === 'string' ? e.message : '';
  return msg.includes('timeout exceeded when trying to connect') || msg.includes('Connection terminated due to connection timeout');
}

/** An error that says the node (not the statement) is at fault: counts against its breaker. */
export function isNodeFailure(err: unknown): boolean {
  if (isConnectFailure(err) || isConnectionLost(err)) return true;
  const state = sqlState(err);
  // the node refused the login, has no such database, or no connection slot
  if (state && (state.startsWith('28') || state === '3D000' || state === '53300')) return true;
  const msg = (err as { message?: unknown } | null)?.message;
  return typeof msg === 'string' && msg.includes('Query read timeout');
}

/**
 * The server went away or is going (reset, terminated, refused, shutting down): the other
 * connections open to it are suspect too. (Not a login refusal, a connection limit or a
 * statement timeout: those say nothing about the connections already open.)
 */
export function isConnectionLost(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown } | null;
  if (!e) return false;
  if (typeof e.code === 'string' && CONNECTION_CODES.has(e.code)) return true;
  const state = sqlState(err);
  if (state && (state.startsWith('08') || state === '57P01' || state === '57P02' || state === '57P03')) return true;
  const msg = typeof e.message === 'string' ? e.message : '';
  return msg.includes('Connection terminated') || msg.includes('Client has encountered a connection error');
}

/**
 * The node left the table and its pool was closed between choosing it and sending:
 * nothing ran, and the node is not at fault (no breaker, no retry spent): choose again.
 */
export function isPoolEnded(err: unknown): boolean {
  const msg = (err as { message?: unknown } | null)?.message;
  return typeof msg === 'string' && msg.includes('Cannot use a pool after calling end');
}

/** Proof that a write did not run, so it may be sent again (to the new primary). */
export function provesNotRun(err: unknown): boolean {
  if (isConnectFailure(err)) return true;
  // node-postgres refuses to send on a connection that already failed or closed
  const msg = (err as { message?: unknown } | null)?.message;
  if (typeof msg === 'string' && (msg.includes('is not queryable') || msg.includes('Cannot use a pool after calling end'))) return true;
  const state = sqlState(err);
  return state !== undefined && NOT_RUN.has(state) && state !== '57P01';
}

/** 40001 (serialization failure, which a hot standby raises for a conflict with recovery) and 40P01 on a replica. */
export function isRecoveryConflict(err: unknown): boolean {
  const state = sqlState(err);
  const msg = (err as { message?: unknown } | null)?.message;
  return state === '40001' || (state === '40P01' && typeof msg === 'string' && msg.includes('recovery'));
}
