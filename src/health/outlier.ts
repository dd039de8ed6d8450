// Passive outlier detection, Envoy's consecutive-failure rules. The proxy reports
// every outcome; a run of failures ejects the endpoint for base × times-ejected
// (capped), never more than maxEjectionPercent of a service's endpoints at once
// (but always at least one). Ejected endpoints return at the evaluation tick after
// their time is up, and each tick without an ejection lowers the multiplier again.
//
// Failures are told apart by origin, as Envoy's split_external_local_origin_errors:
// a 5xx the upstream sent counts toward consecutive5xx; a failure the proxy saw
// itself (connect failure, reset, timeout, TLS handshake) toward consecutiveGatewayFailure.
// A gRPC answer is HTTP 200 whatever happened: its grpc-status (in a trailers-only
// head or in the trailers) UNAVAILABLE, INTERNAL, UNKNOWN or DATA_LOSS counts as a 5xx.
import type { FederatedService, Snapshot } from '../catalog/model.ts';
import { GRPC_STATUS } from '../errors.ts';
import { endpointId } from '../routing/types.ts';
import type { HealthStore } from './store.ts';

/** tls: the handshake failed (verification, or the backend refused fedgate's client certificate). */
export type LocalFailure = 'connect' | 'reset' | 'timeout' | 'tls';

export type Outcome =
  | {
      readonly origin: 'upstream';
      readonly status: number;
      /** A gRPC call's grpc-status, when the answer carried one. */
      readonly grpcStatus?: number | undefined;
    }
  | {
      readonly origin: 'local';
      readonly failure: LocalFailure;
      /** What failed, when the kind alone does not say (a TLS failure's code and message). */
      readonly detail?: string | undefined;
    };

export type EjectionReason = 'consecutive-5xx' | 'consecutive-gateway-failure';

export interface OutlierConfig {
  readonly consecutive5xx: number;
  readonly consecutiveGatewayFailure: number;
  readonly baseEjectionTime: number;
  readonly maxEjectionTime: number;
  readonly maxEjectionPercent: number;
  readonly interval: number;
}

export interface OutlierEvent {
  readonly type: 'ejected' | 'not-enforced' | 'returned';
  readonly service: string;
  readonly id: string;
  readonly reason?: EjectionReason;
  /** When an enforced ejection may end. */
  readonly until?: number;
  /** How many times the endpoint has been ejected (the ejection time multiplier). */
  readonly times: number;
}

export interface OutlierStats {
  readonly detected: Record<EjectionReason, number>;
  readonly enforced: Record<EjectionReason, number>;
  readonly returned: number;
  readonly ejected: number;
  readonly reports: { readonly upstream5xx: number; readonly local: number; readonly ok: number };
}

interface Monitor {
  consecutive5xx: number;
  consecutiveGateway: number;
  times: number;
  ejectedUntil: number | undefined;
}

export interface OutlierOptions {
  readonly config: OutlierConfig;
  readonly store: HealthStore;
  readonly now?: () => number;
  readonly onEvent?: (e: OutlierEvent) => void;
}

/** UNKNOWN, INTERNAL, UNAVAILABLE, DATA_LOSS: the server failed, not the call. */
const FAILING_GRPC = new Set<number>([
  GRPC_STATUS.UNKNOWN,
  GRPC_STATUS.INTERNAL,
  GRPC_STATUS.UNAVAILABLE,
  GRPC_STATUS.DATA_LOSS,
]);
export function failingGrpc(code: number | undefined): boolean {
  return code !== undefined && FAILING_GRPC.has(code);
}

const zero = (): Record<EjectionReason, number> => ({
  'consecutive-5xx': 0,
  'consecutive-gateway-failure': 0,
});

export class OutlierDetector {
  #config: OutlierConfig;
  readonly #store: HealthStore;
  readonly #now: () => number;
  readonly #onEvent: ((e: OutlierEvent) => void) | undefined;
  /** service → endpoint id → monitor. Follows the catalog. */
  readonly #services = new Map<string, Map<string, Monitor>>();
  #seen: ReadonlyMap<string, FederatedService> = new Map();
  readonly #detected = zero();
  readonly #enforced = zero();
  #returned = 0;
  #reports = { upstream5xx: 0, local: 0, ok: 0 };
  #timer: NodeJS.Timeout | undefined;

  constructor(opts: OutlierOptions) {
    this.#config = opts.config;
    this.#store = opts.store;
    this.#now = opts.now ?? Date.now;
    this.#onEvent = opts.onEvent;
  }

