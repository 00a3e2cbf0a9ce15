/**
 * The Sentinel endpoint's command handlers: one RESP command in, its replies out, read
 * from a view of the routing table (server.ts holds the sockets, the subscriptions and
 * the +switch-master announcements). The commands are listed in server.ts's header.
 */
import type * as net from 'node:net';
import type { RoutingTable } from '../core/routing.js';
import { encodeReply, RespError, RespStatus, type RespParser, type RespValue } from '../engines/redis/resp.js';

export interface SentinelPeer {
  id: string;
  host: string;
  port: number;
}

export interface Client {
  sock: net.Socket;
  parser: RespParser;
  name: string | null;
  id: number;
  channels: Set<string>;
  patterns: Set<string>;
}

/** What the handlers read of the endpoint, as of the command being answered. */
export interface SentinelView {
  readonly masterName: string;
  /** the Sentinel "runid" this endpoint reports */
  readonly id: string;
  readonly port: number;
  readonly table: RoutingTable | null;
  /** the primary address last announced (or first seen) */
  readonly lastPrimary: { host: string; port: number } | null;
  /** the view has not been refreshed lately */
  readonly stale: boolean;
  /** the other coordinators' Sentinel endpoints */
  readonly peers: SentinelPeer[];
}

/** Flatten `{k: v}` into Sentinel's `[k, v, k, v…]` reply. */
function fields(o: Record<string, string | number>): string[] {
  return Object.entries(o).flatMap(([k, v]) => [k, String(v)]);
}

/** Answer one command: a list of replies (SUBSCRIBE answers one per channel), or undefined for none. */
export function command(v: SentinelView, c: Client, args: string[]): RespValue[] | undefined {
  const cmd = args[0]!.toUpperCase();
  const subscribed = c.channels.size + c.patterns.size > 0;
  if (subscribed && !['SUBSCRIBE', 'PSUBSCRIBE', 'UNSUBSCRIBE', 'PUNSUBSCRIBE', 'PING', 'QUIT', 'RESET'].includes(cmd)) {
    return [new RespError(`ERR Can't execute '${args[0]!.toLowerCase()}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context`)];
  }
  switch (cmd) {
    case 'PING':
      if (subscribed) return [['pong', args[1] ?? '']];
      return [args[1] !== undefined ? args[1] : new RespStatus('PONG')];
    case 'ECHO':
      return [args[1] ?? new RespError("ERR wrong number of arguments for 'echo' command")];
    case 'QUIT':
      c.sock.end(encodeReply(new RespStatus('OK')));
      return undefined;
    case 'RESET':
      c.channels.clear();
      c.patterns.clear();
      return [new RespStatus('RESET')];
    case 'AUTH':
    case 'SELECT':
    case 'READONLY':
      return [new RespStatus('OK')];
    case 'ROLE':
      return [['sentinel', [v.masterName]]];
    case 'CLIENT':
      return [clientCommand(c, args)];
    case 'INFO':
      return [info(v)];
    case 'COMMAND':
      return [[]];
    case 'SUBSCRIBE':
    case 'PSUBSCRIBE': {
      const set = cmd === 'SUBSCRIBE' ? c.channels : c.patterns;
      const kind = cmd.toLowerCase();
      if (args.length < 2) return [new RespError(`ERR wrong number of arguments for '${kind}' command`)];
      return args.slice(1).map((ch) => {
        set.add(ch);
        return [kind, ch, c.channels.size + c.patterns.size];
      });
    }
    case 'UNSUBSCRIBE':
    case 'PUNSUBSCRIBE': {
      const set = cmd === 'UNSUBSCRIBE' ? c.channels : c.patterns;
      const kind = cmd.toLowerCase();
      const names = args.length > 1 ? args.slice(1) : [...set];
      if (names.length === 0) return [[kind, null, c.channels.size + c.patterns.size]];
      return names.map((ch) => {
        set.delete(ch);
        return [kind, ch, c.channels.size + c.patterns.size];
      });
    }
    case 'SENTINEL':
      return [sentinel(v, args.slice(1))];
    default:
      return [new RespError(`ERR unknown command '${args[0]!}', with args beginning with: ${args.slice(1, 4).map((a) => `'${a}'`).join(' ')}`)];
  }
}

function clientCommand(c: Client, args: string[]): RespValue {
  const sub = (args[1] ?? '').toUpperCase();
  if (sub === 'SETNAME') {
    c.name = args[2] ?? null;
    return new RespStatus('OK');
  }
  if (sub === 'GETNAME') return c.name;
  if (sub === 'ID') return c.id;
  if (sub === 'SETINFO') return new RespStatus('OK');
  return new RespError(`ERR unknown subcommand '${args[1] ?? ''}'`);
}

