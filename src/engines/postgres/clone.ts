/**
 * Cloning a streaming standby with pg_basebackup, over the configured connection
 * (user, or the replication user when one is set; password or passfile; sslmode), keeping the node's own port and listen address.
 */
import * as path from 'node:path';
import type { Connection } from '../types.js';
import { appendNodeConf, updateAutoConf, writeStandbySignal } from './conf.js';
import { conninfo, libpqEnv, replicationConninfo, replicationLogin } from './connection.js';
import { prepareDataDir } from './owner.js';
import { runPgTool } from './tools.js';

export interface CloneOptions {
  /** the primary to copy from: its host and port, with the configured user, password, sslmode */
  source: Connection;
  dataDir: string;
  /** this node's port */
  port: number;
  /** this node's listen_addresses; absent: whatever the copied postgresql.conf says (e.g. the sandbox's loopback) */
  listen?: string | undefined;
  /** application_name the standby reports to the primary (pg_stat_replication): the node id */
  appName: string;
  timeoutMs?: number;
}

/**
 * pg_basebackup a standby of `source` into `dataDir` (absent or empty), with
 * standby.signal, its own port (and listen address when given) and a primary_conninfo
 * naming it.
 */
export async function cloneReplica(opts: CloneOptions): Promise<void> {
  const dataDir = path.resolve(opts.dataDir);
  prepareDataDir(dataDir);
  // a replication connection: as the replication user when one is configured
  const login = replicationLogin(opts.source);
  await runPgTool('pg_basebackup', ['-d', conninfo(login), '-w', '-D', dataDir, '-X', 'stream', '-c', 'fast'], {
    cwd: path.dirname(dataDir),
    timeoutMs: opts.timeoutMs ?? 300_000,
    errorCode: 'BASEBACKUP_FAILED',
    env: libpqEnv(login),
  });
  // The copied postgresql.conf carries the primary's port: later lines win.
  appendNodeConf(dataDir, `replica ${opts.appName}`, { port: opts.port, listen: opts.listen });
  updateAutoConf(dataDir, { primary_conninfo: replicationConninfo(opts.source, opts.source, opts.appName) });
  writeStandbySignal(dataDir);
}
