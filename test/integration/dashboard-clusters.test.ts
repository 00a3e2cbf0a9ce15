/**
 * The dashboard in headless Chromium over an in-process API with two clusters (folded
 * state from the core's test helpers, no databases): the cluster list, the lag chart
 * drawn from the lag history, a failover in the history whose explanation (decision,
 * evidence, steps with times) opens on a click, and a new routing table shown live
 * from the SSE stream. No console errors. Skips when /usr/bin/chromium is absent.
 */
import fs from 'node:fs';
import { EventEmitter } from 'node:events';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApi, type ApiCluster } from '../../src/api/server.js';
import { routingTable, type RoutingTable } from '../../src/core/routing.js';
import { compareStreamIds, type ClusterState } from '../../src/core/state.js';
import { DEAD, healthyCluster, type Sim } from '../unit/helpers.js';

const CHROMIUM = '/usr/bin/chromium';
const haveChromium = fs.existsSync(CHROMIUM);
if (!haveChromium) console.warn(`dashboard browser test skipped: ${CHROMIUM} is absent (Debian package "chromium")`);

class Fake extends EventEmitter implements ApiCluster {
  state: ClusterState;
  table: RoutingTable;
  readonly isLeader = true;
  readonly ready = true;
  constructor(
    private sim: Sim,
    readonly name: string,
  ) {
    super();
    this.state = sim.state;
    this.table = this.lagged(routingTable(sim.state), 0);
  }
  /** pg2 and pg3 lagging, as agents would report */
  lagged(t: RoutingTable, ms: number): RoutingTable {
    return { ...t, replicas: t.replicas.map((r, i) => ({ ...r, lagMs: ms + i * 40, lagBytes: (ms + i * 40) * 100 })) };
  }
  /** a new table, as the stream announces it */
  publish(t: RoutingTable): void {
    this.state = this.sim.state;
    this.table = t;
    this.emit('routing', t);
  }
  /** the long poll's wait: the next published table, or null after `ms` */
  waitForChange(_version: string, ms: number): Promise<RoutingTable | null> {
    return new Promise((resolve) => {
      const done = (t: RoutingTable | null): void => {
        clearTimeout(timer);
        this.off('routing', done);
        resolve(t);
      };
      const timer = setTimeout(() => done(null), ms);
      this.on('routing', done);
    });
  }
  readJournal(after: string, limit: number) {
    return Promise.resolve(this.sim.journal.filter((r) => compareStreamIds(r.id, after) > 0).slice(0, limit));
  }
  submit(): Promise<string> {
    return Promise.resolve('1-0');
  }
}

/** pg1 crashed, pg2 promoted: one successful failover in the history */
function failedOver(t0: number): Sim {
  const sim = healthyCluster({ t0, primary: { lsn: '0/3000000' }, replicas: { pg2: { lsn: '0/2FF0000' }, pg3: { lsn: '0/2F00000' } } });
  sim.beat(t0 + 1_000, { pg1: DEAD });
  sim.beat(t0 + 1_150, { pg2: { role: 'primary', timeline: 2, upstream: null, walReceiver: null, replayDelayMs: null, standbys: [] } });
  sim.settle(t0 + 1_200);
  return sim;
}

