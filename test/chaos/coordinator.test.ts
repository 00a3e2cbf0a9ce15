/**
 * Faults of the control plane itself, under a steady writer: the leader coordinator
 * frozen shortly (no failover) and for longer than its lease (the other coordinator
 * takes over; still no failover; the woken deposed leader appends nothing), the leader
 * killed right after it journaled failover.started (the new leader finishes the
 * failover), and a deposed leader waking up after the new leader failed over (nothing
 * with its old epoch lands in the journal or is carried out by an agent).
 *
 * The writer, the checks and the journal reads go through the coordinator that is not
 * faulted: a frozen coordinator's API does not answer.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { compareStreamIds } from '../../src/core/state.js';
import { postmasterPid, waitFor } from '../support/sandbox.js';
import { agentJobs, ChaosRun, coordinatorActs, describeEvents, expectNoFailover, expectSafe, idMs, lossAccountedFor, readEvents, sleep, waitAllHealthy, type JournalEvent } from './support.js';

/** failAfterMs (5 s) plus slack. */
const WINDOW_MS = 7_000;

function other(run: ChaosRun, id: string): ChaosRun['file']['coordinators'][number] {
  const c = run.file.coordinators.find((x) => x.id !== id);
  if (!c) throw new Error('needs two coordinators');
  return c;
}

/** The first journal entry after `after` of `type` that satisfies `pred`, polled every `everyMs`. */
async function nextEvent(run: ChaosRun, api: string, after: string, type: string, pred: (e: JournalEvent) => boolean = () => true, timeoutMs = 60_000, everyMs = 50): Promise<JournalEvent> {
  return waitFor(`journal ${type}`, async () => (await readEvents(api, run.cluster, { after, type, timeoutMs: 1000 })).events.find(pred), timeoutMs, everyMs);
}

/** The woken coordinator knows it lost the lease and has caught up with the journal. */
async function caughtUpFollower(run: ChaosRun, woken: string, leader: string): Promise<void> {
  await waitFor(`${woken} a caught-up follower of ${leader}`, async () => {
    const w = await run.clusterInfo(run.coordinator(woken).api);
    const l = await run.clusterInfo(run.coordinator(leader).api);
    return !w.servedByLeader && l.servedByLeader && w.leader === leader && w.generation === l.generation;
  }, 30_000, 100);
}

