// One resource's informer: list (paged, with a timeout), then watch from the
// list's resourceVersion with bookmarks, forever. It keeps the trimmed records
// and reports only real changes. Why not client-node's ListWatch: in 2.0 it
// never asks for bookmarks, stops for good on any non-410 error, emits an error
// on stop(), and its list has no timeout, so a hung API server stalls it.
import { setTimeout as sleep } from 'node:timers/promises';
import { errorCodeOf, FedgateError } from '../errors.ts';
import { type ExhaustionSink, exhaustionCode } from '../observe/exhaustion.ts';
import type { ApiClient } from './api-client.ts';
import type { Backoff } from './backoff.ts';
import type { GatewayRecordOf, GatewayResourceKind } from './gateway-records.ts';
import { GATEWAY_RESOURCE_PATHS, GATEWAY_TRIM } from './gateway-trim.ts';
import type { RecordOf, ResourceKind } from './records.ts';
import { type Json, objectKey, resourceVersionOf, sameRecord, TRIM } from './trim.ts';

/** Every kind a ResourceWatch can follow: the members' four, and the Gateway API's. */
export type WatchedKind = ResourceKind | GatewayResourceKind;
export type WatchedRecordOf = RecordOf & GatewayRecordOf;

export const RESOURCE_PATHS: Record<
  ResourceKind,
  { path: string; params: Record<string, string> }
> = {
  services: { path: '/api/v1/services', params: {} },
  // Only slices that name their Service; others (mirrored, custom) are not ours to route.
  endpointslices: {
    path: '/apis/discovery.k8s.io/v1/endpointslices',
    params: { labelSelector: 'kubernetes.io/service-name' },
  },
  nodes: { path: '/api/v1/nodes', params: {} },
  serviceexports: { path: '/apis/multicluster.x-k8s.io/v1alpha1/serviceexports', params: {} },
};

/**
 * Kinds a cluster may not serve (no CRD; the simulator serves no Secrets): a 404 on
 * the collection clears the records, says `absent()` and looks again later, instead
 * of failing. The others are built into every API server.
 */
const MAY_BE_ABSENT: ReadonlySet<WatchedKind> = new Set<WatchedKind>([
  'serviceexports',
  ...(Object.keys(GATEWAY_RESOURCE_PATHS) as GatewayResourceKind[]),
]);

function pathOf(kind: WatchedKind): { path: string; params: Record<string, string> } {
  return kind in RESOURCE_PATHS
    ? RESOURCE_PATHS[kind as ResourceKind]
    : GATEWAY_RESOURCE_PATHS[kind as GatewayResourceKind];
}

/** The kind's trimmer; Gateway API records also name the cluster they came from. */
function trimmerOf<K extends WatchedKind>(
  kind: K,
  cluster: string,
): (o: Json) => WatchedRecordOf[K] | undefined {
  if (kind in TRIM) return TRIM[kind as ResourceKind] as (o: Json) => WatchedRecordOf[K];
  const trim = GATEWAY_TRIM[kind as GatewayResourceKind];
  return (o) => trim(cluster, o) as WatchedRecordOf[K] | undefined;
}

export interface ResourceSink<K extends WatchedKind> {
  change(key: string, record: WatchedRecordOf[K] | undefined): void;
  /** A list completed: the records now match the server. */
  listed(): void;
  /** The server answered: a list page, an open watch, an event or a bookmark. */
  contact(): void;
  failed(err: Error): void;
  /** The resource is not served here (no CRD); records were cleared. */
  absent(): void;
}

export interface ResourceWatchOptions {
  silenceLimitMs: number;
  listTimeoutMs: number;
  pageSize: number;
  /** How often to look again for a resource that is not served. */
  absentRecheckMs: number;
  random: () => number;
  /** Told when a list or watch could not open its connection for lack of descriptors. */
  exhaustion?: ExhaustionSink | undefined;
}

/** Counts for metrics: watch events by type, and lists after the first by why. */
export interface WatchStats {
  readonly events: { ADDED: number; MODIFIED: number; DELETED: number; BOOKMARK: number };
  /** Relists: `expired` after 410 Gone, `error` after any other failure. */
  readonly relists: { expired: number; error: number };
}

