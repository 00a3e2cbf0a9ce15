import * as path from 'node:path';
import { HarnessError } from './errors.js';

export const REDIS_NOT_FOUND = 'redis-server not found: install redis-server or set REDIS_SERVER';

/** The PostgreSQL binaries are the engine's: found once, cached, honouring pgBin. */
export { findPgBin, pgBinary, PG_NOT_FOUND } from '../engines/postgres/binaries.js';
import { isExecutable } from '../engines/postgres/binaries.js';

/**
 * Full path of redis-server: $REDIS_SERVER (a path to the binary), else
 * redis-server on $PATH, else /usr/bin or /usr/local/bin.
 */
export function findRedisServer(): string {
  const env = process.env['REDIS_SERVER'];
  if (env !== undefined && env !== '') {
    if (isExecutable(env)) return env;
    throw new HarnessError('REDIS_SERVER_NOT_FOUND', REDIS_NOT_FOUND);
  }
  const dirs = (process.env['PATH'] ?? '').split(path.delimiter).filter(Boolean);
  for (const d of [...dirs, '/usr/bin', '/usr/local/bin', '/usr/sbin']) {
    const file = path.join(d, 'redis-server');
    if (isExecutable(file)) return file;
  }
  throw new HarnessError('REDIS_SERVER_NOT_FOUND', REDIS_NOT_FOUND);
}

export const MONGOD_NOT_FOUND = 'mongod not found: sandbox --engine mongodb needs a mongod binary on PATH (or MONGOD); none is installed here (agents with engine mongodb watch a replica set you run yourself: docs/mongodb.md)';

/**
 * `sandbox up --engine mongodb`: the sandbox does not spawn a replica set. Without a mongod
 * binary it says so, naming the binary; with one, that it only observes a set run by hand.
 */
export function mongoSandboxRefusal(): never {
  const env = process.env['MONGOD'];
  const dirs = (process.env['PATH'] ?? '').split(path.delimiter).filter(Boolean);
  const found = env ? isExecutable(env) : [...dirs, '/usr/bin', '/usr/local/bin'].some((d) => isExecutable(path.join(d, 'mongod')));
  if (!found) throw new HarnessError('MONGOD_NOT_FOUND', MONGOD_NOT_FOUND);
  throw new HarnessError('BAD_FLAG', '--engine mongodb: the sandbox does not start a replica set yet; run mongod --replSet yourself and point agents (engine: mongodb) at its members (docs/mongodb.md)');
}
