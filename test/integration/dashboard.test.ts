/**
 * The dashboard in headless Chromium against a real deployment (sandbox: PostgreSQL
 * primary and two replicas, agents, a coordinator, Redis): the page shows the primary,
 * each replica's lag in the chart, then follows a switchover run through the admin API
 * without a reload: the new primary, the switchover in the history with its duration
 * and loss, its explanation on a click, and the journal entries. No console errors or
 * page errors. Skips, saying so, when /usr/bin/chromium is absent.
 */
import fs from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SandboxFile } from '../../src/sandbox/deploy.js';
import { routing, startSandbox, stopSandbox, waitFor } from '../support/sandbox.js';

const CHROMIUM = '/usr/bin/chromium';
const haveChromium = fs.existsSync(CHROMIUM);
if (!haveChromium) console.warn(`dashboard browser test skipped: ${CHROMIUM} is absent (Debian package "chromium")`);

describe.skipIf(!haveChromium)('dashboard in Chromium over a real sandbox', () => {
  let s: Awaited<ReturnType<typeof startSandbox>> | undefined;
  let file: SandboxFile;
  let browser: Browser | undefined;
  let page: Page;
  const problems: string[] = [];
  let navigations = 0;

  beforeAll(async () => {
    s = await startSandbox({ coordinators: 1 });
    file = s.file;
    await waitFor('a writable primary', async () => (await routing(file.api, file.cluster)).writable, 60_000, 200);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
    page = await browser.newPage();
    page.setDefaultTimeout(30_000);
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') problems.push(`console.${m.type()}: ${m.text()}`);
    });
    page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
    page.on('framenavigated', (f) => {
      if (f === page.mainFrame()) navigations++;
    });
    await page.goto(`${file.api}/`);
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    await stopSandbox(s);
  }, 60_000);

  it('shows the primary, the replicas and their lag over time', async () => {
    const before = await routing(file.api, file.cluster);
    const primary = before.primary!.id;
    await expect.poll(() => page.locator('section.cluster .topology .primary').innerText(), { timeout: 30_000 }).toMatch(new RegExp(`^primary ${primary}`));
    await expect.poll(() => page.locator('#live').innerText(), { timeout: 30_000 }).toBe('live');
    expect(await page.locator('table.history tbody').innerText()).toContain('no failover or switchover yet');
    // a line per replica once two samples with a known lag are in
    const replicas = before.replicas.map((r) => r.id).sort();
    await expect.poll(() => page.locator('svg.chart polyline.series').evaluateAll((els) => els.map((e) => e.getAttribute('data-node')).sort()), { timeout: 60_000 }).toEqual(replicas);
    const legend = await page.locator('.legend').innerText();
    for (const id of replicas) expect(legend).toMatch(new RegExp(`${id}: \\d+(\\.\\d)? (ms|s)`));
  }, 90_000);

  it('follows a switchover live: new primary, history with duration and loss, explain on a click', async () => {
    const before = await routing(file.api, file.cluster);
    const target = before.replicas.map((r) => r.id).sort().at(-1)!;
    await page.evaluate(() => Object.assign(globalThis, { notReloaded: true }));
    const navigationsBefore = navigations;

    const res = await fetch(`${file.api}/v1/clusters/${file.cluster}/switchover`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${file.adminToken}` },
      body: JSON.stringify({ to: target }),
    });
    expect(res.status).toBe(202);
    const { operationId } = (await res.json()) as { operationId: string };

    // the page, not a reload, shows the new primary …
    await expect.poll(() => page.locator('section.cluster .topology .primary').innerText(), { timeout: 60_000 }).toMatch(new RegExp(`^primary ${target}`));
    // … the switchover, finished, in the history …
    const row = page.locator(`table.history tbody tr[data-op="${operationId}"]`);
    await expect.poll(() => row.count(), { timeout: 60_000 }).toBe(1);
    await expect.poll(() => row.innerText(), { timeout: 60_000 }).toMatch(new RegExp(`switchover ${operationId}\\s+${before.primary!.id} → ${target}\\s+[\\d.]+ (ms|s)\\s+0 B\\s+success`));
    // … and its journal entries in the timeline
    await expect.poll(() => page.locator('.timeline').innerText(), { timeout: 30_000 }).toMatch(/failover\.completed/);

    // … and the chart's legend: the new primary is no replica now, the old one lags by a figure
    await expect.poll(() => page.locator('.legend').innerText(), { timeout: 30_000 }).toMatch(new RegExp(`${target}: not a replica now`));
    await expect.poll(() => page.locator('.legend').innerText(), { timeout: 30_000 }).toMatch(new RegExp(`${before.primary!.id}: \\d+(\\.\\d)? (ms|s)`));

    await row.click();
    const explain = page.locator('.explain');
    await explain.locator('table.steps').waitFor();
    const text = await explain.innerText();
    expect(text).toMatch(new RegExp(`switchover ${operationId}: ${before.primary!.id} → ${target}, success in [\\d.]+ (ms|s)`));
    expect(text).toMatch(/decision\s+switchover requested by \S+/);
    expect(text).not.toMatch(/undefined/);
    const steps = (await explain.locator('table.steps tr').allInnerTexts()).join('\n');
    expect(steps).toMatch(/failover\.started[\s\S]*demotion\.requested[\s\S]*demotion\.succeeded[\s\S]*promotion\.requested[\s\S]*promotion\.succeeded[\s\S]*failover\.completed/);
    expect(steps).toMatch(/\+\d+ ms/);

    expect(await page.evaluate(() => (globalThis as { notReloaded?: boolean }).notReloaded)).toBe(true);
    expect(navigations).toBe(navigationsBefore);
    expect(await page.locator('#live').innerText()).toBe('live');
    if (process.env.SY_DASHBOARD_SCREENSHOT) await page.screenshot({ path: process.env.SY_DASHBOARD_SCREENSHOT, fullPage: true });
    expect(problems).toEqual([]);
  }, 180_000);
});
