/**
 * The model of a PostgreSQL node: role, timeline history, LSN, read-only, synchronous
 * standbys. A primary's LSN grows with writes; a replica receives from its upstream with
 * some lag, and only while its history is compatible (past the fork point of a newer
 * timeline it cannot follow until rewound). A promotion starts a new timeline. Both ends
 * of a replication connection notice a dead peer at once (RST) but a partitioned or
 * SIGSTOPped one only after wal_receiver_timeout / wal_sender_timeout (60 s).
 */
import { formatLsn } from '../../src/core/index.js';
import { agentRunning, onNodeExit } from './agent.js';
import { WAL_TICK_MS, WAL_RECEIVER_TIMEOUT_MS, WAL_SENDER_TIMEOUT_MS, WAL_RECEIVER_STATUS_INTERVAL_MS, PROMOTED_GRACE_MS, KB } from './params.js';
import type { Segment, PgNode } from './types.js';
import type { World } from './world.js';

export function walTick(w: World): void {
  const now = w.now;
  for (const id of w.ids) {
    const n = w.node(id);
    if (n.role !== 'primary' || !takingWrites(w, n)) continue;
    const storm = n.stormUntil > now;
    n.lsn += w.rng.int(0, storm ? 12 * w.writeRate : w.writeRate);
  }
  for (const id of w.ids) {
    const n = w.node(id);
    // the sender's view (pg_stat_replication on the upstream): it drops the standby at once
    // when a FIN or RST reaches it, else only wal_sender_timeout after the last reply
    if (n.senderOf) {
      const p = w.nodes[n.senderOf];
      const live = !!p && n.role === 'replica' && n.proc === 'running' && n.powered && n.upstream === p.id && n.streamFrom === p.id && net(w, n, p);
      if (!p || p.proc === 'dead' || !p.powered) n.senderOf = null;
      else if (!live && net(w, n, p) && n.proc !== 'stopped') n.senderOf = null;
    }
    if (n.role !== 'replica' || !n.powered || n.proc === 'dead') {
      if (n.streaming) {
        n.streaming = false;
        w.changed();
      }
      n.streamFrom = null;
      continue;
    }
    if (n.proc === 'stopped') continue;
    const was = n.streaming;
    // a new upstream (primary_conninfo reloaded): the WAL receiver starts over
    if (n.streamFrom !== null && n.streamFrom !== n.upstream) {
      n.streaming = false;
      n.stallSince = null;
      n.streamFrom = null;
    }
    const u = n.upstream ? w.nodes[n.upstream] : undefined;
    if (!u || u.id === n.id) {
      n.streaming = false;
      n.streamFrom = null;
    } else if (!net(w, n, u) || u.proc === 'stopped') {
      // no FIN, no RST: the WAL receiver keeps its connection until wal_receiver_timeout
      if (n.streaming) {
        n.stallSince ??= now;
        if (now - n.stallSince > WAL_RECEIVER_TIMEOUT_MS) {
          n.streaming = false;
          n.streamFrom = null;
        }
      }
    } else if (u.proc === 'dead' || !compatible(w, n, u)) {
      n.streaming = false;
      n.stallSince = null;
      n.streamFrom = null;
    } else {
      const fresh = !n.streaming || n.senderOf !== u.id;
      n.stallSince = null;
      n.streaming = true;
      n.streamFrom = u.id;
      n.senderOf = u.id;
      const cur = n.hist[n.hist.length - 1]!;
      const ucur = u.hist[u.hist.length - 1]!;
      if (cur.uid !== ucur.uid) setHist(w, n, u.hist.slice());
      const had = n.lsn;
      if (u.lsn > n.lsn) {
        const rate = n.lagUntil > now ? w.rng.int(0, Math.floor(w.writeRate / 4)) : 64 * 1024 * KB;
        n.lsn = Math.min(u.lsn, n.lsn + rate);
      }
      // the standby replies (reply_time) after receiving WAL, and every wal_receiver_status_interval
      if (fresh || n.lsn > had || now - n.lastReplyAt >= WAL_RECEIVER_STATUS_INTERVAL_MS) n.lastReplyAt = now;
    }
    if (was !== n.streaming) w.changed();
  }
  if (w.settings.synchronous) {
    for (const id of w.ids) {
      const p = w.node(id);
      if (!writable(w, p)) continue;
      const sync = syncStandbys(w, p);
      const seg = p.hist[p.hist.length - 1]!.uid;
      // a commit is acknowledged once its synchronous standbys have flushed it (async: at once)
      const upTo = p.syncNames.length === 0 ? p.lsn : sync.length < p.syncCount ? -1 : Math.min(...sync.map((r) => r.lsn));
      if (upTo > (w.acked.get(seg) ?? -1)) w.acked.set(seg, upTo);
    }
  }
  w.at(now + WAL_TICK_MS, () => walTick(w));
}

/** FIRST k (names): the first k named standbys connected to p and streaming from it */
export function syncStandbys(w: World, p: PgNode): PgNode[] {
  const out: PgNode[] = [];
  for (const name of p.syncNames) {
    const r = w.nodes[name];
    if (r && r.streamFrom === p.id && r.streaming && r.proc === 'running' && net(w, r, p)) out.push(r);
    if (out.length === p.syncCount) break;
  }
  return out;
}

