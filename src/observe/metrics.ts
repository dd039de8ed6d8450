// fedgate's Prometheus series (prom-client). Events on the serving path (a proxied
// request or upgrade, a retry, a retry the budget held back) are counted as they happen through ProxyObserver; events that
// reach the journal (failovers, ejections) are counted from it; everything the parts
// already count for themselves (DNS answers, RRL, checks, watch events) and all
// state (clusters, endpoints, the catalog) is read at scrape time, so the hot paths
// pay nothing for metrics. Histograms only: they aggregate across workers, summaries
// do not. Labels never hold endpoint or client addresses, so cardinality follows
// services × clusters × zones.
//
// With worker processes (--workers ≥ 2) the series are split by where they happen:
// the primary's registry has discovery's (catalog, clusters, watches, checks,
// failovers, ejections, propagation) and no serving ones; each worker's has the
// proxy's and DNS's; both have process metrics. scrape() on the primary merges them
// with prom-client's AggregatorRegistry.aggregate: counters and histograms summed
// across processes, catalog gauges exported once (only the primary has them).

import {
  type Aggregator,
  AggregatorRegistry,
  Counter,
  collectDefaultMetrics,
  Gauge,
  Histogram,
  Registry,
} from 'prom-client';
import type { Catalog } from '../catalog/catalog.ts';
import type { Served } from '../dns/answer.ts';
import type { HealthMonitor } from '../health/monitor.ts';
import type { RetryReason, TlsReason } from '../proxy/failures.ts';
import type { ConnectionCloseReason, ProxiedRequest, ProxyObserver } from '../proxy/observer.ts';
import { endpointId, type Locality } from '../routing/types.ts';
import type { ClusterWatcher } from '../watch/cluster-watcher.ts';
import type { GatewayWatcher } from '../watch/gateway-watcher.ts';
import type { WriteBackStats } from '../writeback/write-back.ts';
import { endpointState } from './endpoint-state.ts';
import type { EventJournal } from './events.ts';
import { EXHAUSTED_RESOURCES, type ExhaustedResource } from './exhaustion.ts';
import { TalliedCounter, TalliedHistogram } from './tallies.ts';
import type { SpanDropReason, TracingObserver } from './tracing.ts';
import {
  LATENCY_BUCKETS,
  localityLabel,
  mergeTraffic,
  SLOTS,
  type TrafficJson,
  TrafficRing,
} from './traffic.ts';
import { type TrafficView, trafficView } from './traffic-view.ts';
import { registerWriteBackMetrics } from './writeback-metrics.ts';

/** What DNS counts for itself (Responder and ResponseRateLimiter stats). */
export interface DnsCounts {
  readonly responder: {
    readonly stats: {
      readonly kinds: ReadonlyMap<string, number>;
      readonly tiers: Readonly<Record<string, number>>;
      readonly rrlSlipped: number;
      readonly rrlDropped: number;
    };
    /** Set by attachDns: where the responder records served answers for the traffic picture. */
    traffic?: { served(s: Served, locality: Locality | undefined): void } | undefined;
  };
  /** TCP connections the server closed itself, by why (DnsServer.tcpClosed). */
  readonly tcpClosed: ReadonlyMap<string, number>;
}

/** This process's descriptor exhaustion counts (ExhaustionTracker). */
export interface ExhaustionCounts {
  counts(): ReadonlyMap<ExhaustedResource, number>;
}

/** A registry's series as getMetricsAsJSON gives them: what a worker sends the primary. */
export type MetricsJson = Awaited<ReturnType<Registry['getMetricsAsJSON']>>;

