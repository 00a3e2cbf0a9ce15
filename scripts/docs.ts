/** `npm run docs`: regenerate docs/state-machine.md from src/core/machine.ts. */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderStateMachineDoc } from '../src/core/machine.js';

const out = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../docs/state-machine.md');
fs.writeFileSync(out, renderStateMachineDoc());
console.log(`written ${out}`);
