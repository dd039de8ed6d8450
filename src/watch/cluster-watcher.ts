// One member cluster: its own KubeConfig, four resource informers, and the
// cluster's sync state (syncing → synced ⇄ stale) derived from them.
import { KubeConfig } from '@kubernetes/client-node';
import { type ErrorCode, errorCodeOf, FedgateError } from '../errors.ts';
import type { ExhaustionSink } from '../observe/exhaustion.ts';
import type { Logger } from '../observe/log.ts';
import { ApiClient } from './api-client.ts';
import { Backoff } from './backoff.ts';
import type { RecordOf, ResourceKind } from './records.ts';
import { ResourceWatch, type ResourceWatchOptions, type WatchStats } from './resource-watch.ts';

export const RESOURCE_KINDS: readonly ResourceKind[] = [
  'services',
  'endpointslices',
  'nodes',
  'serviceexports',
];

/** How often to look again for the ServiceExport resource in a cluster that lacks it. */
export const ABSENT_RECHECK_MS = 60_000;

export type ExportMode = 'ServiceExport' | 'annotation' | 'unknown';

export interface ClusterStatus {
  readonly cluster: string;
  /** syncing: not yet listed everything once; synced: watching; stale: the API is failing, data kept. */
  readonly state: 'syncing' | 'synced' | 'stale';
  readonly syncedOnce: boolean;
  /** When the cluster was last known in sync (for stale: the data's age starts here). */
  readonly lastSyncAt: number | undefined;
  readonly error: { readonly code: ErrorCode; readonly message: string } | undefined;
  /** How services opt in here: ServiceExport objects, or only the annotation (no CRD). */
  readonly exportMode: ExportMode;
}

export interface ClusterWatcherSink {
  change<K extends ResourceKind>(
    cluster: string,
    kind: K,
    key: string,
    record: RecordOf[K] | undefined,
  ): void;
  status(status: ClusterStatus): void;
}

export interface ClusterWatcherOptions {
  name: string;
  kubeconfig: string;
  context?: string | undefined;
  silenceLimitMs: number;
  listTimeoutMs: number;
  pageSize: number;
  absentRecheckMs?: number;
  now?: () => number;
  random?: () => number;
  log: Logger;
  /** Told when a watch could not connect for lack of descriptors. */
  exhaustion?: ExhaustionSink | undefined;
}

interface KindState {
  listed: boolean;
  failing: Error | undefined;
  absent: boolean;
}

export class ClusterWatcher {
  readonly name: string;
  readonly #sink: ClusterWatcherSink;
  readonly #log: Logger;
  readonly #now: () => number;
  readonly #watches: ResourceWatch<ResourceKind>[];
  readonly #kinds = new Map<ResourceKind, KindState>();
  #status: ClusterStatus;
  #lastContact: number | undefined;
  #stopped = false;

