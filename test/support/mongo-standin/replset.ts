/**
 * STAND-IN, NOT MONGODB. A small replica set that speaks the MongoDB wire protocol so that
 * the official `mongodb` driver, the probe and the steering actions can be tested on a
 * machine where no `mongod` can be installed. It models: members on their own TCP ports,
 * terms and electionIds, elections (newest optime first, then priority; priority
 * takeover), step-down, freeze, reconfig of priorities/votes/tags, an oplog with
 * Timestamp optimes, replication (pausable per member), partitions (a partitioned primary
 * stays a stale primary until healed, then rolls back), stopped members, RECOVERING, and
 * insert/find/update/delete with top-level equality filters.
 *
 * It is NOT a database: no indexes, no query language beyond equality, no durability, no
 * real consensus protocol (the whole set lives in one process and the test scripts it).
 * What only a real mongod can confirm is listed in docs/mongodb.md.
 */
import net from 'node:net';
import { Long, ObjectId, Timestamp, type Document } from 'bson';
import { encodeReply, parseMessage, type WireRequest } from './wire.js';

export type MemberState = 'PRIMARY' | 'SECONDARY' | 'RECOVERING' | 'STARTUP2' | 'ARBITER' | 'ROLLBACK';
const STATE_CODE: Record<MemberState | 'DOWN', number> = { PRIMARY: 1, SECONDARY: 2, RECOVERING: 3, STARTUP2: 5, ARBITER: 7, DOWN: 8, ROLLBACK: 9 };

export interface MemberSpec {
  priority?: number;
  votes?: number;
  arbiter?: boolean;
  tags?: Record<string, string>;
}

export interface StandinOptions {
  setName?: string;
  /** how many data-bearing members (default 3), or their specs */
  members?: number | MemberSpec[];
  /** how long the set waits before electing a primary when it has none (default 150 ms) */
  electionDelayMs?: number;
  /** how long a rolled-back member stays in ROLLBACK (default 200 ms) */
  rollbackMs?: number;
  /** the wall clock (ms) */
  now?: () => number;
}

interface OpTime {
  ts: { t: number; i: number };
  term: number;
}

interface OplogEntry extends OpTime {
  wall: number;
  op: 'n' | 'i' | 'u' | 'd';
  ns: string;
  id?: string;
  doc?: Document;
}

const NOT_PRIMARY = { ok: 0, code: 10107, codeName: 'NotWritablePrimary', errmsg: 'not primary' };

function idKey(id: unknown): string {
  if (id instanceof ObjectId) return `oid:${id.toHexString()}`;
  return `v:${JSON.stringify(id)}`;
}

function same(a: unknown, b: unknown): boolean {
  if (a instanceof ObjectId && b instanceof ObjectId) return a.equals(b);
  if (a instanceof Date && b instanceof Date) return a.getTime() === b.getTime();
  if (typeof a === 'object' && a !== null && typeof b === 'object' && b !== null) return JSON.stringify(a) === JSON.stringify(b);
  return a === b;
}

function matches(doc: Document, filter: Document | undefined): boolean {
  if (!filter) return true;
  return Object.entries(filter).every(([k, v]) => same(doc[k], v));
}

function cmpOpTime(a: OpTime | undefined, b: OpTime | undefined): number {
  if (!a || !b) return a ? 1 : b ? -1 : 0;
  if (a.ts.t !== b.ts.t) return a.ts.t - b.ts.t;
  return a.ts.i - b.ts.i;
}

export class StandinMember {
  readonly name: string;
  priority: number;
  votes: number;
  readonly arbiter: boolean;
  tags: Record<string, string>;
  state: MemberState;
  term = 0;
  electionId: ObjectId | null = null;
  knownPrimary: string | null = null;
  configVersion = 1;
  oplog: OplogEntry[] = [];
  data = new Map<string, Map<string, Document>>();
  frozenUntil = 0;
  /** hello/isMaster commands answered (a test waits for the driver's heartbeats with it) */
  hellos = 0;
  partitioned = false;
  replicationPaused = false;
  up = true;
  /** set by the test (MongoStandin.hang): the process is stopped (SIGSTOP), see `setHung` */
  hung = false;
  /** set by the test: stay RECOVERING regardless of replication */
  stuck = false;
  syncSource: string | null = null;
  electionDate: Date | null = null;
  private server: net.Server | null = null;
  private sockets = new Set<net.Socket>();
  private connId = 0;
  private held: (() => void)[] = [];

