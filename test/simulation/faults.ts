/**
 * The faults, one draw per 200 ms step: node crash, SIGSTOP shorter or longer than
 * failAfterMs, agent crash or cut off from Redis, host partition or power loss, lag
 * bursts, write storms, coordinator pause (also between its deadline check and the fenced
 * append), crash, slow reads, cut off from Redis (SIM_STALE_READS), delayed, duplicated
 * and reordered observations, duplicated jobs; and the operator's commands (switchover,
 * failover --to, pause / resume). Each fault heals on its own timer, or at the quiet
 * period's start (healAll).
 */
import { decide } from '../../src/core/index.js';
import { agentDown, bootAgent } from './agent.js';
import { clock, coldStart, command, drain, isLeaderLocal, leader, resume } from './coordinator.js';
import { kickWorker } from './jobs.js';
import { STALE_AFTER_MS } from './params.js';
import { killPg } from './postgres.js';
import type { PgNode, FaultKind } from './types.js';
import type { World } from './world.js';

export function heal(w: World, d: number, fn: () => void): void {
  const id = w.healSeq++;
  w.heals.set(id, fn);
  w.at(w.now + d, () => {
    const h = w.heals.get(id);
    if (!h) return;
    w.heals.delete(id);
    h();
  });
}

export function healAll(w: World): void {
  const all = [...w.heals.values()];
  w.heals.clear();
  for (const h of all) h();
  w.obsDelayUntil = w.obsDupUntil = w.jobDupUntil = 0;
}

export function primaryNode(w: World): PgNode | undefined {
  const p = w.primaryKey;
  return p ? w.nodes[p] : undefined;
}

