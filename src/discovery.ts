// fedgate's running parts: a watcher per member cluster feeding one catalog,
// health following the catalog, and the router that turns both into plans. DNS
// and the proxy read the catalog and ask the router. A reload keeps all of them and
// changes them in place: members join, leave or get a new watcher; settings swap.
import { Catalog, type CatalogCluster } from './catalog/catalog.ts';
import type { ClusterConfig, Config } from './config/schema.ts';
import { type GatewayClusterChanges, GatewayDiscovery } from './discovery-gateway.ts';
import {
  buildSlot,
  restartReason,
  retireSlot,
  type Slot,
  watcherOptions,
} from './discovery-slots.ts';
import { HealthMonitor } from './health/monitor.ts';
import type { EventJournal } from './observe/events.ts';
import { type ExhaustionSink, ExhaustionTracker } from './observe/exhaustion.ts';
import type { Logger } from './observe/log.ts';
import { BackendTlsProfiles } from './proxy/backend-tls-profiles.ts';
import { describeLocality } from './routing/explain.ts';
import { Router, routerOptions, type TierShift } from './routing/router.ts';
import type { Locality } from './routing/types.ts';
import type { StagedChange } from './staged-change.ts';
import { ClusterWatcher, type ClusterWatcherSink } from './watch/cluster-watcher.ts';
import type { GatewayStore } from './watch/gateway-store.ts';
import type { GatewayWatcher } from './watch/gateway-watcher.ts';
import type { NodeRecord } from './watch/records.ts';

export interface DiscoveryOptions {
  now?: () => number;
  random?: () => number;
  /** How often to look again for ServiceExport where it is not served (default: a minute). */
  absentRecheckMs?: number;
  /** Where cluster state changes, failovers and ejections are recorded for the status page. */
  journal?: EventJournal;
  /**
   * Where watches and health probes say they ran out of descriptors (the process's
   * one tracker, which metrics read; default: one of its own).
   */
  exhaustion?: ExhaustionSink;
}

/** How a reload changes the member clusters. */
export interface ClusterChanges {
  readonly added: readonly string[];
  readonly removed: readonly string[];
  /** A new watcher, and why: its kubeconfig, context or the watch settings changed. */
  readonly restarted: readonly { readonly name: string; readonly why: string }[];
  /** Weight or region changed: applied in place. */
  readonly updated: readonly string[];
}

/**
 * A reload's discovery part: new watchers built (not started), nothing running
 * changed. Its commit makes the new configuration current; its abort drops the
 * watchers built.
 */
export interface StagedDiscovery extends StagedChange {
  readonly changes: ClusterChanges;
  /** How the clusters whose Gateway API objects are read change (gatewayAPI.clusters). */
  readonly gatewayChanges: GatewayClusterChanges;
  /** A backend TLS profile, or one of its files, differs from the running one. */
  readonly backendTlsChanged: boolean;
}

export type RunningCluster = Slot<ClusterWatcher>;

/** A member's Node record changed (undefined: deleted), by cluster and Node name. */
export type NodeListener = (cluster: string, name: string, record: NodeRecord | undefined) => void;

export class Discovery {
  readonly catalog: Catalog;
  /** One per member cluster; the same array for the whole run, changed in place by reloads. */
  readonly watchers: readonly ClusterWatcher[];
  readonly health: HealthMonitor;
  readonly router: Router;
  /**
   * The Gateway API objects of the clusters gatewayAPI.clusters names: `current()`, and
   * `subscribe()` for each new GatewayObjects (once per turn of the event loop).
   */
  readonly gateway: GatewayStore;
  readonly #gateway: GatewayDiscovery;
  readonly #watchers: ClusterWatcher[];
  readonly #running = new Map<string, RunningCluster>();
  readonly #nodeListeners = new Set<NodeListener>();
  /** Watchers being stopped after a reload replaced or removed them. */
  readonly #retiring = new Set<Promise<void>>();
  readonly #log: Logger;
  readonly #opts: DiscoveryOptions;
  #config: Config;
  /** The backend TLS profiles the active checks probe with (the proxy reads its own). */
  #backendTls: BackendTlsProfiles;

  private constructor(
    config: Config,
    log: Logger,
    opts: DiscoveryOptions,
    catalog: Catalog,
    health: HealthMonitor,
    router: Router,
    backendTls: BackendTlsProfiles,
    gateway: GatewayDiscovery,
  ) {
    this.#config = config;
    this.#log = log;
    this.#opts = opts;
    this.#backendTls = backendTls;
    this.catalog = catalog;
    this.#watchers = [];
    this.watchers = this.#watchers;
    this.health = health;
    this.router = router;
    this.#gateway = gateway;
    this.gateway = gateway.store;
  }

