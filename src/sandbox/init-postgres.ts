/**
 * The sandbox's PostgreSQL set-up, before any agent runs: initdb the primary with
 * scram-sha-256, create the agents' and the replication roles, and clone each replica.
 */
import { agentRoleSql, cloneReplica, createRoles, initPrimary, replicationRoleSql, spawnPostgres, stopPostgres, waitReady } from './postgres.js';
import { timed } from './children.js';
import type { Progress } from './sandbox-file.js';
import { AGENT_ROLE, REPLICATION_ROLE, type writeSandboxSecrets } from './secrets.js';

/** The sandbox's credentials, as start() hands them to the PostgreSQL set-up and the daemons. */
export interface Auth {
  secrets: ReturnType<typeof writeSandboxSecrets>;
  storeAuth: { redisUser: string; redisPasswordFile: string };
  superuser: { user: string; password: string };
  agentLogin: { user: string; replicationUser: string; passfile: string };
  redisUrlForUsers: string;
}

/** initdb the first node, create the roles on it, then pg_basebackup every other node from it (the primary is stopped again after). */
export async function initPostgres(progress: Progress, nodeIds: string[], pgPorts: number[], dataDir: (id: string) => string, { secrets, superuser, agentLogin }: Auth): Promise<void> {
  await timed(progress, `initdb ${nodeIds[0]} (scram-sha-256)`, () => initPrimary({ dataDir: dataDir(nodeIds[0]!), port: pgPorts[0]!, ...superuser }));
  const boot = spawnPostgres({ dataDir: dataDir(nodeIds[0]!), port: pgPorts[0]! });
  try {
    await waitReady(pgPorts[0]!, 30_000, '127.0.0.1', { child: boot, dataDir: dataDir(nodeIds[0]!), ...superuser });
    await timed(progress, `roles ${AGENT_ROLE} (the agents) and ${REPLICATION_ROLE} (replication)`, () =>
      createRoles({ host: '127.0.0.1', port: pgPorts[0]!, database: 'postgres', ...superuser }, [
        { role: AGENT_ROLE, sql: agentRoleSql(AGENT_ROLE), password: secrets.agentPassword },
        { role: REPLICATION_ROLE, sql: replicationRoleSql(REPLICATION_ROLE), password: secrets.replicationPassword },
      ]),
    );
    for (let i = 1; i < nodeIds.length; i++) {
      await timed(progress, `pg_basebackup ${nodeIds[i]}`, () =>
        cloneReplica({ primaryHost: '127.0.0.1', primaryPort: pgPorts[0]!, dataDir: dataDir(nodeIds[i]!), port: pgPorts[i]!, appName: nodeIds[i]!, ...agentLogin }),
      );
    }
  } finally {
    await stopPostgres(boot, 'fast');
  }
}
