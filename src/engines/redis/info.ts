/**
 * What `INFO replication` and `ROLE` say, parsed by pure functions (no I/O, no clock).
 * The probe feeds them the server's text; the unit tests feed them recorded texts.
 *
 * Positions: a Redis replication offset counts bytes of the replication stream under
 * one history id (`master_replid`). Offsets compare only on the same replid (or on
 * `master_replid2` up to `second_repl_offset`, the history a promoted replica inherited).
 */

export type RedisRole = 'master' | 'replica';

export interface ConnectedReplica {
  ip: string;
  port: number;
  /** online, wait_bgsave, send_bulk, … */
  state: string;
  offset: number;
  /** seconds since the replica's last REPLCONF ACK */
  lagSeconds: number | null;
}

export interface Replication {
  role: RedisRole;
  /** the replication history this node is on */
  replid: string;
  /** the history it inherited when promoted ('' when none) */
  replid2: string;
  /** where `replid2` ended: offsets ≤ this are shared with replid2's history (-1 when none) */
  secondOffset: number;
  /** master_repl_offset: the master's write position, or for a replica what it has processed */
  masterOffset: number;
  /** replica: slave_repl_offset (what it has applied); master: masterOffset */
  offset: number;
  /** replica only */
  masterHost: string | null;
  masterPort: number | null;
  /** replica: 'up' | 'down' (null on a master) */
  linkStatus: 'up' | 'down' | null;
  /** replica: seconds since the last byte from its master (-1 → null: never, or the link is down) */
  masterLastIoSeconds: number | null;
  /** replica: seconds the link has been down (null when up or unknown) */
  linkDownSeconds: number | null;
  syncInProgress: boolean;
  /** master: the replicas connected to it */
  replicas: ConnectedReplica[];
  /** master_failover_state: no-failover | waiting-for-sync | failover-in-progress */
  failoverState: string;
  replicaPriority: number | null;
}

/** `key:value` lines of an INFO section into a map (section headers and blanks skipped). */
export function parseInfo(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const i = line.indexOf(':');
    if (i <= 0) continue;
    out.set(line.slice(0, i), line.slice(i + 1));
  }
  return out;
}

/** `ip=127.0.0.1,port=6380,state=online,offset=137,lag=1` */
export function parseReplicaLine(value: string): ConnectedReplica | null {
  const f = new Map<string, string>();
  for (const part of value.split(',')) {
    const i = part.indexOf('=');
    if (i > 0) f.set(part.slice(0, i), part.slice(i + 1));
  }
  const ip = f.get('ip');
  const port = Number(f.get('port'));
  const offset = Number(f.get('offset'));
  if (!ip || !Number.isInteger(port) || !Number.isFinite(offset)) return null;
  const lag = f.get('lag');
  return { ip, port, state: f.get('state') ?? 'unknown', offset, lagSeconds: lag !== undefined && Number.isFinite(Number(lag)) ? Number(lag) : null };
}

function num(m: Map<string, string>, key: string): number | null {
  const v = m.get(key);
  if (v === undefined || v === '') return null;
  const n = Number(v);
  return Number.isFinite(n) ? n : null;
}

/** Thrown when the text is not an `INFO replication` answer: names the field that is missing or wrong. */
export class InfoParseError extends Error {
  readonly code = 'REDIS_INFO_UNPARSABLE';
}

export function parseReplication(text: string): Replication {
  const m = parseInfo(text);
  const roleRaw = m.get('role');
  if (roleRaw !== 'master' && roleRaw !== 'slave') throw new InfoParseError(`INFO replication: role is ${JSON.stringify(roleRaw ?? null)}, expected master or slave`);
  const role: RedisRole = roleRaw === 'master' ? 'master' : 'replica';
  const masterOffset = num(m, 'master_repl_offset');
  if (masterOffset === null) throw new InfoParseError('INFO replication: master_repl_offset is missing');
  const replid = m.get('master_replid') ?? '';
  const replid2raw = m.get('master_replid2') ?? '';
  const replicas: ConnectedReplica[] = [];
  for (const [k, v] of m) {
    if (!/^slave\d+$/.test(k)) continue;
    const r = parseReplicaLine(v);
    if (r) replicas.push(r);
  }
  const lastIo = num(m, 'master_last_io_seconds_ago');
  const down = num(m, 'master_link_down_since_seconds');
  const link = m.get('master_link_status');
  return {
    role,
    replid,
    replid2: /^0+$/.test(replid2raw) ? '' : replid2raw,
    secondOffset: num(m, 'second_repl_offset') ?? -1,
    masterOffset,
    offset: role === 'master' ? masterOffset : (num(m, 'slave_repl_offset') ?? masterOffset),
    masterHost: role === 'replica' ? (m.get('master_host') ?? null) : null,
    masterPort: role === 'replica' ? num(m, 'master_port') : null,
    linkStatus: role === 'replica' ? (link === 'up' ? 'up' : 'down') : null,
    masterLastIoSeconds: lastIo === null || lastIo < 0 ? null : lastIo,
    linkDownSeconds: down === null || down < 0 ? null : down,
    syncInProgress: m.get('master_sync_in_progress') === '1',
    replicas,
    failoverState: m.get('master_failover_state') ?? 'no-failover',
    replicaPriority: num(m, 'slave_priority') ?? num(m, 'replica_priority'),
  };
}

