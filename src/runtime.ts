// One running fedgate: discovery (watchers, catalog, health, router), metrics, the
// event journal, the admin listener, DNS and the proxy, started in that order and
// stopped in reverse. `fedgate start` and `fedgate demo` both run exactly this.
// reload() swaps the configuration under it: every part is kept and changed in
// place, so listeners that stay keep their sockets and connections.
import type { AddressInfo } from 'node:net';
import { Discovery, type DiscoveryOptions, type PreparedDiscovery } from './app.ts';
import { UsageError } from './cli-support.ts';
import { ConfigError, loadConfig } from './config/load.ts';
import type { Config, ListenAddress } from './config/schema.ts';
import { DnsServer, listenKey, type PreparedDns } from './dns/server.ts';
import { type ErrorCode, FedgateError } from './errors.ts';
import { type AdminControls, type AdminServer, startAdmin } from './observe/admin.ts';
import { EventJournal } from './observe/events.ts';
import { type Logger, withAccessLog } from './observe/log.ts';
import { Metrics } from './observe/metrics.ts';
import { type PreparedProxy, ProxyServer } from './proxy/server.ts';
import { changedSettings, describeChanges, hasChanges, type ReloadChanges } from './reload.ts';

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

/** What a reload did: applied (with what changed), or rejected (and why). */
export type ReloadOutcome =
  | { readonly ok: true; readonly changes: ReloadChanges; readonly summary: string }
  | { readonly ok: false; readonly code: ErrorCode; readonly problem: string };

export class Fedgate {
  readonly log: Logger;
  readonly discovery: Discovery;
  readonly metrics: Metrics;
  readonly journal: EventJournal;
  readonly dns: DnsServer;
  readonly proxy: ProxyServer;
  #config: Config;
  #admin: AdminServer;
  readonly #openAdmin: (listen: ListenAddress) => Promise<AdminServer>;
  readonly #startup: { done: boolean; timedOut: boolean; missing: readonly string[] };
  readonly #stopped: AbortController;
  #draining = false;
  /** Reloads run one at a time, in the order asked. */
  #reloads: Promise<unknown> = Promise.resolve();

  private constructor(parts: {
    config: Config;
    log: Logger;
    discovery: Discovery;
    metrics: Metrics;
    journal: EventJournal;
    admin: AdminServer;
    openAdmin: (listen: ListenAddress) => Promise<AdminServer>;
    dns: DnsServer;
    proxy: ProxyServer;
    startup: { done: boolean; timedOut: boolean; missing: readonly string[] };
    stopped: AbortController;
  }) {
    this.#config = parts.config;
    this.log = parts.log;
    this.discovery = parts.discovery;
    this.metrics = parts.metrics;
    this.journal = parts.journal;
    this.#admin = parts.admin;
    this.#openAdmin = parts.openAdmin;
    this.dns = parts.dns;
    this.proxy = parts.proxy;
    this.#startup = parts.startup;
    this.#stopped = parts.stopped;
  }

  /** The configuration running now: the one started with, or the last reload's. */
  get config(): Config {
    return this.#config;
  }

  get admin(): AdminServer {
    return this.#admin;
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
    // A reload that moves admin.listen opens a new admin listener with this same context.
    const openAdmin = (listen: ListenAddress) =>
      startAdmin(listen, {
        catalog: discovery.catalog,
        router: discovery.router,
        health: discovery.health,
        journal,
        metrics,
        // Read through the instance: a reload swaps it under a running listener.
        get config() {
          return holder.fedgate?.config ?? config;
        },
        watchers: discovery.watchers,
        readiness: () => holder.fedgate?.readiness() ?? { ready: false, reason: 'starting' },
        ...(opts.controls ? { controls: opts.controls } : {}),
        ...(opts.now ? { now: opts.now } : {}),
      });
    const admin = await openAdmin(config.admin.listen).catch((e: unknown) =>
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
      openAdmin,
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
    // Once ready, a replica stays ready when a reload adds a cluster: every replica
    // reloads the same ConfigMap, and all of them leaving their Service at once
    // would be an outage caused by adding capacity. The new cluster serves as soon
    // as it has synced. Clusters removed since are no longer missing.
    const names = new Set(this.#config.clusters.map((c) => c.name));
    const missing = this.#startup.missing.filter((n) => names.has(n));
    if (missing.length > 0) return { ready: true, reason: `ready without: ${missing.join(', ')}` };
    return { ready: true, reason: 'ready' };
  }

  /**
   * Loads `file` with the same loader as at start, and applies it (see reload).
   * Never throws: a bad file is logged and journaled, and nothing changes.
   */
  reloadFile(file: string, trigger: string): Promise<ReloadOutcome> {
    return this.#queue(() => {
      let next: Config;
      try {
        next = loadConfig(file);
      } catch (e) {
        return Promise.resolve(this.#rejected(e, trigger));
      }
      return this.#apply(next, trigger);
    });
  }

  /**
   * Makes `next` (a validated, frozen config) the running one, or nothing at all.
   * First everything that can fail: new watchers are built (kubeconfigs loaded)
   * and new listeners bound. If any fails, what was opened is closed again and the
   * reload is rejected whole: a replica runs one configuration, never a mix. Then
   * the commit, synchronous: the router, health, clusters, DNS and proxy take the
   * new settings in place, and removed listeners drain in the background as on
   * SIGTERM. One info line says what changed; the journal records it.
   */
  reload(next: Config, trigger = 'api'): Promise<ReloadOutcome> {
    return this.#queue(() => this.#apply(next, trigger));
  }

  #queue(run: () => Promise<ReloadOutcome>): Promise<ReloadOutcome> {
    const done = this.#reloads.then(run, run);
    this.#reloads = done.catch(() => {});
    return done;
  }

