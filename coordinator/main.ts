/** `switchyard coordinator`: follow every configured cluster, contend for their leases, serve the API. */
import type { Logger } from 'pino';
import { buildApi } from '../src/api/server.js';
import { ApiAuth } from '../src/api/auth.js';
import { CoordinatorConfig } from '../src/config/schemas.js';
import { ConfigError, loadCoordinatorConfigFrom } from '../src/config/load.js';
import { diffConfig } from '../src/config/reload.js';
import { storeOptions } from '../src/config/connect.js';
import { createLogger, redactConfig } from '../src/log.js';
import { Alerts } from '../src/alerts/alerts.js';
import { StartupError } from '../src/errors.js';
import { SentinelServer } from '../src/sentinel/server.js';
import { runtimeRoutingSource, SentinelRegistry } from '../src/sentinel/sources.js';
import { ClusterRuntime } from './cluster.js';
import { claimCoordinatorId } from './identity.js';

/** The Sentinel-compatible endpoint (docs/redis.md): `--sentinel-port` or SWITCHYARD_SENTINEL_PORT. */
export interface SentinelEndpointOptions {
  port: number;
  /** listen address (default: the API's host) */
  host?: string;
  /** the address other coordinators and clients reach it at (default: host) */
  announceHost?: string;
  /** delay of +switch-master (docs/redis.md, ioredis failoverDetector); SWITCHYARD_SENTINEL_SWITCH_DELAY_MS */
  switchMasterDelayMs?: number;
}

/** The coordinator's config: the file (YAML or JSON), then SWITCHYARD_* and the seed's aliases. */
export function loadCoordinatorConfig(configPath: string | undefined, env: NodeJS.ProcessEnv = process.env): CoordinatorConfig {
  return loadCoordinatorConfigFrom(configPath, env).config;
}

export interface RunningCoordinator {
  url: string;
  clusters: Map<string, ClusterRuntime>;
  log: Logger;
  /** apply a new config's live settings; returns what changed */
  reload(next: CoordinatorConfig): { live: string[]; restart: string[] };
  /** the Sentinel endpoint, when asked for */
  sentinel?: { host: string; port: number; masterName: string };
  stop(): Promise<void>;
}

function adminTokens(cfg: CoordinatorConfig): Array<{ name: string; token: string }> {
  const out = cfg.adminToken ? [{ name: 'admin', token: cfg.adminToken }] : [];
  for (const t of cfg.adminTokens ?? []) if (t.token) out.push({ name: t.name, token: t.token });
  return out;
}

export async function startCoordinator(cfg: CoordinatorConfig, opts: { sentinel?: SentinelEndpointOptions; log?: Logger } = {}): Promise<RunningCoordinator> {
  const log = opts.log ?? createLogger(`coordinator:${cfg.id}`, cfg.logLevel);
  const identity = await claimCoordinatorId(cfg.id, cfg.redis, cfg.leaseTtlMs, log, storeOptions(cfg));
  const clusters = new Map<string, ClusterRuntime>();
  const redisOptions = storeOptions(cfg);
  for (const c of cfg.clusters) {
    clusters.set(
      c.name,
      new ClusterRuntime({
        name: c.name,
        engine: c.engine,
        settings: c.settings,
        coordinatorId: cfg.id,
        redisUrl: cfg.redis,
        redisOptions,
        leaseTtlMs: cfg.leaseTtlMs,
        leaseRenewMs: cfg.leaseRenewMs,
        tickMs: cfg.tickMs,
        log,
      }),
    );
  }
  const auth = new ApiAuth({ adminTokens: adminTokens(cfg), readToken: cfg.readToken, adminRateLimit: cfg.api.adminRateLimit });
  const app = buildApi({ clusters, coordinatorId: cfg.id, auth, bodyLimit: cfg.api.bodyLimitBytes, defaultMaxLagMs: cfg.api.defaultMaxLagMs, loggerInstance: log.child({ component: 'api' }) });
  const alerts = new Alerts({ clusters, webhooks: cfg.webhooks ?? [], redisUrl: cfg.redis, redisOptions, log: log.child({ component: 'alerts' }) });
  for (const c of clusters.values()) await c.start();
  await alerts.start();
  let url: string;
  try {
    url = await app.listen({ host: cfg.api.host, port: cfg.api.port });
  } catch (err) {
    await alerts.stop().catch(() => {});
    for (const c of clusters.values()) await c.stop().catch(() => {});
    await identity.release().catch(() => {});
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE') throw new StartupError('PORT_IN_USE', `port ${cfg.api.port} on ${cfg.api.host} is already in use: stop what listens there, or set api.port (SWITCHYARD_API_PORT)`);
    if (code === 'EACCES') throw new StartupError('PORT_DENIED', `not allowed to listen on ${cfg.api.host}:${cfg.api.port}: use a port above 1023, or set api.port (SWITCHYARD_API_PORT)`);
    if (code === 'EADDRNOTAVAIL') throw new StartupError('ADDRESS_UNAVAILABLE', `cannot listen on ${cfg.api.host}: no such local address (set api.host, SWITCHYARD_API_HOST)`);
    throw err;
  }
  log.info({ url, clusters: [...clusters.keys()] }, 'coordinator serving');
  const endpoint = opts.sentinel ? await startSentinel(cfg, clusters, opts.sentinel, log) : null;
  let current = cfg;
  return {
    url,
    clusters,
    log,
    ...(endpoint ? { sentinel: endpoint.address } : {}),
    reload(next) {
      const d = diffConfig(CoordinatorConfig, current, next);
      log.level = next.logLevel;
      for (const nc of next.clusters) {
        const rt = clusters.get(nc.name);
        if (rt && nc.settings) Object.assign(rt.settings, nc.settings);
      }
      auth.opts.adminRateLimit = next.api.adminRateLimit;
      alerts.configure(next.webhooks ?? []);
      current = next;
      return d;
    },
    async stop() {
      await endpoint?.stop();
      await alerts.stop();
      await app.close();
      // release every lease first: the other coordinators take over at once, not after a TTL
      await Promise.all([...clusters.values()].map((c) => c.stop()));
      await identity.release().catch(() => {});
    },
  };
}

