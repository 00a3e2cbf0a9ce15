/**
 * The classifier's corpus against a REAL hot standby (a primary and one streaming
 * replica from the sandbox harness): every "read" must succeed there, inside a
 * transaction that is rolled back; every "write" must answer what the corpus records:
 * DML and DDL fail with SQLSTATE 25006 (read_only_sql_transaction), the rest with their
 * recorded code, or run ('ok': writes by policy, such as session state or advisory
 * locks that exclude no one on the primary).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PgCluster } from '../support/pg-cluster.js';
import { classifyQuery, initClassifier } from '../../src/client/classify.js';
import { loadCorpus } from './corpus.js';

const corpus = loadCorpus();
/** reasons that name DML or DDL: a standby must refuse them as read-only (or PostgreSQL refuses them everywhere) */
const DML_DDL = new Set(['INSERT', 'UPDATE', 'DELETE', 'MERGE', 'TRUNCATE', 'DDL', 'data-modifying CTE', 'SELECT INTO', 'COPY FROM', 'EXPLAIN ANALYZE of a write', 'row lock', 'temp table']);
/** what PostgreSQL answers for those: read-only, a conflict with recovery, or refused on any node (noted in the corpus) */
const REFUSED = new Set(['25006', '40001', '0A000', '42P01']);

async function client(port: number): Promise<pg.Client> {
  const c = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres', connectionTimeoutMillis: 5000, query_timeout: 10_000 });
  c.on('error', () => {});
  await c.connect();
  return c;
}

function code(err: unknown): string {
  return (err as { code?: string }).code ?? `no SQLSTATE: ${(err as Error).message}`;
}

describe('classifier corpus on a real hot standby', () => {
  let dir: string;
  let cluster: PgCluster | undefined;
  let standby: number;

  beforeAll(async () => {
    await initClassifier();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sy-classify-'));
    cluster = await PgCluster.create({ baseDir: path.join(dir, 'pg'), replicas: 1 });
    const p = await client(cluster.primary.port);
    try {
      for (const s of corpus.setup) await p.query(s);
      const { rows } = await p.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn');
      standby = cluster.replicas[0]!.port;
      const r = await client(standby);
      try {
        const deadline = Date.now() + 60_000;
        for (;;) {
          const q = await r.query<{ ok: boolean }>('SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn AS ok', [rows[0]!.lsn]);
          if (q.rows[0]?.ok) break;
          if (Date.now() > deadline) throw new Error('the standby did not replay the setup within 60 s');
          await new Promise((res) => setTimeout(res, 100));
        }
        expect((await r.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r')).rows[0]?.r).toBe(true);
      } finally {
        await r.end();
      }
    } finally {
      await p.end();
    }
  });

  afterAll(async () => {
    await cluster?.destroy();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('every read runs on the standby (in a transaction rolled back)', async () => {
    const failures: string[] = [];
    const c = await client(standby);
    try {
      for (const k of corpus.cases.filter((x) => x.kind === 'read' && x.standby !== 'skip')) {
        expect(classifyQuery(k.sql, k.opts).kind).toBe('read');
        await c.query('BEGIN');
        try {
          await c.query(k.sql);
        } catch (err) {
          failures.push(`${k.sql}: ${code(err)} ${(err as Error).message}`);
        } finally {
          await c.query('ROLLBACK');
        }
      }
    } finally {
      await c.end();
    }
    expect(failures).toEqual([]);
  });

  it('every write answers on the standby as the corpus records (DML and DDL refused as read-only)', async () => {
    const wrong: string[] = [];
    let checked = 0;
    for (const k of corpus.cases.filter((x) => x.kind === 'write' && x.standby !== 'skip')) {
      expect(classifyQuery(k.sql, k.opts).kind).toBe('write');
      if (DML_DDL.has(k.reason)) expect(REFUSED.has(k.standby!), `${k.sql}: a DML/DDL write must be refused`).toBe(true);
      // a fresh session each: these leave session state behind (SET, locks, cursors)
      const c = await client(standby);
      let got = 'ok';
      try {
        await c.query(k.sql);
      } catch (err) {
        got = code(err);
      } finally {
        await c.end();
      }
      checked++;
      if (got !== k.standby) wrong.push(`${JSON.stringify(k.sql)}: expected ${k.standby}, got ${got}`);
    }
    expect(wrong).toEqual([]);
    expect(checked).toBeGreaterThan(100);
  });
});
