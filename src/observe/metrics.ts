// fedgate's Prometheus series (prom-client). Events the serving path sees (a proxied
// request, a retry) are counted as they happen through ProxyObserver; state (clusters,
// endpoints, the catalog) is read from the latest snapshot at scrape time. Histograms
// only: they aggregate across workers, summaries do not. Labels never hold endpoint or
// client addresses, so cardinality follows services × clusters × zones.
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { Snapshot } from '../catalog/model.ts';

/** What the proxy reports, one call per finished request or retry. */
export interface ProxyObserver {
  request(service: string, cluster: string, zone: string, status: number, seconds: number): void;
  retry(service: string, reason: 'connect' | 'reset' | 'timeout' | 'status'): void;
}

export interface MetricsSources {
  readonly catalog: { current(): Snapshot };
  readonly now?: () => number;
}

/** Request duration buckets, seconds: 1 ms to 30 s. */
const DURATION_BUCKETS = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
];

function statusClass(status: number): string {
  return status >= 100 && status < 600 ? `${Math.floor(status / 100)}xx` : 'other';
}

export class Metrics implements ProxyObserver {
  readonly registry = new Registry();
  readonly #requests: Counter<'service' | 'cluster' | 'zone' | 'code'>;
  readonly #duration: Histogram<'service' | 'code'>;
  readonly #retries: Counter<'service' | 'reason'>;

  constructor(sources: MetricsSources) {
    const registry = this.registry;
    const now = sources.now ?? Date.now;
    collectDefaultMetrics({ register: registry });
    this.#requests = new Counter({
      name: 'fedgate_http_requests_total',
      help: 'Proxied HTTP requests by service, the cluster and zone that answered, and status class',
      labelNames: ['service', 'cluster', 'zone', 'code'],
      registers: [registry],
    });
    this.#duration = new Histogram({
      name: 'fedgate_http_request_duration_seconds',
      help: 'Time from request to the end of the response, through the proxy',
      labelNames: ['service', 'code'],
      buckets: DURATION_BUCKETS,
      registers: [registry],
    });
    this.#retries = new Counter({
      name: 'fedgate_http_retries_total',
      help: 'Retries the proxy made, by why the try before failed',
      labelNames: ['service', 'reason'],
      registers: [registry],
    });
    new Gauge({
      name: 'fedgate_catalog_version',
      help: 'Version of the latest catalog snapshot',
      registers: [registry],
      collect() {
        this.set(sources.catalog.current().version);
      },
    });
    new Gauge({
      name: 'fedgate_cluster_up',
      help: '1 while the member cluster is watched and in sync; 0 while syncing or stale',
      labelNames: ['cluster', 'state'],
      registers: [registry],
      collect() {
        this.reset();
        for (const c of sources.catalog.current().clusters.values()) {
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
        for (const c of sources.catalog.current().clusters.values()) {
          if (c.lastSyncAt !== undefined)
            this.set({ cluster: c.cluster }, Math.max(0, (t - c.lastSyncAt) / 1000));
        }
      },
    });
    new Gauge({
      name: 'fedgate_endpoints',
      help: 'Endpoints of federated services by cluster, zone and Kubernetes state',
      labelNames: ['service', 'cluster', 'zone', 'state'],
      registers: [registry],
      collect() {
        this.reset();
        for (const svc of sources.catalog.current().services.values()) {
          for (const m of svc.clusters) {
            const counts = new Map<string, number>();
            for (const e of m.endpoints) {
              const c = e.conditions;
              const state = c.terminating ? 'terminating' : c.ready ? 'ready' : 'not-ready';
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

  request(service: string, cluster: string, zone: string, status: number, seconds: number): void {
    const code = statusClass(status);
    this.#requests.inc({ service, cluster, zone, code });
    this.#duration.observe({ service, code }, seconds);
  }

  retry(service: string, reason: 'connect' | 'reset' | 'timeout' | 'status'): void {
    this.#retries.inc({ service, reason });
  }

  /** The exposition text and its content type, for /metrics. */
  async scrape(): Promise<{ contentType: string; text: string }> {
    return { contentType: this.registry.contentType, text: await this.registry.metrics() };
  }
}