  constructor(opts: ClusterWatcherOptions, sink: ClusterWatcherSink) {
    this.name = opts.name;
    this.#sink = sink;
    this.#log = opts.log.child({ cluster: opts.name });
    this.#now = opts.now ?? Date.now;
    const { client, wopts } = clientAndOptions(opts);
    const random = wopts.random;
    this.#watches = RESOURCE_KINDS.map((kind) => {
      this.#kinds.set(kind, { listed: false, failing: undefined, absent: false });
      return new ResourceWatch(
        kind,
        client,
        {
          change: (key, record) => this.#sink.change(this.name, kind, key, record),
          listed: () => this.#update(kind, { listed: true, failing: undefined, absent: false }),
          contact: () => this.#contact(),
          failed: (err) => this.#update(kind, { failing: err }),
          absent: () => this.#update(kind, { listed: true, failing: undefined, absent: true }),
        },
        wopts,
        new Backoff({}, this.#now, random),
      );
    });
    this.#status = {
      cluster: this.name,
      state: 'syncing',
      syncedOnce: false,
      lastSyncAt: undefined,
      error: undefined,
      exportMode: 'unknown',
    };
  }

  get status(): ClusterStatus {
    return this.#status;
  }

  /** Each resource's watch counters, for metrics. */
  watchStats(): ReadonlyMap<ResourceKind, WatchStats> {
    return new Map(this.#watches.map((w) => [w.kind, w.stats]));
  }

  /** The last time any of this cluster's watches heard from its API server. */
  get lastContactAt(): number | undefined {
    return this.#lastContact;
  }

  start(): void {
    for (const w of this.#watches) w.start();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await Promise.all(this.#watches.map((w) => w.stop()));
  }

  #contact(): void {
    this.#lastContact = this.#now();
    // Contact alone (a list page, an open watch) does not end a failure: the
    // records may still be older than the server's until the relist that
    // follows every failure completes, and listed() ends it.
    if (this.#status.state === 'synced') {
      // Keep lastSyncAt current without publishing a new status for every bookmark.
      this.#status = { ...this.#status, lastSyncAt: this.#lastContact };
    }
  }

  #update(kind: ResourceKind, change: Partial<KindState>): void {
    if (this.#stopped) return;
    const s = this.#kinds.get(kind)!;
    const wasAbsent = s.absent;
    Object.assign(s, change);
    const states = [...this.#kinds.values()];
    const failing = states.find((k) => k.failing)?.failing;
    const allListed = states.every((k) => k.listed);
    const syncedOnce = this.#status.syncedOnce || (allListed && !failing);
    const state = failing ? (syncedOnce ? 'stale' : 'syncing') : allListed ? 'synced' : 'syncing';
    const exportsState = this.#kinds.get('serviceexports')!;
    const exportMode: ExportMode = exportsState.absent
      ? 'annotation'
      : exportsState.listed
        ? 'ServiceExport'
        : this.#status.exportMode;
    if (kind === 'serviceexports' && s.absent && !wasAbsent) {
      this.#log.warn(
        'this cluster does not serve ServiceExport (multicluster.x-k8s.io); services here join the federation with the annotation fedgate.io/federate: "true"',
      );
    } else if (kind === 'serviceexports' && !s.absent && wasAbsent) {
      this.#log.info('ServiceExport is now served here; exports are read again');
    }
    const error = failing
      ? { code: errorCodeOf(failing) ?? ('CLUSTER_API_ERROR' as const), message: failing.message }
      : undefined;
    const prev = this.#status;
    const now = this.#now();
    const lastSyncAt = state === 'synced' ? now : prev.lastSyncAt;
    if (
      prev.state === state &&
      prev.syncedOnce === syncedOnce &&
      prev.exportMode === exportMode &&
      prev.error?.message === error?.message
    ) {
      return;
    }
    this.#status = { cluster: this.name, state, syncedOnce, lastSyncAt, error, exportMode };
    if (state === 'stale' && prev.state !== 'stale') {
      this.#log.warn(
        { code: error?.code, err: error?.message },
        'member API failing: keeping its last known endpoints, marked stale',
      );
    } else if (state === 'synced' && prev.state === 'stale') {
      this.#log.info({ staleForMs: now - (prev.lastSyncAt ?? now) }, 'member API back in sync');
    } else if (state === 'synced' && prev.state === 'syncing') {
      this.#log.info({ exportMode }, 'member cluster synced');
    } else if (error && prev.error?.code !== error.code) {
      // A new kind of failure (e.g. 401 before the first sync) is worth a warning...
      this.#log.warn({ code: error.code, err: error.message }, 'member API failing');
    } else if (error) {
      // ...the same failure on another resource or retry is not.
      this.#log.debug({ code: error.code, err: error.message }, 'member API failing');
    }
    this.#sink.status(this.#status);
  }
}

/** A watcher's API client (its own KubeConfig: KUBECONFIG_INVALID) and its resources' options. */
export function clientAndOptions(opts: ClusterWatcherOptions): {
  client: ApiClient;
  wopts: ResourceWatchOptions;
} {
  const client = new ApiClient(opts.name, loadKubeConfig(opts.name, opts.kubeconfig, opts.context));
  return {
    client,
    wopts: {
      silenceLimitMs: opts.silenceLimitMs,
      listTimeoutMs: opts.listTimeoutMs,
      pageSize: opts.pageSize,
      absentRecheckMs: opts.absentRecheckMs ?? ABSENT_RECHECK_MS,
      random: opts.random ?? Math.random,
      exhaustion: opts.exhaustion,
    },
  };
}

/** A KubeConfig of its own for each member: switching contexts on a shared one leaks credentials. */
export function loadKubeConfig(cluster: string, file: string, context?: string): KubeConfig {
  const kc = new KubeConfig();
  try {
    kc.loadFromFile(file);
    if (context !== undefined) kc.setCurrentContext(context);
  } catch (e) {
    throw new FedgateError(
      'KUBECONFIG_INVALID',
      `cluster ${cluster}: cannot load kubeconfig ${file}: ${(e as Error).message}`,
    );
  }
  if (!kc.getCurrentCluster()) {
    throw new FedgateError(
      'KUBECONFIG_INVALID',
      `cluster ${cluster}: kubeconfig ${file} has no cluster for context "${kc.getCurrentContext()}"`,
    );
  }
  return kc;
}
