import { describe, expect, it } from 'vitest';
import { objectKey, sameRecord, trimExport, trimNode, trimService, trimSlice } from './trim.ts';

const slice = (endpoints: unknown[]) => ({
  apiVersion: 'discovery.k8s.io/v1',
  kind: 'EndpointSlice',
  metadata: {
    name: 'web-abc',
    namespace: 'shop',
    resourceVersion: '7',
    labels: { 'kubernetes.io/service-name': 'web', 'app.kubernetes.io/managed-by': 'x' },
    managedFields: [{ manager: 'kube-controller-manager' }],
  },
  addressType: 'IPv4',
  ports: [{ name: 'http', port: 8080, protocol: 'TCP' }, { name: 'broken' }],
  endpoints,
});

describe('trimSlice', () => {
  it('defaults conditions as the API defines them', () => {
    const s = trimSlice(
      slice([
        { addresses: ['127.10.0.1'] },
        { addresses: ['127.10.0.2'], conditions: { ready: false } },
        {
          addresses: ['127.10.0.3'],
          conditions: { ready: false, serving: true, terminating: true },
        },
      ]),
    )!;
    expect(s.endpoints.map((e) => e.conditions)).toEqual([
      { ready: true, serving: true, terminating: false },
      { ready: false, serving: false, terminating: false },
      { ready: false, serving: true, terminating: true },
    ]);
  });

  it('keeps what routing reads and drops the rest', () => {
    const s = trimSlice(
      slice([
        { addresses: ['127.10.0.1'], nodeName: 'n1', zone: 'z1', hostname: 'web-0', targetRef: {} },
        { addresses: [] },
      ]),
    )!;
    expect(s).toEqual({
      namespace: 'shop',
      name: 'web-abc',
      service: 'web',
      addressType: 'IPv4',
      ports: [{ name: 'http', protocol: 'TCP', port: 8080 }],
      endpoints: [
        {
          addresses: ['127.10.0.1'],
          conditions: { ready: true, serving: true, terminating: false },
          hostname: 'web-0',
          nodeName: 'n1',
          zone: 'z1',
        },
      ],
    });
  });

  it('skips a slice that names no service, or a malformed one', () => {
    const s = slice([]);
    s.metadata.labels = {} as typeof s.metadata.labels;
    expect(trimSlice(s)).toBeUndefined();
    expect(trimSlice({ metadata: 'nope' })).toBeUndefined();
    expect(trimSlice({ ...slice([]), addressType: 'Mac' })).toBeUndefined();
  });
});

describe('trimService', () => {
  it('reads type, ports, affinity, annotations and ingress', () => {
    const r = trimService({
      metadata: {
        name: 'web',
        namespace: 'shop',
        creationTimestamp: '2026-01-02T03:04:05Z',
        annotations: {
          'fedgate.io/federate': 'true',
          'fedgate.io/hosts': 'WWW.example.com., a.b',
          'fedgate.io/dns-mode': ' Ingress ',
        },
      },
      spec: {
        clusterIP: 'None',
        ports: [{ port: 80, name: 'http' }],
        sessionAffinity: 'ClientIP',
      },
      status: {
        loadBalancer: { ingress: [{ ip: '127.2.3.4', ipMode: 'VIP' }, { hostname: 'lb' }] },
      },
    })!;
    expect(r).toEqual({
      namespace: 'shop',
      name: 'web',
      createdAt: Date.parse('2026-01-02T03:04:05Z'),
      headless: true,
      externalName: false,
      ports: [{ name: 'http', protocol: 'TCP', port: 80 }],
      sessionAffinity: 'ClientIP',
      federate: true,
      hosts: ['www.example.com', 'a.b'],
      ingress: [{ ip: '127.2.3.4' }, { hostname: 'lb' }],
      dnsMode: 'ingress',
    });
  });

  it('keeps fedgate.io/lb-policy as written, for the proxy to parse', () => {
    const r = trimService({
      metadata: {
        name: 'web',
        namespace: 'shop',
        annotations: { 'fedgate.io/lb-policy': ' maglev:cookie:sid ' },
      },
      spec: { ports: [{ port: 80 }] },
    })!;
    expect(r.lbPolicy).toBe('maglev:cookie:sid');
  });

  it('keeps fedgate.io/backend-protocol and backend-tls trimmed, and drops blank ones', () => {
    const r = trimService({
      metadata: {
        name: 'web',
        namespace: 'shop',
        annotations: { 'fedgate.io/backend-protocol': ' grpc ', 'fedgate.io/backend-tls': 'mesh' },
      },
      spec: { ports: [{ port: 80 }] },
    })!;
    expect([r.backendProtocol, r.backendTls]).toEqual(['grpc', 'mesh']);
    const blank = trimService({
      metadata: {
        name: 'web',
        namespace: 'shop',
        annotations: { 'fedgate.io/backend-protocol': '  ', 'fedgate.io/backend-tls': '' },
      },
      spec: { ports: [{ port: 80 }] },
    })!;
    expect('backendProtocol' in blank || 'backendTls' in blank).toBe(false);
  });

  it('ignores a dns-mode it does not know: the config default applies', () => {
    const r = trimService({
      metadata: {
        name: 'web',
        namespace: 'shop',
        annotations: { 'fedgate.io/dns-mode': 'anycast' },
      },
      spec: { ports: [{ port: 80 }] },
    })!;
    expect(r.dnsMode).toBeUndefined();
  });

  it('reads fedgate.io/health-check as true or false, and anything else as absent', () => {
    const check = (value: string) =>
      trimService({
        metadata: {
          name: 'web',
          namespace: 'shop',
          annotations: { 'fedgate.io/health-check': value },
        },
        spec: { ports: [{ port: 80 }] },
      })!.healthCheck;
    expect(check('true')).toBe(true);
    expect(check(' False ')).toBe(false);
    expect(check('yes')).toBeUndefined();
    expect(check('')).toBeUndefined();
  });

  it('gives equal records for objects that differ only in fields routing ignores', () => {
    const base = { metadata: { name: 'web', namespace: 'shop' }, spec: { ports: [{ port: 80 }] } };
    const a = trimService({ ...base, metadata: { ...base.metadata, labels: { x: '1' } } });
    const b = trimService({ ...base, metadata: { ...base.metadata, labels: { x: '2' } } });
    expect(sameRecord(a, b)).toBe(true);
    const c = trimService({ ...base, spec: { ports: [{ port: 81 }] } });
    expect(sameRecord(a, c)).toBe(false);
  });
});

describe('trimNode and trimExport', () => {
  it('reads topology labels and export time', () => {
    expect(
      trimNode({
        metadata: {
          name: 'n1',
          labels: {
            'topology.kubernetes.io/zone': 'z1',
            'topology.kubernetes.io/region': 'r1',
          },
        },
      }),
    ).toEqual({ name: 'n1', zone: 'z1', region: 'r1' });
    expect(trimNode({ metadata: { name: 'n2' } })).toEqual({ name: 'n2' });
    expect(
      trimExport({
        metadata: { name: 'web', namespace: 'shop', creationTimestamp: '2026-01-01T00:00:00Z' },
      }),
    ).toEqual({ namespace: 'shop', name: 'web', createdAt: Date.parse('2026-01-01T00:00:00Z') });
  });

  it('keys namespaced objects by namespace/name, nodes by name', () => {
    expect(objectKey({ metadata: { name: 'a', namespace: 'b' } })).toBe('b/a');
    expect(objectKey({ metadata: { name: 'n' } })).toBe('n');
    expect(objectKey({})).toBeUndefined();
  });
});
