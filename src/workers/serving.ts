// The serving part of fedgate, DNS and the proxy, as the runtime drives it: started,
// reloaded in two steps (stage binds what is new and can fail; commit cannot),
// drained and stopped. LocalServing runs both in this process: `--workers 1`, the
// demo, and each worker process. WorkerPool (pool.ts) runs them in N processes.
import type { Catalog } from '../catalog/catalog.ts';
import type { Config } from '../config/schema.ts';
import { DnsServer } from '../dns/server.ts';
import { FedgateError } from '../errors.ts';
import type { RouteTables } from '../gateway/attached.ts';
import type { Outcome } from '../health/outlier.ts';
import type { HealthStore } from '../health/store.ts';
import type { AcceptGuard } from '../observe/exhaustion.ts';
import type { Logger } from '../observe/log.ts';
import type { Metrics } from '../observe/metrics.ts';
import { startTracing, type Tracing } from '../observe/tracing.ts';
import type { ProxyObserver } from '../proxy/observer.ts';
import { ProxyServer } from '../proxy/server.ts';
import type { Router } from '../routing/router.ts';
import { type StagedChange, stageTogether } from '../staged-change.ts';
import type { ServingAddresses, ServingChanges } from './protocol.ts';

/**
 * A reload's serving part: new listeners bound, nothing else changed yet. Its
 * commit makes the new settings and listeners current in DNS and the proxy.
 */
export interface StagedServing extends StagedChange, ServingChanges {}

export interface Serving {
  /** Binds what `next` adds; throws (FedgateError, having closed it again) when it cannot. */
  stage(next: Config): Promise<StagedServing>;
  /** Stops accepting; requests and TCP queries in flight get `graceMs`. Counts what was cut. */
  drain(graceMs: number): Promise<{ proxyCut: number; dnsCut: number }>;
  /** Closes everything (after drain). */
  stop(): Promise<void>;
  addresses(): ServingAddresses;
  /** Whether every listener is up (worker processes: every worker). */
  readiness(): { ready: boolean; reason: string };
  /** Resolves once DNS and the proxy hold every snapshot and health change published so far. */
  sync(): Promise<void>;
  /** New Gateway API routes for the proxy (every worker's): swapped in whole. */
  setRoutes(tables: RouteTables): void;
}

/** A listener could not be opened at start (LISTEN_FAILED): which setting. */
export class ListenError extends FedgateError {
  readonly setting: string;
  constructor(setting: string, cause: unknown) {
    super('LISTEN_FAILED', (cause as Error).message, { cause });
    this.name = 'ListenError';
    this.setting = setting;
  }
}

export interface LocalServingOptions {
  readonly config: Config;
  readonly catalog: Pick<Catalog, 'current' | 'subscribe'>;
  readonly health: HealthStore;
  readonly report: { report(service: string, id: string, outcome: Outcome): void };
  readonly router: Router;
  readonly log: Logger;
  readonly metrics: Metrics;
  /** The proxy's observer for a configuration (metrics, plus the access log when on). */
  readonly observer: (config: Config) => ProxyObserver;
  /** The DNS SOA serial's base: worker processes share the primary's, so serials agree. */
  readonly serialBase?: number;
  /** The process's descriptor exhaustion tracker, which its metrics read. */
  readonly exhaustion?: AcceptGuard;
  /** DNS's UDP sockets are this process's own, on a port its sibling workers bind too. */
  readonly dnsReusePort?: boolean;
}

export class LocalServing implements Serving {
  readonly dns: DnsServer;
  readonly proxy: ProxyServer;
  readonly #observer: (config: Config) => ProxyObserver;
  readonly #tracing: Tracing | undefined;
  readonly #log: Logger;
  /** The tracing settings the process started with: a reload does not change them. */
  readonly #tracingConfig: string;
  readonly #exportTimeoutMs: number;
  #drained = false;

