// One member while this replica leads: what it holds (ServiceExports, fedgate's
// ServiceImports, and the Gateway API kinds a status report names), and one pass at a
// time that writes every difference from what should be, one object after another.
// Changes arriving during a pass make one more pass after it; a failed object is
// tried again RETRY_MS later.
import { errorCodeOf } from '../errors.ts';
import type { ObjectStatusReport, StatusReport } from '../gateway/status.ts';
import type { Logger } from '../observe/log.ts';
import type { ApiClient } from '../watch/api-client.ts';
import { GATEWAY_GVRS, gatewayRef, gatewayStatus } from './gateway-status.ts';
import { KubeApi, type KubeObject } from './kube-api.ts';
import {
  exportStatus,
  MANAGED_BY,
  MANAGED_BY_FEDGATE,
  type McsView,
  SERVICE_EXPORT_GVR,
  SERVICE_IMPORT_GVR,
  serviceImports,
} from './mcs.ts';
import { keyOf, ObjectCache, type ObjectCacheOptions } from './object-cache.ts';
import { ObjectWriter, type WriteSink } from './writer.ts';

/** A failed object is not tried again for this long (unless a new leader starts over). */
export const RETRY_MS = 5_000;
/** Changes arriving within this are written in one pass. */
const COALESCE_MS = 50;

export interface MemberWriterOptions {
  readonly name: string;
  readonly client: ApiClient;
  readonly watch: { silenceLimitMs: number; listTimeoutMs: number };
  /** writeBack.skipServiceImports names this member. */
  readonly skipImports: boolean;
  readonly log: Logger;
  readonly wrote: WriteSink;
  /** A write failed (it is tried again). */
  readonly failed: () => void;
  /** What the merge says, or undefined while some member has not synced once. */
  readonly view: () => McsView | undefined;
  readonly gatewayReport: () => StatusReport | undefined;
}

const owned = (o: KubeObject) => o.metadata?.labels?.[MANAGED_BY] === MANAGED_BY_FEDGATE;

export class MemberWriter {
  readonly #opts: MemberWriterOptions;
  readonly #api: KubeApi;
  readonly #writer: ObjectWriter;
  readonly #exports: ObjectCache;
  readonly #imports: ObjectCache | undefined;
  readonly #gateway = new Map<ObjectStatusReport['kind'], ObjectCache>();
  readonly #cacheOptions: ObjectCacheOptions;
  /** Object key → when it last failed. */
  readonly #failedAt = new Map<string, number>();
  #running = false;
  #again = false;
  #stopped = false;
  #timer: NodeJS.Timeout | undefined;

