/**
 * A replica's probed timeline is the one it is replaying, also once its primary is dead,
 * on real PostgreSQL: primary P with replicas A and B; P stops, A is promoted (timeline 2),
 * B is repointed to A and streams timeline 2; then A is killed. B's last restartpoint is
 * still on timeline 1 (pg_control_checkpoint), yet its probe must say 2. The probe runs as
 * a pg_monitor role, as the agent's does in production.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresProber, replicaTimeline, type PgProbe } from '../../src/engines/postgres/probe.js';
import { PgCluster } from '../support/pg-cluster.js';
import { sql, waitFor } from '../support/sandbox.js';

describe('replicaTimeline (pure)', () => {
  it('prefers the live receiver, then the remembered one, never below the disk', () => {
    expect(replicaTimeline(3, 2, 1)).toBe(3);
    expect(replicaTimeline(null, 2, 1)).toBe(2);
    expect(replicaTimeline(null, null, 1)).toBe(1);
    expect(replicaTimeline(null, 2, 3)).toBe(3);
    expect(replicaTimeline(2, 3, 1)).toBe(2); // a live value replaces a remembered one
    expect(replicaTimeline(null, null, null)).toBeNull();
  });
});

describe('a replica\'s timeline after its primary died', () => {
  let dir: string;
  let pg: PgCluster;
  let prober: PostgresProber;

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sy-tli-'));
    pg = await PgCluster.create({ baseDir: dir, replicas: 2 });
  }, 180_000);

  afterAll(async () => {
    await prober?.close();
    await pg?.destroy();
  });

  it('B reports timeline 2 right after A (its timeline-2 primary) is killed', async () => {
    const [p, a, b] = pg.nodes as [typeof pg.nodes[0], typeof pg.nodes[0], typeof pg.nodes[0]];
    // the agent's least privilege for probes (docs/operations.md): pg_monitor, no superuser
    await sql(p.port, 'CREATE ROLE tli_agent LOGIN NOSUPERUSER; GRANT pg_monitor TO tli_agent');
    // P stops cleanly: a fast shutdown sends all its WAL to A and B first
    await pg.stopNode(p.id, 'fast');
    await sql(a.port, 'SELECT pg_promote(true)');
    const tliA = await sql<{ t: number }>(a.port, "SELECT ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int AS t");
    expect(tliA.rows[0]!.t).toBe(2);

    // B follows A (recovery_target_timeline = latest)
    const cur = (await sql<{ v: string }>(b.port, "SELECT current_setting('primary_conninfo') AS v")).rows[0]!.v;
    const next = cur.replace(/port\s*=\s*'?\d+'?/, `port=${a.port}`);
    expect(next).not.toBe(cur);
    await sql(b.port, `ALTER SYSTEM SET primary_conninfo = '${next.replace(/'/g, "''")}'`);
    await sql(b.port, 'SELECT pg_reload_conf()');

    prober = new PostgresProber({ ...pg.connection(b.id), user: 'tli_agent' }, 5_000);
    const streaming = await waitFor('B streaming timeline 2 from A', async () => {
      const r = await prober.probe();
      return r.walReceiver === 'streaming' && r.timeline === 2 && r.upstream === `127.0.0.1:${a.port}` ? r : null;
    }, 60_000, 100);
    expect(streaming.role).toBe('replica');

    // the premise: B's restartpoint (what the old probe fell back on) is still on timeline 1
    const ckpt = await sql<{ t: number }>(b.port, 'SELECT timeline_id AS t FROM pg_control_checkpoint()');
    expect(ckpt.rows[0]!.t).toBe(1);

    await pg.stopNode(a.id, 'immediate');
    const orphan = await waitFor<PgProbe>('B\'s WAL receiver gone', async () => {
      const r = await prober.probe();
      return r.reachable && r.walReceiver === null ? r : null;
    }, 60_000, 100);
    expect(orphan.role).toBe('replica');
    expect(orphan.timeline).toBe(2);
    // and it stays so across probes while the receiver keeps failing to reconnect
    for (let i = 0; i < 5; i++) expect((await prober.probe()).timeline).toBe(2);
  }, 180_000);
});
