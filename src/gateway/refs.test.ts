import { describe, expect, it } from 'vitest';
import {
  backendRef,
  referenceGrant,
  serviceLookup,
  tlsSecret,
} from '../../test/helpers/gateway-objects.ts';
import type { RouteId } from './attached.ts';
import { certificateRefProblem, grantAllows, MCS_GROUP, resolveBackend } from './refs.ts';

const route: RouteId = { kind: 'HTTPRoute', namespace: 'app', name: 'web' };
const services = serviceLookup({ 'app/svc': [8080], 'other/svc': [8080], 'other/multi': [80, 81] });
const grantToServices = (name?: string, kind = 'Service', group = '') =>
  referenceGrant(
    { name: 'g', namespace: 'other' },
    [{ group: 'gateway.networking.k8s.io', kind: 'HTTPRoute', namespace: 'app' }],
    [{ group, kind, ...(name !== undefined ? { name } : {}) }],
  );

describe('resolveBackend', () => {
  it('a Service of the route namespace resolves to its federated service and port', () => {
    const b = resolveBackend(
      backendRef({ name: 'svc', port: 8080, weight: 3 }),
      route,
      services,
      [],
    );
    expect(b).toEqual({ serviceKey: 'app/svc', port: 8080, weight: 3, filters: [] });
  });

  it('a ServiceImport (GEP-1748) names the same federated service', () => {
    const ref = backendRef({ group: MCS_GROUP, kind: 'ServiceImport', name: 'svc', port: 8080 });
    expect(resolveBackend(ref, route, services, []).serviceKey).toBe('app/svc');
  });

  it('a ServiceImport without a port takes the service port when there is one, else UnsupportedValue', () => {
    const one = backendRef({ group: MCS_GROUP, kind: 'ServiceImport', name: 'svc' });
    expect(resolveBackend(one, route, services, []).port).toBe(8080);
    const grants = [grantToServices(undefined, 'ServiceImport', MCS_GROUP)];
    const multi = backendRef({
      group: MCS_GROUP,
      kind: 'ServiceImport',
      name: 'multi',
      namespace: 'other',
    });
    expect(resolveBackend(multi, route, services, grants).problem?.reason).toBe('UnsupportedValue');
  });

  it('any other kind is InvalidKind, and keeps its weight (its share answers 500)', () => {
    const b = resolveBackend(
      backendRef({
        group: 'unknownkind.example.com',
        kind: 'NonExistent',
        name: 'svc',
        port: 8080,
        weight: 5,
      }),
      route,
      services,
      [],
    );
    expect(b.problem?.reason).toBe('InvalidKind');
    expect(b.serviceKey).toBeUndefined();
    expect(b.weight).toBe(5);
    expect(
      resolveBackend(backendRef({ kind: 'Pod', name: 'svc', port: 1 }), route, services, []).problem
        ?.reason,
    ).toBe('InvalidKind');
  });

  it('a Service without a port is UnsupportedValue (the CRD requires one)', () => {
    expect(resolveBackend(backendRef({ name: 'svc' }), route, services, []).problem?.reason).toBe(
      'UnsupportedValue',
    );
  });

  it('no such service, or no such port on it, is BackendNotFound', () => {
    expect(
      resolveBackend(backendRef({ name: 'nope', port: 8080 }), route, services, []).problem?.reason,
    ).toBe('BackendNotFound');
    const wrongPort = resolveBackend(backendRef({ name: 'svc', port: 9090 }), route, services, []);
    expect(wrongPort.problem).toMatchObject({
      reason: 'BackendNotFound',
      message: expect.stringContaining('9090'),
    });
  });

  it('another namespace needs a ReferenceGrant there (RefNotPermitted), checked before existence', () => {
    const ref = backendRef({ name: 'svc', namespace: 'other', port: 8080 });
    expect(resolveBackend(ref, route, services, []).problem?.reason).toBe('RefNotPermitted');
    const ghost = backendRef({ name: 'ghost', namespace: 'other', port: 8080 });
    expect(resolveBackend(ghost, route, services, []).problem?.reason).toBe('RefNotPermitted');
    expect(resolveBackend(ref, route, services, [grantToServices('svc')]).serviceKey).toBe(
      'other/svc',
    );
    // A grant without a name covers every Service of its namespace.
    expect(resolveBackend(ref, route, services, [grantToServices()]).serviceKey).toBe('other/svc');
  });
});

describe('grantAllows', () => {
  const from = { group: 'gateway.networking.k8s.io', kind: 'HTTPRoute', namespace: 'app' };
  const to = { group: '', kind: 'Service', namespace: 'other', name: 'svc' };
  it('every part must match: namespace, from group/kind/namespace, to group/kind/name', () => {
    expect(grantAllows([grantToServices('svc')], from, to)).toBe(true);
    expect(grantAllows([grantToServices('svc')], { ...from, kind: 'GRPCRoute' }, to)).toBe(false);
    expect(grantAllows([grantToServices('svc')], { ...from, namespace: 'x' }, to)).toBe(false);
    expect(grantAllows([grantToServices('other-name')], from, to)).toBe(false);
    expect(grantAllows([grantToServices('svc', 'Secret')], from, to)).toBe(false);
    expect(grantAllows([grantToServices('svc', 'Service', 'x.io')], from, to)).toBe(false);
    // A grant counts only in the namespace referred to.
    expect(grantAllows([grantToServices('svc')], from, { ...to, namespace: 'app2' })).toBe(false);
  });
});

describe('certificateRefProblem', () => {
  const secrets = new Map([
    ['edge/cert', tlsSecret({ name: 'cert', namespace: 'edge' })],
    ['certs/shared', tlsSecret({ name: 'shared', namespace: 'certs' })],
  ]);
  const ref = (name: string, namespace?: string, kind = 'Secret') => ({
    group: '',
    kind,
    name,
    ...(namespace !== undefined ? { namespace } : {}),
  });

  it('a TLS Secret of the Gateway namespace resolves', () => {
    expect(certificateRefProblem(ref('cert'), 'edge', [], secrets)).toBeUndefined();
  });

  it('a missing Secret or another kind is InvalidCertificateRef', () => {
    expect(certificateRefProblem(ref('gone'), 'edge', [], secrets)?.reason).toBe(
      'InvalidCertificateRef',
    );
    expect(
      certificateRefProblem(ref('cert', undefined, 'ConfigMap'), 'edge', [], secrets)?.reason,
    ).toBe('InvalidCertificateRef');
  });

  it('another namespace needs a grant from Gateways of the Gateway namespace (RefNotPermitted)', () => {
    expect(certificateRefProblem(ref('shared', 'certs'), 'edge', [], secrets)?.reason).toBe(
      'RefNotPermitted',
    );
    const grant = referenceGrant(
      { name: 'g', namespace: 'certs' },
      [{ group: 'gateway.networking.k8s.io', kind: 'Gateway', namespace: 'edge' }],
      [{ group: '', kind: 'Secret' }],
    );
    expect(certificateRefProblem(ref('shared', 'certs'), 'edge', [grant], secrets)).toBeUndefined();
  });
});