  constructor(opts: MemberWriterOptions) {
    this.#opts = opts;
    this.#api = new KubeApi(opts.client);
    this.#writer = new ObjectWriter(this.#api, opts.wrote);
    const cacheOptions = (labelSelector?: string): ObjectCacheOptions => ({
      silenceLimitMs: opts.watch.silenceLimitMs,
      listTimeoutMs: opts.watch.listTimeoutMs,
      retryMs: 1_000,
      ...(labelSelector ? { labelSelector } : {}),
      changed: () => this.schedule(),
      failed: (e) =>
        opts.log.debug(
          { cluster: opts.name, err: (e as Error).message },
          'write-back: list or watch failed',
        ),
    });
    this.#cacheOptions = cacheOptions();
    this.#exports = new ObjectCache(
      opts.client,
      SERVICE_EXPORT_GVR,
      'ServiceExport',
      this.#cacheOptions,
    );
    this.#imports = opts.skipImports
      ? undefined
      : new ObjectCache(
          opts.client,
          SERVICE_IMPORT_GVR,
          'ServiceImport',
          cacheOptions(`${MANAGED_BY}=${MANAGED_BY_FEDGATE}`),
        );
  }

  start(): void {
    this.#exports.start();
    this.#imports?.start();
  }

  /** Stops listing and writing; a pass under way ends before its next object. */
  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    void this.#exports.stop();
    void this.#imports?.stop();
    for (const cache of this.#gateway.values()) void cache.stop();
    this.#api.close();
  }

  /** A pass soon: after the one under way, or after `delay`. */
  schedule(delay = COALESCE_MS): void {
    if (this.#stopped) return;
    if (this.#running) {
      this.#again = true;
      return;
    }
    if (this.#timer) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.#pass();
    }, delay);
  }

  /** The cache of a Gateway API kind, started on first use. */
  #gatewayCache(kind: ObjectStatusReport['kind']): ObjectCache {
    let cache = this.#gateway.get(kind);
    if (!cache) {
      cache = new ObjectCache(this.#opts.client, GATEWAY_GVRS[kind], kind, this.#cacheOptions);
      this.#gateway.set(kind, cache);
      cache.start();
    }
    return cache;
  }

  async #pass(): Promise<void> {
    const view = this.#opts.view();
    const imports = this.#imports;
    if (!view || !this.#exports.synced || (imports && !imports.synced)) return;
    this.#running = true;
    this.#again = false;
    let retryIn: number | undefined;
    const started = Date.now();
    const attempt = async (key: string, write: () => Promise<unknown>) => {
      if (this.#stopped) return;
      const failed = this.#failedAt.get(key);
      if (failed !== undefined && started - failed < RETRY_MS) {
        retryIn = Math.min(retryIn ?? RETRY_MS, RETRY_MS - (started - failed));
        return;
      }
      try {
        await write();
        this.#failedAt.delete(key);
      } catch (e) {
        this.#failedAt.set(key, Date.now());
        retryIn = RETRY_MS;
        this.#report(key, e);
      }
    };
    const w = this.#writer;
    try {
      for (const current of [...this.#exports.values()]) {
        const ref = refOf(SERVICE_EXPORT_GVR, current);
        await attempt(`serviceexports/${keyOf(current)}`, () =>
          w.status(this.#exports, ref, (cur) => exportStatus(this.#opts.name, cur, view)),
        );
      }
      if (imports && !imports.absent) {
        const desired = serviceImports(this.#opts.name, view);
        for (const [key, d] of desired) {
          const [namespace = '', name = ''] = key.split('/');
          const ref = { gvr: SERVICE_IMPORT_GVR, namespace, name };
          await attempt(`serviceimports/${key}`, () => w.object(imports, ref, d, owned));
        }
        for (const current of [...imports.values()]) {
          if (desired.has(keyOf(current))) continue;
          const ref = refOf(SERVICE_IMPORT_GVR, current);
          await attempt(`serviceimports/${keyOf(current)}`, () =>
            w.object(imports, ref, undefined, owned),
          );
        }
      }
      for (const report of this.#opts.gatewayReport()?.objects ?? []) {
        if (report.cluster !== this.#opts.name) continue;
        const cache = this.#gatewayCache(report.kind);
        if (!cache.synced) continue; // its list's end schedules another pass
        const ref = gatewayRef(report);
        await attempt(`${ref.gvr.resource}/${ref.namespace}/${ref.name}`, () =>
          w.status(cache, ref, (cur) => gatewayStatus(report, cur)),
        );
      }
    } finally {
      this.#running = false;
    }
    if (this.#again) this.schedule();
    else if (retryIn !== undefined) this.schedule(retryIn);
  }

  #report(key: string, e: unknown): void {
    const fields = { cluster: this.#opts.name, object: key, err: (e as Error).message };
    // 404 on a create: the member lacks the namespace. Routine, tried again quietly.
    if (errorCodeOf(e) === 'CLUSTER_RESOURCE_NOT_SERVED') {
      this.#opts.log.debug(fields, 'write-back: not there to write (no such namespace?)');
      return;
    }
    this.#opts.failed();
    this.#opts.log.warn(fields, 'write-back: a write failed; trying again');
  }
}

function refOf(gvr: typeof SERVICE_EXPORT_GVR, o: KubeObject) {
  return { gvr, namespace: o.metadata?.namespace ?? '', name: o.metadata?.name ?? '' };
}
