/**
 * Probing a Redis node: `INFO replication` and `ROLE` pipelined on one persistent
 * connection, bounded by a timeout; the peer view is a PING the server itself must
 * answer (a TCP connect alone proves nothing about a frozen server).
 */
import type { ProbeError } from '../../events/observation.js';
import { RedisConn, RedisConnError, type RedisAddress } from './conn.js';
import { lagBytes, lagMsFromLink, parseReplication, parseRole, type Replication, type RoleReply } from './info.js';

export interface RedisProbe {
  reachable: boolean;
  error?: ProbeError;
  errorMessage?: string;
  role: 'primary' | 'replica' | 'unknown';
  replication?: Replication;
  roleReply?: RoleReply;
  /** the node's position: master_repl_offset on a master, slave_repl_offset on a replica */
  offset: number | null;
  replid: string | null;
  /** replica: "host:port" of its master */
  upstream: string | null;
  /** replica: bytes behind its master, from the master's offset it last heard (null on a master) */
  lagBytes: number | null;
  /** replica: ms, from the link (null when the link is down) */
  lagMs: number | null;
}

export function classifyRedisError(err: unknown): { error: ProbeError; message: string } {
  const e = err as { code?: string; message?: string };
  const message = (e.message ?? String(err)).slice(0, 400);
  switch (e.code) {
    case 'ECONNREFUSED':
      return { error: 'refused', message };
    case 'ETIMEDOUT':
      return { error: 'timeout', message };
    case 'NOAUTH':
    case 'WRONGPASS':
    case 'NOPERM':
      return { error: 'auth', message };
    case 'LOADING':
    case 'MASTERDOWN':
      return { error: 'starting', message };
    default:
      return { error: 'other', message };
  }
}

/** Turn what the server said into a probe (pure). */
export function probeFromReplies(infoText: string, roleReply: unknown): RedisProbe {
  const r = parseReplication(infoText);
  const role = parseRole(roleReply);
  if (r.role === 'master') {
    return { reachable: true, role: 'primary', replication: r, roleReply: role, offset: r.masterOffset, replid: r.replid, upstream: null, lagBytes: null, lagMs: null };
  }
  // A replica's master_repl_offset is the master's offset as it last heard it.
  const bytes = r.linkStatus === 'up' ? lagBytes({ replid: r.replid, offset: r.masterOffset }, { replid: r.replid, offset: r.offset }) : null;
  return {
    reachable: true,
    role: 'replica',
    replication: r,
    roleReply: role,
    offset: r.offset,
    replid: r.replid,
    upstream: r.masterHost !== null && r.masterPort !== null ? `${r.masterHost}:${r.masterPort}` : null,
    lagBytes: bytes,
    lagMs: lagMsFromLink(r, bytes),
  };
}

export class RedisProber {
  private conn: RedisConn | null = null;

  constructor(
    private readonly target: RedisAddress,
    private readonly timeoutMs: number,
    /** called once when an open connection drops (the server died or restarted) */
    private readonly onLost: () => void = () => {},
  ) {}

  /** One probe; never throws. */
  async probe(): Promise<RedisProbe> {
    try {
      const conn = await this.connection();
      const [info, role] = await Promise.all([conn.call('INFO', 'replication'), conn.call('ROLE')]);
      if (typeof info !== 'string') throw new RedisConnError('EPROTO', 'INFO replication did not answer a string');
      return probeFromReplies(info, role);
    } catch (err) {
      this.drop();
      const { error, message } = classifyRedisError(err);
      return { reachable: false, error, errorMessage: message, role: 'unknown', offset: null, replid: null, upstream: null, lagBytes: null, lagMs: null };
    }
  }

  close(): void {
    this.drop();
  }

  private drop(): void {
    this.conn?.close();
    this.conn = null;
  }

  private async connection(): Promise<RedisConn> {
    if (this.conn && !this.conn.closed) return this.conn;
    const conn = await RedisConn.connect(this.target, this.timeoutMs);
    conn.onLost((err) => {
      if (err.code !== 'ETIMEDOUT') this.onLost();
    });
    this.conn = conn;
    return conn;
  }
}

/**
 * The peer view: can this host get an answer from that server? A fresh connection and
 * a PING that must come back as PONG within `timeoutMs` (a frozen server accepts the
 * TCP connection from its backlog but never answers).
 */
export async function pingPeer(target: RedisAddress, timeoutMs: number): Promise<{ reachable: boolean; error?: ProbeError; message?: string }> {
  const deadline = Date.now() + timeoutMs;
  let conn: RedisConn | null = null;
  try {
    conn = await RedisConn.connect(target, timeoutMs);
    const left = Math.max(1, deadline - Date.now());
    const r = await conn.callWithin(left, 'PING');
    if (r !== 'PONG') return { reachable: false, error: 'other', message: `PING answered ${JSON.stringify(r)}` };
    return { reachable: true };
  } catch (err) {
    const { error, message } = classifyRedisError(err);
    return { reachable: false, error, message };
  } finally {
    conn?.close();
  }
}
