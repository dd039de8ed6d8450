// The status page in a real browser (headless Chromium from Debian, driven by
// playwright-core) against the demo: the local federation with fedgate in front and
// its failure controls. The page lists every cluster and federated service, its
// fail-zone button breaks a zone, and the page follows without a reload: the zone
// shown failed, its endpoints not ready, the action and the failover in the events.
//
// Addresses: the federation's clusters take 127.160–162.0.0/16; fedgate's listeners
// are on 127.0.0.1, on free ports.
import { mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Demo, startDemo } from '../src/demo.ts';
import { INSTALL_TIMEOUT_MS, openPage } from './helpers/browser.ts';
import { LogCapture } from './helpers/discovery-env.ts';
import { freePort } from './helpers/ports.ts';
import { waitFor } from './helpers/wait.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const ADDRESS_BLOCK = 160;
const WAIT_MS = 20_000;
const SCREENSHOT = join(ROOT, 'test-results/status-page.png');

/** One GET through the demo's proxy: its status and body. */
function get(
  proxy: string,
  path: string,
  headers: Record<string, string>,
): Promise<{ status: number; body: string }> {
  const at = new URL(proxy);
  return new Promise((resolve, reject) => {
    const req = request({ host: at.hostname, port: at.port, path, headers }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => {
        body += c.toString();
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.setTimeout(5000, () => req.destroy(new Error('timed out')));
    req.end();
  });
}

/** One GET through the demo's proxy for shop/web; the zone of the pod that answered. */
async function visitWeb(proxy: string): Promise<string> {
  const { status, body } = await get(proxy, '/', { host: 'web.shop.svc.clusterset.local' });
  try {
    return (JSON.parse(body) as { zone: string }).zone;
  } catch {
    throw new Error(`HTTP ${status}: ${body}`);
  }
}

const byTestId = (id: string, extra = '') => `[data-testid="${id}"]${extra}`;

describe('status page', () => {
  let dir: string;
  let demo: Demo | undefined;
  let browser: Browser | undefined;
  let page: Page;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fedgate-status-page-'));
    const host = '127.0.0.1';
    demo = await startDemo({
      dir,
      addressBlock: ADDRESS_BLOCK,
      apiPort: 0,
      dns: { host, port: await freePort({ udp: true }) },
      http: { host, port: await freePort() },
      admin: { host, port: await freePort() },
      log: new LogCapture('warn').logger,
    });
    const ready = await demo.fedgate.whenReady();
    expect(ready).toEqual({ ready: true, missing: [] });
    // A script error or a blocked resource (CSP) would show in pageErrors.
    ({ browser, page } = await openPage({ width: 1280, height: 1000 }, WAIT_MS, pageErrors));
  }, INSTALL_TIMEOUT_MS + 120_000);

  afterAll(async () => {
    await browser?.close();
    await demo?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('shows every member cluster, every federated service and the events so far', async () => {
    const res = await page.goto(`${demo!.adminUrl}/`, { timeout: WAIT_MS });
    expect(res?.status()).toBe(200);
    for (const c of ['alpha', 'beta', 'gamma']) {
      await page.waitForSelector(byTestId(`cluster-${c}`, '[data-state="synced"]'));
    }
    for (const s of ['shop/web', 'shop/api', 'data/db']) {
      await page.waitForSelector(byTestId(`service-${s}`));
    }
    // Deployed but never exported: not federated.
    expect(await page.locator(byTestId('service-shop/internal')).count()).toBe(0);
    // Endpoints by zone: shop/web runs 2 pods in each zone of each cluster.
    const row = page.locator(byTestId('endpoints-shop/web-alpha-us-east-a'));
    await page.waitForSelector(byTestId('endpoints-shop/web-alpha-us-east-a', '[data-ready="2"]'));
    expect(await row.getAttribute('data-not-ready')).toBe('0');
    // Each cluster's first sync is in the journal, and came over the event stream.
    await page.waitForSelector(byTestId('live', '[data-state="live"]'));
    const clusterEvents = page.locator(byTestId('event', '[data-kind="cluster"]'));
    // Locators, not waitForFunction: a string predicate is eval'd, which the page's CSP forbids.
    await clusterEvents.nth(2).waitFor({ timeout: WAIT_MS });
    expect((await clusterEvents.allTextContents()).join('\n')).toMatch(/cluster alpha: .*synced/);
    // Data is shown as text, never parsed as markup.
    const markup = '<img src="x" data-testid="injected"> & <b>bold</b>';
    demo!.fedgate.journal.record({ kind: 'action', message: markup });
    await page.waitForSelector(byTestId('event', ':has-text("<b>bold</b>")'));
    expect(await page.locator(byTestId('injected')).count()).toBe(0);
    expect(await page.locator(byTestId('events')).textContent()).toContain(markup);
    // The demo's buttons, one per zone and cluster action.
    await page.waitForSelector(byTestId('demo'), { state: 'visible' });
    for (const z of ['us-east-a', 'us-east-b', 'us-east-c', 'eu-west-a']) {
      await page.waitForSelector(byTestId(`zone-${z}`, '[data-state="up"]'));
      expect(await page.locator(byTestId(`action-fail-zone-${z}`)).isEnabled()).toBe(true);
      expect(await page.locator(byTestId(`action-restore-zone-${z}`)).isDisabled()).toBe(true);
    }
    for (const c of ['alpha', 'beta', 'gamma']) {
      for (const a of ['fail-cluster', 'restore-cluster', 'api-down', 'api-up']) {
        expect(await page.locator(byTestId(`action-${a}-${c}`)).count()).toBe(1);
      }
    }
    // How each service is checked: the demo's services opt in by annotation.
    expect(await page.locator(byTestId('checks-shop/web')).textContent()).toMatch(
      /checked every 5s \(annotation\)/,
    );
  });

  it('shows the Gateway API: Gateway shop/edge, route shop/shop Accepted, and rule shares that follow requests', async () => {
    const section = page.locator(byTestId('gateway-api'));
    await section.waitFor({ state: 'visible' });
    const gateway = page.locator(byTestId('gateway-shop/edge'));
    await gateway
      .locator('[data-condition="Accepted"][data-status="True"]')
      .first()
      .waitFor({ timeout: WAIT_MS });
    expect(await gateway.locator(byTestId('listener-http')).textContent()).toMatch(/^http1/);
    const route = page.locator(byTestId('route-shop/shop'));
    const accepted = route.locator(
      byTestId('parent-shop/edge', ' [data-condition="Accepted"][data-status="True"]'),
    );
    await accepted.waitFor({ timeout: WAIT_MS });
    expect(await accepted.getAttribute('title')).toMatch(/^Accepted: True/);
    // The rules in order: /api, x-version: v2, the redirect, and the 90/10 split.
    const rule = (i: number) => route.locator(byTestId(`rule-${i}`));
    expect(await rule(0).textContent()).toContain('PathPrefix /api');
    expect(await rule(3).textContent()).toMatch(
      /shop\/web:80 · weight 90.*shop\/web-canary:80 · weight 10/,
    );
    const share = (i: number) => rule(i).locator(byTestId('share'));
    const requests = async (i: number) =>
      Number(await rule(i).locator(byTestId('requests')).textContent());
    // No other test sends shop.example.test requests: nothing matched yet.
    expect([await requests(0), await requests(1)]).toEqual([0, 0]);
    expect(await share(0).textContent()).toBe('–');

    const proxy = demo!.fedgate.addresses().http[0]!;
    for (let i = 0; i < 3; i++) {
      expect((await get(proxy, '/api/orders', { host: 'shop.example.test' })).status).toBe(200);
    }
    await rule(0).locator(byTestId('requests', ':text-is("3")')).waitFor({ timeout: WAIT_MS });
    expect(await share(0).textContent()).toBe('100 %');
    expect(await share(1).textContent()).toBe('0 %');
    for (let i = 0; i < 3; i++) {
      const headers = { host: 'shop.example.test', 'x-version': 'v2' };
      expect((await get(proxy, '/', headers)).status).toBe(200);
    }
    await rule(1).locator(byTestId('requests', ':text-is("3")')).waitFor({ timeout: WAIT_MS });
    // The two rules split them evenly.
    expect(await share(0).textContent()).toBe('50 %');
    expect(await share(1).textContent()).toBe('50 %');
    expect(await share(2).textContent()).toBe('0 %');
    expect(pageErrors).toEqual([]);
  });

  it('fail-zone us-east-a shows the zone failed, its endpoints not ready and the failover, without a reload', async () => {
    // Survives only if the page is not reloaded.
    await page.evaluate(`window.marker = 'same page'`);
    const webFailovers = page.locator(byTestId('event', '[data-kind="failover"]'), {
      hasText: 'shop/web',
    });
    const failoversBefore = await webFailovers.count();
    // Failovers are counted where traffic moves: a client in fedgate's zone uses shop/web
    // before the failure and again after it.
    expect(await visitWeb(demo!.fedgate.addresses().http[0]!)).toBe('us-east-a');

    await page.click(byTestId('action-fail-zone-us-east-a'));
    await page.waitForSelector(byTestId('action-result', '[data-state="ok"]'));
    await page.waitForSelector(byTestId('zone-us-east-a', '[data-state="failed"]'));
    expect(await page.locator(byTestId('action-restore-zone-us-east-a')).isEnabled()).toBe(true);
    await page.waitForSelector(byTestId('endpoints-shop/web-alpha-us-east-a', '[data-ready="0"]'));
    // The other zones keep serving.
    await page.waitForSelector(byTestId('endpoints-shop/web-alpha-us-east-b', '[data-ready="2"]'));
    // fedgate runs in us-east-a: its plan for shop/web leaves the zone for the region.
    expect(await visitWeb(demo!.fedgate.addresses().http[0]!)).toMatch(/^us-east-[bc]$/);
    await waitFor(
      async () => (await webFailovers.count()) > failoversBefore,
      WAIT_MS,
      'a shop/web failover event on the page',
    );
    const actions = await page.locator(byTestId('event', '[data-kind="action"]')).allTextContents();
    expect(actions.join('\n')).toContain('fail-zone us-east-a');
    expect(await page.locator(byTestId('plan-shop/web')).textContent()).toMatch(/region/);
    expect(await page.evaluate('window.marker')).toBe('same page');

    await mkdir(dirname(SCREENSHOT), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    expect((await stat(SCREENSHOT)).size).toBeGreaterThan(0);
  });

  it('restore-zone us-east-a brings the zone and its endpoints back', async () => {
    await page.click(byTestId('action-restore-zone-us-east-a'));
    await page.waitForSelector(byTestId('zone-us-east-a', '[data-state="up"]'));
    await page.waitForSelector(byTestId('endpoints-shop/web-alpha-us-east-a', '[data-ready="2"]'));
    const actions = await page.locator(byTestId('event', '[data-kind="action"]')).allTextContents();
    expect(actions.join('\n')).toContain('restore-zone us-east-a');
    expect(await page.locator(byTestId('action-fail-zone-us-east-a')).isEnabled()).toBe(true);
    expect(await page.evaluate('window.marker')).toBe('same page');
    expect(pageErrors).toEqual([]);
  });

  it('scales a service in one zone from its endpoint row, up and back down', async () => {
    const row = 'endpoints-shop/web-beta-us-east-c';
    await page.waitForSelector(byTestId(row, '[data-ready="2"]'));
    await page.click(byTestId('scale-shop/web-beta-us-east-c-up'));
    await page.waitForSelector(byTestId(row, '[data-ready="3"]'), { timeout: WAIT_MS });
    expect(
      (await demo!.fed.describe()).clusters
        .find((c) => c.name === 'beta')!
        .pods.filter((p) => p.service === 'shop/web' && !p.terminating),
    ).toHaveLength(3);
    // The page takes one action at a time: the endpoints can show the new pod before the
    // scale's answer is back, and a click until then is not taken.
    await page
      .locator('#action-result[data-state="ok"]', { hasText: 'scale shop/web beta us-east-c 3:' })
      .waitFor({ timeout: WAIT_MS });
    await page.click(byTestId('scale-shop/web-beta-us-east-c-down'));
    await page.waitForSelector(byTestId(row, '[data-ready="2"]'), { timeout: WAIT_MS });
    const actions = await page.locator(byTestId('event', '[data-kind="action"]')).allTextContents();
    expect(actions.join('\n')).toContain('scale shop/web beta us-east-c 3');
    expect(pageErrors).toEqual([]);
  });
});
