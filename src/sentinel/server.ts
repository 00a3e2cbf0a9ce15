/**
 * A Sentinel-compatible endpoint: a RESP server that answers the Sentinel client
 * protocol from switchyard's routing table, so an app configured for Redis Sentinel
 * (ioredis `sentinels: [...]`, redis-py, Jedis, Lettuce) points its sentinel list at
 * the coordinators and changes nothing else.
 *
 *   SENTINEL get-master-addr-by-name <name>   → [ip, port] of the writable primary (the last known one during a failover)
 *   SENTINEL master <name> | masters          → the master's fields
 *   SENTINEL replicas|slaves <name>           → each replica's fields (flags: slave | slave,s_down)
 *   SENTINEL sentinels <name>                 → the other coordinators' Sentinel endpoints
 *   SENTINEL is-master-down-by-addr …         → [down, "*", 0]: switchyard's coordinators vote through their lease, not here
 *   SENTINEL myid | ckquorum | get-master-addr-by-name …
 *   PING, ROLE (→ sentinel), INFO, CLIENT SETNAME/GETNAME/ID, SELECT 0, AUTH, QUIT
 *   SUBSCRIBE / PSUBSCRIBE: `+switch-master <name> <oldip> <oldport> <newip> <newport>`
 *   published on every change of the primary's address.
 *
 * The routing table never names a primary that is not writable; during a failover the
 * endpoint answers the last known master as Sentinel does: it is dead or fenced (fence
 * before promote), so a write sent there is held and then refused, never acknowledged.
 */
import { randomBytes } from 'node:crypto';
import * as net from 'node:net';
import type { RoutingTable } from '../core/routing.js';
import { encodeReply, RespError, RespParser } from '../engines/redis/resp.js';
import { command, type Client, type SentinelPeer, type SentinelView } from './commands.js';

export type { SentinelPeer } from './commands.js';

/** Where the endpoint reads the routing table from (a coordinator's cluster runtime, the coordination Redis, a test). */
export interface RoutingSource {
  current(): RoutingTable | null;
  /** the view has not been refreshed lately (a coordinator cut off from the coordination Redis) */
  stale?(): boolean;
  /** calls `fn` on every new table; returns the unsubscribe function */
  subscribe(fn: (table: RoutingTable) => void): () => void;
}


export interface SentinelServerOptions {
  /** the name clients ask for (`name` in ioredis); default: the cluster's name */
  masterName: string;
  source: RoutingSource;
  host?: string;
  port?: number;
  /** this coordinator's id (the Sentinel "runid" it reports) */
  id?: string;
  /** the other coordinators' Sentinel endpoints (for SENTINEL sentinels) */
  peers?: () => SentinelPeer[];
  /** the address this endpoint is announced at (default: host and the bound port) */
  announce?: { host: string; port: number };
  log?: { info(obj: object, msg?: string): void; warn(obj: object, msg?: string): void };
  /**
   * Publish +switch-master this long after the new primary appears (default 0, as
   * Sentinel). ioredis's failoverDetector ends a client for good when the message
   * arrives while the client re-asks for the master after a crash; a delay longer than
   * the clients' reconnect interval lets them find the new master on their own first.
   * A delayed announcement names only a master that is still the primary when it is due
   * (one superseded by a newer switch is dropped: it would send clients to a node gone).
   */
  switchMasterDelayMs?: number;
}


/** Glob match as Redis PSUBSCRIBE does it (`*`, `?`, `[...]`, `\` escapes). */
export function globMatch(pattern: string, s: string): boolean {
  let re = '^';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*') re += '.*';
    else if (c === '?') re += '.';
    else if (c === '[') {
      const end = pattern.indexOf(']', i + 1);
      if (end < 0) re += '\\[';
      else {
        let body = pattern.slice(i + 1, end).replace(/\\/g, '\\\\');
        if (body.startsWith('^')) body = '^' + body.slice(1);
        re += `[${body}]`;
        i = end;
      }
    } else if (c === '\\' && i + 1 < pattern.length) re += pattern[++i]!.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
    else re += c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  }
  return new RegExp(re + '$', 's').test(s);
}


export class SentinelServer {
  private readonly server: net.Server;
  private readonly clients = new Set<Client>();
  private readonly id: string;
  private nextClientId = 1;
  private unsubscribe: (() => void) | null = null;
  /** the primary address last announced (or first seen) */
  private lastPrimary: { host: string; port: number } | null = null;
  private boundPort = 0;
  /** +switch-master messages published so far */
  switches = 0;

  constructor(private readonly opts: SentinelServerOptions) {
    this.id = opts.id ? opts.id.replace(/[^A-Za-z0-9]/g, '').padEnd(40, '0').slice(0, 40) : randomBytes(20).toString('hex');
    this.server = net.createServer((sock) => this.accept(sock));
  }

