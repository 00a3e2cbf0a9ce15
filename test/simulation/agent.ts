/**
 * The model of the agent (agent/agent.ts): start, the probe loop, the guard. Every
 * decision the real agent takes by rule is taken here by the same pure function
 * (src/core/agent-rules.ts): bootAction at start, guardAction in probeOnce's order (the
 * lease judged after the node is observed and before any Redis call; then the published
 * key is read (a GET: 1 s when Redis is out of reach), the guard judges, the observation
 * is XADDed (1 s), and after a failed XADD the guard judges a fresh observation), and by
 * the fence timer (fenceAfterMs after the last accepted observation, on the newest
 * observation of a reachable server). The job worker is in jobs.ts. Around the rules: a
 * stopped postmaster is known from its process state, without a probe; the peer check
 * of the published primary times out after 1 s; a crashed replica is restarted, a
 * crashed primary is not (its end of WAL is read and reported instead).
 */
import { bootAction, guardAction, standbysRepliedLately, type GuardAction } from '../../src/core/agent-rules.js';
import { formatLsn } from '../../src/core/index.js';
import type { Observation } from '../../src/events/observation.js';
import { kickWorker } from './jobs.js';
import { markPromoting, observe } from './observe.js';
import { PROBE_INTERVAL_MS, PROBE_TIMEOUT_MS, REDIS_TIMEOUT_MS, PROMOTED_GRACE_MS } from './params.js';
import { killPg, rewind, startPg } from './postgres.js';
import { leaseEpochNow, publish, requeue, stallDelay } from './redis.js';
import type { PgNode, Agent } from './types.js';
import type { World } from './world.js';

export function agentRunning(w: World, a: Agent): boolean {
  return !a.crashed && w.node(a.node).powered;
}

export function agentConnected(w: World, a: Agent): boolean {
  const n = w.node(a.node);
  return a.started && agentRunning(w, a) && !a.partitioned && !n.isolated;
}

/** Agent.start(): connect, read the lease epoch and the primary, boot the node, start the worker and probes. */
export function bootAgent(w: World, a: Agent): void {
  if (!agentRunning(w, a) || a.started || a.booting) return;
  const n = w.node(a.node);
  if (a.partitioned || n.isolated) {
    // connectRedis fails: the process exits, and its supervisor starts it again
    w.at(w.now + 1_000, () => bootAgent(w, a));
    return;
  }
  a.booting = true;
  const g = ++a.gen;
  a.bootN++;
  a.bootId = `${a.node}-b${a.bootN}`;
  a.seq = 0;
  a.epochSeen = leaseEpochNow(w);
  readPublished(w, a);
  a.newestJournalId = null;
  a.working = null;
  a.busy = false;
  a.probing = false;
  a.probeAgain = false;
  a.restartPending = false;
  a.restartDelay = 200;
  a.lastRedisOk = w.now;
  a.lastReachable = null;
  a.fenced = false;
  a.promotion = null;
  a.walEnd = null;
  a.walEndReadyAt = 0;
  const finish = (): void => {
    if (a.gen !== g) return;
    a.booting = false;
    a.started = true;
    w.tr(() => `agent ${a.node} started (${a.bootId}, epochSeen ${a.epochSeen})`);
    scheduleProbe(w, a, 0);
    kickWorker(w, a);
  };
  // bootNode: adopt a running postmaster (a primary is judged by the guard before the
  // worker starts), or start the node, read-only when bootAction says so
  const running = n.proc === 'running' || n.proc === 'stopped';
  const boot = bootAction({ node: n.id, running, primaryOnDisk: n.role === 'primary', published: a.published });
  if (boot.action === 'adopt') {
    if (boot.guardFirst) guard(w, a, observe(w, a));
    finish();
    return;
  }
  if (boot.readOnly && w.guards.has('boot-read-only')) {
    // a former primary comes back read-only, not rewound: the published primary may lag
    // an operation in flight, and this node may be its newest primary; the leader rejoins
    // it, or unfences it
    w.tr(() => `agent ${a.node} boot: was primary, ${boot.reason}: starting it read-only`);
    w.at(w.now + w.rng.int(100, 300), () => {
      if (a.gen !== g) return;
      if (n.proc === 'dead' && n.powered && n.role === 'primary') {
        n.readOnly = true;
        w.stats.bootFenced++;
        startPg(w, n);
      }
      finish();
    });
    return;
  }
  if (!w.guards.has('boot-read-only') && n.role === 'primary' && a.primaryId && a.primaryId !== n.id) {
    // SIM_WITHOUT=boot-read-only: the agent before fc9daef: a former primary is
    // rewound onto the published primary at start, on the agent's own say-so
    const up = a.primaryId;
    w.tr(() => `agent ${a.node} boot: was primary, ${up} is the primary now: rewinding`);
    w.at(w.now + w.rng.int(300, 3_000), () => {
      if (a.gen !== g) return;
      if (rewind(w, n, up)) {
        w.tr(() => `${n.id} rewound onto ${up} at boot`);
        w.at(w.now + w.rng.int(100, 300), () => {
          if (a.gen !== g) return;
          startPg(w, n);
          finish();
        });
      } else {
        // start() throws: the agent exits; its supervisor starts it again
        w.tr(() => `agent ${a.node} boot: rewind onto ${up} failed; agent exits`);
        a.booting = false;
        a.gen++;
        w.at(w.now + 2_000, () => bootAgent(w, a));
      }
    });
    return;
  }
  w.at(w.now + w.rng.int(100, 300), () => {
    if (a.gen !== g) return;
    if (n.proc === 'dead' && n.powered) startPg(w, n);
    finish();
  });
}

