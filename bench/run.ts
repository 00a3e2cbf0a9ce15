/**
 * `npm run bench`: measure, side by side in one run, and write bench/results/latest.json.
 *
 *   node dist/bench/run.js [SECTION …] [--only fold,classifier,routing,failover] [--trials N] [--no-restart]
 *
 * Sections: fold, classifier, client, routing, failover (with restart-in-place unless --no-restart),
 * hostloss, leader, pauses, sync, switchover, redis (bench/redis.ts). Naming sections (as arguments or with
 * --only) runs just those and keeps the other figures of the previous latest.json.
 *
 * Figures that a section does not measure yet stay null in the JSON and are shown as
 * "—" in the table.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { benchClassifier } from './classifier.js';
import { benchFold } from './fold.js';
import { benchRoutingApi } from './routing-api.js';
import { benchClient, benchClientFailover, type ClientFailoverBench } from './client.js';
import { formatStages, type Stages } from './breakdown.js';
import { benchRedis, type RedisBench } from './redis.js';
import { benchFailover, benchHostLoss, benchLeaderTakeover, benchPauses, benchSwitchover, benchSyncKills } from './failover.js';

interface Results {
  machine: string;
  at: string;
  node: string;
  failover: { trials: number; p50Ms: number | null; maxMs: number | null; samplesMs: number[]; breakdown: Stages; trialsBreakdown: Stages[] } | null;
  restartInPlace: { trials: number; p50Ms: number | null; maxMs: number | null; samplesMs: number[]; breakdown: Stages } | null;
  hostLoss: { trials: number; p50Ms: number | null; maxMs: number | null; samplesMs: number[] } | null;
  leaderTakeover: { trials: number; leaseTtlMs: number; p50Ms: number | null; maxMs: number | null; samplesMs: number[] } | null;
  pauses: { pauseMs: number; failovers: Record<string, number> } | null;
  syncKills: { kills: number; acked: number; lost: number } | null;
  switchover: { trials: number; gapMs: number | null; maxGapMs: number | null; lost: number | null; acked: number; gapsMs: number[]; breakdown: Stages; trialsBreakdown: Stages[] } | null;
  propagation: { p99Ms: number | null } | null;
  routingApi: { reqPerSec: number; bareFastifyReqPerSec: number; ratio: number; p50Us: number; bareP50Us: number } | null;
  client: { qps: number | null; rawPgQps: number | null; ratio: number | null } | null;
  clientFailover: ClientFailoverBench | null;
  classifier: { cachedNs: number | null; uncachedUs: number | null } | null;
  fold: { eventsPerSec: number; events: number; runs: number } | null;
  scale: { nodes: number | null; obsPerSec: number | null; decisionP99Ms: number | null } | null;
  redis: RedisBench | null;
}

const SECTIONS = ['fold', 'classifier', 'client', 'routing', 'failover', 'hostloss', 'leader', 'pauses', 'sync', 'switchover', 'redis'];
const { values, positionals } = parseArgs({ allowPositionals: true, options: { only: { type: 'string' }, trials: { type: 'string', default: '5' }, 'no-restart': { type: 'boolean', default: false } } });
const picked = [...(values.only ? values.only.split(',') : []), ...positionals].map((x) => x.trim()).filter(Boolean);
for (const p of picked) if (!SECTIONS.includes(p)) throw new Error(`unknown bench section ${JSON.stringify(p)}: use ${SECTIONS.join(', ')}`);
const only = picked.length ? new Set(picked) : null;
const want = (s: string): boolean => !only || only.has(s);

const results: Results = {
  machine: `${os.cpus()[0]?.model ?? 'cpu'} ×${os.cpus().length}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, ${os.platform()} ${os.release()}`,
  at: new Date().toISOString(),
  node: process.version,
  failover: null,
  restartInPlace: null,
  hostLoss: null,
  leaderTakeover: null,
  pauses: null,
  syncKills: null,
  switchover: null,
  propagation: null,
  routingApi: null,
  client: null,
  clientFailover: null,
  classifier: null,
  fold: null,
  scale: null,
  redis: null,
};

if (want('fold')) {
  console.log('fold: pure evolve over a synthetic stream …');
  results.fold = benchFold();
}
if (want('classifier')) {
  console.log('classifier: classifyQuery on cached and on new texts …');
  results.classifier = await benchClassifier();
}
if (want('routing')) {
  console.log('routing API: switchyard vs bare Fastify, same JSON, keep-alive …');
  results.routingApi = await benchRoutingApi();
}
if (want('failover')) {
  console.log(`failover: SIGKILL of the primary postmaster → first accepted INSERT, ${values.trials} trials …`);
  const r = await benchFailover(Number(values.trials), !values['no-restart']);
  results.failover = r.failover;
  results.restartInPlace = r.restartInPlace;
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
if (want('client')) {
  console.log('client: ReplicatedPool vs raw pg.Pool (point selects, same replica), coalescing, routing propagation over switchovers …');
  const c = await benchClient({ switchovers: Number(values.trials) });
  results.client = c.client;
  results.propagation = c.propagation;
  console.log(`  coalescing: ${c.coalesce.reads} identical concurrent reads ran ${c.coalesce.executedWithout} times without, ${c.coalesce.executedWith} with`);
  console.log(`client failover: SIGKILL of the primary under readers and a writer through the pool, ${values.trials} trials …`);
  results.clientFailover = await benchClientFailover(Number(values.trials));
}

if (want('redis')) {
  console.log(`redis: kill -9 of the master → SET accepted, ${values.trials} trials; switchover; 2 s pauses …`);
  results.redis = await benchRedis(Number(values.trials));
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
  ['classifier ns cached / µs uncached', results.classifier ? `${dash(results.classifier.cachedNs, ' ns')} / ${dash(results.classifier.uncachedUs, ' µs')}` : '—'],
  ['routing API req/s (ours / bare Fastify)', results.routingApi ? `${dash(results.routingApi.reqPerSec)} / ${dash(results.routingApi.bareFastifyReqPerSec)} = ${dash(results.routingApi.ratio)}` : '—'],
  ['routing API p50 µs (ours / bare)', results.routingApi ? `${dash(results.routingApi.p50Us)} / ${dash(results.routingApi.bareP50Us)}` : '—'],
  ['switchover write gap p50 / max, rows lost', results.switchover ? `${dash(results.switchover.gapMs, ' ms')} / ${dash(results.switchover.maxGapMs, ' ms')}, ${results.switchover.lost} of ${results.switchover.acked}` : '—'],
  ['host loss → write, p50 / max', results.hostLoss ? `${dash(results.hostLoss.p50Ms, ' ms')} / ${dash(results.hostLoss.maxMs, ' ms')}` : '—'],
  ['leader killed → new leader, p50 / max (TTL 3 s)', results.leaderTakeover ? `${dash(results.leaderTakeover.p50Ms, ' ms')} / ${dash(results.leaderTakeover.maxMs, ' ms')}` : '—'],
  ['2 s pauses → failovers', results.pauses ? Object.entries(results.pauses.failovers).map(([k, v]) => `${k} ${v}`).join(', ') : '—'],
  ['sync mode: kills, rows acknowledged, lost', results.syncKills ? `${results.syncKills.kills}, ${results.syncKills.acked}, ${results.syncKills.lost}` : '—'],
  ['client qps (ReplicatedPool / raw pg.Pool)', results.client ? `${dash(results.client.qps)} / ${dash(results.client.rawPgQps)} = ${dash(results.client.ratio)}` : '—'],
  ['propagation: journaled → pool writes there, p99', dash(results.propagation?.p99Ms, ' ms')],
  ['app failover: journaled → write acked, p50 / max', results.clientFailover ? `${dash(results.clientFailover.resumeP50Ms, ' ms')} / ${dash(results.clientFailover.resumeMaxMs, ' ms')} (${results.clientFailover.trials} trials)` : '—'],
  ['  delivery p50, dispatch max, write p50 (typical write)', results.clientFailover ? `${dash(results.clientFailover.deliveryP50Ms, ' ms')}, ${dash(results.clientFailover.dispatchMaxMs, ' ms')}, ${dash(results.clientFailover.writeP50Ms, ' ms')} (${dash(results.clientFailover.typicalWriteMs, ' ms')})` : '—'],
  ['  app failover: reads retried / failed, writes failed', results.clientFailover ? `${results.clientFailover.readsRetried} / ${results.clientFailover.readsFailed} of ${results.clientFailover.reads}, ${results.clientFailover.writeErrors}` : '—'],
  ['failover SIGKILL → write, p50 / max', results.failover ? `${dash(results.failover.p50Ms, ' ms')} / ${dash(results.failover.maxMs, ' ms')} (${results.failover.trials} trials)` : '—'],
  ['redis kill -9 → SET accepted, p50 / max', results.redis ? `${dash(results.redis.kill.p50Ms, ' ms')} / ${dash(results.redis.kill.maxMs, ' ms')} (${results.redis.kill.trials} trials; writable masters at once ≤ ${results.redis.kill.maxWritableMasters})` : '—'],
  ['redis switchover write gap max, writes lost', results.redis?.switchover ? `${dash(results.redis.switchover.maxGapMs, ' ms')}, ${results.redis.switchover.lost} of ${results.redis.switchover.acked}` : '—'],
  ['redis Sentinel (down-after 1 s) kill -9 → SET, p50 / max', results.redis?.sentinel ? `${dash(results.redis.sentinel.p50Ms, ' ms')} / ${dash(results.redis.sentinel.maxMs, ' ms')} (${results.redis.sentinel.trials} trials)` : '—'],
  ['redis 2 s pauses → failovers', results.redis?.pauses ? Object.entries(results.redis.pauses.failovers).map(([k, v]) => `${k} ${v}`).join(', ') : '—'],
  ['redis Sentinel 2 s pause of the master → failovers', results.redis?.sentinel?.pause ? String(results.redis.sentinel.pause.failovers) : '—'],
  ['redis writable masters at once, any fault (switchyard / Sentinel)', results.redis?.maxWritableMasters ? `${results.redis.maxWritableMasters.switchyard} / ${results.redis.maxWritableMasters.sentinel ?? '—'}` : '—'],
  ['restart in place (kill in cooldown) → write, p50 / max', results.restartInPlace ? `${dash(results.restartInPlace.p50Ms, ' ms')} / ${dash(results.restartInPlace.maxMs, ' ms')}` : '—'],
];
console.log('\n' + rows.map(([k, v]) => `${k.padEnd(56)} ${v}`).join('\n'));
if (results.failover?.breakdown) console.log('\n' + formatStages('failover breakdown (median ms since the SIGKILL)', results.failover.breakdown));
if (results.restartInPlace?.breakdown) console.log('\n' + formatStages('restart in place breakdown (median ms since the SIGKILL)', results.restartInPlace.breakdown));
if (results.switchover?.breakdown) console.log('\n' + formatStages('switchover breakdown (median ms since the request)', results.switchover.breakdown));

fs.writeFileSync(path.join(dir, 'latest.json'), JSON.stringify(results, null, 2) + '\n');
console.log(`\nwritten ${path.join(dir, 'latest.json')}`);
process.exit(0);