  constructor(
    private readonly set: MongoStandin,
    readonly id: number,
    readonly port: number,
    spec: MemberSpec,
  ) {
    this.name = `127.0.0.1:${String(port)}`;
    this.priority = spec.arbiter ? 0 : (spec.priority ?? 1);
    this.votes = spec.votes ?? 1;
    this.arbiter = spec.arbiter ?? false;
    this.tags = spec.tags ?? {};
    this.state = this.arbiter ? 'ARBITER' : 'SECONDARY';
  }

  lastOpTime(): OpTime | undefined {
    return this.oplog[this.oplog.length - 1];
  }

  async listen(port: number): Promise<number> {
    const server = net.createServer((sock) => this.accept(sock));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    this.server = server;
    const addr = server.address();
    if (addr === null || typeof addr === 'string') throw new Error('stand-in: no address');
    return addr.port;
  }

  async shutdown(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    const server = this.server;
    this.server = null;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /**
   * As a stopped (SIGSTOPped) mongod: connections are still accepted (the kernel completes
   * them) but nothing is read or answered until resumed; what was sent waits in the socket.
   */
  setHung(on: boolean): void {
    this.hung = on;
    for (const s of this.sockets) if (on) s.pause();
    else s.resume();
    if (!on) for (const send of this.held.splice(0)) send();
  }

  private accept(sock: net.Socket): void {
    this.sockets.add(sock);
    const connectionId = ++this.connId;
    let buf = Buffer.alloc(0);
    sock.on('close', () => this.sockets.delete(sock));
    sock.on('error', () => sock.destroy());
    sock.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 4) {
        const len = buf.readInt32LE(0);
        if (buf.length < len) break;
        const msg = buf.subarray(0, len);
        buf = buf.subarray(len);
        let req: WireRequest;
        try {
          req = parseMessage(msg);
        } catch {
          sock.destroy();
          return;
        }
        void this.set.command(this, req.body, connectionId).then((reply) => {
          const send = () => {
            if (!req.noReply && !sock.destroyed) sock.write(encodeReply(req, reply));
          };
          // a stopped process answers what it had read once it is continued
          if (this.hung) this.held.push(send);
          else send();
        });
      }
    });
    if (this.hung) sock.pause();
  }

  /** rebuilds `data` from the oplog (after a rollback) */
  rebuild(): void {
    this.data.clear();
    for (const e of this.oplog) this.apply(e);
  }

  apply(e: OplogEntry): void {
    if (e.op === 'n' || e.id === undefined) return;
    let coll = this.data.get(e.ns);
    if (!coll) {
      coll = new Map();
      this.data.set(e.ns, coll);
    }
    if (e.op === 'd') coll.delete(e.id);
    else if (e.doc) coll.set(e.id, e.doc);
  }
}

/** A scripted replica set of stand-in members; see the file header. */
export class MongoStandin {
  readonly setName: string;
  readonly members: StandinMember[] = [];
  setVersion = 1;
  /** the CRUD commands received (insert/update/delete/find), with the member that got each: a test reads what the driver sent */
  readonly received: { member: string; command: string; body: Document }[] = [];
  private readonly electionDelayMs: number;
  private readonly rollbackMs: number;
  readonly now: () => number;
  private lastTs = { t: 0, i: 0 };
  private timer: NodeJS.Timeout | null = null;
  private noPrimarySince: number | null = null;
  private takeoverSince: number | null = null;
  private closed = false;

  private constructor(opts: StandinOptions) {
    this.setName = opts.setName ?? 'rs0';
    this.electionDelayMs = opts.electionDelayMs ?? 150;
    this.rollbackMs = opts.rollbackMs ?? 200;
    this.now = opts.now ?? Date.now;
  }

