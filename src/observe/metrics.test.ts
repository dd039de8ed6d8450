import { describe, expect, it } from 'vitest';
import { clusterStatus } from '../../test/fixtures/catalog.ts';
import { service } from '../../test/fixtures/services.ts';
import type { Snapshot } from '../catalog/model.ts';
import type { EndpointHealth } from '../routing/types.ts';
import type { WatchStats } from '../watch/resource-watch.ts';
import { EventJournal } from './events.ts';
import { Metrics } from './metrics.ts';
import { type MetricsJson, mergeJson, mergeMetrics, risingOnly } from './metrics-merge.ts';

const web = service([
  {
    cluster: 'alpha',
    endpoints: [
      { address: '127.10.0.1', zone: 'a' },
      { address: '127.10.0.2', zone: 'a' },
      { address: '127.10.0.3', zone: 'b', ready: false },
      { address: '127.10.0.4', zone: 'b', terminating: true, ready: false },
      { address: '127.10.0.5', zone: 'b' },
      { address: '127.10.0.6', zone: 'b' },
    ],
  },
]);
const snapshot: Snapshot = {
  version: 7,
  createdAt: 0,
  services: new Map([[web.key, web]]),
  clusters: new Map([
    ['alpha', clusterStatus('alpha', { state: 'synced', lastSyncAt: 1_000 })],
    ['beta', clusterStatus('beta', { state: 'stale', lastSyncAt: 500 })],
  ]),
};

const verdicts = new Map<string, EndpointHealth>([
  [
    'alpha/127.10.0.5',
    { check: 'healthy', ejectedUntil: 9_000, ejectionReason: 'consecutive-5xx' },
  ],
  ['alpha/127.10.0.6', { check: 'unhealthy', checkDetail: 'HTTP 503' }],
]);

const watch: WatchStats = {
  events: { ADDED: 3, MODIFIED: 4, DELETED: 1, BOOKMARK: 2 },
  relists: { expired: 1, error: 0 },
};

function setup(over: { serving?: boolean } = {}) {
  let propagate: (s: number) => void = () => {};
  const journal = new EventJournal({ now: () => 3_000 });
  const dnsStats = {
    kinds: new Map([
      ['A|federation|NOERROR', 5],
      ['AAAA|outside|REFUSED', 2],
    ]),
    tiers: { zone: 4, region: 1 } as Record<string, number>,
    rrlSlipped: 3,
    rrlDropped: 6,
  };
  const m = new Metrics({
    discovery: {
      catalog: {
        current: () => snapshot,
        onPropagation: (fn) => {
          propagate = fn;
          return () => {};
        },
      },
      watchers: [{ name: 'alpha', watchStats: () => new Map([['endpointslices', watch]]) }],
      health: {
        active: {
          results: () => new Map([['shop/web|alpha|fail', 3]]),
          stats: () => ({
            targets: 12,
            inFlight: 2,
            queued: 10,
            effectiveIntervalMs: 7500,
            probes: 3,
            passed: 0,
            failed: 3,
            exhausted: 0,
          }),
        },
        store: { endpoints: (svc) => (svc === web.key ? verdicts : undefined) },
      },
    },
    journal,
    now: () => 3_000,
    ...over,
  });
  m.attachDns({
    responder: { stats: dnsStats },
    tcpClosed: new Map([
      ['io_timeout', 2],
      ['evicted', 1],
    ]),
  });
  return { m, journal, propagate: (s: number) => propagate(s), dnsStats };
}

