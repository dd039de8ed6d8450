// Discovery's Gateway API part: a GatewayWatcher per cluster gatewayAPI.clusters names,
// feeding one GatewayStore, whose subscribers get every config cluster's objects as one
// GatewayObjects, once per turn of the event loop. A reload adds, removes and restarts
// these watchers apart from the member's endpoint watchers.
import type { ClusterConfig, Config } from './config/schema.ts';
import {
  buildSlot,
  restartReason,
  retireSlot,
  type Slot,
  type WatcherInjections,
  watcherOptions,
} from './discovery-slots.ts';
import type { Logger } from './observe/log.ts';
import { GatewayStore } from './watch/gateway-store.ts';
import { GatewayWatcher, type GatewayWatcherSink } from './watch/gateway-watcher.ts';

/** How a reload changes the clusters whose Gateway API objects are read. */
export interface GatewayClusterChanges {
  readonly added: readonly string[];
  readonly removed: readonly string[];
  readonly restarted: readonly { readonly name: string; readonly why: string }[];
}

type RunningGateway = Slot<GatewayWatcher>;

/** The staged part of a reload: watchers built, not started. */
export interface StagedGateway {
  readonly changes: GatewayClusterChanges;
  commit(): void;
  abort(): void;
}

/** The member configurations gatewayAPI.clusters names (the config check made sure they exist). */
function gatewayClusters(config: Config): ClusterConfig[] {
  return config.gatewayAPI.clusters.flatMap((n) => config.clusters.filter((c) => c.name === n));
}

export class GatewayDiscovery {
  /** Every config cluster's Gateway API records: `current()` and `subscribe()`. */
  readonly store: GatewayStore;
  readonly #running = new Map<string, RunningGateway>();
  readonly #retiring = new Set<Promise<void>>();
  readonly #log: Logger;
  readonly #opts: WatcherInjections;
  #config: Config;

  /** Builds every watcher (KUBECONFIG_INVALID before any exists) but starts none. */
  constructor(config: Config, log: Logger, opts: WatcherInjections) {
    this.#config = config;
    this.#log = log;
    this.#opts = opts;
    this.store = new GatewayStore(log);
    for (const c of gatewayClusters(config)) this.#running.set(c.name, this.#build(c, config));
  }

  get watchers(): readonly GatewayWatcher[] {
    return [...this.#running.values()].map((r) => r.watcher);
  }

  start(): void {
    for (const r of this.#running.values()) this.#run(r);
  }

  stage(next: Config): StagedGateway {
    const added: string[] = [];
    const restarted: { name: string; why: string }[] = [];
    const built = new Map<string, RunningGateway>();
    try {
      for (const c of gatewayClusters(next)) {
        const was = this.#running.get(c.name);
        const why = was ? restartReason(was, c, this.#config, next) : undefined;
        if (!was) added.push(c.name);
        else if (why) restarted.push({ name: c.name, why });
        else continue;
        built.set(c.name, this.#build(c, next));
      }
    } catch (e) {
      for (const r of built.values()) void r.watcher.stop();
      throw e;
    }
    const names = new Set(next.gatewayAPI.clusters);
    const removed = [...this.#running.keys()].filter((n) => !names.has(n));
    return {
      changes: { added, removed, restarted },
      commit: () => {
        for (const name of removed) {
          this.#retire(name);
          this.store.removeCluster(name);
        }
        for (const { name } of restarted) {
          this.#retire(name);
          this.store.handOver(name);
        }
        for (const r of built.values()) this.#run(r);
        this.#config = next;
      },
      abort: () => {
        for (const r of built.values()) void r.watcher.stop();
      },
    };
  }

  async stop(): Promise<void> {
    await Promise.all([
      ...[...this.#running.values()].map((r) => r.watcher.stop()),
      ...this.#retiring,
    ]);
    this.store.flush();
  }

  #build(c: ClusterConfig, config: Config): RunningGateway {
    const sink: GatewayWatcherSink = {
      change: (cluster, kind, key, record) => this.store.apply(cluster, kind, key, record),
      status: (status) => this.store.setStatus(status),
    };
    return buildSlot(
      c,
      sink,
      (s) => new GatewayWatcher(watcherOptions(c, config, this.#opts, this.#log), s),
    );
  }

  #run(r: RunningGateway): void {
    this.#running.set(r.config.name, r);
    r.live.current = true;
    r.watcher.start();
  }

  #retire(name: string): void {
    const r = this.#running.get(name);
    if (!r) return;
    this.#running.delete(name);
    retireSlot(r, this.#retiring, this.#log);
  }
}
