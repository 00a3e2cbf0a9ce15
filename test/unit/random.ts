/** A seeded random leader run over the pure core, for property tests (replay, state machine). */
import { CLUSTER, DEAD, healthyCluster, jobResult, obs, type Sim } from './helpers.js';

/** mulberry32: the same seed gives the same run. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export { CLUSTER };

/** Drive the leader through random crashes, promotions, pauses, switchovers and reports. */
export function randomRun(seed: number, steps = 60): Sim {
  const rnd = prng(seed);
  const sim: Sim = healthyCluster({ settings: { cooldownMs: 0 } });
  let now = 1_000;
  const nodes = ['pg1', 'pg2', 'pg3'];
  const pick = (): string => nodes[Math.floor(rnd() * nodes.length)]!;
  for (let step = 0; step < steps; step++) {
    now += 50 + Math.floor(rnd() * 400);
    const r = rnd();
    const primary = sim.state.primary;
    const op = sim.state.operation;
    if (r < 0.12 && primary) sim.observe(now, obs(primary, DEAD));
    else if (r < 0.27 && op) {
      if (op.phase === 'demoting' && op.from) sim.report(now, jobResult(op.from, { operationId: op.id, action: 'demote', ok: rnd() < 0.8, lsn: '0/3000000' }));
      else sim.report(now, jobResult(op.to, { operationId: op.id, action: 'promote', ok: rnd() < 0.8 }));
    } else if (r < 0.37) {
      const n = pick();
      sim.observe(now, obs(n, n === primary ? { role: 'primary' } : {}));
    } else if (r < 0.42) {
      const action = (['pause', 'resume', 'switchover', 'failover'] as const)[Math.floor(rnd() * 4)]!;
      const id = `cmd-${seed}-${step}`;
      const cmd = { type: 'command' as const, v: 1 as const, id, action, by: 'test', at: now, ...(action === 'failover' || rnd() < 0.5 ? { to: pick() } : {}) };
      sim.fold({ kind: 'command', id, receivedAt: now, entry: cmd });
    } else if (r < 0.47) {
      sim.observe(now, obs(pick(), { walReceiver: null }));
    } else if (r < 0.5) {
      sim.observe(now, obs(pick(), { reachable: false, error: 'timeout', role: 'unknown', lsn: null }));
    } else {
      // every live agent reports again as it is
      for (const n of nodes) {
        const last = sim.last.get(n);
        if (!last || last.process === 'dead') continue;
        const { seq: _s, at: _a, ...rest } = last;
        sim.observe(now, obs(n, rest));
      }
    }
    sim.pass(now);
  }
  return sim;
}
