/**
 * A minimal Redis connection for the engine: one socket, commands answered in order,
 * every call bounded by a timeout. No reconnects and no offline queue: a probe that
 * cannot get an answer in time must say so, not wait for a reconnect.
 */
import * as net from 'node:net';
import { encodeCommand, RespError, RespParser, RespStatus, type RespValue } from './resp.js';

export interface RedisAddress {
  host: string;
  port: number;
  /** AUTH password (requirepass), when the node sets one */
  password?: string | undefined;
  username?: string | undefined;
}

/** A failure to talk to the server, with a code the probe classifies. */
export class RedisConnError extends Error {
  constructor(
    /** ECONNREFUSED, ETIMEDOUT, ECONNRESET, ECLOSED, or the server's error word (LOADING, NOAUTH, …) */
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** A reply value as callers use it: status replies become plain strings. */
export type Reply = string | number | null | Reply[];

function plain(v: RespValue): Reply | RespError {
  if (v instanceof RespStatus) return v.value;
  if (v instanceof RespError) return v;
  if (Array.isArray(v)) return v.map((x) => (x instanceof RespError ? null : (plain(x) as Reply)));
  return v;
}

interface Pending {
  resolve(v: Reply): void;
  reject(e: Error): void;
  timer: NodeJS.Timeout;
  cmd: string;
}

export class RedisConn {
  private readonly parser = new RespParser();
  private readonly pending: Pending[] = [];
  private closedWith: RedisConnError | null = null;
  private closeHandlers: Array<(err: RedisConnError) => void> = [];

  private constructor(
    private readonly sock: net.Socket,
    readonly address: RedisAddress,
    private readonly timeoutMs: number,
  ) {
    sock.on('data', (chunk) => this.onData(chunk));
    sock.on('error', (err: NodeJS.ErrnoException) => this.fail(new RedisConnError(err.code ?? 'ECONNRESET', err.message)));
    sock.on('close', () => this.fail(new RedisConnError('ECLOSED', `connection to ${address.host}:${address.port} closed`)));
  }

  /** Connect (and AUTH) within `timeoutMs`. */
  static connect(address: RedisAddress, timeoutMs: number): Promise<RedisConn> {
    return new Promise((resolve, reject) => {
      const sock = net.connect({ host: address.host, port: address.port });
      sock.setNoDelay(true);
      const timer = setTimeout(() => {
        sock.destroy();
        reject(new RedisConnError('ETIMEDOUT', `connect to ${address.host}:${address.port} timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      sock.once('error', (err: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        reject(new RedisConnError(err.code ?? 'ECONNRESET', err.message));
      });
      sock.once('connect', () => {
        clearTimeout(timer);
        sock.removeAllListeners('error');
        const conn = new RedisConn(sock, address, timeoutMs);
        if (address.password === undefined || address.password === '') {
          resolve(conn);
          return;
        }
        const args = address.username ? ['AUTH', address.username, address.password] : ['AUTH', address.password];
        conn.call(...args).then(
          () => resolve(conn),
          (err: Error) => {
            conn.close();
            reject(err);
          },
        );
      });
    });
  }

  get closed(): boolean {
    return this.closedWith !== null;
  }

  /** Send one command; rejects on an error reply, a timeout (the socket is then closed) or a lost connection. */
  call(...args: Array<string | number>): Promise<Reply> {
    return this.callWithin(this.timeoutMs, ...args);
  }

  callWithin(timeoutMs: number, ...args: Array<string | number>): Promise<Reply> {
    if (this.closedWith) return Promise.reject(this.closedWith);
    const cmd = String(args[0] ?? '').toUpperCase();
    return new Promise<Reply>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.fail(new RedisConnError('ETIMEDOUT', `${cmd} to ${this.address.host}:${this.address.port} got no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.push({ resolve, reject, timer, cmd });
      this.sock.write(encodeCommand(args));
    });
  }

  close(): void {
    this.closeHandlers = [];
    this.fail(new RedisConnError('ECLOSED', 'connection closed by the caller'));
  }

  /** Called once when the connection is lost (not when the caller closes it). */
  onLost(fn: (err: RedisConnError) => void): void {
    this.closeHandlers.push(fn);
  }

  private onData(chunk: Buffer): void {
    try {
      this.parser.push(chunk);
      for (let v = this.parser.next(); v !== undefined; v = this.parser.next()) {
        const p = this.pending.shift();
        if (!p) continue;
        clearTimeout(p.timer);
        const r = plain(v);
        if (r instanceof RespError) p.reject(new RedisConnError(r.code, `${p.cmd}: ${r.message}`));
        else p.resolve(r);
      }
    } catch (err) {
      this.fail(new RedisConnError('EPROTO', (err as Error).message));
    }
  }

  private fail(err: RedisConnError): void {
    const first = !this.closedWith;
    if (!this.closedWith) this.closedWith = err;
    if (first) for (const fn of this.closeHandlers.splice(0)) fn(err);
    this.sock.destroy();
    for (const p of this.pending.splice(0)) {
      clearTimeout(p.timer);
      p.reject(err);
    }
  }
}

/** Connect, run one command, close: for one-off actions. */
export async function redisCall(address: RedisAddress, timeoutMs: number, ...args: Array<string | number>): Promise<Reply> {
  const conn = await RedisConn.connect(address, timeoutMs);
  try {
    return await conn.call(...args);
  } finally {
    conn.close();
  }
}
