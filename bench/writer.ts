/**
 * A steady writer for benchmarks and fault tests: one INSERT every ~5 ms to whatever the
 * routing table names writable, recording every acknowledged id, when, and the row's WAL
 * position (so that a fault test can check a measured loss reaches past every lost row).
 */
import pg from 'pg';
import type { RoutingTable } from '../src/core/routing.js';

export interface Writer {
  acked: number[];
  ackTimes: number[];
  /** the WAL insert position right after the row's INSERT (before its commit record): the row's commit ends past it */
  lsnOf(id: number): string | undefined;
  stop(): Promise<void>;
  maxGapMs(): number;
  /** the longest gap's ends: the ack before it and the ack after it (Date.now() ms) */
  maxGapAt(): { fromMs: number; toMs: number; ms: number };
}

async function table(api: string, cluster: string): Promise<RoutingTable> {
  const res = await fetch(`${api}/v1/clusters/${cluster}/routing`, { signal: AbortSignal.timeout(1000) });
  if (!res.ok) throw new Error(`routing: ${res.status}`);
  return (await res.json()) as RoutingTable;
}

/** `tableName` must have an `id int PRIMARY KEY` column. */
export function steadyWriter(api: string, cluster: string, tableName: string, startId = 1): Writer {
  const acked: number[] = [];
  const ackTimes: number[] = [];
  const lsns = new Map<number, string>();
  let running = true;
  let next = startId;
  const loop = (async () => {
    let client: pg.Client | null = null;
    let port = -1;
    while (running) {
      try {
        const t = await table(api, cluster);
        if (!t.writable || !t.primary) {
          await new Promise((r) => setTimeout(r, 5));
          continue;
        }
        if (t.primary.port !== port || !client) {
          await client?.end().catch(() => {});
          client = new pg.Client({ host: t.primary.host, port: t.primary.port, user: 'postgres', database: 'postgres', connectionTimeoutMillis: 1000, query_timeout: 2000 });
          client.on('error', () => {});
          port = t.primary.port;
          await client.connect();
        }
        const id = next++;
        const r = await client.query<{ lsn: string }>(`INSERT INTO ${tableName} (id) VALUES ($1) RETURNING pg_current_wal_insert_lsn()::text AS lsn`, [id]);
        acked.push(id);
        ackTimes.push(Date.now());
        const lsn = r.rows[0]?.lsn;
        if (lsn) lsns.set(id, lsn);
      } catch {
        await client?.end().catch(() => {});
        client = null;
        await new Promise((r) => setTimeout(r, 5));
      }
      await new Promise((r) => setTimeout(r, 5));
    }
    await client?.end().catch(() => {});
  })();
  return {
    acked,
    ackTimes,
    lsnOf: (id) => lsns.get(id),
    stop: async () => {
      running = false;
      await loop;
    },
    maxGapMs: () => ackTimes.slice(1).reduce((m, t, i) => Math.max(m, t - ackTimes[i]!), 0),
    maxGapAt: () => {
      let best = { fromMs: ackTimes[0] ?? 0, toMs: ackTimes[0] ?? 0, ms: 0 };
      for (let i = 1; i < ackTimes.length; i++) {
        const ms = ackTimes[i]! - ackTimes[i - 1]!;
        if (ms > best.ms) best = { fromMs: ackTimes[i - 1]!, toMs: ackTimes[i]!, ms };
      }
      return best;
    },
  };
}
