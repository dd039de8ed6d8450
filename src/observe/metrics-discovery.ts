// The series of what discovery decides, in the primary only with worker processes:
// failovers and ejections counted from the event journal, and the rest read at
// scrape time from the parts that count or hold it (checks, member clusters and
// their watches, the catalog), with propagation timed as snapshots reach readers.

import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { Catalog } from '../catalog/catalog.ts';
import type { HealthMonitor } from '../health/monitor.ts';
import { endpointId } from '../routing/types.ts';
import type { ClusterWatcher } from '../watch/cluster-watcher.ts';
import type { GatewayWatcher } from '../watch/gateway-watcher.ts';
import { endpointState } from './endpoint-state.ts';
import type { EventJournal } from './events.ts';
import { mirroredCounter } from './mirrored-counter.ts';

/** What discovery's series are read from (MetricsSources.discovery). */
export interface DiscoverySources {
  readonly catalog: Pick<Catalog, 'current' | 'onPropagation'>;
  readonly watchers: readonly Pick<ClusterWatcher, 'name' | 'watchStats'>[];
  /** The config clusters' Gateway API watchers (read at each scrape: reloads change them). */
  readonly gatewayWatchers?: readonly Pick<GatewayWatcher, 'name' | 'watchStats'>[];
  readonly health: {
    readonly active: Pick<HealthMonitor['active'], 'results' | 'stats'>;
    readonly store: Pick<HealthMonitor['store'], 'endpoints'>;
  };
}

/** Propagation buckets, seconds: 50 µs to 5 s (a watch event to every reader holding it). */
const PROPAGATION_BUCKETS = [
  0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1, 5,
];

/** Registers discovery's series: the journal's counts from now on, the rest at each scrape. */
export function registerDiscoveryMetrics(
  registry: Registry,
  sources: {
    readonly discovery: DiscoverySources;
    readonly journal: EventJournal;
    readonly now?: (() => number) | undefined;
  },
): void {
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
