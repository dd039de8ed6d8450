// The catalog: every member's records, merged per service into immutable,
// versioned snapshots. A change marks only its service dirty; dirty services are
// re-merged together on the next turn of the event loop, so a burst becomes one
// snapshot and a lone change is published without waiting. Members can be added,
// removed, re-weighted and handed over to a new watcher while it runs (reload).
import type { Logger } from '../observe/log.ts';
import type { ClusterStatus } from '../watch/cluster-watcher.ts';
import type {
  ExportRecord,
  NodeRecord,
  RecordOf,
  ResourceKind,
  ServiceRecord,
  SliceRecord,
} from '../watch/records.ts';
import { type EndpointMemo, type MemberInput, mergeService, sameService } from './merge.ts';
import type { FederatedService, Readiness, Snapshot } from './model.ts';

export interface CatalogCluster {
  readonly name: string;
  readonly weight: number;
  readonly region?: string | undefined;
}

export interface CatalogOptions {
  clusters: readonly CatalogCluster[];
  now?: () => number;
  log?: Logger;
}

interface Member {
  config: CatalogCluster;
  status: ClusterStatus;
  readonly services: Map<string, ServiceRecord>;
  readonly exports: Map<string, ExportRecord>;
  readonly nodes: Map<string, NodeRecord>;
  /** service key → slice key → slice */
  readonly slices: Map<string, Map<string, SliceRecord>>;
  /** slice key → the service key it was filed under */
  readonly sliceOwner: Map<string, string>;
  /** service key → its endpoints as last merged, while their slices and nodes stay */
  readonly endpointMemos: Map<string, EndpointMemo>;
  /** node name → service keys with an endpoint on it */
  readonly nodeUsers: Map<string, Set<string>>;
}

type Subscriber = (snapshot: Snapshot) => void;

/** Changes timed per flush at most (propagation metrics). */
const MAX_TIMED = 1000;

export class Catalog {
  readonly #members = new Map<string, Member>();
  readonly #now: () => number;
  readonly #log: Logger | undefined;
  readonly #subscribers = new Set<Subscriber>();
  readonly #dirty = new Set<string>();
  #flushScheduled: NodeJS.Immediate | undefined;
  /** A member's status changed since the last snapshot. */
  #clustersChanged = false;
  #snapshot: Snapshot;
  /**
   * Members being handed over to a new watcher (reload changed their kubeconfig,
   * context or watch settings): its records land here, and replace the member's in
   * one snapshot once it has listed everything; until then the old ones are served.
   */
  readonly #staging = new Map<string, Member>();
  #readyWaiters: Array<() => void> = [];
  /** performance.now() of each change waiting for the next flush, for propagation timing. */
  #arrivals: number[] = [];
  readonly #propagation = new Set<(seconds: number) => void>();

