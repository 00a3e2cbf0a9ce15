/**
 * The agent's rules, pure: what the leader publishes for the agents, whether a node must
 * be fenced, killed or left alone, whether a job may run, and how a node starts. Used by
 * agent/agent.ts and by the simulator (test/simulation/), so the schedules it checks run
 * the shipped rules, not a copy. No I/O, no clock: every time is passed in.
 */
import { compareStreamIds, type ClusterState } from './state.js';
import { promotionInDoubt } from './decide.js';
import { selfFenceCapMs, type Settings } from './settings.js';
import type { NodeRole, ProbeError, ProcessState } from '../events/observation.js';

/**
 * What the leader publishes at `sy:{c}:primary` for the agents: the journal's primary,
 * and while a failover is in flight, the primary it deposed and the operation.
 */
export interface PublishedPrimary {
  id: string;
  host: string;
  port: number;
  /** a failover in flight deposed this node: its agent fences it at once */
  deposed?: string;
  /** the operation in flight and its target */
  operation?: { id: string; to: string };
}

export function publishedPrimary(state: ClusterState, at?: { now: number; settings: Settings }): PublishedPrimary | null {
  const p = state.primary ? state.nodes[state.primary] : undefined;
  if (!p) return null;
  const out: PublishedPrimary = { id: p.id, host: p.host, port: p.port };
  const op = state.operation;
  if (op) {
    out.operation = { id: op.id, to: op.to };
    if (op.deposed) out.deposed = op.deposed;
  } else if (at && promotionInDoubt(state, at.now, at.settings)) {
    // an operation ended without confirming its promotion: its target may be a primary
    // taking writes (a promote job still running, or one that landed unseen). The primary
    // stays deposed until the target reports (a replica, read-only, gone) or its lease
    // runs out; decide then unfences it.
    out.deposed = p.id;
  }
  return out;
}

/** Read back what publishedPrimary wrote (null for anything unreadable). */
export function parsePublishedPrimary(raw: string | null): PublishedPrimary | null {
  if (!raw) return null;
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch {
    return null;
  }
  const o = v as Partial<PublishedPrimary> | null;
  if (!o || typeof o.id !== 'string' || typeof o.host !== 'string' || typeof o.port !== 'number') return null;
  const out: PublishedPrimary = { id: o.id, host: o.host, port: o.port };
  if (typeof o.deposed === 'string') out.deposed = o.deposed;
  if (o.operation && typeof o.operation.id === 'string' && typeof o.operation.to === 'string') out.operation = { id: o.operation.id, to: o.operation.to };
  return out;
}

/** A promotion this agent carried out, until the leader names the node the primary. */
export interface OwnPromotion {
  operationId: string;
  agoMs: number;
  /** the agent has read the published key naming this operation since */
  seenPublished: boolean;
}

export interface GuardInput {
  node: string;
  process: ProcessState;
  reachable: boolean;
  role: NodeRole;
  error?: ProbeError | undefined;
  /** a primary on disk (no standby.signal); null when the agent does not manage the node */
  primaryOnDisk: boolean | null;
  /** the agent has made it read-only already */
  fenced: boolean;
  /** since Redis last accepted one of this agent's observations (its primary lease) */
  lostRedisMs: number;
  fenceAfterMs: number;
  /** standbys streaming from it that replied within fenceAfterMs */
  standbysRepliedLately: number;
  /** the published key as last read (null: none published) */
  published: PublishedPrimary | null;
  promotion: OwnPromotion | null;
  promotedGraceMs: number;
  /** the leader asked for it (a fence job) */
  fenceAsked?: boolean;
}

export type GuardAction = { action: 'none'; reason: string } | { action: 'read-only'; reason: string } | { action: 'kill'; reason: string };

/** Does the leader's key say this node must take no writes? The reason, or null. */
export function deposedBy(i: Pick<GuardInput, 'node' | 'published' | 'promotion' | 'promotedGraceMs'>): string | null {
  const p = i.published;
  if (!p) return null;
  if (p.deposed === i.node) return `deposed by ${p.operation?.id ?? 'a failover'}`;
  if (p.id === i.node) return null;
  const own = i.promotion;
  // promoted by this agent for the operation in flight: the leader has not named it yet
  if (own && p.operation?.id === own.operationId && p.operation.to === i.node) return null;
  // … or the leader has not published since (the key still predates the operation)
  if (own && !own.seenPublished && own.agoMs < i.promotedGraceMs) return null;
  return `${p.id} is the journal's primary`;
}

/**
 * Fence, kill or nothing. A node that may take writes (a primary that answers, or a
 * primary on disk that does not: stopped, hung) and must not (deposed, another node
 * published, or its agent cut off from Redis for fenceAfterMs with no standby replying)
 * is made read-only when it answers, else killed with its whole process tree: a frozen
 * server would take the writes queued on its sockets the moment it runs again.
 */
export function guardAction(i: GuardInput): GuardAction {
  const answersAsPrimary = i.reachable && i.role === 'primary';
  const hung = i.primaryOnDisk === true && (i.process === 'stopped' || (i.process === 'running' && !i.reachable && i.error === 'timeout'));
  if (!answersAsPrimary && !hung) return { action: 'none', reason: i.process === 'dead' ? 'not running' : 'not a primary that may take writes' };
  let why: string | null = i.fenceAsked ? 'the leader asked (fence job)' : deposedBy(i);
  if (!why && i.lostRedisMs >= i.fenceAfterMs && i.standbysRepliedLately === 0) why = `no Redis for ${Math.round(i.lostRedisMs)} ms and no standby replied lately`;
  // a standby replying keeps it writable for selfFenceCapMs at most: the leader counts its lease from the last report alone after that
  if (!why && i.lostRedisMs >= selfFenceCapMs(i.fenceAfterMs)) why = `no Redis for ${Math.round(i.lostRedisMs)} ms (standbys still reply, but the leader's count of its lease is over)`;
  if (!why) return { action: 'none', reason: 'may take writes' };
  if (answersAsPrimary) return i.fenced ? { action: 'none', reason: `read-only already (${why})` } : { action: 'read-only', reason: why };
  return { action: 'kill', reason: `${why}; it does not answer` };
}

