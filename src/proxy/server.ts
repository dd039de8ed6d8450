// The HTTP edge proxy, wired: its listeners (listeners.ts) hand requests to the
// Forwarder, which routes them over the upstream pools and the host table. A
// reload stages the listeners it adds and, at commit, swaps the settings, host
// table and (when their options changed) upstream pools under the running parts.
import type { AddressInfo } from 'node:net';
import type { Snapshot } from '../catalog/model.ts';
import type { Config } from '../config/schema.ts';
import type { RouteTables } from '../gateway/attached.ts';
import type { Outcome } from '../health/outlier.ts';
import { type AcceptGuard, ExhaustionTracker } from '../observe/exhaustion.ts';
import type { Logger } from '../observe/log.ts';
import type { Router } from '../routing/router.ts';
import { endpointId } from '../routing/types.ts';
import type { BackendTlsSource } from './backend-tls.ts';
import { BackendTlsProfiles } from './backend-tls-profiles.ts';
import { Forwarder } from './forward.ts';
import { GatewayRoutes } from './gateway.ts';
import { GatewayCertificates } from './gateway-certificates.ts';
import { HostTable, hostRules } from './hosts.ts';
import { ProxyListeners, type StagedListeners } from './listeners.ts';
import type { ProxyObserver } from './observer.ts';
import { forwardSettings, upstreamOptions, upstreamOptionsChanged } from './settings.ts';
import type { ProxyTracing } from './spans.ts';
import { certificatesHash } from './tls.ts';
import { Upstreams } from './upstreams.ts';

export interface ProxyServerOptions {
  readonly config: Config;
  readonly catalog: { current(): Snapshot; subscribe(fn: (s: Snapshot) => void): () => void };
  readonly health: { report(service: string, id: string, outcome: Outcome): void };
  readonly router: Router;
  readonly log: Logger;
  readonly random?: () => number;
  readonly observer?: ProxyObserver;
  /** Where running out of descriptors is counted (default: a tracker of its own). */
  readonly exhaustion?: AcceptGuard;
  /** Spans per request (spans.ts); absent: tracing is off. Fixed for the server's life. */
  readonly tracing?: ProxyTracing | undefined;
  /**
   * Backend TLS profiles by service, kept through reloads; absent: routing.backendTLS,
   * read again at every reload.
   */
  readonly backendTls?: BackendTlsSource;
}

/**
 * A reload's proxy part: new listeners bound and certificates read, nothing else
 * changed yet. Its commit makes the new settings and listeners current; removed
 * listeners drain in the background.
 */
export interface StagedProxy extends StagedListeners {
  /** The certificate files differ from the running ones (paths or content). */
  readonly certificatesChanged: boolean;
}

export class ProxyServer {
  readonly forwarder: Forwarder;
  readonly #listeners: ProxyListeners;
  #upstreams: Upstreams;
  #hosts: HostTable;
  readonly #log: Logger;
  #config: Config;
  #certificatesHash: string;
  readonly #givenTls: BackendTlsSource | undefined;
  /** The forwarder's, which a reload swaps: the listeners count resets on it too. */
  #observer: ProxyObserver | undefined;
  readonly #unsubscribe: () => void;
  /** Gateway API routes: kept through reloads, replaced by setRoutes. */
  readonly #gateway = new GatewayRoutes();
  /** Gateway API listeners' certificates, by SNI: replaced with the routes. */
  readonly #gatewayCerts: GatewayCertificates;

