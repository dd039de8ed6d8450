// The writer: given what should be, per object of one member, write only what differs
// from what the API server holds (the ObjectCache of that resource). Generic over
// group/version/resource, namespace and name, so Gateway API status goes the same way
// as ServiceExport conditions and ServiceImports. A conflict (someone wrote between our
// read and our write) reads the object again and retries; after a leadership handover
// the new leader starts from a fresh list, so what its predecessor wrote is not written
// again and what it left undone is done.
import { errorCodeOf } from '../errors.ts';
import { canonical, stampConditions } from './conditions.ts';
import {
  collectionPath,
  type KubeApi,
  type KubeObject,
  type ObjectRef,
  objectPath,
} from './kube-api.ts';
import type { ObjectCache } from './object-cache.ts';

export type WriteVerb = 'create' | 'update' | 'update_status' | 'delete';

/** Told of every write that reached the API server. */
export type WriteSink = (cluster: string, resource: string, verb: WriteVerb) => void;

/** Tries per object when writes conflict. */
const CONFLICT_TRIES = 4;

export interface DesiredObject {
  readonly metadata: { labels?: Record<string, string>; annotations?: Record<string, string> };
  readonly spec: unknown;
  /** Conditions without lastTransitionTime get it: kept while their status stays, else now. */
  readonly status: unknown;
}

export class ObjectWriter {
  readonly #api: KubeApi;
  readonly #wrote: WriteSink;
  readonly #now: () => number;

  constructor(api: KubeApi, wrote: WriteSink, now: () => number = Date.now) {
    this.#api = api;
    this.#wrote = wrote;
    this.#now = now;
  }

  /**
   * Makes the object's status `desired(current)` if the object exists, through the
   * status subresource. `desired` sees the current object so it can keep what other
   * controllers wrote. Returns whether it wrote.
   */
  async status(
    cache: ObjectCache,
    ref: ObjectRef,
    desired: (current: KubeObject) => unknown,
  ): Promise<boolean> {
    return this.#retry(cache, ref, async (current) => {
      if (!current) return false;
      const next = stampConditions(desired(current), current.status, this.#now());
      if (canonical(next) === canonical(current.status ?? {})) return false;
      const written = await this.#api.update(objectPath(ref, 'status'), {
        ...current,
        status: next,
      });
      this.#wrote(this.#api.cluster, ref.gvr.resource, 'update_status');
      cache.note(written);
      return true;
    });
  }

  /**
   * Makes the object be `desired` (labels and annotations added to what is there; spec
   * and status replaced), or gone when `desired` is undefined and `owned(current)`.
   */
  async object(
    cache: ObjectCache,
    ref: ObjectRef,
    desired: DesiredObject | undefined,
    owned: (current: KubeObject) => boolean,
  ): Promise<boolean> {
    return this.#retry(cache, ref, async (current) => {
      if (!desired) {
        if (!current || !owned(current)) return false;
        await this.#api.delete(objectPath(ref), current.metadata?.resourceVersion);
        this.#wrote(this.#api.cluster, ref.gvr.resource, 'delete');
        cache.forget(`${ref.namespace}/${ref.name}`);
        return true;
      }
      let obj = current;
      let wrote = false;
      if (!obj) {
        obj = await this.#api.create(collectionPath(ref.gvr, ref.namespace), {
          apiVersion: ref.gvr.group ? `${ref.gvr.group}/${ref.gvr.version}` : ref.gvr.version,
          kind: cache.kind,
          metadata: { name: ref.name, namespace: ref.namespace, ...desired.metadata },
          spec: desired.spec,
        });
        this.#wrote(this.#api.cluster, ref.gvr.resource, 'create');
        cache.note(obj);
        wrote = true;
      } else if (!owned(obj)) {
        return false; // someone else's: never overwritten
      } else if (
        canonical(obj.spec) !== canonical(desired.spec) ||
        !contains(obj.metadata?.labels, desired.metadata.labels) ||
        !contains(obj.metadata?.annotations, desired.metadata.annotations)
      ) {
        obj = await this.#api.update(objectPath(ref), {
          ...obj,
          metadata: {
            ...obj.metadata,
            labels: { ...obj.metadata?.labels, ...desired.metadata.labels },
            annotations: { ...obj.metadata?.annotations, ...desired.metadata.annotations },
          },
          spec: desired.spec,
        });
        this.#wrote(this.#api.cluster, ref.gvr.resource, 'update');
        cache.note(obj);
        wrote = true;
      }
      const status = stampConditions(desired.status, obj.status, this.#now());
      if (canonical(status) !== canonical(obj.status ?? {})) {
        obj = await this.#api.update(objectPath(ref, 'status'), { ...obj, status });
        this.#wrote(this.#api.cluster, ref.gvr.resource, 'update_status');
        cache.note(obj);
        wrote = true;
      }
      return wrote;
    });
  }

  /** Runs `write` on the cached object; on a conflict, on the object read afresh. */
  async #retry(
    cache: ObjectCache,
    ref: ObjectRef,
    write: (current: KubeObject | undefined) => Promise<boolean>,
  ): Promise<boolean> {
    let current = cache.get(`${ref.namespace}/${ref.name}`);
    for (let i = 1; ; i++) {
      try {
        return await write(current);
      } catch (e) {
        if (errorCodeOf(e) !== 'WRITE_CONFLICT' || i >= CONFLICT_TRIES) throw e;
        current = await this.#api.get(objectPath(ref));
        if (current) cache.note(current);
        else cache.forget(`${ref.namespace}/${ref.name}`);
      }
    }
  }
}

/** Every entry of `want` is in `have`. */
function contains(
  have: Record<string, string> | undefined,
  want: Record<string, string> | undefined,
): boolean {
  return Object.entries(want ?? {}).every(([k, v]) => have?.[k] === v);
}