  /**
   * Hears every Node record a member's watcher reports (undefined: gone), from the
   * same watch the catalog is fed by: how a replica follows its own Node's labels.
   * Returns the unsubscribe.
   */
  onNode(listener: NodeListener): () => void {
    this.#nodeListeners.add(listener);
    return () => this.#nodeListeners.delete(listener);
  }

  /** The watchers of the clusters whose Gateway API objects are read. */
  get gatewayWatchers(): readonly GatewayWatcher[] {
    return this.#gateway.watchers;
  }

  /** Builds and starts the watchers. Throws FedgateError (KUBECONFIG_INVALID) before starting any. */
  static start(config: Config, log: Logger, opts: DiscoveryOptions = {}): Discovery {
    const catalog = new Catalog({
      clusters: config.clusters.map(catalogCluster),
      log,
      ...(opts.now ? { now: opts.now } : {}),
    });
    const journal = opts.journal;
    const exhaustion =
      opts.exhaustion ?? new ExhaustionTracker({ log, ...(opts.now ? { now: opts.now } : {}) });
    const backendTls = new BackendTlsProfiles(config, undefined);
    const health = new HealthMonitor({
      tls: (svc) => backendTls.forService(svc),
      config: config.health,
      addressing: config.dns.addressing,
      log,
      ...(opts.now ? { now: opts.now } : {}),
      ...(opts.random ? { random: opts.random } : {}),
      // A probe without a socket says nothing about its endpoint: counted, not judged.
      onProbeExhausted: (err) => exhaustion.note('health_probe', err),
      onOutlier: (e) => {
        const cluster = e.id.slice(0, e.id.indexOf('/'));
        journal?.record({
          kind: e.type === 'returned' ? 'return' : 'ejection',
          service: e.service,
          cluster,
          message:
            e.type === 'ejected'
              ? `${e.service}: ${e.id} ejected (${e.reason}, ${e.times}×) until ${new Date(e.until!).toISOString()}`
              : e.type === 'returned'
                ? `${e.service}: ${e.id} returns from ejection`
                : `${e.service}: ${e.id} is an outlier (${e.reason}) but not ejected: max ejection percent reached`,
          detail: {
            type: e.type,
            endpoint: e.id,
            reason: e.reason ?? null,
            times: e.times,
            until: e.until ?? null,
          },
        });
      },
    });
    const shifted = (shift: TierShift) => {
      const where = describeLocality(shift.locality);
      const fields = { service: shift.service, locality: where, from: shift.from, to: shift.to };
      const message = `${shift.service} for clients in ${where}: traffic moved from the ${shift.from} tier (${shift.fromClusters.join(', ') || 'none'}) to the ${shift.to} tier (${shift.toClusters.join(', ') || 'none'})`;
      log.warn({ ...fields, toClusters: shift.toClusters }, 'failover');
      journal?.record({
        kind: 'failover',
        service: shift.service,
        message,
        detail: {
          locality: where,
          from: shift.from,
          to: shift.to,
          fromClusters: shift.fromClusters.join(','),
          toClusters: shift.toClusters.join(','),
        },
      });
    };
    const router = new Router(routerOptions(config), health.store, shifted);
    // Every watcher is built before any starts: one bad kubeconfig starts nothing.
    const gateway = new GatewayDiscovery(config, log, { ...opts, exhaustion });
    const d = new Discovery(
      config,
      log,
      { ...opts, exhaustion },
      catalog,
      health,
      router,
      backendTls,
      gateway,
    );
    const built = config.clusters.map((c) => d.#build(c, config));
    catalog.subscribe((s) => router.prune(s));
    if (journal) {
      // Cluster states, as the snapshots publish them: one event per change.
      const states = new Map<string, string>();
      catalog.subscribe((s) => {
        for (const name of states.keys()) if (!s.clusters.has(name)) states.delete(name);
        for (const [name, c] of s.clusters) {
          const was = states.get(name);
          if (was === c.state) continue;
          states.set(name, c.state);
          if (was === undefined && c.state === 'syncing') continue;
          journal.record({
            kind: 'cluster',
            cluster: name,
            message: `cluster ${name}: ${was ?? 'starting'} → ${c.state}${c.error ? ` (${c.error.message})` : ''}`,
            detail: { from: was ?? null, to: c.state },
          });
        }
      });
    }
    for (const r of built) d.#run(r);
    gateway.start();
    health.start(catalog);
    return d;
  }

  /**
   * Checks and builds what `next` needs (new watchers load their kubeconfigs here)
   * without changing anything running. Throws FedgateError (KUBECONFIG_INVALID).
   */
  stage(next: Config): StagedDiscovery {
    const added: string[] = [];
    const restarted: { name: string; why: string }[] = [];
    const updated: string[] = [];
    const watchers = new Map<string, RunningCluster>();
    for (const c of next.clusters) {
      const was = this.#running.get(c.name);
      if (!was) {
        added.push(c.name);
        watchers.set(c.name, this.#build(c, next));
        continue;
      }
      const why = restartReason(was, c, this.#config, next);
      if (why) {
        restarted.push({ name: c.name, why });
        watchers.set(c.name, this.#build(c, next));
      } else if (was.config.weight !== c.weight || was.config.region !== c.region) {
        updated.push(c.name);
      }
    }
    const names = new Set(next.clusters.map((c) => c.name));
    const removed = [...this.#running.keys()].filter((n) => !names.has(n));
    const changes = { added, removed, restarted, updated };
    // Read now, so files that cannot be read reject the reload before anything changes.
    let backendTls: BackendTlsProfiles;
    let gateway: ReturnType<GatewayDiscovery['stage']>;
    try {
      backendTls = new BackendTlsProfiles(next, undefined);
      gateway = this.#gateway.stage(next);
    } catch (e) {
      for (const r of watchers.values()) void r.watcher.stop();
      throw e;
    }
    return {
      changes,
      gatewayChanges: gateway.changes,
      backendTlsChanged: backendTls.keys !== this.#backendTls.keys,
      commit: () => {
        this.#backendTls = backendTls;
        this.#commit(next, changes, watchers);
        gateway.commit();
      },
      // Built, never started: stopping them only lets go of their clients.
      abort: async () => {
        for (const r of watchers.values()) void r.watcher.stop();
        gateway.abort();
      },
    };
  }

  /** Makes `next` the running configuration. Synchronous: nothing here can fail. */
  #commit(
    next: Config,
    changes: ClusterChanges,
    watchers: ReadonlyMap<string, RunningCluster>,
  ): void {
    this.router.reconfigure(routerOptions(next));
    const tls = this.#backendTls;
    this.health.reconfigure(next.health, next.dns.addressing, (svc) => tls.forService(svc));
    for (const name of changes.removed) {
      this.#retire(name);
      this.catalog.removeCluster(name);
    }
    for (const c of next.clusters) {
      const built = watchers.get(c.name);
      const was = this.#running.get(c.name);
      if (!was) {
        this.catalog.addCluster(catalogCluster(c));
      } else {
        this.catalog.updateCluster(catalogCluster(c));
        if (built) {
          this.#retire(c.name);
          this.catalog.handOver(c.name);
        } else {
          this.#running.set(c.name, { ...was, config: c });
        }
      }
      if (built) this.#run(built);
    }
    // Config order, as at start.
    this.#watchers.sort(
      (a, b) =>
        next.clusters.findIndex((c) => c.name === a.name) -
        next.clusters.findIndex((c) => c.name === b.name),
    );
    this.#config = next;
  }

  /**
   * A worker process routed traffic with a plan it had not used before for this
   * service and client locality. The router here plans the same as traffic would, on
   * the catalog and health the worker mirrors, so a failover is noted (logged,
   * journaled, counted) once by this process, however many workers saw it.
   */
  planUsed(service: string, locality: Locality | undefined): void {
    const svc = this.catalog.current().services.get(service);
    if (svc) this.router.plan(svc, locality);
  }

  async stop(): Promise<void> {
    await Promise.all([
      ...this.#watchers.map((w) => w.stop()),
      ...this.#retiring,
      this.#gateway.stop(),
      this.health.stop(),
    ]);
    // What the watchers reported as they stopped is published now, not on a later turn
    // of the event loop: once stop() resolves, the catalog publishes nothing more.
    this.catalog.flush();
  }

  #build(c: ClusterConfig, config: Config): RunningCluster {
    const sink: ClusterWatcherSink = {
      change: (cluster, kind, key, record) => {
        this.catalog.apply(cluster, kind, key, record);
        if (kind !== 'nodes') return;
        for (const l of this.#nodeListeners) l(cluster, key, record as NodeRecord | undefined);
      },
      status: (status) => this.catalog.setStatus(status),
    };
    return buildSlot(
      c,
      sink,
      (s) => new ClusterWatcher(watcherOptions(c, config, this.#opts, this.#log), s),
    );
  }

  #run(r: RunningCluster): void {
    this.#running.set(r.config.name, r);
    this.#watchers.push(r.watcher);
    r.live.current = true;
    r.watcher.start();
  }

  #retire(name: string): void {
    const r = this.#running.get(name);
    if (!r) return;
    this.#running.delete(name);
    const at = this.#watchers.indexOf(r.watcher);
    if (at >= 0) this.#watchers.splice(at, 1);
    retireSlot(r, this.#retiring, this.#log);
  }
}

function catalogCluster(c: ClusterConfig): CatalogCluster {
  return { name: c.name, weight: c.weight, region: c.region };
}
