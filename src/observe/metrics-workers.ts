// The primary's view of its worker processes (--workers ≥ 2): their series merged
// into its scrape (WorkerPool), and the pool itself described.

import { Counter, Gauge, type Registry } from 'prom-client';
import type { MetricsJson } from './metrics-merge.ts';
import type { TrafficJson } from './traffic.ts';

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

/** The pool's own series: workers by state, restarts. */
export function registerWorkerPoolMetrics(registry: Registry, workers: WorkerMetricsSource): void {
  new Gauge({
    name: 'fedgate_workers',
    help: 'Worker processes serving DNS and the proxy (--workers ≥ 2), by state: starting, listening, draining',
    labelNames: ['state'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [state, n] of workers.states()) this.set({ state }, n);
    },
  });
  new Counter({
    name: 'fedgate_worker_restarts_total',
    help: 'Worker processes started again after one exited unexpectedly',
    registers: [registry],
    collect() {
      this.reset();
      if (workers.restarts > 0) this.inc(workers.restarts);
    },
  });
}
