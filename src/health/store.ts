// The health view routing reads: per service, per endpoint, the active check's
// verdict and any ejection. Writers (active checks, outlier detection) change it
// through here, and every change that matters bumps the service's version, so
// cached plans of that service are rebuilt and no others.
import type { CheckState, EndpointHealth, HealthView } from '../routing/types.ts';

interface ServiceHealth {
  version: number;
  readonly endpoints: Map<string, EndpointHealth>;
  /** The subset that changes routing (failing a check, or ejected): usually empty, so plans skip lookups. */
  readonly affecting: Map<string, EndpointHealth>;
}

function affects(h: EndpointHealth): boolean {
  return h.check === 'unhealthy' || h.ejectedUntil !== undefined;
}

export type HealthListener = (service: string, id: string, health: EndpointHealth) => void;

export class HealthStore implements HealthView {
  readonly #services = new Map<string, ServiceHealth>();
  readonly #listeners = new Set<HealthListener>();
  /** Rises with every change anywhere. */
  #version = 0;

  get version(): number {
    return this.#version;
  }

  serviceVersion(service: string): number {
    return this.#services.get(service)?.version ?? 0;
  }

  endpoint(service: string, id: string): EndpointHealth | undefined {
    return this.#services.get(service)?.endpoints.get(id);
  }

  endpoints(service: string): ReadonlyMap<string, EndpointHealth> | undefined {
    const a = this.#services.get(service)?.affecting;
    return a && a.size > 0 ? a : undefined;
  }

  setCheck(service: string, id: string, check: CheckState, checkDetail?: string): void {
    const old = this.endpoint(service, id);
    if (old?.check === check && old.checkDetail === checkDetail) return;
    this.#put(service, id, { ...old, check, checkDetail });
  }

  setEjection(
    service: string,
    id: string,
    ejectedUntil: number | undefined,
    reason?: string,
  ): void {
    const old = this.endpoint(service, id);
    if (old?.ejectedUntil === ejectedUntil) return;
    this.#put(service, id, {
      check: old?.check ?? 'unknown',
      checkDetail: old?.checkDetail,
      ejectedUntil,
      ejectionReason: ejectedUntil === undefined ? undefined : reason,
    });
  }

  /** Forget endpoints that left the catalog. The service keeps its entry, so its version only rises. */
  retain(service: string, ids: ReadonlySet<string>): void {
    const s = this.#services.get(service);
    if (!s) return;
    let changed = false;
    for (const id of s.endpoints.keys()) {
      if (!ids.has(id)) {
        s.endpoints.delete(id);
        s.affecting.delete(id);
        changed = true;
      }
    }
    if (changed) this.#bump(s);
  }

  /** Calls back on every change, after the version moved. Returns the unsubscribe. */
  subscribe(listener: HealthListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #put(service: string, id: string, health: EndpointHealth): void {
    let s = this.#services.get(service);
    if (!s) {
      s = { version: 0, endpoints: new Map(), affecting: new Map() };
      this.#services.set(service, s);
    }
    s.endpoints.set(id, health);
    if (affects(health)) s.affecting.set(id, health);
    else s.affecting.delete(id);
    // Even a new failure text bumps: plans carry it for explain.
    this.#bump(s);
    for (const l of this.#listeners) l(service, id, health);
  }

  #bump(s: ServiceHealth): void {
    this.#version++;
    s.version = this.#version;
  }
}
