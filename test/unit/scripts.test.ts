/** The Lua scripts live in their own files, loaded at start; their negative codes map to errors. */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { LUA, LeaseLostError, SCRIPT_ERRORS, checkScriptResult, numberOfKeys } from '../../src/bus/scripts.js';
import { isErrorCode } from '../../src/errors.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const luaDir = path.join(root, 'src/bus/lua');

describe('Lua scripts', () => {
  it('each file under src/bus/lua is loaded, named <name>-<keys>.lua, with a header naming exactly its KEYS', () => {
    const files = fs.readdirSync(luaDir).filter((f) => f.endsWith('.lua')).sort();
    expect(files.length).toBe(Object.keys(LUA).length);
    const loaded = new Set(Object.values(LUA));
    for (const f of files) {
      const text = fs.readFileSync(path.join(luaDir, f), 'utf8');
      expect(loaded.has(text)).toBe(true);
      const keys = numberOfKeys(f);
      const header = text.slice(0, text.indexOf(']]'));
      expect(header).toContain(`${f.replace(/\.lua$/, '')}:`);
      for (let i = 1; i <= keys; i++) expect(header).toContain(`KEYS[${i}]`);
      expect(header).not.toContain(`KEYS[${keys + 1}]`);
      expect(header).toMatch(/ARGV\[1\]/);
      expect(header).toMatch(/Output/);
      // time never comes from inside a script
      expect(text).not.toMatch(/'TIME'/);
    }
  });

  it('scripts.ts holds no Lua of its own', () => {
    const ts = fs.readFileSync(path.join(root, 'src/bus/scripts.ts'), 'utf8');
    expect(ts).not.toMatch(/redis\.call\(/);
  });

  it('a negative return code becomes the catalogue error it stands for', () => {
    for (const code of Object.values(SCRIPT_ERRORS)) expect(isErrorCode(code)).toBe(true);
    expect(() => checkScriptResult(-1)).toThrow(LeaseLostError);
    try {
      checkScriptResult(-1);
    } catch (err) {
      expect((err as LeaseLostError).code).toBe('LEASE_LOST');
    }
    expect(() => checkScriptResult(-7)).toThrow(/unknown code -7/);
    expect(checkScriptResult(['1-0'])).toEqual(['1-0']);
    expect(checkScriptResult(1)).toBe(1);
  });
});
