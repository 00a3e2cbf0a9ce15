/**
 * Node 20 (issue 13): what the README states is what the lock file holds. switchyard
 * itself and every package it needs at run time accept any Node 20; the dev tools that
 * `npm ci` installs in a checkout (vitest's bundler, typescript-eslint) need 20.19, so
 * no EBADENGINE warning on 20.19+ (cookie 2, via light-my-request, needed 22: pinned).
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const root = path.resolve(import.meta.dirname, '../..');
const semver = createRequire(import.meta.url)('semver') as { satisfies(v: string, range: string): boolean };
const lock = JSON.parse(fs.readFileSync(path.join(root, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean; engines?: { node?: string } | string[] }> };

function refusing(version: string, runtimeOnly: boolean): string[] {
  const out: string[] = [];
  for (const [name, p] of Object.entries(lock.packages)) {
    if (runtimeOnly && p.dev) continue;
    const range = Array.isArray(p.engines) ? undefined : p.engines?.node;
    if (range && !semver.satisfies(version, range)) out.push(`${name} (node ${range})`);
  }
  return out;
}

describe('Node 20', () => {
  it('every run-time package accepts Node 20.0; every package, dev tools included, accepts 20.19', () => {
    expect(refusing('20.0.0', true)).toEqual([]);
    expect(refusing('20.19.0', false)).toEqual([]);
    // the cookie light-my-request (fastify's inject) pulls in: pinned to one that runs on Node 20
    const cookies = Object.entries(lock.packages).filter(([n]) => n.endsWith('node_modules/cookie'));
    expect(cookies.length).toBeGreaterThan(0);
    for (const [, p] of cookies) expect(semver.satisfies('20.0.0', (p.engines as { node?: string } | undefined)?.node ?? '*')).toBe(true);
  });

  it('the README and package.json say so', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { engines: { node: string } };
    expect(pkg.engines.node).toBe('>=20');
    expect(fs.readFileSync(path.join(root, 'README.md'), 'utf8')).toMatch(/Node\.js 20\+\*\* \(20\.19\+ in a checkout/);
  });
});