/** Serve the Sentinel protocol for the coordinator's first Redis cluster (its name is the master name). */
async function startSentinel(cfg: CoordinatorConfig, clusters: Map<string, ClusterRuntime>, o: SentinelEndpointOptions, log: ReturnType<typeof createLogger>) {
  const c = cfg.clusters.find((x) => (x.engine as string) === 'redis') ?? cfg.clusters[0];
  const rt = c ? clusters.get(c.name) : undefined;
  if (!c || !rt) throw new Error('--sentinel-port: the coordinator has no cluster to serve');
  const host = o.host ?? cfg.api.host;
  const registry = new SentinelRegistry(cfg.redis, c.name, { id: cfg.id, host: o.announceHost ?? host, port: o.port }, { redisOptions: storeOptions(cfg) });
  const server = new SentinelServer({ masterName: c.name, source: runtimeRoutingSource(rt), host, port: o.port, id: cfg.id, peers: () => registry.peers(), log: log.child({ component: 'sentinel' }), switchMasterDelayMs: o.switchMasterDelayMs ?? 0 });
  const bound = await server.listen();
  await registry.start();
  return {
    address: { host: bound.host, port: bound.port, masterName: c.name },
    async stop() {
      await registry.stop();
      await server.close();
    },
  };
}

export async function runCoordinator(configPath: string | undefined, opts: { sentinelPort?: number } = {}): Promise<void> {
  const loaded = loadCoordinatorConfigFrom(configPath);
  const cfg = loaded.config;
  const log = createLogger(`coordinator:${cfg.id}`, cfg.logLevel);
  for (const w of loaded.warnings) log.warn(w);
  log.debug({ config: redactConfig(cfg) }, 'configuration');
  const envPort = process.env.SWITCHYARD_SENTINEL_PORT ? Number(process.env.SWITCHYARD_SENTINEL_PORT) : undefined;
  const sentinelPort = opts.sentinelPort ?? envPort;
  if (sentinelPort !== undefined && !(Number.isInteger(sentinelPort) && sentinelPort > 0 && sentinelPort < 65536)) {
    throw new StartupError('CONFIG_INVALID', `sentinel port ${JSON.stringify(sentinelPort)} (--sentinel-port / SWITCHYARD_SENTINEL_PORT) is not a port number`);
  }
  const delay = Number(process.env.SWITCHYARD_SENTINEL_SWITCH_DELAY_MS ?? 0);
  if (!(Number.isInteger(delay) && delay >= 0)) throw new StartupError('CONFIG_INVALID', `SWITCHYARD_SENTINEL_SWITCH_DELAY_MS ${JSON.stringify(process.env.SWITCHYARD_SENTINEL_SWITCH_DELAY_MS)} is not a whole number of ms`);
  const running = await startCoordinator(cfg, { log, ...(sentinelPort !== undefined ? { sentinel: { port: sentinelPort, switchMasterDelayMs: delay } } : {}) });
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping: releasing the leases');
    running.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGHUP', () => {
    let next: CoordinatorConfig;
    try {
      next = loadCoordinatorConfigFrom(configPath).config;
    } catch (err) {
      log.error({ problems: err instanceof ConfigError ? err.problems : [(err as Error).message] }, 'reload refused: the new configuration is invalid; keeping the running one');
      return;
    }
    const d = running.reload(next);
    log.info({ applied: d.live, needRestart: d.restart }, d.live.length + d.restart.length === 0 ? 'reloaded: nothing changed' : 'reloaded');
  });
}
