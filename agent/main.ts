/** `switchyard agent`: load the config, run the agent until SIGTERM/SIGINT; SIGHUP reloads. */
import { AgentConfig } from '../src/config/schemas.js';
import { ConfigError, loadAgentConfigFrom } from '../src/config/load.js';
import { diffConfig } from '../src/config/reload.js';
import { createLogger, redactConfig } from '../src/log.js';
import { Agent } from './agent.js';

/** The agent's config: the file (YAML or JSON), then SWITCHYARD_* and the seed's aliases. */
export function loadAgentConfig(configPath: string | undefined, env: NodeJS.ProcessEnv = process.env): AgentConfig {
  return loadAgentConfigFrom(configPath, env).config;
}

export async function runAgent(configPath: string | undefined): Promise<void> {
  const loaded = loadAgentConfigFrom(configPath);
  const cfg = loaded.config;
  const log = createLogger(`agent:${cfg.node}`, cfg.logLevel);
  for (const w of loaded.warnings) log.warn(w);
  log.debug({ config: redactConfig(cfg) }, 'configuration');
  const agent = new Agent(cfg, log);
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    // the job worker finishes the job in hand (BullMQ's close waits for it); queued jobs stay for the next agent
    log.info({ signal }, 'stopping: finishing the job in hand, then leaving');
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
  process.on('SIGHUP', () => {
    let next: AgentConfig;
    try {
      next = loadAgentConfigFrom(configPath).config;
    } catch (err) {
      log.error({ problems: err instanceof ConfigError ? err.problems : [(err as Error).message] }, 'reload refused: the new configuration is invalid; keeping the running one');
      return;
    }
    const d = diffConfig(AgentConfig, cfg, next);
    const live = cfg as { probeIntervalMs: number; logLevel: string };
    const intervalChanged = live.probeIntervalMs !== next.probeIntervalMs;
    live.probeIntervalMs = next.probeIntervalMs;
    // the probe waiting on the old interval's timer runs now; the next ones keep the new interval
    if (intervalChanged) agent.probeNow();
    live.logLevel = next.logLevel;
    log.level = next.logLevel;
    log.info({ applied: d.live, needRestart: d.restart }, d.live.length + d.restart.length === 0 ? 'reloaded: nothing changed' : 'reloaded');
  });
  await agent.start();
}