export function agentDown(w: World, a: Agent, why: string): void {
  const wasStarted = a.started || a.booting;
  a.started = false;
  a.booting = false;
  a.gen++;
  const job = a.working;
  a.working = null;
  a.busy = false;
  // BullMQ: the lock is not renewed; the stall checker hands the job out again
  if (job) requeue(w, a.node, job, w.now + stallDelay(w));
  if (wasStarted) w.tr(() => `agent ${a.node} down (${why})`);
}

export function scheduleProbe(w: World, a: Agent, delay: number): void {
  const g = a.gen;
  const token = ++a.probeTimer;
  w.at(w.now + delay, () => {
    if (a.gen !== g || a.probeTimer !== token) return;
    runProbe(w, a);
  });
}

export function probeNow(w: World, a: Agent): void {
  if (!a.started) return;
  if (a.probing) {
    a.probeAgain = true;
    return;
  }
  scheduleProbe(w, a, 0);
}

/** probeOnce: GET the primary, probe the node and the primary's port, XADD; fence if Redis is lost */
export function runProbe(w: World, a: Agent): void {
  if (a.probing) {
    a.probeAgain = true;
    return;
  }
  a.probing = true;
  const g = a.gen;
  const end = (): void => {
    a.probing = false;
    if (a.probeAgain) {
      a.probeAgain = false;
      scheduleProbe(w, a, 0);
    } else scheduleProbe(w, a, PROBE_INTERVAL_MS + w.rng.int(-20, 20));
  };
  // probeOnce: observe (the probe and the peer check take their time; a stopped
  // postmaster is known from its process state, without a probe that would time out)
  const begun = w.now;
  let obs = observe(w, a);
  if (obs.reachable) a.lastReachable = obs;
  let probeMs = w.rng.int(1, 4);
  if (obs.peer?.error === 'timeout') probeMs += PROBE_TIMEOUT_MS;
  w.at(w.now + probeMs, () => {
    if (a.gen !== g) return;
    // the lease is judged before any Redis call of this probe (each may take its full timeout)
    if (w.now - a.lastRedisOk >= w.settings.fenceAfterMs && guard(w, a, obs)) obs = observe(w, a);
    // refreshPrimary: a GET, which times out when Redis is out of reach
    const connected = agentConnected(w, a);
    if (connected) readPublished(w, a);
    w.at(w.now + (connected ? 0 : REDIS_TIMEOUT_MS), () => {
      if (a.gen !== g) return;
      if (guard(w, a, obs)) obs = observe(w, a);
      // the setting itself says whether the node is fenced (it survives agent restarts)
      if (obs.reachable) a.fenced = obs.fenced === true;
      if (agentConnected(w, a)) {
        // (a promote job begun since the observation began overtakes its "replica")
        markPromoting(w, a, obs, begun);
        publish(w, a.node, { kind: 'obs', entry: obs });
        a.lastRedisOk = w.now;
        armFenceTimer(w, a);
        end();
        return;
      }
      w.at(w.now + REDIS_TIMEOUT_MS, () => {
        if (a.gen !== g) return;
        // (judged on a fresh observation: the standbys' reply ages moved on during the wait)
        guard(w, a, observe(w, a));
        end();
      });
    });
  });
}

/**
 * armFenceTimer: self-fencing on time, whatever the probe loop is doing. fenceAfterMs
 * after the last observation Redis accepted, the guard judges the newest observation of
 * a reachable server.
 */
function armFenceTimer(w: World, a: Agent): void {
  const g = a.gen;
  const token = ++a.fenceTimer;
  const tick = (): void => {
    if (a.gen !== g || a.fenceTimer !== token) return;
    if (w.now - a.lastRedisOk < w.settings.fenceAfterMs) return;
    const obs = a.lastReachable;
    if (obs) guard(w, a, obs);
    // (fenceTick: again every probe interval while Redis stays lost and the node is not fenced)
    const n = w.node(a.node);
    if (!a.fenced && n.proc !== 'dead' && n.role === 'primary') w.at(w.now + PROBE_INTERVAL_MS, tick);
  };
  w.at(w.now + w.settings.fenceAfterMs + 1, tick);
}

