/**
 * Crashes under a steady writer: the primary's postmaster SIGKILLed (its agent sees it),
 * and the primary's whole host lost (agent, postmaster and backends SIGKILLed together:
 * only the peers can tell, from "connection refused"). Both must fail over; in async
 * mode acknowledged rows may be lost, but never silently: the old primary's agent
 * measures the loss (failover.loss, lostBytes > 0) unless it died with its host, when
 * the loss is unknown and said so; never two primaries, never two nodes taking writes.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { postmasterPid, waitFor } from '../support/sandbox.js';
import { ChaosRun, expectSafe, lossAccountedFor } from './support.js';

describe('chaos: crashes', () => {
  let run: ChaosRun | undefined;

  afterEach(async () => {
    await run?.close();
    run = undefined;
  }, 120_000);

  it('1. kill -9 of the primary postmaster: failover; lost acknowledged rows are journaled; the old primary rejoins as a replica', async () => {
    run = await ChaosRun.start('kill-postmaster');
    const old = await run.primaryNode();
    const writer = run.startWriter();
    await run.writesProgress(100);
    const before = await run.routing();

    const faultAt = Date.now();
    run.signal(postmasterPid(old.dataDir), 'SIGKILL');

    const after = await waitFor('a new writable primary', async () => {
      const t = await run!.routing().catch(() => null);
      return t?.writable && t.primary && t.primary.id !== old.id ? t : null;
    }, 60_000, 20);
    expect(after.generation).toBeGreaterThan(before.generation);
    await run.writesProgress(100);
    // never restarted in place as a primary: it comes back as a replica of the new one
    await waitFor(`${old.id} back as a healthy replica`, async () => (await run!.routing()).replicas.find((r) => r.id === old.id)?.healthy, 90_000, 100);
    await run.writesProgress(50);

    const f = await run.finish();
    expectSafe(f);
    const started = f.events.filter((e) => e.type === 'failover.started');
    expect(started).toHaveLength(1);
    expect(started[0]!.data).toMatchObject({ kind: 'failover', from: old.id, to: after.primary!.id, manual: false });
    const completed = f.events.filter((e) => e.type === 'failover.completed');
    expect(completed.map((e) => e.data.outcome)).toEqual(['success']);
    expect(f.primary).toBe(after.primary!.id);
    expect(f.nodes.find((n) => n.id === old.id)).toMatchObject({ reachable: true, inRecovery: true });
    // its agent lived and saw the postmaster die: the loss is measured, rows lost or not
    const loss = await lossAccountedFor(run, f, faultAt, { expectMeasured: true });
    console.log(`[kill-postmaster] acknowledged rows lost: ${f.lost.length} (${f.lost.slice(0, 20).join(',')}); writer acked ${writer.acked.length}; ${loss.operations.map((o) => `measured ${o.measured ? `${o.measured.lostBytes} bytes (walEnd ${o.measured.walEnd}, fork ${o.measured.forkLsn})` : 'nothing'}`).join('; ')}`);
    expect(loss.violations, `loss not accounted for: ${loss.detail}`).toEqual([]);
  }, 300_000);

  it('2. kill -9 of the primary agent, its postmaster and every backend together (host loss): the peers see connection refused, failover', async () => {
    run = await ChaosRun.start('host-loss');
    const old = await run.primaryNode();
    run.startWriter();
    await run.writesProgress(100);

    // every process at once: the agent, the postmaster and each backend (a backend leads
    // its own process group, so kill(-postmaster) alone would leave them committing)
    const faultAt = run.loseHost(old);

    const after = await waitFor('a new writable primary', async () => {
      const t = await run!.routing().catch(() => null);
      return t?.writable && t.primary && t.primary.id !== old.id ? t : null;
    }, 60_000, 20);
    await run.writesProgress(100);

    const f = await run.finish();
    expectSafe(f);
    const started = f.events.filter((e) => e.type === 'failover.started');
    expect(started).toHaveLength(1);
    expect(started[0]!.data).toMatchObject({ kind: 'failover', from: old.id, to: after.primary!.id, manual: false });
    // decided on the peers' view: the primary's agent was silent
    const evidence = (started[0]!.data as unknown as { evidence: Array<{ node: string; peer?: { node: string; reachable: boolean; error?: string } }> }).evidence;
    const peers = evidence.filter((e) => e.node !== old.id && e.peer?.node === old.id);
    expect(peers.length).toBeGreaterThanOrEqual(1);
    expect(peers.every((e) => e.peer!.reachable === false && e.peer!.error === 'refused')).toBe(true);
    expect(f.events.filter((e) => e.type === 'failover.completed').map((e) => e.data.outcome)).toEqual(['success']);
    // nothing restarted the lost host's server
    expect(f.nodes.find((n) => n.id === old.id)?.reachable).toBe(false);
    // the old primary's agent is gone: nothing can measure the loss, history keeps the estimate
    const loss = await lossAccountedFor(run, f, faultAt, { deadAgents: [old.id] });
    const item = loss.operations[0]?.history;
    console.log(`[host-loss] acknowledged rows lost: ${f.lost.length}; reason: ${String(started[0]!.data.reason)}; history lostBytes ${item?.lostBytes ?? '?'} lossMeasured ${String(item?.lossMeasured)}`);
    expect(item?.lossMeasured, 'history of a failover whose old primary host is lost').toBe(false);
    expect(loss.violations, `loss not accounted for: ${loss.detail}`).toEqual([]);
  }, 300_000);
});
