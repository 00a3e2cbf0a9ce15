/**
 * RESP2, the Redis wire protocol: an encoder and an incremental parser. Small on
 * purpose: the Redis engine's probe and actions and the Sentinel-compatible endpoint
 * speak it directly, with their own timeouts, instead of through a client library's
 * reconnect and offline-queue machinery.
 *
 *   +OK\r\n  -ERR msg\r\n  :42\r\n  $3\r\nfoo\r\n  $-1\r\n  *2\r\n…  *-1\r\n
 *
 * Inline commands (`PING\r\n`, as redis-cli and telnet send) are parsed too when the
 * parser is told it is reading requests.
 */

/** A server error reply (`-ERR …`), kept apart from strings. */
export class RespError {
  constructor(readonly message: string) {}
  /** the first word: ERR, READONLY, NOSCRIPT, LOADING, NOAUTH, … */
  get code(): string {
    return this.message.split(' ', 1)[0] ?? '';
  }
}

/** A status reply (`+OK`), kept apart from bulk strings when encoding. */
export class RespStatus {
  constructor(readonly value: string) {}
}

export type RespValue = string | number | null | RespError | RespStatus | RespValue[];

/** Thrown on bytes that are not RESP: the connection must be closed. */
export class RespProtocolError extends Error {
  readonly code = 'RESP_PROTOCOL';
}

const CRLF = '\r\n';

/** Encode a command as an array of bulk strings (what clients send). */
export function encodeCommand(args: ReadonlyArray<string | number | Buffer>): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}${CRLF}`)];
  for (const a of args) {
    const b = Buffer.isBuffer(a) ? a : Buffer.from(String(a));
    parts.push(Buffer.from(`$${b.length}${CRLF}`), b, Buffer.from(CRLF));
  }
  return Buffer.concat(parts);
}

/** Encode a reply: strings are bulk strings, RespStatus is `+`, RespError is `-`. */
export function encodeReply(v: RespValue): Buffer {
  return Buffer.from(encodeReplyString(v), 'utf8');
}

function encodeReplyString(v: RespValue): string {
  if (v === null) return `$-1${CRLF}`;
  if (typeof v === 'number') return `:${Math.trunc(v)}${CRLF}`;
  if (typeof v === 'string') return `$${Buffer.byteLength(v)}${CRLF}${v}${CRLF}`;
  if (v instanceof RespStatus) return `+${v.value.replace(/[\r\n]/g, ' ')}${CRLF}`;
  if (v instanceof RespError) return `-${v.message.replace(/[\r\n]/g, ' ')}${CRLF}`;
  return `*${v.length}${CRLF}${v.map(encodeReplyString).join('')}`;
}

const MAX_BULK = 64 * 1024 * 1024;
const MAX_ARRAY = 1024 * 1024;
const MAX_LINE = 64 * 1024;

/**
 * Incremental parser: `push(chunk)` then `next()` until it returns undefined.
 * Values come out in order; a partial value waits for more bytes.
 */
export class RespParser {
  private buf: Buffer = Buffer.alloc(0);
  private pos = 0;

  /** requests: also accept inline commands (a line of space-separated words) */
  constructor(private readonly requests = false) {}

  push(chunk: Buffer): void {
    this.buf = this.pos < this.buf.length ? Buffer.concat([this.buf.subarray(this.pos), chunk]) : chunk;
    this.pos = 0;
  }

  /** The next complete value, or undefined when more bytes are needed. */
  next(): RespValue | undefined {
    if (this.pos >= this.buf.length) return undefined;
    const start = this.pos;
    const v = this.read();
    if (v === undefined) {
      this.pos = start;
      return undefined;
    }
    return v.value;
  }

  private line(): string | undefined {
    const end = this.buf.indexOf(CRLF, this.pos);
    if (end < 0) {
      if (this.buf.length - this.pos > MAX_LINE) throw new RespProtocolError('RESP line too long');
      return undefined;
    }
    const s = this.buf.toString('utf8', this.pos, end);
    this.pos = end + 2;
    return s;
  }

  private int(s: string, what: string): number {
    if (!/^-?\d+$/.test(s)) throw new RespProtocolError(`RESP ${what} is not an integer: ${JSON.stringify(s.slice(0, 40))}`);
    return Number(s);
  }

  private read(): { value: RespValue } | undefined {
    const type = this.buf[this.pos];
    if (type === undefined) return undefined;
    const c = String.fromCharCode(type);
    if (c !== '+' && c !== '-' && c !== ':' && c !== '$' && c !== '*') {
      if (!this.requests) throw new RespProtocolError(`RESP: unexpected byte ${JSON.stringify(c)}`);
      const l = this.line();
      if (l === undefined) return undefined;
      const words = l.trim().split(/\s+/).filter((w) => w.length > 0);
      return { value: words };
    }
    this.pos++;
    const l = this.line();
    if (l === undefined) return undefined;
    switch (c) {
      case '+':
        return { value: this.requests ? l : new RespStatus(l) };
      case '-':
        return { value: new RespError(l) };
      case ':':
        return { value: this.int(l, 'integer') };
      case '$': {
        const n = this.int(l, 'bulk length');
        if (n === -1) return { value: null };
        if (n < 0 || n > MAX_BULK) throw new RespProtocolError(`RESP bulk length out of range: ${n}`);
        if (this.buf.length - this.pos < n + 2) return undefined;
        const s = this.buf.toString('utf8', this.pos, this.pos + n);
        if (this.buf[this.pos + n] !== 13 || this.buf[this.pos + n + 1] !== 10) throw new RespProtocolError('RESP bulk string not followed by CRLF');
        this.pos += n + 2;
        return { value: s };
      }
      default: {
        const n = this.int(l, 'array length');
        if (n === -1) return { value: null };
        if (n < 0 || n > MAX_ARRAY) throw new RespProtocolError(`RESP array length out of range: ${n}`);
        const out: RespValue[] = [];
        for (let i = 0; i < n; i++) {
          const v = this.read();
          if (v === undefined) return undefined;
          out.push(v.value);
        }
        return { value: out };
      }
    }
  }
}
