// One running fedgate: discovery (watchers, catalog, health, router), metrics, the
// event journal, the admin listener, DNS and the proxy, started in that order and
// stopped in reverse. `fedgate start` and `fedgate demo` both run exactly this.
// reload() swaps the configuration under it: every part is kept and changed in
// place, so listeners that stay keep their sockets and connections.
//
// DNS and the proxy (the serving part) run in this process, or, with `workers` ≥ 2,
// in that many worker processes (workers/pool.ts) while this one, the primary,
// keeps discovery, metrics, the journal, the admin listener and reloads.

import { ConfigError, loadConfig } from './config/load.ts';
import type { Config, ListenAddress } from './config/schema.ts';
import type { ResolvedSelf, SelfLabels } from './config/self.ts';
import { Discovery, type DiscoveryOptions } from './discovery.ts';
import type { DnsServer } from './dns/server.ts';
import { type ErrorCode, FedgateError } from './errors.ts';
import { GatewayFeed } from './gateway-feed.ts';
import { hostPort } from './host-port.ts';
import { type AdminControls, type AdminServer, startAdmin } from './observe/admin.ts';
import { EventJournal } from './observe/events.ts';
import { ExhaustionTracker } from './observe/exhaustion.ts';
import type { Logger } from './observe/log.ts';
import { Metrics } from './observe/metrics.ts';
import { withAccessLog } from './proxy/access-log.ts';
import { GatewayRoutes } from './proxy/gateway.ts';
import type { ProxyServer } from './proxy/server.ts';
import { changedSettings, describeChanges, hasChanges, type ReloadChanges } from './reload.ts';
import { type ReadNode, SelfLocality, type StagedSelf } from './self-locality.ts';
import { type StagedChange, stageTogether } from './staged-change.ts';
import { WorkerPool } from './workers/pool.ts';
import { ListenError, LocalServing, type Serving } from './workers/serving.ts';
import { WriteBack } from './writeback/write-back.ts';

export interface Readiness {
  readonly ready: boolean;
  /** Why not, or what is missing though ready: for people. */
  readonly reason: string;
}

export interface RuntimeOptions extends Omit<DiscoveryOptions, 'exhaustion'> {
  /** The process's descriptor exhaustion tracker (default: a new one). */
  readonly exhaustion?: ExhaustionTracker;
  /** The demo's failure buttons on the status page. */
  readonly controls?: AdminControls;
  /**
   * Processes serving DNS and the proxy: 1 (the default) is this one; 2 or more
   * are worker processes (node:cluster) sharing the listeners, this process their
   * primary.
   */
  readonly workers?: number;
  /** Where FEDGATE_REGION, FEDGATE_ZONE and FEDGATE_SUBZONE are read (default: process.env). */
  readonly env?: NodeJS.ProcessEnv;
  /** Reads self.node's labels (default: a GET through its member's kubeconfig). */
  readonly readNode?: ReadNode;
  /** The traffic picture's clock (its ring slots and /debug/traffic); default `now`, else the wall clock. */
  readonly trafficNow?: () => number;
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
  /**
   * This process's descriptor exhaustion tracker: watches, health probes and (in one
   * process) DNS and the proxy note into it; worker processes have their own.
   */
  readonly exhaustion: ExhaustionTracker;
  /** The worker processes, when DNS and the proxy run in them (workers ≥ 2). */
  readonly workers: WorkerPool | undefined;
  /** Resolves with why, if fedgate cannot go on (workers keep exiting): the caller stops it. */
  readonly fatal: Promise<string>;
  readonly #serving: Serving;
  readonly #local: LocalServing | undefined;
  #config: Config;
  #admin: AdminServer;
  readonly #openAdmin: (listen: ListenAddress) => Promise<AdminServer>;
  readonly #startup: { done: boolean; timedOut: boolean; missing: readonly string[] };
  readonly #stopped: AbortController;
  #draining = false;
  /** The write-back (writeBack.enabled): swapped by a reload that changes how it runs. */
  readonly #writeBack: { current: WriteBack | undefined };
  /** Gateway API routes, compiled as objects and services change. */
  readonly #gatewayFeed: GatewayFeed;
  /** This replica's locality: resolved at start and each reload, following its Node. */
  readonly #self: SelfLocality;
  /** Reloads run one at a time, in the order asked. */
  #reloads: Promise<unknown> = Promise.resolve();

