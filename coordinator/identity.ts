/**
 * One coordinator per id: two coordinators sharing an id would both match the lease's
 * `<epoch>:<id>` value. At start-up a coordinator claims `sy:coordinator:<id>` (SET NX
 * with a TTL, renewed while it runs, deleted when it stops); a second one with the same
 * id waits out a claim that is no longer renewed (a coordinator killed a moment ago),
 * and refuses to start while another instance keeps renewing it.
 */
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import { connectRedis, StartupError } from '../src/errors.js';

export interface IdentityClaim {
  release(): Promise<void>;
}

export async function claimCoordinatorId(id: string, redisUrl: string, ttlMs: number, log: Logger, redisOptions: RedisOptions = {}): Promise<IdentityClaim> {
  const redis = new Redis(redisUrl, { ...redisOptions, lazyConnect: true, maxRetriesPerRequest: 2, connectTimeout: 2000 });
  redis.on('error', (err) => log.debug({ err: err.message }, 'redis error (identity)'));
  await connectRedis(redis, redisUrl);
  const key = `sy:coordinator:${id}`;
  const token = `${os.hostname()}:${process.pid}:${randomBytes(6).toString('hex')}`;
  // a claim left by a coordinator that died expires within ttlMs: wait that long for it
  const deadline = Date.now() + ttlMs + 500;
  for (;;) {
    if ((await redis.set(key, token, 'PX', ttlMs, 'NX')) === 'OK') break;
    if (Date.now() > deadline) {
      const holder = await redis.get(key);
      redis.disconnect();
      throw new StartupError('DUPLICATE_COORDINATOR_ID', `coordinator id ${JSON.stringify(id)} is already in use by a running coordinator (${holder ?? 'unknown'}): give each coordinator its own id`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  const renew = async (): Promise<void> => {
    const v = await redis.get(key);
    if (v === token) await redis.pexpire(key, ttlMs);
    else if (v === null) await redis.set(key, token, 'PX', ttlMs, 'NX');
    else log.error({ holder: v }, `another coordinator runs with id ${id}: give each coordinator its own id`);
  };
  const timer = setInterval(() => void renew().catch((err: unknown) => log.debug({ err: (err as Error).message }, 'identity renewal failed')), Math.max(200, Math.floor(ttlMs / 3)));
  return {
    async release() {
      clearInterval(timer);
      try {
        if ((await redis.get(key)) === token) await redis.del(key);
      } finally {
        redis.disconnect();
      }
    },
  };
}