  /**
   * Track the endpoints of every service in the snapshot: new ones start clean, gone
   * ones are forgotten. Only services whose object changed are looked at (a snapshot
   * hands out the same object for an unchanged service).
   */
  update(snapshot: Snapshot): void {
    for (const [key, svc] of snapshot.services) {
      if (this.#seen.get(key) === svc) continue;
      const old = this.#services.get(key);
      const next = new Map<string, Monitor>();
      for (const m of svc.clusters) {
        for (const e of m.endpoints) {
          if (e.conditions.terminating || e.addresses.length === 0) continue;
          const id = endpointId(m.cluster, e.addresses[0]!);
          next.set(id, old?.get(id) ?? fresh());
        }
      }
      this.#services.set(key, next);
    }
    for (const key of this.#services.keys()) {
      if (!snapshot.services.has(key)) this.#services.delete(key);
    }
    this.#seen = snapshot.services;
  }

  /** One request's outcome at an endpoint. Unknown endpoints are ignored. */
  report(service: string, id: string, outcome: Outcome): void {
    const m = this.#services.get(service)?.get(id);
    if (!m) return;
    if (outcome.origin === 'local') {
      this.#reports.local++;
      if (++m.consecutiveGateway >= this.#config.consecutiveGatewayFailure) {
        this.#detect(service, id, m, 'consecutive-gateway-failure');
      }
      return;
    }
    // The upstream answered: the connection path works.
    m.consecutiveGateway = 0;
    if (outcome.status >= 500 || failingGrpc(outcome.grpcStatus)) {
      this.#reports.upstream5xx++;
      if (++m.consecutive5xx >= this.#config.consecutive5xx) {
        this.#detect(service, id, m, 'consecutive-5xx');
      }
    } else {
      this.#reports.ok++;
      m.consecutive5xx = 0;
    }
  }

  #detect(service: string, id: string, m: Monitor, reason: EjectionReason): void {
    // Reset so the next run of failures is detected again, as Envoy does.
    m.consecutive5xx = 0;
    m.consecutiveGateway = 0;
    if (m.ejectedUntil !== undefined) return;
    this.#detected[reason]++;
    const hosts = this.#services.get(service)!;
    let ejected = 0;
    for (const h of hosts.values()) if (h.ejectedUntil !== undefined) ejected++;
    if (ejected > 0 && (ejected * 100) / hosts.size >= this.#config.maxEjectionPercent) {
      this.#onEvent?.({ type: 'not-enforced', service, id, reason, times: m.times });
      return;
    }
    this.#enforced[reason]++;
    m.times++;
    const now = this.#now();
    const cap = Math.max(this.#config.baseEjectionTime, this.#config.maxEjectionTime);
    m.ejectedUntil = now + Math.min(this.#config.baseEjectionTime * m.times, cap);
    this.#store.setEjection(service, id, m.ejectedUntil, reason);
    this.#onEvent?.({
      type: 'ejected',
      service,
      id,
      reason,
      until: m.ejectedUntil,
      times: m.times,
    });
  }

  /** The periodic pass: return endpoints whose time is up; lower the multiplier of the others. */
  evaluate(): void {
    const now = this.#now();
    for (const [service, hosts] of this.#services) {
      for (const [id, m] of hosts) {
        if (m.ejectedUntil === undefined) {
          if (m.times > 0) m.times--;
        } else if (now >= m.ejectedUntil) {
          m.ejectedUntil = undefined;
          this.#returned++;
          this.#store.setEjection(service, id, undefined);
          this.#onEvent?.({ type: 'returned', service, id, times: m.times });
        }
      }
    }
  }

  /** New settings (reload): ejections in force keep their end; the next ones follow these. */
  reconfigure(config: OutlierConfig): void {
    const interval = this.#config.interval;
    this.#config = config;
    if (this.#timer && interval !== config.interval) {
      this.stop();
      this.start();
    }
  }

  start(): void {
    this.#timer ??= setInterval(() => this.evaluate(), this.#config.interval);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  stats(): OutlierStats {
    let ejected = 0;
    for (const hosts of this.#services.values()) {
      for (const m of hosts.values()) if (m.ejectedUntil !== undefined) ejected++;
    }
    return {
      detected: { ...this.#detected },
      enforced: { ...this.#enforced },
      returned: this.#returned,
      ejected,
      reports: { ...this.#reports },
    };
  }
}

function fresh(): Monitor {
  return {
    consecutive5xx: 0,
    consecutiveGateway: 0,
    times: 0,
    ejectedUntil: undefined,
  };
}