export interface MetricsSources {
  readonly discovery: {
    readonly catalog: Pick<Catalog, 'current' | 'onPropagation'>;
    readonly watchers: readonly Pick<ClusterWatcher, 'name' | 'watchStats'>[];
    /** The config clusters' Gateway API watchers (read at each scrape: reloads change them). */
    readonly gatewayWatchers?: readonly Pick<GatewayWatcher, 'name' | 'watchStats'>[];
    readonly health: {
      readonly active: Pick<HealthMonitor['active'], 'results' | 'stats'>;
      readonly store: Pick<HealthMonitor['store'], 'endpoints'>;
    };
  };
  readonly journal: EventJournal;
  readonly now?: () => number;
  /** The traffic ring's and /debug/traffic's clock (default `now`, else the wall clock). */
  readonly trafficNow?: () => number;
  /**
   * false: DNS and the proxy run in worker processes (the primary of --workers ≥ 2),
   * so this registry has none of their series; attachWorkers() brings them in.
   */
  readonly serving?: boolean;
  /** Where this process ran out of descriptors. */
  readonly exhaustion?: ExhaustionCounts;
  /** The write-back's state (writeBack.enabled), read at scrape time. */
  readonly writeBack?: () => WriteBackStats | undefined;
}

/** A worker process's metrics: the proxy's and DNS's, and its process's. */
export interface WorkerMetricsSources {
  /** The worker's slot, 0 … N−1, kept by a replacement: the `worker` label. */
  readonly worker: string;
  /** Where this worker ran out of descriptors (accepts, upstream connects). */
  readonly exhaustion?: ExhaustionCounts;
  /** The traffic ring's clock (default the wall clock). */
  readonly trafficNow?: () => number;
}

/** The primary's view of its workers, read at scrape time. */
export interface WorkerMetricsSource {
  /**
   * Every worker's registry as JSON, plus the counters and histograms of workers
   * that have exited (as last scraped), so sums do not fall when one is replaced.
   */
  collect(): Promise<MetricsJson[]>;
  /** Worker processes by state: starting, listening, draining. */
  states(): ReadonlyMap<string, number>;
  /** Workers restarted after exiting unexpectedly, since start. */
  readonly restarts: number;
  /** Every live worker's traffic ring (one that does not answer in time is left out). */
  traffic?(): Promise<TrafficJson[]>;
}

/**
 * How series that are not plain sums merge across processes (prom-client's default
 * metrics say 'omit' for the start time and nothing for the fd limit): the earliest
 * start (the primary's), and one process's limit.
 */
const MERGE_OVERRIDES: Readonly<Record<string, Aggregator>> = {
  process_start_time_seconds: 'min',
  process_max_fds: 'first',
};

/** Merges registries' JSON into one exposition, as AggregatorRegistry does for a cluster. */
export async function mergeMetrics(
  parts: readonly MetricsJson[],
  contentType: string,
): Promise<string> {
  const adjusted = parts.map((metrics) =>
    metrics.map((m) => {
      const over = MERGE_OVERRIDES[m.name];
      return over ? { ...m, aggregator: over } : m;
    }),
  );
  const merged = AggregatorRegistry.aggregate(adjusted);
  merged.setContentType(contentType as never);
  return merged.metrics();
}

/** Several registries' JSON merged into one (as mergeMetrics does), still as JSON. */
export function mergeJson(parts: readonly MetricsJson[]): MetricsJson {
  return AggregatorRegistry.aggregate([...parts])
    .getMetricsAsArray()
    .map((wrapper) => {
      // aggregate() wraps each merged metric with a get(): the metric is the rest.
      const { get: _get, ...metric } = wrapper as unknown as Record<string, unknown>;
      return metric as unknown as MetricsJson[number];
    });
}

/** The series that only rise (counters and histograms): what a retired worker leaves behind. */
export function risingOnly(metrics: MetricsJson): MetricsJson {
  return metrics.filter((m) => {
    const type = String(m.type);
    return type === 'counter' || type === 'histogram';
  });
}

/** Request duration buckets, seconds: 1 ms to 30 s (the traffic picture's p99 uses the same). */
const DURATION_BUCKETS: readonly number[] = LATENCY_BUCKETS;
/** Propagation buckets, seconds: 50 µs to 5 s (a watch event to every reader holding it). */
const PROPAGATION_BUCKETS = [
  0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1, 5,
];

