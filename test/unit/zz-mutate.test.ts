import { readFileSync, readdirSync } from 'node:fs';
import { it } from 'vitest';
import { runVector } from './vector-runner.js';

const DIR = new URL('../vectors/', import.meta.url);
it('mutants', () => {
  let total = 0;
  const survivors: string[] = [];
  for (const f of readdirSync(DIR).filter((x) => x.endsWith('.json'))) {
    const v = JSON.parse(readFileSync(new URL(f, DIR), 'utf8'));
    const paths: Array<Array<string | number>> = [];
    const walk = (o: any, p: Array<string | number>) => {
      if (o === null || typeof o !== 'object') { paths.push(p); return; }
      if (Array.isArray(o)) { if (o.length === 0) paths.push(p); o.forEach((x, i) => walk(x, [...p, i])); return; }
      if ('$contains' in o) { paths.push(p); return; }
      for (const k of Object.keys(o)) walk(o[k], [...p, k]);
    };
    v.phases.forEach((ph: any, i: number) => { if (ph.expect) walk(ph.expect, ['phases', i, 'expect']); });
    for (const p of paths) {
      const m = structuredClone(v);
      let o = m; for (const k of p.slice(0, -1)) o = o[k];
      const last = p[p.length - 1]!;
      const x = o[last];
      if (x === true && last === 'noDecisions') { delete o[last]; o.types = ['bogus']; }
      else if (typeof x === 'boolean') o[last] = !x;
      else if (typeof x === 'number') o[last] = x + 1;
      else if (typeof x === 'string') o[last] = x + 'x';
      else if (x === null) o[last] = 'x';
      else if (Array.isArray(x)) o[last] = [...x, 'bogus'];
      else if ('$contains' in x) o[last] = { $contains: x.$contains + 'zz' };
      total++;
      try { runVector(m, f); survivors.push(`${f} ${p.join('.')}`); } catch { /* killed */ }
    }
  }
  console.log(`mutants ${total}, survivors ${survivors.length}\n${survivors.join('\n')}`);
});
