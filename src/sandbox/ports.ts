import * as net from 'node:net';
import { HarnessError } from './errors.js';

function listen(port: number, host = '127.0.0.1'): Promise<net.Server> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen({ port, host, exclusive: true }, () => {
      srv.off('error', reject);
      resolve(srv);
    });
  });
}

function close(srv: net.Server): Promise<void> {
  return new Promise((resolve) => srv.close(() => resolve()));
}

/** A port that is free on 127.0.0.1 right now (chosen by the kernel). */
export async function freePort(): Promise<number> {
  const [p] = await freePorts(1);
  return p as number;
}

/** `n` distinct ports that are free on 127.0.0.1 right now. */
export async function freePorts(n: number): Promise<number[]> {
  const servers: net.Server[] = [];
  try {
    // Keep all listeners open until every port is chosen so they are distinct.
    for (let i = 0; i < n; i++) servers.push(await listen(0));
    return servers.map((s) => (s.address() as net.AddressInfo).port);
  } finally {
    await Promise.all(servers.map(close));
  }
}

/** True when we can bind 127.0.0.1:port. */
export async function isPortFree(port: number, host = '127.0.0.1'): Promise<boolean> {
  try {
    await close(await listen(port, host));
    return true;
  } catch {
    return false;
  }
}

/**
 * Throws HarnessError PORT_IN_USE when 127.0.0.1:port cannot be bound.
 * `what` names the user of the port in the message (e.g. "pg1").
 */
export async function assertPortFree(port: number, what: string, flag?: string): Promise<void> {
  if (!(await isPortFree(port))) {
    throw new HarnessError(
      'PORT_IN_USE',
      `port ${port} (${what}) is already in use: ${flag ? `choose another with ${flag}` : 'choose another port'} or stop what listens there`,
    );
  }
}
