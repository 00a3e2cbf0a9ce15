/**
 * The MongoDB probe: `hello` + `replSetGetStatus` → one observation of a replica-set member.
 * `mongoObservation` and `toNodeProbe` are pure (documents in, observation out: recorded
 * documents test them); `MongoProber` runs the two commands over one direct connection.
 */
import { MongoClient, type Document } from 'mongodb';
import type { Connection, NodeProbe, Prober } from '../types.js';
import { compareOpTime, formatPosition, type OpTime } from './position.js';
import type { ProbeError, ReplicationPeer } from '../../events/observation.js';
import { mongoFields } from './observation.js';


/** replSetGetStatus member states (MongoDB docs: replSetGetStatus, members[n].state). */
export const MEMBER_STATES: Record<number, string> = {
  0: 'STARTUP',
  1: 'PRIMARY',
  2: 'SECONDARY',
  3: 'RECOVERING',
  5: 'STARTUP2',
  6: 'UNKNOWN',
  7: 'ARBITER',
  8: 'DOWN',
  9: 'ROLLBACK',
  10: 'REMOVED',
};

export interface MongoMemberView {
  name: string;
  state: string;
  health: number;
  self: boolean;
  optime: OpTime | null;
  /** ms since epoch of the member's last applied write (optimeDate) */
  optimeDate: number | null;
  /** how far its last applied write is behind the primary's (or the newest member's, without a primary), ms */
  lagMs: number | null;
  /** operations behind: only when both optimes fall in the same second of the same term (a Timestamp increment counts within one second), else null */
  lagOps: number | null;
  syncSourceHost: string | null;
}

/** What one probe of a member saw. */
export interface MongoObservation {
  isWritablePrimary: boolean;
  secondary: boolean;
  arbiterOnly: boolean;
  /** the member's own state: from replSetGetStatus when available, else derived from hello */
  state: string;
  setName: string | null;
  setVersion: number | null;
  /** hex of the electionId (only a primary reports one) */
  electionId: string | null;
  term: number | null;
  opTime: OpTime | null;
  /** the opTime as a position string `term:secs.inc` */
  position: string | null;
  lastWriteDate: number | null;
  hosts: string[];
  passives: string[];
  arbiters: string[];
  primary: string | null;
  me: string | null;
  tags: Record<string, string>;
  syncSourceHost: string | null;
  /** empty when replSetGetStatus was not available */
  members: MongoMemberView[];
}

/* ------------------------------------------------------------ bson values, duck-typed */

function num(x: unknown): number | null {
  if (typeof x === 'number') return Number.isFinite(x) ? x : null;
  if (typeof x === 'bigint') return Number(x);
  if (x && typeof x === 'object') {
    const o = x as { toNumber?: () => number; valueOf?: () => unknown };
    if (typeof o.toNumber === 'function') return o.toNumber();
    const v = o.valueOf?.();
    if (typeof v === 'number') return v;
  }
  return null;
}

function dateMs(x: unknown): number | null {
  if (x instanceof Date) return Number.isNaN(x.getTime()) ? null : x.getTime();
  if (typeof x === 'string') {
    const t = Date.parse(x);
    return Number.isNaN(t) ? null : t;
  }
  return num(x);
}

function str(x: unknown): string | null {
  return typeof x === 'string' && x !== '' ? x : null;
}

function strings(x: unknown): string[] {
  return Array.isArray(x) ? x.filter((s): s is string => typeof s === 'string') : [];
}

function hexId(x: unknown): string | null {
  if (x && typeof x === 'object' && typeof (x as { toHexString?: unknown }).toHexString === 'function') return (x as { toHexString(): string }).toHexString();
  return typeof x === 'string' && /^[0-9a-f]{24}$/i.test(x) ? x.toLowerCase() : null;
}

function timestamp(x: unknown): { secs: number; inc: number } | null {
  if (!x || typeof x !== 'object') return null;
  const o = x as { getHighBitsUnsigned?: () => number; getLowBitsUnsigned?: () => number; t?: unknown; i?: unknown };
  if (typeof o.getHighBitsUnsigned === 'function' && typeof o.getLowBitsUnsigned === 'function') return { secs: o.getHighBitsUnsigned(), inc: o.getLowBitsUnsigned() };
  const t = num(o.t);
  const i = num(o.i);
  return t !== null && i !== null ? { secs: t, inc: i } : null;
}

/** `{ ts: Timestamp, t: term }` → OpTime; null when malformed or the "no optime" sentinel (t = -1). */
export function opTimeOf(x: unknown): OpTime | null {
  if (!x || typeof x !== 'object') return null;
  const d = x as Document;
  const ts = timestamp(d.ts);
  const term = num(d.t);
  if (!ts || term === null || term < 0) return null;
  return { term, ...ts };
}

