/**
 * A deposed primary that comes back. With the cluster paused (no automatic action), the
 * primary's server is frozen (SIGSTOP of the postmaster and every child): its agent
 * reports the hang, the primary turns unhealthy, and an operator fails over by hand to a
 * replica, which takes writes. The old primary's server is still alive, only frozen:
 *
 *  9. its agent was SIGKILLed after it reported the hang and is started again (as a
 *     service manager would) while the server is still frozen; then the server resumes;
 * 10. its agent was frozen too (the whole host paused, as a VM is), and both resume
 *     together.
 *
 * The old primary must never accept a write while the new primary does (fence probes
 * straight to every node, not through the routing table), must end up read-only or a
 * replica, and rejoins as a replica once the cluster is resumed.
 *
 * Why the server is frozen first and the agent only after it reported the hang: a frozen
 * postmaster still completes TCP handshakes (the kernel queues them), so peers checking
 * its port see it reachable, and a primary whose agent went silent while it last reported
 * it healthy is vouched for by those peers ("agent silent; peers reach it"): a manual
 * failover is refused (409) as long as the primary is healthy.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { sql, waitFor } from '../support/sandbox.js';
import { ChaosRun, describeEvents, expectSafe, idMs, lossAccountedFor, readEvents, readLogs, type JournalEvent } from './support.js';

async function nextEvent(run: ChaosRun, after: string, type: string, pred: (e: JournalEvent) => boolean = () => true, timeoutMs = 30_000): Promise<JournalEvent> {
  return waitFor(`journal ${type}`, async () => (await readEvents(run.api(), run.cluster, { after, type, timeoutMs: 1000 })).events.find(pred), timeoutMs, 50);
}

/** Is the node read-only (fenced) or a replica? null while it does not answer. */
async function nodeState(port: number): Promise<{ rec: boolean; ro: string } | null> {
  try {
    const r = await sql<{ rec: boolean; ro: string }>(port, "SELECT pg_is_in_recovery() AS rec, current_setting('default_transaction_read_only') AS ro");
    return r.rows[0] ?? null;
  } catch {
    return null;
  }
}

/** How long the failover may take while the old primary is frozen: promoteTimeoutMs (15 s) plus slack. */
const FROZEN_FAILOVER_MS = 20_000;

