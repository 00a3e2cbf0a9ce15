/**
 * `npm run bench`: measure, side by side in one run, and write bench/results/latest.json.
 *
 *   node dist/bench/run.js [--only fold,routing,failover] [--trials N]
 *
 * Figures that a section does not measure yet stay null in the JSON and are shown as
 * "—" in the table.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { benchFold } from './fold.js';
import { benchRoutingApi } from './routing-api.js';
import { benchFailover, benchHostLoss, benchLeaderTakeover, benchPauses, benchSwitchover, benchSyncKills } from './failover.js';

interface Results {
  machine: string;
  at: string;
  node: string;
  failover: { trials: number; p50Ms: number | null; maxMs: number | null; samplesMs: number[] } | null;
  hostLoss: { trials: number; p50Ms: number | null; maxMs: number | null; samplesMs: number[] } | null;
  leaderTakeover: { trials: number; leaseTtlMs: number; p50Ms: number | null; maxMs: number | null; samplesMs: number[] } | null;
  pauses: { pauseMs: number; failovers: Record<string, number> } | null;
  syncKills: { kills: number; acked: number; lost: number } | null;
  switchover: { trials: number; gapMs: number | null; maxGapMs: number | null; lost: number | null; acked: number; gapsMs: number[] } | null;
  propagation: { p99Ms: number | null } | null;
  routingApi: { reqPerSec: number; bareFastifyReqPerSec: number; ratio: number; p50Us: number; bareP50Us: number } | null;
  client: { qps: number | null; rawPgQps: number | null; ratio: number | null } | null;
  classifier: { cachedNs: number | null; uncachedUs: number | null } | null;
  fold: { eventsPerSec: number; events: number; runs: number } | null;
  scale: { nodes: number | null; obsPerSec: number | null; decisionP99Ms: number | null } | null;
}

const { values } = parseArgs({ options: { only: { type: 'string' }, trials: { type: 'string', default: '5' } } });
const only = values.only ? new Set(values.only.split(',')) : null;
const want = (s: string): boolean => !only || only.has(s);

const results: Results = {
  machine: `${os.cpus()[0]?.model ?? 'cpu'} ×${os.cpus().length}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, ${os.platform()} ${os.release()}`,
  at: new Date().toISOString(),
  node: process.version,
  failover: null,
  hostLoss: null,
  leaderTakeover: null,
  pauses: null,
  syncKills: null,
  switchover: null,
  propagation: null,
  routingApi: null,
  client: null,
  classifier: null,
  fold: null,
  scale: null,
};

if (want('fold')) {
  console.log('fold: pure evolve over a synthetic stream …');
  results.fold = benchFold();
}
if (want('routing')) {
  console.log('routing API: switchyard vs bare Fastify, same JSON, keep-alive …');
  results.routingApi = await benchRoutingApi();
}
if (want('failover')) {
  console.log(`failover: SIGKILL of the primary postmaster → first accepted INSERT, ${values.trials} trials …`);
  results.failover = await benchFailover(Number(values.trials));
}
if (want('hostloss')) {
  console.log(`host loss: the primary's agent and postmaster killed together → first accepted INSERT, ${values.trials} trials …`);
  results.hostLoss = await benchHostLoss(Number(values.trials));
}
if (want('leader')) {
  console.log(`leader takeover: the leader coordinator SIGKILLed → the other leads, ${values.trials} trials …`);
  results.leaderTakeover = await benchLeaderTakeover(Number(values.trials));
}
if (want('pauses')) {
  console.log('pauses: 2 s SIGSTOP of the primary server, its agent, the leader coordinator, Redis …');
  results.pauses = await benchPauses();
}
if (want('sync')) {
  console.log('synchronous mode: 20 SIGKILLs of the primary under a steady writer …');
  results.syncKills = await benchSyncKills(20);
}
if (want('switchover')) {
  console.log(`switchover: longest write gap under a steady writer, ${values.trials} trials …`);
  results.switchover = await benchSwitchover(Number(values.trials));
}

const dir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bench/results');
fs.mkdirSync(dir, { recursive: true });
if (only) {
  // a partial run keeps the other sections of the previous results
  try {
    const prev = JSON.parse(fs.readFileSync(path.join(dir, 'latest.json'), 'utf8')) as Record<string, unknown>;
    for (const [k, v] of Object.entries(results)) if (v === null && prev[k] !== undefined) (results as unknown as Record<string, unknown>)[k] = prev[k];
  } catch {
    // no previous results
  }
}

const dash = (v: number | null | undefined, unit = ''): string => (v === null || v === undefined ? '—' : `${Math.round(v * 100) / 100}${unit}`);
const rows: Array<[string, string]> = [
  ['fold events/s', dash(results.fold?.eventsPerSec)],
  ['routing API req/s (ours / bare Fastify)', results.routingApi ? `${dash(results.routingApi.reqPerSec)} / ${dash(results.routingApi.bareFastifyReqPerSec)} = ${dash(results.routingApi.ratio)}` : '—'],
  ['routing API p50 µs (ours / bare)', results.routingApi ? `${dash(results.routingApi.p50Us)} / ${dash(results.routingApi.bareP50Us)}` : '—'],
  ['switchover write gap p50 / max, rows lost', results.switchover ? `${dash(results.switchover.gapMs, ' ms')} / ${dash(results.switchover.maxGapMs, ' ms')}, ${results.switchover.lost} of ${results.switchover.acked}` : '—'],
  ['host loss → write, p50 / max', results.hostLoss ? `${dash(results.hostLoss.p50Ms, ' ms')} / ${dash(results.hostLoss.maxMs, ' ms')}` : '—'],
  ['leader killed → new leader, p50 / max (TTL 3 s)', results.leaderTakeover ? `${dash(results.leaderTakeover.p50Ms, ' ms')} / ${dash(results.leaderTakeover.maxMs, ' ms')}` : '—'],
  ['2 s pauses → failovers', results.pauses ? Object.entries(results.pauses.failovers).map(([k, v]) => `${k} ${v}`).join(', ') : '—'],
  ['sync mode: kills, rows acknowledged, lost', results.syncKills ? `${results.syncKills.kills}, ${results.syncKills.acked}, ${results.syncKills.lost}` : '—'],
  ['failover SIGKILL → write, p50 / max', results.failover ? `${dash(results.failover.p50Ms, ' ms')} / ${dash(results.failover.maxMs, ' ms')} (${results.failover.trials} trials)` : '—'],
];
console.log('\n' + rows.map(([k, v]) => `${k.padEnd(48)} ${v}`).join('\n'));

fs.writeFileSync(path.join(dir, 'latest.json'), JSON.stringify(results, null, 2) + '\n');
console.log(`\nwritten ${path.join(dir, 'latest.json')}`);
process.exit(0);
