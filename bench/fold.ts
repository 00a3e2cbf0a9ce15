/** The pure fold: evolve over a synthetic stream of observations and journal entries. */
import { performance } from 'node:perf_hooks';
import { evolve } from '../src/core/evolve.js';
import { initialState, type CoreEvent } from '../src/core/state.js';
import type { Observation } from '../src/events/observation.js';
import { formatLsn } from '../src/core/lsn.js';

export function syntheticEvents(n: number, nodes = 3): CoreEvent[] {
  const ids = Array.from({ length: nodes }, (_, i) => `pg${i + 1}`);
  const events: CoreEvent[] = [];
  let t = 1_000_000;
  let seq = 0;
  for (const [i, id] of ids.entries()) {
    events.push({ kind: 'journal', id: `${t}-${i}`, entry: { type: 'node.registered', v: 1, at: t, epoch: 1, node: id, host: '127.0.0.1', port: 5432 + i, priority: 100 } });
  }
  events.push({ kind: 'journal', id: `${t}-9`, entry: { type: 'node.role-changed', v: 1, at: t, epoch: 1, node: 'pg1', role: 'primary', reason: 'bootstrap' } });
  let lsn = 0x3000000;
  while (events.length < n) {
    t += 1;
    seq++;
    lsn += 128;
    for (const id of ids) {
      const primary = id === 'pg1';
      const o: Observation = {
        type: 'obs', v: 1, node: id, bootId: 'b1', seq, at: t, host: '127.0.0.1', port: 5432, priority: 100,
        reachable: true, process: 'running', role: primary ? 'primary' : 'replica', timeline: 1,
        lsn: formatLsn(lsn), replayLsn: formatLsn(primary ? lsn : lsn - 256), replayDelayMs: 0,
        upstream: primary ? null : '127.0.0.1:5432', walReceiver: primary ? null : 'streaming', epochSeen: 1,
      };
      events.push({ kind: 'obs', id: `${t}-0`, receivedAt: t, entry: o });
    }
    if (seq % 1000 === 0) {
      events.push({ kind: 'journal', id: `${t}-5`, entry: { type: 'node.health-changed', v: 1, at: t, epoch: 1, node: 'pg2', healthy: seq % 2000 === 0, reason: 'bench' } });
    }
  }
  return events;
}

export function benchFold(n = 1_000_000, runs = 5): { eventsPerSec: number; events: number; runs: number } {
  const events = syntheticEvents(n);
  const rates: number[] = [];
  for (let r = 0; r < runs; r++) {
    let s = initialState('bench');
    const t0 = performance.now();
    for (const ev of events) s = evolve(s, ev);
    const ms = performance.now() - t0;
    if (s.generation === 0) throw new Error('fold did nothing');
    rates.push(events.length / (ms / 1000));
  }
  rates.sort((a, b) => a - b);
  return { eventsPerSec: Math.round(rates[Math.floor(rates.length / 2)]!), events: events.length, runs };
}
