/**
 * The CLI's help and flag checks, as a user meets them: `--help` at every level and for
 * every subcommand, `--version`, and one-line errors for bad flags (before anything
 * starts, with nothing left behind).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { HELP } from '../../src/cli/help.js';
import { cliEntry } from '../../src/sandbox/deploy.js';
import { freePort } from '../../src/sandbox/ports.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sy-help-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function cli(args: string[], env: NodeJS.ProcessEnv = {}): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [cliEntry(), ...args], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function oneLineError(r: ReturnType<typeof cli>, pattern: RegExp): void {
  expect(r.code).toBe(1);
  expect(r.stderr.trim().split('\n')[0]).toMatch(pattern);
  expect(r.stderr).not.toMatch(/^\s+at /m);
}

describe('CLI help', () => {
  const keys = Object.keys(HELP);

  it('has help for every command and subcommand', () => {
    expect(keys.sort()).toEqual(
      ['', 'agent', 'check', 'coordinator', 'ctl', 'ctl events', 'ctl explain', 'ctl failover', 'ctl history', 'ctl list', 'ctl pause', 'ctl resume', 'ctl switchover', 'sandbox', 'sandbox down', 'sandbox status', 'sandbox up'].sort(),
    );
  });

  it.each(keys.map((k) => [k || '(top level)', k]))('switchyard %s --help', (_name, key) => {
    const words = key ? key.split(' ') : [];
    for (const flag of key === 'ctl switchover' || key === '' ? ['--help', '-h'] : ['--help']) {
      const r = cli([...words, flag]);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(r.stdout.trim()).toBe(HELP[key]!.trim());
      expect(r.stdout).toMatch(/^usage: switchyard/);
    }
    // `help <command>` too
    if (key === 'sandbox up' || key === 'ctl') expect(cli(['help', ...words]).stdout.trim()).toBe(HELP[key]!.trim());
  });

  it('no argument prints the top-level help; --version prints the version', () => {
    expect(cli([]).stdout.trim()).toBe(HELP['']!.trim());
    // the top level lists every command that has help of its own
    for (const k of keys.filter((x) => x && !x.includes(' '))) expect(HELP['']).toMatch(new RegExp(`^ {2}${k}\\b`, 'm'));
    // a command that needs a subcommand, given none, prints its help
    for (const k of ['sandbox', 'ctl']) {
      const r = cli([k]);
      expect(r.code).toBe(0);
      expect(r.stdout.trim()).toBe(HELP[k]!.trim());
    }
    const pkg = JSON.parse(fs.readFileSync(path.resolve(import.meta.dirname, '../../package.json'), 'utf8')) as { version: string };
    for (const f of ['--version', '-V']) expect(cli([f]).stdout.trim()).toBe(pkg.version);
  });

  it('every flag a usage line lists is in its help, and a flag a command does not take points at its help', () => {
    expect(HELP.coordinator).toMatch(/--sentinel-port P/);
    expect(HELP.agent).toMatch(/YAML or JSON/);
    const r = cli(['agent', '--bogus']);
    oneLineError(r, /Unknown option '--bogus'/);
    expect(r.stderr).toContain('see `switchyard agent --help` for its options');
    expect(cli(['ctl', 'list', '--limit', '3', '--frob']).stderr).toContain('see `switchyard ctl list --help` for its options');
    const check = cli(['check']);
    expect(check.code).toBe(2);
    expect(check.stderr).toBe('switchyard: check needs --config FILE\n');
  });

  it('the commands it suggests are the ones that work where it runs: `npx switchyard` under npx or npm start', () => {
    const npx = { npm_lifecycle_event: 'npx', npm_lifecycle_script: 'switchyard sandbox status' };
    const none = path.join(tmp, 'none');
    expect(cli(['sandbox', 'status', '--dir', none], npx).stderr).toContain(`start one with \`npx switchyard sandbox up --dir ${none}\``);
    expect(cli(['sandbox', 'status', '--dir', none], { npm_lifecycle_event: 'start', npm_lifecycle_script: 'node dist/src/cli/main.js sandbox up' }).stderr).toContain('`npx switchyard sandbox up');
    expect(cli(['ctl', '--help'], npx).stdout).toMatch(/^usage: npx switchyard ctl <command>/);
    expect(cli(['sandbox', 'frob'], npx).stderr).toMatch(/^ {2}npx switchyard sandbox down \[--dir D\]/m);
    // as npm really sets it: the command quoted
    expect(cli(['ctl', '--help'], { npm_lifecycle_event: 'npx', npm_lifecycle_script: "'switchyard' 'ctl' '--help'" }).stdout).toMatch(/^usage: npx switchyard ctl <command>/);
    // run as itself (or by another npm script): as it is named on the PATH
    const plain = cli(['sandbox', 'status', '--dir', none], { npm_lifecycle_event: 'test', npm_lifecycle_script: 'vitest run' });
    expect(plain.stderr).toContain('start one with `switchyard sandbox up');
    expect(plain.stderr).not.toContain('npx');
  });

  it('lists only the engines that work', () => {
    expect(HELP['sandbox up']).toMatch(/--engine E\s+postgres\|redis \(default postgres\)/);
    expect(HELP['sandbox up']).not.toMatch(/mongodb\b.*default/);
    // (no mongod on this machine: one line naming the missing binary; with one, one line saying the sandbox does not spawn sets)
    oneLineError(cli(['sandbox', 'up', '--engine', 'mongodb', '--dir', path.join(tmp, 'r')]), /mongod not found: sandbox --engine mongodb needs a mongod binary|--engine mongodb: the sandbox does not start a replica set yet/);
    oneLineError(cli(['sandbox', 'up', '--engine', 'mysql', '--dir', path.join(tmp, 'r')]), /--engine mysql: not an engine the sandbox runs; use postgres or redis$/);
    expect(fs.existsSync(path.join(tmp, 'r'))).toBe(false);
  });
});

describe('CLI flag checks', () => {
  it('ports must be 1-65535, at once (no hang, no "in use")', () => {
    for (const p of ['99999', '0', '65535']) {
      const t0 = Date.now();
      const r = cli(['sandbox', 'up', '--detach', '--api-port', p, '--dir', path.join(tmp, `p${p}`)]);
      oneLineError(r, new RegExp(`--api-port ${p}: use a port from 1 to 65534`));
      expect(r.stderr).not.toMatch(/in use/);
      expect(Date.now() - t0).toBeLessThan(20_000);
      expect(fs.existsSync(path.join(tmp, `p${p}`))).toBe(false);
    }
    oneLineError(cli(['sandbox', 'up', '--api-port', 'x']), /--api-port "x" is not a whole number/);
  });

  it('negative and out-of-range counts say what is wrong', () => {
    oneLineError(cli(['sandbox', 'up', '--replicas', '-1', '--dir', path.join(tmp, 'n')]), /--replicas -1: use 0 to 8/);
    oneLineError(cli(['sandbox', 'up', '--detach', '--replicas', '-1', '--dir', path.join(tmp, 'n')]), /--replicas -1: use 0 to 8/);
    oneLineError(cli(['sandbox', 'up', '--coordinators', '0', '--dir', path.join(tmp, 'n')]), /--coordinators 0: use 1 to 5/);
    oneLineError(cli(['sandbox', 'up', '--settings', '{nope', '--dir', path.join(tmp, 'n')]), /--settings .* is not valid JSON/);
    expect(fs.existsSync(path.join(tmp, 'n'))).toBe(false);
  });

  it('a failed detached start leaves no log file behind in the temp directory', () => {
    const logs = (): string[] => fs.readdirSync(os.tmpdir()).filter((f) => f.startsWith('switchyard-supervisor-'));
    const before = new Set(logs());
    const r = cli(['sandbox', 'up', '--detach', '--dir', path.join(tmp, 'nopg')], { PG_BIN: path.join(tmp, 'nowhere') });
    expect(r.code).toBe(1);
    expect(r.stdout + r.stderr).toMatch(/PostgreSQL server binaries not found/);
    expect(r.stderr).toMatch(/the sandbox did not start \(its output is above\)/);
    expect(logs().filter((f) => !before.has(f))).toEqual([]);
  });

  it('ctl: unknown commands and flags that do not apply are one-line errors', async () => {
    const closed = `http://127.0.0.1:${await freePort()}`;
    oneLineError(cli(['ctl', 'frob']), /unknown ctl command "frob": use list, events/);
    oneLineError(cli(['ctl', 'list', '--to', 'pg2', '--api', 'http://127.0.0.1:1', '--cluster', 'x']), /ctl list takes no --to/);
    oneLineError(cli(['ctl', 'events', '--limit', '0', '--api', 'http://127.0.0.1:1', '--cluster', 'x']), /--limit "0"/);
    oneLineError(cli(['ctl', 'events', '--after', 'yesterday', '--api', 'http://127.0.0.1:1', '--cluster', 'x']), /--after "yesterday" is neither a stream id/);
    oneLineError(cli(['ctl', 'list', '--api', closed, '--cluster', 'x']), new RegExp(`cannot reach the API at ${closed}: connection refused`));
    // switchover/failover never act without confirmation: no terminal, no --yes
    oneLineError(cli(['ctl', 'failover'], { SWITCHYARD_API: 'http://127.0.0.1:1', SWITCHYARD_CLUSTER: 'x' }), /failover needs --to NODE/);
  });
});
