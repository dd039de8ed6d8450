// One config cluster's Gateway API objects: its own KubeConfig, a ResourceWatch per kind
// (GatewayClass, Gateway, HTTPRoute, GRPCRoute, ReferenceGrant, Namespace, TLS Secret),
// and the cluster's Gateway API sync state. Apart from the member's ClusterWatcher, so
// that naming a cluster in gatewayAPI.clusters, or dropping it, leaves its endpoints'
// watches alone, and a cluster without the CRDs is a state, not a failure.
import { type ErrorCode, errorCodeOf } from '../errors.ts';
import type { Logger } from '../observe/log.ts';
import { Backoff } from './backoff.ts';
import { type ClusterWatcherOptions, clientAndOptions } from './cluster-watcher.ts';
import type { GatewayRecordOf, GatewayResourceKind } from './gateway-records.ts';
import { ResourceWatch, type WatchStats } from './resource-watch.ts';

export const GATEWAY_KINDS: readonly GatewayResourceKind[] = [
  'gatewayclasses',
  'gateways',
  'httproutes',
  'grpcroutes',
  'referencegrants',
  'namespaces',
  'secrets',
];

export interface GatewayClusterStatus {
  readonly cluster: string;
  /** syncing: not every kind listed once; synced: watching; stale: the API is failing, records kept. */
  readonly state: 'syncing' | 'synced' | 'stale';
  /** Kinds the cluster does not serve (no CRD): they hold no records until served. */
  readonly absent: readonly GatewayResourceKind[];
  readonly error: { readonly code: ErrorCode; readonly message: string } | undefined;
}

export interface GatewayWatcherSink {
  change<K extends GatewayResourceKind>(
    cluster: string,
    kind: K,
    key: string,
    record: GatewayRecordOf[K] | undefined,
  ): void;
  status(status: GatewayClusterStatus): void;
}

/** As a member's ClusterWatcher is built: its own kubeconfig, the watch settings. */
export type GatewayWatcherOptions = ClusterWatcherOptions;

interface KindState {
  listed: boolean;
  failing: Error | undefined;
  absent: boolean;
}

export class GatewayWatcher {
  readonly name: string;
  readonly #sink: GatewayWatcherSink;
  readonly #log: Logger;
  readonly #watches: ResourceWatch<GatewayResourceKind>[];
  readonly #kinds = new Map<GatewayResourceKind, KindState>();
  #status: GatewayClusterStatus;
  readonly #absentRecheckMs: number;
  #syncedOnce = false;
  #stopped = false;

  /** Loads the kubeconfig (KUBECONFIG_INVALID) but starts nothing. */
  constructor(opts: GatewayWatcherOptions, sink: GatewayWatcherSink) {
    this.name = opts.name;
    this.#sink = sink;
    this.#log = opts.log.child({ cluster: opts.name, part: 'gateway-api' });
    const now = opts.now ?? Date.now;
    const { client, wopts } = clientAndOptions(opts);
    this.#absentRecheckMs = wopts.absentRecheckMs;
    this.#watches = GATEWAY_KINDS.map((kind) => {
      this.#kinds.set(kind, { listed: false, failing: undefined, absent: false });
      return new ResourceWatch<GatewayResourceKind>(
        kind,
        client,
        {
          change: (key, record) => this.#sink.change(this.name, kind, key, record),
          listed: () => this.#update(kind, { listed: true, failing: undefined, absent: false }),
          contact: () => {},
          failed: (err) => this.#update(kind, { failing: err }),
          absent: () => this.#update(kind, { listed: true, failing: undefined, absent: true }),
        },
        wopts,
        new Backoff({}, now, wopts.random),
      );
    });
    this.#status = { cluster: this.name, state: 'syncing', absent: [], error: undefined };
  }

  get status(): GatewayClusterStatus {
    return this.#status;
  }

  /** Each kind's watch counters, for metrics. */
  watchStats(): ReadonlyMap<GatewayResourceKind, WatchStats> {
    return new Map(this.#watches.map((w) => [w.kind, w.stats]));
  }

  start(): void {
    for (const w of this.#watches) w.start();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await Promise.all(this.#watches.map((w) => w.stop()));
  }

  #update(kind: GatewayResourceKind, change: Partial<KindState>): void {
    if (this.#stopped) return;
    const s = this.#kinds.get(kind);
    if (!s) return;
    Object.assign(s, change);
    const states = [...this.#kinds.entries()];
    const failing = states.find(([, k]) => k.failing)?.[1].failing;
    const allListed = states.every(([, k]) => k.listed);
    this.#syncedOnce ||= allListed && !failing;
    const state = failing
      ? this.#syncedOnce
        ? 'stale'
        : 'syncing'
      : allListed
        ? 'synced'
        : 'syncing';
    const absent = states.filter(([, k]) => k.absent).map(([name]) => name);
    const error = failing
      ? { code: errorCodeOf(failing) ?? ('CLUSTER_API_ERROR' as const), message: failing.message }
      : undefined;
    const prev = this.#status;
    if (
      prev.state === state &&
      prev.absent.join() === absent.join() &&
      prev.error?.message === error?.message
    )
      return;
    this.#status = { cluster: this.name, state, absent, error };
    this.#logChange(prev, this.#status);
    this.#sink.status(this.#status);
  }

  /** One line when the cluster syncs (naming what it does not serve), then one per change. */
  #logChange(prev: GatewayClusterStatus, next: GatewayClusterStatus): void {
    const recheck = `looking again every ${Math.round(this.#absentRecheckMs / 1000)} s`;
    if (next.state === 'synced' && prev.state !== 'synced') {
      if (next.absent.length > 0) {
        this.#log.warn(
          { absent: next.absent },
          `Gateway API objects synced, but this cluster does not serve ${next.absent.join(', ')} (no Gateway API CRDs?): none are read from it; ${recheck}`,
        );
      } else {
        this.#log.info('Gateway API objects synced');
      }
      return;
    }
    if (next.state === 'stale' && prev.state !== 'stale') {
      this.#log.warn(
        { code: next.error?.code, err: next.error?.message },
        'Gateway API reads failing: keeping the last known objects',
      );
      return;
    }
    if (next.error && prev.error?.code !== next.error.code) {
      this.#log.warn(
        { code: next.error.code, err: next.error.message },
        'Gateway API reads failing',
      );
      return;
    }
    if (next.state !== 'synced') return;
    const gone = next.absent.filter((k) => !prev.absent.includes(k));
    const back = prev.absent.filter((k) => !next.absent.includes(k));
    if (gone.length > 0)
      this.#log.warn(
        { absent: next.absent },
        `this cluster no longer serves ${gone.join(', ')}; ${recheck}`,
      );
    if (back.length > 0)
      this.#log.info({ served: back }, `this cluster now serves ${back.join(', ')}`);
  }
}