export class ResourceWatch<K extends WatchedKind> {
  readonly kind: K;
  readonly stats: WatchStats = {
    events: { ADDED: 0, MODIFIED: 0, DELETED: 0, BOOKMARK: 0 },
    relists: { expired: 0, error: 0 },
  };
  readonly #client: ApiClient;
  readonly #sink: ResourceSink<K>;
  readonly #opts: ResourceWatchOptions;
  readonly #backoff: Backoff;
  readonly #records = new Map<string, WatchedRecordOf[K]>();
  readonly #trim: (o: Json) => WatchedRecordOf[K] | undefined;
  #versions = new Map<string, string>();
  readonly #stop = new AbortController();
  #loop: Promise<void> | undefined;

  constructor(
    kind: K,
    client: ApiClient,
    sink: ResourceSink<K>,
    opts: ResourceWatchOptions,
    backoff: Backoff,
  ) {
    this.kind = kind;
    this.#client = client;
    this.#sink = sink;
    this.#opts = opts;
    this.#backoff = backoff;
    this.#trim = trimmerOf(kind, client.cluster);
  }

  get size(): number {
    return this.#records.size;
  }

  start(): void {
    this.#loop ??= this.#run();
  }

  /** Stops for good: aborts the open request, closes its connection, no error reported. */
  async stop(): Promise<void> {
    this.#stop.abort();
    await this.#loop;
  }

  async #run(): Promise<void> {
    const { path, params } = pathOf(this.kind);
    const signal = this.#stop.signal;
    let rv: string | undefined;
    let goneStreak = 0;
    // Why the next list happens, once one has completed.
    let relist: keyof WatchStats['relists'] = 'error';
    let listedOnce = false;
    while (!signal.aborted) {
      let session: Awaited<ReturnType<ApiClient['session']>> | undefined;
      let opened = false;
      try {
        session = await this.#client.session();
        if (rv === undefined) {
          if (listedOnce) this.stats.relists[relist]++;
          relist = 'error';
          rv = await this.#list(session, path, params, signal);
          listedOnce = true;
        }
        // The server ends a watch after timeoutSeconds; spread them as client-go does (5–10 min).
        const timeoutSeconds = String(300 + Math.floor(this.#opts.random() * 300));
        await this.#client.watch(
          session,
          path,
          { ...params, resourceVersion: rv, timeoutSeconds },
          this.#opts.silenceLimitMs,
          () => {
            opened = true;
            this.#sink.contact();
          },
          (e) => {
            const next = resourceVersionOf(e.object);
            this.stats.events[e.type]++;
            if (e.type !== 'BOOKMARK') this.#event(e.type, e.object);
            if (next) rv = next;
            goneStreak = 0;
            this.#sink.contact();
          },
          signal,
        );
      } catch (e) {
        if (signal.aborted) break;
        const code = errorCodeOf(e);
        if (code === 'CLUSTER_WATCH_EXPIRED') {
          // History compacted past our resourceVersion: relist. At once the first time.
          rv = undefined;
          relist = 'expired';
          if (goneStreak++ === 0) continue;
          await this.#pause(this.#backoff.next());
          continue;
        }
        // An open watch that went quiet (no bookmarks from this server): the
        // watchdog's routine restart, not an outage. A watch that never opened is.
        if (code === 'CLUSTER_WATCH_SILENT' && opened) continue;
        if (code === 'CLUSTER_RESOURCE_NOT_SERVED' && MAY_BE_ABSENT.has(this.kind)) {
          rv = undefined;
          this.#replace(new Map());
          this.#sink.absent();
          await this.#pause(this.#opts.absentRecheckMs);
          continue;
        }
        // After a failure, relist rather than resume the watch from rv: only a
        // complete list proves the records match the server again, and its end
        // (listed()) is what ends the failure. Resuming made the cluster "synced"
        // as soon as the watch reopened, while it still held the pre-outage state
        // (e.g. until the 410 for a compacted rv and its relist had arrived).
        rv = undefined;
        this.#sink.failed(this.#failure(e));
        await this.#pause(this.#backoff.next());
      } finally {
        session?.close();
      }
    }
  }

