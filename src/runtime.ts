// One running fedgate: discovery (watchers, catalog, health, router), metrics, the
// event journal, the admin listener, DNS and the proxy, started in that order and
// stopped in reverse. `fedgate start` and `fedgate demo` both run exactly this.
import type { AddressInfo } from 'node:net';
import { Discovery, type DiscoveryOptions } from './app.ts';
import { UsageError } from './cli-support.ts';
import type { Config } from './config/schema.ts';
import { DnsServer } from './dns/server.ts';
import { FedgateError } from './errors.ts';
import { type AdminControls, type AdminServer, startAdmin } from './observe/admin.ts';
import { EventJournal } from './observe/events.ts';
import { type Logger, withAccessLog } from './observe/log.ts';
import { Metrics } from './observe/metrics.ts';
import { ProxyServer } from './proxy/server.ts';

export function hostPort(a: { address: string; port: number; family?: string }): string {
  return a.address.includes(':') ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
}

export interface Readiness {
  readonly ready: boolean;
  /** Why not, or what is missing though ready: for people. */
  readonly reason: string;
}

export interface RuntimeOptions extends DiscoveryOptions {
  /** The demo's failure buttons on the status page. */
  readonly controls?: AdminControls;
}

export class Fedgate {
  readonly config: Config;
  readonly log: Logger;
  readonly discovery: Discovery;
  readonly metrics: Metrics;
  readonly journal: EventJournal;
  readonly admin: AdminServer;
  readonly dns: DnsServer;
  readonly proxy: ProxyServer;
  readonly #startup: { done: boolean; timedOut: boolean; missing: readonly string[] };
  readonly #stopped: AbortController;
  #draining = false;

  private constructor(parts: {
    config: Config;
    log: Logger;
    discovery: Discovery;
    metrics: Metrics;
    journal: EventJournal;
    admin: AdminServer;
    dns: DnsServer;
    proxy: ProxyServer;
    startup: { done: boolean; timedOut: boolean; missing: readonly string[] };
    stopped: AbortController;
  }) {
    this.config = parts.config;
    this.log = parts.log;
    this.discovery = parts.discovery;
    this.metrics = parts.metrics;
    this.journal = parts.journal;
    this.admin = parts.admin;
    this.dns = parts.dns;
    this.proxy = parts.proxy;
    this.#startup = parts.startup;
    this.#stopped = parts.stopped;
  }

  /**
   * Starts every part. Listener failures become UsageError naming the setting;
   * whatever had started is stopped first.
   */
  static async start(config: Config, log: Logger, opts: RuntimeOptions = {}): Promise<Fedgate> {
    const journal = opts.journal ?? new EventJournal(opts.now ? { now: opts.now } : {});
    let discovery: Discovery;
    try {
      discovery = Discovery.start(config, log, { ...opts, journal });
    } catch (e) {
      if (e instanceof FedgateError && e.code === 'KUBECONFIG_INVALID') {
        throw new UsageError(e.message);
      }
      throw e;
    }
    const metrics = new Metrics({ discovery, journal, ...(opts.now ? { now: opts.now } : {}) });
    const startup = { done: false, timedOut: false, missing: [] as readonly string[] };
    const stopped = new AbortController();
    // The admin listener asks the instance for readiness; it exists only after DNS and
    // the proxy start, so the admin closure reads it through this holder.
    const holder: { fedgate?: Fedgate } = {};
    const cleanup: Array<() => Promise<void>> = [() => discovery.stop()];
    const fail = async (e: unknown, what: string): Promise<never> => {
      for (const c of cleanup.reverse()) await c();
      throw new UsageError(`cannot listen on ${what}: ${(e as Error).message}`);
    };
    const admin = await startAdmin(config.admin.listen, {
      catalog: discovery.catalog,
      router: discovery.router,
      health: discovery.health,
      journal,
      metrics,
      config,
      watchers: discovery.watchers,
      readiness: () => holder.fedgate?.readiness() ?? { ready: false, reason: 'starting' },
      ...(opts.controls ? { controls: opts.controls } : {}),
      ...(opts.now ? { now: opts.now } : {}),
    }).catch((e: unknown) =>
      fail(e, `admin.listen ${config.admin.listen.host}:${config.admin.listen.port}`),
    );
    cleanup.push(() => admin.close());
    const dns = await DnsServer.start({
      config,
      catalog: discovery.catalog,
      health: discovery.health.store,
      router: discovery.router,
      log,
    }).catch((e: unknown) => fail(e, 'dns.listen'));
    cleanup.push(() => dns.stop());
    metrics.attachDns(dns);
    const proxy = await ProxyServer.start({
      config,
      catalog: discovery.catalog,
      health: discovery.health,
      router: discovery.router,
      log,
      observer: config.http.accessLog ? withAccessLog(metrics, log) : metrics,
    }).catch((e: unknown) => fail(e, 'http.listen'));
    const fedgate = new Fedgate({
      config,
      log,
      discovery,
      metrics,
      journal,
      admin,
      dns,
      proxy,
      startup,
      stopped,
    });
    holder.fedgate = fedgate;
    discovery.catalog.whenReady(config.watch.startupTimeout, stopped.signal).then((r) => {
      if (stopped.signal.aborted) return;
      startup.done = true;
      startup.timedOut = !r.ready;
      startup.missing = r.missing;
      const services = discovery.catalog.current().services.size;
      if (r.ready) log.info({ services }, 'ready: every member cluster has synced');
      else
        log.warn(
          { missing: r.missing, services },
          'ready after startupTimeout without every cluster',
        );
    });
    return fedgate;
  }

