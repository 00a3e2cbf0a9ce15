#!/usr/bin/env node
/**
 * `switchyard`: sandbox up|down|status, agent, coordinator, ctl …
 * Expected errors (bad flags, missing binaries, ports in use, bad config) print one
 * line and exit 1; only bugs print a stack.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { HarnessError } from '../sandbox/errors.js';
import { Sandbox, cliEntry, fetchRouting, readSandboxFile, sandboxDown, type SandboxOptions } from '../sandbox/deploy.js';
import { isProcessAlive } from '../sandbox/proc.js';
import { ConfigError } from '../config/load.js';
import { StartupError } from '../errors.js';
import { runCtl } from './ctl.js';

const USAGE = `usage:
  switchyard sandbox up [--engine postgres|redis] [--replicas N] [--sync] [--coordinators N]
                        [--api-port P] [--dir D] [--detach]
  switchyard sandbox down [--dir D] [--keep]
  switchyard sandbox status [--dir D]
  switchyard agent [--config FILE]          (or SWITCHYARD_* environment variables)
  switchyard coordinator [--config FILE]
  switchyard ctl list|events [--follow]|history|explain <op>|switchover [--to N]|failover --to N|pause|resume
                 [--api URL] [--cluster NAME]`;

export class UsageError extends Error {}

const DEFAULT_DIR = '.switchyard/sandbox';

function int(name: string, v: string | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n)) throw new UsageError(`--${name} ${JSON.stringify(v)} is not a whole number`);
  return n;
}

async function sandboxUp(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      engine: { type: 'string', default: 'postgres' },
      replicas: { type: 'string' },
      sync: { type: 'boolean', default: false },
      coordinators: { type: 'string' },
      'api-port': { type: 'string' },
      dir: { type: 'string', default: DEFAULT_DIR },
      detach: { type: 'boolean', default: false },
      keep: { type: 'boolean', default: false },
      supervise: { type: 'boolean', default: false },
      cluster: { type: 'string', default: 'sandbox' },
      settings: { type: 'string' },
    },
    strict: true,
  });
  if (values.engine !== 'postgres' && values.engine !== 'redis') throw new UsageError(`--engine ${values.engine}: use postgres or redis`);
  const opts: SandboxOptions = {
    engine: values.engine,
    replicas: int('replicas', values.replicas, 2),
    sync: values.sync,
    coordinators: int('coordinators', values.coordinators, 2),
    apiPort: int('api-port', values['api-port'], 7400),
    dir: values.dir,
    cluster: values.cluster,
  };
  if (values.settings) opts.settings = JSON.parse(values.settings) as Record<string, number | boolean | string>;
  if (values.detach) return detach(argv, opts);

  const sandbox = new Sandbox(opts);
  const progress = (l: string): void => console.log(l);
  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    console.log('stopping the sandbox…');
    sandbox
      .down()
      .then(() => {
        if (!values.supervise && !values.keep) fs.rmSync(path.resolve(opts.dir), { recursive: true, force: true });
        process.exit(0);
      })
      .catch(() => process.exit(1));
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  console.log(`starting a ${opts.engine} sandbox in ${path.resolve(opts.dir)}`);
  const t0 = Date.now();
  const file = await sandbox.up(progress);
  console.log(`sandbox ready in ${Date.now() - t0} ms`);
  console.log(`  API:     ${file.api}    (routing: ${file.api}/v1/clusters/${file.cluster}/routing)`);
  console.log(`  nodes:   ${file.nodes.map((n) => `${n.id}@${n.host}:${n.port}`).join('  ')}`);
  console.log(`  details: ${path.join(path.resolve(opts.dir), 'sandbox.json')}`);
  if (values.supervise) console.log('SANDBOX READY');
  else console.log('press Ctrl-C to stop it (or run `switchyard sandbox down` from another shell)');
  // stay in the foreground: the children keep the event loop alive
}

/** Start a supervisor in the background and return once the sandbox is healthy. */
async function detach(argv: string[], opts: SandboxOptions): Promise<void> {
  const dir = path.resolve(opts.dir);
  if (fs.existsSync(dir) && fs.readdirSync(dir).length > 0) {
    throw new HarnessError('DIR_EXISTS', `${dir} already exists: run \`switchyard sandbox down --dir ${opts.dir}\` or choose another --dir`);
  }
  const logFile = path.join(os.tmpdir(), `switchyard-supervisor-${process.pid}-${Date.now()}.log`);
  const fd = fs.openSync(logFile, 'a');
  const args = [cliEntry(), 'sandbox', 'up', ...argv.filter((a) => a !== '--detach'), '--supervise'];
  const child = spawn(process.execPath, args, { detached: true, stdio: ['ignore', fd, fd] });
  fs.closeSync(fd);
  child.unref();
  let printed = 0;
  const flush = (): string => {
    const text = fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8') : '';
    const lines = text.split('\n');
    for (const l of lines.slice(printed, lines.length - 1)) if (l !== 'SANDBOX READY') console.log(l);
    printed = Math.max(printed, lines.length - 1);
    return text;
  };
  for (;;) {
    await new Promise((r) => setTimeout(r, 100));
    const text = flush();
    if (text.includes('SANDBOX READY')) {
      const logs = path.join(dir, 'logs', 'supervisor.log');
      try {
        fs.copyFileSync(logFile, logs);
        fs.rmSync(logFile);
      } catch {
        // keep the temp log
      }
      console.log(`running in the background (supervisor pid ${child.pid}); stop it with: switchyard sandbox down --dir ${opts.dir}`);
      return;
    }
    if (child.pid === undefined || !isProcessAlive(child.pid)) {
      flush();
      throw new HarnessError('SANDBOX_FAILED', `the sandbox did not start (log: ${logFile})`);
    }
  }
}