export { compareOpTime, formatPosition, mongoPosition, parsePosition, type OpTime } from './position.js';

/* ------------------------------------------------------------ the observation */

function stateFromHello(h: Document): string {
  if (h.isWritablePrimary === true || h.ismaster === true) return 'PRIMARY';
  if (h.secondary === true) return 'SECONDARY';
  if (h.arbiterOnly === true) return 'ARBITER';
  return 'OTHER';
}

/**
 * The observation a member's `hello` (required) and `replSetGetStatus` (null when it failed,
 * e.g. on an arbiter without auth, or a node not yet initiated) give.
 */
export function mongoObservation(hello: Document, status: Document | null): MongoObservation {
  const lastWrite = (hello.lastWrite ?? {}) as Document;
  const op = opTimeOf(lastWrite.opTime);
  const rawMembers = status && Array.isArray(status.members) ? (status.members as Document[]) : [];
  const parsed = rawMembers.map((m) => {
    const code = num(m.state);
    return {
      name: str(m.name) ?? '?',
      state: str(m.stateStr) && !String(m.stateStr).startsWith('(') ? String(m.stateStr) : code !== null ? (MEMBER_STATES[code] ?? 'UNKNOWN') : 'UNKNOWN',
      health: num(m.health) ?? 0,
      self: m.self === true,
      optime: opTimeOf(m.optime),
      optimeDate: dateMs(m.optimeDate),
      syncSourceHost: str(m.syncSourceHost),
    };
  });
  const ref = parsed.find((m) => m.state === 'PRIMARY' && m.health > 0) ?? null;
  const newestDate = Math.max(...parsed.filter((m) => m.health > 0 && m.optimeDate !== null && m.optimeDate > 0).map((m) => m.optimeDate ?? 0), -1);
  const newestOp = parsed.filter((m) => m.health > 0 && m.optime).reduce<OpTime | null>((b, m) => (m.optime && (!b || compareOpTime(m.optime, b) > 0) ? m.optime : b), null);
  const members: MongoMemberView[] = parsed.map((m) => {
    const refDate = ref ? ref.optimeDate : newestDate >= 0 ? newestDate : null;
    const refOp = ref ? ref.optime : newestOp;
    const usable = m.health > 0 && m.optimeDate !== null && m.optimeDate > 0 && refDate !== null && m.state !== 'ARBITER';
    const lagOps = m.health > 0 && m.optime && refOp && refOp.term === m.optime.term && refOp.secs === m.optime.secs ? Math.max(0, refOp.inc - m.optime.inc) : m.optime && refOp && compareOpTime(m.optime, refOp) === 0 ? 0 : null;
    return { ...m, lagMs: usable ? Math.max(0, (refDate ?? 0) - (m.optimeDate ?? 0)) : null, lagOps };
  });
  const self = members.find((m) => m.self);
  const statusTerm = status ? num(status.term) : null;
  return {
    isWritablePrimary: hello.isWritablePrimary === true || hello.ismaster === true,
    secondary: hello.secondary === true,
    arbiterOnly: hello.arbiterOnly === true,
    state: self?.state ?? (status ? (MEMBER_STATES[num(status.myState) ?? 6] ?? 'UNKNOWN') : stateFromHello(hello)),
    setName: str(hello.setName),
    setVersion: num(hello.setVersion),
    electionId: hexId(hello.electionId),
    term: op?.term ?? statusTerm,
    opTime: op,
    position: op ? formatPosition(op) : null,
    lastWriteDate: dateMs(lastWrite.lastWriteDate),
    hosts: strings(hello.hosts),
    passives: strings(hello.passives),
    arbiters: strings(hello.arbiters),
    primary: str(hello.primary),
    me: str(hello.me),
    tags: hello.tags && typeof hello.tags === 'object' ? (hello.tags as Record<string, string>) : {},
    syncSourceHost: str(status?.syncSourceHost) ?? self?.syncSourceHost ?? null,
    members,
  };
}

