// API semantics on top of the store, as kube-apiserver's generic registry applies
// them: server-set metadata, defaulting, validation, optimistic concurrency,
// status subresources, no-op updates that write nothing, namespace lifecycle.
import { randomUUID } from 'node:crypto';
import type { GatewayApiChannel } from './gateway-schema.ts';
import { clone, isRecord, type KubeObject } from './objects.ts';
import {
  apiVersionOf,
  RESOURCE_TYPES,
  type ResourceType,
  servedAs,
  storedApiVersionOf,
} from './resources.ts';
import { applyStrategicMergePatch } from './smp.ts';
import { errors } from './status.ts';
import { type ClusterStore, typeKey } from './store.ts';

export interface WriteOptions {
  /** 'status' writes only .status; undefined writes everything but .status where the type has a status subresource. */
  subresource?: 'status' | undefined;
}

export interface UpdateOptions extends WriteOptions {
  /**
   * A PUT from a client: a custom resource's then needs a resourceVersion, as kube-apiserver
   * answers (`metadata.resourceVersion: Invalid value: 0: must be specified for an update`).
   */
  fromClient?: boolean | undefined;
}

export interface DeletePreconditions {
  uid?: string | undefined;
  resourceVersion?: string | undefined;
}

const GENERATE_NAME_CHARS = 'bcdfghjklmnpqrstvwxz2456789';

export class Registry {
  readonly store: ClusterStore;
  #nextClusterIP = 10;
  readonly #now: () => Date;
  /** The Gateway API channel whose CRD schemas prune, default and validate (the CRDs installed). */
  readonly gatewayApiChannel: GatewayApiChannel;

  constructor(
    store: ClusterStore,
    now: () => Date = () => new Date(),
    gatewayApiChannel: GatewayApiChannel = 'standard',
  ) {
    this.store = store;
    this.#now = now;
    this.gatewayApiChannel = gatewayApiChannel;
  }

  static keyOf(t: ResourceType): string {
    return typeKey(t.group, t.plural);
  }

  get(t: ResourceType, namespace: string | undefined, name: string): KubeObject {
    const obj = this.store.get(Registry.keyOf(t), t.namespaced ? namespace : undefined, name);
    if (!obj) throw errors.notFound(t, name);
    return obj;
  }

