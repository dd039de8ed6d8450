// health/ as one part: the store routing reads, active checks and outlier detection
// writing into it, all following the catalog. Endpoints that leave the catalog are
// forgotten here, once, whichever of the two wrote about them.
import type { FederatedService, Snapshot } from '../catalog/model.ts';
import type { Config } from '../config/schema.ts';
import type { Logger } from '../observe/log.ts';
import {
  ActiveChecker,
  type ActiveCheckerOptions,
  type ProbeResult,
  type SnapshotSource,
} from './active.ts';
import { type Outcome, OutlierDetector, type OutlierEvent } from './outlier.ts';
import { HealthStore } from './store.ts';
import { catalogIds, type ProbeTarget } from './targets.ts';

export interface HealthMonitorOptions {
  readonly config: Config['health'];
  readonly addressing: Config['dns']['addressing'];
  readonly log: Logger;
  readonly now?: () => number;
  readonly random?: () => number;
  readonly onProbe?: (target: ProbeTarget, result: ProbeResult) => void;
  /** A probe could not open a socket: the process is out of descriptors. */
  readonly onProbeExhausted?: (err: unknown) => void;
  readonly onOutlier?: (event: OutlierEvent) => void;
  /** A service's backend TLS options, for gRPC checks (ActiveCheckerOptions.tls). */
  readonly tls?: ActiveCheckerOptions['tls'];
}

export class HealthMonitor {
  readonly store = new HealthStore();
  readonly active: ActiveChecker;
  readonly outlier: OutlierDetector;
  readonly #log: Logger;
  readonly #onOutlier: ((e: OutlierEvent) => void) | undefined;
  #services: ReadonlyMap<string, FederatedService> = new Map();
  #last: Snapshot | undefined;
  #unsubscribe: (() => void) | undefined;

  constructor(opts: HealthMonitorOptions) {
    this.#log = opts.log;
    this.#onOutlier = opts.onOutlier;
    this.active = new ActiveChecker({
      config: opts.config.active,
      addressing: opts.addressing,
      store: this.store,
      log: opts.log,
      ...(opts.now ? { now: opts.now } : {}),
      ...(opts.random ? { random: opts.random } : {}),
      ...(opts.onProbe ? { onResult: opts.onProbe } : {}),
      ...(opts.onProbeExhausted ? { onExhausted: opts.onProbeExhausted } : {}),
      ...(opts.tls ? { tls: opts.tls } : {}),
    });
    this.outlier = new OutlierDetector({
      config: opts.config.outlier,
      store: this.store,
      ...(opts.now ? { now: opts.now } : {}),
      onEvent: (e) => this.#outlierEvent(e),
    });
  }

  /** Follows the catalog from now on: probes, outlier tracking and forgetting. */
  start(catalog: SnapshotSource): void {
    if (this.#unsubscribe) return;
    this.update(catalog.current());
    this.#unsubscribe = catalog.subscribe((s) => this.update(s));
    this.outlier.start();
  }

  update(snapshot: Snapshot): void {
    this.#last = snapshot;
    this.outlier.update(snapshot);
    this.active.update(snapshot);
    const before = this.#services;
    this.#services = snapshot.services;
    for (const key of new Set([...before.keys(), ...snapshot.services.keys()])) {
      const svc = snapshot.services.get(key);
      if (before.get(key) !== svc) this.store.retain(key, catalogIds(svc));
    }
  }

  /** New settings (reload): applied in place; verdicts and ejections carry over. */
  reconfigure(config: Config['health'], addressing: Config['dns']['addressing']): void {
    this.outlier.reconfigure(config.outlier);
    this.active.reconfigure(config.active, addressing);
    if (this.#last) this.active.update(this.#last);
  }

  /** The proxy tells what happened to a request at an endpoint. */
  report(service: string, id: string, outcome: Outcome): void {
    this.outlier.report(service, id, outcome);
    // A failure the proxy saw itself: have the active check look now, and often.
    if (outcome.origin === 'local') this.active.expedite(service, id);
  }

  async stop(): Promise<void> {
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
    this.outlier.stop();
    await this.active.stop();
  }

  #outlierEvent(e: OutlierEvent): void {
    const fields = { service: e.service, id: e.id, reason: e.reason, times: e.times };
    if (e.type === 'ejected') {
      this.#log.warn({ ...fields, until: new Date(e.until!).toISOString() }, 'endpoint ejected');
    } else if (e.type === 'returned') {
      this.#log.info(fields, 'ejected endpoint returns');
    } else {
      this.#log.warn(fields, 'outlier detected but not ejected: max ejection percent reached');
    }
    this.#onOutlier?.(e);
  }
}
