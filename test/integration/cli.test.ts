/**
 * The CLI as a user runs it: `sandbox up --detach`, `status`, `ctl`, `down`, and the
 * one-line errors for bad input (nothing half-started left behind).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { engineNames } from '../../src/engines/index.js';
import { SANDBOX_ENGINES } from '../../src/sandbox/sandbox-file.js';
import { cliEntry, type SandboxFile } from '../../src/sandbox/deploy.js';
import { isProcessAlive } from '../../src/sandbox/proc.js';
import { consecutiveFreePorts } from '../support/sandbox.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sy-cli-'));

function cli(args: string[], env: NodeJS.ProcessEnv = {}, timeout = 120_000): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [cliEntry(), ...args], { encoding: 'utf8', env: { ...process.env, ...env }, timeout });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** An expected error: one line on stderr, no stack trace, exit code 1. */
function expectOneLineError(r: ReturnType<typeof cli>, pattern: RegExp): void {
  expect(r.code).toBe(1);
  const lines = r.stderr.trim().split('\n');
  expect(lines[0]).toMatch(pattern);
  expect(r.stderr).not.toMatch(/^\s+at /m);
}

function postmasterPids(file: SandboxFile): number[] {
  return file.nodes.flatMap((n) => {
    try {
      return [Number(fs.readFileSync(path.join(n.dataDir, 'postmaster.pid'), 'utf8').split('\n')[0])];
    } catch {
      return [];
    }
  });
}

afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('switchyard CLI', () => {
  it('sandbox up --detach, status, ctl list, down: works and leaves no process behind', async () => {
    const dir = path.join(tmp, 'sb');
    const port = await consecutiveFreePorts(2);
    const up = cli(['sandbox', 'up', '--detach', '--dir', dir, '--api-port', String(port)]);
    expect(up.stderr).toBe('');
    expect(up.code).toBe(0);
    expect(up.stdout).toMatch(/✓ redis on 127\.0\.0\.1:\d+ \(ACL user switchyard\) \(\d+ ms\)/);
    expect(up.stdout).toContain(`http://127.0.0.1:${port}`);
    expect(up.stdout).toMatch(/sandbox down --dir/);

    const file = JSON.parse(fs.readFileSync(path.join(dir, 'sandbox.json'), 'utf8')) as SandboxFile;
    expect(file).toMatchObject({ cluster: 'sandbox', engine: 'postgres', api: `http://127.0.0.1:${port}`, connection: { user: 'postgres', database: 'postgres' } });
    expect(file.adminToken).toMatch(/^[0-9a-f]{48}$/);
    expect(file.connection.password).toMatch(/^[0-9a-f]{48}$/);
    // the coordination Redis needs its ACL user and password: the URL users get carries them
    expect(file.redis).toMatch(/^redis:\/\/switchyard:[0-9a-f]{48}@127\.0\.0\.1:\d+$/);
    const redisPassword = new URL(file.redis).password;
    expect(file.nodes.map((n) => n.id)).toEqual(['pg1', 'pg2', 'pg3']);
    expect(file.coordinators).toHaveLength(2);
    const pids = [file.redisPid, ...file.nodes.map((n) => n.agentPid), ...file.coordinators.map((c) => c.pid)];
    for (const pid of pids) expect(isProcessAlive(pid)).toBe(true);
    const pms = postmasterPids(file);
    expect(pms).toHaveLength(3);

    const status = cli(['sandbox', 'status', '--dir', dir]);
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(/pg1 .* primary/);
    // status shows where Redis is, not its password
    expect(status.stdout).toMatch(/redis\s+redis:\/\/switchyard:\[redacted\]@127\.0\.0\.1:\d+/);
    expect(status.stdout).not.toContain(redisPassword);

    const list = cli(['ctl', 'list', '--dir', dir]);
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(/phase: healthy\s+writable/);
    expect(list.stdout).toMatch(/pg1\s+primary\s+primary\s+127\.0\.0\.1:\d+/);
    expect(list.stdout).toMatch(/pg2\s+replica\s+replica\s+127\.0\.0\.1:\d+\s+\S+ \S*B, \d+ ms\s+streaming/);
    expect(list.stdout).toMatch(/pg3\s+replica\s+replica\s.*streaming/);

    // a wrong admin token: ctl says which token the API refused, not that one is missing
    expectOneLineError(cli(['ctl', 'pause', '--dir', dir, '--token', 'wrong']), /refused the admin token from --token: pass the coordinators' admin token/);
    expect(cli(['ctl', 'list', '--dir', dir]).stdout).not.toMatch(/PAUSED/);

    // --json: the API's answer as JSON, for pause, resume, switchover, history and explain
    expect(JSON.parse(cli(['ctl', 'pause', '--json', '--dir', dir]).stdout)).toMatchObject({ paused: true });
    expect(JSON.parse(cli(['ctl', 'resume', '--json', '--dir', dir]).stdout)).toMatchObject({ paused: false });
    const so = cli(['ctl', 'switchover', '--to', 'pg2', '--yes', '--json', '--dir', dir]);
    expect(so.stderr).toBe('');
    const op = JSON.parse(so.stdout) as { id: string; kind: string; from: string; to: string; outcome: string };
    expect(op).toMatchObject({ kind: 'switchover', from: 'pg1', to: 'pg2', outcome: 'success' });
    expect((JSON.parse(cli(['ctl', 'history', '--json', '--dir', dir]).stdout) as Array<{ id: string }>).map((h) => h.id)).toEqual([op.id]);
    const explained = JSON.parse(cli(['ctl', 'explain', op.id, '--json', '--dir', dir]).stdout) as { operation: { id: string }; entries: Array<{ type: string }> };
    expect(explained.operation.id).toBe(op.id);
    expect(explained.entries.map((e) => e.type)).toContain('promotion.succeeded');

    // on a terminal, switchover asks first; anything but y or yes does nothing
    const asked = spawnSync('script', ['-qec', `${process.execPath} ${cliEntry()} ctl switchover --to pg3 --dir ${dir}`, '/dev/null'], { input: 'n\n', encoding: 'utf8', timeout: 60_000 });
    expect(asked.stdout).toMatch(/Switch over cluster sandbox from pg2 to pg3\? \[y\/N\]/);
    expect(asked.stdout).toMatch(/aborted: nothing was done/);
    expect(JSON.parse(cli(['ctl', 'history', '--json', '--dir', dir]).stdout)).toHaveLength(1);

    // a second `up` into the same directory is refused, and breaks nothing
    const again = cli(['sandbox', 'up', '--detach', '--dir', dir, '--api-port', String(port + 10)]);
    expectOneLineError(again, /already holds a sandbox: run `switchyard sandbox down --dir/);

    const down = cli(['sandbox', 'down', '--dir', dir]);
    expect(down.code).toBe(0);
    for (const pid of [...pids, ...pms, file.supervisorPid]) expect(isProcessAlive(pid)).toBe(false);
    expect(fs.existsSync(dir)).toBe(false);
  }, 180_000);

  it('sandbox down refuses a directory that is not a sandbox, and touches nothing in it', () => {
    const dir = path.join(tmp, 'checkout');
    fs.mkdirSync(path.join(dir, '.git'), { recursive: true });
    fs.writeFileSync(path.join(dir, '.git', 'HEAD'), 'ref: refs/heads/main\n');
    fs.writeFileSync(path.join(dir, 'main.c'), 'int main(void) { return 0; }\n');
    const r = cli(['sandbox', 'down', '--dir', dir]);
    expectOneLineError(r, /refusing to touch .*checkout: it is not a switchyard sandbox/);
    expect(r.stdout).not.toMatch(/removed/);
    expect(fs.readFileSync(path.join(dir, 'main.c'), 'utf8')).toContain('int main');
    expect(fs.existsSync(path.join(dir, '.git', 'HEAD'))).toBe(true);
    // a sandbox.json someone else wrote (no marker with the same id) is refused too
    fs.writeFileSync(path.join(dir, 'sandbox.json'), JSON.stringify({ cluster: 'x', redisPid: 1, nodes: [], coordinators: [] }));
    expectOneLineError(cli(['sandbox', 'down', '--dir', dir]), /refusing to touch .*not a switchyard sandbox/);
    fs.writeFileSync(path.join(dir, '.switchyard-sandbox'), JSON.stringify({ sandboxId: 'abc', createdAt: '', createdFrom: null }));
    expectOneLineError(cli(['sandbox', 'down', '--dir', dir]), /does not carry the id/);
    expect(fs.existsSync(path.join(dir, 'main.c'))).toBe(true);
    // and `up` does not send the user to `down` for it
    const up = cli(['sandbox', 'up', '--dir', dir]);
    expectOneLineError(up, /already exists and is not empty \(and is not a sandbox\): choose another --dir/);
    expect(up.stderr).not.toMatch(/sandbox down/);
    // a missing directory: nothing to do, and it says so
    expectOneLineError(cli(['sandbox', 'down', '--dir', path.join(tmp, 'never')]), /does not exist/);
  });

  it('sandbox down removes only what the sandbox created', () => {
    const dir = path.join(tmp, 'mixed', 'sb');
    fs.mkdirSync(path.join(dir, 'logs'), { recursive: true });
    fs.mkdirSync(path.join(dir, 'data', 'pg1'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'logs', 'agent-pg1.log'), 'x');
    fs.writeFileSync(path.join(dir, '.switchyard-sandbox'), JSON.stringify({ sandboxId: 'feed', createdAt: '', createdFrom: dir }));
    fs.writeFileSync(path.join(dir, 'notes.txt'), 'mine');
    const r = cli(['sandbox', 'down', '--dir', dir]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/kept what it did not create: notes\.txt/);
    expect(fs.readdirSync(dir).sort()).toEqual(['.switchyard-sandbox', 'notes.txt']);
    fs.rmSync(path.join(dir, 'notes.txt'));
    const again = cli(['sandbox', 'down', '--dir', dir]);
    expect(again.code).toBe(0);
    expect(fs.existsSync(dir)).toBe(false);
    expect(fs.existsSync(path.join(tmp, 'mixed'))).toBe(true);
  });

  it('a missing PostgreSQL is a one-line error and nothing is left', () => {
    const dir = path.join(tmp, 'nopg');
    const r = cli(['sandbox', 'up', '--dir', dir], { PG_BIN: path.join(tmp, 'nowhere') });
    expectOneLineError(r, /PostgreSQL server binaries not found: install postgresql or set PG_BIN/);
    expect(fs.existsSync(dir)).toBe(false);
  });

  it('a port in use is a one-line error naming the port', async () => {
    const srv = net.createServer();
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const port = (srv.address() as net.AddressInfo).port;
    try {
      const r = cli(['sandbox', 'up', '--dir', path.join(tmp, 'busy'), '--api-port', String(port)]);
      expectOneLineError(r, new RegExp(`port ${port} .*already in use.*--api-port`));
    } finally {
      srv.close();
    }
  });

  it('bad flags, a bad config and an unreachable Redis are one-line errors', () => {
    expectOneLineError(cli(['sandbox', 'up', '--replicas', 'two']), /--replicas "two" is not a whole number/);
    expectOneLineError(cli(['sandbox', 'up', '--engine', 'oracle']), /--engine oracle/);
    // the CLI offers the engines the sandbox really runs, no more (mongodb needs a mongod: its own error)
    expectOneLineError(cli(['sandbox', 'up', '--engine', 'oracle']), new RegExp(`use ${SANDBOX_ENGINES.join(' or ')}$`));
    expect(SANDBOX_ENGINES.every((e) => engineNames().includes(e))).toBe(true);
    expectOneLineError(cli(['sandbox', 'status', '--dir', path.join(tmp, 'none')]), /no sandbox in/);
    const cfg = path.join(tmp, 'c.json');
    fs.writeFileSync(cfg, JSON.stringify({ id: 'c1', redis: 'redis://127.0.0.1:1', clusters: [{ name: 'a' }], leaseTtlMs: 5 }));
    // a bad config exits 2, one line per problem naming the path (issue 12)
    const bad = cli(['coordinator', '--config', cfg]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toBe(`switchyard: invalid configuration (${cfg}):\n  leaseTtlMs: expected integer ≥ 500, got 5\n`);
    fs.writeFileSync(cfg, '{ nope');
    const notYaml = cli(['coordinator', '--config', cfg]);
    expect(notYaml.code).toBe(2);
    expect(notYaml.stderr).toMatch(/is not valid YAML/);
    expect(notYaml.stderr).not.toMatch(/^\s+at /m);
    expectOneLineError(
      cli(['agent'], { SWITCHYARD_CLUSTER: 'a', SWITCHYARD_NODE: 'pg1', SWITCHYARD_REDIS: 'redis://127.0.0.1:1', SWITCHYARD_PG_PORT: '5999' }),
      /cannot reach Redis at redis:\/\/127\.0\.0\.1:1: connection refused/,
    );
    const port = cli(['agent'], { SWITCHYARD_CLUSTER: 'a', SWITCHYARD_NODE: 'pg1', SWITCHYARD_REDIS: 'redis://x', SWITCHYARD_PG_PORT: 'abc' });
    expect(port.code).toBe(2);
    expect(port.stderr).toMatch(/\n {2}port: expected integer ≥ 1 and ≤ 65535, got "abc" \(from SWITCHYARD_PG_PORT\)\n/);
  }, 60_000);
});
