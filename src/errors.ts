/**
 * Expected errors: the CLI prints their message on one line, without a stack, and
 * exits non-zero. Each carries a machine code.
 */
export class StartupError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

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