  /** Starts the members (each on a free loopback port) and elects the first primary. */
  static async start(opts: StandinOptions = {}): Promise<MongoStandin> {
    const set = new MongoStandin(opts);
    const specs: MemberSpec[] = typeof opts.members === 'object' ? opts.members : Array.from({ length: opts.members ?? 3 }, () => ({}));
    for (const [i, spec] of specs.entries()) {
      const probe = new StandinMember(set, i, 0, spec);
      const port = await probe.listen(0);
      await probe.shutdown();
      const m = new StandinMember(set, i, port, spec);
      await m.listen(port);
      set.members.push(m);
    }
    set.elect();
    set.timer = setInterval(() => set.tick(), 25);
    set.timer.unref();
    return set;
  }

  seedList(): string {
    return this.members.map((m) => m.name).join(',');
  }

  uri(): string {
    return `mongodb://${this.seedList()}/?replicaSet=${this.setName}`;
  }

  member(idOrName: number | string): StandinMember {
    const m = typeof idOrName === 'number' ? this.members[idOrName] : this.members.find((x) => x.name === idOrName);
    if (!m) throw new Error(`stand-in: no member ${String(idOrName)}`);
    return m;
  }

  /** the primary of the majority side, if any */
  primary(): StandinMember | undefined {
    const ps = this.majoritySide().filter((m) => m.state === 'PRIMARY');
    return ps.sort((a, b) => b.term - a.term)[0];
  }

  private majoritySide(): StandinMember[] {
    const side = this.members.filter((m) => m.up && !m.partitioned);
    const total = this.members.reduce((n, m) => n + m.votes, 0);
    const have = side.reduce((n, m) => n + m.votes, 0);
    return have * 2 > total ? side : [];
  }

  private nextOpTime(term: number): OpTime {
    const sec = Math.floor(this.now() / 1000);
    this.lastTs = sec === this.lastTs.t ? { t: sec, i: this.lastTs.i + 1 } : { t: sec, i: 1 };
    return { ts: { ...this.lastTs }, term };
  }

  private electable(m: StandinMember, at: number): boolean {
    return m.state === 'SECONDARY' && !m.arbiter && m.priority > 0 && m.frozenUntil <= at && !m.stuck;
  }

  /**
   * Holds an election on the majority side now: the electable member with the newest
   * optime wins (ties: highest priority, then lowest id), or `preferred` when it is
   * electable and caught up. Returns the new primary.
   */
  elect(preferred?: number): StandinMember | undefined {
    const side = this.majoritySide();
    const at = this.now();
    const cands = side.filter((m) => this.electable(m, at));
    if (cands.length === 0) return undefined;
    const newest = cands.reduce((best, m) => (cmpOpTime(m.lastOpTime(), best.lastOpTime()) > 0 ? m : best));
    const caught = cands.filter((m) => cmpOpTime(m.lastOpTime(), newest.lastOpTime()) === 0);
    caught.sort((a, b) => b.priority - a.priority || a.id - b.id);
    const winner = caught.find((m) => m.id === preferred) ?? caught[0];
    if (!winner) return undefined;
    const term = Math.max(...this.members.map((m) => m.term)) + 1;
    for (const m of side) {
      if (m.state === 'PRIMARY') this.demote(m);
      m.term = term;
      m.knownPrimary = winner.name;
    }
    winner.state = 'PRIMARY';
    winner.electionId = new ObjectId(`7fffffff${term.toString(16).padStart(16, '0')}`);
    winner.electionDate = new Date(at);
    winner.syncSource = null;
    this.append(winner, { op: 'n', ns: '' });
    this.noPrimarySince = null;
    this.takeoverSince = null;
    this.replicate();
    return winner;
  }

  private demote(m: StandinMember): void {
    m.state = 'SECONDARY';
    m.electionId = null;
  }

  private append(primary: StandinMember, e: Omit<OplogEntry, 'ts' | 'term' | 'wall'>): OplogEntry {
    const entry: OplogEntry = { ...this.nextOpTime(primary.term), wall: this.now(), ...e };
    primary.oplog.push(entry);
    primary.apply(entry);
    return entry;
  }

