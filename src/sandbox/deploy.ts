/**
 * The sandbox: a whole deployment on loopback. One Redis, a primary and N replicas,
 * one agent per node (managing its node's process), N coordinators serving the API.
 *
 * The process that runs `up` (or, with --detach, a supervisor it starts) is the parent
 * of Redis, the agents and the coordinators; the agents are the parents of the
 * postmasters. Nothing is daemonized, so every exit is seen and reaped.
 */
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { HarnessError } from './errors.js';
import { assertPortFree, freePorts } from './ports.js';
import { stopPostgres } from './postgres.js';
import { isProcessAlive, killAndWait, ensureTraversable } from './proc.js';
import { spawnRedis, stopRedis, waitRedisReady } from './redis.js';
import { findPgBin, findRedisServer } from './binaries.js';
import { AGENT_ROLE, REDIS_ACL_USER, REPLICATION_ROLE, writeSandboxSecrets } from './secrets.js';
import { arrangeRedisNodes, redisNodeIds, redisPidFile, sweepRedisNodes } from './redis-nodes.js';
import { assertDirUsable, MARKER_FILE, readSandboxFile, removeSandboxDir, sandboxFilePath, sandboxIdentity, validateSandboxOptions } from './sandbox-file.js';
import type { Progress, SandboxFile, SandboxMarker, SandboxNode, SandboxOptions } from './sandbox-file.js';
import { spawnDaemon, timed, waitHealthy, type ChildInfo } from './children.js';
import { initPostgres, type Auth } from './init-postgres.js';

// the public interface stays here: the files, the children's reports and the set-up live in their own modules
export {
  assertDirUsable,
  MARKER_FILE,
  readSandboxFile,
  removeSandboxDir,
  SANDBOX_ENGINES,
  sandboxFilePath,
  sandboxIdentity,
  validateSandboxOptions,
  type Progress,
  type SandboxFile,
  type SandboxMarker,
  type SandboxNode,
  type SandboxOptions,
} from './sandbox-file.js';
export { cliEntry, describeChildExit, fetchRouting, logTail, type RoutingTableLike } from './children.js';

/** A running sandbox, owned by this process. */
export class Sandbox {
  children: ChildProcess[] = [];
  /** name and log file of each child (for the start-up error) */
  readonly childInfo = new Map<ChildProcess, ChildInfo>();
  file: SandboxFile | null = null;
  sandboxId = '';
  private stopped = false;

  constructor(readonly opts: SandboxOptions) {}

  get dir(): string {
    return path.resolve(this.opts.dir);
  }

  async up(progress: Progress): Promise<SandboxFile> {
    const o = this.opts;
    validateSandboxOptions(o);
    assertDirUsable(this.dir, o.dir);
    // fail before starting anything
    if (this.opts.engine === 'postgres') findPgBin();
    findRedisServer();
    const apiPorts = Array.from({ length: o.coordinators }, (_, i) => o.apiPort + i);
    for (const [i, p] of apiPorts.entries()) await assertPortFree(p, `API of coordinator c${i + 1}`, '--api-port');

    const createdFrom = fs.mkdirSync(this.dir, { recursive: true }) ?? null;
    this.sandboxId = randomBytes(8).toString('hex');
    const marker: SandboxMarker = { sandboxId: this.sandboxId, createdAt: new Date().toISOString(), createdFrom };
    fs.writeFileSync(path.join(this.dir, MARKER_FILE), JSON.stringify(marker) + '\n');
    ensureTraversable(this.dir);
    try {
      return await this.start(progress, apiPorts);
    } catch (err) {
      await this.down().catch(() => {});
      throw err;
    }
  }