const STATUS_CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx'];

/** The same string each time: a label value the series tables look up by. */
function statusClass(status: number): string {
  return status >= 100 && status < 600 ? STATUS_CLASSES[Math.floor(status / 100) - 1]! : 'other';
}

/** A counter whose value is read from a component's own cumulative count at scrape time. */
function mirroredCounter<L extends string>(
  registry: Registry,
  name: string,
  help: string,
  labelNames: readonly L[],
  read: () => Iterable<[Partial<Record<L, string>>, number]>,
): void {
  new Counter<L>({
    name,
    help,
    labelNames,
    registers: [registry],
    collect() {
      this.reset();
      for (const [labels, n] of read()) if (n > 0) this.inc(labels, n);
    },
  });
}

const RULE_REQUESTS = 'fedgate_http_route_rule_requests_total';

export class Metrics implements ProxyObserver, TracingObserver {
  readonly registry = new Registry();
  readonly #requests: TalliedCounter<'service' | 'cluster' | 'zone' | 'code' | 'outcome' | 'route'>;
  readonly #mirrored: Counter<'service' | 'result'>;
  readonly #ruleRequests: TalliedCounter<'route' | 'rule'>;
  readonly #duration: TalliedHistogram<'service' | 'code'>;
  readonly #retries: Counter<'service' | 'reason'>;
  readonly #grpc: Counter<'service' | 'grpc_status' | 'outcome'>;
  readonly #servedHttp: TalliedCounter<'service' | 'tier'>;
  readonly #budgetExhausted: Counter<'service' | 'reason'>;
  readonly #upgrades: Counter<'service' | 'code'>;
  readonly #streamResets: Counter;
  readonly #connectionsClosed: Counter<'reason'>;
  readonly #overShare: Counter<'service'>;
  readonly #tlsFailures: Counter<'service' | 'cluster' | 'reason'>;
  readonly #tunnelsIdle: Counter<'service'>;
  readonly #spansExported: Counter;
  readonly #spansDropped: Counter<'reason'>;
  readonly #exportFailures: Counter;
  #dns: DnsCounts | undefined;
  #workers: WorkerMetricsSource | undefined;
  /** Requests this process proxied: fedgate_worker_requests_total in a worker. */
  #proxied = 0;
  /** The last 15 minutes of what this process served, for /debug/traffic and the status page. */
  readonly traffic: TrafficRing;
  readonly #trafficNow: () => number;