describe('chaos: coordinators', () => {
  let run: ChaosRun | undefined;

  afterEach(async () => {
    await run?.close();
    run = undefined;
  }, 120_000);

  it('5. SIGSTOP of the leader coordinator for 2 s, then for longer than the lease: the other takes over, no failover, the deposed leader appends nothing', async () => {
    run = await ChaosRun.start('freeze-leader');
    const first = await run.leader();
    const api = other(run, first.id).api;
    const primary = await run.primaryNode(api);
    run.startWriter(api);
    await run.writesProgress(100);

    // 2 s < the lease TTL (3 s): nothing to fail over
    run.signal(first.pid, 'SIGSTOP');
    await sleep(2_000);
    run.signal(first.pid, 'SIGCONT');
    await run.writesProgress(100);
    await waitAllHealthy(run, primary.id, api);
    await run.hold(WINDOW_MS);

    // 5 s > the lease TTL: the other coordinator takes over (whoever leads now is frozen)
    const leader = await run.leader();
    const successor = other(run, leader.id);
    const mark = (await readEvents(successor.api, run.cluster)).next;
    const stopAt = Date.now();
    run.signal(leader.pid, 'SIGSTOP');
    const takeover = await nextEvent(run, successor.api, mark, 'leader.changed', (e) => e.data.coordinator === successor.id, 30_000);
    await sleep(Math.max(0, stopAt + 5_000 - Date.now()));
    const wakeAt = Date.now();
    run.signal(leader.pid, 'SIGCONT');
    await caughtUpFollower(run, leader.id, successor.id);
    await run.writesProgress(100);
    await run.hold(WINDOW_MS);

    const f = await run.finish();
    expectNoFailover(run, f, primary.id);
    const later = f.events.filter((e) => compareStreamIds(e.id, takeover.id) > 0);
    expect(later.filter((e) => e.data.epoch < takeover.data.epoch).map((e) => `${e.id} ${e.type} e${e.data.epoch}`), 'entries after the takeover with an older epoch').toEqual([]);
    expect(f.events.filter((e) => idMs(e.id) >= wakeAt && e.data.epoch < takeover.data.epoch).map((e) => e.id)).toEqual([]);
    expect(coordinatorActs(run, leader.id, wakeAt).map((l) => `${l.msg} ${JSON.stringify(l)}`), `what ${leader.id} did after it woke`).toEqual([]);
    console.log(`[freeze-leader] ${first.id} led first; ${leader.id} frozen 5 s, ${successor.id} took over at epoch ${takeover.data.epoch}; leader.changed: ${f.events.filter((e) => e.type === 'leader.changed').map((e) => `${String(e.data.coordinator)}@e${e.data.epoch}`).join(', ')}`);
  }, 300_000);

  it('7. the leader SIGKILLed right after it journals failover.started: the new leader finishes the failover', async () => {
    run = await ChaosRun.start('kill-leader-mid-failover');
    const leader = await run.leader();
    const successor = other(run, leader.id);
    const api = successor.api;
    const old = await run.primaryNode(api);
    run.startWriter(api);
    await run.writesProgress(100);

    const mark = (await readEvents(api, run.cluster)).next;
    const faultAt = Date.now();
    run.signal(postmasterPid(old.dataDir), 'SIGKILL');
    const started = await nextEvent(run, api, mark, 'failover.started', () => true, 30_000, 5);
    run.signal(leader.pid, 'SIGKILL');

    const takeover = await nextEvent(run, api, started.id, 'leader.changed', (e) => e.data.coordinator === successor.id, 30_000);
    const completed = await nextEvent(run, api, started.id, 'failover.completed', (e) => e.data.operationId === started.data.operationId, 60_000);
    expect(completed.data.outcome, describeEvents((await readEvents(api, run.cluster, { after: mark })).events)).toBe('success');
    // the scenario happened: the old leader did not finish it before it died
    expect(completed.data.epoch).toBe(takeover.data.epoch);
    expect(takeover.data.epoch).toBeGreaterThan(started.data.epoch);
    const newPrimary = String(started.data.to);
    await waitFor(`${newPrimary} writable`, async () => {
      const t = await run!.routing(api);
      return t.writable && t.primary?.id === newPrimary;
    }, 30_000, 20);
    await run.writesProgress(100);
    await waitFor(`${old.id} back as a healthy replica`, async () => (await run!.routing(api)).replicas.find((r) => r.id === old.id)?.healthy, 90_000, 100);

    const f = await run.finish([leader.id]);
    expectSafe(f);
    expect(f.events.filter((e) => e.type === 'failover.started')).toHaveLength(1);
    expect(f.primary).toBe(newPrimary);
    const loss = await lossAccountedFor(run, f, faultAt, { expectMeasured: true, avoid: [leader.id] });
    console.log(`[kill-leader-mid-failover] started ${started.id} e${started.data.epoch} ${String(started.data.from)}→${newPrimary}; ${successor.id} took over e${takeover.data.epoch}; completed ${completed.id} ${String(completed.data.reason)}; lost ${f.lost.length}`);
    expect(loss.violations, `loss not accounted for: ${loss.detail}`).toEqual([]);
  }, 300_000);

  it('8. a deposed leader that wakes after the new leader failed over journals nothing with its old epoch, and no agent carries out an old-epoch job', async () => {
    run = await ChaosRun.start('deposed-leader-wakes');
    const leader = await run.leader();
    const successor = other(run, leader.id);
    const api = successor.api;
    const old = await run.primaryNode(api);
    run.startWriter(api);
    await run.writesProgress(100);

    const mark = (await readEvents(api, run.cluster)).next;
    run.signal(leader.pid, 'SIGSTOP');
    const takeover = await nextEvent(run, api, mark, 'leader.changed', (e) => e.data.coordinator === successor.id, 30_000);
    const newEpoch = takeover.data.epoch;

    const faultAt = Date.now();
    run.signal(postmasterPid(old.dataDir), 'SIGKILL');
    const completed = await nextEvent(run, api, takeover.id, 'failover.completed', () => true, 60_000);
    expect(completed.data.outcome).toBe('success');
    const started = (await readEvents(api, run.cluster, { after: takeover.id, type: 'failover.started' })).events[0]!;
    const newPrimary = String(started.data.to);
    await waitFor(`${newPrimary} writable`, async () => {
      const t = await run!.routing(api);
      return t.writable && t.primary?.id === newPrimary;
    }, 30_000, 20);
    await run.writesProgress(50);

    const wakeAt = Date.now();
    run.signal(leader.pid, 'SIGCONT');
    await caughtUpFollower(run, leader.id, successor.id);
    await run.writesProgress(100);
    await waitFor(`${old.id} back as a healthy replica`, async () => (await run!.routing(api)).replicas.find((r) => r.id === old.id)?.healthy, 90_000, 100);
    await run.writesProgress(50);

    const f = await run.finish([leader.id]);
    expectSafe(f);
    expect(f.primary).toBe(newPrimary);
    const later = f.events.filter((e) => compareStreamIds(e.id, takeover.id) > 0);
    expect(later.filter((e) => e.data.epoch < newEpoch).map((e) => `${e.id} ${e.type} e${e.data.epoch}`), 'entries after the takeover with the old epoch').toEqual([]);
    expect(coordinatorActs(run, leader.id, wakeAt).map((l) => `${l.msg} ${JSON.stringify(l)}`), `what ${leader.id} did after it woke`).toEqual([]);
    const jobs = agentJobs(run);
    const takeoverAt = idMs(takeover.id);
    const staleDone = jobs.filter((j) => j.epoch < newEpoch && j.doneAt !== null && j.doneAt >= takeoverAt);
    expect(staleDone, 'jobs with the old epoch carried out after the takeover').toEqual([]);
    const loss = await lossAccountedFor(run, f, faultAt, { expectMeasured: true, avoid: [leader.id] });
    console.log(
      `[deposed-leader-wakes] ${leader.id} frozen, ${successor.id} took over e${newEpoch}, failed over ${old.id}→${newPrimary}; jobs: ${jobs.map((j) => `${j.agent}:${j.jobId}:${j.doneAt ? 'done' : `refused(${j.code})`}`).join(' ')}; lost ${f.lost.length}`,
    );
    expect(loss.violations, `loss not accounted for: ${loss.detail}`).toEqual([]);
  }, 300_000);
});