describe.skipIf(!haveChromium)('dashboard in Chromium: several clusters, chart, explain', () => {
  let app: FastifyInstance;
  let browser: Browser;
  let page: Page;
  let url: string;
  let a: Fake;
  let b: Fake;
  const problems: string[] = [];

  beforeAll(async () => {
    const t0 = Date.now() - 60_000;
    a = new Fake(failedOver(t0), 'orders');
    b = new Fake(healthyCluster({ t0 }), 'billing');
    expect(a.state.history).toMatchObject([{ kind: 'failover', from: 'pg1', to: 'pg2', outcome: 'success' }]);
    app = buildApi({ clusters: new Map([[a.name, a], [b.name, b]]), coordinatorId: 'co-browser', adminToken: 'admin-token-admin-token', lagSampleMs: 200 });
    await app.listen({ host: '127.0.0.1', port: 0 });
    url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}/`;
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
    page = await browser.newPage();
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') problems.push(`console.${m.type()}: ${m.text()}`);
    });
    page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
    page.setDefaultTimeout(20_000);
    await page.goto(url);
  }, 90_000);

  afterAll(async () => {
    await browser?.close();
    await app?.close();
  }, 30_000);

  it('lists both clusters with their primaries', async () => {
    const rows = page.locator('nav#clusters tbody tr');
    await expect.poll(() => rows.count(), { timeout: 20_000 }).toBe(2);
    expect(await rows.nth(0).innerText()).toMatch(/orders\s+postgres\s+pg2\s+/);
    expect(await rows.nth(1).innerText()).toMatch(/billing\s+postgres\s+pg1\s+/);
  }, 30_000);

  it('draws each replica\'s lag over time and follows new samples', async () => {
    const section = page.locator('section.cluster').nth(1);
    // billing: pg2 and pg3 are replicas; a series appears once two samples are in
    await expect.poll(() => section.locator('svg.chart polyline.series').count(), { timeout: 20_000 }).toBe(2);
    const nodes = await section.locator('svg.chart polyline.series').evaluateAll((els) => els.map((e) => e.getAttribute('data-node')));
    expect(nodes).toEqual(['pg2', 'pg3']);
    expect(await section.locator('.legend').innerText()).toMatch(/pg2: 0 ms[\s\S]*pg3: 40 ms/);
    b.publish(b.lagged(b.table, 500));
    await expect.poll(() => section.locator('.legend').innerText(), { timeout: 20_000 }).toMatch(/pg2: 500 ms[\s\S]*pg3: 540 ms/);
    await section.locator('.unit button[data-unit="bytes"]').click();
    expect(await section.locator('.legend').innerText()).toMatch(/pg2: 49 kB/);
    await section.locator('.unit button[data-unit="ms"]').click();
  }, 40_000);

  it('shows the failover in the history, and its explanation on a click', async () => {
    const section = page.locator('section.cluster').nth(0);
    const row = section.locator('table.history tbody tr').first();
    await expect.poll(() => row.innerText(), { timeout: 20_000 }).toMatch(/^\d\d:\d\d:\d\d\s+failover fo-\S+\s+pg1 → pg2\s+\d+ ms\s+.*\s+success/);
    const explain = section.locator('.explain');
    expect(await explain.isHidden()).toBe(true);
    await row.click();
    await explain.locator('table.steps').waitFor();
    const text = await explain.innerText();
    expect(text).toMatch(/failover fo-\S+: pg1 → pg2, success in \d+ ms/);
    expect(text).toMatch(/decision\s+\S.*/);
    expect(text).not.toContain('requested by');
    // evidence times read as times, steps carry no envelope noise
    expect(await explain.locator('table.evidence').innerText()).toMatch(/\d{4}-\d\d-\d\dT/);
    expect(text).not.toMatch(/undefined|epoch=/);
    // the evidence: one row per node observed at the decision
    expect(await explain.locator('table.evidence tr').count()).toBeGreaterThanOrEqual(3);
    const steps = await explain.locator('table.steps tr').allInnerTexts();
    expect(steps.join('\n')).toMatch(/failover\.started[\s\S]*promotion\.requested[\s\S]*failover\.completed/);
    expect(steps.slice(1).every((s) => /^\d{4}-\d\d-\d\dT\S+Z\s+\+\d+ ms\s/.test(s))).toBe(true);
    await explain.locator('button.close').click();
    expect(await explain.isHidden()).toBe(true);
  }, 40_000);

  it('follows a new routing table from the stream without a reload, with no console errors', async () => {
    await page.evaluate(() => Object.assign(globalThis, { notReloaded: true }));
    const section = page.locator('section.cluster').nth(1);
    const t = b.table;
    b.publish({ ...t, generation: t.generation + 1, primary: { id: 'pg3', host: 'pg3', port: 5432 }, replicas: t.replicas.filter((r) => r.id !== 'pg3') });
    await expect.poll(() => section.locator('.topology .primary').innerText(), { timeout: 20_000 }).toMatch(/^primary pg3/);
    await expect.poll(() => page.locator('nav#clusters tbody tr').nth(1).innerText(), { timeout: 20_000 }).toMatch(/billing\s+postgres\s+pg3/);
    expect(await page.evaluate(() => (globalThis as { notReloaded?: boolean }).notReloaded)).toBe(true);
    expect(await page.locator('#live').innerText()).toBe('live');
    if (process.env.SY_DASHBOARD_SCREENSHOT) await page.screenshot({ path: process.env.SY_DASHBOARD_SCREENSHOT, fullPage: true });
    expect(problems).toEqual([]);
  }, 40_000);
});

describe.skipIf(!haveChromium)('dashboard in Chromium with a read token', () => {
  const READ = 'read-token-for-the-dashboard';
  let app: FastifyInstance;
  let browser: Browser;
  let c: Fake;
  let url: string;

  beforeAll(async () => {
    c = new Fake(healthyCluster({ t0: Date.now() - 10_000 }), 'orders');
    app = buildApi({ clusters: new Map([[c.name, c]]), coordinatorId: 'co-token', auth: { adminTokens: [{ name: 'ops', token: 'admin-token-admin-token' }], readToken: READ }, lagSampleMs: 200 });
    await app.listen({ host: '127.0.0.1', port: 0 });
    url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}/`;
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
  }, 90_000);

  afterAll(async () => {
    await browser?.close();
    await app?.close();
  }, 30_000);

  it('asks for the token before any data request, then follows the table by long poll', async () => {
    const page = await browser.newPage();
    page.setDefaultTimeout(20_000);
    const problems: string[] = [];
    const unauthorized: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') problems.push(`console.${m.type()}: ${m.text()}`);
    });
    page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
    page.on('response', (r) => {
      if (r.status() === 401) unauthorized.push(r.url());
    });
    await page.goto(url);
    const prompt = page.locator('#token');
    await prompt.waitFor();
    expect(await prompt.innerText()).toMatch(/this coordinator has a read token/);
    await page.locator('#token input').fill(READ);
    await page.locator('#token button').click();
    expect(await prompt.isHidden()).toBe(true);
    await expect.poll(() => page.locator('.topology .primary').innerText(), { timeout: 20_000 }).toMatch(/^primary pg1/);
    await expect.poll(() => page.locator('#live').innerText(), { timeout: 20_000 }).toBe('live');
    await expect.poll(() => page.locator('svg.chart polyline.series').count(), { timeout: 20_000 }).toBe(2);
    await expect.poll(() => page.locator('.timeline li').count(), { timeout: 20_000 }).toBeGreaterThan(3);
    // a new table reaches the page through the waiting long poll
    const t = c.table;
    c.publish({ ...t, generation: t.generation + 1, primary: { id: 'pg2', host: 'pg2', port: 5432 }, replicas: t.replicas.filter((r) => r.id !== 'pg2') });
    await expect.poll(() => page.locator('.topology .primary').innerText(), { timeout: 20_000 }).toMatch(/^primary pg2/);
    expect(unauthorized).toEqual([]);
    expect(problems).toEqual([]);
    // the token stays with the tab: a reload asks no more
    await page.reload();
    await expect.poll(() => page.locator('.topology .primary').innerText(), { timeout: 20_000 }).toMatch(/^primary pg2/);
    expect(await prompt.isHidden()).toBe(true);
    await page.close();
  }, 60_000);

  it('asks again when the token is refused', async () => {
    const page = await browser.newPage();
    page.setDefaultTimeout(20_000);
    await page.goto(url);
    await page.locator('#token input').fill('not-the-read-token');
    await page.locator('#token button').click();
    await expect.poll(() => page.locator('#token').innerText(), { timeout: 20_000 }).toMatch(/the read token was refused/);
    expect(await page.locator('#token').isVisible()).toBe(true);
    await page.close();
  }, 60_000);
});
