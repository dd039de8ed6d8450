import { beforeEach, describe, expect, it } from 'vitest';
import { apiError, mustType } from '../../test/helpers/registry.ts';
import type { KubeObject } from './objects.ts';
import { Registry } from './registry.ts';
import { ClusterStore } from './store.ts';

const NS = mustType('', 'v1', 'namespaces');
const LEASE = mustType('coordination.k8s.io', 'v1', 'leases');
const IMPORT = mustType('multicluster.x-k8s.io', 'v1alpha1', 'serviceimports');

const lease = (holder: string, rv?: string): KubeObject => ({
  apiVersion: 'coordination.k8s.io/v1',
  kind: 'Lease',
  metadata: { name: 'fedgate-writer', namespace: 'ops', ...(rv ? { resourceVersion: rv } : {}) },
  spec: { holderIdentity: holder, leaseDurationSeconds: 15, leaseTransitions: 0 },
});

const serviceImport = (type: string): KubeObject => ({
  apiVersion: 'multicluster.x-k8s.io/v1alpha1',
  kind: 'ServiceImport',
  metadata: { name: 'web', namespace: 'ops' },
  spec: { type, ports: [{ port: 80, protocol: 'TCP' }] },
});

describe('the write-back kinds in the simulator', () => {
  let reg: Registry;
  beforeEach(() => {
    reg = new Registry(new ClusterStore(), () => new Date('2026-12-03T12:00:00Z'));
    reg.create(NS, undefined, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'ops' } });
  });

  it('a Lease update from a stale resourceVersion is a 409 Conflict: one of two racing candidates wins', () => {
    const created = reg.create(LEASE, 'ops', lease('a'));
    const rv = created.metadata.resourceVersion;
    reg.update(LEASE, 'ops', 'fedgate-writer', lease('b', rv));
    const err = apiError(() => reg.update(LEASE, 'ops', 'fedgate-writer', lease('c', rv)));
    expect(err.code).toBe(409);
    expect(err.message).toContain('the object has been modified');
    expect(err.message).toContain('leases.coordination.k8s.io "fedgate-writer"');
  });

  it('refuses a Lease with a duration of 0', () => {
    const bad = lease('a');
    (bad.spec as Record<string, unknown>).leaseDurationSeconds = 0;
    expect(apiError(() => reg.create(LEASE, 'ops', bad)).code).toBe(422);
  });

  it('a ServiceImport keeps status apart: the object ignores it, /status writes only it; generation follows spec', () => {
    const created = reg.create(IMPORT, 'ops', {
      ...serviceImport('ClusterSetIP'),
      status: { clusters: [{ cluster: 'x' }] },
    });
    expect(created.status).toBeUndefined();
    expect(created.metadata.generation).toBe(1);
    const status = reg.update(
      IMPORT,
      'ops',
      'web',
      {
        ...created,
        spec: { type: 'Headless', ports: [] },
        status: { clusters: [{ cluster: 'alpha' }] },
      },
      { subresource: 'status' },
    );
    expect(status.status).toEqual({ clusters: [{ cluster: 'alpha' }] });
    expect((status.spec as { type: string }).type).toBe('ClusterSetIP');
    expect(status.metadata.generation).toBe(1);
    const spec = reg.update(IMPORT, 'ops', 'web', {
      ...status,
      spec: { type: 'Headless', ports: [] },
    });
    expect(spec.metadata.generation).toBe(2);
    expect(spec.status).toEqual({ clusters: [{ cluster: 'alpha' }] });
  });

  it("refuses a ServiceImport type the CRD's enum does not name", () => {
    const err = apiError(() => reg.create(IMPORT, 'ops', serviceImport('LoadBalancer')));
    expect(err.code).toBe(422);
    expect(err.message).toContain(
      'spec.type: Unsupported value: "LoadBalancer": supported values: "ClusterSetIP", "Headless"',
    );
  });
});
