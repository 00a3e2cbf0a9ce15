/**
 * A foreground `sandbox up` says, before the user needs it, that Ctrl-C removes its data;
 * on Ctrl-C it says so again, stops every process and removes the directory.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cliEntry } from '../../src/sandbox/deploy.js';
import { consecutiveFreePorts, waitFor } from '../support/sandbox.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sy-fg-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('sandbox up in the foreground', () => {
  it('announces that Ctrl-C removes the data, and on Ctrl-C stops everything and removes it', async () => {
    const dir = path.join(tmp, 'sb');
    const port = await consecutiveFreePorts(1);
    const child = spawn(process.execPath, [cliEntry(), 'sandbox', 'up', '--dir', dir, '--api-port', String(port), '--replicas', '1', '--coordinators', '1'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (out += b.toString()));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    await waitFor('the sandbox to be ready', async () => out.includes('press Ctrl-C'), 120_000, 100);
    expect(out).toMatch(/press Ctrl-C to stop it and REMOVE its data \(start with --keep to keep it\)/);
    // counted words agree with the count ("1 coordinator", not "1 coordinators")
    expect(out).toMatch(/✓ 2 agents started\n/);
    expect(out).toMatch(/✓ 1 coordinator started\n/);
    const file = JSON.parse(fs.readFileSync(path.join(dir, 'sandbox.json'), 'utf8')) as { redisPid: number; nodes: Array<{ agentPid: number }> };
    child.kill('SIGINT');
    expect(await exited).toBe(0);
    expect(out).toContain(`stopping the sandbox and removing its data in ${dir}`);
    expect(fs.existsSync(dir)).toBe(false);
    for (const pid of [file.redisPid, ...file.nodes.map((n) => n.agentPid)]) {
      const alive = (() => {
        try {
          process.kill(pid, 0);
          return !/\) Z /.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
        } catch {
          return false;
        }
      })();
      expect(alive, `pid ${pid} still running`).toBe(false);
    }
  }, 240_000);
});
