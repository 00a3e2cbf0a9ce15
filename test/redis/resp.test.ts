import { describe, expect, it } from 'vitest';
import { encodeCommand, encodeReply, RespError, RespParser, RespProtocolError, RespStatus } from '../../src/engines/redis/resp.js';

describe('RESP2', () => {
  it('round-trips replies, split at every byte', () => {
    const value = [new RespStatus('OK'), 'héllo', '', null, 42, -1, new RespError('ERR bad'), ['a', ['b', null]], []];
    const bytes = Buffer.concat(value.map((v) => encodeReply(v)));
    for (let cut = 0; cut <= bytes.length; cut++) {
      const p = new RespParser();
      const out: unknown[] = [];
      p.push(bytes.subarray(0, cut));
      for (let v = p.next(); v !== undefined; v = p.next()) out.push(v);
      p.push(bytes.subarray(cut));
      for (let v = p.next(); v !== undefined; v = p.next()) out.push(v);
      expect(out).toEqual(value);
    }
  });

  it('parses commands, multibulk and inline', () => {
    const p = new RespParser(true);
    p.push(Buffer.concat([encodeCommand(['SENTINEL', 'get-master-addr-by-name', 'mymaster']), Buffer.from('PING\r\n'), Buffer.from('+PING\r\n')]));
    expect(p.next()).toEqual(['SENTINEL', 'get-master-addr-by-name', 'mymaster']);
    expect(p.next()).toEqual(['PING']);
    expect(p.next()).toEqual('PING');
    expect(p.next()).toBeUndefined();
  });

  it('rejects what is not RESP', () => {
    const p = new RespParser();
    p.push(Buffer.from('hello\r\n'));
    expect(() => p.next()).toThrow(RespProtocolError);
    const q = new RespParser();
    q.push(Buffer.from('$abc\r\n'));
    expect(() => q.next()).toThrow(/bulk length is not an integer/);
    const r = new RespParser();
    r.push(Buffer.from('$2\r\nabcd\r\n'));
    expect(() => r.next()).toThrow(/CRLF/);
  });
});
