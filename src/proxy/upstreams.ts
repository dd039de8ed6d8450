// Upstream connections: one undici Pool per endpoint (address and port), with
// keep-alive and a cap on requests in flight. Requests in flight are counted here
// per endpoint id: p2c reads them, and the cap turns into "pending" (wait for a
// slot, bounded per service) and then "overflow" (503 at once), as Envoy's circuit
// breakers do. The pending queue takes its clients in turn (pending.ts). Pools of
// endpoints that left the catalog are closed once idle.
import { Pool } from 'undici';
import { PendingQueue, type Waiter } from './pending.ts';

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

export class Upstreams {
  readonly #opts: UpstreamOptions;
  /** By endpoint id. */
  readonly #endpoints = new Map<string, UpstreamEndpoint>();
  readonly #pending = new Map<string, PendingQueue>();
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
    const queue = this.#pending.get(ep.service);
    const w = queue?.shift();
    if (queue && queue.size === 0) this.#pending.delete(ep.service);
    w?.settle(true);
  }

  /**
   * Waits for a slot to free up in the service (any of its endpoints), in `client`'s
   * turn. false at once when the service's pending queue is full (or later, when a
   * client with fewer waiting took this place); `signal` ends the wait early.
   */
  waitForSlot(
    service: string,
    client: string,
    timeoutMs: number,
    signal: AbortSignal,
  ): Promise<boolean> {
    const queue = this.#pending.get(service) ?? new PendingQueue();
    return new Promise<boolean>((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const settle = (ok: boolean) => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        queue.remove(waiter);
        if (queue.size === 0 && this.#pending.get(service) === queue) this.#pending.delete(service);
        resolve(ok);
      };
      const waiter: Waiter = { client, settle };
      const onAbort = () => settle(false);
      if (!queue.push(waiter, this.#opts.maxPendingPerService)) {
        resolve(false);
        return;
      }
      this.#pending.set(service, queue);
      timer = setTimeout(() => settle(false), timeoutMs);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  pendingCount(service: string): number {
    return this.#pending.get(service)?.size ?? 0;
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
    for (const queue of this.#pending.values()) for (const w of queue.all()) w.settle(true);
    await Promise.all(pools.map((p) => (force ? p.destroy() : p.close()).catch(() => {})));
  }
}
