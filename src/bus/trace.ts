/**
 * The timing trace, `sy:{c}:trace`: a short capped stream of the moments an operation
 * passes through (postmaster exit seen, folded, decided, job sent, job picked up,
 * `pg_promote` returned, routing published …), written by agents and coordinators. It
 * is for the benchmark's breakdown of where failover time goes, and for operators who
 * ask the same question (`XRANGE sy:{c}:trace - +`). Each entry's `e` field is JSON:
 * `{ stage, by, at, ... }` with `at` the writer's wall clock in ms; the stream id is
 * Redis's clock. Writes are fire-and-forget and never delay the path they time.
 */
import type { Redis } from 'ioredis';

export const TRACE_MAXLEN = 2_000;

export interface TraceEntry {
  stage: string;
  /** who wrote it: `agent:<node>` or `coordinator:<id>` */
  by: string;
  at: number;
  [field: string]: unknown;
}

export class Tracer {
  constructor(
    private readonly redis: Redis,
    private readonly stream: string,
    private readonly by: string,
  ) {}

  /** Append one entry; errors are ignored (a trace must never cost the operation). */
  mark(stage: string, fields: Record<string, unknown> = {}, at = Date.now()): void {
    const entry: TraceEntry = { stage, by: this.by, at, ...fields };
    void this.redis
      .xadd(this.stream, 'MAXLEN', '~', TRACE_MAXLEN, '*', 'e', JSON.stringify(entry))
      .catch(() => {});
  }
}

/** Read trace entries written at or after `sinceMs` (Redis clock), oldest first. */
export async function readTrace(redis: Redis, stream: string, sinceMs: number): Promise<Array<TraceEntry & { id: string }>> {
  const rows = await redis.xrange(stream, `${Math.max(0, Math.floor(sinceMs))}-0`, '+', 'COUNT', TRACE_MAXLEN);
  const out: Array<TraceEntry & { id: string }> = [];
  for (const [id, fields] of rows) {
    const i = fields.indexOf('e');
    if (i < 0 || i + 1 >= fields.length) continue;
    try {
      out.push({ ...(JSON.parse(fields[i + 1]!) as TraceEntry), id });
    } catch {
      // not ours
    }
  }
  return out;
}
