// What the API server holds of one resource in one member, whole objects by
// namespace/name: listed, then watched, relisted after any failure. The writer
// compares what it wants with this, so it writes only differences; its own writes
// are noted at once (from the write's answer), and an event older than what is held
// (a lower resourceVersion, which etcd-backed servers give as a counter) is ignored,
// so a late event cannot make a write look undone.
import { setTimeout as sleep } from 'node:timers/promises';
import { errorCodeOf } from '../errors.ts';
import type { ApiClient } from '../watch/api-client.ts';
import { collectionPath, type Gvr, type KubeObject } from './kube-api.ts';

export interface ObjectCacheOptions {
  silenceLimitMs: number;
  listTimeoutMs: number;
  /** Pause after a failure before listing again. */
  retryMs: number;
  labelSelector?: string;
  /** Told after every change (list, event, noted write). */
  changed: () => void;
  failed: (e: unknown) => void;
}

export function keyOf(o: KubeObject): string {
  return `${o.metadata?.namespace ?? ''}/${o.metadata?.name ?? ''}`;
}

function versionOf(o: KubeObject): bigint | undefined {
  const v = o.metadata?.resourceVersion;
  return typeof v === 'string' && /^\d+$/.test(v) ? BigInt(v) : undefined;
}

/** True when `next` is not older than `held` (unknown versions never count as older). */
function notOlder(next: KubeObject, held: KubeObject | undefined): boolean {
  const a = held ? versionOf(held) : undefined;
  const b = versionOf(next);
  return a === undefined || b === undefined || b >= a;
}

export class ObjectCache {
  readonly gvr: Gvr;
  /** The kind of its objects, for creating one. */
  readonly kind: string;
  readonly #client: ApiClient;
  readonly #opts: ObjectCacheOptions;
  readonly #objects = new Map<string, KubeObject>();
  readonly #stop = new AbortController();
  #loop: Promise<void> | undefined;
  #synced = false;
  /** Set when the resource is not served here (404: e.g. no CRD). */
  absent = false;

  constructor(client: ApiClient, gvr: Gvr, kind: string, opts: ObjectCacheOptions) {
    this.#client = client;
    this.gvr = gvr;
    this.kind = kind;
    this.#opts = opts;
  }

  /** A list has completed since the start: the objects match the server. */
  get synced(): boolean {
    return this.#synced;
  }

  get(key: string): KubeObject | undefined {
    return this.#objects.get(key);
  }

  values(): IterableIterator<KubeObject> {
    return this.#objects.values();
  }

  /** A write's answer: what the server holds now. */
  note(obj: KubeObject): void {
    const key = keyOf(obj);
    if (!notOlder(obj, this.#objects.get(key))) return;
    this.#objects.set(key, obj);
  }

  forget(key: string): void {
    this.#objects.delete(key);
  }

  start(): void {
    this.#loop ??= this.#run();
  }

  async stop(): Promise<void> {
    this.#stop.abort();
    await this.#loop;
  }

  async #run(): Promise<void> {
    const signal = this.#stop.signal;
    const path = collectionPath(this.gvr);
    const params: Record<string, string> = this.#opts.labelSelector
      ? { labelSelector: this.#opts.labelSelector }
      : {};
    while (!signal.aborted) {
      let session: Awaited<ReturnType<ApiClient['session']>> | undefined;
      try {
        session = await this.#client.session();
        const listed = new Map<string, KubeObject>();
        let rv = '';
        let continueToken: string | undefined;
        do {
          const page = await this.#client.listPage(
            session,
            path,
            { ...params, limit: '500', ...(continueToken ? { continue: continueToken } : {}) },
            AbortSignal.any([signal, AbortSignal.timeout(this.#opts.listTimeoutMs)]),
          );
          for (const item of page.items) listed.set(keyOf(item as KubeObject), item as KubeObject);
          continueToken = page.continueToken;
          rv = page.resourceVersion;
        } while (continueToken);
        this.#objects.clear();
        for (const [k, o] of listed) this.#objects.set(k, o);
        this.absent = false;
        this.#synced = true;
        this.#opts.changed();
        await this.#client.watch(
          session,
          path,
          { ...params, resourceVersion: rv, timeoutSeconds: '300' },
          this.#opts.silenceLimitMs,
          () => {},
          (e) => {
            if (e.type === 'BOOKMARK') return;
            const o = e.object as KubeObject;
            const key = keyOf(o);
            if (e.type === 'DELETED') this.#objects.delete(key);
            else if (notOlder(o, this.#objects.get(key))) this.#objects.set(key, o);
            else return;
            this.#opts.changed();
          },
          signal,
        );
      } catch (e) {
        if (signal.aborted) break;
        if (errorCodeOf(e) === 'CLUSTER_RESOURCE_NOT_SERVED') {
          this.#objects.clear();
          this.absent = true;
          this.#synced = true;
          this.#opts.changed();
        } else {
          this.#opts.failed(e);
        }
        await sleep(this.#opts.retryMs, undefined, { signal }).catch(() => {});
      } finally {
        session?.close();
      }
    }
  }
}
