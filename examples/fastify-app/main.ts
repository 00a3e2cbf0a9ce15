/**
 * Run the example against a sandbox:
 *
 *   npx switchyard sandbox up --detach
 *   node dist/examples/fastify-app/main.js   (built by npm ci / npm run build)
 *
 * Reads `.switchyard/sandbox/sandbox.json` (or SANDBOX_DIR) for the API URL and cluster.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ReplicatedPool } from '../../src/client/index.js';
import { buildApp, SCHEMA } from './app.js';

const dir = process.env.SANDBOX_DIR ?? '.switchyard/sandbox';
const sb = JSON.parse(fs.readFileSync(path.join(dir, 'sandbox.json'), 'utf8')) as { api: string; cluster: string; coordinators: Array<{ api: string }>; connection: { user: string; database: string } };
const db = new ReplicatedPool({
  routing: sb.coordinators.map((c) => c.api),
  cluster: sb.cluster,
  connection: sb.connection,
  readPreference: 'secondaryPreferred',
  loadBalancing: 'least-connections',
  maxLagMs: 5000,
  holdWritesMs: 15_000,
});
await db.ready();
await db.query(SCHEMA);
db.on('routing-changed', (e) => console.log(`routing: primary ${e.previousPrimary ?? '-'} → ${e.primary ?? '-'} (generation ${e.generation}, via ${e.source})`));
db.on('node-ejected', (e) => console.log(`node ${e.nodeId} ejected: ${e.reason}`));
const app = buildApp(db);
const port = Number(process.env.PORT ?? 3000);
await app.listen({ port, host: '127.0.0.1' });
console.log(`example app on http://127.0.0.1:${port}`);
const stop = async (): Promise<void> => {
  await app.close();
  await db.end();
  process.exit(0);
};
process.on('SIGINT', () => void stop());
process.on('SIGTERM', () => void stop());