  private constructor(parts: {
    config: Config;
    log: Logger;
    discovery: Discovery;
    metrics: Metrics;
    journal: EventJournal;
    exhaustion: ExhaustionTracker;
    admin: AdminServer;
    openAdmin: (listen: ListenAddress) => Promise<AdminServer>;
    serving: LocalServing | WorkerPool;
    fatal: Promise<string>;
    startup: { done: boolean; timedOut: boolean; missing: readonly string[] };
    stopped: AbortController;
    writeBack: { current: WriteBack | undefined };
    gatewayFeed: GatewayFeed;
    self: SelfLocality;
  }) {
    this.#config = parts.config;
    this.log = parts.log;
    this.discovery = parts.discovery;
    this.metrics = parts.metrics;
    this.journal = parts.journal;
    this.exhaustion = parts.exhaustion;
    this.#admin = parts.admin;
    this.#openAdmin = parts.openAdmin;
    this.#serving = parts.serving;
    this.#local = parts.serving instanceof LocalServing ? parts.serving : undefined;
    this.workers = parts.serving instanceof WorkerPool ? parts.serving : undefined;
    this.fatal = parts.fatal;
    this.#startup = parts.startup;
    this.#stopped = parts.stopped;
    this.#writeBack = parts.writeBack;
    this.#gatewayFeed = parts.gatewayFeed;
    this.#self = parts.self;
  }

  /** How this replica's locality was found: env, the Node's labels, the config. */
  get selfFrom(): ResolvedSelf | undefined {
    return this.#self.resolved;
  }

  /** The write-back, when writeBack.enabled. */
  get writeBack(): WriteBack | undefined {
    return this.#writeBack.current;
  }

  /** The configuration running now: the one started with, or the last reload's. */
  get config(): Config {
    return this.#config;
  }

  get admin(): AdminServer {
    return this.#admin;
  }

