/** `switchyard coordinator`: follow every configured cluster, contend for their leases, serve the API. */
import { buildApi } from '../src/api/server.js';
import { CoordinatorConfig } from '../src/config/schemas.js';
import { compact, envNumber, readJsonFile, validateConfig } from '../src/config/load.js';
import { createLogger } from '../src/log.js';
import { ClusterRuntime } from './cluster.js';

export function loadCoordinatorConfig(configPath: string | undefined, env: NodeJS.ProcessEnv = process.env): CoordinatorConfig {
  if (configPath) return validateConfig(CoordinatorConfig, readJsonFile(configPath), configPath);
  const raw = compact({
    id: env.SWITCHYARD_COORDINATOR_ID,
    redis: env.SWITCHYARD_REDIS,
    clusters: env.SWITCHYARD_CLUSTER ? env.SWITCHYARD_CLUSTER.split(',').map((name) => ({ name: name.trim() })) : undefined,
    api: compact({ host: env.SWITCHYARD_API_HOST, port: envNumber(env, 'SWITCHYARD_API_PORT') }),
    adminToken: env.SWITCHYARD_ADMIN_TOKEN,
    leaseTtlMs: envNumber(env, 'SWITCHYARD_LEASE_TTL_MS'),
    logLevel: env.SWITCHYARD_LOG_LEVEL,
  });
  return validateConfig(CoordinatorConfig, raw, 'environment (SWITCHYARD_*)');
}

export interface RunningCoordinator {
  url: string;
  clusters: Map<string, ClusterRuntime>;
  stop(): Promise<void>;
}

export async function startCoordinator(cfg: CoordinatorConfig): Promise<RunningCoordinator> {
  const log = createLogger(`coordinator:${cfg.id}`, cfg.logLevel);
  const clusters = new Map<string, ClusterRuntime>();
  for (const c of cfg.clusters) {
    clusters.set(
      c.name,
      new ClusterRuntime({ name: c.name, engine: c.engine, settings: c.settings, coordinatorId: cfg.id, redisUrl: cfg.redis, leaseTtlMs: cfg.leaseTtlMs, tickMs: cfg.tickMs, log }),
    );
  }
  const app = buildApi({ clusters, coordinatorId: cfg.id, adminToken: cfg.adminToken, loggerInstance: log.child({ component: 'api' }) });
  for (const c of clusters.values()) await c.start();
  const url = await app.listen({ host: cfg.api.host, port: cfg.api.port });
  log.info({ url, clusters: [...clusters.keys()] }, 'coordinator serving');
  return {
    url,
    clusters,
    async stop() {
      await app.close();
      for (const c of clusters.values()) await c.stop();
    },
  };
}

export async function runCoordinator(configPath: string | undefined): Promise<void> {
  const cfg = loadCoordinatorConfig(configPath);
  const running = await startCoordinator(cfg);
  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    running.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
