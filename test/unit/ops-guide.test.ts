/**
 * docs/operations.md's troubleshooting table quotes the errors and log lines the code
 * actually produces: every literal part of each quoted message (the text between its
 * placeholders: …, N, X, FILE, /path, a URL) is found in the product's source.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const root = path.resolve(import.meta.dirname, '../..');

function sources(dir: string): string[] {
  return fs.readdirSync(path.join(root, dir), { withFileTypes: true }).flatMap((e) => {
    const rel = path.join(dir, e.name);
    if (e.isDirectory()) return sources(rel);
    return rel.endsWith('.ts') ? [fs.readFileSync(path.join(root, rel), 'utf8')] : [];
  });
}

describe('docs/operations.md troubleshooting', () => {
  it('quotes only messages the code produces', () => {
    const code = ['src', 'agent', 'coordinator'].flatMap(sources).join('\n');
    const doc = fs.readFileSync(path.join(root, 'docs/operations.md'), 'utf8');
    const table = doc.slice(doc.indexOf('## 8. Troubleshooting')).split('\n').filter((l) => l.startsWith('| `'));
    expect(table.length).toBeGreaterThan(10);
    const missing: string[] = [];
    for (const row of table) {
      for (const m of row.split('|')[1]!.matchAll(/`([^`]+)`/g)) {
        const parts = m[1]!.split(/…|\bN\b|\bX\b|FILE|\/path|redis:\/\/|^FIX +|: |\(|\)/).map((s) => s.trim());
        for (const part of parts) if (part.includes(' ') && part.length >= 8 && !code.includes(part)) missing.push(part);
      }
    }
    expect(missing).toEqual([]);
  });
});
