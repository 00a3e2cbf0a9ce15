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
import { mongoSandboxRefusal } from '../sandbox/binaries.js';
import { SANDBOX_ENGINES, Sandbox, assertDirUsable, cliEntry, fetchRouting, readSandboxFile, removeSandboxDir, sandboxDown, sandboxIdentity, validateSandboxOptions, type SandboxOptions } from '../sandbox/deploy.js';
import { isProcessAlive } from '../sandbox/proc.js';
import { ConfigError } from '../config/load.js';
import { stripCredentials } from '../log.js';
import { StartupError } from '../errors.js';
import { CTL_COMMANDS, runCtl } from './ctl.js';
import { HELP, asInvoked, version } from './help.js';

const USAGE = `usage:
  switchyard sandbox up [--engine ${SANDBOX_ENGINES.join('|')}] [--replicas N] [--sync] [--coordinators N]
                        [--api-port P] [--dir D] [--detach] [--keep]
  switchyard sandbox down [--dir D] [--keep]
  switchyard sandbox status [--dir D]
  switchyard agent [--config FILE]          (YAML or JSON; SWITCHYARD_* environment variables win)
  switchyard coordinator [--config FILE] [--sentinel-port P]
  switchyard check --config FILE [--connect] [--daemon agent|coordinator]
  switchyard ctl list|events|history|explain <op>|switchover [--to N]|failover --to N|pause|resume
                 [--api URL] [--cluster NAME] [--token T] [--json]
  switchyard --version
\`switchyard <command> --help\` for more.`;

export class UsageError extends Error {}

const DEFAULT_DIR = '.switchyard/sandbox';

function int(name: string, v: string | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (v.trim() === '' || !Number.isInteger(n)) throw new UsageError(`--${name} ${JSON.stringify(v)} is not a whole number`);
  return n;
}

/** `--replicas -1` is read by parseArgs as a missing value: take a negative number as the value. */
function negativeValues(argv: string[], names: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const next = argv[i + 1];
    if (names.includes(a) && next !== undefined && /^-\d/.test(next)) {
      out.push(`${a}=${next}`);
      i++;
    } else out.push(a);
  }
  return out;
}

