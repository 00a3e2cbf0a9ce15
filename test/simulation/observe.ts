/**
 * What the agent reports (agent/agent.ts observe()): the Observation the real agent
 * builds, from the simulated node. A dead postmaster: refused, process dead, role
 * unknown, LSN null. SIGSTOP: process stopped, timeout, known from the process state
 * without a probe. A primary lists its standbys as pg_stat_replication does (a
 * partitioned or stopped standby stays until wal_sender_timeout, with its reply age) and,
 * on a timeline > 1, where it forked off. The peer check is an SSLRequest to the
 * published primary's port: a stopped server does not answer.
 */
import { formatLsn } from '../../src/core/index.js';
import { promotingAtPublish } from '../../src/core/agent-rules.js';
import type { Observation, ProbeError, ReplicationPeer } from '../../src/events/observation.js';
import { PORT, WAL_SENDER_TIMEOUT_MS } from './params.js';
import { net, syncStandbys } from './postgres.js';
import type { Agent, PgNode } from './types.js';
import type { World } from './world.js';

/** what agent/agent.ts observe() reports */
export function observe(w: World, a: Agent): Observation {
  const n = w.node(a.node);
  const o: Observation = {
    type: 'obs',
    v: 1,
    node: n.id,
    bootId: a.bootId,
    seq: ++a.seq,
    bootSeq: a.bootN,
    at: w.now + (w.hostSkew[n.id] ?? 0),
    host: n.id,
    port: PORT,
    priority: n.priority,
    reachable: false,
    process: 'running',
    role: 'unknown',
    timeline: null,
    lsn: null,
    replayLsn: null,
    replayDelayMs: null,
    upstream: null,
    walReceiver: null,
    epochSeen: a.epochSeen,
    fenceAfterMs: w.settings.fenceAfterMs,
  };
  if (n.proc === 'dead') {
    o.process = 'dead';
    o.error = 'refused';
    o.errorMessage = 'postmaster not running';
  } else if (n.proc === 'stopped') {
    o.process = 'stopped';
    o.error = 'timeout';
    o.errorMessage = 'postmaster stopped (SIGSTOP)';
  } else {
    const lsn = formatLsn(n.lsn);
    o.reachable = true;
    o.role = n.role;
    o.timeline = w.tl(n);
    o.lsn = lsn;
    o.replayLsn = lsn;
    if (n.role === 'replica') {
      o.replayDelayMs = 0;
      o.upstream = n.upstream ? `${n.upstream}:${PORT}` : null;
      o.walReceiver = n.streaming ? 'streaming' : null;
    } else {
      // pg_stat_replication: a partitioned or stopped standby stays until wal_sender_timeout
      const standbys: ReplicationPeer[] = [];
      const sync = syncStandbys(w, n);
      for (const id of w.ids) {
        const r = w.node(id);
        if (r.senderOf === n.id && w.now - r.lastReplyAt < WAL_SENDER_TIMEOUT_MS) {
          const rl = formatLsn(r.lsn);
          const syncState = sync.includes(r) ? 'sync' : n.syncNames.includes(id) ? 'potential' : 'async';
          standbys.push({ name: id, state: 'streaming', replayLsn: rl, flushLsn: rl, replayLagMs: 0, syncState, replyAgeMs: w.now - r.lastReplyAt });
        }
      }
      o.standbys = standbys;
      if (n.readOnly) o.fenced = true;
      // where its timeline forked off (the history file): the fork point without the promote job's result
      if (n.hist.length > 1) o.forkLsn = formatLsn(n.hist[n.hist.length - 1]!.start);
    }
  }
  if (a.walEnd !== null) o.walEnd = formatLsn(a.walEnd);
  const p = a.primaryId;
  if (p && p !== n.id && w.nodes[p]) {
    const err = tcp(w, n, w.node(p));
    o.peer = err ? { node: p, reachable: false, error: err } : { node: p, reachable: true };
  }
  markPromoting(w, a, o, w.now);
  return o;
}

/**
 * agent.ts markPromoting (promotingAtPublish): the promote job running, or one begun
 * since `begun`, read once the observation is complete and again right before the XADD
 * (the peer check and the GET take their time in runProbe).
 */
export function markPromoting(w: World, a: Agent, o: Observation, begun: number): void {
  const running = a.working?.spec.action === 'promote' ? a.working.spec.operationId : null;
  const op = promotingAtPublish(begun, running, a.promotion);
  if (op) o.promoting = op;
}

/** agent.ts tcpCheck from `from`'s host to `to`'s port: an SSLRequest the server must answer */
export function tcp(w: World, from: PgNode, to: PgNode): ProbeError | null {
  if (!net(w, from, to)) return 'timeout';
  if (to.proc === 'dead') return 'refused';
  if (to.proc === 'stopped') return 'timeout'; // the kernel completes the connect, the server never answers
  return null;
}
