/**
 * Outages an operator must see (issue 13 §2), on a real sandbox: the primary's agent
 * killed with kill -9 (no failover: its peers still reach the primary, but it is
 * journaled and shown); a paused cluster whose primary is killed (the failover it
 * blocks is journaled once, with its evidence, and `ctl list` says PAUSED and why); an
 * agent that cannot reach its database (its log and the node's reason say so).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { cliEntry, type SandboxFile } from '../../src/sandbox/deploy.js';
import { freePort } from '../../src/sandbox/ports.js';
import { killAndWait } from '../../src/sandbox/proc.js';
import { postmasterPid, routing, startSandbox, stopSandbox, waitFor } from '../support/sandbox.js';

type Running = Awaited<ReturnType<typeof startSandbox>>;

/** A sandbox; on a machine this loaded a start-up can fail on a timeout: one more try. */
async function start(): Promise<Running> {
  try {
    return await startSandbox();
  } catch (err) {
    console.warn(`sandbox start failed, trying again: ${(err as Error).message}`);
    return startSandbox();
  }
}
let running: Running | undefined;
const extra: ChildProcess[] = [];

afterEach(async () => {
  for (const c of extra.splice(0)) if (c.pid && c.exitCode === null) await killAndWait(c.pid, 'SIGTERM', 10_000).catch(() => {});
  await stopSandbox(running);
  running = undefined;
});

function ctl(r: Running, args: string[]): { code: number | null; stdout: string; stderr: string } {
  const p = spawnSync(process.execPath, [cliEntry(), 'ctl', ...args, '--dir', path.join(r.dir, 'sb')], { encoding: 'utf8', timeout: 90_000 });
  return { code: p.status, stdout: p.stdout, stderr: p.stderr };
}

interface Ev {
  id: string;
  type: string;
  at: string;
  data: Record<string, unknown>;
}

async function events(file: SandboxFile, type: string): Promise<Ev[]> {
  const res = await fetch(`${file.api}/v1/clusters/${file.cluster}/events?limit=1000&type=${type}`);
  return ((await res.json()) as { events: Ev[] }).events;
}

