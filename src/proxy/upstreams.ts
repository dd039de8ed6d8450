// Upstream connections, per endpoint: for HTTP/1.1 one undici Pool per origin (and
// TLS settings), with keep-alive; for HTTP/2 one session pool (h2-pool.ts), its
// requests multiplexed. Requests in flight are counted here per endpoint id,
// whatever carries them: p2c reads them, and the cap turns into "pending" (wait for a
// slot, bounded per service) and then "overflow" (503 at once), as Envoy's circuit
// breakers do. The pending queue takes its clients in turn (pending.ts). Pools of
// endpoints that left the catalog are closed once idle.
import { type Dispatcher, Pool } from 'undici';
import { H1TrailerUpstream } from './h1-trailers.ts';
import { H2Pool } from './h2-pool.ts';
import type { Upstream, UpstreamRoute } from './h2-upstream.ts';
import { PendingQueue, type Waiter } from './pending.ts';
import { dialer, tlsPool } from './upstream-tls.ts';

export interface UpstreamOptions {
  readonly maxRequestsPerEndpoint: number;
  readonly maxPendingPerService: number;
  readonly connectTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly bodyTimeoutMs: number;
}

export type { Upstream, UpstreamRoute } from './h2-upstream.ts';

/** One endpoint (cluster/address): its requests in flight, and a pool per origin and wire used. */
export class UpstreamEndpoint {
  readonly id: string;
  inflight = 0;
  /** The service that last sent here: whose pending requests a freed slot wakes. */
  service = '';
  readonly #pools = new Map<string, Upstream>();
  /** The pool key in use per protocol, TLS profile name and origin. */
  readonly #keys = new Map<string, string>();
  readonly #make: (route: UpstreamRoute, kind: UpstreamKind, ep: UpstreamEndpoint) => Upstream;

  constructor(
    id: string,
    make: (route: UpstreamRoute, kind: UpstreamKind, ep: UpstreamEndpoint) => Upstream,
  ) {
    this.id = id;
    this.#make = make;
  }

  /** The HTTP/1.1 pool for origin `http://host:port` in clear, made on first use. */
  pool(origin: string): Pool {
    return this.http1({ origin, wire: { h2: false, tls: undefined } }) as unknown as Pool;
  }

  /** Where a request on `route` goes: HTTP/2 sessions when its wire says so, else HTTP/1.1. */
  upstream(route: UpstreamRoute): Upstream {
    return route.wire.h2 ? this.#get(route, 'h2') : this.http1(route);
  }

  /** HTTP/1.1 on `route` for a request that announces trailers (h1-trailers.ts). */
  withTrailers(route: UpstreamRoute): Upstream {
    return this.#get(route, 'h1t');
  }

  /** HTTP/1.1 on `route` (upgrades, and backends whose ALPN picked it), made on first use. */
  http1(route: UpstreamRoute): Upstream {
    return this.#get(route, 'h1');
  }

  #get(route: UpstreamRoute, kind: UpstreamKind): Upstream {
    const tlsKey = route.wire.tls?.key ?? '';
    const key = `${kind} ${tlsKey} ${route.origin}`;
    let p = this.#pools.get(key);
    if (!p) {
      // A TLS profile's new key (`name:hash`: a reload changed it or its files): the
      // pool made under the old one finishes what it has, then closes.
      const slot = `${kind} ${profileOf(tlsKey)} ${route.origin}`;
      const old = this.#keys.get(slot);
      if (old !== undefined) {
        void this.#pools
          .get(old)
          ?.close()
          .catch(() => {});
        this.#pools.delete(old);
      }
      this.#keys.set(slot, key);
      p = this.#make(route, kind, this);
      this.#pools.set(key, p);
    }
    return p;
  }

  pools(): Upstream[] {
    return [...this.#pools.values()];
  }
}

/** undici's HTTP/1.1 pool, the HTTP/2 session pool, or node:http for requests with trailers. */
type UpstreamKind = 'h1' | 'h2' | 'h1t';

/** A TLS key's profile: `name` of `name:hash`; a key of another shape is its own. */
function profileOf(key: string): string {
  const i = key.lastIndexOf(':');
  return i < 0 ? key : key.slice(0, i);
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

  readonly #makePool = (
    route: UpstreamRoute,
    kind: UpstreamKind,
    ep: UpstreamEndpoint,
  ): Upstream => {
    const o = this.#opts;
    const tls = route.wire.tls;
    if (kind === 'h1t') {
      return new H1TrailerUpstream({
        origin: route.origin,
        tls: tls?.options,
        maxSockets: o.maxRequestsPerEndpoint,
        idleTimeoutMs: o.idleTimeoutMs,
        bodyTimeoutMs: o.bodyTimeoutMs,
      });
    }
    if (kind === 'h1') {
      const options: Pool.Options = {
        connections: o.maxRequestsPerEndpoint,
        pipelining: 1,
        keepAliveTimeout: o.idleTimeoutMs,
        keepAliveMaxTimeout: o.idleTimeoutMs,
        connectTimeout: o.connectTimeoutMs,
        // The proxy's own per-try timer bounds the wait for a response head.
        headersTimeout: 0,
        bodyTimeout: o.bodyTimeoutMs,
      };
      return tls
        ? tlsPool(route.origin, options, tls)
        : (new Pool(route.origin, options) as Upstream);
    }
    return new H2Pool({
      origin: tls ? route.origin.replace(/^http:/, 'https:') : route.origin,
      dial: dialer(route),
      connectTimeoutMs: o.connectTimeoutMs,
      idleTimeoutMs: o.idleTimeoutMs,
      bodyTimeoutMs: o.bodyTimeoutMs,
      fallback: () => ep.http1(route) as unknown as Dispatcher,
      fallbackForTrailers: () => ep.withTrailers(route) as unknown as Dispatcher,
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