  private constructor(opts: ProxyServerOptions) {
    const { config } = opts;
    this.#config = config;
    this.#log = opts.log;
    const exhaustion = opts.exhaustion ?? new ExhaustionTracker({ log: opts.log });
    this.#upstreams = new Upstreams(upstreamOptions(config.http));
    this.#hosts = new HostTable(hostRules(config));
    this.#certificatesHash = certificatesHash(config.http.tls?.certificates);
    this.#observer = opts.observer;
    this.#givenTls = opts.backendTls;
    this.#gatewayCerts = new GatewayCertificates(opts.log);
    this.#listeners = new ProxyListeners({
      log: opts.log,
      exhaustion,
      request: (req, res, proto, listener) => this.forwarder.handle(req, res, proto, listener),
      upgrade: (req, socket, head, proto, listener) =>
        this.forwarder.upgrade(req, socket, head, proto, listener),
      observer: () => this.#observer,
      gatewaySni: (listener, name) => this.#gatewayCerts.pick(listener, name),
    });
    this.forwarder = new Forwarder({
      catalog: opts.catalog,
      router: opts.router,
      health: opts.health,
      upstreams: this.#upstreams,
      hosts: this.#hosts,
      settings: forwardSettings(config),
      random: opts.random ?? Math.random,
      log: opts.log,
      draining: (socket) => this.#listeners.closing(socket),
      observer: opts.observer,
      exhaustion,
      backendTls: opts.backendTls ?? new BackendTlsProfiles(config, opts.log),
      gateway: this.#gateway,
      tracing: opts.tracing,
    });
    let warned = '';
    this.#unsubscribe = opts.catalog.subscribe((s) => {
      const live = new Set<string>();
      for (const svc of s.services.values()) {
        for (const m of svc.clusters) {
          for (const e of m.endpoints) live.add(endpointId(m.cluster, e.addresses[0] ?? ''));
        }
      }
      this.#upstreams.retain(live);
      // Say once per change which hosts more than one service claims.
      const claimed = this.#hosts.conflicts(s);
      const conflicts = JSON.stringify(claimed);
      if (conflicts !== warned && claimed.length > 0) {
        this.#log.warn({ conflicts: claimed }, 'host names claimed by several services');
      }
      warned = conflicts;
    });
  }

  static async start(opts: ProxyServerOptions): Promise<ProxyServer> {
    const p = new ProxyServer(opts);
    try {
      await p.#listeners.open(opts.config.http);
    } catch (e) {
      await p.stop();
      throw e;
    }
    return p;
  }

  /**
   * New Gateway API routes (route compilation's output): every listener's matchers
   * built, then swapped in at once; requests already routed keep theirs. Patterns
   * that do not compile are logged, and their matches never match.
   */
  setRoutes(tables: RouteTables): void {
    this.#gateway.set(tables);
    this.#gatewayCerts.set(tables);
    const problems = this.#gateway.problems();
    if (problems.length > 0) this.#log.warn({ problems }, 'route matches that never match');
  }

  /** The Gateway API routes in force (for /debug/explain). */
  get gateway(): GatewayRoutes {
    return this.#gateway;
  }

  get upstreams(): Upstreams {
    return this.#upstreams;
  }

  get hosts(): HostTable {
    return this.#hosts;
  }

  /**
   * Binds the addresses `next` adds (and reads its certificates); throws, having
   * closed them again, when one cannot be bound (FedgateError LISTEN_FAILED, naming
   * the setting). Nothing running changes until commit().
   */
  async stage(
    next: Config,
    opts: { observer?: ProxyObserver | undefined } = {},
  ): Promise<StagedProxy> {
    const certsHash = certificatesHash(next.http.tls?.certificates);
    // Read before binding: files that cannot be read reject the reload with nothing opened.
    const backendTls = this.#givenTls ?? new BackendTlsProfiles(next, this.#log);
    const listeners = await this.#listeners.stage(next.http);
    return {
      opened: listeners.opened,
      closed: listeners.closed,
      certificatesChanged: certsHash !== this.#certificatesHash,
      commit: () => {
        const before = this.#config.http;
        this.#config = next;
        this.#hosts = new HostTable(hostRules(next));
        if (upstreamOptionsChanged(before, next.http)) {
          // Requests in flight finish on the old pools, which then close.
          const old = this.#upstreams;
          this.#upstreams = new Upstreams(upstreamOptions(next.http));
          void old.close(false);
        }
        this.#observer = opts.observer;
        this.forwarder.reconfigure({
          hosts: this.#hosts,
          settings: forwardSettings(next),
          upstreams: this.#upstreams,
          observer: opts.observer,
          backendTls,
        });
        this.#certificatesHash = certsHash;
        listeners.commit();
      },
      abort: () => listeners.abort(),
    };
  }

  /** Where each listener is bound (port 0 in config gets a real one here). */
  addresses(): { http: AddressInfo[]; https: AddressInfo[] } {
    return this.#listeners.addresses();
  }

  get draining(): boolean {
    return this.#listeners.draining;
  }

  get connections(): number {
    return this.#listeners.connections;
  }

  /**
   * Stops accepting, lets requests in flight finish (each answer asks its client to
   * close), and after `graceMs` cuts whatever is left. Resolves with how many
   * connections had to be cut.
   */
  async drain(graceMs = this.#config.http.drainTimeout): Promise<{ cut: number }> {
    const cut = await this.#listeners.drain(graceMs);
    await this.#upstreams.close(true);
    await this.forwarder.close();
    this.#unsubscribe();
    return { cut };
  }

  /** Closes everything now. */
  async stop(): Promise<void> {
    await this.drain(0);
  }
}
