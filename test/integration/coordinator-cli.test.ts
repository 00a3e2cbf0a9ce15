/**
 * The coordinator daemon as an operator starts it (issue 13 §3): a busy API port is a
 * one-line error (no stack, no FSTDEP023 deprecation warning), and a second coordinator
 * with an id already running refuses to start.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliEntry } from '../../src/sandbox/deploy.js';
import { freePort } from '../../src/sandbox/ports.js';
import { killAndWait } from '../../src/sandbox/proc.js';
import { RedisServer } from '../../src/sandbox/redis.js';
import { waitFor } from '../support/sandbox.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sy-coord-cli-'));
let redis: RedisServer;
const children: ChildProcess[] = [];

beforeAll(async () => {
  redis = await RedisServer.start(path.join(tmp, 'redis'));
});

afterAll(async () => {
  for (const c of children) if (c.pid && c.exitCode === null) await killAndWait(c.pid, 'SIGTERM', 10_000).catch(() => {});
  await redis?.stop();
  fs.rmSync(tmp, { recursive: true, force: true });
});

function config(name: string, id: string, port: number): string {
  const p = path.join(tmp, `${name}.json`);
  fs.writeFileSync(p, JSON.stringify({ id, redis: redis.url, clusters: [{ name: 'cc' }], api: { host: '127.0.0.1', port }, adminToken: 'x'.repeat(32), leaseTtlMs: 3000 }));
  return p;
}

describe('switchyard coordinator', () => {
  it('on a busy port: one line naming the port, no stack, no deprecation warning', async () => {
    const srv = net.createServer();
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const port = (srv.address() as net.AddressInfo).port;
    try {
      const r = spawnSync(process.execPath, [cliEntry(), 'coordinator', '--config', config('busy', 'busy1', port)], { encoding: 'utf8', timeout: 60_000 });
      expect(r.status).toBe(1);
      expect(r.stderr.trim().split('\n').filter((l) => l.startsWith('switchyard:'))).toEqual([
        `switchyard: port ${port} on 127.0.0.1 is already in use: stop what listens there, or set api.port (SWITCHYARD_API_PORT)`,
      ]);
      expect(r.stderr).not.toMatch(/^\s+at /m);
      expect(r.stderr + r.stdout).not.toMatch(/FSTDEP023|DeprecationWarning/);
    } finally {
      srv.close();
    }
  });

  it('a second coordinator with the same id refuses to start; another id starts', async () => {
    const port = await freePort();
    const first = spawn(process.execPath, [cliEntry(), 'coordinator', '--config', config('a', 'dup', port)], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(first);
    let out = '';
    first.stdout.on('data', (d: Buffer) => (out += d.toString()));
    first.stderr.on('data', (d: Buffer) => (out += d.toString()));
    await waitFor('the first coordinator', async () => (await fetch(`http://127.0.0.1:${port}/healthz`)).ok, 60_000, 200);
    expect(out).not.toMatch(/FSTDEP023/);

    const second = spawnSync(process.execPath, [cliEntry(), 'coordinator', '--config', config('b', 'dup', await freePort())], { encoding: 'utf8', timeout: 60_000 });
    expect(second.status).toBe(1);
    expect(second.stderr).toMatch(/^switchyard: coordinator id "dup" is already in use by a running coordinator \(.+\): give each coordinator its own id$/m);
    expect(second.stderr).not.toMatch(/^\s+at /m);
    // the first one is unharmed
    expect((await fetch(`http://127.0.0.1:${port}/healthz`)).ok).toBe(true);

    // stopped cleanly, its id is free again at once
    await killAndWait(first.pid!, 'SIGTERM', 20_000);
    const port3 = await freePort();
    const again = spawn(process.execPath, [cliEntry(), 'coordinator', '--config', config('c', 'dup', port3)], { stdio: 'ignore' });
    children.push(again);
    await waitFor('the id to be usable again', async () => (await fetch(`http://127.0.0.1:${port3}/healthz`)).ok, 60_000, 200);
  }, 180_000);
});
