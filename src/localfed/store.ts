// One cluster's object storage: a single revision counter across all types (as
// etcd's), the current objects, and a bounded history of changes. The history is
// what serves watches from a resourceVersion, and lists at an older revision
// (continue tokens, resourceVersionMatch=Exact); it is gone after compaction.
import { clone, type KubeObject, objectKey } from './objects.ts';

export type ChangeType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface Change {
  rev: number;
  type: ChangeType;
  /** `group/plural`, see typeKey(). */
  resource: string;
  key: string;
  /** The object after the change; for DELETED, its last state stamped with the deletion revision. */
  object: KubeObject;
  /** The object before the change (MODIFIED, DELETED). */
  prev: KubeObject | undefined;
}

export function typeKey(group: string, plural: string): string {
  return `${group}/${plural}`;
}

export const DEFAULT_HISTORY_LIMIT = 10_000;

export class Expired extends Error {}

export class ClusterStore {
  #rev: number;
  /** Every change with rev > compactedRev is still in the history. */
  #compactedRev: number;
  readonly #tables = new Map<string, Map<string, KubeObject>>();
  #history: Change[] = [];
  readonly #listeners = new Set<(change: Change) => void>();
  readonly #historyLimit: number;

  constructor(
    opts: { historyLimit?: number | undefined; initialRevision?: number | undefined } = {},
  ) {
    this.#historyLimit = opts.historyLimit ?? DEFAULT_HISTORY_LIMIT;
    this.#rev = opts.initialRevision ?? 1;
    this.#compactedRev = this.#rev;
  }

  get revision(): number {
    return this.#rev;
  }

  get compactedRevision(): number {
    return this.#compactedRev;
  }

  #table(resource: string): Map<string, KubeObject> {
    let t = this.#tables.get(resource);
    if (!t) {
      t = new Map();
      this.#tables.set(resource, t);
    }
    return t;
  }

  get(resource: string, namespace: string | undefined, name: string): KubeObject | undefined {
    const obj = this.#tables.get(resource)?.get(objectKey(namespace, name));
    return obj ? clone(obj) : undefined;
  }

  /**
   * Current objects of one type, sorted by key (etcd order), optionally in one
   * namespace. `copy: false` hands out the stored objects themselves, for a
   * caller that only serializes them: cloning 2,000 objects per page was most
   * of a large list's cost.
   */
  list(resource: string, namespace?: string, copy = true): KubeObject[] {
    const table = this.#tables.get(resource);
    if (!table) return [];
    const out: KubeObject[] = [];
    for (const obj of table.values()) {
      if (namespace && obj.metadata.namespace !== namespace) continue;
      out.push(obj);
    }
    const sorted = sortByKey(out);
    return copy ? sorted.map(clone) : sorted;
  }

  /**
   * Objects of one type as they were at revision `rev`, rebuilt by undoing the
   * retained history. Throws Expired when that revision has been compacted away.
   */
  listAt(resource: string, rev: number, namespace?: string, copy = true): KubeObject[] {
    if (rev >= this.#rev) return this.list(resource, namespace, copy);
    if (rev < this.#compactedRev) throw new Expired(`revision ${rev} has been compacted`);
    const state = new Map(this.#tables.get(resource) ?? []);
    for (let i = this.#history.length - 1; i >= 0; i--) {
      const c = this.#history[i]!;
      if (c.rev <= rev) break;
      if (c.resource !== resource) continue;
      if (c.type === 'ADDED') state.delete(c.key);
      else state.set(c.key, c.prev!);
    }
    const out = [...state.values()].filter((o) => !namespace || o.metadata.namespace === namespace);
    const sorted = sortByKey(out);
    return copy ? sorted.map(clone) : sorted;
  }

  /** Changes after `rev` (any type), or Expired when some were compacted away. */
  changesSince(rev: number): Change[] {
    if (rev < this.#compactedRev) throw new Expired(`revision ${rev} has been compacted`);
    let lo = 0;
    let hi = this.#history.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.#history[mid]!.rev <= rev) lo = mid + 1;
      else hi = mid;
    }
    return this.#history.slice(lo);
  }

  /** Writes an object (create or replace) at a new revision; returns the stored copy. */
  put(resource: string, obj: KubeObject): KubeObject {
    const table = this.#table(resource);
    const key = objectKey(obj.metadata.namespace, obj.metadata.name);
    const prev = table.get(key);
    const rev = ++this.#rev;
    const stored = clone(obj);
    stored.metadata.resourceVersion = String(rev);
    table.set(key, stored);
    this.#record({ rev, type: prev ? 'MODIFIED' : 'ADDED', resource, key, object: stored, prev });
    return clone(stored);
  }

  /** Deletes at a new revision; returns the object as last stored, stamped with that revision. */
  delete(resource: string, namespace: string | undefined, name: string): KubeObject | undefined {
    const table = this.#tables.get(resource);
    const key = objectKey(namespace, name);
    const prev = table?.get(key);
    if (!table || !prev) return undefined;
    table.delete(key);
    const rev = ++this.#rev;
    const gone = clone(prev);
    gone.metadata.resourceVersion = String(rev);
    this.#record({ rev, type: 'DELETED', resource, key, object: gone, prev });
    return clone(gone);
  }

  /**
   * Drops the whole history, as etcd compaction does. The revision moves on by one
   * (on a real cluster something always writes: leases renew every few seconds), so
   * any watch from a revision seen before the compaction is answered with 410.
   */
  compact(): void {
    this.#rev++;
    this.#compactedRev = this.#rev;
    this.#history = [];
  }

  subscribe(listener: (change: Change) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #record(change: Change): void {
    this.#history.push(change);
    if (this.#history.length > this.#historyLimit) {
      const drop = this.#history.length - this.#historyLimit;
      this.#compactedRev = this.#history[drop - 1]!.rev;
      this.#history = this.#history.slice(drop);
    }
    for (const l of this.#listeners) l(change);
  }
}

function sortByKey(objs: KubeObject[]): KubeObject[] {
  return objs.sort((a, b) => {
    const ka = objectKey(a.metadata.namespace, a.metadata.name);
    const kb = objectKey(b.metadata.namespace, b.metadata.name);
    return ka < kb ? -1 : ka > kb ? 1 : 0;
  });
}