async function deposedPrimaryComesBack(run: ChaosRun, agent: 'restarted' | 'frozen-with-host'): Promise<void> {
  const name = run.name;
  const old = await run.primaryNode();
  const paused = await run.admin('pause');
  expect(paused.status, JSON.stringify(paused.body)).toBeLessThan(300);
  await waitFor('cluster paused', async () => (await run.clusterInfo(run.api())).paused, 10_000, 50);
  run.startWriter();
  await run.writesProgress(100);
  const mark = (await readEvents(run.api(), run.cluster)).next;

  // 1. the server hangs; its agent sees it (probe timeouts) and the leader journals it unhealthy
  const faultAt = Date.now();
  const frozen = run.signalPostgres(old, 'SIGSTOP');
  expect(frozen.length).toBeGreaterThan(5);
  const unhealthy = await nextEvent(run, mark, 'node.health-changed', (e) => e.data.node === old.id && e.data.healthy === false);
  // 2. then the agent goes too
  const agentPid = old.agentPid;
  if (agent === 'restarted') run.signal(agentPid, 'SIGKILL');
  else run.signal(agentPid, 'SIGSTOP');

  // 3. the operator fails over to the freshest replica: accepted, the primary is unhealthy
  const t = await run.routing();
  const target = [...t.replicas].filter((r) => r.healthy).sort((a, b) => (a.lagBytes ?? Infinity) - (b.lagBytes ?? Infinity) || a.id.localeCompare(b.id))[0];
  expect(target, `a healthy replica to fail over to: ${JSON.stringify(t)}`).toBeDefined();
  const fo = await run.admin('failover', { to: target!.id });
  expect(fo.status, `manual failover: ${JSON.stringify(fo.body)}`).toBe(202);
  const operationId = String(fo.body.operationId);
  // A product may complete it at once (the operator vouches the old primary is gone), or
  // hold it until the old primary is known to be stopped: either is fine, what is checked
  // is that the two never take writes together.
  const completedFrozen = await nextEvent(run, mark, 'failover.completed', (e) => e.data.operationId === operationId, FROZEN_FAILOVER_MS).catch(() => null);
  if (completedFrozen?.data.outcome === 'success') {
    await waitFor(`${target!.id} writable`, async () => {
      const x = await run.routing();
      return x.writable && x.primary?.id === target!.id;
    }, 30_000, 20);
    await run.writesProgress(100);
    // the new primary takes the fence probes before the old one comes back
    await waitFor(`${target!.id} accepting fence probes`, async () => run.fence.probes.some((p) => p.node === target!.id && p.ok && p.sent > idMs(completedFrozen.id)), 10_000, 20);
  } else {
    console.log(`[${name}] failover ${operationId} while ${old.id} is frozen: ${completedFrozen ? `completed ${String(completedFrozen.data.outcome)} (${String(completedFrozen.data.reason)})` : `not completed within ${FROZEN_FAILOVER_MS} ms`}`);
  }

  // 4. the old primary comes back
  let restartedAt = 0;
  if (agent === 'restarted') {
    restartedAt = Date.now();
    const pid = run.restartAgent(old);
    await waitFor(`the new agent of ${old.id} (pid ${pid}) started`, async () => readLogs(run.logDir, `agent-${old.id}`).some((l) => l.time >= restartedAt && l.msg === 'agent started'), 30_000, 50);
  }
  const thawAt = Date.now();
  if (agent === 'frozen-with-host') run.signal(agentPid, 'SIGCONT');
  run.signalPostgres(old, 'SIGCONT');
  const completed = completedFrozen ?? (await nextEvent(run, mark, 'failover.completed', (e) => e.data.operationId === operationId, 60_000));
  const failedOver = completed.data.outcome === 'success';
  if (!failedOver) console.log(`[${name}] the failover did not succeed:\n${describeEvents((await readEvents(run.api(), run.cluster, { after: mark })).events)}`);

  // 5. deposed: it refuses writes (fenced) or is a replica already
  const fenced = failedOver
    ? await waitFor(`${old.id} read-only or a replica`, async () => {
        const st = await nodeState(old.port);
        return st && (st.rec || st.ro === 'on') ? { ...st, at: Date.now() } : null;
      }, 30_000, 20)
    : null;
  await run.hold(3_000);
  const afterThaw = run.fence.probes.filter((p) => p.node === old.id && p.sent >= thawAt);
  const accepted = afterThaw.filter((p) => p.ok);
  console.log(
    `[${name}] ${old.id} frozen at fault+0, unhealthy journaled at fault+${idMs(unhealthy.id) - faultAt} ms, failover ${operationId} → ${target!.id} ${String(completed.data.outcome)} at fault+${idMs(completed.id) - faultAt} ms; ` +
      `${agent === 'restarted' ? `agent restarted at fault+${restartedAt - faultAt} ms, ` : ''}server thawed at fault+${thawAt - faultAt} ms; ` +
      `${fenced ? `${fenced.rec ? 'a replica' : 'read-only'} ${fenced.at - thawAt} ms after the thaw; ` : ''}fence probes on ${old.id} sent after the thaw: ` +
      `${accepted.length} accepted (${accepted.map((p) => `+${p.sent - thawAt}..+${p.acked - thawAt}`).join(' ')}), ` +
      `refused ${JSON.stringify(afterThaw.filter((p) => !p.ok).reduce<Record<string, number>>((m, p) => ({ ...m, [p.err ?? '?']: (m[p.err ?? '?'] ?? 0) + 1 }), {}))}`,
  );
  // a write the old primary accepted, asked for after the new primary had accepted one
  const newWrites = run.fence.probes.filter((p) => p.node === target!.id && p.ok).map((p) => p.acked);
  const firstNewWrite = newWrites.length ? Math.min(...newWrites) : Number.POSITIVE_INFINITY;
  const oldWrites = run.fence.probes
    .filter((p) => p.node === old.id && p.ok && p.sent >= firstNewWrite)
    .map((p) => `${old.id} accepted a write (sent ${p.sent - thawAt} ms, acknowledged ${p.acked - thawAt} ms from the thaw; ${target!.id} took writes from ${firstNewWrite - thawAt} ms)`);

  // 6. resumed, the leader rejoins it as a replica of the new primary
  const resumed = await run.admin('resume');
  expect(resumed.status, JSON.stringify(resumed.body)).toBeLessThan(300);
  if (failedOver) await waitFor(`${old.id} back as a healthy replica`, async () => (await run.routing()).replicas.find((r) => r.id === old.id)?.healthy, 90_000, 100);
  await run.writesProgress(50);

  const f = await run.finish();
  const acts = readLogs(run.logDir, `agent-${old.id}`)
    .filter((l) => l.time >= faultAt && /job|fenc|refuses writes|rejoin|adopted|postgres|WAL/.test(l.msg))
    .map((l) => `+${l.time - faultAt} ${l.msg}${typeof l.action === 'string' ? ` ${l.action}` : ''}${typeof l.code === 'string' ? ` (${l.code})` : ''}${typeof l.outcome === 'string' ? `: ${l.outcome}` : ''}${typeof l.err === 'string' ? `: ${l.err}` : ''}`);
  console.log(`[${name}] ${old.id}'s agent after the fault: ${acts.join(' | ')}`);
  let accounted = false;
  if (agent === 'restarted') {
    // its agent was up before the thaw: it kills the hung, deposed server first
    expect(oldWrites, `${old.id} took writes after ${target!.id} did`).toEqual([]);
  } else if (oldWrites.length > 0 && failedOver) {
    // The whole host resumes at once: the server runs the writes queued on its sockets
    // before its agent (resumed at the same instant) can act. In asynchronous mode that
    // cannot be prevented without a watchdog; what must hold is that the loss is not
    // silent: those writes are on the old timeline, inside the measured loss.
    console.log(`[${name}] ${oldWrites.length} writes on the deposed host right after the thaw: ${oldWrites.join('; ')}`);
    const history = await waitFor('the loss measured', async () => {
      const h = (await (await fetch(`${run.api()}/v1/clusters/${run.cluster}/history`)).json()) as Array<{ id: string; lossMeasured: boolean; lostBytes: number }>;
      const item = h.find((x) => x.id === operationId);
      return item?.lossMeasured ? item : null;
    }, 20_000, 100);
    expect(history.lostBytes, 'the writes the deposed host took are counted in the measured loss').toBeGreaterThan(0);
    accounted = true;
  }
  // (whole host: the overlap is those writes, measured and lost with the old timeline)
  if (accounted) f.fenceViolations.certain = f.fenceViolations.certain.filter((v) => !v.startsWith(`${old.id} accepted`));
  expectSafe(f);
  if (failedOver) {
    expect(f.primary).toBe(target!.id);
    expect(f.nodes.find((n) => n.id === old.id)).toMatchObject({ reachable: true, inRecovery: true });
  }
  const loss = await lossAccountedFor(run, f, faultAt);
  expect(loss.violations, `loss not accounted for: ${loss.detail}`).toEqual([]);
}

describe('chaos: a deposed primary comes back', () => {
  let run: ChaosRun | undefined;

  afterEach(async () => {
    await run?.close();
    run = undefined;
  }, 120_000);

  it('9. primary server frozen, its agent killed, manual failover; the agent restarted, the server resumes: it never takes writes beside the new primary, is fenced or rejoined', async () => {
    run = await ChaosRun.start('deposed-agent-restarted');
    await deposedPrimaryComesBack(run, 'restarted');
  }, 300_000);

  it('10. primary server frozen, then its agent (the whole host), manual failover; the host resumes: what it takes right after the thaw is counted in the measured loss; it is fenced or rejoined', async () => {
    run = await ChaosRun.start('deposed-host-resumes');
    await deposedPrimaryComesBack(run, 'frozen-with-host');
  }, 300_000);
});