async function sandboxUp(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: negativeValues(argv, ['--replicas', '--coordinators', '--api-port']),
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
  // (MongoDB: one line naming the missing mongod; the sandbox does not spawn replica sets)
  if (values.engine === 'mongodb') mongoSandboxRefusal();
  const engine = SANDBOX_ENGINES.find((e) => e === values.engine);
  if (!engine) throw new UsageError(`--engine ${values.engine}: not an engine the sandbox runs; use ${SANDBOX_ENGINES.join(' or ')}`);
  const opts: SandboxOptions = {
    engine,
    replicas: int('replicas', values.replicas, 2),
    sync: values.sync,
    coordinators: int('coordinators', values.coordinators, 2),
    apiPort: int('api-port', values['api-port'], 7400),
    dir: values.dir,
    cluster: values.cluster,
  };
  if (values.settings) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(values.settings);
    } catch {
      throw new UsageError(`--settings ${JSON.stringify(values.settings)} is not valid JSON (e.g. '{"failAfterMs":2000}')`);
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new UsageError('--settings must be a JSON object, e.g. \'{"failAfterMs":2000}\'');
    opts.settings = parsed as Record<string, number | boolean | string>;
  }
  validateSandboxOptions(opts);
  if (values.detach) return detach(argv, opts);

  const sandbox = new Sandbox(opts);
  const progress = (l: string): void => console.log(l);
  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    const removing = !values.supervise && !values.keep;
    console.log(removing ? `stopping the sandbox and removing its data in ${path.resolve(opts.dir)}…` : 'stopping the sandbox (its data stays)…');
    sandbox
      .down()
      .then(() => {
        if (removing) {
          const who = sandboxIdentity(opts.dir);
          if (who.ok) removeSandboxDir(path.resolve(opts.dir), who.marker);
        }
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
  else if (values.keep) console.log('press Ctrl-C to stop it (--keep: its data stays in the directory)');
  else console.log(asInvoked('press Ctrl-C to stop it and REMOVE its data (start with --keep to keep it), or run `switchyard sandbox down` from another shell'));
  // stay in the foreground: the children keep the event loop alive
}

/** Start a supervisor in the background and return once the sandbox is healthy. */
async function detach(argv: string[], opts: SandboxOptions): Promise<void> {
  const dir = path.resolve(opts.dir);
  assertDirUsable(dir, opts.dir);
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
      console.log(asInvoked(`running in the background (supervisor pid ${child.pid}); stop it with \`switchyard sandbox down --dir ${opts.dir}\``));
      return;
    }
    if (child.pid === undefined || !isProcessAlive(child.pid)) {
      flush();
      // everything it wrote is printed above: no log file is left behind in the temp directory
      fs.rmSync(logFile, { force: true });
      throw new HarnessError('SANDBOX_FAILED', 'the sandbox did not start (its output is above)');
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
  console.log(`  redis        ${stripCredentials(file.redis)}  pid ${alive(file.redisPid)}`);
  for (const c of file.coordinators) console.log(`  coordinator  ${c.id}  ${c.api}  pid ${alive(c.pid)}`);
  for (const n of file.nodes) {
    const role = table?.primary?.id === n.id ? 'primary' : table?.replicas.find((r) => r.id === n.id)?.healthy ? 'replica' : 'unhealthy';
    const seen = table?.nodes?.find((x) => x.id === n.id);
    const why = seen && role === 'unhealthy' ? ` (${seen.phase}: ${seen.reason})` : '';
    const zone = seen?.zone !== undefined ? `  zone ${seen.zone}` : '';
    console.log(`  node         ${n.id}  ${n.host}:${n.port}${zone}  ${role}${why}  agent pid ${alive(n.agentPid)}`);
  }
  if (!table) console.log('  (the API did not answer)');
}

/** The help key of the command argv runs (`ctl switchover`, `agent`, …), '' when none. */
function commandOf(argv: string[]): string {
  const [cmd, sub] = argv.filter((a) => !a.startsWith('-'));
  if (cmd && sub && HELP[`${cmd} ${sub}`]) return `${cmd} ${sub}`;
  return cmd && HELP[cmd] ? cmd : '';
}

/** The help key for argv when it asks for help (-h, --help, or `help …`), else null. */
function helpFor(argv: string[]): string | null {
  const words = argv[0] === 'help' ? argv.slice(1) : argv;
  const asked = argv[0] === 'help' || argv.length === 0 || argv.some((a) => a === '--help' || a === '-h');
  if (!asked) return null;
  return commandOf(words);
}

async function main(argv: string[]): Promise<void> {
  const help = helpFor(argv);
  if (help !== null) {
    console.log(asInvoked(HELP[help]!));
    return;
  }
  if (argv[0] === '--version' || argv[0] === '-V' || argv[0] === 'version') {
    console.log(version());
    return;
  }
  const [cmd, sub, ...rest] = argv;
  // a command that needs a subcommand, given none: its help, as for `switchyard` alone
  if ((cmd === 'sandbox' || cmd === 'ctl') && sub === undefined) {
    console.log(asInvoked(HELP[cmd]!));
    return;
  }
  switch (cmd) {
    case 'sandbox':
      if (sub === 'up') return sandboxUp(rest);
      if (sub === 'down') {
        const { values } = parseArgs({ args: rest, options: { dir: { type: 'string', default: DEFAULT_DIR }, keep: { type: 'boolean', default: false } } });
        console.log(`stopping the sandbox in ${path.resolve(values.dir)}`);
        return sandboxDown(values.dir, values.keep, (l) => console.log(l));
      }
      if (sub === 'status') return sandboxStatus(rest);
      throw new UsageError(`unknown sandbox command ${JSON.stringify(sub ?? '')}: use up, down or status`);
    case 'agent': {
      const { values } = parseArgs({ args: sub ? [sub, ...rest] : rest, options: { config: { type: 'string' } } });
      const { runAgent } = await import('../../agent/main.js');
      return runAgent(values.config);
    }
    case 'coordinator': {
      const { values } = parseArgs({ args: sub ? [sub, ...rest] : rest, options: { config: { type: 'string' }, 'sentinel-port': { type: 'string' } } });
      const { runCoordinator } = await import('../../coordinator/main.js');
      return runCoordinator(values.config, values['sentinel-port'] !== undefined ? { sentinelPort: int('sentinel-port', values['sentinel-port'], 0) } : {});
    }
    case 'check': {
      const { runCheck } = await import('../config/check.js');
      process.exitCode = await runCheck(sub ? [sub, ...rest] : rest);
      return;
    }
    case 'ctl':
      if (!sub || !CTL_COMMANDS.includes(sub)) throw new UsageError(`unknown ctl command ${JSON.stringify(sub ?? '')}: use ${CTL_COMMANDS.join(', ')}`);
      return runCtl(sub, rest);
    default:
      throw new UsageError(`unknown command ${JSON.stringify(cmd)}`);
  }
}

const isParseError = (err: unknown): boolean => ['ERR_PARSE_ARGS_UNKNOWN_OPTION', 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE', 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL'].includes((err as { code?: string }).code ?? '');

function isExpected(err: unknown): boolean {
  return err instanceof HarnessError || err instanceof ConfigError || err instanceof StartupError || err instanceof UsageError || isParseError(err) || (err as { name?: string }).name === 'CtlError';
}

const argv = process.argv.slice(2);
main(argv).catch((err: unknown) => {
  if (isExpected(err)) {
    console.error(asInvoked(`switchyard: ${(err as Error).message}`));
    if (err instanceof UsageError) console.error(asInvoked(USAGE));
    // a flag the command does not take: point at the command's own help
    if (isParseError(err)) console.error(asInvoked(`see \`switchyard ${commandOf(argv) ? `${commandOf(argv)} ` : ''}--help\` for its options`));
  } else {
    console.error(err);
  }
  // a bad configuration exits 2 (as the issue asks: scripts can tell it from a failure)
  process.exit(err instanceof ConfigError ? 2 : 1);
});