describe('Metrics', () => {
  it('counts proxied requests by service, cluster, zone and status class, with durations and tiers', async () => {
    const { m } = setup();
    const r = {
      service: 'shop/web',
      cluster: 'alpha',
      zone: 'a',
      tier: 'zone',
      outcome: 'relayed',
    } as const;
    m.request({ ...r, status: 200, seconds: 0.002 });
    m.request({ ...r, status: 204, seconds: 0.004 });
    m.request({
      service: 'shop/web',
      cluster: '',
      zone: '',
      tier: '',
      status: 503,
      seconds: 1e-4,
      outcome: 'overflowed',
    });
    m.retry('shop/web', 'connect');
    const { text, contentType } = await m.scrape();
    expect(contentType).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(text).toContain(
      'fedgate_http_requests_total{service="shop/web",cluster="alpha",zone="a",code="2xx",outcome="relayed",route=""} 2',
    );
    expect(text).toContain(
      'fedgate_http_requests_total{service="shop/web",cluster="",zone="",code="5xx",outcome="overflowed",route=""} 1',
    );
    expect(text).toContain(
      'fedgate_http_request_duration_seconds_bucket{le="0.0025",service="shop/web",code="2xx"} 1',
    );
    expect(text).toContain(
      'fedgate_http_request_duration_seconds_count{service="shop/web",code="2xx"} 2',
    );
    expect(text).toContain('fedgate_http_retries_total{service="shop/web",reason="connect"} 1');
    expect(text).toContain('fedgate_http_served_tier_total{service="shop/web",tier="zone"} 2');
    expect(text).not.toContain('tier=""');
  });

  it('records the traffic picture: the routed locality, failures, DNS answers; nothing without a service', async () => {
    const { m } = setup();
    const r = { service: 'shop/web', cluster: 'alpha', zone: 'a', tier: 'zone', seconds: 0.002 };
    const east = { region: 'us-east', zone: 'us-east-a', subzone: undefined };
    m.request({ ...r, outcome: 'relayed', status: 200, locality: east });
    m.request({ ...r, outcome: 'relayed', status: 503, locality: east });
    m.request({ ...r, cluster: '', zone: '', outcome: 'failed', status: 502, locality: east });
    m.request({ ...r, service: '', cluster: '', zone: '', outcome: 'rejected', status: 404 });
    const v = await m.trafficView();
    expect(v.services.map((s) => s.service)).toEqual(['shop/web']);
    expect(v.services[0]?.flows).toEqual([
      { protocol: 'http', from: 'us-east/us-east-a', cluster: '', zone: '', count: 1, failed: 1 },
      {
        protocol: 'http',
        from: 'us-east/us-east-a',
        cluster: 'alpha',
        zone: 'a',
        count: 2,
        failed: 1,
      },
    ]);
    expect(v.clusters.map((c) => c.cluster)).toEqual(['alpha']);
  });

  it('takes what DNS served through the responder hook attachDns sets', async () => {
    const m = new Metrics({ worker: '0', trafficNow: () => 3_000 });
    const responder: Parameters<Metrics['attachDns']>[0]['responder'] = {
      stats: { kinds: new Map(), tiers: {}, rrlSlipped: 0, rrlDropped: 0 },
    };
    m.attachDns({ responder, tcpClosed: new Map() });
    responder.traffic?.served(
      { service: 'shop/web', targets: [{ cluster: 'beta', zone: 'b' }] },
      { region: 'eu', zone: undefined, subzone: undefined },
    );
    const v = await m.trafficView();
    expect(v.services[0]?.flows).toEqual([
      { protocol: 'dns', from: 'eu', cluster: 'beta', zone: 'b', count: 1, failed: 0 },
    ]);
  });

  it('counts gRPC calls again by the gRPC status their client got; plain requests not there', async () => {
    const { m } = setup();
    const r = { service: 'shop/rpc', cluster: 'alpha', zone: 'a', tier: '', seconds: 0.001 };
    m.request({ ...r, status: 200, outcome: 'relayed', grpc: true, grpcStatus: 0 });
    m.request({ ...r, status: 200, outcome: 'relayed', grpc: true, grpcStatus: 14 });
    m.request({ ...r, status: 503, outcome: 'failed', grpc: true, grpcStatus: 14 });
    m.request({ ...r, status: 200, outcome: 'failed', grpc: true });
    m.request({ ...r, service: 'shop/web', status: 200, outcome: 'relayed' });
    m.retry('shop/rpc', 'grpc_status');
    const { text } = await m.scrape();
    const grpc = text.split('\n').filter((l) => l.startsWith('fedgate_grpc_requests_total{'));
    expect(grpc.sort()).toEqual([
      'fedgate_grpc_requests_total{service="shop/rpc",grpc_status="",outcome="failed"} 1',
      'fedgate_grpc_requests_total{service="shop/rpc",grpc_status="0",outcome="relayed"} 1',
      'fedgate_grpc_requests_total{service="shop/rpc",grpc_status="14",outcome="failed"} 1',
      'fedgate_grpc_requests_total{service="shop/rpc",grpc_status="14",outcome="relayed"} 1',
    ]);
    expect(text).toContain(
      'fedgate_http_requests_total{service="shop/rpc",cluster="alpha",zone="a",code="2xx",outcome="relayed",route=""} 2',
    );
    expect(text).toContain('fedgate_http_retries_total{service="shop/rpc",reason="grpc_status"} 1');
  });

  it('reads clusters, endpoints with their health and the catalog version at scrape time', async () => {
    const { text } = await setup().m.scrape();
    expect(text).toContain('fedgate_catalog_version 7');
    expect(text).toContain('fedgate_cluster_up{cluster="alpha",state="synced"} 1');
    expect(text).toContain('fedgate_cluster_up{cluster="beta",state="stale"} 0');
    expect(text).toContain('fedgate_cluster_last_sync_age_seconds{cluster="beta"} 2.5');
    const ep = (zone: string, state: string, n: number) =>
      `fedgate_endpoints{service="shop/web",cluster="alpha",zone="${zone}",state="${state}"} ${n}`;
    expect(text).toContain(ep('a', 'ready', 2));
    expect(text).toContain(ep('b', 'not-ready', 1));
    expect(text).toContain(ep('b', 'terminating', 1));
    expect(text).toContain(ep('b', 'ejected', 1));
    expect(text).toContain(ep('b', 'check-failing', 1));
    // Process metrics come along, and no label carries an address.
    expect(text).toContain('process_cpu_user_seconds_total');
    expect(text).not.toMatch(/127\.10\.0\.\d/);
  });

  it('mirrors what DNS, checks and watches count, and follows the counts as they rise', async () => {
    const { m, dnsStats } = setup();
    let { text } = await m.scrape();
    expect(text).toContain(
      'fedgate_dns_queries_total{qtype="A",scheme="federation",rcode="NOERROR"} 5',
    );
    expect(text).toContain(
      'fedgate_dns_queries_total{qtype="AAAA",scheme="outside",rcode="REFUSED"} 2',
    );
    expect(text).toContain('fedgate_dns_rrl_total{action="slip"} 3');
    expect(text).toContain('fedgate_dns_rrl_total{action="drop"} 6');
    expect(text).toContain('fedgate_dns_tcp_closed_total{reason="io_timeout"} 2');
    expect(text).toContain('fedgate_dns_tcp_closed_total{reason="evicted"} 1');
    expect(text).toContain('fedgate_dns_served_tier_total{tier="region"} 1');
    expect(text).toContain(
      'fedgate_health_checks_total{service="shop/web",cluster="alpha",result="fail"} 3',
    );
    // The checker's pace, read at scrape time.
    expect(text).toContain('fedgate_health_check_interval_seconds 7.5');
    expect(text).toContain('fedgate_health_check_targets 12');
    expect(text).toContain('fedgate_health_checks_in_flight 2');
    expect(text).toContain(
      'fedgate_watch_events_total{cluster="alpha",resource="endpointslices",type="MODIFIED"} 4',
    );
    expect(text).toContain(
      'fedgate_watch_relists_total{cluster="alpha",resource="endpointslices",reason="expired"} 1',
    );
    // A counter at zero is left out rather than exported as 0 for every label set.
    expect(text).not.toContain('reason="error"');
    dnsStats.kinds.set('A|federation|NOERROR', 9);
    ({ text } = await m.scrape());
    expect(text).toContain(
      'fedgate_dns_queries_total{qtype="A",scheme="federation",rcode="NOERROR"} 9',
    );
  });

  it('counts failovers and ejections from the journal, and times propagation', async () => {
    const { m, journal, propagate } = setup();
    journal.record({
      kind: 'failover',
      service: 'shop/web',
      message: 'moved',
      detail: { from: 'zone', to: 'region' },
    });
    journal.record({
      kind: 'ejection',
      service: 'shop/web',
      message: 'ejected',
      detail: { type: 'ejected', reason: 'consecutive-5xx' },
    });
    journal.record({
      kind: 'ejection',
      service: 'shop/web',
      message: 'held back',
      detail: { type: 'not-enforced', reason: 'consecutive-5xx' },
    });
    journal.record({ kind: 'return', service: 'shop/web', message: 'back' });
    propagate(0.0003);
    propagate(0.02);
    const { text } = await m.scrape();
    expect(text).toContain('fedgate_failovers_total{service="shop/web",from="zone",to="region"} 1');
    expect(text).toContain(
      'fedgate_outlier_ejections_detected_total{service="shop/web",reason="consecutive-5xx"} 2',
    );
    expect(text).toContain(
      'fedgate_outlier_ejections_enforced_total{service="shop/web",reason="consecutive-5xx"} 1',
    );
    expect(text).toContain('fedgate_propagation_seconds_bucket{le="0.0005"} 1');
    expect(text).toContain('fedgate_propagation_seconds_count 2');
  });
});