  /** Resolves once ready: every cluster synced once, or startupTimeout passed. */
  whenReady(): Promise<{ ready: boolean; missing: readonly string[] }> {
    return this.discovery.catalog
      .whenReady(this.config.watch.startupTimeout, this.#stopped.signal)
      .then((r) => ({ ready: r.ready, missing: r.missing }));
  }

  /** What /readyz answers: false until startup is done, and again while draining. */
  readiness(): Readiness {
    if (this.#draining) return { ready: false, reason: 'draining' };
    if (!this.#startup.done) {
      const missing = this.discovery.catalog.readiness().missing;
      return { ready: false, reason: `waiting for ${missing.join(', ') || 'the first sync'}` };
    }
    if (this.#startup.missing.length > 0)
      return { ready: true, reason: `ready without: ${this.#startup.missing.join(', ')}` };
    return { ready: true, reason: 'ready' };
  }

  get draining(): boolean {
    return this.#draining;
  }

  /** Where each listener is, as URLs and host:port, for what a command prints. */
  addresses(): { dns: string[]; http: string[]; https: string[]; admin: string } {
    const a = this.admin.address;
    return {
      dns: this.dns.addresses().udp.map(hostPort),
      http: this.proxy.addresses().http.map((x: AddressInfo) => `http://${hostPort(x)}`),
      https: this.proxy.addresses().https.map((x: AddressInfo) => `https://${hostPort(x)}`),
      admin: `http://${hostPort({ address: a.host, port: a.port })}`,
    };
  }

  /**
   * Drain, then stop: /readyz turns false, the proxy and DNS over TCP stop
   * accepting, requests and TCP queries in flight get http.drainTimeout, UDP
   * answers until the end; then everything closes.
   */
  async stop(): Promise<void> {
    this.#stopped.abort();
    this.#draining = true;
    this.log.info({ graceMs: this.config.http.drainTimeout }, 'draining: no new connections');
    const [proxy, dns] = await Promise.all([
      this.proxy.drain(),
      this.dns.drain(this.config.http.drainTimeout),
    ]);
    if (proxy.cut > 0)
      this.log.warn(
        { cut: proxy.cut },
        'HTTP connections still busy at the end of the grace period were cut',
      );
    if (dns.cut > 0)
      this.log.warn(
        { cut: dns.cut },
        'DNS TCP connections still mid-query at the end of the grace period were cut',
      );
    this.log.info('stopping');
    await this.dns.stop();
    await this.admin.close();
    await this.discovery.stop();
  }
}
