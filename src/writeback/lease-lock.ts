// The LeaseLock over a member's API: the coordination.k8s.io/v1 Lease object, written
// with the resourceVersion last read (client-go's resourcelock.LeaseLock).
import { FedgateError } from '../errors.ts';
import type { LeaseLock, LeaseRecord } from './election.ts';
import { collectionPath, type KubeApi, type KubeObject, objectPath } from './kube-api.ts';

export const LEASE_GVR = { group: 'coordination.k8s.io', version: 'v1', resource: 'leases' };

/** kube-apiserver's MicroTime: RFC 3339 with six fractional digits. */
export function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

function timeOf(v: unknown): number {
  const t = typeof v === 'string' ? Date.parse(v) : Number.NaN;
  return Number.isNaN(t) ? 0 : t;
}

export function recordOf(lease: KubeObject): LeaseRecord {
  const spec = (lease.spec ?? {}) as Record<string, unknown>;
  return {
    holderIdentity: typeof spec.holderIdentity === 'string' ? spec.holderIdentity : '',
    leaseDurationSeconds: Number(spec.leaseDurationSeconds ?? 0) || 0,
    acquireTime: timeOf(spec.acquireTime),
    renewTime: timeOf(spec.renewTime),
    leaseTransitions: Number(spec.leaseTransitions ?? 0) || 0,
  };
}

function specOf(r: LeaseRecord) {
  return {
    holderIdentity: r.holderIdentity,
    leaseDurationSeconds: r.leaseDurationSeconds,
    acquireTime: microTime(r.acquireTime),
    renewTime: microTime(r.renewTime),
    leaseTransitions: r.leaseTransitions,
  };
}

export class ApiLeaseLock implements LeaseLock {
  readonly identity: string;
  readonly #api: KubeApi;
  readonly #namespace: string;
  readonly #name: string;
  /** The Lease as last read or written: its resourceVersion guards the next update. */
  #lease: KubeObject | undefined;

  constructor(api: KubeApi, namespace: string, name: string, identity: string) {
    this.#api = api;
    this.#namespace = namespace;
    this.#name = name;
    this.identity = identity;
  }

  get #path(): string {
    return objectPath({ gvr: LEASE_GVR, namespace: this.#namespace, name: this.#name });
  }

  async get() {
    const lease = await this.#api.get(this.#path);
    this.#lease = lease;
    if (!lease) return undefined;
    const record = recordOf(lease);
    return { record, raw: JSON.stringify(record) };
  }

  async create(record: LeaseRecord): Promise<void> {
    this.#lease = await this.#api.create(collectionPath(LEASE_GVR, this.#namespace), {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: this.#name, namespace: this.#namespace },
      spec: specOf(record),
    });
  }

  async update(record: LeaseRecord): Promise<void> {
    if (!this.#lease) {
      throw new FedgateError('WRITE_CONFLICT', 'the Lease has not been read yet');
    }
    this.#lease = await this.#api.update(this.#path, { ...this.#lease, spec: specOf(record) });
  }
}
