// kube-apiserver refuses an EndpointSlice address in 127.0.0.0/8 ("may not be in the
// loopback range", ValidateEndpointIP, seen with 1.37.2), yet every endpoint localfed runs
// listens on loopback. So a real member writes such a slice straight into etcd, where
// kube-apiserver reads, caches and watches it like any other: clients see it as if it had
// been accepted. What the API would have done is done here as the simulator does it
// (defaults, the rest of its validation, uid, creationTimestamp, generation, no write
// when nothing changes). Not faithful: no managedFields, and no real cluster could hold it.
import { randomUUID } from 'node:crypto';
import { isIPv4, isIPv6 } from 'node:net';
import { etcdPut } from './etcd.ts';
import { clone, type KubeObject } from './objects.ts';
import { sortKeys } from './registry.ts';
import type { ResourceType } from './resources.ts';
import { errors } from './status.ts';

/** Whether `obj` is an EndpointSlice with an address kube-apiserver refuses for being loopback. */
export function hasLoopbackEndpoint(obj: KubeObject): boolean {
  if (obj.kind !== 'EndpointSlice' || !Array.isArray(obj.endpoints)) return false;
  return (obj.endpoints as { addresses?: unknown }[]).some(
    (e) => Array.isArray(e?.addresses) && e.addresses.some(isLoopback),
  );
}

function isLoopback(a: unknown): boolean {
  const s = String(a);
  return (
    (isIPv4(s) && s.startsWith('127.')) || (isIPv6(s) && /^(::1|0*:0*:0*:0*:0*:0*:0*:0*1)$/.test(s))
  );
}

/**
 * What to store for `obj` (created, or replacing `existing`), or `existing` itself as
 * `unchanged` when nothing would change. Throws the 422 the simulator would for anything
 * else invalid.
 */
export function sliceToStore(
  t: ResourceType,
  obj: KubeObject,
  existing: KubeObject | undefined,
): { store: KubeObject } | { unchanged: KubeObject } {
  const next = clone(obj);
  delete next.metadata.resourceVersion;
  delete next.metadata.managedFields;
  t.defaults(next, {
    allocateClusterIP: () => {
      throw new Error('an EndpointSlice has no ClusterIP');
    },
    old: existing,
  });
  const causes = t.validate(next, existing);
  if (causes.length > 0) throw errors.invalid(t.kind, t.group, next.metadata.name, causes);
  const meta = next.metadata;
  if (existing === undefined) {
    meta.uid = randomUUID();
    meta.creationTimestamp = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    meta.generation = 1;
    return { store: next };
  }
  const old = existing.metadata;
  meta.uid = old.uid;
  meta.creationTimestamp = old.creationTimestamp;
  meta.namespace = old.namespace;
  meta.generation = old.generation;
  if (specOf(next) === specOf(existing) && metaOf(next) === metaOf(existing))
    return { unchanged: existing };
  if (specOf(next) !== specOf(existing)) meta.generation = (old.generation ?? 0) + 1;
  return { store: next };
}

/** Writes the slice at kube-apiserver's key for it; returns etcd's revision after the write. */
export function putSlice(etcdUrl: string, obj: KubeObject): Promise<number> {
  const key = `/registry/endpointslices/${obj.metadata.namespace}/${obj.metadata.name}`;
  return etcdPut(etcdUrl, key, JSON.stringify(obj));
}

function specOf(obj: KubeObject): string {
  const { metadata: _m, status: _s, ...rest } = obj;
  return JSON.stringify(sortKeys(rest));
}

function metaOf(obj: KubeObject): string {
  const { resourceVersion: _r, managedFields: _f, generation: _g, ...rest } = obj.metadata;
  return JSON.stringify(sortKeys(rest));
}
