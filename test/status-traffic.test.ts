// The status page's traffic picture in a real browser (headless Chromium, driven by
// playwright-core) against the demo: requests for shop/web through fedgate's proxy
// and DNS answers for it show as bands from the client's locality to the zone that
// served them; after fail-zone the new requests' bands appear on the other zones,
// and once the minute the picture shows has moved past the failure (the picture's
// clock is the test's), the failed zone's band is gone; with every zone failed, the
// requests fedgate answers itself are a red band toward no cluster. /debug/traffic
// says the same. The screenshot (docs/images/status-traffic.png) is taken mid-failover.
//
// Addresses: the federation's clusters take 127.247.0.0/16 and the next two blocks (248, 249: three clusters);
// fedgate's listeners are on 127.0.0.1, on free ports.

import { Resolver } from 'node:dns/promises';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Demo, startDemo } from '../src/demo.ts';
import { SLOT_MS } from '../src/observe/traffic.ts';
import type { TrafficView } from '../src/observe/traffic-view.ts';
import { INSTALL_TIMEOUT_MS, openPage } from './helpers/browser.ts';
import { LogCapture } from './helpers/discovery-env.ts';
import { freePort } from './helpers/ports.ts';
import { waitFor } from './helpers/wait.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const ADDRESS_BLOCK = 247;
const WAIT_MS = 20_000;
// The README's picture is refreshed only when asked (FEDGATE_UPDATE_SCREENSHOTS=1):
// every run would otherwise change a committed file.
const SCREENSHOT = process.env.FEDGATE_UPDATE_SCREENSHOTS
  ? join(ROOT, 'docs/images/status-traffic.png')
  : join(ROOT, 'test-results/status-traffic.png');
const WEB = 'web.shop.svc.clusterset.local';

