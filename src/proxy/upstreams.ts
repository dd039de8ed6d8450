// Upstream connections: one undici Pool per endpoint (address and port), with
// keep-alive and a cap on requests in flight. Requests in flight are counted here
// per endpoint id: p2c reads them, and the cap turns into "pending" (wait for a
// slot, bounded per service) and then "overflow" (503 at once), as Envoy's circuit
// breakers do. The pending queue takes its clients in turn (pending.ts). Pools of
// endpoints that left the catalog are closed once idle. A service with a backend
// TLS profile gets a pool per origin under the profile's key: a new key (a reload
// that changed the profile or its files) makes a new pool, and the old one closes
// once its requests are done.
import { buildConnector, Pool } from 'undici';
import type { BackendTlsContext } from './backend-tls.ts';
import { tlsFailure } from './failures.ts';
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
  /** Over TLS, by origin and profile name: the pool and the profile key it was made with. */
  readonly #tlsPools = new Map<string, { key: string; pool: Pool }>();
  readonly #make: (origin: string, tls?: BackendTlsContext) => Pool;

  constructor(id: string, make: (origin: string, tls?: BackendTlsContext) => Pool) {
    this.id = id;
    this.#make = make;
  }

  /**
   * The pool for origin `http://host:port`, made on first use; with `tls`, the one
   * dialling `https://host:port` with the profile's options.
   */
  pool(origin: string, tls?: BackendTlsContext): Pool {
    if (tls) return this.#tlsPool(origin, tls);
    let p = this.#pools.get(origin);
    if (!p) {
      p = this.#make(origin);
      this.#pools.set(origin, p);
    }
    return p;
  }

  #tlsPool(origin: string, tls: BackendTlsContext): Pool {
    // By origin and profile name (the key is `name:hash`): two services on the same
    // pods with different profiles keep a pool each.
    const i = tls.key.lastIndexOf(':');
    const slot = `${origin} ${i < 0 ? tls.key : tls.key.slice(0, i)}`;
    const kept = this.#tlsPools.get(slot);
    if (kept?.key === tls.key) return kept.pool;
    // A new key for the profile: connections made under its old settings finish, then close.
    if (kept) void kept.pool.close().catch(() => {});
    const pool = this.#make(`https${origin.slice(origin.indexOf(':'))}`, tls);
    this.#tlsPools.set(slot, { key: tls.key, pool });
    return pool;
  }

  pools(): Pool[] {
    return [...this.#pools.values(), ...[...this.#tlsPools.values()].map((x) => x.pool)];
  }
}

/**
 * undici's connector with the profile's TLS options. A backend that refuses
 * fedgate's client certificate says so by an alert after the TLS 1.3 handshake,
 * which the socket emits as an error just before its end; undici then fails the
 * request with "other side closed" (observed on Node 24.21, undici 8). The alert is
 * put on that error as its cause, so the classifier sees a TLS failure.
 */
function tlsConnector(tls: BackendTlsContext, timeout: number): buildConnector.connector {
  const connect = buildConnector({ ...tls.options, timeout } as buildConnector.BuildOptions);
  const servername = tls.options.servername;
  return (opts, callback) =>
    connect({ ...opts, ...(servername ? { servername } : {}) }, (err, socket) => {
      if (socket) {
        let alert: Error | undefined;
        socket.prependListener('error', (e: Error) => {
          if (alert === undefined && tlsFailure(e)) alert = e;
          else if (alert !== undefined && e !== alert && e.cause === undefined) e.cause = alert;
        });
      }
      // undici's own types: exactly one of the two is set.
      (callback as (e: Error | null, s: typeof socket) => void)(err, socket);
    });
}

/**
 * What a try over TLS adds to its dispatch options: the profile's SNI name. undici
 * otherwise takes each request's Host as its servername, and closes a connection
 * whose servername differs from the next request's (undici 8, client.js): clients
 * naming one service by several hosts would churn connections. undici reads the
 * option though its types do not list it.
 */
export function tlsDispatchOptions(tls: BackendTlsContext | undefined): object {
  const servername = tls?.options.servername;
  return servername ? { servername } : {};
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

  readonly #makePool = (origin: string, tls?: BackendTlsContext): Pool => {
    const o = this.#opts;
    return new Pool(origin, {
      ...(tls ? { connect: tlsConnector(tls, o.connectTimeoutMs) } : {}),
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