  get port(): number {
    return this.boundPort;
  }

  async listen(): Promise<{ host: string; port: number }> {
    const host = this.opts.host ?? '127.0.0.1';
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen({ host, port: this.opts.port ?? 0 }, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    this.boundPort = (this.server.address() as net.AddressInfo).port;
    const t = this.opts.source.current();
    this.lastPrimary = t?.primary ? { host: t.primary.host, port: t.primary.port } : null;
    this.announced = this.lastPrimary;
    this.unsubscribe = this.opts.source.subscribe((table) => this.onTable(table));
    this.opts.log?.info({ host, port: this.boundPort, masterName: this.opts.masterName }, 'sentinel endpoint listening');
    return { host, port: this.boundPort };
  }

  async close(): Promise<void> {
    this.unsubscribe?.();
    this.unsubscribe = null;
    for (const c of this.clients) c.sock.destroy();
    this.clients.clear();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** Publish to subscribers as a Sentinel does (also usable for other events, e.g. `+sdown`). */
  publish(channel: string, message: string): number {
    let n = 0;
    for (const c of this.clients) {
      if (c.channels.has(channel)) {
        c.sock.write(encodeReply(['message', channel, message]));
        n++;
      }
      for (const p of c.patterns) {
        if (globMatch(p, channel)) {
          c.sock.write(encodeReply(['pmessage', p, channel, message]));
          n++;
        }
      }
    }
    return n;
  }

  /** the primary address last announced with +switch-master (or first seen) */
  private announced: { host: string; port: number } | null = null;
  /** the newest switch seen: a delayed announcement superseded by a newer one is dropped */
  private switchSeq = 0;

  /** A new routing table: announce a changed primary address with +switch-master. */
  private onTable(table: RoutingTable): void {
    const p = table.primary;
    if (!p) return; // no writable primary right now: nothing to switch to yet
    const prev = this.lastPrimary;
    this.lastPrimary = { host: p.host, port: p.port };
    if (prev && prev.host === p.host && prev.port === p.port) return;
    const to = { host: p.host, port: p.port };
    const nth = ++this.switchSeq;
    const send = (): void => {
      const old = this.announced ?? prev ?? to;
      this.announced = to;
      this.switches++;
      const message = `${this.opts.masterName} ${old.host} ${old.port} ${to.host} ${to.port}`;
      const n = this.publish('+switch-master', message);
      this.opts.log?.info({ message, subscribers: n }, '+switch-master published');
    };
    const delay = this.opts.switchMasterDelayMs ?? 0;
    if (delay <= 0) {
      send();
      return;
    }
    // Delayed: announce only what is still true when the timer fires. A newer switch
    // meanwhile announces itself (from the last address announced): this one would send
    // clients to a master that is gone (a failover right after another one). While no
    // node is writable (a failover under way), wait another delay.
    const later = (): void => {
      if (this.unsubscribe === null || nth !== this.switchSeq) return;
      const now = this.opts.source.current()?.primary;
      if (!now) {
        setTimeout(later, delay).unref();
        return;
      }
      if (now.host === to.host && now.port === to.port) send();
    };
    setTimeout(later, delay).unref();
  }

  /** What the command handlers read: the live values, as of each command. */
  private readonly view: SentinelView = ((s: SentinelServer): SentinelView => ({
    get masterName() {
      return s.opts.masterName;
    },
    get id() {
      return s.id;
    },
    get port() {
      return s.boundPort;
    },
    get table() {
      return s.opts.source.current();
    },
    get lastPrimary() {
      return s.lastPrimary;
    },
    get stale() {
      return s.opts.source.stale?.() ?? false;
    },
    get peers() {
      return s.opts.peers?.() ?? [];
    },
  }))(this);

  private accept(sock: net.Socket): void {
    sock.setNoDelay(true);
    const c: Client = { sock, parser: new RespParser(true), name: null, id: this.nextClientId++, channels: new Set(), patterns: new Set() };
    this.clients.add(c);
    sock.on('data', (chunk) => {
      try {
        c.parser.push(chunk);
        for (let v = c.parser.next(); v !== undefined; v = c.parser.next()) {
          const args = Array.isArray(v) ? v.map((x) => (typeof x === 'string' ? x : typeof x === 'number' ? String(x) : '')) : typeof v === 'string' ? [v] : [];
          if (args.length === 0) continue;
          const reply = command(this.view, c, args);
          if (reply !== undefined) for (const r of reply) sock.write(encodeReply(r));
          if (sock.destroyed) return;
        }
      } catch (err) {
        sock.end(encodeReply(new RespError(`ERR Protocol error: ${(err as Error).message}`)));
      }
    });
    const drop = (): void => {
      this.clients.delete(c);
    };
    sock.on('close', drop);
    sock.on('error', drop);
  }
}
