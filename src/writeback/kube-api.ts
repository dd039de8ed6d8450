// Reads and writes of single objects on one member's API server, for the writer and
// the Lease: get, create, update (optimistic: the body's resourceVersion must still be
// current, else WRITE_CONFLICT), delete. Credentials come from the member's ApiClient;
// a session is kept for a minute so a renewal every retryPeriod does not handshake anew.
import { fetch } from 'undici';
import { FedgateError } from '../errors.ts';
import type { ApiClient } from '../watch/api-client.ts';

/** group/version/resource, as a path segment says it. */
export interface Gvr {
  readonly group: string;
  readonly version: string;
  readonly resource: string;
}

export interface ObjectRef {
  readonly gvr: Gvr;
  readonly namespace: string;
  readonly name: string;
}

export type KubeObject = Record<string, unknown> & {
  metadata?: {
    name?: string;
    namespace?: string;
    resourceVersion?: string;
    generation?: number;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    [k: string]: unknown;
  };
};

/**
 * The collection's path: /api/v1/… for the core group, /apis/G/V/… otherwise; all
 * namespaces (or a cluster-scoped kind's) without a namespace or with "".
 */
export function collectionPath(gvr: Gvr, namespace?: string): string {
  const base = gvr.group === '' ? `/api/${gvr.version}` : `/apis/${gvr.group}/${gvr.version}`;
  return namespace === undefined || namespace === ''
    ? `${base}/${gvr.resource}`
    : `${base}/namespaces/${namespace}/${gvr.resource}`;
}

export function objectPath(ref: ObjectRef, subresource?: 'status'): string {
  const p = `${collectionPath(ref.gvr, ref.namespace)}/${ref.name}`;
  return subresource ? `${p}/${subresource}` : p;
}

const SESSION_MS = 60_000;
const REQUEST_TIMEOUT_MS = 10_000;

export class KubeApi {
  readonly #client: ApiClient;
  #session: { at: number; s: Awaited<ReturnType<ApiClient['session']>> } | undefined;

  constructor(client: ApiClient) {
    this.#client = client;
  }

  get cluster(): string {
    return this.#client.cluster;
  }

  async get(path: string): Promise<KubeObject | undefined> {
    const r = await this.#send('GET', path);
    if (r.status === 404) return undefined;
    return this.#body(r, 'get', path);
  }

  async create(path: string, obj: KubeObject): Promise<KubeObject> {
    return this.#body(await this.#send('POST', path, obj), 'create', path);
  }

  /** PUT: fails with WRITE_CONFLICT when obj's resourceVersion is no longer current. */
  async update(path: string, obj: KubeObject): Promise<KubeObject> {
    return this.#body(await this.#send('PUT', path, obj), 'update', path);
  }

  /** False when it was already gone. `resourceVersion` makes the delete conditional. */
  async delete(path: string, resourceVersion?: string): Promise<boolean> {
    const body = resourceVersion
      ? { kind: 'DeleteOptions', apiVersion: 'v1', preconditions: { resourceVersion } }
      : undefined;
    const r = await this.#send('DELETE', path, body);
    if (r.status === 404) return false;
    await this.#body(r, 'delete', path);
    return true;
  }

  close(): void {
    this.#session?.s.close();
    this.#session = undefined;
  }

  async #send(method: string, path: string, body?: unknown) {
    const now = Date.now();
    if (!this.#session || now - this.#session.at > SESSION_MS) {
      this.#session?.s.close();
      this.#session = { at: now, s: await this.#client.session() };
    }
    const s = this.#session.s;
    try {
      return await fetch(this.#client.server + path, {
        method,
        headers: {
          ...s.headers,
          ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}),
        },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        ...(s.dispatcher ? { dispatcher: s.dispatcher } : {}),
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
    } catch (e) {
      // A broken connection: the next request opens a new session.
      this.close();
      throw new FedgateError(
        'CLUSTER_UNREACHABLE',
        `cluster ${this.cluster}: ${method} ${path} failed: ${(e as Error).message}`,
        { cause: e },
      );
    }
  }

  async #body(r: Awaited<ReturnType<typeof fetch>>, verb: string, path: string) {
    const text = await r.text();
    if (r.status >= 200 && r.status < 300) {
      try {
        return JSON.parse(text) as KubeObject;
      } catch {
        throw new FedgateError(
          'CLUSTER_API_ERROR',
          `cluster ${this.cluster}: ${verb} ${path} answered a body that is not JSON`,
        );
      }
    }
    let message = text.slice(0, 300);
    try {
      message = String((JSON.parse(text) as { message?: unknown }).message ?? message);
    } catch {}
    if (r.status === 409) {
      throw new FedgateError(
        'WRITE_CONFLICT',
        `cluster ${this.cluster}: ${verb} ${path}: ${message}`,
      );
    }
    if (r.status === 403) {
      throw new FedgateError(
        'CLUSTER_FORBIDDEN',
        `cluster ${this.cluster}: not allowed to ${verb} ${path} (403 Forbidden: ${message}); apply deploy/member-rbac (see docs/deploy.md) in this cluster`,
      );
    }
    if (r.status === 404) {
      throw new FedgateError(
        'CLUSTER_RESOURCE_NOT_SERVED',
        `cluster ${this.cluster}: ${verb} ${path}: ${message || 'not found'}`,
      );
    }
    throw new FedgateError(
      'CLUSTER_API_ERROR',
      `cluster ${this.cluster}: ${verb} ${path} returned ${r.status}: ${message}`,
    );
  }
}
