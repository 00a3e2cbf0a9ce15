/**
 * The routing API against bare Fastify serving the same JSON, side by side, with the
 * same keep-alive load generator (in-process clients, a fixed number in flight).
 */
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import Fastify from 'fastify';
import { buildApi, type ApiCluster } from '../src/api/server.js';
import { routingTable } from '../src/core/routing.js';
import { fold } from '../src/core/evolve.js';
import { initialState } from '../src/core/state.js';
import { syntheticEvents } from './fold.js';

async function load(url: string, durationMs: number, concurrency: number): Promise<{ reqPerSec: number; p50Us: number }> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const lat: number[] = [];
  let done = 0;
  const deadline = performance.now() + durationMs;
  const one = (): Promise<void> =>
    new Promise((resolve, reject) => {
      const t0 = performance.now();
      http
        .get(url, { agent }, (res) => {
          res.resume();
          res.on('end', () => {
            lat.push((performance.now() - t0) * 1000);
            done++;
            resolve();
          });
        })
        .on('error', reject);
    });
  const worker = async (): Promise<void> => {
    while (performance.now() < deadline) await one();
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: concurrency }, worker));
  const secs = (performance.now() - t0) / 1000;
  agent.destroy();
  lat.sort((a, b) => a - b);
  return { reqPerSec: Math.round(done / secs), p50Us: Math.round(lat[Math.floor(lat.length / 2)] ?? 0) };
}

export async function benchRoutingApi(durationMs = 3000, concurrency = 32, rounds = 3) {
  const state = fold(initialState('bench'), syntheticEvents(10_000));
  const table = routingTable(state);
  const cluster = {
    name: 'bench', state, table, isLeader: true, ready: true,
    waitForChange: () => Promise.resolve(null), on: () => undefined, off: () => undefined,
    readJournal: () => Promise.resolve([]),
    submit: () => Promise.resolve(''),
  } satisfies ApiCluster;
  const ours = buildApi({ clusters: new Map([['bench', cluster]]), coordinatorId: 'bench' });
  const bare = Fastify();
  bare.get('/v1/clusters/:c/routing', async (_req, reply) => reply.header('ETag', `"${table.generation}"`).send(table));
  const oursUrl = (await ours.listen({ port: 0, host: '127.0.0.1' })) + '/v1/clusters/bench/routing';
  const bareUrl = (await bare.listen({ port: 0, host: '127.0.0.1' })) + '/v1/clusters/bench/routing';
  // alternate rounds so that machine noise hits both alike; report medians
  const o: Array<{ reqPerSec: number; p50Us: number }> = [];
  const b: Array<{ reqPerSec: number; p50Us: number }> = [];
  await load(oursUrl, 500, concurrency);
  await load(bareUrl, 500, concurrency);
  for (let i = 0; i < rounds; i++) {
    o.push(await load(oursUrl, durationMs, concurrency));
    b.push(await load(bareUrl, durationMs, concurrency));
  }
  await ours.close();
  await bare.close();
  const med = (xs: number[]): number => xs.sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
  const reqPerSec = med(o.map((x) => x.reqPerSec));
  const bareFastifyReqPerSec = med(b.map((x) => x.reqPerSec));
  return { reqPerSec, bareFastifyReqPerSec, ratio: Math.round((reqPerSec / bareFastifyReqPerSec) * 100) / 100, p50Us: med(o.map((x) => x.p50Us)), bareP50Us: med(b.map((x) => x.p50Us)) };
}
