// fedgate's running parts for one configuration: a watcher per member cluster
// feeding one catalog, health following the catalog, and the router that turns
// both into plans. DNS and the proxy read the catalog and ask the router.
import { Catalog } from './catalog/catalog.ts';
import type { Config } from './config/schema.ts';
import { HealthMonitor } from './health/monitor.ts';
import type { EventJournal } from './observe/events.ts';
import type { Logger } from './observe/log.ts';
import { describeLocality } from './routing/explain.ts';
import { Router, type TierShift } from './routing/router.ts';
import { ClusterWatcher } from './watch/cluster-watcher.ts';

export interface DiscoveryOptions {
  now?: () => number;
  random?: () => number;
  /** How often to look again for ServiceExport where it is not served (default: a minute). */
  absentRecheckMs?: number;
  /** Where cluster state changes, failovers and ejections are recorded for the status page. */
  journal?: EventJournal;
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
    const journal = opts.journal;
    const health = new HealthMonitor({
      config: config.health,
      addressing: config.dns.addressing,
      log,
      ...(opts.now ? { now: opts.now } : {}),
      ...(opts.random ? { random: opts.random } : {}),
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
    const router = new Router(
      { ...config.routing, localities: config.localities, self: config.self },
      health.store,
      shifted,
    );
    catalog.subscribe((s) => router.prune(s));
    if (journal) {
      // Cluster states, as the snapshots publish them: one event per change.
      const states = new Map<string, string>();
      catalog.subscribe((s) => {
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
    for (const w of watchers) w.start();
    health.start(catalog);
    return new Discovery(catalog, watchers, health, router);
  }

  async stop(): Promise<void> {
    await Promise.all([...this.watchers.map((w) => w.stop()), this.health.stop()]);
  }
}