  /** copies the majority primary's oplog to the secondaries that can reach it */
  replicate(): void {
    const p = this.primary();
    if (!p) return;
    for (const m of this.majoritySide()) {
      if (m === p || m.arbiter || m.replicationPaused || m.stuck || m.state === 'ROLLBACK') continue;
      // common prefix
      let k = 0;
      while (k < m.oplog.length && k < p.oplog.length && cmpOpTime(m.oplog[k], p.oplog[k]) === 0 && m.oplog[k]?.term === p.oplog[k]?.term) k++;
      if (k < m.oplog.length) {
        this.rollback(m, k);
        continue;
      }
      for (const e of p.oplog.slice(k)) {
        m.oplog.push(e);
        m.apply(e);
      }
      m.syncSource = p.name;
      if (m.state === 'RECOVERING' || m.state === 'STARTUP2') m.state = 'SECONDARY';
    }
  }

  private rollback(m: StandinMember, keep: number): void {
    m.state = 'ROLLBACK';
    m.electionId = null;
    m.oplog = m.oplog.slice(0, keep);
    m.rebuild();
    setTimeout(() => {
      if (m.state === 'ROLLBACK') m.state = 'SECONDARY';
      this.replicate();
    }, this.rollbackMs).unref();
  }

  private tick(): void {
    if (this.closed) return;
    const at = this.now();
    const side = this.majoritySide();
    const p = this.primary();
    // a primary that lost its majority and was healed back sees the newer term and steps down
    for (const m of side) {
      if (m.state === 'PRIMARY' && p && m !== p && m.term < p.term) {
        this.demote(m);
        m.term = p.term;
        m.knownPrimary = p.name;
      }
      if (p && m.term < p.term) {
        m.term = p.term;
        m.knownPrimary = p.name;
      }
      if (m.configVersion < this.setVersion) m.configVersion = this.setVersion;
    }
    if (!p) {
      if (side.length === 0) return;
      this.noPrimarySince ??= at;
      if (at - this.noPrimarySince >= this.electionDelayMs) this.elect();
      return;
    }
    this.noPrimarySince = null;
    this.replicate();
    // priority takeover: a caught-up electable member with a higher priority
    const higher = side.filter((m) => this.electable(m, at) && m.priority > p.priority && cmpOpTime(m.lastOpTime(), p.lastOpTime()) === 0);
    if (higher.length === 0) {
      this.takeoverSince = null;
      return;
    }
    this.takeoverSince ??= at;
    if (at - this.takeoverSince >= this.electionDelayMs) {
      higher.sort((a, b) => b.priority - a.priority || a.id - b.id);
      const to = higher[0];
      if (to) {
        this.demote(p);
        this.elect(to.id);
      }
    }
  }

  /* ------------------------------------------------------------ scripting */

  /** cuts the member off from the others (clients still reach it) */
  partition(id: number): void {
    const m = this.member(id);
    m.partitioned = true;
    if (m.state !== 'PRIMARY') m.knownPrimary = null;
    for (const o of this.members) if (o !== m && o.knownPrimary === m.name) o.knownPrimary = null;
  }

  heal(id: number): void {
    this.member(id).partitioned = false;
    this.tick();
  }

  async stop(id: number): Promise<void> {
    const m = this.member(id);
    m.up = false;
    if (m.state === 'PRIMARY') {
      this.demote(m);
      for (const o of this.members) if (o.knownPrimary === m.name) o.knownPrimary = null;
    }
    m.knownPrimary = null;
    await m.shutdown();
  }

  async restart(id: number): Promise<void> {
    const m = this.member(id);
    await m.listen(m.port);
    m.up = true;
    m.state = m.arbiter ? 'ARBITER' : 'STARTUP2';
    this.replicate();
  }

  /** the member's process is stopped (SIGSTOP) or continued: connects succeed, nothing answers (the set's model is unaffected) */
  hang(id: number, on = true): void {
    this.member(id).setHung(on);
  }

  /** the member stops applying the oplog (it falls behind) until resumed */
  pauseReplication(id: number, paused = true): void {
    this.member(id).replicationPaused = paused;
  }