  private async start(progress: Progress, apiPorts: number[]): Promise<SandboxFile> {
    const o = this.opts;
    const dir = this.dir;
    const redisEngine = o.engine === 'redis';
    const nodeIds = redisEngine ? redisNodeIds(o.replicas + 1) : Array.from({ length: o.replicas + 1 }, (_, i) => `pg${i + 1}`);
    // one call: ports it hands out are distinct (Redis: a Sentinel port per coordinator too)
    const [redisPort, ...rest] = await freePorts(nodeIds.length + 1 + (redisEngine ? o.coordinators : 0));
    const pgPorts = rest.slice(0, nodeIds.length);
    const sentinelPorts = rest.slice(nodeIds.length);
    const secrets = writeSandboxSecrets(dir, o.pgPassword !== undefined ? { pgSuperuserPassword: o.pgPassword } : {});

    // the coordination Redis: one ACL user with a password, the default user off
    const redisDir = path.join(dir, 'redis');
    fs.mkdirSync(redisDir, { recursive: true });
    // the coordination store as the operator's guide asks: ACL, appendonly, noeviction (Redis's default)
    const redis = spawnRedis({ port: redisPort!, dir: redisDir, aclFile: secrets.redisAclFile, persistence: true });
    this.children.push(redis);
    this.childInfo.set(redis, { name: 'the coordination Redis', logFile: path.join(redisDir, `redis-${redisPort}.log`) });
    await timed(progress, `redis on 127.0.0.1:${redisPort} (ACL user ${REDIS_ACL_USER})`, () =>
      waitRedisReady(redisPort!, 10_000, '127.0.0.1', redis, { user: REDIS_ACL_USER, password: secrets.redisPassword }),
    );
    // the daemons get the bare URL and read the password from a file; sandbox.json's URL carries both, for users
    const redisUrl = `redis://127.0.0.1:${redisPort}`;
    const redisUrlForUsers = `redis://${REDIS_ACL_USER}:${secrets.redisPassword}@127.0.0.1:${redisPort}`;
    const storeAuth = { redisUser: REDIS_ACL_USER, redisPasswordFile: secrets.redisPasswordFile };

    // PostgreSQL: scram-sha-256 for every connection, replication included; the agents log in as their own role
    const superuser = { user: 'postgres', password: secrets.pgSuperuserPassword };
    const agentLogin = { user: AGENT_ROLE, replicationUser: REPLICATION_ROLE, passfile: secrets.agentPassfile };
    const dataDir = (id: string): string => path.join(dir, 'data', id);
    fs.mkdirSync(path.join(dir, 'data'), { recursive: true });
    ensureTraversable(path.join(dir, 'data'));
    const auth: Auth = { secrets, storeAuth, superuser, agentLogin, redisUrlForUsers };
    if (redisEngine) arrangeRedisNodes(nodeIds.map((id, i) => ({ id, port: pgPorts[i]!, dataDir: dataDir(id) })));
    else await initPostgres(progress, nodeIds, pgPorts, dataDir, auth);
    return this.startDaemons(progress, { apiPorts, nodeIds, pgPorts, sentinelPorts }, dataDir, redisUrl, redis, auth);
  }

  private async startDaemons(
    progress: Progress,
    { apiPorts, nodeIds, pgPorts, sentinelPorts }: { apiPorts: number[]; nodeIds: string[]; pgPorts: number[]; sentinelPorts: number[] },
    dataDir: (id: string) => string,
    redisUrl: string,
    redis: ChildProcess,
    { secrets, storeAuth, agentLogin, redisUrlForUsers }: Auth,
  ): Promise<SandboxFile> {
    const o = this.opts;
    const dir = this.dir;

    const cfgDir = path.join(dir, 'config');
    const logDir = path.join(dir, 'logs');
    fs.mkdirSync(cfgDir, { recursive: true });
    fs.mkdirSync(logDir, { recursive: true });
    const nodes: SandboxNode[] = [];
    for (const [i, id] of nodeIds.entries()) {
      const cfgPath = path.join(cfgDir, `agent-${id}.json`);
      const cfg = {
        cluster: o.cluster,
        node: id,
        ...(o.engine === 'redis' ? { engine: 'redis' } : {}),
        redis: redisUrl,
        ...storeAuth,
        host: '127.0.0.1',
        port: pgPorts[i]!,
        dataDir: dataDir(id),
        // PostgreSQL: the agents log in as their least-privilege role (the managed Redis nodes have no ACL)
        ...(o.engine === 'redis' ? {} : { ...agentLogin, database: 'postgres' }),
        probeIntervalMs: o.probeIntervalMs ?? 200,
        probeTimeoutMs: 1000,
        ...(o.zones?.[i] !== undefined ? { zone: o.zones[i] } : {}),
      };
      fs.writeFileSync(cfgPath, JSON.stringify(cfg, null, 2), { mode: 0o600 });
      const logFile = path.join(logDir, `agent-${id}.log`);
      const child = spawnDaemon('agent', cfgPath, logFile);
      this.children.push(child);
      this.childInfo.set(child, { name: `agent ${id}`, logFile });
      const pidFile = o.engine === 'redis' ? redisPidFile({ dataDir: dataDir(id), port: pgPorts[i]! }) : path.join(dataDir(id), 'postmaster.pid');
      nodes.push({ id, host: '127.0.0.1', port: pgPorts[i]!, dataDir: dataDir(id), agentPid: child.pid!, pidFile });
    }
    progress(`  ✓ ${nodes.length} ${nodes.length === 1 ? 'agent' : 'agents'} started`);

    const coordinators: SandboxFile['coordinators'] = [];
    for (const [i, port] of apiPorts.entries()) {
      const id = `c${i + 1}`;
      const cfgPath = path.join(cfgDir, `coordinator-${id}.json`);
      const cfg = {
        id,
        redis: redisUrl,
        ...storeAuth,
        clusters: [{ name: o.cluster, engine: o.engine, settings: { ...(o.sync ? { synchronous: true } : {}), ...(o.settings ?? {}) } }],
        api: { host: '127.0.0.1', port },
        adminTokenFile: secrets.adminTokenFile,
        leaseTtlMs: o.leaseTtlMs ?? 3000,
      };
      fs.writeFileSync(cfgPath, JSON.stringify(cfg, null, 2), { mode: 0o600 });
      const logFile = path.join(logDir, `coordinator-${id}.log`);
      const sentinelPort = sentinelPorts[i];
      const child = spawnDaemon('coordinator', cfgPath, logFile, sentinelPort !== undefined ? ['--sentinel-port', String(sentinelPort)] : []);
      this.children.push(child);
      this.childInfo.set(child, { name: `coordinator ${id}`, logFile });
      coordinators.push({ id, pid: child.pid!, api: `http://127.0.0.1:${port}`, ...(sentinelPort !== undefined ? { sentinelPort } : {}) });
    }
    progress(`  ✓ ${coordinators.length} ${coordinators.length === 1 ? 'coordinator' : 'coordinators'} started`);

    const file: SandboxFile = {
      sandboxId: this.sandboxId,
      cluster: o.cluster,
      engine: o.engine,
      api: coordinators[0]!.api,
      adminToken: secrets.adminToken,
      redis: redisUrlForUsers,
      redisPid: redis.pid!,
      supervisorPid: process.pid,
      nodes,
      coordinators,
      connection: o.engine === 'redis' ? { user: 'default', database: '0' } : { user: 'postgres', database: 'postgres', password: secrets.pgSuperuserPassword },
      ...(sentinelPorts.length > 0 ? { sentinel: { masterName: o.cluster, ports: sentinelPorts } } : {}),
    };
    fs.writeFileSync(sandboxFilePath(dir), JSON.stringify(file, null, 2) + '\n', { mode: 0o600 });
    this.file = file;
    await timed(progress, 'routing table shows the primary and every replica healthy, on every coordinator', () => waitHealthy(file, 60_000, this.children, dir, this.childInfo));
    return file;
  }