  private constructor(
    dns: DnsServer,
    proxy: ProxyServer,
    opts: LocalServingOptions,
    tracing: Tracing | undefined,
  ) {
    this.dns = dns;
    this.proxy = proxy;
    this.#observer = opts.observer;
    this.#tracing = tracing;
    this.#log = opts.log;
    this.#tracingConfig = JSON.stringify(opts.config.tracing);
    this.#exportTimeoutMs = opts.config.tracing.exportTimeout;
  }

  /** DNS, then the proxy. Throws ListenError naming the setting, having closed what opened. */
  static async start(opts: LocalServingOptions): Promise<LocalServing> {
    const { config, catalog, router, log } = opts;
    const dns = await DnsServer.start({
      config,
      catalog,
      health: opts.health,
      router,
      log,
      ...(opts.serialBase !== undefined ? { serialBase: opts.serialBase } : {}),
      ...(opts.exhaustion ? { exhaustion: opts.exhaustion } : {}),
      ...(opts.dnsReusePort ? { reusePort: true } : {}),
    }).catch((e: unknown) => {
      throw new ListenError('dns.listen', e);
    });
    opts.metrics.attachDns(dns);
    const tracing = startTracing({ config: config.tracing, observer: opts.metrics, log });
    const proxy = await ProxyServer.start({
      config,
      catalog,
      health: opts.report,
      router,
      log,
      observer: opts.observer(config),
      ...(opts.exhaustion ? { exhaustion: opts.exhaustion } : {}),
      tracing,
    }).catch(async (e: unknown) => {
      await Promise.all([dns.stop(), tracing?.shutdown()]);
      throw new ListenError('http.listen', e);
    });
    return new LocalServing(dns, proxy, opts, tracing);
  }

  /** DNS, then the proxy; committed in that order. */
  stage(next: Config): Promise<StagedServing> {
    // The exporter's queue and connection live as long as the process: new settings
    // would need a new provider, and spans in flight would straddle the two.
    if (JSON.stringify(next.tracing) !== this.#tracingConfig) {
      this.#log.warn('tracing settings changed: they apply when fedgate restarts');
    }
    return stageTogether(async (add) => {
      const dns = await add(this.dns.stage(next));
      const proxy = await add(this.proxy.stage(next, { observer: this.#observer(next) }));
      return {
        opened: [...dns.opened.map((k) => `dns ${k}`), ...proxy.opened],
        closed: [...dns.closed.map((k) => `dns ${k}`), ...proxy.closed],
        certificatesChanged: proxy.certificatesChanged,
      };
    });
  }

  async drain(graceMs: number): Promise<{ proxyCut: number; dnsCut: number }> {
    this.#drained = true;
    const [proxy, dns] = await Promise.all([this.proxy.drain(graceMs), this.dns.drain(graceMs)]);
    return { proxyCut: proxy.cut, dnsCut: dns.cut };
  }

  async stop(): Promise<void> {
    // Drained, the proxy has closed everything already.
    if (!this.#drained) await this.proxy.stop();
    await this.dns.stop();
    await this.#flushSpans();
  }

  /** The spans still queued go out, for at most tracing.exportTimeout (a gone collector must not hold the exit up). */
  async #flushSpans(): Promise<void> {
    const tracing = this.#tracing;
    if (!tracing) return;
    let timer: NodeJS.Timeout | undefined;
    const cap = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, this.#exportTimeoutMs);
    });
    await Promise.race([tracing.shutdown().catch(() => {}), cap]);
    clearTimeout(timer);
  }

  addresses(): ServingAddresses {
    const p = this.proxy.addresses();
    return { udp: this.dns.addresses().udp, http: p.http, https: p.https };
  }

  readiness(): { ready: boolean; reason: string } {
    return { ready: true, reason: 'listening' };
  }

  /** In one process they read the catalog and health directly: always in step. */
  async sync(): Promise<void> {}

  setRoutes(tables: RouteTables): void {
    this.proxy.setRoutes(tables);
  }
}