  #checkKind(t: ResourceType, body: KubeObject): void {
    if (!isRecord(body) || !isRecord(body.metadata)) {
      throw errors.badRequest("Object 'metadata' is missing in '{}'");
    }
    if (body.kind !== undefined && body.kind !== t.kind) {
      throw errors.badRequest(
        `the kind in the data (${String(body.kind)}) does not match the expected kind (${t.kind})`,
      );
    }
    if (body.apiVersion !== undefined && body.apiVersion !== apiVersionOf(t)) {
      throw errors.badRequest(
        `the API version in the data (${String(body.apiVersion)}) does not match the expected API version (${apiVersionOf(t)})`,
      );
    }
  }

  #checkNamespace(t: ResourceType, namespace: string | undefined, body: KubeObject): void {
    if (!t.namespaced) {
      delete body.metadata.namespace;
      return;
    }
    if (body.metadata.namespace && namespace && body.metadata.namespace !== namespace) {
      throw errors.badRequest(
        'the namespace of the provided object does not match the namespace sent on the request',
      );
    }
    body.metadata.namespace = namespace ?? body.metadata.namespace;
    if (!body.metadata.namespace)
      throw errors.badRequest('namespace is required for namespaced resources');
    const ns = this.store.get(typeKey('', 'namespaces'), undefined, body.metadata.namespace);
    if (!ns) throw errors.notFound({ group: '', plural: 'namespaces' }, body.metadata.namespace);
  }

  #validate(t: ResourceType, obj: KubeObject, old: KubeObject | undefined): void {
    const causes = t.validate(obj, old, { gatewayApiChannel: this.gatewayApiChannel });
    const labels = obj.metadata.labels;
    if (labels !== undefined && !isRecord(labels)) {
      causes.push({
        reason: 'FieldValueInvalid',
        message: 'Invalid value: must be a map of strings',
        field: 'metadata.labels',
      });
    }
    if (causes.length > 0) throw errors.invalid(t.kind, t.group, obj.metadata.name, causes);
  }

  create(t: ResourceType, namespace: string | undefined, input: KubeObject): KubeObject {
    this.#checkKind(t, input);
    const obj = clone(input);
    obj.apiVersion = storedApiVersionOf(t);
    obj.kind = t.kind;
    this.#checkNamespace(t, namespace, obj);
    const meta = obj.metadata;
    if (!meta.name && meta.generateName) {
      let suffix = '';
      for (let i = 0; i < 5; i++)
        suffix += GENERATE_NAME_CHARS[Math.floor(Math.random() * GENERATE_NAME_CHARS.length)];
      meta.name = `${meta.generateName}${suffix}`;
    }
    if (meta.resourceVersion) {
      throw errors.badRequest('resourceVersion should not be set on objects to be created');
    }
    // As the API's create strategies do: status is written through /status, not on create.
    if (t.statusSubresource) delete obj.status;
    t.defaults(obj, {
      allocateClusterIP: () => this.#allocateClusterIP(),
      gatewayApiChannel: this.gatewayApiChannel,
    });
    this.#validate(t, obj, undefined);
    if (this.store.get(Registry.keyOf(t), meta.namespace, meta.name))
      throw errors.alreadyExists(t, meta.name);
    meta.uid = randomUUID();
    meta.creationTimestamp = this.#timestamp();
    if (t.generation) meta.generation = 1;
    else delete meta.generation;
    delete meta.deletionTimestamp;
    dropEmptyMaps(meta);
    return this.store.put(Registry.keyOf(t), obj);
  }

  /** PUT: replaces the object, with the resourceVersion in the body as a precondition. */
  update(
    t: ResourceType,
    namespace: string | undefined,
    name: string,
    input: KubeObject,
    opts: UpdateOptions = {},
  ): KubeObject {
    this.#checkKind(t, input);
    if (input.metadata.name && input.metadata.name !== name) {
      throw errors.badRequest(
        `the name of the object (${input.metadata.name}) does not match the name on the URL (${name})`,
      );
    }
    const old = this.get(t, namespace, name);
    const obj = clone(input);
    obj.apiVersion = apiVersionOf(t);
    obj.kind = t.kind;
    obj.metadata.name = name;
    this.#checkNamespace(t, namespace, obj);
    const rv = obj.metadata.resourceVersion;
    if (!rv && t.custom && opts.fromClient) {
      throw errors.invalid(t.plural, t.group, name, [
        {
          reason: 'FieldValueInvalid',
          message: 'Invalid value: 0: must be specified for an update',
          field: 'metadata.resourceVersion',
        },
      ]);
    }
    if (rv && rv !== old.metadata.resourceVersion) throw errors.conflict(t, name);
    return this.#write(t, old, obj, opts);
  }

  /**
   * JSON merge patch (RFC 7386), or with `strategic` the strategic merge patch
   * kubectl apply sends for built-in types. A resourceVersion in the patch is a
   * precondition.
   */
  mergePatch(
    t: ResourceType,
    namespace: string | undefined,
    name: string,
    patch: unknown,
    opts: WriteOptions & { strategic?: boolean } = {},
  ): KubeObject {
    const apply = opts.strategic
      ? (old: KubeObject) => applyStrategicMergePatch(t.kind, old, patch)
      : (old: KubeObject) => applyMergePatch(old, patch);
    return this.#patch(t, namespace, name, patch, apply, opts);
  }

  #patch(
    t: ResourceType,
    namespace: string | undefined,
    name: string,
    patch: unknown,
    apply: (old: KubeObject) => unknown,
    opts: WriteOptions,
  ): KubeObject {
    if (!isRecord(patch)) throw errors.badRequest('the patch must be a JSON object');
    const old = this.get(t, namespace, name);
    // Patched as served at the version asked for, so its apiVersion is that one.
    const merged = apply(servedAs(t, clone(old))) as KubeObject;
    if (!isRecord(merged) || !isRecord(merged.metadata))
      throw errors.badRequest("Object 'metadata' is missing");
    // A resourceVersion in the patch is a precondition.
    const rv = isRecord(patch.metadata) ? patch.metadata.resourceVersion : undefined;
    if (rv !== undefined && rv !== old.metadata.resourceVersion) throw errors.conflict(t, name);
    if (merged.metadata.name !== name)
      throw errors.badRequest('metadata.name cannot be changed by a patch');
    this.#checkKind(t, merged);
    return this.#write(t, old, merged, opts);
  }

  #write(t: ResourceType, old: KubeObject, obj: KubeObject, opts: WriteOptions): KubeObject {
    if (t.statusSubresource) {
      if (opts.subresource === 'status') {
        const status = obj.status;
        const next = clone(old);
        next.status = status;
        obj = next;
      } else {
        obj.status = old.status;
      }
    }
    obj.apiVersion = storedApiVersionOf(t);
    // Server-owned metadata survives any write.
    obj.metadata.uid = old.metadata.uid;
    obj.metadata.creationTimestamp = old.metadata.creationTimestamp;
    obj.metadata.namespace = old.metadata.namespace;
    obj.metadata.generation = old.metadata.generation;
    if (!t.generation) delete obj.metadata.generation;
    dropEmptyMaps(obj.metadata);
    t.defaults(obj, {
      allocateClusterIP: () => this.#allocateClusterIP(),
      old,
      gatewayApiChannel: this.gatewayApiChannel,
    });
    this.#validate(t, obj, old);
    if (t.generation && specOf(obj) !== specOf(old))
      obj.metadata.generation = (old.metadata.generation ?? 0) + 1;
    obj.metadata.resourceVersion = old.metadata.resourceVersion;
    // A write that changes nothing stores nothing: no new revision, no watch event.
    if (JSON.stringify(canonical(obj)) === JSON.stringify(canonical(old))) return old;
    return this.store.put(Registry.keyOf(t), obj);
  }

  delete(
    t: ResourceType,
    namespace: string | undefined,
    name: string,
    pre: DeletePreconditions = {},
  ): KubeObject {
    const old = this.get(t, namespace, name);
    if (pre.uid && pre.uid !== old.metadata.uid) {
      throw errors.preconditionFailed(
        t.kind,
        name,
        `the UID in the precondition (${pre.uid}) does not match the UID in record (${old.metadata.uid}). The object might have been deleted and then recreated`,
      );
    }
    if (pre.resourceVersion && pre.resourceVersion !== old.metadata.resourceVersion) {
      throw errors.preconditionFailed(
        t.kind,
        name,
        `the ResourceVersion in the precondition (${pre.resourceVersion}) does not match the ResourceVersion in record (${old.metadata.resourceVersion}). The object might have been modified`,
      );
    }
    if (t.kind === 'Namespace') return this.#deleteNamespace(t, old);
    return this.store.delete(Registry.keyOf(t), old.metadata.namespace, name)!;
  }

  /**
   * A namespace goes Terminating, its contents are deleted, then it goes. On a
   * real cluster the namespace controller does this asynchronously; here it is
   * done at once, and each step is still a watch event.
   */
  #deleteNamespace(t: ResourceType, ns: KubeObject): KubeObject {
    const name = ns.metadata.name;
    const terminating = clone(ns);
    terminating.metadata.deletionTimestamp = this.#timestamp();
    terminating.status = { ...(isRecord(ns.status) ? ns.status : {}), phase: 'Terminating' };
    this.store.put(Registry.keyOf(t), terminating);
    for (const rt of RESOURCE_TYPES) {
      if (!rt.namespaced) continue;
      for (const obj of this.store.list(Registry.keyOf(rt), name)) {
        this.store.delete(Registry.keyOf(rt), name, obj.metadata.name);
      }
    }
    return this.store.delete(Registry.keyOf(t), undefined, name)!;
  }

  /** From 127.255.0.0/16, on loopback like everything here, and a block no cluster's addresses use. */
  #allocateClusterIP(): string {
    const n = this.#nextClusterIP++;
    return `127.255.${Math.floor(n / 256) % 256}.${n % 256}`;
  }

  #timestamp(): string {
    return `${this.#now().toISOString().slice(0, 19)}Z`;
  }
}

/** Go's omitempty: kube-apiserver never writes an empty labels or annotations map. */
function dropEmptyMaps(meta: KubeObject['metadata']): void {
  for (const key of ['labels', 'annotations'] as const) {
    const m = meta[key];
    if (isRecord(m) && Object.keys(m).length === 0) delete meta[key];
  }
}

function specOf(obj: KubeObject): string {
  const { metadata: _m, status: _s, ...rest } = obj;
  return JSON.stringify(sortKeys(rest));
}

function canonical(obj: KubeObject): unknown {
  return sortKeys(obj);
}

export function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (!isRecord(v)) return v;
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(v).sort()) out[k] = sortKeys(v[k]);
  return out;
}

/** RFC 7386 JSON merge patch. */
export function applyMergePatch(target: unknown, patch: unknown): unknown {
  if (!isRecord(patch)) return patch;
  const out: Record<string, unknown> = isRecord(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = applyMergePatch(out[k], v);
  }
  return out;
}