export function injectFault(w: World): void {
  const r = w.rng;
  const kind = r.weighted<FaultKind>([
    ['crash', 3],
    ['hang-short', 2],
    ['hang-long', 2],
    ['agent-crash', 1],
    ['agent-partition', 1],
    ['host-partition', 2],
    ['host-power', 1],
    ['lag', 2],
    ['storm', 1],
    ['coord-pause', 2],
    ['coord-crash', 1],
    ['coord-slow', 1],
    // a stale follower (a known gap): cut off, it serves its view for STALE_AFTER_MS
    ['coord-cut', w.staleReads ? 1 : 0],
    ['obs-delay', 1],
    ['obs-dup', 1],
    ['job-dup', 1],
    ['op-switchover', 1],
    ['op-failover', 0.5],
    ['op-pause', 0.5],
  ]);
  const pickNode = (primaryBias: number): PgNode => {
    const p = primaryNode(w);
    return p && r.chance(primaryBias) ? p : w.node(r.pick(w.ids));
  };
  w.count(w.stats.faults, kind);
  const s = w.settings;
  switch (kind) {
    case 'crash': {
      const n = pickNode(0.6);
      if (!n.powered || n.proc === 'dead') return;
      w.tr(() => `FAULT crash ${n.id} (${n.role})`);
      killPg(w, n, 'crashed');
      return;
    }
    case 'hang-short':
    case 'hang-long': {
      const n = pickNode(0.6);
      if (!n.powered || n.proc !== 'running') return;
      const d = kind === 'hang-short' ? r.int(100, Math.floor(s.failAfterMs * 0.8)) : r.int(Math.ceil(s.failAfterMs * 1.2), s.failAfterMs * 2 + 2_000);
      n.proc = 'stopped';
      w.changed();
      w.tr(() => `FAULT SIGSTOP ${n.id} (${n.role}) for ${d} ms`);
      heal(w, d, () => {
        if (n.proc !== 'stopped') return;
        n.proc = 'running';
        w.changed();
        w.tr(() => `heal SIGCONT ${n.id}`);
      });
      return;
    }
    case 'agent-crash': {
      const a = w.agents[pickNode(0.5).id]!;
      if (a.crashed) return;
      const d = r.int(500, 8_000);
      a.crashed = true;
      agentDown(w, a, 'crashed');
      w.tr(() => `FAULT agent ${a.node} crashed for ${d} ms`);
      heal(w, d, () => {
        a.crashed = false;
        w.tr(() => `heal agent ${a.node} restarts`);
        bootAgent(w, a);
      });
      return;
    }
    case 'agent-partition': {
      const a = w.agents[pickNode(0.5).id]!;
      if (a.partitioned) return;
      const d = r.int(500, 8_000);
      a.partitioned = true;
      w.tr(() => `FAULT agent ${a.node} cut off from Redis for ${d} ms`);
      heal(w, d, () => {
        a.partitioned = false;
        w.tr(() => `heal agent ${a.node} reaches Redis again`);
        kickWorker(w, a);
        bootAgent(w, a);
      });
      return;
    }
    case 'host-partition': {
      const n = pickNode(0.5);
      if (n.isolated || !n.powered) return;
      const d = r.int(1_000, 10_000);
      n.isolated = true;
      w.changed();
      w.tr(() => `FAULT host ${n.id} (${n.role}, ${n.proc}) isolated for ${d} ms`);
      heal(w, d, () => {
        n.isolated = false;
        w.changed();
        w.tr(() => `heal host ${n.id} back on the network`);
        const a = w.agents[n.id]!;
        kickWorker(w, a);
        bootAgent(w, a);
      });
      return;
    }
    case 'host-power': {
      const n = pickNode(0.5);
      if (!n.powered) return;
      const d = r.int(1_000, 10_000);
      const a = w.agents[n.id]!;
      w.tr(() => `FAULT host ${n.id} (${n.role}) powered off for ${d} ms`);
      n.powered = false;
      n.proc = 'dead';
      n.streaming = false;
      w.changed();
      agentDown(w, a, 'host powered off');
      heal(w, d, () => {
        n.powered = true;
        w.changed();
        w.tr(() => `heal host ${n.id} powered on`);
        bootAgent(w, a);
      });
      return;
    }
    case 'lag': {
      const replicas = w.ids.filter((id) => w.node(id).role === 'replica');
      if (!replicas.length) return;
      const n = w.node(r.pick(replicas));
      const d = r.int(1_000, 10_000);
      n.lagUntil = w.now + d;
      w.tr(() => `FAULT lag burst on ${n.id} for ${d} ms`);
      heal(w, d, () => {
        n.lagUntil = 0;
      });
      return;
    }
    case 'storm': {
      const p = primaryNode(w);
      if (!p) return;
      const d = r.int(500, 5_000);
      p.stormUntil = w.now + d;
      w.tr(() => `FAULT write storm on ${p.id} for ${d} ms`);
      heal(w, d, () => {
        p.stormUntil = 0;
      });
      return;
    }
    case 'coord-pause': {
      const l = leader(w);
      const c = l && r.chance(0.7) ? l : r.pick(w.coords);
      if (!c.up || c.paused) return;
      const d = r.int(500, 6_000);
      c.paused = true;
      if (!c.cut) c.lastReadAt = w.now;
      // paused between its deadline check and the fenced append: they run when it resumes
      if (isLeaderLocal(w, c) && r.chance(0.5)) {
        const now = clock(w, c);
        const decisions = decide(c.state, now, w.settings);
        if (decisions.length) c.pendingAct = { decisions, before: c.state, decidedAt: now };
      }
      w.changed();
      w.tr(() => `FAULT ${c.id} paused for ${d} ms${c.pendingAct ? ' mid-append' : ''}`);
      heal(w, d, () => resume(w, c));
      return;
    }
    case 'coord-crash': {
      const l = leader(w);
      const c = l && r.chance(0.7) ? l : r.pick(w.coords);
      if (!c.up) return;
      const d = r.int(500, 6_000);
      c.up = false;
      c.gen++;
      c.token = null;
      w.changed();
      w.tr(() => `FAULT ${c.id} crashed for ${d} ms`);
      heal(w, d, () => coldStart(w, c));
      return;
    }
    case 'coord-slow': {
      const c = r.pick(w.coords);
      const d = r.int(1_000, 5_000);
      c.slowUntil = w.now + d;
      w.tr(() => `FAULT ${c.id} reads slowly for ${d} ms`);
      heal(w, d, () => {
        c.slowUntil = 0;
      });
      return;
    }
    case 'coord-cut': {
      // cut off from Redis, not from its clients (an asymmetric partition)
      const l = leader(w);
      const c = l && r.chance(0.5) ? l : r.pick(w.coords);
      if (!c.up || c.cut) return;
      const d = r.int(500, 8_000);
      const g = c.gen;
      c.cut = true;
      if (!c.paused) c.lastReadAt = w.now;
      w.changed();
      w.tr(() => `FAULT ${c.id} cut off from Redis for ${d} ms`);
      heal(w, d, () => {
        if (c.gen !== g || !c.cut) return;
        c.cut = false;
        if (w.now - c.lastReadAt >= STALE_AFTER_MS) w.stats.staleRefusals++;
        w.tr(() => `heal ${c.id} reaches Redis again`);
        // its reads fail, then retry after 200 ms (coordinator follow loop); the lease tick keeps its own rhythm
        if (!c.paused) drain(w, c, r.int(0, 200) + r.int(1, 20), false);
        w.changed();
      });
      return;
    }
    case 'obs-delay': {
      const d = r.int(1_000, 6_000);
      w.obsDelayUntil = w.now + d;
      w.tr(() => `FAULT observations delayed/reordered for ${d} ms`);
      return;
    }
    case 'obs-dup': {
      const d = r.int(1_000, 6_000);
      w.obsDupUntil = w.now + d;
      w.tr(() => `FAULT observations duplicated for ${d} ms`);
      return;
    }
    case 'job-dup': {
      const d = r.int(2_000, 8_000);
      w.jobDupUntil = w.now + d;
      w.tr(() => `FAULT jobs delivered twice for ${d} ms`);
      return;
    }
    case 'op-switchover':
      command(w, 'switchover', r.chance(0.5) ? r.pick(w.ids) : undefined);
      return;
    case 'op-failover':
      command(w, 'failover', r.pick(w.ids));
      return;
    case 'op-pause': {
      command(w, 'pause');
      heal(w, r.int(500, 5_000), () => command(w, 'resume'));
      return;
    }
  }
}