/** can replica `r` stream from `u`: is its current history a prefix of u's? */
export function compatible(w: World, r: PgNode, u: PgNode): boolean {
  const cur = r.hist[r.hist.length - 1]!;
  const k = u.hist.findIndex((s) => s.uid === cur.uid);
  if (k < 0) return false;
  const next = u.hist[k + 1];
  return next === undefined || r.lsn <= next.start;
}

export function net(w: World, a: PgNode, b: PgNode): boolean {
  return a.powered && b.powered && !a.isolated && !b.isolated;
}

/** a primary that takes writes, from any client that can reach it */
export function writable(w: World, n: PgNode): boolean {
  return n.role === 'primary' && n.proc === 'running' && n.powered && !n.readOnly;
}

/** … and the clients can reach it */
export function takingWrites(w: World, n: PgNode): boolean {
  return writable(w, n) && !n.isolated;
}

/**
 * … and acknowledges them: in synchronous mode a commit waits for its synchronous
 * standbys (a primary whose FIRST k standbys do not stream from it acknowledges nothing)
 */
export function acksWrites(w: World, n: PgNode): boolean {
  if (!takingWrites(w, n)) return false;
  return n.syncNames.length === 0 || syncStandbys(w, n).length >= n.syncCount;
}

export function startPg(w: World, n: PgNode): void {
  if (!n.powered || n.proc !== 'dead') return;
  n.proc = 'running';
  n.streaming = false;
  n.streamFrom = null;
  n.stallSince = null;
  w.changed();
  w.tr(() => `${n.id} postgres started as ${n.role}${n.readOnly ? ' (read-only)' : ''}`);
}

/** pg_rewind (or a re-clone) from `up`: the node's history becomes up's. Needs up running and reachable. */
export function rewind(w: World, n: PgNode, upId: string): boolean {
  const u = w.nodes[upId];
  if (!u || u.id === n.id || !net(w, n, u) || u.proc !== 'running') return false;
  n.role = 'replica';
  n.readOnly = false;
  setHist(w, n, u.hist.slice());
  n.lsn = u.lsn;
  n.upstream = u.id;
  n.streaming = false;
  n.streamFrom = null;
  w.changed();
  return true;
}

/** a node's history changes: what it had on its last segment is final (for the loss check) */
export function setHist(w: World, n: PgNode, hist: Segment[]): void {
  const last = n.hist[n.hist.length - 1]!;
  w.segEnd.set(`${n.id}:${last.uid}`, n.lsn);
  n.hist = hist;
}

export function promoteNode(w: World, n: PgNode, operationId: string): void {
  const tl = w.tl(n) + 1;
  // not the target of the journal's operation: a job from an older one, delivered again
  const op = w.prefix[w.prefix.length - 1]!.operation;
  if (!op || op.id !== operationId || op.to !== n.id) {
    w.stats.stalePromotions++;
    w.tr(() => `note: ${n.id} promoted by a job of an operation that is over`);
  } else if (op.from && op.from !== n.id && !w.promotions.has(op.id)) {
    const from = w.node(op.from);
    w.promotions.set(op.id, { from: from.id, fromHist: from.hist, hist: n.hist, lsn: n.lsn });
  }
  n.syncNames = [];
  n.syncCount = 0;
  w.promotedSeg.set(w.uidSeq, n.id);
  setHist(w, n, [...n.hist, { uid: w.uidSeq++, tl, start: n.lsn }]);
  n.role = 'primary';
  n.readOnly = false;
  n.upstream = null;
  n.streaming = false;
  w.changed();
  w.tr(() => `${n.id} PROMOTED: timeline ${tl} at ${formatLsn(n.lsn)}`);
  for (const id of w.ids) {
    const o = w.node(id);
    if (o !== n && writable(w, o)) {
      // why it has not fenced itself yet
      const a = w.agents[id]!;
      let where: string;
      if (!a.started || !agentRunning(w, a)) where = 'agent down';
      else if (o.isolated) {
        const peers = w.ids.map((r) => w.node(r)).filter((r) => r.senderOf === id && w.now - r.lastReplyAt < WAL_SENDER_TIMEOUT_MS);
        const replied = peers.some((r) => w.now - r.lastReplyAt < w.settings.fenceAfterMs);
        if (replied) where = 'a standby replied within fenceAfterMs';
        else if (peers.length && !w.guards.has('reply-age')) where = 'standbys still listed';
        else if (w.now - a.lastRedisOk < w.settings.fenceAfterMs) where = 'fenceAfterMs not reached yet';
        else where = 'fence due, its probe still waiting on Redis';
      } else if (a.partitioned) where = 'agent cut off from Redis';
      else if (a.promotion !== null && w.now - a.promotion.at < PROMOTED_GRACE_MS) where = 'in its promotion grace';
      else where = 'agent up: the leader has not published the new primary';
      where = `${o.isolated ? 'isolated' : 'reachable'} (${where})`;
      w.count(w.stats.promotedBesideWritable, where);
      w.tr(() => `note: ${id} (${where}) is still a writable primary`);
    }
  }
}

export function killPg(w: World, n: PgNode, why: string): void {
  if (n.proc === 'dead') return;
  n.proc = 'dead';
  n.streaming = false;
  w.changed();
  w.tr(() => `${n.id} postgres ${why}`);
  // the agent (its child's 'exit' event) reacts at once
  onNodeExit(w, w.agents[n.id]!, n);
}