  /** the member enters RECOVERING and stays there until released */
  setRecovering(id: number, on = true): void {
    const m = this.member(id);
    m.stuck = on;
    if (on) {
      if (m.state === 'PRIMARY') this.demote(m);
      m.state = 'RECOVERING';
    } else {
      m.state = 'SECONDARY';
      this.replicate();
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    await Promise.all(this.members.map((m) => m.shutdown()));
  }

  /* ------------------------------------------------------------ commands */

  private opTimeDoc(o: OpTime | undefined): Document {
    return o ? { ts: new Timestamp({ t: o.ts.t, i: o.ts.i }), t: Long.fromNumber(o.term) } : { ts: new Timestamp({ t: 0, i: 0 }), t: Long.fromNumber(-1) };
  }

  private wallOf(m: StandinMember): Date {
    const last = m.oplog[m.oplog.length - 1];
    return new Date(last ? last.wall : 0);
  }

  hello(m: StandinMember, connectionId: number): Document {
    m.hellos++;
    const primary = m.state === 'PRIMARY';
    const view = this.members.filter((o) => !o.arbiter);
    const doc: Document = {
      helloOk: true,
      isWritablePrimary: primary,
      ismaster: primary,
      secondary: m.state === 'SECONDARY',
      setName: this.setName,
      setVersion: m.configVersion,
      hosts: view.filter((o) => o.priority > 0).map((o) => o.name),
      me: m.name,
      maxBsonObjectSize: 16 * 1024 * 1024,
      maxMessageSizeBytes: 48_000_000,
      maxWriteBatchSize: 100_000,
      localTime: new Date(this.now()),
      logicalSessionTimeoutMinutes: 30,
      connectionId,
      minWireVersion: 0,
      maxWireVersion: 21,
      readOnly: false,
      ok: 1,
    };
    const passives = view.filter((o) => o.priority === 0).map((o) => o.name);
    if (passives.length) doc.passives = passives;
    const arbiters = this.members.filter((o) => o.arbiter).map((o) => o.name);
    if (arbiters.length) doc.arbiters = arbiters;
    if (m.arbiter) doc.arbiterOnly = true;
    if (Object.keys(m.tags).length) doc.tags = m.tags;
    const knownPrimary = primary ? m.name : m.knownPrimary;
    if (knownPrimary && m.state !== 'ROLLBACK') doc.primary = knownPrimary;
    if (primary && m.electionId) doc.electionId = m.electionId;
    if (!m.arbiter) {
      const last = m.lastOpTime();
      doc.lastWrite = { opTime: this.opTimeDoc(last), lastWriteDate: this.wallOf(m), majorityOpTime: this.opTimeDoc(last), majorityWriteDate: this.wallOf(m) };
    }
    return doc;
  }

  replSetGetStatus(m: StandinMember): Document {
    const at = this.now();
    const members = this.members.map((o) => {
      const self = o === m;
      const visible = self || (o.up && !o.partitioned && !m.partitioned);
      const last = o.lastOpTime();
      const d: Document = {
        _id: o.id,
        name: o.name,
        health: visible ? 1 : 0,
        state: visible ? STATE_CODE[o.state] : STATE_CODE.DOWN,
        stateStr: visible ? o.state : '(not reachable/healthy)',
        uptime: 100,
        configVersion: o.configVersion,
        syncSourceHost: visible && o.syncSource && o.state !== 'PRIMARY' ? o.syncSource : '',
      };
      if (!o.arbiter) {
        d.optime = visible ? this.opTimeDoc(last) : this.opTimeDoc(undefined);
        d.optimeDate = visible ? this.wallOf(o) : new Date(0);
      }
      if (self) d.self = true;
      else d.lastHeartbeat = new Date(at);
      if (visible && o.state === 'PRIMARY' && o.electionDate) {
        d.electionDate = o.electionDate;
        if (o.electionId) d.electionId = o.electionId;
      }
      if (o.stuck && visible) d.infoMessage = 'stand-in: held in RECOVERING';
      return d;
    });
    return {
      set: this.setName,
      date: new Date(at),
      myState: STATE_CODE[m.state],
      term: Long.fromNumber(m.term),
      syncSourceHost: m.state === 'PRIMARY' ? '' : (m.syncSource ?? ''),
      heartbeatIntervalMillis: Long.fromNumber(2000),
      members,
      ok: 1,
    };
  }

  private config(): Document {
    return {
      _id: this.setName,
      version: this.setVersion,
      term: Math.max(...this.members.map((m) => m.term)),
      members: this.members.map((m) => ({ _id: m.id, host: m.name, arbiterOnly: m.arbiter, buildIndexes: true, hidden: false, priority: m.priority, tags: m.tags, secondaryDelaySecs: Long.fromNumber(0), votes: m.votes })),
      settings: { electionTimeoutMillis: this.electionDelayMs, heartbeatIntervalMillis: 2000 },
    };
  }

  private async waitForConcern(m: StandinMember, wc: Document | undefined): Promise<Document | null> {
    if (!wc || wc.w === undefined || wc.w === 1 || wc.w === 0) return null;
    const last = m.lastOpTime();
    const dataBearing = this.members.filter((o) => !o.arbiter && o.votes > 0);
    const need = wc.w === 'majority' ? Math.floor(this.members.reduce((n, o) => n + o.votes, 0) / 2) + 1 : Number(wc.w);
    const deadline = this.now() + (typeof wc.wtimeout === 'number' && wc.wtimeout > 0 ? wc.wtimeout : 1000);
    for (;;) {
      const acked = dataBearing.filter((o) => o.up && cmpOpTime(o.oplog.find((e) => cmpOpTime(e, last) === 0), last) === 0).length;
      if (acked >= need) return null;
      if (this.now() >= deadline) return { code: 64, codeName: 'WriteConcernFailed', errmsg: 'waiting for replication timed out', errInfo: { wtimeout: true } };
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Runs one command on member `m` (the wire server calls this). */
  async command(m: StandinMember, body: Document, connectionId: number): Promise<Document> {
    const name = Object.keys(body)[0] ?? '';
    const at = this.now();
    const db = typeof body.$db === 'string' ? body.$db : 'admin';
    switch (name) {
      case 'hello':
      case 'isMaster':
      case 'ismaster':
        return this.hello(m, connectionId);
      case 'ping':
      case 'endSessions':
      case 'killCursors':
        return { ok: 1 };
      case 'buildInfo':
      case 'buildinfo':
        return { version: '7.0.0-standin', versionArray: [7, 0, 0, 0], gitVersion: 'stand-in', ok: 1 };
      case 'replSetGetStatus':
        return this.replSetGetStatus(m);
      case 'replSetGetConfig':
        return { config: this.config(), ok: 1 };
      case 'replSetStepDown': {
        if (m.state !== 'PRIMARY') return { ok: 0, code: 10107, codeName: 'NotWritablePrimary', errmsg: 'not primary so can\'t step down' };
        const secs = Number(body.replSetStepDown ?? 60);
        const catchUp = Number(body.secondaryCatchUpPeriodSecs ?? 10);
        const deadline = at + catchUp * 1000;
        for (;;) {
          this.replicate();
          const ok = this.majoritySide().some((o) => o !== m && this.electable(o, this.now()) && cmpOpTime(o.lastOpTime(), m.lastOpTime()) === 0);
          if (ok || body.force === true) break;
          if (this.now() >= deadline) return { ok: 0, code: 262, codeName: 'ExceededTimeLimit', errmsg: 'No electable secondaries caught up' };
          await new Promise((r) => setTimeout(r, 20));
        }
        this.demote(m);
        m.frozenUntil = this.now() + secs * 1000;
        for (const o of this.members) if (o.knownPrimary === m.name) o.knownPrimary = null;
        return { ok: 1 };
      }
      case 'replSetFreeze': {
        if (m.state === 'PRIMARY') return { ok: 0, code: 95, codeName: 'NotSecondary', errmsg: 'cannot freeze node when primary or running for election. state: Primary' };
        const secs = Number(body.replSetFreeze ?? 0);
        m.frozenUntil = secs === 0 ? 0 : at + secs * 1000;
        return secs === 0 ? { info: 'unfreezing', ok: 1 } : { ok: 1 };
      }
      case 'replSetReconfig': {
        if (m.state !== 'PRIMARY' && body.force !== true) return { ...NOT_PRIMARY };
        const cfg = body.replSetReconfig as Document | undefined;
        if (!cfg || !Array.isArray(cfg.members)) return { ok: 0, code: 93, codeName: 'InvalidReplicaSetConfig', errmsg: 'replSetReconfig needs a config document with members' };
        const version = Number(cfg.version);
        if (!(version > this.setVersion)) return { ok: 0, code: 103, codeName: 'NewReplicaSetConfigurationIncompatible', errmsg: `version field value of ${String(version)} is not greater than the current version ${String(this.setVersion)}` };
        for (const mc of cfg.members as Document[]) {
          const target = this.members.find((o) => o.id === Number(mc._id));
          if (!target) return { ok: 0, code: 103, codeName: 'NewReplicaSetConfigurationIncompatible', errmsg: `stand-in: unknown member _id ${String(mc._id)}` };
        }
        for (const mc of cfg.members as Document[]) {
          const target = this.member(Number(mc._id));
          if (mc.priority !== undefined) target.priority = Number(mc.priority);
          if (mc.votes !== undefined) target.votes = Number(mc.votes);
          if (mc.tags !== undefined) target.tags = mc.tags as Record<string, string>;
        }
        this.setVersion = version;
        m.configVersion = version;
        this.tick();
        return { ok: 1 };
      }
      case 'insert':
      case 'update':
      case 'delete':
        this.received.push({ member: m.name, command: name, body });
        return this.write(m, name, body, db);
      case 'find': {
        this.received.push({ member: m.name, command: name, body });
        if (m.state !== 'PRIMARY' && m.state !== 'SECONDARY') return { ok: 0, code: 13436, codeName: 'NotPrimaryOrSecondary', errmsg: 'node is not in primary or recovering state' };
        const ns = `${db}.${String(body.find)}`;
        let docs = [...(m.data.get(ns)?.values() ?? [])].filter((d) => matches(d, body.filter as Document | undefined));
        const limit = Math.abs(Number(body.limit ?? 0));
        if (limit > 0) docs = docs.slice(0, limit);
        return { cursor: { id: Long.ZERO, ns, firstBatch: docs }, ok: 1 };
      }
      default:
        return { ok: 0, code: 59, codeName: 'CommandNotFound', errmsg: `no such command: '${name}' (stand-in)` };
    }
  }

  private async write(m: StandinMember, name: string, body: Document, db: string): Promise<Document> {
    // a retryable write (it carries a txnNumber) gets the label mongod 4.4+ adds, so the driver retries it
    if (m.state !== 'PRIMARY') return body.txnNumber !== undefined ? { ...NOT_PRIMARY, errorLabels: ['RetryableWriteError'] } : { ...NOT_PRIMARY };
    const ns = `${db}.${String(body[name])}`;
    const coll = () => m.data.get(ns) ?? new Map<string, Document>();
    let n = 0;
    let nModified = 0;
    if (name === 'insert') {
      for (const d of (body.documents as Document[] | undefined) ?? []) {
        const doc = { _id: new ObjectId(), ...d };
        this.append(m, { op: 'i', ns, id: idKey(doc._id), doc });
        n++;
      }
    } else if (name === 'update') {
      for (const u of (body.updates as Document[] | undefined) ?? []) {
        const hits = [...coll().values()].filter((d) => matches(d, u.q as Document));
        for (const d of u.multi === true ? hits : hits.slice(0, 1)) {
          const upd = u.u as Document;
          const set = upd.$set as Document | undefined;
          const next = set ? { ...d, ...set } : { ...upd, _id: d._id };
          this.append(m, { op: 'u', ns, id: idKey(d._id), doc: next });
          n++;
          nModified++;
        }
      }
    } else {
      for (const del of (body.deletes as Document[] | undefined) ?? []) {
        const hits = [...coll().values()].filter((d) => matches(d, del.q as Document));
        for (const d of Number(del.limit) === 1 ? hits.slice(0, 1) : hits) {
          this.append(m, { op: 'd', ns, id: idKey(d._id) });
          n++;
        }
      }
    }
    this.replicate();
    const wce = await this.waitForConcern(m, body.writeConcern as Document | undefined);
    const reply: Document = name === 'update' ? { n, nModified, ok: 1 } : { n, ok: 1 };
    if (wce) reply.writeConcernError = wce;
    return reply;
  }
}
