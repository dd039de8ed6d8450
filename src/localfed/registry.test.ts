import { beforeEach, describe, expect, it } from 'vitest';
import { apiError, mustType } from '../../test/helpers/registry.ts';
import type { KubeObject } from './objects.ts';
import { Registry } from './registry.ts';
import { type Change, ClusterStore } from './store.ts';

const NS = mustType('', 'v1', 'namespaces');
const SVC = mustType('', 'v1', 'services');
const SLICE = mustType('discovery.k8s.io', 'v1', 'endpointslices');
const EXPORT = mustType('multicluster.x-k8s.io', 'v1alpha1', 'serviceexports');

const service = (name: string, extra: Partial<KubeObject> = {}): KubeObject => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name, namespace: 'shop' },
  spec: { selector: { app: name }, ports: [{ name: 'http', port: 80 }] },
  ...extra,
});

const slice = (name: string, addresses: string[]): KubeObject => ({
  apiVersion: 'discovery.k8s.io/v1',
  kind: 'EndpointSlice',
  metadata: { name, namespace: 'shop', labels: { 'kubernetes.io/service-name': 'web' } },
  addressType: 'IPv4',
  endpoints: addresses.map((a) => ({ addresses: [a] })),
  ports: [{ name: 'http', port: 8080 }],
});

