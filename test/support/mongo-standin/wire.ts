/**
 * STAND-IN, NOT MONGODB: the MongoDB wire-protocol framing the replica-set stand-in
 * (./replset.ts) speaks. OP_MSG (opcode 2013) with body and document-sequence sections,
 * and the legacy OP_QUERY / OP_REPLY pair a driver may use for its first handshake.
 * Test support only; product code never imports it.
 */
import { BSON, type Document } from 'bson';

export const OP_REPLY = 1;
export const OP_QUERY = 2004;
export const OP_MSG = 2013;

const CHECKSUM_PRESENT = 1;
const MORE_TO_COME = 2;

export interface WireRequest {
  requestId: number;
  opCode: number;
  /** the command document (document sequences folded in under their identifier) */
  body: Document;
  /** the client does not want an answer (OP_MSG moreToCome) */
  noReply: boolean;
}

function readCString(buf: Buffer, at: number): [string, number] {
  const end = buf.indexOf(0, at);
  if (end < 0) throw new Error('wire: unterminated cstring');
  return [buf.toString('utf8', at, end), end + 1];
}

/** Parses one whole message (`buf` holds exactly messageLength bytes). */
export function parseMessage(buf: Buffer): WireRequest {
  const requestId = buf.readInt32LE(4);
  const opCode = buf.readInt32LE(12);
  if (opCode === OP_MSG) {
    const flags = buf.readUInt32LE(16);
    const end = buf.length - (flags & CHECKSUM_PRESENT ? 4 : 0);
    let pos = 20;
    let body: Document | undefined;
    const sequences: [string, Document[]][] = [];
    while (pos < end) {
      const kind = buf[pos];
      pos += 1;
      const size = buf.readInt32LE(pos);
      if (kind === 0) {
        body = BSON.deserialize(buf.subarray(pos, pos + size));
        pos += size;
      } else if (kind === 1) {
        const sectionEnd = pos + size;
        const [id, next] = readCString(buf, pos + 4);
        let p = next;
        const docs: Document[] = [];
        while (p < sectionEnd) {
          const dsize = buf.readInt32LE(p);
          docs.push(BSON.deserialize(buf.subarray(p, p + dsize)));
          p += dsize;
        }
        sequences.push([id, docs]);
        pos = sectionEnd;
      } else {
        throw new Error(`wire: unknown OP_MSG section kind ${String(kind)}`);
      }
    }
    if (!body) throw new Error('wire: OP_MSG without a body section');
    for (const [id, docs] of sequences) body[id] = docs;
    return { requestId, opCode, body, noReply: (flags & MORE_TO_COME) !== 0 };
  }
  if (opCode === OP_QUERY) {
    const [, afterName] = readCString(buf, 20);
    const pos = afterName + 8; // numberToSkip, numberToReturn
    const size = buf.readInt32LE(pos);
    const body = BSON.deserialize(buf.subarray(pos, pos + size));
    // legacy wrapping: { $query: {...}, $readPreference }
    const inner = (body.$query ?? body.query) as Document | undefined;
    return { requestId, opCode, body: inner ?? body, noReply: false };
  }
  throw new Error(`wire: unsupported opcode ${String(opCode)}`);
}

let nextId = 1;

/** An answer to `req` in the opcode it came in. */
export function encodeReply(req: WireRequest, doc: Document): Buffer {
  const payload = BSON.serialize(doc);
  const header = Buffer.alloc(16);
  header.writeInt32LE(nextId++, 4);
  header.writeInt32LE(req.requestId, 8);
  let rest: Buffer;
  if (req.opCode === OP_QUERY) {
    header.writeInt32LE(OP_REPLY, 12);
    rest = Buffer.alloc(20); // responseFlags, cursorID (8), startingFrom, numberReturned
    rest.writeInt32LE(1, 16);
  } else {
    header.writeInt32LE(OP_MSG, 12);
    rest = Buffer.alloc(5); // flagBits 0, section kind 0
  }
  const out = Buffer.concat([header, rest, payload]);
  out.writeInt32LE(out.length, 0);
  return out;
}