/**
 * Count the standbys that replied within fenceAfterMs (a cut-off one stays 'streaming'
 * until wal_sender_timeout). `sinceMs`: how long ago the observation was begun: its reply
 * ages have grown by that much since (a guard judging an observation taken before a 1 s
 * peer check and a 1 s GET, or the fence timer's last one, must not see them frozen).
 */
export function standbysRepliedLately(standbys: ReadonlyArray<{ state: string; replyAgeMs?: number | null | undefined }> | undefined, fenceAfterMs: number, sinceMs = 0): number {
  const since = Math.max(0, sinceMs);
  return (standbys ?? []).filter((s) => s.state === 'streaming' && (s.replyAgeMs === undefined || s.replyAgeMs === null || s.replyAgeMs + since < fenceAfterMs)).length;
}

/**
 * What an observation says of a promotion, judged right before it is published (not when
 * it was begun): the promote job running now, or one that started after the observation
 * began (its probe may say "replica" from before the promotion, and the leader must not
 * take that as the node's answer to the promote request). `observedAt` and
 * `promotion.at` are on the same (the agent's monotonic) clock. null: none.
 */
export function promotingAtPublish(observedAt: number, running: string | null, promotion: { operationId: string; at: number } | null): string | null {
  if (running !== null) return running;
  if (promotion && promotion.at >= observedAt) return promotion.operationId;
  return null;
}

export interface JobGateInput {
  self: string;
  job: { node: string; epoch: number; expiresAt?: number | undefined; journalId?: string | undefined; action?: string | undefined };
  /** highest leader epoch seen, on a job or in the lease */
  epochSeen: number;
  /** Redis's clock (the leader stamped expiresAt with it) */
  redisNow: number | null;
  /** the journal id of the newest job this agent acted on */
  newestJournalId: string | null;
  /**
   * the published key, read just before (jobs that make the node take writes: restart,
   * unfence): a job asked before a failover deposed it must not run after
   */
  published?: PublishedPrimary | null | undefined;
}

export type JobGate = { ok: true } | { ok: false; code: 'wrong-node' | 'expired' | 'stale-epoch' | 'stale-journal-id' | 'deposed'; message: string };

/**
 * May the job run? Node, expiry (on Redis's clock), epoch, and the journal id of the entry
 * that asked for it: a job older than the newest one acted on is refused (a late copy of a
 * job whose operation was overtaken). The lease is re-read by the shell before an
 * irreversible act.
 */
export function jobGate(i: JobGateInput): JobGate {
  const j = i.job;
  if (j.node !== i.self) return { ok: false, code: 'wrong-node', message: `job for ${j.node} sent to ${i.self}` };
  if (typeof j.expiresAt === 'number' && i.redisNow !== null && i.redisNow > j.expiresAt) {
    return { ok: false, code: 'expired', message: `job expired ${i.redisNow - j.expiresAt} ms ago: its operation is over or was retried` };
  }
  if (!Number.isInteger(j.epoch) || j.epoch < i.epochSeen) return { ok: false, code: 'stale-epoch', message: `job epoch ${j.epoch} is older than epoch ${i.epochSeen} already seen` };
  if (typeof j.journalId === 'string' && i.newestJournalId !== null && compareStreamIds(j.journalId, i.newestJournalId) < 0) {
    return { ok: false, code: 'stale-journal-id', message: `job asked by journal entry ${j.journalId}, older than ${i.newestJournalId} already acted on` };
  }
  if ((j.action === 'restart' || j.action === 'unfence') && i.published !== undefined) {
    const why = deposedBy({ node: i.self, published: i.published, promotion: null, promotedGraceMs: 0 });
    if (why) return { ok: false, code: 'deposed', message: `${j.action} would make it take writes, but ${why}` };
  }
  return { ok: true };
}

export type BootAction = { action: 'adopt'; guardFirst: boolean } | { action: 'start'; readOnly: boolean; reason: string };

/**
 * How an agent starts its node: adopt a running postmaster (a primary one is judged by
 * guardAction before anything else runs: its host may have been frozen through a
 * failover); a former primary whose place
 * the leader's key gives another node (or that it deposed) starts read-only for the
 * leader to decide (rejoin it, or unfence it if it is the journal's primary after all),
 * never rewound on the agent's own say-so.
 */
export function bootAction(i: { node: string; running: boolean; primaryOnDisk: boolean; published: PublishedPrimary | null }): BootAction {
  if (i.running) return { action: 'adopt', guardFirst: i.primaryOnDisk };
  const p = i.published;
  if (i.primaryOnDisk && p && (p.id !== i.node || p.deposed === i.node)) {
    return { action: 'start', readOnly: true, reason: p.deposed === i.node ? 'deposed by a failover in flight' : `${p.id} is published as the primary` };
  }
  // even when the key names it: the key was read before the start, and a failover may
  // depose it meanwhile (it comes up writable beside a new primary). The leader unfences
  // the journal's primary once it reports it read-only.
  // (nothing published: a new cluster, no leader to unfence it yet; none to fail over either)
  if (i.primaryOnDisk && p) return { action: 'start', readOnly: true, reason: 'the key was read before the start: read-only until the leader unfences it' };
  return { action: 'start', readOnly: false, reason: i.primaryOnDisk ? 'primary' : 'standby' };
}