  /** Stop everything this sandbox started (coordinators, agents and their nodes, Redis). */
  async down(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    const kids = [...this.children].reverse();
    for (const c of kids) {
      if (c.pid === undefined || c.exitCode !== null || c.signalCode !== null) continue;
      await killAndWait(c.pid, 'SIGTERM', 20_000).catch(() => {});
    }
    await sweepPostmasters(this.dir);
    const redis = this.children[0];
    if (redis) await stopRedis(redis).catch(() => {});
  }
}

/** Kill any postmaster still running on a sandbox data directory (its agent was killed). */
export async function sweepPostmasters(dir: string): Promise<void> {
  await sweepRedisNodes(dir);
  const dataRoot = path.join(dir, 'data');
  if (!fs.existsSync(dataRoot)) return;
  for (const name of fs.readdirSync(dataRoot)) {
    const pidFile = path.join(dataRoot, name, 'postmaster.pid');
    if (!fs.existsSync(pidFile)) continue;
    const pid = Number(fs.readFileSync(pidFile, 'utf8').split('\n')[0]);
    if (Number.isInteger(pid) && pid > 0 && isProcessAlive(pid)) await stopPostgres(pid, 'immediate').catch(() => {});
  }
}

/**
 * Stop a sandbox from its sandbox.json (the supervisor, then anything left), and remove
 * what it created unless keep. Refuses any directory that is not a sandbox this code
 * wrote (see sandboxIdentity): it never deletes a stranger's files.
 */
export async function sandboxDown(dir: string, keep: boolean, progress: Progress): Promise<void> {
  const abs = path.resolve(dir);
  const who = sandboxIdentity(abs);
  if (!who.ok) throw new HarnessError('NOT_A_SANDBOX', `refusing to touch ${abs}: ${who.why.replace(`${abs} `, 'it ')}; nothing was stopped or removed`);
  let file: SandboxFile | null = null;
  if (fs.existsSync(sandboxFilePath(abs))) file = readSandboxFile(abs);
  if (file) {
    if (file.supervisorPid && file.supervisorPid !== process.pid && isProcessAlive(file.supervisorPid)) {
      await timed(progress, `supervisor ${file.supervisorPid} stopped`, () => killAndWait(file.supervisorPid, 'SIGTERM', 60_000));
    }
    const pids = [...file.coordinators.map((c) => c.pid), ...file.nodes.map((n) => n.agentPid)];
    for (const pid of pids) if (isProcessAlive(pid)) await killAndWait(pid, 'SIGTERM', 20_000).catch(() => {});
  }
  await sweepPostmasters(abs);
  if (file && isProcessAlive(file.redisPid)) await stopRedis(file.redisPid).catch(() => {});
  progress('  ✓ every process stopped');
  if (!keep) {
    const left = removeSandboxDir(abs, who.marker);
    if (left.length === 0) progress(`  ✓ removed ${abs}`);
    else progress(`  ✓ removed the sandbox's data from ${abs}; kept what it did not create: ${left.join(', ')}`);
  }
}
