/**
 * Test-only: a stand-in for a coordinator's routing API (SSE stream + plain GET) whose
 * tables the test writes, so a client test can set what the control plane says (zones,
 * lag figures, draining, departures) while the nodes themselves are real.
 */
import http from 'node:http';
import type { RoutingTable } from '../../src/core/routing.js';

export interface FakeRouting {
  url: string;
  publish: (t: RoutingTable) => void;
  close: () => Promise<void>;
}

export async function fakeRouting(first: RoutingTable): Promise<FakeRouting> {
  let current = first;
  const streams = new Set<http.ServerResponse>();
  const server = http.createServer((req, res) => {
    if (req.url?.includes('/routing/stream')) {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(`event: routing\ndata: ${JSON.stringify(current)}\n\n`);
      streams.add(res);
      req.on('close', () => streams.delete(res));
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json', etag: `"${current.generation}"` });
    res.end(JSON.stringify(current));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}`,
    publish: (t) => {
      current = t;
      for (const r of streams) r.write(`event: routing\ndata: ${JSON.stringify(t)}\n\n`);
    },
    close: async () => {
      for (const r of streams) r.end();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
