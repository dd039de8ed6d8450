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

/** One service's health as a whole: what a worker process's mirror takes from the primary. */
export interface ServiceHealthEntry {
  readonly service: string;
  readonly version: number;
  readonly endpoints: readonly (readonly [string, EndpointHealth])[];
}

/** Health of an endpoint the store no longer knows (forgotten): as if never checked. */
const FORGOTTEN: EndpointHealth = { check: 'unknown' };

export class HealthStore implements HealthView {
  readonly #services = new Map<string, ServiceHealth>();
  readonly #listeners = new Set<HealthListener>();
  readonly #versionWatchers = new Set<(service: string) => void>();
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
    if (changed) this.#bump(s, service);
  }

  /** Calls back with the service whose version moved, for any change (forgetting too). */
  watchVersions(fn: (service: string) => void): () => void {
    this.#versionWatchers.add(fn);
    return () => this.#versionWatchers.delete(fn);
  }

  /** Services with an entry (one may be empty: its version still counts). */
  services(): IterableIterator<string> {
    return this.#services.keys();
  }

  /** One service's health whole, version included; undefined when the store has none. */
  exportService(service: string): ServiceHealthEntry | undefined {
    const s = this.#services.get(service);
    if (!s) return undefined;
    return { service, version: s.version, endpoints: [...s.endpoints] };
  }

  /**
   * Takes another store's state of one service whole (exportService there), its
   * version too, so plans cached for the old version are rebuilt: how a worker
   * process follows the primary's health. Listeners hear each endpoint that changed
   * (a forgotten one as unchecked).
   */
  mirror(entry: ServiceHealthEntry): void {
    let s = this.#services.get(entry.service);
    if (!s) {
      s = { version: 0, endpoints: new Map(), affecting: new Map() };
      this.#services.set(entry.service, s);
    }
    if (s.version === entry.version) return;
    const before = new Map(s.endpoints);
    s.endpoints.clear();
    s.affecting.clear();
    for (const [id, h] of entry.endpoints) {
      s.endpoints.set(id, h);
      if (affects(h)) s.affecting.set(id, h);
    }
    s.version = entry.version;
    this.#version = Math.max(this.#version + 1, entry.version);
    for (const fn of this.#versionWatchers) fn(entry.service);
    const changed: [string, EndpointHealth][] = [];
    for (const [id, h] of s.endpoints) if (!sameHealth(before.get(id), h)) changed.push([id, h]);
    for (const id of before.keys()) if (!s.endpoints.has(id)) changed.push([id, FORGOTTEN]);
    for (const [id, h] of changed) for (const l of this.#listeners) l(entry.service, id, h);
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
    this.#bump(s, service);
    for (const l of this.#listeners) l(service, id, health);
  }

  #bump(s: ServiceHealth, service: string): void {
    this.#version++;
    s.version = this.#version;
    for (const fn of this.#versionWatchers) fn(service);
  }
}

function sameHealth(a: EndpointHealth | undefined, b: EndpointHealth): boolean {
  return (
    a !== undefined &&
    a.check === b.check &&
    a.checkDetail === b.checkDetail &&
    a.ejectedUntil === b.ejectedUntil &&
    a.ejectionReason === b.ejectionReason
  );
}