/** refreshPrimary: GET sy:{c}:primary (agent.ts) */
export function readPublished(w: World, a: Agent): void {
  const p = w.publishedKey;
  a.published = p;
  a.primaryId = p?.id ?? null;
  const own = a.promotion;
  if (own && p?.operation?.id === own.operationId) own.seenPublished = true;
  if (p?.id === a.node && !p.deposed) a.promotion = null;
}

/** the pure rule the agent runs (src/core/agent-rules.ts guardAction), on what this agent knows */
export function guardFor(w: World, a: Agent, obs: Observation, fenceAsked = false): GuardAction {
  const n = w.node(a.node);
  const own = a.promotion;
  const ageOk = w.guards.has('reply-age') ? w.settings.fenceAfterMs : Number.POSITIVE_INFINITY;
  const g = guardAction({
    node: n.id,
    process: obs.process,
    reachable: obs.reachable,
    role: obs.role,
    error: obs.error,
    primaryOnDisk: n.proc !== 'dead' && n.role === 'primary',
    fenced: a.fenced,
    lostRedisMs: w.now - a.lastRedisOk,
    fenceAfterMs: w.settings.fenceAfterMs,
    // (aged by the time since the observation was taken: agent.ts observedAt)
    standbysRepliedLately: standbysRepliedLately(obs.standbys, ageOk, w.now + (w.hostSkew[n.id] ?? 0) - obs.at),
    published: w.guards.has('deposed-fence') ? a.published : null,
    promotion: own ? { operationId: own.operationId, agoMs: w.now - own.at, seenPublished: own.seenPublished } : null,
    promotedGraceMs: PROMOTED_GRACE_MS,
    fenceAsked,
  });
  return g;
}

/** agent guard(): fence, kill or nothing, as the rule says. True when it acted. */
export function guard(w: World, a: Agent, obs: Observation, fenceAsked = false): boolean {
  return carryOut(w, a, guardFor(w, a, obs, fenceAsked));
}

export function carryOut(w: World, a: Agent, g: GuardAction): boolean {
  const n = w.node(a.node);
  if (g.action === 'read-only') {
    // setReadOnly: fails on a node that is no longer running (the next probe says so)
    if (n.proc !== 'running') return false;
    if (!n.readOnly) {
      n.readOnly = true;
      w.changed();
      if (g.reason.startsWith('no Redis')) w.stats.selfFenced++;
      else w.stats.deposedFenced++;
    }
    a.fenced = true;
    w.tr(() => `${n.id} FENCED (read-only) by its agent: ${g.reason}`);
    return true;
  }
  if (g.action === 'kill') {
    if (n.proc === 'dead') return false;
    w.stats.deposedKilled++;
    killPg(w, n, `killed by its agent (whole instance): ${g.reason}`);
    return true;
  }
  return false;
}

/**
 * The postmaster exited (agent.ts onNodeExit): probe at once; a replica is restarted in
 * place (with backoff), a primary is not: its end of WAL is read from disk and reported,
 * for the leader to measure what a failover loses against it.
 */
export function onNodeExit(w: World, a: Agent, n: PgNode): void {
  if (!a.started || !agentRunning(w, a)) return;
  probeNow(w, a);
  if (!a.busy && n.role === 'primary') {
    // the agent reads its end of WAL from disk (pg_waldump): what a failover loses is measured against it
    const g = a.gen;
    const end = n.lsn;
    const hist = n.hist;
    const d = w.rng.int(50, 500);
    a.walEndReadyAt = w.now + d;
    w.at(w.now + d, () => {
      if (a.gen !== g) return;
      a.walEnd = end;
      w.walEndHist.set(`${n.id}:${formatLsn(end)}`, hist);
      w.tr(() => `agent ${n.id}: end of WAL on disk ${formatLsn(end)}`);
      probeNow(w, a);
    });
  }
  if (a.busy) return;
  if (n.role === 'replica') {
    if (a.restartPending) return;
    a.restartPending = true;
    const g = a.gen;
    const delay = a.restartDelay;
    a.restartDelay = Math.min(5_000, a.restartDelay * 2);
    w.at(w.now + delay, () => {
      if (a.gen !== g) return;
      a.restartPending = false;
      if (a.busy || n.proc !== 'dead' || !n.powered) return;
      w.at(w.now + w.rng.int(100, 300), () => {
        if (a.gen !== g || a.busy || n.proc !== 'dead') return;
        startPg(w, n);
        a.restartDelay = 200;
        probeNow(w, a);
      });
    });
  } else {
    w.tr(() => `agent ${n.id}: the primary died; not restarting it in place`);
  }
}