  /**
   * What the cluster's status says. Out of descriptors is fedgate's own trouble, not
   * the member's: it says so (RESOURCE_EXHAUSTED), is counted, and the usual
   * backoff and relist follow.
   */
  #failure(e: unknown): Error {
    const code = exhaustionCode(e);
    if (code === undefined) return asError(e, this.#client.cluster, this.kind);
    this.#opts.exhaustion?.note('watch', e);
    return new FedgateError(
      'RESOURCE_EXHAUSTED',
      `cluster ${this.#client.cluster}: ${this.kind}: fedgate is out of file descriptors (${code}); trying again`,
      { cause: e },
    );
  }

  async #pause(ms: number): Promise<void> {
    try {
      await sleep(ms, undefined, { signal: this.#stop.signal });
    } catch {
      // Aborted by stop(): the loop sees it and ends.
    }
  }

  async #list(
    session: Awaited<ReturnType<ApiClient['session']>>,
    path: string,
    params: Record<string, string>,
    signal: AbortSignal,
  ): Promise<string> {
    const trim = this.#trim;
    const next = new Map<string, WatchedRecordOf[K]>();
    const versions = new Map<string, string>();
    let continueToken: string | undefined;
    let rv = '';
    do {
      const page = await this.#client.listPage(
        session,
        path,
        {
          ...params,
          limit: String(this.#opts.pageSize),
          ...(continueToken ? { continue: continueToken } : {}),
        },
        AbortSignal.any([signal, AbortSignal.timeout(this.#opts.listTimeoutMs)]),
      );
      this.#sink.contact();
      for (const item of page.items) {
        const o = item as Record<string, unknown>;
        const key = objectKey(o);
        const record = key ? trim(o) : undefined;
        if (!key || !record) continue;
        next.set(key, record);
        const v = resourceVersionOf(o);
        if (v) versions.set(key, v);
      }
      continueToken = page.continueToken;
      rv = page.resourceVersion;
    } while (continueToken);
    this.#replace(next);
    this.#versions = versions;
    this.#sink.listed();
    return rv;
  }

  /** Makes the records equal `next`, reporting only what differs. */
  #replace(next: Map<string, WatchedRecordOf[K]>): void {
    for (const key of [...this.#records.keys()]) {
      if (!next.has(key)) {
        this.#records.delete(key);
        this.#versions.delete(key);
        this.#sink.change(key, undefined);
      }
    }
    for (const [key, record] of next) {
      const old = this.#records.get(key);
      if (old !== undefined && sameRecord(old, record)) continue;
      this.#records.set(key, record);
      this.#sink.change(key, record);
    }
  }

  #event(type: 'ADDED' | 'MODIFIED' | 'DELETED', o: Record<string, unknown>): void {
    const key = objectKey(o);
    if (!key) return;
    const version = resourceVersionOf(o);
    if (type === 'DELETED') {
      this.#versions.delete(key);
      if (this.#records.delete(key)) this.#sink.change(key, undefined);
      return;
    }
    // Same resourceVersion: the object has not changed (a replayed event).
    if (version !== undefined && this.#versions.get(key) === version) return;
    if (version !== undefined) this.#versions.set(key, version);
    const record = this.#trim(o);
    if (record === undefined) {
      // No longer one of ours (e.g. a slice lost its service-name label).
      if (this.#records.delete(key)) this.#sink.change(key, undefined);
      return;
    }
    const old = this.#records.get(key);
    if (old !== undefined && sameRecord(old, record)) return;
    this.#records.set(key, record);
    this.#sink.change(key, record);
  }
}

function asError(e: unknown, cluster: string, kind: string): Error {
  // A watch that never opened and stayed silent: the API server is not answering.
  if (errorCodeOf(e) === 'CLUSTER_WATCH_SILENT') {
    return new FedgateError(
      'CLUSTER_UNREACHABLE',
      `cluster ${cluster}: the ${kind} watch was silent too long (no event, no bookmark); restarting it`,
      { cause: e },
    );
  }
  if (e instanceof FedgateError) return e;
  return new FedgateError(
    'CLUSTER_API_ERROR',
    `cluster ${cluster}: ${kind}: ${(e as Error)?.message ?? String(e)}`,
    { cause: e },
  );
}