  constructor(sources: MetricsSources | WorkerMetricsSources) {
    const registry = this.registry;
    this.#trafficNow =
      sources.trafficNow ?? ('now' in sources ? sources.now : undefined) ?? Date.now;
    this.traffic = new TrafficRing({ now: this.#trafficNow });
    collectDefaultMetrics({ register: registry });
    // Gauges named like counters (prometheus/client_js#283) that promtool rejects; the
    // per-type nodejs_active_{handles,requests,resources} gauges say the same.
    for (const name of [
      'nodejs_active_handles_total',
      'nodejs_active_requests_total',
      'nodejs_active_resources_total',
    ])
      registry.removeSingleMetric(name);

    // ---- descriptors: in every process (each opens its own sockets), summed across them.
    // Every resource from 0, unlike the other counters: the first time is the one an
    // alert on increase() must not miss.
    const exhaustion = sources.exhaustion;
    new Counter({
      name: 'fedgate_resource_exhausted_total',
      help: 'Times the process ran out of file descriptors, by where: http_accept, dns_tcp_accept, upstream_connect, watch, health_probe',
      labelNames: ['resource'],
      registers: [registry],
      collect() {
        this.reset();
        const counts = exhaustion?.counts();
        for (const resource of EXHAUSTED_RESOURCES)
          this.inc({ resource }, counts?.get(resource) ?? 0);
      },
    });

    if (!('worker' in sources) && sources.writeBack) {
      registerWriteBackMetrics(registry, sources.writeBack);
    }

    // ---- HTTP proxy (unregistered in the primary of worker processes: the workers count)
    const serving = 'worker' in sources || sources.serving !== false;
    const servingRegisters = serving ? [registry] : [];
    this.#requests = new TalliedCounter({
      name: 'fedgate_http_requests_total',
      help: 'HTTP requests by service ("" when none was found), the cluster and zone that answered, status class, how the request ended (relayed, failed, rejected, overflowed, client_cancelled, redirected), and the Gateway API route (namespace/name) that routed it ("" for Host routing)',
      labelNames: ['service', 'cluster', 'zone', 'code', 'outcome', 'route'],
      registers: servingRegisters,
    });
    this.#ruleRequests = new TalliedCounter({
      name: RULE_REQUESTS,
      help: "HTTP requests that matched a Gateway API rule, by route (namespace/name) and the rule's index in it",
      labelNames: ['route', 'rule'],
      registers: servingRegisters,
    });
    // ---- tracing (observe/tracing.ts): each serving process exports its own spans.
    this.#spansExported = new Counter({
      name: 'fedgate_tracing_spans_exported_total',
      help: 'Spans the OTLP collector accepted',
      registers: servingRegisters,
    });
    this.#spansDropped = new Counter({
      name: 'fedgate_tracing_spans_dropped_total',
      help: 'Sampled spans lost, by reason: queue_full (tracing.maxQueueSize spans already waiting) or export_failed (their batch could not be sent)',
      labelNames: ['reason'],
      registers: servingRegisters,
    });
    this.#exportFailures = new Counter({
      name: 'fedgate_tracing_export_failures_total',
      help: 'Span exports to the OTLP collector that failed (refused, timed out, rejected)',
      registers: servingRegisters,
    });
    this.#mirrored = new Counter({
      name: 'fedgate_http_mirrored_requests_total',
      help: 'Copies of requests a Gateway API RequestMirror sent, by the mirror service and result: sent (answered), failed (no endpoint, refused, timed out) or dropped (too many mirrors in flight)',
      labelNames: ['service', 'result'],
      registers: servingRegisters,
    });
    this.#duration = new TalliedHistogram({
      name: 'fedgate_http_request_duration_seconds',
      help: 'Time from request to the end of the response, through the proxy',
      labelNames: ['service', 'code'],
      buckets: DURATION_BUCKETS,
      registers: servingRegisters,
    });
    this.#grpc = new Counter({
      name: 'fedgate_grpc_requests_total',
      help: 'gRPC calls (content-type application/grpc) by service, the grpc-status the client got (the upstream\'s, or fedgate\'s own; "" when none reached it) and how the call ended (as fedgate_http_requests_total, which counts them too)',
      labelNames: ['service', 'grpc_status', 'outcome'],
      registers: servingRegisters,
    });
    this.#retries = new Counter({
      name: 'fedgate_http_retries_total',
      help: 'Retries the proxy made, by why the try before failed',
      labelNames: ['service', 'reason'],
      registers: servingRegisters,
    });
    this.#budgetExhausted = new Counter({
      name: 'fedgate_http_retry_budget_exhausted_total',
      help: 'Retries the service retry budget held back, by why the try failed (status, timeout): that answer went to the client',
      labelNames: ['service', 'reason'],
      registers: servingRegisters,
    });
    this.#tlsFailures = new Counter({
      name: 'fedgate_upstream_tls_failures_total',
      help: "Tries whose TLS handshake with an endpoint failed, by why: untrusted (no trusted CA), expired, name (hostname or subjectAltNames), client_certificate (the backend refused or wanted fedgate's), handshake (any other)",
      labelNames: ['service', 'cluster', 'reason'],
      registers: servingRegisters,
    });
    this.#overShare = new Counter({
      name: 'fedgate_http_client_over_share_total',
      help: "Requests answered 429 CLIENT_OVER_SHARE: their client netblock already held its share of the service's request slots (also in fedgate_http_requests_total, outcome rejected)",
      labelNames: ['service'],
      registers: servingRegisters,
    });
    this.#tunnelsIdle = new Counter({
      name: 'fedgate_http_tunnels_idle_closed_total',
      help: 'Upgraded tunnels (WebSocket) closed after http.timeouts.tunnelIdle with no byte either way',
      labelNames: ['service'],
      registers: servingRegisters,
    });
    this.#upgrades = new Counter({
      name: 'fedgate_http_upgrades_total',
      help: 'Upgrade requests (WebSocket and the like) by service and status class of the answer: 1xx switched protocols',
      labelNames: ['service', 'code'],
      registers: servingRegisters,
    });
    this.#streamResets = new Counter({
      name: 'fedgate_http2_stream_resets_total',
      help: 'HTTP/2 streams the client reset before their answer was whole (also counted as client_cancelled requests)',
      registers: servingRegisters,
    });
    this.#connectionsClosed = new Counter({
      name: 'fedgate_http_connections_closed_total',
      help: 'Client connections fedgate closed for how the client behaved, by reason: premature_resets (HTTP/2 rapid reset), client_connections (past http.limits.maxConnectionsPerClient, closed as accepted)',
      labelNames: ['reason'],
      registers: servingRegisters,
    });
    this.#servedHttp = new TalliedCounter({
      name: 'fedgate_http_served_tier_total',
      help: 'Proxied requests by the scope of the plan tier whose endpoint answered (zone, region, other, …)',
      labelNames: ['service', 'tier'],
      registers: servingRegisters,
    });

    if ('worker' in sources) {
      this.#dnsSeries(registry);
      mirroredCounter(
        registry,
        'fedgate_worker_requests_total',
        'HTTP requests proxied and DNS queries answered by each worker process (--workers ≥ 2), by its slot',
        ['worker', 'protocol'],
        () => [
          [{ worker: sources.worker, protocol: 'http' }, this.#proxied],
          [{ worker: sources.worker, protocol: 'dns' }, this.#dnsAnswers()],
        ],
      );
      return;
    }
    if (serving) this.#dnsSeries(registry);
    this.#discovery(registry, sources);
  }

  #discovery(registry: Registry, sources: MetricsSources): void {
    const now = sources.now ?? Date.now;
    const { catalog, watchers, health } = sources.discovery;
    // ---- routing decisions, from the journal
    const failovers = new Counter({
      name: 'fedgate_failovers_total',
      help: "Times a service's traffic for one client locality moved from one tier to another (failovers and failbacks)",
      labelNames: ['service', 'from', 'to'],
      registers: [registry],
    });
    const detected = new Counter({
      name: 'fedgate_outlier_ejections_detected_total',
      help: 'Endpoints outlier detection found failing, whether or not they were ejected',
      labelNames: ['service', 'reason'],
      registers: [registry],
    });
    const enforced = new Counter({
      name: 'fedgate_outlier_ejections_enforced_total',
      help: 'Endpoints outlier detection ejected (not held back by maxEjectionPercent)',
      labelNames: ['service', 'reason'],
      registers: [registry],
    });
    sources.journal.subscribe((e) => {
      const d = e.detail ?? {};
      if (e.kind === 'failover' && e.service) {
        failovers.inc({ service: e.service, from: String(d.from), to: String(d.to) });
      } else if (e.kind === 'ejection' && e.service) {
        const labels = { service: e.service, reason: String(d.reason) };
        detected.inc(labels);
        if (d.type === 'ejected') enforced.inc(labels);
      }
    });

    // ---- health checks
    mirroredCounter(
      registry,
      'fedgate_health_checks_total',
      'Active health check results by service, cluster and result (pass, fail)',
      ['service', 'cluster', 'result'],
      function* () {
        for (const [key, n] of health.active.results()) {
          const [service, cluster, result] = key.split('|') as [string, string, string];
          yield [{ service, cluster, result }, n];
        }
      },
    );
    new Gauge({
      name: 'fedgate_health_check_interval_seconds',
      help: 'The interval every checked target is probed at: health.active.interval, or longer when maxInFlight or maxProbesPerSecond cannot cover every target within it',
      registers: [registry],
      collect() {
        this.set(health.active.stats().effectiveIntervalMs / 1000);
      },
    });
    new Gauge({
      name: 'fedgate_health_check_targets',
      help: 'Endpoints (or ingresses) actively checked now, on a schedule or on demand',
      registers: [registry],
      collect() {
        this.set(health.active.stats().targets);
      },
    });
    new Gauge({
      name: 'fedgate_health_checks_in_flight',
      help: 'Probes running now, each holding one socket; never above health.active.maxInFlight',
      registers: [registry],
      collect() {
        this.set(health.active.stats().inFlight);
      },
    });

    // ---- member clusters and their watches
    new Gauge({
      name: 'fedgate_cluster_up',
      help: '1 while the member cluster is watched and in sync; 0 while syncing or stale',
      labelNames: ['cluster', 'state'],
      registers: [registry],
      collect() {
        this.reset();
        for (const c of catalog.current().clusters.values()) {
          this.set({ cluster: c.cluster, state: c.state }, c.state === 'synced' ? 1 : 0);
        }
      },
    });
    new Gauge({
      name: 'fedgate_cluster_last_sync_age_seconds',
      help: 'Seconds since the member cluster was last known in sync',
      labelNames: ['cluster'],
      registers: [registry],
      collect() {
        this.reset();
        const t = now();
        for (const c of catalog.current().clusters.values()) {
          if (c.lastSyncAt !== undefined)
            this.set({ cluster: c.cluster }, Math.max(0, (t - c.lastSyncAt) / 1000));
        }
      },
    });
    mirroredCounter(
      registry,
      'fedgate_watch_events_total',
      'Watch events received from member API servers, by cluster, resource and type',
      ['cluster', 'resource', 'type'],
      function* () {
        for (const w of [...watchers, ...(sources.discovery.gatewayWatchers ?? [])])
          for (const [resource, s] of w.watchStats())
            for (const [type, n] of Object.entries(s.events))
              yield [{ cluster: w.name, resource, type }, n];
      },
    );
    mirroredCounter(
      registry,
      'fedgate_watch_relists_total',
      'Full lists after the first, by cluster, resource and why: expired (410 Gone) or error',
      ['cluster', 'resource', 'reason'],
      function* () {
        for (const w of [...watchers, ...(sources.discovery.gatewayWatchers ?? [])])
          for (const [resource, s] of w.watchStats())
            for (const [reason, n] of Object.entries(s.relists))
              yield [{ cluster: w.name, resource, reason }, n];
      },
    );

    // ---- the catalog
    new Gauge({
      name: 'fedgate_catalog_version',
      help: 'Version of the latest catalog snapshot',
      registers: [registry],
      collect() {
        this.set(catalog.current().version);
      },
    });
    const propagation = new Histogram({
      name: 'fedgate_propagation_seconds',
      help: 'From a member change arriving (watch event or list) to the snapshot that holds it reaching DNS, the proxy and health',
      buckets: PROPAGATION_BUCKETS,
      registers: [registry],
    });
    catalog.onPropagation((s) => propagation.observe(s));
    new Gauge({
      name: 'fedgate_endpoints',
      help: 'Endpoints of federated services by cluster, zone and state: ready, not-ready, terminating, ejected, check-failing',
      labelNames: ['service', 'cluster', 'zone', 'state'],
      registers: [registry],
      collect() {
        this.reset();
        for (const svc of catalog.current().services.values()) {
          const verdicts = health.store.endpoints(svc.key);
          for (const m of svc.clusters) {
            const counts = new Map<string, number>();
            for (const e of m.endpoints) {
              const state = endpointState(
                e,
                verdicts?.get(endpointId(m.cluster, e.addresses[0] ?? '')),
              );
              const key = `${e.locality.zone ?? ''}\u0000${state}`;
              counts.set(key, (counts.get(key) ?? 0) + 1);
            }
            for (const [key, n] of counts) {
              const [zone, state] = key.split('\u0000') as [string, string];
              this.set({ service: svc.key, cluster: m.cluster, zone, state }, n);
            }
          }
        }
      },
    });
  }

  /** The series DNS counts for itself, read from the responder at scrape time. */
  #dnsSeries(registry: Registry): void {
    // ---- DNS
    mirroredCounter(
      registry,
      'fedgate_dns_queries_total',
      'DNS answers by query type, name scheme (mcs, federation, regional, zonal, …) and rcode',
      ['qtype', 'scheme', 'rcode'],
      () => {
        const out: [Partial<Record<'qtype' | 'scheme' | 'rcode', string>>, number][] = [];
        for (const [key, n] of this.#dns?.responder.stats.kinds ?? []) {
          const [qtype, scheme, rcode] = key.split('|') as [string, string, string];
          out.push([{ qtype, scheme, rcode }, n]);
        }
        return out;
      },
    );
    mirroredCounter(
      registry,
      'fedgate_dns_rrl_total',
      'Answers response rate limiting held back: slip (sent truncated) or drop',
      ['action'],
      () => {
        const s = this.#dns?.responder.stats;
        return [
          [{ action: 'slip' }, s?.rrlSlipped ?? 0],
          [{ action: 'drop' }, s?.rrlDropped ?? 0],
        ];
      },
    );
    mirroredCounter(
      registry,
      'fedgate_dns_tcp_closed_total',
      'DNS TCP connections the server closed: io_timeout, write_timeout, idle, evicted',
      ['reason'],
      () => [...(this.#dns?.tcpClosed ?? [])].map(([reason, n]) => [{ reason }, n]),
    );
    mirroredCounter(
      registry,
      'fedgate_dns_served_tier_total',
      'DNS answers with records by the scope of the plan tier they came from',
      ['tier'],
      () =>
        Object.entries(this.#dns?.responder.stats.tiers ?? {}).map(([tier, n]) => [{ tier }, n]),
    );
  }

  #dnsAnswers(): number {
    let n = 0;
    for (const v of this.#dns?.responder.stats.kinds.values() ?? []) n += v;
    return n;
  }

  /**
   * The primary of worker processes: its workers' series are merged in at scrape
   * time, and the pool itself is described (fedgate_workers, restarts).
   */
  attachWorkers(workers: WorkerMetricsSource): void {
    this.#workers = workers;
    new Gauge({
      name: 'fedgate_workers',
      help: 'Worker processes serving DNS and the proxy (--workers ≥ 2), by state: starting, listening, draining',
      labelNames: ['state'],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const [state, n] of workers.states()) this.set({ state }, n);
      },
    });
    new Counter({
      name: 'fedgate_worker_restarts_total',
      help: 'Worker processes started again after one exited unexpectedly',
      registers: [this.registry],
      collect() {
        this.reset();
        if (workers.restarts > 0) this.inc(workers.restarts);
      },
    });
  }

  /** DNS starts after metrics: its counters are read from here on. */
  attachDns(dns: DnsCounts): void {
    this.#dns = dns;
    const ring = this.traffic;
    dns.responder.traffic = {
      served: (s, locality) => ring.dns(s.service, localityLabel(locality), s.targets),
    };
  }

  request(r: ProxiedRequest): void {
    this.#proxied++;
    const code = statusClass(r.status);
    this.#requests.at(r.service, r.cluster, r.zone, code, r.outcome, r.route ?? '').value++;
    const duration = this.#duration;
    duration.observe(duration.at(r.service, code), r.seconds);
    if (r.tier) this.#servedHttp.at(r.service, r.tier).value++;
    // The picture shows services' traffic: requests refused before a service was found are not in it.
    if (r.service) {
      this.traffic.http({
        service: r.service,
        from: localityLabel(r.locality),
        cluster: r.cluster,
        zone: r.zone,
        failed: r.outcome === 'failed' || r.outcome === 'overflowed' || r.status >= 500,
        seconds: r.seconds,
      });
    }
    if (r.upgrade) this.#upgrades.inc({ service: r.service, code });
    if (r.grpc) {
      const grpc_status = r.grpcStatus === undefined ? '' : String(r.grpcStatus);
      this.#grpc.inc({ service: r.service, grpc_status, outcome: r.outcome });
    }
  }

  ruleMatched(route: string, rule: number): void {
    this.#ruleRequests.at(route, String(rule)).value++;
  }

  /**
   * Requests each Gateway API rule matched, by `namespace/name#index`: this
   * process's, or with worker processes theirs summed (as /metrics has them).
   */
  async ruleRequests(): Promise<Map<string, number>> {
    const parts = this.#workers
      ? await this.#workers.collect()
      : [[await this.#ruleRequests.get()] as unknown as MetricsJson];
    const out = new Map<string, number>();
    for (const metrics of parts) {
      for (const v of metrics.find((m) => m.name === RULE_REQUESTS)?.values ?? []) {
        const key = `${v.labels.route}#${v.labels.rule}`;
        out.set(key, (out.get(key) ?? 0) + v.value);
      }
    }
    return out;
  }

  spansExported(n: number): void {
    this.#spansExported.inc(n);
  }

  spansDropped(reason: SpanDropReason, n: number): void {
    this.#spansDropped.inc({ reason }, n);
  }

  exportFailed(): void {
    this.#exportFailures.inc();
  }

  mirrored(service: string, result: 'sent' | 'failed' | 'dropped'): void {
    this.#mirrored.inc({ service, result });
  }

  retry(service: string, reason: RetryReason): void {
    this.#retries.inc({ service, reason });
  }

  retryBudgetExhausted(service: string, reason: RetryReason): void {
    this.#budgetExhausted.inc({ service, reason });
  }

  http2StreamReset(): void {
    this.#streamResets.inc();
  }

  connectionClosed(reason: ConnectionCloseReason): void {
    this.#connectionsClosed.inc({ reason });
  }

  clientOverShare(service: string): void {
    this.#overShare.inc({ service });
  }

  tunnelIdleClosed(service: string): void {
    this.#tunnelsIdle.inc({ service });
  }

  tlsFailure(service: string, cluster: string, reason: TlsReason): void {
    this.#tlsFailures.inc({ service, cluster, reason });
  }

  /** The traffic of this process, or with worker processes theirs merged slot by slot. */
  async trafficJson(): Promise<TrafficJson> {
    const own = this.traffic.json();
    if (!this.#workers) return own;
    return mergeTraffic([own, ...((await this.#workers.traffic?.()) ?? [])]);
  }

  /** /debug/traffic: the traffic picture now, by the ring's clock. */
  async trafficView(): Promise<TrafficView> {
    return trafficView(await this.trafficJson(), this.#trafficNow(), SLOTS);
  }

  /** This process's series as JSON (what a worker answers the primary's scrape with). */
  json(): Promise<MetricsJson> {
    return this.registry.getMetricsAsJSON();
  }

  /** The exposition text and its content type, for /metrics: the workers' merged in. */
  async scrape(): Promise<{ contentType: string; text: string }> {
    const contentType = this.registry.contentType;
    if (!this.#workers) return { contentType, text: await this.registry.metrics() };
    const [own, workers] = await Promise.all([this.json(), this.#workers.collect()]);
    return { contentType, text: await mergeMetrics([own, ...workers], contentType) };
  }
}