  constructor(opts: CatalogOptions) {
    this.#now = opts.now ?? Date.now;
    this.#log = opts.log;
    for (const c of opts.clusters) this.#members.set(c.name, newMember(c));
    this.#snapshot = {
      version: 0,
      createdAt: this.#now(),
      services: new Map(),
      clusters: new Map([...this.#members].map(([name, m]) => [name, m.status])),
    };
  }

  /** The latest snapshot: never blocks, never calls out. */
  current(): Snapshot {
    return this.#snapshot;
  }

  /** Called with every new snapshot, in order. Returns the unsubscribe function. */
  subscribe(fn: Subscriber): () => void {
    this.#subscribers.add(fn);
    return () => this.#subscribers.delete(fn);
  }

  /**
   * Hears, for every record change that a published snapshot carries, the seconds
   * from its arrival here to the moment every subscriber has the snapshot.
   */
  onPropagation(fn: (seconds: number) => void): () => void {
    this.#propagation.add(fn);
    return () => this.#propagation.delete(fn);
  }

  /** Every configured cluster has synced once. */
  readiness(): Readiness {
    const missing = [...this.#members.values()]
      .filter((m) => !m.status.syncedOnce)
      .map((m) => m.config.name);
    return { ready: missing.length === 0, missing, timedOut: false };
  }

  /** Resolves when every cluster has synced once, or after `timeoutMs` with the missing ones. */
  async whenReady(timeoutMs: number, signal?: AbortSignal): Promise<Readiness> {
    if (this.readiness().ready) return this.readiness();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        this.#readyWaiters = this.#readyWaiters.filter((w) => w !== onReady);
        const r = this.readiness();
        resolve(r.ready ? r : { ...r, timedOut: true });
      };
      const onReady = () => done();
      const timer = setTimeout(done, timeoutMs);
      signal?.addEventListener('abort', done);
      this.#readyWaiters.push(onReady);
    });
  }

  /** A record changed in a member cluster (undefined: it is gone). */
  apply<K extends ResourceKind>(
    cluster: string,
    kind: K,
    key: string,
    record: RecordOf[K] | undefined,
  ): void {
    const staged = this.#staging.get(cluster);
    const m = staged ?? this.#members.get(cluster);
    if (!m) return;
    // Staged records are published all at once by the handover, not one by one.
    const dirty = staged ? noop : (k: string) => this.#markDirty(k);
    switch (kind) {
      case 'services':
        setOrDelete(m.services, key, record as ServiceRecord | undefined);
        if (record === undefined && !m.slices.has(key)) m.endpointMemos.delete(key);
        dirty(key);
        break;
      case 'serviceexports':
        setOrDelete(m.exports, key, record as ExportRecord | undefined);
        dirty(key);
        break;
      case 'endpointslices':
        this.#applySlice(m, key, record as SliceRecord | undefined, dirty);
        break;
      case 'nodes': {
        const old = m.nodes.get(key);
        const next = record as NodeRecord | undefined;
        setOrDelete(m.nodes, key, next);
        if (
          old?.zone !== next?.zone ||
          old?.region !== next?.region ||
          old?.subzone !== next?.subzone
        ) {
          for (const svc of m.nodeUsers.get(key) ?? []) dirty(svc);
        }
        break;
      }
    }
  }

  /**
   * The member's Service as watched, exported or not (undefined: none there, or no
   * such member): what a ServiceExport's Valid condition is about.
   */
  memberService(cluster: string, key: string): ServiceRecord | undefined {
    return this.#members.get(cluster)?.services.get(key);
  }

  /** A member's sync state changed: every service it is part of carries it. */
  setStatus(status: ClusterStatus): void {
    const m = this.#members.get(status.cluster);
    if (!m) return;
    const staged = this.#staging.get(status.cluster);
    if (staged) {
      if (status.syncedOnce) {
        // The new watcher has listed everything: its records replace the old, at once.
        this.#staging.delete(status.cluster);
        staged.config = m.config;
        staged.status = status;
        for (const key of serviceKeys(m)) this.#dirty.add(key);
        for (const key of serviceKeys(staged)) this.#dirty.add(key);
        this.#members.set(status.cluster, staged);
      } else if (status.error) {
        // The new watcher cannot get through: the old records stay, marked as such.
        m.status = {
          ...status,
          state: m.status.syncedOnce ? 'stale' : 'syncing',
          syncedOnce: m.status.syncedOnce,
          lastSyncAt: m.status.lastSyncAt,
        };
      } else {
        // Still listing: the member keeps the state its old watcher left.
        return;
      }
    } else {
      m.status = status;
    }
    this.#markMember(status.cluster);
    this.#clustersChanged = true;
    this.#schedule();
    this.#notifyReady();
  }

  /** A member joins (reload): syncing until its watcher has listed everything once. */
  addCluster(c: CatalogCluster): void {
    if (this.#members.has(c.name)) {
      this.updateCluster(c);
      return;
    }
    this.#members.set(c.name, newMember(c));
    this.#clustersChanged = true;
    this.#schedule();
  }

  /** A member leaves (reload): its records leave every service in one snapshot, published now. */
  removeCluster(name: string): void {
    const m = this.#members.get(name);
    if (!m) return;
    for (const key of serviceKeys(m)) this.#dirty.add(key);
    this.#markMember(name);
    this.#members.delete(name);
    this.#staging.delete(name);
    this.#clustersChanged = true;
    this.flush();
    this.#notifyReady();
  }

  /** A member's weight or region changed (reload): its services are merged again. */
  updateCluster(c: CatalogCluster): void {
    const m = this.#members.get(c.name);
    if (!m) return;
    const staged = this.#staging.get(c.name);
    if (staged) staged.config = c;
    if (m.config.weight === c.weight && m.config.region === c.region) return;
    m.config = c;
    for (const key of serviceKeys(m)) this.#dirty.add(key);
    this.#schedule();
  }

  /**
   * A new watcher takes over the member (reload changed how it is reached): until it
   * has listed everything, the old records stay published and its own are kept
   * aside; then they replace the old in one snapshot (see setStatus). A removed
   * object so never lingers, and a restart never empties a service in between.
   */
  handOver(name: string): void {
    const m = this.#members.get(name);
    if (m) this.#staging.set(name, newMember(m.config));
  }

  /** Every service the snapshot lists with this member. */
  #markMember(name: string): void {
    for (const [key, svc] of this.#snapshot.services) {
      if (svc.clusters.some((c) => c.cluster === name)) this.#dirty.add(key);
    }
  }

  #notifyReady(): void {
    if (this.readiness().ready && this.#readyWaiters.length > 0) {
      // Ready means the published snapshot holds what every cluster listed.
      this.flush();
      for (const w of [...this.#readyWaiters]) w();
    }
  }

  #applySlice(
    m: Member,
    key: string,
    slice: SliceRecord | undefined,
    dirty: (serviceKey: string) => void,
  ): void {
    const oldOwner = m.sliceOwner.get(key);
    if (oldOwner !== undefined) {
      const set = m.slices.get(oldOwner);
      set?.delete(key);
      if (set?.size === 0) {
        m.slices.delete(oldOwner);
        m.endpointMemos.delete(oldOwner);
      }
      dirty(oldOwner);
      m.sliceOwner.delete(key);
    }
    if (!slice) return;
    const owner = `${slice.namespace}/${slice.service}`;
    const set = m.slices.get(owner) ?? new Map<string, SliceRecord>();
    m.slices.set(owner, set);
    set.set(key, slice);
    m.sliceOwner.set(key, owner);
    for (const ep of slice.endpoints) {
      if (ep.nodeName === undefined) continue;
      const users = m.nodeUsers.get(ep.nodeName) ?? new Set<string>();
      m.nodeUsers.set(ep.nodeName, users);
      users.add(owner);
    }
    dirty(owner);
  }

  #markDirty(serviceKey: string): void {
    this.#dirty.add(serviceKey);
    // Bounded: a relist of thousands of records is timed by its first MAX_TIMED changes.
    if (this.#propagation.size > 0 && this.#arrivals.length < MAX_TIMED)
      this.#arrivals.push(performance.now());
    this.#schedule();
  }

  #schedule(): void {
    this.#flushScheduled ??= setImmediate(() => {
      this.#flushScheduled = undefined;
      this.flush();
    });
  }

  /** Re-merges the dirty services and publishes a snapshot if anything changed. */
  flush(): Snapshot {
    if (this.#flushScheduled) {
      clearImmediate(this.#flushScheduled);
      this.#flushScheduled = undefined;
    }
    const prev = this.#snapshot;
    let services: Map<string, FederatedService> | undefined;
    for (const key of this.#dirty) {
      const next = this.#merge(key);
      const old = prev.services.get(key);
      if (next === undefined && old === undefined) continue;
      if (next !== undefined && old !== undefined && sameService(old, next)) continue;
      services ??= new Map(prev.services);
      if (next === undefined) services.delete(key);
      else services.set(key, next);
    }
    this.#dirty.clear();
    const arrivals = this.#arrivals;
    this.#arrivals = [];
    if (!services && !this.#clustersChanged) return prev;
    this.#clustersChanged = false;
    const snapshot: Snapshot = {
      version: prev.version + 1,
      createdAt: this.#now(),
      services: services ?? prev.services,
      clusters: new Map([...this.#members].map(([name, m]) => [name, m.status])),
    };
    this.#snapshot = snapshot;
    for (const fn of this.#subscribers) {
      try {
        fn(snapshot);
      } catch (e) {
        this.#log?.error({ err: e }, 'catalog subscriber failed');
      }
    }
    if (services && arrivals.length > 0) {
      const done = performance.now();
      for (const fn of this.#propagation) for (const t of arrivals) fn((done - t) / 1000);
    }
    return snapshot;
  }

  #merge(key: string): FederatedService | undefined {
    const slash = key.indexOf('/');
    const namespace = key.slice(0, slash);
    const name = key.slice(slash + 1);
    const inputs: MemberInput[] = [];
    for (const m of this.#members.values()) {
      const service = m.services.get(key);
      if (!service) continue;
      inputs.push({
        cluster: m.config.name,
        weight: m.config.weight,
        region: m.config.region,
        service,
        export: m.exports.get(key),
        slices: m.slices.get(key)?.values() ?? [],
        nodes: m.nodes,
        sync: m.status,
        memo: memoOf(m, key),
      });
    }
    return mergeService(namespace, name, inputs);
  }
}

function newMember(config: CatalogCluster): Member {
  return {
    config,
    status: {
      cluster: config.name,
      state: 'syncing',
      syncedOnce: false,
      lastSyncAt: undefined,
      error: undefined,
      exportMode: 'unknown',
    },
    services: new Map(),
    exports: new Map(),
    nodes: new Map(),
    slices: new Map(),
    sliceOwner: new Map(),
    nodeUsers: new Map(),
    endpointMemos: new Map(),
  };
}

function memoOf(m: Member, key: string): EndpointMemo {
  let memo = m.endpointMemos.get(key);
  if (!memo) {
    memo = {};
    m.endpointMemos.set(key, memo);
  }
  return memo;
}

/** Every service key a member holds a record for. */
function serviceKeys(m: Member): Set<string> {
  return new Set([...m.services.keys(), ...m.exports.keys(), ...m.slices.keys()]);
}

function noop(): void {}

function setOrDelete<V>(map: Map<string, V>, key: string, value: V | undefined): void {
  if (value === undefined) map.delete(key);
  else map.set(key, value);
}
