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
//
// Each part's series are registered from their own file (metrics-serving.ts,
// metrics-dns.ts, metrics-discovery.ts, metrics-workers.ts); this class is what the
// proxy and tracing count through, and what /metrics and /debug/traffic read.

import { Counter, collectDefaultMetrics, Registry } from 'prom-client';
import type { RetryReason, TlsReason } from '../proxy/failures.ts';
import type { ConnectionCloseReason, ProxiedRequest, ProxyObserver } from '../proxy/observer.ts';
import type { WriteBackStats } from '../writeback/write-back.ts';
import type { EventJournal } from './events.ts';
import { EXHAUSTED_RESOURCES, type ExhaustedResource } from './exhaustion.ts';
import { type DiscoverySources, registerDiscoveryMetrics } from './metrics-discovery.ts';
import { type DnsCounts, dnsAnswers, registerDnsMetrics } from './metrics-dns.ts';
import { type MetricsJson, mergeMetrics } from './metrics-merge.ts';
import {
  RULE_REQUESTS,
  type ServingSeries,
  servingSeries,
  statusClass,
} from './metrics-serving.ts';
import { registerWorkerPoolMetrics, type WorkerMetricsSource } from './metrics-workers.ts';
import { mirroredCounter } from './mirrored-counter.ts';
import type { SpanDropReason, TracingObserver } from './tracing.ts';
import { localityLabel, mergeTraffic, SLOTS, type TrafficJson, TrafficRing } from './traffic.ts';
import { type TrafficView, trafficView } from './traffic-view.ts';
import { registerWriteBackMetrics } from './writeback-metrics.ts';

/** This process's descriptor exhaustion counts (ExhaustionTracker). */
export interface ExhaustionCounts {
  counts(): ReadonlyMap<ExhaustedResource, number>;
}

/** What the primary's (or a single process's) series are read from. */
export interface MetricsSources {
  readonly discovery: DiscoverySources;
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

export class Metrics implements ProxyObserver, TracingObserver {
  readonly registry = new Registry();
  readonly #http: ServingSeries;
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
    this.#http = servingSeries(servingRegisters);

    if ('worker' in sources) {
      registerDnsMetrics(registry, () => this.#dns);
      mirroredCounter(
        registry,
        'fedgate_worker_requests_total',
        'HTTP requests proxied and DNS queries answered by each worker process (--workers ≥ 2), by its slot',
        ['worker', 'protocol'],
        () => [
          [{ worker: sources.worker, protocol: 'http' }, this.#proxied],
          [{ worker: sources.worker, protocol: 'dns' }, dnsAnswers(this.#dns)],
        ],
      );
      return;
    }
    if (serving) registerDnsMetrics(registry, () => this.#dns);
    registerDiscoveryMetrics(registry, sources);
  }

  /**
   * The primary of worker processes: its workers' series are merged in at scrape
   * time, and the pool itself is described (fedgate_workers, restarts).
   */
  attachWorkers(workers: WorkerMetricsSource): void {
    this.#workers = workers;
    registerWorkerPoolMetrics(this.registry, workers);
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
    this.#http.requests.at(r.service, r.cluster, r.zone, code, r.outcome, r.route ?? '').value++;
    const duration = this.#http.duration;
    duration.observe(duration.at(r.service, code), r.seconds);
    if (r.tier) this.#http.servedHttp.at(r.service, r.tier).value++;
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
    if (r.upgrade) this.#http.upgrades.inc({ service: r.service, code });
    if (r.grpc) {
      const grpc_status = r.grpcStatus === undefined ? '' : String(r.grpcStatus);
      this.#http.grpc.inc({ service: r.service, grpc_status, outcome: r.outcome });
    }
  }

  ruleMatched(route: string, rule: number): void {
    this.#http.ruleRequests.at(route, String(rule)).value++;
  }

  /**
   * Requests each Gateway API rule matched, by `namespace/name#index`: this
   * process's, or with worker processes theirs summed (as /metrics has them).
   */
  async ruleRequests(): Promise<Map<string, number>> {
    const parts = this.#workers
      ? await this.#workers.collect()
      : [[await this.#http.ruleRequests.get()] as unknown as MetricsJson];
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
    this.#http.spansExported.inc(n);
  }

  spansDropped(reason: SpanDropReason, n: number): void {
    this.#http.spansDropped.inc({ reason }, n);
  }

  exportFailed(): void {
    this.#http.exportFailures.inc();
  }

  mirrored(service: string, result: 'sent' | 'failed' | 'dropped'): void {
    this.#http.mirrored.inc({ service, result });
  }

  retry(service: string, reason: RetryReason): void {
    this.#http.retries.inc({ service, reason });
  }

  retryBudgetExhausted(service: string, reason: RetryReason): void {
    this.#http.budgetExhausted.inc({ service, reason });
  }

  http2StreamReset(): void {
    this.#http.streamResets.inc();
  }

  connectionClosed(reason: ConnectionCloseReason): void {
    this.#http.connectionsClosed.inc({ reason });
  }

  clientOverShare(service: string): void {
    this.#http.overShare.inc({ service });
  }

  tunnelIdleClosed(service: string): void {
    this.#http.tunnelsIdle.inc({ service });
  }

  tlsFailure(service: string, cluster: string, reason: TlsReason): void {
    this.#http.tlsFailures.inc({ service, cluster, reason });
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
