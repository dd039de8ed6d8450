// fedgate's metrics as Prometheus sees them: `fedgate demo` (the local federation with
// fedgate in front of it) in-process, a real Prometheus scraping its admin listener
// every second, DNS questions from dig and requests through the proxy, a failed zone
// for a failover, and then every assertion made through Prometheus's query API: the
// series arrive, with the labels a dashboard would group by, and none holds an
// address. promtool lints the exposition text itself.
//
// Addresses: the demo's federation takes 127.170–172.0.0/16; every listener is on
// 127.0.0.1 with a port the kernel picks.

import { mkdtemp, rm } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Demo, startDemo } from '../src/demo.ts';
import { LogCapture } from './helpers/discovery-env.ts';
import { Prometheus, promtoolCheckMetrics, type Sample } from './helpers/prometheus.ts';
import { dig } from './helpers/tools.ts';
import { waitFor } from './helpers/wait.ts';

const ADDRESS_BLOCK = 170;
const WEB = 'web.shop.svc.clusterset.local';
const API = 'api.shop.svc.clusterset.local';
const WAIT_MS = 20_000;

interface Answer {
  status: number;
  cluster?: string | undefined;
  zone?: string | undefined;
}

/** One GET through the proxy with a Host header, on its own connection; the backend's JSON when 200. */
function get(port: number, host: string, path = '/'): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: '127.0.0.1', port, path, headers: { host }, agent: false, timeout: 10_000 },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          text += c;
        });
        res.on('end', () => {
          const status = res.statusCode ?? 0;
          let body: { cluster?: string; zone?: string } = {};
          if (String(res.headers['content-type']).startsWith('application/json')) {
            body = JSON.parse(text) as typeof body;
          }
          resolve({ status, cluster: body.cluster, zone: body.zone });
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`GET ${host}${path}: no answer in 10 s`)));
    req.on('error', reject);
    req.end();
  });
}

const IPV4 = /(^|[^0-9])\d{1,3}(\.\d{1,3}){3}([^0-9]|$)/;
const IPV6 = /[0-9a-f]{0,4}:[0-9a-f]{0,4}:[0-9a-f]{0,4}/i;

