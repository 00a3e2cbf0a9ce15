/**
 * The sandbox's secrets: generated passwords and tokens, each in its own file under
 * `<dir>/secrets/` (0600), handed to the daemons as `*File` settings, so no secret sits
 * in a config file, on a command line or in a log. The coordination Redis gets an ACL
 * file holding only the password's SHA-256 (redis-server's `#<hash>` form).
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { chownToPg } from './proc.js';

/** The Redis ACL user the daemons log in as (the `default` user is turned off). */
export const REDIS_ACL_USER = 'switchyard';
/** The agents' least-privilege PostgreSQL role (see agentRoleSql). */
export const AGENT_ROLE = 'switchyard_agent';
/** The role standbys stream as (see replicationRoleSql). */
export const REPLICATION_ROLE = 'replicator';

export interface SandboxSecrets {
  dir: string;
  /** the postgres superuser's password (clients: sandbox.json `connection.password`) */
  pgSuperuserPassword: string;
  /** the agents' role password, in a libpq passfile the walreceivers read too */
  agentPassword: string;
  /** the replication role's password, in the same passfile */
  replicationPassword: string;
  agentPassfile: string;
  redisPassword: string;
  redisPasswordFile: string;
  redisAclFile: string;
  adminToken: string;
  adminTokenFile: string;
}

/** 24 random bytes as hex: no character needs quoting in a URL, a conninfo or a passfile. */
export function generateSecret(): string {
  return randomBytes(24).toString('hex');
}

/** A redis ACL file: the default user off, one user with its password's SHA-256, keys and channels under `sy:`. */
export function redisAclText(user: string, password: string): string {
  const hash = createHash('sha256').update(password).digest('hex');
  return [
    'user default off',
    // the line docs/operations.md recommends: no admin or dangerous command (CONFIG SET,
    // SHUTDOWN, REPLICAOF, ACL, FLUSHALL, KEYS...) but INFO, CLIENT and CONFIG GET
    `user ${user} on #${hash} resetkeys ~sy:* resetchannels &sy:* +@all -@admin -@dangerous +info +client +config|get`,
    '',
  ].join('\n');
}

/**
 * Write every secret of a new sandbox under `<dir>/secrets` (0711: the postgres user
 * may reach its passfile, nobody may list the directory). `pgSuperuserPassword` may be
 * given (tests); everything else is generated.
 */
export function writeSandboxSecrets(sandboxDir: string, opts: { pgSuperuserPassword?: string } = {}): SandboxSecrets {
  const dir = path.join(sandboxDir, 'secrets');
  fs.mkdirSync(dir, { recursive: true, mode: 0o711 });
  fs.chmodSync(dir, 0o711);
  const put = (name: string, text: string): string => {
    const file = path.join(dir, name);
    fs.writeFileSync(file, text, { mode: 0o600 });
    fs.chmodSync(file, 0o600);
    return file;
  };
  const s = {
    pgSuperuserPassword: opts.pgSuperuserPassword ?? generateSecret(),
    agentPassword: generateSecret(),
    replicationPassword: generateSecret(),
    redisPassword: generateSecret(),
    adminToken: generateSecret(),
  };
  // libpq passfile: host:port:database:user:password; the walreceiver (the postgres user) reads it
  const agentPassfile = put('agent.pgpass', `*:*:*:${AGENT_ROLE}:${s.agentPassword}\n*:*:*:${REPLICATION_ROLE}:${s.replicationPassword}\n`);
  chownToPg(agentPassfile);
  return {
    dir,
    ...s,
    agentPassfile,
    redisPasswordFile: put('redis.password', s.redisPassword + '\n'),
    redisAclFile: put('redis.acl', redisAclText(REDIS_ACL_USER, s.redisPassword)),
    adminToken: s.adminToken,
    adminTokenFile: put('admin.token', s.adminToken + '\n'),
  };
}