  /** DNS in this process; there is none with worker processes (they each have theirs). */
  get dns(): DnsServer {
    if (!this.#local) throw new Error('DNS runs in the worker processes');
    return this.#local.dns;
  }

  /** The proxy in this process; there is none with worker processes (they each have theirs). */
  get proxy(): ProxyServer {
    if (!this.#local) throw new Error('the proxy runs in the worker processes');
    return this.#local.proxy;
  }

  /**
   * Starts every part. A listener that cannot bind fails it with LISTEN_FAILED naming
   * the setting; whatever had started is stopped first.
   */
  static async start(input: Config, log: Logger, opts: RuntimeOptions = {}): Promise<Fedgate> {
    // self first: every part routes from it, and a Node that cannot be read stops here.
    const self = new SelfLocality({
      log,
      ...(opts.env ? { env: opts.env } : {}),
      ...(opts.readNode ? { readNode: opts.readNode } : {}),
    });
    const staged = await self.stage(input);
    staged.commit();
    const config = staged.config;
    const journal = opts.journal ?? new EventJournal(opts.now ? { now: opts.now } : {});
    const exhaustion =
      opts.exhaustion ?? new ExhaustionTracker({ log, ...(opts.now ? { now: opts.now } : {}) });
    const discovery = Discovery.start(config, log, { ...opts, journal, exhaustion });
    const workers = opts.workers ?? 1;
    const writeBack: { current: WriteBack | undefined } = { current: undefined };
    const metrics = new Metrics({
      discovery,
      writeBack: () => writeBack.current?.stats(),
      journal,
      serving: workers < 2,
      exhaustion,
      ...(opts.now ? { now: opts.now } : {}),
      ...(opts.trafficNow ? { trafficNow: opts.trafficNow } : {}),
    });
    const startup = { done: false, timedOut: false, missing: [] as readonly string[] };
    const stopped = new AbortController();
    // The admin listener asks the instance for readiness; it exists only after DNS and
    // the proxy start, so the admin closure reads it through this holder.
    const holder: { fedgate?: Fedgate } = {};
    const cleanup: Array<() => Promise<void>> = [() => discovery.stop()];
    const fail = async (e: unknown, what: string): Promise<never> => {
      for (const c of cleanup.reverse()) await c();
      throw new FedgateError('LISTEN_FAILED', `cannot listen on ${what}: ${(e as Error).message}`, {
        cause: e,
      });
    };
    const failServing = (e: unknown): Promise<never> => {
      if (e instanceof ListenError) return fail(e, e.setting);
      return (async () => {
        for (const c of cleanup.reverse()) await c();
        throw e;
      })();
    };
    // With worker processes the proxies are elsewhere: this process keeps its own copy of
    // the routes for /debug/explain. Serving here, explain reads the proxy's (a copy of
    // a 1,000-route table is about 15 MB of heap).
    let ownRoutes: GatewayRoutes | undefined;
    // Made once serving runs, after the admin listener opens: read through this holder.
    let gatewayFeed: GatewayFeed | undefined;
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
        // The routes in force, as /debug/explain matches them.
        get gateway() {
          return serving instanceof LocalServing ? serving.proxy.gateway : ownRoutes;
        },
        gatewayApi: {
          get report() {
            return gatewayFeed?.report;
          },
          get tables() {
            return gatewayFeed?.tables ?? { listeners: [] };
          },
        },
        readiness: () => holder.fedgate?.readiness() ?? { ready: false, reason: 'starting' },
        get selfFrom() {
          return self.resolved;
        },
        ...(opts.controls ? { controls: opts.controls } : {}),
        ...(opts.now ? { now: opts.now } : {}),
      });
    const admin = await openAdmin(config.admin.listen).catch((e: unknown) =>
      fail(e, `admin.listen ${hostPort(config.admin.listen)}`),
    );
    cleanup.push(() => admin.close());
    let fatal: (problem: string) => void = () => {};
    const fatalPromise = new Promise<string>((resolve) => {
      fatal = resolve;
    });
    let serving: LocalServing | WorkerPool | undefined;
    if (workers >= 2) {
      ownRoutes = new GatewayRoutes();
      serving = await WorkerPool.start({
        workers,
        config,
        discovery,
        log,
        onFatal: (problem) => fatal(problem),
      }).catch(failServing);
      metrics.attachWorkers(serving);
    } else {
      serving = await LocalServing.start({
        config,
        catalog: discovery.catalog,
        health: discovery.health.store,
        report: discovery.health,
        router: discovery.router,
        log,
        metrics,
        observer: (c) => (c.http.accessLog ? withAccessLog(metrics, log) : metrics),
        exhaustion,
      }).catch(failServing);
    }
    // Gateway API: routes compiled from the config clusters' objects and the services,
    // again whenever either changes; the tables to every proxy (and explain's copy),
    // the status report to the write-back when this replica runs one.
    gatewayFeed = new GatewayFeed(
      {
        gateway: discovery.gateway,
        catalog: discovery.catalog,
        serving: {
          setRoutes: (tables) => {
            serving.setRoutes(tables);
            ownRoutes?.set(tables);
          },
        },
        status: (report) => writeBack.current?.setGatewayStatus(report),
        log,
      },
      config,
    );
    gatewayFeed.start();
    cleanup.push(async () => gatewayFeed.stop());
    const fedgate = new Fedgate({
      config,
      log,
      discovery,
      metrics,
      journal,
      exhaustion,
      admin,
      openAdmin,
      serving,
      fatal: fatalPromise,
      startup,
      stopped,
      writeBack,
      gatewayFeed,
      self,
    });
    holder.fedgate = fedgate;
    // The Node's labels, as its member's watch reports them: a relabelled Node moves
    // this replica's locality as a reload would.
    const unfollow = discovery.onNode(self.nodeListener((labels) => fedgate.#followNode(labels)));
    stopped.signal.addEventListener('abort', unfollow, { once: true });
    // Only once serving: a replica that cannot serve must not be the one writing.
    if (config.writeBack.enabled) {
      writeBack.current = WriteBack.start({ config, catalog: discovery.catalog, log });
      if (gatewayFeed.report) writeBack.current.setGatewayStatus(gatewayFeed.report);
    }
    discovery.catalog.whenReady(config.watch.startupTimeout, stopped.signal).then(async (r) => {
      if (stopped.signal.aborted) return;
      // Worker processes hold the snapshot readiness is about before it is said.
      await serving.sync();
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
      .then(async (r) => {
        await this.#serving.sync();
        return { ready: r.ready, missing: r.missing };
      });
  }

  /** What /readyz answers: false until startup is done, and again while draining. */
  readiness(): Readiness {
    if (this.#draining) return { ready: false, reason: 'draining' };
    if (!this.#startup.done) {
      const missing = this.discovery.catalog.readiness().missing;
      return { ready: false, reason: `waiting for ${missing.join(', ') || 'the first sync'}` };
    }
    // With worker processes: every one of them up, with its listeners.
    const serving = this.#serving.readiness();
    if (!serving.ready) return { ready: false, reason: serving.reason };
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
        next = loadConfig(file, this.#self.env);
      } catch (e) {
        return Promise.resolve(this.#rejected(e, trigger));
      }
      return this.#resolveAndApply(next, trigger);
    });
  }

  /**
   * Makes `next` (a validated, frozen config) the running one, or nothing at all:
   * discovery, serving and the admin listener each stage it (everything that can
   * fail), then all commit; one failing to stage aborts the others and rejects the
   * reload. The steps are in docs/architecture.md, "Configuration and reload".
   * One info line says what changed; the journal records it.
   */
  reload(next: Config, trigger = 'api'): Promise<ReloadOutcome> {
    return this.#queue(() => this.#resolveAndApply(next, trigger));
  }

  /** self resolved for `next` (the Node read again), then applied. */
  async #resolveAndApply(next: Config, trigger: string): Promise<ReloadOutcome> {
    let staged: StagedSelf;
    try {
      staged = await this.#self.stage(next);
    } catch (e) {
      return this.#rejected(e, trigger);
    }
    return this.#apply(staged.config, trigger, staged);
  }

  /** New labels on this replica's Node: applied as a reload of the running file would be. */
  #followNode(labels: SelfLabels): void {
    const run = async () => {
      if (this.#stopped.signal.aborted) return;
      let staged: StagedSelf | undefined;
      try {
        staged = this.#self.restage(labels);
      } catch (e) {
        this.#rejected(e, 'node labels');
        return;
      }
      if (staged) await this.#apply(staged.config, 'node labels', staged);
    };
    const done = this.#reloads.then(run, run);
    this.#reloads = done.catch(() => {});
  }

  #queue(run: () => Promise<ReloadOutcome>): Promise<ReloadOutcome> {
    const done = this.#reloads.then(run, run);
    this.#reloads = done.catch(() => {});
    return done;
  }

  async #apply(next: Config, trigger: string, self: StagedSelf): Promise<ReloadOutcome> {
    if (this.#stopped.signal.aborted) {
      return this.#rejected(new FedgateError('RELOAD_FAILED', 'fedgate is stopping'), trigger);
    }
    const before = this.#config;
    const adminMoves = hostPort(before.admin.listen) !== hostPort(next.admin.listen);
    let staged: StagedChange & { changes: ReloadChanges };
    try {
      staged = await stageTogether(async (add) => {
        const discovery = await add(this.discovery.stage(next));
        // With worker processes, every worker stages (binds what is new) and answers;
        // one failing rejects the reload everywhere.
        const serving = await add(this.#serving.stage(next));
        if (adminMoves) await add(this.#stageAdmin(next.admin.listen));
        if (this.#stopped.signal.aborted) {
          throw new FedgateError('RELOAD_FAILED', 'fedgate is stopping');
        }
        const admin = (c: Config) => (adminMoves ? [`admin ${hostPort(c.admin.listen)}`] : []);
        const changes: ReloadChanges = {
          clusters: discovery.changes,
          opened: [...serving.opened, ...admin(next)],
          closed: [...serving.closed, ...admin(before)],
          settings: [
            ...new Set([
              ...changedSettings(before, next),
              ...(serving.certificatesChanged ? ['http.tls.certificates'] : []),
              ...(discovery.backendTlsChanged ? ['routing.backendTLS'] : []),
            ]),
          ],
        };
        return { changes };
      });
    } catch (e) {
      return this.#rejected(e, trigger);
    }
    const { changes } = staged;
    try {
      staged.commit();
      this.#config = next;
      self.commit();
    } catch (e) {
      // Only a bug gets here, and part of the new configuration may be running.
      this.#config = next;
      this.log.error({ err: e, trigger }, 'reload failed part way: restart fedgate');
      return { ok: false, code: 'RELOAD_FAILED', problem: (e as Error).message };
    }
    this.#gatewayFeed.reconfigure(next);
    this.#restartWriteBack(before, next);
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

  /**
   * A reload that changes writeBack or the members starts the write-back over: the old
   * one releases its lease (if it led) and the new one campaigns with what is new.
   */
  #restartWriteBack(before: Config, next: Config): void {
    const shape = (c: Config) =>
      JSON.stringify([c.writeBack, c.clusters, c.dns.addressing, c.dns.proxyAddresses]);
    if (shape(before) === shape(next)) return;
    const old = this.#writeBack.current;
    this.#writeBack.current = undefined;
    void (async () => {
      await old?.stop();
      if (next.writeBack.enabled && !this.#stopped.signal.aborted && this.#config === next) {
        const started = WriteBack.start({
          config: next,
          catalog: this.discovery.catalog,
          log: this.log,
        });
        this.#writeBack.current = started;
        const report = this.#gatewayFeed.report;
        if (report) started.setGatewayStatus(report);
      }
    })().catch((e: unknown) => this.log.error({ err: e }, 'write-back: restart failed'));
  }

  /** The admin listener on a new address: opened now, swapped in (the old one closing) on commit. */
  async #stageAdmin(listen: ListenAddress): Promise<StagedChange> {
    const admin = await this.#openAdmin(listen).catch((e: unknown) => {
      throw new FedgateError('LISTEN_FAILED', `admin.listen: ${(e as Error).message}`, {
        cause: e,
      });
    });
    return {
      commit: () => {
        const old = this.#admin;
        this.#admin = admin;
        void old.close();
      },
      abort: () => admin.close(),
    };
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

  get draining(): boolean {
    return this.#draining;
  }

  /** Where each listener is, as URLs and host:port, for what a command prints. */
  addresses(): { dns: string[]; http: string[]; https: string[]; admin: string } {
    const a = this.admin.address;
    const at = this.#serving.addresses();
    const bound = (x: { address: string; port: number }) =>
      hostPort({ host: x.address, port: x.port });
    return {
      dns: at.udp.map(bound),
      http: at.http.map((x) => `http://${bound(x)}`),
      https: at.https.map((x) => `https://${bound(x)}`),
      admin: `http://${hostPort(a)}`,
    };
  }

  /**
   * Drain, then stop: /readyz turns false, the proxy and DNS over TCP stop
   * accepting, requests and TCP queries in flight get http.drainTimeout, UDP
   * answers until the end; then everything closes. Worker processes each drain so,
   * and this waits for all of them to exit.
   */
  async stop(): Promise<void> {
    this.#stopped.abort();
    this.#draining = true;
    // A reload under way gives up (it checks the signal) and closes what it opened.
    await this.#reloads;
    // First: a leader releases its lease, so another replica writes while this one drains.
    await this.#writeBack.current?.stop();
    this.#writeBack.current = undefined;
    this.#gatewayFeed.stop();
    this.log.info({ graceMs: this.config.http.drainTimeout }, 'draining: no new connections');
    const cut = await this.#serving.drain(this.config.http.drainTimeout);
    if (cut.proxyCut > 0)
      this.log.warn(
        { cut: cut.proxyCut },
        'HTTP connections still busy at the end of the grace period were cut',
      );
    if (cut.dnsCut > 0)
      this.log.warn(
        { cut: cut.dnsCut },
        'DNS TCP connections still mid-query at the end of the grace period were cut',
      );
    this.log.info('stopping');
    await this.#serving.stop();
    await this.admin.close();
    await this.discovery.stop();
  }
}