describe('Registry', () => {
  let store: ClusterStore;
  let reg: Registry;
  const now = new Date('2026-03-04T05:06:07.890Z');

  beforeEach(() => {
    store = new ClusterStore();
    reg = new Registry(store, () => now);
    reg.create(NS, undefined, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop' } });
  });

  describe('create', () => {
    it('sets server metadata and the Service defaults', () => {
      const before = store.revision;
      const svc = reg.create(SVC, 'shop', service('web'));
      expect(svc.metadata.uid).toMatch(/^[0-9a-f-]{36}$/);
      expect(svc.metadata.creationTimestamp).toBe('2026-03-04T05:06:07Z');
      expect(svc.metadata.resourceVersion).toBe(String(before + 1));
      // kube-apiserver keeps no generation on Services (test/apiserver-parity.test.ts).
      expect(svc.metadata.generation).toBeUndefined();
      expect(svc.metadata.namespace).toBe('shop');
      const spec = svc.spec as Record<string, unknown>;
      expect(spec.type).toBe('ClusterIP');
      expect(spec.clusterIP).toMatch(/^127\.255\.\d+\.\d+$/);
      expect(spec.clusterIPs).toEqual([spec.clusterIP]);
      expect(spec.ports).toEqual([{ name: 'http', port: 80, protocol: 'TCP', targetPort: 80 }]);
      expect(svc.status).toEqual({ loadBalancer: {} });
      expect(store.get('/services', 'shop', 'web')).toEqual(svc);
    });

    it('allocates a distinct cluster IP per Service and keeps one that was asked for', () => {
      const a = reg.create(SVC, 'shop', service('a'));
      const b = reg.create(SVC, 'shop', service('b'));
      const fixed = reg.create(
        SVC,
        'shop',
        service('c', {
          spec: { clusterIP: '127.255.200.7', ports: [{ port: 53, protocol: 'UDP' }] },
        }),
      );
      const ip = (o: KubeObject) => (o.spec as { clusterIP: string }).clusterIP;
      expect(ip(a)).not.toBe(ip(b));
      expect(ip(fixed)).toBe('127.255.200.7');
      expect((fixed.spec as { ports: unknown[] }).ports).toEqual([
        { port: 53, protocol: 'UDP', targetPort: 53 },
      ]);
    });

    it('keeps a named targetPort', () => {
      const svc = reg.create(
        SVC,
        'shop',
        service('web', { spec: { ports: [{ port: 80, targetPort: 'http' }] } }),
      );
      expect((svc.spec as { ports: unknown[] }).ports).toEqual([
        { port: 80, targetPort: 'http', protocol: 'TCP' },
      ]);
    });

    it('takes the namespace from the request and a name from generateName', () => {
      const created = reg.create(SLICE, 'shop', {
        ...slice('', ['127.10.0.1']),
        metadata: { name: '', generateName: 'web-', namespace: undefined },
      });
      expect(created.metadata.name).toMatch(/^web-[a-z0-9]{5}$/);
      expect(created.metadata.namespace).toBe('shop');
      expect((created.endpoints as { conditions: unknown }[])[0]!.conditions).toEqual({});
      expect((created.ports as { protocol: string }[])[0]!.protocol).toBe('TCP');
    });

    it('drops status on create for types with a status subresource', () => {
      const svc = reg.create(
        SVC,
        'shop',
        service('web', { status: { loadBalancer: { ingress: [{ ip: '127.2.3.4' }] } } }),
      );
      expect(svc.status).toEqual({ loadBalancer: {} });
    });

    it('answers 422 Invalid with causes for a bad name', () => {
      const err = apiError(() => reg.create(SVC, 'shop', service('Bad_Name')));
      expect(err.code).toBe(422);
      expect(err.reason).toBe('Invalid');
      expect(err.message).toMatch(/^Service "Bad_Name" is invalid: metadata\.name: Invalid value/);
      expect(err.details).toMatchObject({ name: 'Bad_Name', kind: 'Service' });
      expect(err.details?.causes).toEqual([
        expect.objectContaining({ reason: 'FieldValueInvalid', field: 'metadata.name' }),
      ]);
      expect(err.toStatus()).toMatchObject({ kind: 'Status', status: 'Failure', code: 422 });
      expect(store.get('/services', 'shop', 'Bad_Name')).toBeUndefined();
    });

    it('answers 422 for a Service without ports and lists every cause', () => {
      const err = apiError(() =>
        reg.create(SVC, 'shop', service('web', { spec: { selector: { app: 'web' } } })),
      );
      expect(err.code).toBe(422);
      expect(err.message).toBe('Service "web" is invalid: spec.ports: Required value');
      expect(err.details?.causes).toEqual([
        { reason: 'FieldValueRequired', message: 'Required value', field: 'spec.ports' },
      ]);

      const two = apiError(() =>
        reg.create(
          SVC,
          'shop',
          service('web', {
            spec: { ports: [{ port: 0 }, { name: 'b', port: 80, protocol: 'XTP' }] },
          }),
        ),
      );
      expect(two.code).toBe(422);
      expect(two.details?.causes?.map((c) => c.field)).toEqual([
        'spec.ports[0].port',
        'spec.ports[0].name',
        // targetPort defaults to port, so it is invalid too (as on a real cluster).
        'spec.ports[0].targetPort',
        'spec.ports[1].protocol',
      ]);
      expect(two.message).toMatch(/^Service "web" is invalid: \[spec\.ports\[0\]\.port: .*\]$/);
    });

    it('answers 422 for an EndpointSlice address that does not fit its addressType', () => {
      const err = apiError(() => reg.create(SLICE, 'shop', slice('web-1', ['::1'])));
      expect(err.code).toBe(422);
      expect(err.details).toMatchObject({ kind: 'EndpointSlice', group: 'discovery.k8s.io' });
      expect(err.details?.causes?.[0]?.field).toBe('endpoints[0].addresses[0]');
    });

    it('answers 404 for a namespace that does not exist', () => {
      const before = store.revision;
      const body = service('web');
      body.metadata.namespace = 'nowhere';
      const err = apiError(() => reg.create(SVC, 'nowhere', body));
      expect(err.code).toBe(404);
      expect(err.reason).toBe('NotFound');
      expect(err.message).toBe('namespaces "nowhere" not found');
      expect(store.revision).toBe(before);
    });

    it('answers 409 AlreadyExists for a second object with the same name', () => {
      reg.create(EXPORT, 'shop', {
        apiVersion: 'multicluster.x-k8s.io/v1alpha1',
        kind: 'ServiceExport',
        metadata: { name: 'web' },
      });
      const before = store.revision;
      const err = apiError(() =>
        reg.create(EXPORT, 'shop', {
          apiVersion: 'multicluster.x-k8s.io/v1alpha1',
          kind: 'ServiceExport',
          metadata: { name: 'web' },
        }),
      );
      expect(err.code).toBe(409);
      expect(err.reason).toBe('AlreadyExists');
      expect(err.message).toBe('serviceexports.multicluster.x-k8s.io "web" already exists');
      expect(err.details).toEqual({
        name: 'web',
        kind: 'serviceexports',
        group: 'multicluster.x-k8s.io',
      });
      expect(store.revision).toBe(before);
    });

    it('answers 422 for a ServiceExport status condition missing a metav1.Condition field', () => {
      const created = reg.create(EXPORT, 'shop', {
        apiVersion: 'multicluster.x-k8s.io/v1alpha1',
        kind: 'ServiceExport',
        metadata: { name: 'web' },
      });
      const before = store.revision;
      const err = apiError(() =>
        reg.update(
          EXPORT,
          'shop',
          'web',
          { ...created, status: { conditions: [{ type: 'Valid', status: 'True' }] } },
          { subresource: 'status' },
        ),
      );
      expect(err.code).toBe(422);
      // As kube-apiserver 1.37 words it for the CRD's schema.
      expect(err.message).toBe(
        'ServiceExport.multicluster.x-k8s.io "web" is invalid: [status.conditions[0].lastTransitionTime: Required value, status.conditions[0].message: Required value, status.conditions[0].reason: Required value]',
      );
      expect(store.revision).toBe(before);
    });

    it('answers 400 for a resourceVersion, a kind mismatch or a namespace mismatch', () => {
      const withRv = service('web');
      withRv.metadata.resourceVersion = '5';
      expect(apiError(() => reg.create(SVC, 'shop', withRv)).code).toBe(400);
      expect(apiError(() => reg.create(SLICE, 'shop', service('web'))).code).toBe(400);
      const elsewhere = service('web');
      elsewhere.metadata.namespace = 'default';
      expect(apiError(() => reg.create(SVC, 'shop', elsewhere)).code).toBe(400);
    });
  });

  describe('update', () => {
    it('answers 409 Conflict for a stale resourceVersion and writes nothing', () => {
      const v1 = reg.create(SVC, 'shop', service('web'));
      const v2 = reg.update(SVC, 'shop', 'web', {
        ...v1,
        metadata: { ...v1.metadata, labels: { v: '2' } },
      });
      expect(Number(v2.metadata.resourceVersion)).toBeGreaterThan(
        Number(v1.metadata.resourceVersion),
      );
      const before = store.revision;
      const err = apiError(() =>
        reg.update(SVC, 'shop', 'web', { ...v1, metadata: { ...v1.metadata, labels: { v: '3' } } }),
      );
      expect(err.code).toBe(409);
      expect(err.reason).toBe('Conflict');
      expect(err.message).toBe(
        'Operation cannot be fulfilled on services "web": the object has been modified; please apply your changes to the latest version and try again',
      );
      expect(store.revision).toBe(before);
      expect(reg.get(SVC, 'shop', 'web').metadata.labels).toEqual({ v: '2' });
    });

    it('updates unconditionally without a resourceVersion, keeping server-owned metadata', () => {
      const v1 = reg.create(SVC, 'shop', service('web'));
      const body = service('web', {
        spec: { ...(v1.spec as object), selector: { app: 'other' } },
      });
      body.metadata.uid = 'forged';
      const v2 = reg.update(SVC, 'shop', 'web', body);
      expect(v2.metadata.uid).toBe(v1.metadata.uid);
      expect(v2.metadata.creationTimestamp).toBe(v1.metadata.creationTimestamp);
      expect(v2.metadata.generation).toBeUndefined();
      expect((v2.spec as { selector: unknown }).selector).toEqual({ app: 'other' });
    });

    it('keeps the allocated cluster IP when an update leaves it out', () => {
      const v1 = reg.create(SVC, 'shop', service('web'));
      const ip = (v1.spec as { clusterIP: string }).clusterIP;
      // A client that replaces the Service from its own manifest has no clusterIP in it.
      const v2 = reg.update(SVC, 'shop', 'web', {
        ...service('web'),
        metadata: { name: 'web', namespace: 'shop', labels: { v: '2' } },
      });
      expect((v2.spec as { clusterIP: string }).clusterIP).toBe(ip);
      expect((v2.spec as { clusterIPs: string[] }).clusterIPs).toEqual([ip]);
      expect(v2.metadata.labels).toEqual({ v: '2' });
    });

    it('refuses to change an allocated cluster IP (422, immutable)', () => {
      reg.create(SVC, 'shop', service('web'));
      const err = apiError(() =>
        reg.update(
          SVC,
          'shop',
          'web',
          service('web', { spec: { clusterIP: '127.255.99.99', ports: [{ port: 80 }] } }),
        ),
      );
      expect(err.code).toBe(422);
      expect(err.details?.causes?.[0]).toMatchObject({ field: 'spec.clusterIPs[0]' });
      expect(err.details?.causes?.[0]?.message).toContain('may not change once set');
    });

    it('writes nothing for an update that changes nothing', () => {
      const v1 = reg.create(SVC, 'shop', service('web'));
      const events: Change[] = [];
      const unsubscribe = store.subscribe((c) => events.push(c));
      const before = store.revision;
      const same = reg.update(SVC, 'shop', 'web', v1);
      const sameNoRv = reg.update(SVC, 'shop', 'web', {
        ...v1,
        metadata: { ...v1.metadata, resourceVersion: undefined },
      });
      const samePatch = reg.mergePatch(SVC, 'shop', 'web', { spec: { type: 'ClusterIP' } });
      unsubscribe();
      expect(store.revision).toBe(before);
      expect(events).toEqual([]);
      for (const o of [same, sameNoRv, samePatch]) {
        expect(o.metadata.resourceVersion).toBe(v1.metadata.resourceVersion);
      }
    });

    it('answers 404 for an object that does not exist, and 400 for a name mismatch', () => {
      expect(apiError(() => reg.update(SVC, 'shop', 'web', service('web'))).code).toBe(404);
      reg.create(SVC, 'shop', service('web'));
      const err = apiError(() => reg.update(SVC, 'shop', 'web', service('api')));
      expect(err.code).toBe(400);
    });
  });

  describe('merge patch', () => {
    it('merges maps, replaces lists and deletes keys set to null', () => {
      reg.create(SVC, 'shop', {
        ...service('web'),
        metadata: { name: 'web', namespace: 'shop', labels: { a: '1', b: '2' } },
      });
      const out = reg.mergePatch(SVC, 'shop', 'web', {
        metadata: { labels: { a: null, c: '3' } },
        spec: { selector: null, ports: [{ name: 'https', port: 443 }] },
      });
      expect(out.metadata.labels).toEqual({ b: '2', c: '3' });
      const spec = out.spec as Record<string, unknown>;
      expect(spec.selector).toBeUndefined();
      expect(spec.ports).toEqual([{ name: 'https', port: 443, protocol: 'TCP', targetPort: 443 }]);
      expect(spec.type).toBe('ClusterIP');
      expect(out.metadata.generation).toBeUndefined();
    });

    it('treats a resourceVersion in the patch as a precondition', () => {
      const v1 = reg.create(SVC, 'shop', service('web'));
      reg.mergePatch(SVC, 'shop', 'web', { metadata: { labels: { x: '1' } } });
      const err = apiError(() =>
        reg.mergePatch(SVC, 'shop', 'web', {
          metadata: { resourceVersion: v1.metadata.resourceVersion, labels: { x: '2' } },
        }),
      );
      expect(err.code).toBe(409);
      expect(reg.get(SVC, 'shop', 'web').metadata.labels).toEqual({ x: '1' });
    });

    it('answers 422 when the patched object is invalid, and writes nothing', () => {
      reg.create(SVC, 'shop', service('web'));
      const before = store.revision;
      const err = apiError(() => reg.mergePatch(SVC, 'shop', 'web', { spec: { ports: null } }));
      expect(err.code).toBe(422);
      expect(store.revision).toBe(before);
    });
  });

  describe('status subresource', () => {
    const lbStatus = { loadBalancer: { ingress: [{ ip: '127.203.113.9' }] } };

    it('ignores status changes made through the main resource', () => {
      const v1 = reg.create(SVC, 'shop', service('web'));
      const v2 = reg.update(SVC, 'shop', 'web', {
        ...v1,
        spec: { ...(v1.spec as object), selector: { app: 'v2' } },
        status: lbStatus,
      });
      expect(v2.status).toEqual({ loadBalancer: {} });
      expect((v2.spec as { selector: unknown }).selector).toEqual({ app: 'v2' });
      expect(v2.metadata.generation).toBeUndefined();

      // A status-only change through the main resource is a no-op.
      const before = store.revision;
      const v3 = reg.update(SVC, 'shop', 'web', { ...v2, status: lbStatus });
      expect(store.revision).toBe(before);
      expect(v3.status).toEqual({ loadBalancer: {} });
    });

    it('ignores everything but status written through /status', () => {
      const v1 = reg.create(SVC, 'shop', service('web'));
      const v2 = reg.update(
        SVC,
        'shop',
        'web',
        { ...v1, spec: { ...(v1.spec as object), selector: { app: 'changed' } }, status: lbStatus },
        { subresource: 'status' },
      );
      expect(v2.status).toEqual(lbStatus);
      expect((v2.spec as { selector: unknown }).selector).toEqual({ app: 'web' });
      expect(v2.metadata.generation).toBeUndefined();
      expect(Number(v2.metadata.resourceVersion)).toBeGreaterThan(
        Number(v1.metadata.resourceVersion),
      );

      const v3 = reg.mergePatch(
        SVC,
        'shop',
        'web',
        { spec: { type: 'NodePort' }, status: { loadBalancer: null } },
        { subresource: 'status' },
      );
      expect((v3.spec as { type: string }).type).toBe('ClusterIP');
      expect(v3.status).toEqual({});
    });

    it('does not apply to types without a status subresource', () => {
      const created = reg.create(SLICE, 'shop', slice('web-1', ['127.10.0.1']));
      const out = reg.mergePatch(SLICE, 'shop', 'web-1', {
        endpoints: [{ addresses: ['127.10.0.2'] }],
      });
      expect(out.endpoints).toEqual([{ addresses: ['127.10.0.2'], conditions: {} }]);
      expect(out.metadata.generation).toBe((created.metadata.generation ?? 0) + 1);
    });
  });

  describe('delete', () => {
    it('deletes with matching preconditions and answers 409 for stale ones', () => {
      const v1 = reg.create(SVC, 'shop', service('web'));
      expect(apiError(() => reg.delete(SVC, 'shop', 'web', { uid: 'someone-else' })).code).toBe(
        409,
      );
      expect(apiError(() => reg.delete(SVC, 'shop', 'web', { resourceVersion: '1' })).code).toBe(
        409,
      );
      const gone = reg.delete(SVC, 'shop', 'web', {
        uid: v1.metadata.uid,
        resourceVersion: v1.metadata.resourceVersion,
      });
      expect(gone.metadata.resourceVersion).toBe(String(store.revision));
      expect(apiError(() => reg.get(SVC, 'shop', 'web')).code).toBe(404);
      expect(apiError(() => reg.delete(SVC, 'shop', 'web')).code).toBe(404);
    });

    it('cascades a namespace delete to everything in it, one event at a time', () => {
      reg.create(NS, undefined, {
        apiVersion: 'v1',
        kind: 'Namespace',
        metadata: { name: 'other' },
      });
      reg.create(SVC, 'shop', service('web'));
      reg.create(SVC, 'shop', service('api'));
      reg.create(SLICE, 'shop', slice('web-1', ['127.10.0.1']));
      reg.create(EXPORT, 'shop', {
        apiVersion: 'multicluster.x-k8s.io/v1alpha1',
        kind: 'ServiceExport',
        metadata: { name: 'web' },
      });
      reg.create(SVC, 'other', {
        ...service('web'),
        metadata: { name: 'web', namespace: 'other' },
      });

      const events: Change[] = [];
      const unsubscribe = store.subscribe((c) => events.push(c));
      const gone = reg.delete(NS, undefined, 'shop');
      unsubscribe();

      expect(gone.metadata.name).toBe('shop');
      expect(events.map((e) => `${e.type} ${e.resource} ${e.key}`)).toEqual([
        'MODIFIED /namespaces shop',
        'DELETED /services shop/api',
        'DELETED /services shop/web',
        'DELETED discovery.k8s.io/endpointslices shop/web-1',
        'DELETED multicluster.x-k8s.io/serviceexports shop/web',
        'DELETED /namespaces shop',
      ]);
      expect(events[0]!.object.status).toMatchObject({ phase: 'Terminating' });
      expect(events[0]!.object.metadata.deletionTimestamp).toBe('2026-03-04T05:06:07Z');
      // Revisions increase one per event.
      const revs = events.map((e) => e.rev);
      expect(revs).toEqual(revs.map((_, i) => revs[0]! + i));

      expect(store.list('/services', 'shop')).toEqual([]);
      expect(store.list('discovery.k8s.io/endpointslices', 'shop')).toEqual([]);
      expect(store.list('/services', 'other').map((o) => o.metadata.name)).toEqual(['web']);
      expect(apiError(() => reg.create(SVC, 'shop', service('web'))).code).toBe(404);
    });
  });
});
