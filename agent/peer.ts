/** The peer view: can this host reach a node's server (its own answer, not only the kernel's)? */
import net from 'node:net';
import type { ProbeError } from '../src/events/observation.js';

/** PostgreSQL's SSLRequest: length 8, code 80877103. A live server answers one byte ('S' or 'N'). */
const SSL_REQUEST = Uint8Array.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]);

/**
 * Is a server alive at host:port? null when it answers, else why not. A TCP connect
 * alone is not enough: the kernel completes it for a stopped (frozen) server, so the
 * check waits for the server's own answer to `hello` (the engine's: PostgreSQL's
 * SSLRequest by default, Redis's PING).
 */
export function tcpCheck(host: string, port: number, timeoutMs: number, hello: Uint8Array = SSL_REQUEST): Promise<ProbeError | null> {
  return new Promise((resolve) => {
    const sock = net.connect({ host, port });
    let settled = false;
    const done = (r: ProbeError | null): void => {
      if (settled) return;
      settled = true;
      sock.destroy();
      resolve(r);
    };
    sock.setTimeout(timeoutMs, () => done('timeout'));
    sock.once('connect', () => sock.write(hello));
    sock.once('data', () => done(null));
    sock.once('end', () => done('other'));
    sock.once('error', (err: NodeJS.ErrnoException) => done(err.code === 'ECONNREFUSED' ? 'refused' : 'other'));
  });
}
