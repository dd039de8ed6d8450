// Upstream connections: one undici Pool per endpoint (address and port), with
// keep-alive and a cap on requests in flight. Requests in flight are counted here
// per endpoint id: p2c reads them, and the cap turns into "pending" (wait for a
// slot, bounded per service) and then "overflow" (503 at once), as Envoy's circuit
// breakers do. Pools of endpoints that left the catalog are closed once idle.
import { Pool } from 'undici';

export interface UpstreamOptions {
  readonly maxRequestsPerEndpoint: number;
  readonly maxPendingPerService: number;
  readonly connectTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly bodyTimeoutMs: number;
}

/** One endpoint (cluster/address): its requests in flight, and a pool per port used. */
export class UpstreamEndpoint {
  readonly id: string;
  inflight = 0;
  /** The service that last sent here: whose pending requests a freed slot wakes. */
  service = '';
  readonly #pools = new Map<string, Pool>();
  readonly #make: (origin: string) => Pool;

  constructor(id: string, make: (origin: string) => Pool) {
    this.id = id;
    this.#make = make;
  }

  /** The pool for origin `http://host:port`, made on first use. */
  pool(origin: string): Pool {
    let p = this.#pools.get(origin);
    if (!p) {
      p = this.#make(origin);
      this.#pools.set(origin, p);
    }
    return p;
  }

  pools(): Pool[] {
    return [...this.#pools.values()];
  }
}

interface Waiter {
  readonly wake: () => void;
}

export class Upstreams {
  readonly #opts: UpstreamOptions;
  /** By endpoint id. */
  readonly #endpoints = new Map<string, UpstreamEndpoint>();
  readonly #pending = new Map<string, Waiter[]>();
  /** Requests in flight by endpoint id: p2c's view. */
  readonly outstanding = (id: string): number => this.#endpoints.get(id)?.inflight ?? 0;

  constructor(opts: UpstreamOptions) {
    this.#opts = opts;
  }

  get size(): number {
    return this.#endpoints.size;
  }

  endpoint(id: string): UpstreamEndpoint {
    let ep = this.#endpoints.get(id);
    if (!ep) {
      ep = new UpstreamEndpoint(id, this.#makePool);
      this.#endpoints.set(id, ep);
    }
    return ep;
  }

  readonly #makePool = (origin: string): Pool => {
    const o = this.#opts;
    return new Pool(origin, {
      connections: o.maxRequestsPerEndpoint,
      pipelining: 1,
      keepAliveTimeout: o.idleTimeoutMs,
      keepAliveMaxTimeout: o.idleTimeoutMs,
      connectTimeout: o.connectTimeoutMs,
      // The proxy's own per-try timer bounds the wait for a response head.
      headersTimeout: 0,
      bodyTimeout: o.bodyTimeoutMs,
    });
  };

  isFull(id: string): boolean {
    return (this.#endpoints.get(id)?.inflight ?? 0) >= this.#opts.maxRequestsPerEndpoint;
  }

  acquire(ep: UpstreamEndpoint, service: string): void {
    ep.inflight++;
    ep.service = service;
  }

  release(ep: UpstreamEndpoint): void {
    ep.inflight--;
    const waiters = this.#pending.get(ep.service);
    if (waiters && waiters.length > 0) {
      const w = waiters.shift()!;
      if (waiters.length === 0) this.#pending.delete(ep.service);
      w.wake();
    }
  }

  /**
   * Waits for a slot to free up in the service (any of its endpoints). false at once
   * when the service's pending queue is full; `signal` ends the wait early.
   */
  waitForSlot(service: string, timeoutMs: number, signal: AbortSignal): Promise<boolean> {
    const waiters = this.#pending.get(service) ?? [];
    if (waiters.length >= this.#opts.maxPendingPerService) return Promise.resolve(false);
    this.#pending.set(service, waiters);
    return new Promise<boolean>((resolve) => {
      const done = (ok: boolean) => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        const list = this.#pending.get(service);
        const at = list?.indexOf(waiter) ?? -1;
        if (list && at >= 0) {
          list.splice(at, 1);
          if (list.length === 0) this.#pending.delete(service);
        }
        resolve(ok);
      };
      const waiter: Waiter = { wake: () => done(true) };
      const onAbort = () => done(false);
      const timer = setTimeout(() => done(false), timeoutMs);
      signal.addEventListener('abort', onAbort, { once: true });
      waiters.push(waiter);
    });
  }

  pendingCount(service: string): number {
    return this.#pending.get(service)?.length ?? 0;
  }

  /** Closes the pools of endpoints not in `live` (by id); in-flight requests finish first. */
  retain(live: ReadonlySet<string>): void {
    for (const [id, ep] of this.#endpoints) {
      if (live.has(id)) continue;
      this.#endpoints.delete(id);
      for (const p of ep.pools()) void p.close();
    }
  }

  /** Closes every pool after its requests finish; `force` aborts them. */
  async close(force = false): Promise<void> {
    const pools = [...this.#endpoints.values()].flatMap((e) => e.pools());
    this.#endpoints.clear();
    for (const list of this.#pending.values()) for (const w of [...list]) w.wake();
    await Promise.all(pools.map((p) => (force ? p.destroy() : p.close()).catch(() => {})));
  }
}