  async #apply(next: Config, trigger: string): Promise<ReloadOutcome> {
    if (this.#stopped.signal.aborted) {
      return this.#rejected(new FedgateError('RELOAD_FAILED', 'fedgate is stopping'), trigger);
    }
    const before = this.#config;
    let discovery: PreparedDiscovery | undefined;
    let dns: PreparedDns | undefined;
    let proxy: PreparedProxy | undefined;
    let admin: AdminServer | undefined;
    const adminMoves = listenKey(before.admin.listen) !== listenKey(next.admin.listen);
    try {
      discovery = this.discovery.prepare(next);
      dns = await this.dns.prepare(next);
      proxy = await this.proxy.prepare(next, { observer: this.#observer(next) });
      if (adminMoves) {
        admin = await this.#openAdmin(next.admin.listen).catch((e: unknown) => {
          throw new FedgateError('LISTEN_FAILED', `admin.listen: ${(e as Error).message}`, {
            cause: e,
          });
        });
      }
      if (this.#stopped.signal.aborted)
        throw new FedgateError('RELOAD_FAILED', 'fedgate is stopping');
    } catch (e) {
      if (discovery) this.discovery.discard(discovery);
      await Promise.all([dns?.abort(), proxy?.abort(), admin?.close()]);
      return this.#rejected(e, trigger);
    }
    const changes: ReloadChanges = {
      clusters: discovery.changes,
      opened: [
        ...dns.opened.map((k) => `dns ${k}`),
        ...proxy.opened,
        ...(adminMoves ? [`admin ${listenKey(next.admin.listen)}`] : []),
      ],
      closed: [
        ...dns.closed.map((k) => `dns ${k}`),
        ...proxy.closed,
        ...(adminMoves ? [`admin ${listenKey(before.admin.listen)}`] : []),
      ],
      settings: [
        ...new Set([
          ...changedSettings(before, next),
          ...(proxy.certificatesChanged ? ['http.tls.certificates'] : []),
        ]),
      ],
    };
    try {
      this.discovery.commit(discovery);
      dns.commit();
      proxy.commit();
      if (admin) {
        const old = this.#admin;
        this.#admin = admin;
        void old.close();
      }
      this.#config = next;
    } catch (e) {
      // Only a bug gets here, and part of the new configuration may be running.
      this.#config = next;
      this.log.error({ err: e, trigger }, 'reload failed part way: restart fedgate');
      return { ok: false, code: 'RELOAD_FAILED', problem: (e as Error).message };
    }
    const summary = describeChanges(changes);
    const k = changes.clusters;
    this.log.info(
      {
        trigger,
        clustersAdded: k.added,
        clustersRemoved: k.removed,
        clustersRestarted: k.restarted.map((r) => r.name),
        listenersOpened: changes.opened,
        listenersClosed: changes.closed,
        settings: changes.settings,
      },
      `configuration reloaded: ${summary}`,
    );
    if (hasChanges(changes)) {
      this.journal.record({
        kind: 'reload',
        message: `configuration reloaded (${trigger}): ${summary}`,
        detail: {
          trigger,
          ok: true,
          clustersAdded: k.added.join(','),
          clustersRemoved: k.removed.join(','),
          clustersRestarted: k.restarted.map((r) => r.name).join(','),
          listenersOpened: changes.opened.join(','),
          listenersClosed: changes.closed.join(','),
          settings: changes.settings.join(','),
        },
      });
    }
    return { ok: true, changes, summary };
  }

  #rejected(e: unknown, trigger: string): ReloadOutcome {
    const code = e instanceof FedgateError ? e.code : 'RELOAD_FAILED';
    // One line: a ConfigError's problems are joined rather than listed under it.
    const problem =
      e instanceof ConfigError
        ? `${e.message.split('\n')[0]}: ${e.problems.join('; ')}`
        : (e as Error).message;
    this.log.error(
      { trigger, code },
      `configuration reload rejected, the running configuration is unchanged: ${problem}`,
    );
    this.journal.record({
      kind: 'reload',
      message: `configuration reload rejected (${trigger}): ${problem}`,
      detail: { trigger, ok: false, code },
    });
    return { ok: false, code, problem };
  }

  #observer(config: Config) {
    return config.http.accessLog ? withAccessLog(this.metrics, this.log) : this.metrics;
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
    // A reload under way gives up (it checks the signal) and closes what it opened.
    await this.#reloads;
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
