/**
 * Connection options from a daemon's config: ioredis options for the coordination
 * store (ACL user, password, TLS with CA and client certificates) and node-postgres
 * `ssl` options from libpq-style sslmode. Files are read here, at start-up.
 */
import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import type { RedisOptions } from 'ioredis';
import { sslOption } from '../engines/postgres/connection.js';

export interface StoreConfig {
  redis: string;
  redisUser?: string | undefined;
  redisPassword?: string | undefined;
  redisTls?: { caFile?: string | undefined; certFile?: string | undefined; keyFile?: string | undefined; servername?: string | undefined } | undefined;
}

/** ioredis options (to pass with the URL) for the store's user, password and TLS. */
export function storeOptions(c: StoreConfig): RedisOptions {
  const o: RedisOptions = {};
  if (c.redisPassword !== undefined) {
    o.password = c.redisPassword;
    if (c.redisUser !== undefined) o.username = c.redisUser;
  } else if (c.redisUser !== undefined && c.redisUser !== 'default') o.username = c.redisUser;
  if (c.redis.startsWith('rediss://')) {
    const t = c.redisTls ?? {};
    const tls: ConnectionOptions = {};
    if (t.caFile) tls.ca = readFileSync(t.caFile);
    if (t.certFile) tls.cert = readFileSync(t.certFile);
    if (t.keyFile) tls.key = readFileSync(t.keyFile);
    if (t.servername) tls.servername = t.servername;
    o.tls = tls;
  }
  return o;
}

export interface PgTlsConfig {
  sslmode?: 'disable' | 'require' | 'verify-ca' | 'verify-full' | undefined;
  sslrootcert?: string | undefined;
  sslcert?: string | undefined;
  sslkey?: string | undefined;
}

/** node-postgres `ssl` for a libpq sslmode: false, or TLS options (the engine's one implementation). */
export function pgSsl(c: PgTlsConfig): false | ConnectionOptions {
  return sslOption(c);
}