describe('fedgate metrics scraped by a real Prometheus', () => {
  const log = new LogCapture('warn');
  let dir: string;
  let demo: Demo;
  let prom: Prometheus;
  let proxyPort: number;
  let dnsServer: { host: string; port: number };
  let adminUrl: string;
  /** Requests that got a 200 from shop/web, counted as sent. */
  let webOk = 0;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fedgate-observe-prom-'));
    demo = await startDemo({
      dir,
      addressBlock: ADDRESS_BLOCK,
      apiPort: 0,
      dns: { host: '127.0.0.1', port: 0 },
      http: { host: '127.0.0.1', port: 0 },
      admin: { host: '127.0.0.1', port: 0 },
      log: log.logger,
    });
    const ready = await demo.fedgate.whenReady();
    expect(ready).toEqual({ ready: true, missing: [] });
    proxyPort = demo.fedgate.proxy.addresses().http[0]!.port;
    const udp = demo.fedgate.dns.addresses().udp[0]!;
    dnsServer = { host: udp.address, port: udp.port };
    adminUrl = demo.adminUrl;
    const admin = demo.fedgate.admin.address;
    prom = await Prometheus.start({ target: `${admin.host}:${admin.port}` });
    // The first scrapes see fedgate before any traffic, so rates have a start.
    await prom.waitForScrape();
  });

  afterAll(async () => {
    await prom?.stop();
    await demo?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('scrapes the admin listener: the target is up', async () => {
    const targets = await prom.targets();
    expect(targets).toHaveLength(1);
    expect(targets[0]).toMatchObject({ health: 'up', lastError: '' });
    expect(targets[0]!.scrapeUrl).toBe(`${adminUrl}/metrics`);
    const up = await prom.query('up{job="fedgate"}');
    expect(up.map((s) => s.value)).toEqual([1]);
  });

  it('records DNS answers, proxied requests and a failover, and Prometheus gets them with their labels', async () => {
    // Traffic from the demo's own zone (127.0.0.1 is not in its locality table).
    // Every 200 is counted, including those of the waits (answered from anywhere).
    const counted = async (path = '/') => {
      const r = await get(proxyPort, WEB, path);
      if (r.status === 200) webOk++;
      return r;
    };
    await waitFor(
      async () => (await counted()).zone === 'us-east-a',
      WAIT_MS,
      'shop/web to be served from us-east-a',
      100,
    );
    for (let i = 0; i < 20; i++) {
      const r = await counted(`/hello?i=${i}`);
      expect(r).toMatchObject({ status: 200, zone: 'us-east-a', cluster: 'alpha' });
    }
    for (let i = 0; i < 3; i++) expect((await get(proxyPort, WEB, '/status/404')).status).toBe(404);
    // 503s from the upstream: retried on other endpoints, then passed on. Ten first
    // tries over us-east-a's two endpoints give one of them five 503s in a row at
    // least: outlier detection finds it.
    for (let i = 0; i < 10; i++)
      expect((await get(proxyPort, API, '/status/503')).status).toBe(503);
    expect((await get(proxyPort, 'nobody.example.org')).status).toBe(404);

    const q = (args: string[]) => dig(dnsServer, args);
    expect((await q([WEB, 'A'])).status).toBe('NOERROR');
    expect((await q(['web.shop.galaxy.svc.example.test', 'A'])).status).toBe('NOERROR');
    expect((await q(['web.shop.galaxy.svc.us-east.example.test', 'A'])).status).toBe('NOERROR');
    const aaaa = await q([WEB, 'AAAA']);
    expect({ status: aaaa.status, answers: aaaa.answers }).toEqual({
      status: 'NOERROR',
      answers: [],
    });
    const srv = await q([`_http._tcp.${WEB}`, 'SRV']);
    expect(srv.answers.map((a) => a.type)).toEqual(['SRV']);
    expect((await q(['www.example.com', 'A'])).status).toBe('REFUSED');
    expect((await q(['nope.shop.svc.clusterset.local', 'A'])).status).toBe('NXDOMAIN');

    // The demo's fedgate sits in us-east-a: failing it moves its clients' traffic to the region.
    await demo.fed.failZone('us-east-a');
    const moved = await waitFor(
      async () => {
        const r = await counted();
        return r.status === 200 && r.zone !== 'us-east-a' ? r : undefined;
      },
      WAIT_MS,
      'traffic to leave us-east-a',
      100,
    );
    expect(['us-east-b', 'us-east-c']).toContain(moved.zone);
    for (let i = 0; i < 10; i++) {
      const r = await get(proxyPort, WEB);
      expect(r.status).toBe(200);
      expect(['us-east-b', 'us-east-c']).toContain(r.zone);
      webOk++;
    }
    expect((await q([WEB, 'A'])).status).toBe('NOERROR');

    await prom.waitForScrape();
    const by = (samples: Sample[], label: string) =>
      Object.fromEntries(samples.map((s) => [s.metric[label], s.value]));

    // HTTP: by service, answering cluster and zone, status class.
    const ok = await prom.query('fedgate_http_requests_total{service="shop/web",code="2xx"}');
    // Only us-east answered: alpha (us-east-a, then us-east-b) and perhaps beta (us-east-c).
    const where = ok.map((s) => `${s.metric.cluster}/${s.metric.zone}`);
    expect(where).toContain('alpha/us-east-a');
    for (const w of where)
      expect(['alpha/us-east-a', 'alpha/us-east-b', 'beta/us-east-c']).toContain(w);
    expect(ok.every((s) => s.metric.job === 'fedgate')).toBe(true);
    expect(ok.reduce((n, s) => n + s.value, 0)).toBe(webOk);
    const okZones = new Set(ok.map((s) => s.metric.zone));
    expect(okZones.has('us-east-a')).toBe(true);
    expect(okZones.has('us-east-b') || okZones.has('us-east-c')).toBe(true);
    const notFound = await prom.query(
      'sum(fedgate_http_requests_total{service="shop/web",code="4xx"})',
    );
    expect(notFound.map((s) => s.value)).toEqual([3]);
    const failing = await prom.query('fedgate_http_requests_total{service="shop/api",code="5xx"}');
    expect(failing.length).toBeGreaterThan(0);
    const retries = await prom.query(
      'sum(fedgate_http_retries_total{service="shop/api",reason="status"})',
    );
    expect(retries[0]?.value).toBeGreaterThanOrEqual(1);
    const detected = await prom.query(
      'fedgate_outlier_ejections_detected_total{service="shop/api"}',
    );
    expect(detected.map((s) => s.metric.reason)).toEqual(['consecutive-5xx']);
    expect(detected[0]!.value).toBeGreaterThanOrEqual(1);
    const enforced = await prom.query('fedgate_outlier_ejections_enforced_total');
    expect(enforced.every((s) => s.metric.service === 'shop/api')).toBe(true);
    const tiers = by(
      await prom.query('fedgate_http_served_tier_total{service="shop/web"}'),
      'tier',
    );
    expect(tiers.zone).toBeGreaterThanOrEqual(21);
    expect(tiers.region).toBeGreaterThanOrEqual(11);
    const p50 = await prom.query(
      'histogram_quantile(0.5, sum by (le) (fedgate_http_request_duration_seconds_bucket{service="shop/web"}))',
    );
    expect(p50).toHaveLength(1);
    expect(Number.isFinite(p50[0]!.value)).toBe(true);
    expect(p50[0]!.value).toBeGreaterThan(0);

    // DNS: by query type, name scheme and rcode; answers by the tier they came from.
    const dns = await prom.query('fedgate_dns_queries_total');
    const kinds = new Set(dns.map((s) => `${s.metric.qtype} ${s.metric.scheme} ${s.metric.rcode}`));
    for (const kind of [
      'A mcs NOERROR',
      'AAAA mcs NOERROR',
      'SRV mcs NOERROR',
      'A federation NOERROR',
      'A regional NOERROR',
      'A outside REFUSED',
      'A mcs NXDOMAIN',
    ])
      expect(kinds, kind).toContain(kind);
    const aaaaCount = await prom.query('fedgate_dns_queries_total{qtype="AAAA"}');
    expect(aaaaCount.map((s) => s.value)).toEqual([1]);
    const dnsTiers = by(await prom.query('fedgate_dns_served_tier_total'), 'tier');
    expect(dnsTiers.zone).toBeGreaterThanOrEqual(1);
    expect(dnsTiers.region).toBeGreaterThanOrEqual(1);
    const rrl = await prom.query('fedgate_dns_rrl_total');
    expect(rrl.every((s) => s.metric.action === 'slip' || s.metric.action === 'drop')).toBe(true);

    // The failover, from the zone tier to the region tier, for shop/web.
    const failovers = await prom.query('fedgate_failovers_total{service="shop/web"}');
    expect(failovers.map((s) => [s.metric.from, s.metric.to, s.value])).toEqual([
      ['zone', 'region', 1],
    ]);

    // Member clusters: in sync, watched, their changes propagated.
    const up = by(await prom.query('fedgate_cluster_up{state="synced"}'), 'cluster');
    expect(up).toEqual({ alpha: 1, beta: 1, gamma: 1 });
    const age = by(await prom.query('fedgate_cluster_last_sync_age_seconds'), 'cluster');
    expect(Object.keys(age).sort()).toEqual(['alpha', 'beta', 'gamma']);
    for (const v of Object.values(age)) expect(v).toBeGreaterThanOrEqual(0);
    // The failed zone changed alpha's EndpointSlices and Nodes (the first list is no event).
    const events = await prom.query('fedgate_watch_events_total{cluster="alpha"}');
    const eventKinds = new Set(events.map((s) => `${s.metric.resource} ${s.metric.type}`));
    expect(eventKinds).toContain('endpointslices MODIFIED');
    expect(eventKinds).toContain('nodes MODIFIED');
    const relists = await prom.query('fedgate_watch_relists_total');
    expect(relists.every((s) => ['expired', 'error'].includes(s.metric.reason ?? ''))).toBe(true);
    const propagated = await prom.query('fedgate_propagation_seconds_count');
    expect(propagated).toHaveLength(1);
    expect(propagated[0]!.value).toBeGreaterThan(0);
    const version = await prom.query('fedgate_catalog_version');
    expect(version[0]!.value).toBeGreaterThan(0);

    // Endpoints by state: the failed zone's are not ready.
    const endpoints = await prom.query('fedgate_endpoints{service="shop/web"}');
    const byPlace = Object.fromEntries(
      endpoints.map((s) => [`${s.metric.cluster}/${s.metric.zone}/${s.metric.state}`, s.value]),
    );
    expect(byPlace).toMatchObject({
      'alpha/us-east-a/not-ready': 2,
      'alpha/us-east-b/ready': 2,
      'beta/us-east-c/ready': 2,
      'gamma/eu-west-a/ready': 2,
    });

    // Active checks have run against the endpoints.
    const checks = await prom.waitForQuery(
      'sum by (result) (fedgate_health_checks_total{service="shop/web"})',
      (s) => s.some((x) => x.metric.result === 'pass' && x.value > 0),
    );
    expect(checks.every((s) => ['pass', 'fail'].includes(s.metric.result ?? ''))).toBe(true);

    // A latency quantile as a dashboard computes it, from rates: it needs requests
    // between two scrapes of series Prometheus already has.
    for (let i = 0; i < 5; i++) expect((await get(proxyPort, WEB)).status).toBe(200);
    await prom.waitForScrape();
    const p99 = await prom.query(
      'histogram_quantile(0.99, sum by (le) (rate(fedgate_http_request_duration_seconds_bucket{service="shop/web"}[5m])))',
    );
    expect(p99).toHaveLength(1);
    expect(Number.isFinite(p99[0]!.value)).toBe(true);
    expect(p99[0]!.value).toBeGreaterThan(0);
  });

  it('never puts an address in a label value', async () => {
    const all = await prom.query('{job="fedgate"}');
    expect(all.length).toBeGreaterThan(50);
    const offending: string[] = [];
    for (const s of all) {
      for (const [label, value] of Object.entries(s.metric)) {
        if (label === 'instance') continue; // Prometheus's own: the scrape target
        if (IPV4.test(value) || IPV6.test(value))
          offending.push(`${s.metric.__name__}{${label}="${value}"}`);
      }
    }
    expect(offending).toEqual([]);
    // The patterns do catch addresses (and not bucket bounds or versions).
    expect(
      ['127.170.1.1', '127.10.0.1:8080', '::1', '::ffff:7f00:1'].every(
        (v) => IPV4.test(v) || IPV6.test(v),
      ),
    ).toBe(true);
    expect(
      ['0.00005', '2.5', 'v24.11.1', 'us-east-a'].some((v) => IPV4.test(v) || IPV6.test(v)),
    ).toBe(false);
  });

  it('serves exposition text that promtool check metrics finds nothing wrong with', async () => {
    const res = await fetch(`${adminUrl}/metrics`, { signal: AbortSignal.timeout(5000) });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    expect(text).toContain('fedgate_http_requests_total');
    const lint = await promtoolCheckMetrics(text);
    expect({ code: lint.code, stdout: lint.stdout, stderr: lint.stderr }).toEqual({
      code: 0,
      stdout: '',
      stderr: '',
    });
  });
});