describe('Metrics with worker processes', () => {
  function worker(slot: string, dnsAnswers: number) {
    const w = new Metrics({ worker: slot });
    w.attachDns({
      responder: {
        stats: {
          kinds: new Map([['A|mcs|NOERROR', dnsAnswers]]),
          tiers: { zone: dnsAnswers },
          rrlSlipped: 0,
          rrlDropped: 0,
        },
      },
      tcpClosed: new Map(),
    });
    return w;
  }
  const req = {
    service: 'shop/web',
    cluster: 'alpha',
    zone: 'a',
    tier: 'zone',
    status: 200,
    outcome: 'relayed',
  } as const;
  const names = (json: MetricsJson) => json.map((m) => m.name);

  it('splits the series: discovery in the primary, serving in each worker', async () => {
    const primary = setup({ serving: false }).m;
    const own = names(await primary.json());
    expect(own).toContain('fedgate_catalog_version');
    expect(own).toContain('fedgate_failovers_total');
    expect(own).not.toContain('fedgate_http_requests_total');
    expect(own).not.toContain('fedgate_dns_queries_total');
    const w = names(await worker('0', 1).json());
    expect(w).toContain('fedgate_http_requests_total');
    expect(w).toContain('fedgate_dns_queries_total');
    expect(w).toContain('fedgate_worker_requests_total');
    expect(w).toContain('process_cpu_seconds_total');
    expect(w).not.toContain('fedgate_catalog_version');
    expect(w).not.toContain('fedgate_endpoints');
  });

  it("sums the workers' counters and histograms into the primary's scrape, catalog gauges once", async () => {
    const primary = setup({ serving: false }).m;
    const w0 = worker('0', 3);
    const w1 = worker('1', 4);
    const gone = worker('1', 2);
    for (let i = 0; i < 5; i++) w0.request({ ...req, seconds: 0.002 });
    for (let i = 0; i < 7; i++) w1.request({ ...req, seconds: 0.02 });
    gone.request({ ...req, seconds: 0.002 });
    // What a worker that exited left behind: its counters, as last scraped.
    const retired = risingOnly(await gone.json());
    expect(names(retired)).not.toContain('nodejs_heap_size_used_bytes');
    primary.attachWorkers({
      collect: async () => [retired, await w0.json(), await w1.json()],
      states: () => new Map([['listening', 2]]),
      restarts: 1,
    });
    const { text } = await primary.scrape();
    expect(text).toContain(
      'fedgate_http_requests_total{service="shop/web",cluster="alpha",zone="a",code="2xx",outcome="relayed",route=""} 13',
    );
    expect(text).toContain(
      'fedgate_http_request_duration_seconds_count{service="shop/web",code="2xx"} 13',
    );
    expect(text).toContain(
      'fedgate_http_request_duration_seconds_bucket{le="0.0025",service="shop/web",code="2xx"} 6',
    );
    expect(text).toContain('fedgate_dns_queries_total{qtype="A",scheme="mcs",rcode="NOERROR"} 9');
    expect(text).toContain('fedgate_worker_requests_total{worker="0",protocol="http"} 5');
    expect(text).toContain('fedgate_worker_requests_total{worker="1",protocol="http"} 8');
    expect(text).toContain('fedgate_worker_requests_total{worker="1",protocol="dns"} 6');
    // From the primary only, once.
    expect(text).toContain('fedgate_catalog_version 7');
    expect(text).toContain('fedgate_cluster_up{cluster="alpha",state="synced"} 1');
    expect(text).toContain('fedgate_workers{state="listening"} 2');
    expect(text).toContain('fedgate_worker_restarts_total 1');
    // One family each, and process metrics merged (the start time kept: the earliest).
    expect(text.match(/^# TYPE fedgate_http_requests_total /gm)).toHaveLength(1);
    expect(text).toMatch(/^process_start_time_seconds \d+/m);
    expect(text).toMatch(/^nodejs_version_info\{.*\} 1$/m);
    expect(text).toMatch(/^process_max_fds \d+/m);
  });

  it("sums the Gateway API rules' request counts over the workers", async () => {
    const primary = setup({ serving: false }).m;
    const w0 = worker('0', 1);
    const w1 = worker('1', 1);
    w0.ruleMatched('shop/shop', 0);
    w0.ruleMatched('shop/shop', 1);
    for (let i = 0; i < 3; i++) w1.ruleMatched('shop/shop', 0);
    expect(await w0.ruleRequests()).toEqual(
      new Map([
        ['shop/shop#0', 1],
        ['shop/shop#1', 1],
      ]),
    );
    primary.attachWorkers({
      collect: async () => [await w0.json(), await w1.json()],
      states: () => new Map([['listening', 2]]),
      restarts: 0,
    });
    expect(await primary.ruleRequests()).toEqual(
      new Map([
        ['shop/shop#0', 4],
        ['shop/shop#1', 1],
      ]),
    );
    expect((await primary.scrape()).text).toContain(
      'fedgate_http_route_rule_requests_total{route="shop/shop",rule="0"} 4',
    );
  });

  it('keeps what exited workers counted as one merged set', async () => {
    const first = worker('0', 2);
    const second = worker('0', 3);
    first.request({ ...req, seconds: 0.002 });
    for (let i = 0; i < 2; i++) second.request({ ...req, seconds: 0.002 });
    const retired = mergeJson([risingOnly(await first.json()), risingOnly(await second.json())]);
    expect(retired.filter((m) => m.name === 'fedgate_http_requests_total')).toHaveLength(1);
    const text = await mergeMetrics([retired], first.registry.contentType);
    expect(text).toContain(
      'fedgate_http_requests_total{service="shop/web",cluster="alpha",zone="a",code="2xx",outcome="relayed",route=""} 3',
    );
    expect(text).toContain('fedgate_worker_requests_total{worker="0",protocol="dns"} 5');
    expect(text).not.toContain('nodejs_heap_size_used_bytes');
  });

  it('merges with prom-client aggregation, exported in the content type asked for', async () => {
    const a = worker('0', 1);
    const b = worker('1', 1);
    const text = await mergeMetrics([await a.json(), await b.json()], a.registry.contentType);
    expect(text).toContain('fedgate_dns_queries_total{qtype="A",scheme="mcs",rcode="NOERROR"} 2');
  });
});
