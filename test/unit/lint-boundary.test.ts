/**
 * The boundary rule: product code (agent/, coordinator/, src/engines/...) must not import
 * the sandbox harness. Runs the real `npx eslint` on temporary files that do.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const tag = `lint-boundary-${process.pid}-${Date.now()}`;
const files: string[] = [];

function write(rel: string, text: string): string {
  const file = path.join(root, rel);
  fs.writeFileSync(file, text);
  files.push(file);
  return file;
}

function eslint(targets: string[]): { status: number; out: string } {
  try {
    const out = execFileSync('npx', ['eslint', '--no-warn-ignored', ...targets], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000 });
    return { status: 0, out };
  } catch (err) {
    const e = err as { status: number | null; stdout?: string; stderr?: string };
    return { status: e.status ?? -1, out: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

afterAll(() => {
  for (const f of files) fs.rmSync(f, { force: true });
});

describe('lint: product code does not import the sandbox', () => {
  it('fails on agent/, coordinator/ and src/engines/ files importing src/sandbox/, passes on the same import from the engine', () => {
    const agentBad = write(`agent/${tag}.ts`, "import { isProcessAlive } from '../src/sandbox/proc.js';\nexport const alive = isProcessAlive(1);\n");
    const coordBad = write(`coordinator/${tag}.ts`, "import type { SandboxFile } from '../src/sandbox/deploy.js';\nexport type F = SandboxFile;\n");
    const engineBad = write(`src/engines/${tag}.ts`, "import { initPrimary } from '../sandbox/postgres.js';\nexport const init = initPrimary;\n");
    const agentGood = write(`agent/${tag}-ok.ts`, "import { isProcessAlive } from '../src/os/process.js';\nexport const alive = isProcessAlive(1);\n");

    // one run (type-aware eslint is slow): the three bad files are flagged, the good one is not
    const r = eslint([agentBad, coordBad, engineBad, agentGood]);
    expect(r.status).toBe(1);
    for (const f of [agentBad, coordBad, engineBad]) expect(r.out).toContain(path.basename(f));
    expect(r.out.match(/must not import the sandbox/g)?.length).toBe(3);
    expect(r.out).not.toContain(path.basename(agentGood));
  }, 180_000);
});