/** ROLE's answer, as the engine reads it. */
export type RoleReply =
  | { role: 'master'; offset: number; replicas: Array<{ ip: string; port: number; offset: number }> }
  | { role: 'replica'; masterHost: string; masterPort: number; state: string; offset: number }
  | { role: 'sentinel'; masters: string[] };

/** Parse ROLE's array reply (`["master", 137, [["127.0.0.1","6380","137"], …]]`). */
export function parseRole(reply: unknown): RoleReply {
  if (!Array.isArray(reply) || typeof reply[0] !== 'string') throw new InfoParseError(`ROLE: unexpected reply ${JSON.stringify(reply)?.slice(0, 200)}`);
  const kind = reply[0];
  if (kind === 'master') {
    const list = Array.isArray(reply[2]) ? (reply[2] as unknown[]) : [];
    return {
      role: 'master',
      offset: Number(reply[1]),
      replicas: list.filter(Array.isArray).map((r) => {
        const a = r as unknown[];
        return { ip: String(a[0]), port: Number(a[1]), offset: Number(a[2]) };
      }),
    };
  }
  if (kind === 'slave' || kind === 'replica') {
    return { role: 'replica', masterHost: String(reply[1]), masterPort: Number(reply[2]), state: String(reply[3]), offset: Number(reply[4]) };
  }
  if (kind === 'sentinel') return { role: 'sentinel', masters: Array.isArray(reply[1]) ? (reply[1] as unknown[]).map(String) : [] };
  throw new InfoParseError(`ROLE: unknown role ${JSON.stringify(kind)}`);
}

/**
 * Bytes a replica is behind its master: master offset − replica offset, when both are
 * on the same history. null when they cannot be compared.
 */
export function lagBytes(master: { replid: string; offset: number }, replica: { replid: string; offset: number }): number | null {
  if (!master.replid || master.replid !== replica.replid) return null;
  return Math.max(0, master.offset - replica.offset);
}

/**
 * Lag in ms from the link: 0 when the replica has everything its master reported,
 * else the seconds since its master last spoke (×1000). null when the link is down.
 */
export function lagMsFromLink(r: Pick<Replication, 'linkStatus' | 'masterLastIoSeconds'>, bytes: number | null): number | null {
  if (r.linkStatus !== 'up') return null;
  if (bytes === 0) return 0;
  return r.masterLastIoSeconds === null ? null : r.masterLastIoSeconds * 1000;
}

/**
 * Can a node on history `node` still take a partial resync from a master on `master`?
 * (The same replid, or the master's inherited replid2 up to its second_repl_offset.)
 */
export function sameHistory(master: Pick<Replication, 'replid' | 'replid2' | 'secondOffset'>, node: { replid: string; offset: number }): boolean {
  if (node.replid === master.replid) return true;
  return master.replid2 !== '' && node.replid === master.replid2 && node.offset <= master.secondOffset;
}

/**
 * What a failover lost: the old master's offset beyond the new master's at promotion.
 * Both offsets must be on the old master's history (the new master's replid2 after
 * promotion, or its replid before). null when they cannot be compared.
 */
export function lossBytes(oldMaster: { replid: string; offset: number }, newMasterAtPromotion: { replid: string; offset: number }): number | null {
  if (oldMaster.replid === '' || oldMaster.replid !== newMasterAtPromotion.replid) return null;
  return Math.max(0, oldMaster.offset - newMasterAtPromotion.offset);
}
