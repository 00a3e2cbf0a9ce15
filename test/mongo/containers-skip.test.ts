/**
 * `npm run test:containers` without a Docker engine (as on this machine): exactly one line,
 * "skipped: no Docker engine", and exit 0. The script (scripts/test-containers.ts, node
 * builtins only) is transpiled to a temporary module and run as the npm script runs its
 * build, with DOCKER_HOST at a socket that does not exist and HOME without one.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import ts from 'typescript';
import { afterAll, describe, expect, it } from 'vitest';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sy-containers-skip-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function script(): string {
  const src = fs.readFileSync(new URL('../../scripts/test-containers.ts', import.meta.url), 'utf8');
  const out = ts.transpileModule(src, { compilerOptions: { module: ts.ModuleKind.ES2022, target: ts.ScriptTarget.ES2022 } }).outputText;
  const file = path.join(tmp, 'test-containers.mjs');
  fs.writeFileSync(file, out);
  return file;
}

describe('npm run test:containers without a Docker engine', () => {
  it('prints one line, "skipped: no Docker engine", and exits 0 (no test runs)', () => {
    const env = { ...process.env, DOCKER_HOST: `unix://${path.join(tmp, 'no-docker.sock')}`, HOME: tmp };
    const r = spawnSync(process.execPath, [script()], { encoding: 'utf8', env, timeout: 60_000 });
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('skipped: no Docker engine\n');
    expect(r.stderr).toBe('');
  });

  // (a machine with a local Docker engine would run the suite instead: not this test's case)
  const local = ['/var/run/docker.sock', `/run/user/${String(process.getuid?.() ?? 0)}/docker.sock`].some((p) => fs.existsSync(p));
  it.skipIf(local)('without DOCKER_HOST it looks for the local sockets, and skips the same way when none answers', () => {
    const env: NodeJS.ProcessEnv = { ...process.env, HOME: tmp };
    delete env.DOCKER_HOST;
    const r = spawnSync(process.execPath, [script()], { encoding: 'utf8', env, timeout: 60_000 });
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('skipped: no Docker engine\n');
  });
});
