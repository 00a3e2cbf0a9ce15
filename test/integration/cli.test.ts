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
    expect(up.stdout).toMatch(/✓ redis on 127\.0\.0\.1:\d+ \(\d+ ms\)/);
    expect(up.stdout).toContain(`http://127.0.0.1:${port}`);
    expect(up.stdout).toMatch(/sandbox down --dir/);

    const file = JSON.parse(fs.readFileSync(path.join(dir, 'sandbox.json'), 'utf8')) as SandboxFile;
    expect(file).toMatchObject({ cluster: 'sandbox', engine: 'postgres', api: `http://127.0.0.1:${port}`, connection: { user: 'postgres', database: 'postgres' } });
    expect(file.adminToken).toMatch(/^[0-9a-f]{32}$/);
    expect(file.redis).toMatch(/^redis:\/\/127\.0\.0\.1:\d+$/);
    expect(file.nodes.map((n) => n.id)).toEqual(['pg1', 'pg2', 'pg3']);
    expect(file.coordinators).toHaveLength(2);
    const pids = [file.redisPid, ...file.nodes.map((n) => n.agentPid), ...file.coordinators.map((c) => c.pid)];
    for (const pid of pids) expect(isProcessAlive(pid)).toBe(true);
    const pms = postmasterPids(file);
    expect(pms).toHaveLength(3);

    const status = cli(['sandbox', 'status', '--dir', dir]);
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(/pg1 .* primary/);

    const list = cli(['ctl', 'list', '--dir', dir]);
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(/primary\s+pg1/);
    expect(list.stdout).toMatch(/replica\s+pg2 .* healthy/);

    // a second `up` into the same directory is refused, and breaks nothing
    const again = cli(['sandbox', 'up', '--detach', '--dir', dir, '--api-port', String(port + 10)]);
    expectOneLineError(again, /already exists/);

    const down = cli(['sandbox', 'down', '--dir', dir]);
    expect(down.code).toBe(0);
    for (const pid of [...pids, ...pms, file.supervisorPid]) expect(isProcessAlive(pid)).toBe(false);
    expect(fs.existsSync(dir)).toBe(false);
  }, 180_000);

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
    expectOneLineError(cli(['sandbox', 'status', '--dir', path.join(tmp, 'none')]), /no sandbox in/);
    const cfg = path.join(tmp, 'c.json');
    fs.writeFileSync(cfg, JSON.stringify({ id: 'c1', redis: 'redis://127.0.0.1:1', clusters: [{ name: 'a' }], leaseTtlMs: 5 }));
    expectOneLineError(cli(['coordinator', '--config', cfg]), /invalid config in .*c\.json: \/leaseTtlMs: .*500 \(got 5\)/);
    fs.writeFileSync(cfg, '{ nope');
    expectOneLineError(cli(['coordinator', '--config', cfg]), /is not valid JSON/);
    expectOneLineError(
      cli(['agent'], { SWITCHYARD_CLUSTER: 'a', SWITCHYARD_NODE: 'pg1', SWITCHYARD_REDIS: 'redis://127.0.0.1:1', SWITCHYARD_PG_PORT: '5999' }),
      /cannot reach Redis at redis:\/\/127\.0\.0\.1:1: connection refused/,
    );
    expectOneLineError(cli(['agent'], { SWITCHYARD_CLUSTER: 'a', SWITCHYARD_NODE: 'pg1', SWITCHYARD_REDIS: 'redis://x', SWITCHYARD_PG_PORT: 'abc' }), /SWITCHYARD_PG_PORT="abc" is not a number/);
  }, 60_000);
});