async function sandboxStatus(argv: string[]): Promise<void> {
  const { values } = parseArgs({ args: argv, options: { dir: { type: 'string', default: DEFAULT_DIR }, json: { type: 'boolean', default: false } } });
  const file = readSandboxFile(values.dir);
  const table = await fetchRouting(file.api, file.cluster);
  if (values.json) {
    console.log(JSON.stringify({ sandbox: file, routing: table }, null, 2));
    return;
  }
  const alive = (pid: number): string => (isProcessAlive(pid) ? `${pid} up` : `${pid} down`);
  console.log(`cluster ${file.cluster} (${file.engine})  api ${file.api}`);
  console.log(`  redis        ${file.redis}  pid ${alive(file.redisPid)}`);
  for (const c of file.coordinators) console.log(`  coordinator  ${c.id}  ${c.api}  pid ${alive(c.pid)}`);
  for (const n of file.nodes) {
    const role = table?.primary?.id === n.id ? 'primary' : table?.replicas.find((r) => r.id === n.id)?.healthy ? 'replica' : 'unhealthy';
    console.log(`  node         ${n.id}  ${n.host}:${n.port}  ${role}  agent pid ${alive(n.agentPid)}`);
  }
  if (!table) console.log('  (the API did not answer)');
}

async function main(argv: string[]): Promise<void> {
  const [cmd, sub, ...rest] = argv;
  switch (cmd) {
    case 'sandbox':
      if (sub === 'up') return sandboxUp(rest);
      if (sub === 'down') {
        const { values } = parseArgs({ args: rest, options: { dir: { type: 'string', default: DEFAULT_DIR }, keep: { type: 'boolean', default: false } } });
        console.log(`stopping the sandbox in ${path.resolve(values.dir)}`);
        return sandboxDown(values.dir, values.keep, (l) => console.log(l));
      }
      if (sub === 'status') return sandboxStatus(rest);
      throw new UsageError(`unknown sandbox command ${JSON.stringify(sub ?? '')}`);
    case 'agent': {
      const { values } = parseArgs({ args: sub ? [sub, ...rest] : rest, options: { config: { type: 'string' } } });
      const { runAgent } = await import('../../agent/main.js');
      return runAgent(values.config);
    }
    case 'coordinator': {
      const { values } = parseArgs({ args: sub ? [sub, ...rest] : rest, options: { config: { type: 'string' } } });
      const { runCoordinator } = await import('../../coordinator/main.js');
      return runCoordinator(values.config);
    }
    case 'ctl':
      return runCtl(sub, rest);
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      console.log(USAGE);
      return;
    default:
      throw new UsageError(`unknown command ${JSON.stringify(cmd)}`);
  }
}

function isExpected(err: unknown): boolean {
  return err instanceof HarnessError || err instanceof ConfigError || err instanceof StartupError || err instanceof UsageError || (err as { code?: string }).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' || (err as { code?: string }).code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' || (err as { code?: string }).code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL' || (err as { name?: string }).name === 'CtlError';
}

main(process.argv.slice(2)).catch((err: unknown) => {
  if (isExpected(err)) {
    console.error(`switchyard: ${(err as Error).message}`);
    if (err instanceof UsageError) console.error(USAGE);
  } else {
    console.error(err);
  }
  process.exit(1);
});
