// The Gateway API records of every config cluster, held per cluster and kind, and
// handed out as one `GatewayObjects` (route compilation's input) to subscribers:
// once per turn of the event loop however many records changed in it, as the
// catalog publishes snapshots. It only gathers: copies of one object in several
// clusters are all kept, each naming its cluster; deciding between them
// (the oldest wins) is compilation's.
import type { Logger } from '../observe/log.ts';
import type { GatewayObjects, GatewayRecordOf, GatewayResourceKind } from './gateway-records.ts';
import type { GatewayClusterStatus } from './gateway-watcher.ts';

export type GatewaySubscriber = (objects: GatewayObjects, version: number) => void;

type Held = { [K in GatewayResourceKind]: Map<string, GatewayRecordOf[K]> };

function emptyHeld(): Held {
  return {
    gatewayclasses: new Map(),
    gateways: new Map(),
    httproutes: new Map(),
    grpcroutes: new Map(),
    referencegrants: new Map(),
    namespaces: new Map(),
    secrets: new Map(),
  };
}

export const NO_GATEWAY_OBJECTS: GatewayObjects = Object.freeze({
  gatewayClasses: [],
  gateways: [],
  httpRoutes: [],
  grpcRoutes: [],
  referenceGrants: [],
  namespaces: [],
  secrets: [],
});

export class GatewayStore {
  readonly #clusters = new Map<string, Held>();
  /** A replaced watcher's cluster: its new watcher's records, kept aside until it syncs. */
  readonly #staging = new Map<string, Held>();
  readonly #statuses = new Map<string, GatewayClusterStatus>();
  readonly #subscribers = new Set<GatewaySubscriber>();
  readonly #log: Logger | undefined;
  #current: GatewayObjects = NO_GATEWAY_OBJECTS;
  #version = 0;
  #dirty = false;
  #scheduled: NodeJS.Immediate | undefined;

  constructor(log?: Logger) {
    this.#log = log;
  }

  /** The objects as last published, and how many publications there have been. */
  current(): { readonly objects: GatewayObjects; readonly version: number } {
    return { objects: this.#current, version: this.#version };
  }

  /** Each config cluster's Gateway API sync state. */
  statuses(): ReadonlyMap<string, GatewayClusterStatus> {
    return this.#statuses;
  }

  /** Called with each new GatewayObjects, in order. Returns the unsubscribe function. */
  subscribe(fn: GatewaySubscriber): () => void {
    this.#subscribers.add(fn);
    return () => this.#subscribers.delete(fn);
  }

  apply<K extends GatewayResourceKind>(
    cluster: string,
    kind: K,
    key: string,
    record: GatewayRecordOf[K] | undefined,
  ): void {
    const staged = this.#staging.get(cluster);
    if (staged) {
      const map = staged[kind] as Map<string, GatewayRecordOf[K]>;
      if (record === undefined) map.delete(key);
      else map.set(key, record);
      return;
    }
    let held = this.#clusters.get(cluster);
    if (!held) {
      if (record === undefined) return;
      held = emptyHeld();
      this.#clusters.set(cluster, held);
    }
    const map = held[kind] as Map<string, GatewayRecordOf[K]>;
    if (record === undefined) {
      if (!map.delete(key)) return;
    } else {
      map.set(key, record);
    }
    this.#schedule();
  }

  /** A staged cluster's records take the place of its old ones once its new watcher syncs. */
  setStatus(status: GatewayClusterStatus): void {
    this.#statuses.set(status.cluster, status);
    const staged = this.#staging.get(status.cluster);
    if (staged && status.state === 'synced') {
      this.#staging.delete(status.cluster);
      this.#clusters.set(status.cluster, staged);
      this.#schedule();
    }
  }

  /**
   * A new watcher replaces the cluster's (new kubeconfig, say): what it reads is kept
   * aside, and the old records are published until it has listed every kind, so
   * routes do not vanish for the length of a relist (fail static meanwhile).
   */
  handOver(cluster: string): void {
    this.#staging.set(cluster, emptyHeld());
  }

  /** A cluster left gatewayAPI.clusters: its objects go with it. */
  removeCluster(cluster: string): void {
    this.#statuses.delete(cluster);
    this.#staging.delete(cluster);
    if (this.#clusters.delete(cluster)) this.#schedule();
  }

  #schedule(): void {
    this.#dirty = true;
    this.#scheduled ??= setImmediate(() => {
      this.#scheduled = undefined;
      this.flush();
    });
  }

  /** Publishes now what changed since the last publication, if anything did. */
  flush(): void {
    if (this.#scheduled) {
      clearImmediate(this.#scheduled);
      this.#scheduled = undefined;
    }
    if (!this.#dirty) return;
    this.#dirty = false;
    this.#current = this.#build();
    this.#version++;
    for (const fn of this.#subscribers) {
      try {
        fn(this.#current, this.#version);
      } catch (e) {
        this.#log?.error({ err: e }, 'Gateway API subscriber failed');
      }
    }
  }

  /** Cluster by cluster in name order, each kind by key: the same records give the same lists. */
  #build(): GatewayObjects {
    const clusters = [...this.#clusters.keys()].sort();
    const all = <K extends GatewayResourceKind>(kind: K): GatewayRecordOf[K][] =>
      clusters.flatMap((c) => {
        const map = this.#clusters.get(c)?.[kind] as Map<string, GatewayRecordOf[K]> | undefined;
        return map ? [...map.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([, r]) => r) : [];
      });
    return Object.freeze({
      gatewayClasses: all('gatewayclasses'),
      gateways: all('gateways'),
      httpRoutes: all('httproutes'),
      grpcRoutes: all('grpcroutes'),
      referenceGrants: all('referencegrants'),
      namespaces: all('namespaces'),
      secrets: all('secrets'),
    });
  }
}