describe('outages are visible', () => {
  it("the primary's agent killed with kill -9: no failover, but journaled and shown in ctl list, the routing table and the dashboard", async () => {
    running = await start();
    const { file } = running;
    const pg1 = file.nodes[0]!;
    process.kill(pg1.agentPid, 'SIGKILL');

    const silent = await waitFor(
      'the silent agent journaled',
      async () => (await events(file, 'node.health-changed')).find((e) => e.data.node === 'pg1' && e.data.reason === 'agent silent; peers reach it'),
      30_000,
      200,
    );
    expect(silent.data.healthy).toBe(true);
    // a silent agent alone is not a dead primary: its peers reach it, so it stays the primary
    const table = await routing(file.api, file.cluster);
    expect(table).toMatchObject({ writable: true, primary: { id: 'pg1' } });
    expect(table.nodes?.find((n) => n.id === 'pg1')).toMatchObject({ role: 'primary', phase: 'primary', reason: 'agent silent; peers reach it' });
    expect(await events(file, 'failover.started')).toEqual([]);

    const list = ctl(running, ['list']);
    expect(list.stderr).toBe('');
    expect(list.stdout).toMatch(/pg1\s+primary\s+primary\s+127\.0\.0\.1:\d+\s+.*agent silent; peers reach it/);
    expect(list.stdout).toMatch(/^ {2}attention: pg1's agent is silent \(agent silent; peers reach it\): no job runs on pg1 until it is back$/m);
    expect(list.stdout).toMatch(/pg2\s+replica\s+replica\s/);

    const page = await (await fetch(`${file.api}/`)).text();
    expect(page).toContain('agent silent; peers reach it');

    // an agent that cannot reach its database: it logs the error, and the node's reason says it
    const port = await freePort();
    const cfgPath = path.join(running.dir, 'agent-pg9.json');
    fs.writeFileSync(cfgPath, JSON.stringify({ cluster: file.cluster, node: 'pg9', redis: file.redis, host: '127.0.0.1', port, probeIntervalMs: 200, probeTimeoutMs: 1000 }));
    const agent = spawn(process.execPath, [cliEntry(), 'agent', '--config', cfgPath], { stdio: ['ignore', 'pipe', 'pipe'] });
    extra.push(agent);
    let out = '';
    agent.stdout.on('data', (d: Buffer) => (out += d.toString()));
    agent.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const pg9 = await waitFor(
      'pg9 with its reason',
      async () => (await routing(file.api, file.cluster)).nodes?.find((n) => n.id === 'pg9' && n.reason !== 'registered'),
      30_000,
      200,
    );
    expect(pg9).toMatchObject({ healthy: false, phase: 'replica-down', reason: 'unreachable: refused' });
    await waitFor('the agent to log the connection error', async () => out.includes(`cannot reach the database at 127.0.0.1:${port}`), 10_000, 100);
    // rate-limited: once, not once per probe
    await new Promise((r) => setTimeout(r, 2_000));
    expect(out.split(`cannot reach the database at 127.0.0.1:${port}`).length - 1).toBe(1);
    expect(ctl(running, ['list']).stdout).toMatch(/pg9\s+replica\s+replica-down\s+127\.0\.0\.1:\d+\s+-\s+unreachable: refused/);
  }, 480_000);

  it('a paused cluster whose primary is killed: "failover blocked: paused" journaled once with its evidence, PAUSED and the reason in ctl list', async () => {
    running = await start();
    const { file } = running;
    const pause = ctl(running, ['pause']);
    expect(pause.stderr).toBe('');
    expect(pause.stdout).toMatch(/cluster it paused: no automatic failover/);

    process.kill(postmasterPid(file.nodes[0]!.dataDir), 'SIGKILL');
    const blocked = await waitFor('failover.blocked', async () => (await events(file, 'failover.blocked'))[0], 30_000, 200);
    expect(blocked.data).toMatchObject({ primary: 'pg1', reason: expect.stringMatching(/^paused: primary pg1 failed \(.+\); no automatic failover until resumed/) });
    // the evidence: what each agent last reported (the primary's first)
    const evidence = blocked.data.evidence as Array<{ node: string; reachable: boolean; receivedAt: number }>;
    expect(evidence.map((e) => e.node)).toEqual(['pg1', 'pg2', 'pg3']);
    for (const e of evidence) expect(e.receivedAt).toBeGreaterThan(0);

    // once: more probes of the dead primary add nothing
    await new Promise((r) => setTimeout(r, 3_000));
    expect(await events(file, 'failover.blocked')).toHaveLength(1);
    expect(await events(file, 'failover.started')).toEqual([]);

    const list = ctl(running, ['list']);
    expect(list.stderr).toBe('');
    expect(list.stdout).toMatch(/phase: primary down .*NOT WRITABLE\s+PAUSED/);
    expect(list.stdout).toMatch(/failover blocked: paused: primary pg1 failed/);
    // the dead primary is still listed, with its phase and reason
    expect(list.stdout).toMatch(/pg1\s+primary \(down\)\s+primary-down\s+127\.0\.0\.1:\d+\s+.*(process exited|unreachable)/);

    // `ctl events --follow` prints what comes after it started, as it comes
    const follow = spawn(process.execPath, [cliEntry(), 'ctl', 'events', '--follow', '--type', 'cluster.resumed', '--dir', path.join(running.dir, 'sb')], { stdio: ['ignore', 'pipe', 'pipe'] });
    extra.push(follow);
    let followed = '';
    follow.stdout.on('data', (d: Buffer) => (followed += d.toString()));
    follow.stderr.on('data', (d: Buffer) => (followed += d.toString()));
    await new Promise((r) => setTimeout(r, 1_500));
    expect(followed).toBe('');
    expect(follow.exitCode).toBeNull();

    // resumed: the blocked failover goes ahead
    const resume = ctl(running, ['resume']);
    await waitFor('ctl events --follow to print the resume', async () => /^\d{4}-\S+Z\s+\d+-\d+\s+cluster\.resumed\s+by=admin/m.test(followed), 30_000, 100);
    expect(resume.stdout).toMatch(/resumed/);
    const after = await waitFor('a new primary', async () => {
      const t = await routing(file.api, file.cluster);
      return t.primary && t.primary.id !== 'pg1' ? t : null;
    }, 60_000, 200);
    expect(['pg2', 'pg3']).toContain(after.primary!.id);
    await waitFor('the failover finished', async () => {
      const h = ctl(running!, ['history', '--json']);
      return (JSON.parse(h.stdout) as Array<{ outcome: string }>).some((x) => x.outcome === 'success');
    }, 60_000, 500);
    // as a user sees it
    const history = ctl(running, ['history']);
    const id = (JSON.parse(ctl(running, ['history', '--json']).stdout) as Array<{ id: string }>)[0]!.id;
    const explain = ctl(running, ['explain', id]);
    const list2 = ctl(running, ['list']);
    console.log(['$ switchyard ctl list', list2.stdout, '$ switchyard ctl history', history.stdout, `$ switchyard ctl explain ${id}`, explain.stdout].join('\n'));
    expect(history.stdout).toMatch(new RegExp(`${id}\\s+failover\\s+pg1\\s+pg[23]\\s+\\S+Z\\s+\\d+ ms`));
    expect(explain.stdout).toMatch(new RegExp(`^failover ${id}: pg1 → pg[23], success in \\d+ ms`));
    expect(explain.stdout).toMatch(/decision: /);
    expect(explain.stdout).toMatch(/steps:\n.*failover\.started/);

    // ctl events filters, and a switchover: no confirmation without a terminal, a bad
    // target lists the nodes, --yes waits for the outcome and prints it
    const ev = ctl(running, ['events', '--type', 'failover.blocked', '--limit', '1']);
    expect(ev.stdout.trim().split('\n')).toHaveLength(1);
    expect(ev.stdout).toMatch(/^\d{4}-\d\d-\d\dT\S+Z\s+\d+-\d+\s+failover\.blocked\s+primary=pg1 reason="paused: primary pg1 failed/);
    const newPrimary = after.primary!.id;
    const other = newPrimary === 'pg2' ? 'pg3' : 'pg2';
    expect(ctl(running, ['switchover', '--to', other]).stderr).toMatch(/confirmation needed, and stdin is not a terminal: pass --yes/);
    expect(ctl(running, ['switchover', '--to', 'pg9', '--yes']).stderr).toMatch(/no node "pg9" in cluster it: its nodes are pg1, pg2, pg3/);
    const so = ctl(running, ['switchover', '--to', other, '--yes']);
    console.log(`$ switchyard ctl switchover --to ${other} --yes\n${so.stdout}${so.stderr}`);
    expect(so.code).toBe(0);
    expect(so.stdout).toMatch(new RegExp(`^switchover (so-[0-9a-z]+) requested; waiting for the outcome…\nswitchover so-[0-9a-z]+: ${newPrimary} → ${other} success in \\d+ ms\nprimary now: ${other}\n$`));
  }, 400_000);
});
