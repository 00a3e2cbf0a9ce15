/**
 * HTTP helpers the routes share: the table's version (ETag and SSE id), If-None-Match
 * matching, the routing table as Server-Sent Events, and `?at=` parsing.
 */
import type { FastifyReply } from 'fastify';
import type { ServerResponse } from 'node:http';
import type { RoutingTable } from '../core/routing.js';
import { ApiError } from './errors.js';
import type { ApiCluster } from './types.js';

/** The table's version: the ETag and the SSE id. */
export function versionOf(c: ApiCluster): string {
  return c.version ?? String(c.table.generation);
}

export function matchesEtag(header: string | string[], etag: string): boolean {
  const values = Array.isArray(header) ? header : header.split(',');
  return values.some((v) => {
    const t = v.trim();
    return t === etag || t === `W/${etag}` || t === '*';
  });
}

/** Hijack the reply into an event stream of `routing` events: the table now and on every change. */
export function sse(reply: FastifyReply, c: ApiCluster, streams: Set<ServerResponse>): void {
  reply.hijack();
  const res = reply.raw;
  streams.add(res);
  res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache', Connection: 'keep-alive', 'X-Accel-Buffering': 'no' });
  const send = (t: RoutingTable): void => {
    res.write(`event: routing\nid: ${versionOf(c)}\ndata: ${JSON.stringify(t)}\n\n`);
  };
  send(c.table);
  const ping = setInterval(() => res.write(': ping\n\n'), 15_000);
  c.on('routing', send);
  res.on('close', () => {
    streams.delete(res);
    clearInterval(ping);
    c.off('routing', send);
  });
}

/** `?at=` as a stream id: a stream id as is, a time (ISO or ms) as the last id of that ms. */
export function parseAt(at: string | undefined): string | null {
  if (!at) return null;
  if (/^\d+-\d+$/.test(at)) return at;
  const ms = /^\d+$/.test(at) ? Number(at) : Date.parse(at);
  if (!Number.isFinite(ms)) throw new ApiError('BAD_REQUEST', `querystring/at ${JSON.stringify(at)} is neither a stream id nor a time`);
  return `${ms}-${Number.MAX_SAFE_INTEGER}`;
}
