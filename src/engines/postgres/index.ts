/**
 * The PostgreSQL engine (streaming replication): probe, LSN positions, the actions the
 * coordinator sends, and process control of a node whose data directory the agent
 * manages. Registered in `src/engines/index.ts`.
 */
import type { Connection, Engine, EngineAction, EngineLog, ManagedSpec } from '../types.js';
import { PostgresActions } from './actions.js';
import { ManagedPostgres } from './managed.js';
import { lsnPositions } from './position.js';
import { PostgresProber } from './probe.js';

const SUPPORTED: ReadonlySet<EngineAction> = new Set<EngineAction>(['promote', 'demote', 'follow', 'rejoin', 'fence', 'unfence', 'restart', 'sync']);

export const postgresEngine = {
  name: 'postgres',
  position: lsnPositions,
  supports: SUPPORTED,
  electsItself: false,
  /** PostgreSQL's SSLRequest (length 8, code 80877103): a live server answers one byte, 'S' or 'N' */
  hello: Uint8Array.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]),
  prober: (conn: Connection, timeoutMs: number, onLost?: () => void) => new PostgresProber(conn, timeoutMs, onLost),
  node: (conn: Connection, nodeId: string) => new PostgresActions(conn, nodeId),
  managed: (spec: ManagedSpec, log: EngineLog) => new ManagedPostgres(spec, log),
} satisfies Engine;

export { PostgresActions, setReadOnly, setSyncStandbys, syncStandbyNames, forkLsnOf, forkOfHistory, NotPrimaryError } from './actions.js';
export { ManagedPostgres, listenAddressesOf } from './managed.js';
export { PostgresProber, withClient, classifyPgError, upstreamFromConninfo, type PgTarget, type PgProbe } from './probe.js';
export { cloneReplica, type CloneOptions } from './clone.js';
export { spawnPostgres, waitReady, stopPostgres, isPostmasterOf, readPostmasterPid, defaultLogFile } from './process.js';
export { runPgTool, controlData, walEnd, walEndFromWaldumpError } from './tools.js';
export { updateAutoConf, readAutoConf, appendNodeConf, confString } from './conf.js';
export { conninfo, conninfoValue, replicationConninfo, replicationLogin, pgClientConfig, passwordFromPassfile, libpqEnv } from './connection.js';
export { findPgBin, pgBinary, setPgBin } from './binaries.js';
export { lsnPositions } from './position.js';