function info(v: SentinelView): string {
  const t = v.table;
  const p = t?.primary;
  const status = p ? 'ok' : 'odown';
  const addr = p ? `${p.host}:${p.port}` : v.lastPrimary ? `${v.lastPrimary.host}:${v.lastPrimary.port}` : '0.0.0.0:0';
  return [
    '# Server',
    'redis_version:7.0.0',
    'redis_mode:sentinel',
    `run_id:${v.id}`,
    `tcp_port:${v.port}`,
    '',
    '# Sentinel',
    'sentinel_masters:1',
    'sentinel_tilt:0',
    'sentinel_running_scripts:0',
    'sentinel_scripts_queue_length:0',
    `master0:name=${v.masterName},status=${status},address=${addr},slaves=${t?.replicas.length ?? 0},sentinels=${v.peers.length + 1}`,
    '',
  ].join('\r\n');
}

function masterFields(v: SentinelView): RespValue {
  const t = v.table;
  const p = t?.primary ?? null;
  const addr = p ?? v.lastPrimary;
  return fields({
    name: v.masterName,
    ip: addr?.host ?? '0.0.0.0',
    port: addr?.port ?? 0,
    runid: p?.id ?? '',
    flags: p ? 'master' : 'master,s_down,o_down',
    'link-pending-commands': 0,
    'link-refcount': 1,
    'last-ping-sent': 0,
    'last-ok-ping-reply': 0,
    'last-ping-reply': 0,
    'down-after-milliseconds': 0,
    'info-refresh': 0,
    'role-reported': 'master',
    'role-reported-time': 0,
    'config-epoch': t?.epoch ?? 0,
    'num-slaves': t?.replicas.length ?? 0,
    'num-other-sentinels': v.peers.length,
    quorum: 1,
    'failover-timeout': 0,
    'parallel-syncs': 1,
    'switchyard-generation': t?.generation ?? 0,
  });
}

function sentinel(v: SentinelView, args: string[]): RespValue {
  const sub = (args[0] ?? '').toLowerCase();
  const name = args[1];
  const t = v.table;
  switch (sub) {
    case 'get-master-addr-by-name': {
      if (name !== v.masterName) return null;
      // a stale view answers nothing: the client asks the next sentinel (another coordinator)
      if (v.stale) return new RespError('STALE switchyard: this coordinator has not read the cluster recently: ask another sentinel');
      // As Sentinel does, the last known master while there is no writable one (a failover
      // under way): it is dead, or fenced (writes held, then refused), so nothing written
      // there is acknowledged. Answering nil instead keeps ioredis inside its resolve loop
      // for the whole failover, where a +switch-master closes the client for good.
      const p = t?.primary ?? v.lastPrimary;
      return p ? [p.host, String(p.port)] : null;
    }
    case 'master':
      if (name !== v.masterName) return new RespError('ERR No such master with that name');
      return masterFields(v);
    case 'masters':
      return [masterFields(v)];
    case 'replicas':
    case 'slaves': {
      if (name !== v.masterName) return new RespError('ERR No such master with that name');
      const p = t?.primary ?? v.lastPrimary;
      return (t?.replicas ?? []).map((r) =>
        fields({
          name: `${r.host}:${r.port}`,
          ip: r.host,
          port: r.port,
          runid: r.id,
          flags: r.healthy ? 'slave' : 'slave,s_down,disconnected',
          'link-pending-commands': 0,
          'role-reported': 'slave',
          'master-link-down-time': 0,
          'master-link-status': r.healthy ? 'ok' : 'err',
          'master-host': p?.host ?? '?',
          'master-port': p?.port ?? 0,
          'slave-priority': 100,
          'slave-repl-offset': r.replayLsn !== null && /^\d+$/.test(r.replayLsn) ? Number(r.replayLsn) : 0,
          'replica-announced': 1,
          'switchyard-lag-ms': r.lagMs ?? -1,
        }),
      );
    }
    case 'sentinels':
      if (name !== v.masterName) return new RespError('ERR No such master with that name');
      return v.peers.map((s) => fields({ name: s.id, ip: s.host, port: s.port, runid: s.id, flags: 'sentinel', 'link-pending-commands': 0, 'voted-leader': '?', 'voted-leader-epoch': 0 }));
    case 'is-master-down-by-addr': {
      // [down_state, leader_runid, leader_epoch]: switchyard elects through its lease, never through sentinel votes
      const p = t?.primary;
      const down = !p || p.host !== args[1] || String(p.port) !== args[2] ? 1 : 0;
      return [down, '*', 0];
    }
    case 'myid':
      return v.id;
    case 'ckquorum':
      if (name !== v.masterName) return new RespError('ERR No such master with that name');
      return new RespStatus(`OK ${v.peers.length + 1} usable Sentinels. Quorum and failover authorization can be reached`);
    case 'get-master-addr':
      return null;
    case 'reset':
      return 0;
    case 'failover':
      return new RespError('ERR switchyard: ask a coordinator for a switchover (POST /v1/clusters/:c/switchover or `switchyard ctl switchover`)');
    case 'monitor':
    case 'remove':
    case 'set':
    case 'config':
      return new RespError('ERR switchyard: the Sentinel endpoint is read-only; configure the cluster through switchyard');
    default:
      return new RespError(`ERR Unknown sentinel subcommand '${args[0] ?? ''}'`);
  }
}