/** The engine-neutral part of the observation (the seam's NodeProbe). */
export function toNodeProbe(o: MongoObservation): NodeProbe {
  const self = o.members.find((m) => m.self);
  const role = o.isWritablePrimary ? 'primary' : o.secondary || ['RECOVERING', 'ROLLBACK', 'STARTUP2'].includes(o.state) ? 'replica' : 'unknown';
  const probe: NodeProbe = {
    reachable: true,
    role,
    timeline: o.term,
    lsn: o.position,
    replayLsn: o.position,
    replayDelayMs: role === 'replica' ? (self?.lagMs ?? null) : role === 'primary' ? 0 : null,
    upstream: role === 'replica' ? o.syncSourceHost : null,
    walReceiver: role === 'replica' ? (o.state === 'SECONDARY' && o.syncSourceHost ? 'streaming' : o.state.toLowerCase()) : null,
  };
  if (role === 'primary') {
    probe.standbys = o.members
      .filter((m) => !m.self && m.state !== 'ARBITER')
      .map((m): ReplicationPeer => ({
        name: m.name,
        state: m.health > 0 ? m.state.toLowerCase() : 'down',
        replayLsn: m.optime ? formatPosition(m.optime) : null,
        flushLsn: m.optime ? formatPosition(m.optime) : null,
        replayLagMs: m.lagMs,
        syncState: 'async',
      }));
  }
  return probe;
}

/* ------------------------------------------------------------ the prober */

function errorText(err: unknown, depth = 0): string {
  if (!(err instanceof Error) || depth > 4) return String(err);
  const e = err as Error & { cause?: unknown; reason?: { error?: unknown; servers?: Map<string, { error?: unknown }> } };
  const parts = [`${e.name} ${e.message}`];
  if (e.cause) parts.push(errorText(e.cause, depth + 1));
  if (e.reason?.error) parts.push(errorText(e.reason.error, depth + 1));
  for (const s of e.reason?.servers?.values() ?? []) if (s.error) parts.push(errorText(s.error, depth + 1));
  return parts.join(' | ');
}

function probeError(err: unknown): ProbeError {
  const msg = errorText(err);
  if (/ECONNREFUSED/.test(msg)) return 'refused';
  if (/auth|Authentication|Unauthorized/i.test(msg)) return 'auth';
  return 'timeout';
}

export function mongoUri(conn: Pick<Connection, 'host' | 'port' | 'user' | 'password'>, params = ''): string {
  const cred = conn.password !== undefined && conn.user ? `${encodeURIComponent(conn.user)}:${encodeURIComponent(conn.password)}@` : '';
  return `mongodb://${cred}${conn.host}:${String(conn.port)}/${params}`;
}

/** A persistent direct connection to one member; every call bounded by `timeoutMs`. */
export class MongoProber implements Prober {
  private client: MongoClient | null = null;

  constructor(
    private readonly conn: Connection,
    private readonly timeoutMs: number,
    private readonly onLost?: () => void,
  ) {}

  private async connect(): Promise<MongoClient> {
    if (this.client) return this.client;
    const c = new MongoClient(mongoUri(this.conn, '?directConnection=true'), {
      serverSelectionTimeoutMS: this.timeoutMs,
      connectTimeoutMS: this.timeoutMs,
      socketTimeoutMS: this.timeoutMs,
      maxPoolSize: 1,
      monitorCommands: false,
    });
    c.on('connectionClosed', () => this.onLost?.());
    await c.connect();
    this.client = c;
    return c;
  }

  /** hello + replSetGetStatus; the whole observation (for the fold and routing) */
  async observe(): Promise<MongoObservation> {
    const c = await this.connect();
    const admin = c.db('admin');
    const hello = await admin.command({ hello: 1 }, { timeoutMS: this.timeoutMs });
    let status: Document | null = null;
    try {
      status = await admin.command({ replSetGetStatus: 1 }, { timeoutMS: this.timeoutMs });
    } catch {
      status = null; // arbiter without auth, not initiated: hello alone
    }
    return mongoObservation(hello, status);
  }

  /** the probe's Mongo fields go with it (the observation's `mongo`) */
  private async probeWithFields(): Promise<NodeProbe> {
    const o = await this.observe();
    return { ...toNodeProbe(o), mongo: mongoFields(o) };
  }

  async probe(): Promise<NodeProbe> {
    try {
      return await this.probeWithFields();
    } catch (first) {
      await this.drop();
      let err = first;
      // a connection that just dropped says little: one fresh attempt tells refused from hung
      if (!/ECONNREFUSED/.test(errorText(first))) {
        try {
          return await this.probeWithFields();
        } catch (second) {
          err = second;
          await this.drop();
        }
      }
      return {
        reachable: false,
        error: probeError(err),
        errorMessage: err instanceof Error ? err.message : String(err),
        role: 'unknown',
        timeline: null,
        lsn: null,
        replayLsn: null,
        replayDelayMs: null,
        upstream: null,
        walReceiver: null,
      };
    }
  }

  private async drop(): Promise<void> {
    const c = this.client;
    this.client = null;
    if (c) await c.close(true).catch(() => undefined);
  }

  async close(): Promise<void> {
    await this.drop();
  }
}
