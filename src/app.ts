// fedgate's running parts for one configuration: a watcher per member cluster
// feeding one catalog, health following the catalog, and the router that turns
// both into plans. DNS and the proxy read the catalog and ask the router.
import { Catalog } from './catalog/catalog.ts';
import type { Config } from './config/schema.ts';
import { HealthMonitor } from './health/monitor.ts';
import type { Logger } from './observe/log.ts';
import { Router } from './routing/router.ts';
import { ClusterWatcher } from './watch/cluster-watcher.ts';

export interface DiscoveryOptions {
  now?: () => number;
  random?: () => number;
  /** How often to look again for ServiceExport where it is not served (default: a minute). */
  absentRecheckMs?: number;
}

export class Discovery {
  readonly catalog: Catalog;
  readonly watchers: readonly ClusterWatcher[];
  readonly health: HealthMonitor;
  readonly router: Router;

  private constructor(
    catalog: Catalog,
    watchers: ClusterWatcher[],
    health: HealthMonitor,
    router: Router,
  ) {
    this.catalog = catalog;
    this.watchers = watchers;
    this.health = health;
    this.router = router;
  }

  /** Builds and starts the watchers. Throws FedgateError (KUBECONFIG_INVALID) before starting any. */
  static start(config: Config, log: Logger, opts: DiscoveryOptions = {}): Discovery {
    const catalog = new Catalog({
      clusters: config.clusters.map((c) => ({ name: c.name, weight: c.weight, region: c.region })),
      log,
      ...(opts.now ? { now: opts.now } : {}),
    });
    const watchers = config.clusters.map(
      (c) =>
        new ClusterWatcher(
          {
            name: c.name,
            kubeconfig: c.kubeconfig,
            context: c.context,
            silenceLimitMs: config.watch.silenceLimit,
            listTimeoutMs: config.watch.listTimeout,
            pageSize: config.watch.pageSize,
            ...(opts.absentRecheckMs !== undefined
              ? { absentRecheckMs: opts.absentRecheckMs }
              : {}),
            ...(opts.now ? { now: opts.now } : {}),
            ...(opts.random ? { random: opts.random } : {}),
            log,
          },
          {
            change: (cluster, kind, key, record) => catalog.apply(cluster, kind, key, record),
            status: (status) => catalog.setStatus(status),
          },
        ),
    );
    const health = new HealthMonitor({
      config: config.health,
      addressing: config.dns.addressing,
      log,
      ...(opts.now ? { now: opts.now } : {}),
      ...(opts.random ? { random: opts.random } : {}),
    });
    const router = new Router(
      { ...config.routing, localities: config.localities, self: config.self },
      health.store,
    );
    catalog.subscribe((s) => router.prune(s));
    for (const w of watchers) w.start();
    health.start(catalog);
    return new Discovery(catalog, watchers, health, router);
  }

  async stop(): Promise<void> {
    await Promise.all([...this.watchers.map((w) => w.stop()), this.health.stop()]);
  }
}
