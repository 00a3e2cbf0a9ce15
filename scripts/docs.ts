/** `npm run docs`: regenerate docs/state-machine.md, docs/configuration.md and compose/haproxy.cfg from the code. */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderStateMachineDoc } from '../src/core/machine.js';
import { renderConfigDoc } from '../src/config/docs.js';
import { composeHaproxyConfig } from '../src/config/haproxy.js';

const docs = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../docs');
for (const [name, text] of [
  ['state-machine.md', renderStateMachineDoc()],
  ['configuration.md', renderConfigDoc()],
  ['../compose/haproxy.cfg', composeHaproxyConfig()],
] as const) {
  const out = path.join(docs, name);
  fs.writeFileSync(out, text);
  console.log(`written ${out}`);
}