/** One GET through the proxy for shop/web: its status and body. */
function getWeb(proxy: string): Promise<{ status: number; body: string }> {
  const at = new URL(proxy);
  return new Promise((resolve, reject) => {
    const req = request(
      { host: at.hostname, port: at.port, path: '/', headers: { host: WEB } },
      (res) => {
        let body = '';
        res.on('data', (c: Buffer) => {
          body += c.toString();
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', reject);
    req.setTimeout(5000, () => req.destroy(new Error('timed out')));
    req.end();
  });
}

/** One GET through the proxy for shop/web: the zone of the pod that answered. */
async function visitWeb(proxy: string): Promise<string> {
  const { status, body } = await getWeb(proxy);
  if (status !== 200) throw new Error(`HTTP ${status}: ${body}`);
  return (JSON.parse(body) as { zone: string }).zone;
}

const byTestId = (id: string, extra = '') => `[data-testid="${id}"]${extra}`;

describe('status page traffic picture', () => {
  let dir: string;
  let demo: Demo | undefined;
  let browser: Browser | undefined;
  let page: Page;
  let proxy: string;
  /** How far the picture's clock is ahead of the wall clock. */
  let ahead = 0;
  const pageErrors: string[] = [];
  /**
   * Moves the picture's clock to the start of its next slot. A sparkline's last point
   * is the slot now filling, so requests made just before a slot boundary would show
   * there as zero by the time the page has drawn them; from a slot's start there are
   * ten seconds for the requests and a page refresh (one second).
   */
  const toSlotStart = () => {
    const now = Date.now() + ahead;
    ahead += SLOT_MS - (now % SLOT_MS);
  };

  /** The page's shop/web request bands: data-zone → data-count. */
  const httpBands = async (): Promise<Map<string, number>> => {
    // Read in one go: the page redraws the picture whenever its data changes.
    const bands = await page
      .locator(byTestId('traffic-shop/web-http', ' [data-testid="flow"]'))
      .evaluateAll((els) =>
        els.map(
          (e) => [e.getAttribute('data-zone') ?? '', Number(e.getAttribute('data-count'))] as const,
        ),
      );
    const out = new Map<string, number>();
    for (const [zone, n] of bands) out.set(zone, (out.get(zone) ?? 0) + n);
    return out;
  };
  const debugTraffic = async (): Promise<TrafficView> =>
    (await (await fetch(`${demo!.adminUrl}/debug/traffic`)).json()) as TrafficView;
  const webFlows = async () =>
    (await debugTraffic()).services.find((s) => s.service === 'shop/web')?.flows ?? [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fedgate-status-traffic-'));
    const host = '127.0.0.1';
    demo = await startDemo({
      dir,
      addressBlock: ADDRESS_BLOCK,
      apiPort: 0,
      dns: { host, port: await freePort({ udp: true }) },
      http: { host, port: await freePort() },
      admin: { host, port: await freePort() },
      log: new LogCapture('warn').logger,
      trafficNow: () => Date.now() + ahead,
    });
    expect(await demo.fedgate.whenReady()).toEqual({ ready: true, missing: [] });
    proxy = demo.fedgate.addresses().http[0]!;
    ({ browser, page } = await openPage({ width: 1280, height: 900 }, WAIT_MS, pageErrors));
    const res = await page.goto(`${demo.adminUrl}/`, { timeout: WAIT_MS });
    expect(res?.status()).toBe(200);
  }, INSTALL_TIMEOUT_MS + 120_000);

  afterAll(async () => {
    await browser?.close();
    await demo?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('draws shop/web requests from fedgate’s locality to its own zone, and DNS answers for it', async () => {
    toSlotStart();
    for (let i = 0; i < 20; i++) expect(await visitWeb(proxy)).toBe('us-east-a');
    const resolver = new Resolver({ timeout: 2000, tries: 1 });
    resolver.setServers([demo!.fedgate.addresses().dns[0]!]);
    for (let i = 0; i < 5; i++) expect((await resolver.resolve4(WEB)).length).toBeGreaterThan(0);

    await page.waitForSelector(
      byTestId(
        'traffic-shop/web-http',
        ' [data-testid="flow"][data-zone="us-east-a"][data-count="20"]',
      ),
      // A band drawn straight across has no height: attached, not "visible".
      { state: 'attached' },
    );
    expect(await httpBands()).toEqual(new Map([['us-east-a', 20]]));
    const band = page.locator(byTestId('traffic-shop/web-http', ' [data-testid="flow"]'));
    expect(await band.getAttribute('data-from')).toBe('us-east/us-east-a');
    expect(await band.getAttribute('data-failed')).toBe('0');
    // Five answers, each spread over the addresses it carried.
    await page.waitForSelector(byTestId('traffic-shop/web-dns'), { state: 'attached' });
    const dnsCounts = await page
      .locator(byTestId('traffic-shop/web-dns', ' [data-testid="flow"]'))
      .evaluateAll((els) => els.map((e) => Number(e.getAttribute('data-count'))));
    expect(dnsCounts.reduce((a, b) => a + b, 0)).toBeCloseTo(5, 3);
    // The sparklines: shop/web's rate in the slot now filling is above zero.
    const rate = page.locator(byTestId('spark-service-shop/web-rate'));
    expect(Number(await rate.getAttribute('data-last'))).toBeGreaterThan(0);
    await page.locator(byTestId('cluster-traffic-alpha')).waitFor();

    const flows = await webFlows();
    expect(flows.filter((f) => f.protocol === 'http')).toEqual([
      {
        protocol: 'http',
        from: 'us-east/us-east-a',
        cluster: 'alpha',
        zone: 'us-east-a',
        count: 20,
        failed: 0,
      },
    ]);
  });

  it('after fail-zone us-east-a the new bands go to the other zones, and the failed zone’s leaves with the minute', async () => {
    await page.click(byTestId('action-fail-zone-us-east-a'));
    await page.waitForSelector(byTestId('action-result', '[data-state="ok"]'));
    await page.waitForSelector(byTestId('endpoints-shop/web-alpha-us-east-a', '[data-ready="0"]'));
    for (let i = 0; i < 10; i++) expect(await visitWeb(proxy)).toMatch(/^us-east-[bc]$/);
    // While the failure is inside the picture's minute: both, the new ones beside the old.
    await waitFor(
      async () => {
        const b = await httpBands();
        return (
          b.get('us-east-a') === 20 && (b.get('us-east-b') ?? 0) + (b.get('us-east-c') ?? 0) === 10
        );
      },
      WAIT_MS,
      'the old band on us-east-a and 10 requests on us-east-b/c',
    );
    await mkdir(dirname(SCREENSHOT), { recursive: true });
    await page.locator(byTestId('traffic')).screenshot({ path: SCREENSHOT });

    // A minute on: the requests before the failure are out of the picture.
    ahead += 60_000;
    for (let i = 0; i < 10; i++) expect(await visitWeb(proxy)).toMatch(/^us-east-[bc]$/);
    await waitFor(
      async () => {
        const b = await httpBands();
        return !b.has('us-east-a') && (b.get('us-east-b') ?? 0) + (b.get('us-east-c') ?? 0) === 10;
      },
      WAIT_MS,
      'no band on us-east-a, 10 requests on us-east-b/c',
    );
    const http = (await webFlows()).filter((f) => f.protocol === 'http');
    expect(http.some((f) => f.zone === 'us-east-a')).toBe(false);
    expect(http.reduce((a, f) => a + f.count, 0)).toBe(10);
    expect(http.every((f) => f.failed === 0 && /^us-east-[bc]$/.test(f.zone))).toBe(true);
    // The 15 minutes keep both: shop/web's series has requests the 20 and 20 requests and the 5 DNS answers.
    const series =
      (await debugTraffic()).services.find((s) => s.service === 'shop/web')?.series ?? [];
    expect(series).toHaveLength(90);
    expect(series.reduce((a, p) => a + p.rate, 0) * 10).toBeCloseTo(45, 6);
    expect(pageErrors).toEqual([]);
  });
  it('draws requests nothing could serve as a red band toward no cluster', async () => {
    for (const z of ['us-east-b', 'us-east-c', 'eu-west-a']) {
      await page.click(byTestId(`action-fail-zone-${z}`));
      await page.waitForSelector(byTestId(`zone-${z}`, '[data-state="failed"]'));
    }
    await waitFor(
      async () => (await getWeb(proxy)).status >= 500,
      WAIT_MS,
      'shop/web failing with every zone failed',
    );
    // fedgate's own answers (502 when its tries could not connect, 503 with no endpoint left).
    toSlotStart();
    for (let i = 0; i < 5; i++) expect((await getWeb(proxy)).status).toBeGreaterThanOrEqual(502);
    const failed = page.locator(
      byTestId('traffic-shop/web-http', ' [data-testid="flow"][data-cluster=""]'),
    );
    await failed.waitFor({ state: 'attached' });
    await waitFor(
      async () => Number(await failed.getAttribute('data-failed')) >= 6,
      WAIT_MS,
      'the failed requests on the page',
    );
    // All of that band is failed: drawn red only.
    expect(await failed.getAttribute('data-failed')).toBe(await failed.getAttribute('data-count'));
    expect(await failed.locator('path.band.failed').count()).toBe(1);
    expect(await failed.locator('path.band.ok').count()).toBe(0);
    const errors = page.locator(byTestId('spark-service-shop/web-errors'));
    expect(Number(await errors.getAttribute('data-last'))).toBeGreaterThan(0);
    const flow = (await webFlows()).find((f) => f.protocol === 'http' && f.cluster === '');
    expect(flow?.failed).toBe(flow?.count);
    expect(pageErrors).toEqual([]);
  });
});
