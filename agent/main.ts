/** `switchyard agent`: load the config, run the agent until SIGTERM/SIGINT. */
import { AgentConfig } from '../src/config/schemas.js';
import { compact, envNumber, readJsonFile, validateConfig } from '../src/config/load.js';
import { createLogger } from '../src/log.js';
import { Agent } from './agent.js';

export function loadAgentConfig(configPath: string | undefined, env: NodeJS.ProcessEnv = process.env): AgentConfig {
  if (configPath) return validateConfig(AgentConfig, readJsonFile(configPath), configPath);
  const raw = compact({
    cluster: env.SWITCHYARD_CLUSTER,
    node: env.SWITCHYARD_NODE,
    redis: env.SWITCHYARD_REDIS,
    host: env.SWITCHYARD_PG_HOST,
    port: envNumber(env, 'SWITCHYARD_PG_PORT'),
    priority: envNumber(env, 'SWITCHYARD_PRIORITY'),
    noFailover: env.SWITCHYARD_NO_FAILOVER === undefined ? undefined : env.SWITCHYARD_NO_FAILOVER === 'true' || env.SWITCHYARD_NO_FAILOVER === '1',
    dataDir: env.SWITCHYARD_DATA_DIR,
    user: env.SWITCHYARD_PG_USER,
    password: env.SWITCHYARD_PG_PASSWORD,
    database: env.SWITCHYARD_PG_DATABASE,
    probeIntervalMs: envNumber(env, 'SWITCHYARD_PROBE_INTERVAL_MS'),
    logLevel: env.SWITCHYARD_LOG_LEVEL,
  });
  return validateConfig(AgentConfig, raw, 'environment (SWITCHYARD_*)');
}

export async function runAgent(configPath: string | undefined): Promise<void> {
  const cfg = loadAgentConfig(configPath);
  const log = createLogger(`agent:${cfg.node}`, cfg.logLevel);
  const agent = new Agent(cfg, log);
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping');
    agent.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err: (err as Error).message }, 'stop failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  await agent.start();
}
