// fedgate's running parts for one configuration: a watcher per member cluster
// feeding one catalog. Later stages (routing, DNS, proxy) read the catalog.
import { Catalog } from './catalog/catalog.ts';
import type { Config } from './config/schema.ts';
import type { Logger } from './observe/log.ts';
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

  private constructor(catalog: Catalog, watchers: ClusterWatcher[]) {
    this.catalog = catalog;
    this.watchers = watchers;
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
    for (const w of watchers) w.start();
    return new Discovery(catalog, watchers);
  }

  async stop(): Promise<void> {
    await Promise.all(this.watchers.map((w) => w.stop()));
  }
}
