import { describe, expect, it } from 'vitest';
import { clusterStatus, serviceRecord } from '../../test/fixtures/catalog.ts';
import type { NodeRecord, ServiceRecord, SliceRecord } from '../watch/records.ts';
import { type MemberInput, mergeService } from './merge.ts';

function svc(over: Partial<ServiceRecord> = {}): ServiceRecord {
  return serviceRecord({ createdAt: 1000, ...over });
}

function member(cluster: string, over: Partial<MemberInput> = {}): MemberInput {
  return {
    cluster,
    weight: 1,
    region: 'r-config',
    service: svc(),
    export: { namespace: 'shop', name: 'web', createdAt: 5000 },
    slices: [],
    nodes: new Map(),
    sync: clusterStatus(cluster),
    ...over,
  };
}

const ep = (address: string, ready = true, extra: Record<string, string> = {}) => ({
  addresses: [address],
  conditions: { ready, serving: ready, terminating: false },
  ...extra,
});

function slice(name: string, endpoints: SliceRecord['endpoints']): SliceRecord {
  return {
    namespace: 'shop',
    name,
    service: 'web',
    addressType: 'IPv4',
    ports: [{ name: 'http', protocol: 'TCP', port: 8080 }],
    endpoints,
  };
}

describe('mergeService', () => {
  it('takes part only where exported (ServiceExport or annotation), never ExternalName', () => {
    const fs = mergeService('shop', 'web', [
      member('a'),
      member('b', { export: undefined }),
      member('c', { export: undefined, service: svc({ federate: true, createdAt: 7000 }) }),
      member('d', { service: svc({ externalName: true }) }),
    ])!;
    expect(fs.clusters.map((c) => [c.cluster, c.exportedAt])).toEqual([
      ['a', 5000],
      ['c', 7000],
    ]);
    expect(mergeService('shop', 'web', [member('b', { export: undefined })])).toBeUndefined();
  });

  it('lets the oldest export win type and affinity, and lists the conflicts', () => {
    const fs = mergeService('shop', 'web', [
      member('young', {
        export: { namespace: 'shop', name: 'web', createdAt: 9000 },
        service: svc({ headless: true, sessionAffinity: 'ClientIP' }),
      }),
      member('old', { export: { namespace: 'shop', name: 'web', createdAt: 1000 } }),
    ])!;
    expect(fs.type).toBe('ClusterSetIP');
    expect(fs.sessionAffinity).toBe('None');
    expect(fs.conflicts.map((c) => [c.field, c.clusters])).toEqual([
      ['type', ['young']],
      ['sessionAffinity', ['young']],
    ]);
    expect(fs.conflicts[0]!.reason).toMatch(/oldest export \(old, .*\) is ClusterSetIP/);
    // Both clusters still serve it.
    expect(fs.clusters.map((c) => c.cluster)).toEqual(['old', 'young']);
  });

  it("keeps the oldest export's backend protocol and TLS profile, listing the exports that say otherwise", () => {
    const at = (createdAt: number) => ({ namespace: 'shop', name: 'web', createdAt });
    const fs = mergeService('shop', 'web', [
      member('young', { export: at(9000), service: svc({ backendProtocol: 'http' }) }),
      member('unset', { export: at(500) }),
      member('old', {
        export: at(1000),
        service: svc({ backendProtocol: 'grpc', backendTls: 'mesh' }),
      }),
      member('same', { export: at(2000), service: svc({ backendTls: 'mesh' }) }),
    ])!;
    expect(fs.backendProtocol).toBe('grpc');
    expect(fs.backendTls).toBe('mesh');
    // An export that leaves it unset does not disagree; only "young" says another protocol.
    expect(fs.conflicts.map((c) => [c.field, c.clusters])).toEqual([
      ['backendProtocol', ['young']],
    ]);
    expect(fs.conflicts[0]!.reason).toBe(
      'fedgate.io/backend-protocol differs: young says http; the oldest export that sets it (old) says grpc',
    );
    const none = mergeService('shop', 'web', [member('a')])!;
    expect([none.backendProtocol, none.backendTls, none.conflicts]).toEqual([
      undefined,
      undefined,
      [],
    ]);
  });

  it('breaks an export-time tie by cluster name, so every replica agrees', () => {
    const inputs = [
      member('b', { service: svc({ headless: true }) }),
      member('a', { service: svc({ headless: false }) }),
    ];
    expect(mergeService('shop', 'web', inputs)!.type).toBe('ClusterSetIP');
    expect(mergeService('shop', 'web', [...inputs].reverse())!.type).toBe('ClusterSetIP');
  });

  it('unions ports by name, then by protocol and port, flagging a name that disagrees', () => {
    const fs = mergeService('shop', 'web', [
      member('a', {
        service: svc({
          ports: [
            { name: 'http', protocol: 'TCP', port: 80 },
            { name: '', protocol: 'UDP', port: 53 },
          ],
        }),
      }),
      member('b', {
        export: { namespace: 'shop', name: 'web', createdAt: 6000 },
        service: svc({
          ports: [
            { name: 'http', protocol: 'TCP', port: 8080 },
            { name: 'grpc', protocol: 'TCP', port: 9000 },
            { name: '', protocol: 'UDP', port: 53 },
          ],
        }),
      }),
    ])!;
    expect(fs.ports).toEqual([
      { name: 'http', protocol: 'TCP', port: 80 },
      { name: '', protocol: 'UDP', port: 53 },
      { name: 'grpc', protocol: 'TCP', port: 9000 },
    ]);
    expect(fs.conflicts).toHaveLength(1);
    expect(fs.conflicts[0]).toMatchObject({ field: 'ports', clusters: ['b'] });
  });

  it('takes zone from the endpoint, else its node; region from the node, else the config', () => {
    const nodes = new Map<string, NodeRecord>([
      ['n1', { name: 'n1', zone: 'node-zone', region: 'node-region' }],
      ['n2', { name: 'n2', zone: 'z2' }],
    ]);
    const fs = mergeService('shop', 'web', [
      member('a', {
        nodes,
        slices: [
          slice('s1', [
            ep('127.10.0.1', true, { nodeName: 'n1', zone: 'ep-zone' }),
            ep('127.10.0.2', true, { nodeName: 'n1' }),
            ep('127.10.0.3', true, { nodeName: 'n2' }),
            ep('127.10.0.4', true, { nodeName: 'unknown' }),
          ]),
        ],
      }),
    ])!;
    expect(fs.clusters[0]!.endpoints.map((e) => e.locality)).toEqual([
      { region: 'node-region', zone: 'ep-zone' },
      { region: 'node-region', zone: 'node-zone' },
      { region: 'r-config', zone: 'z2' },
      { region: 'r-config', zone: undefined },
    ]);
  });

  it('lists an address found in two slices once, its ready copy preferred', () => {
    const fs = mergeService('shop', 'web', [
      member('a', {
        slices: [slice('s2', [ep('127.10.0.1', true)]), slice('s1', [ep('127.10.0.1', false)])],
      }),
    ])!;
    expect(fs.clusters[0]!.endpoints).toHaveLength(1);
    expect(fs.clusters[0]!.endpoints[0]!.conditions.ready).toBe(true);
  });

  it("carries each endpoint's hostname, which headless DNS names it by", () => {
    const fs = mergeService('shop', 'web', [
      member('a', {
        service: svc({ headless: true }),
        slices: [slice('s1', [ep('127.10.0.1', true, { hostname: 'web-0' }), ep('127.10.0.2')])],
      }),
    ])!;
    expect(fs.type).toBe('Headless');
    expect(fs.clusters[0]!.endpoints.map((e) => e.hostname)).toEqual(['web-0', undefined]);
  });

  it('unions fedgate.io/hosts and carries ingress and sync per cluster', () => {
    const fs = mergeService('shop', 'web', [
      member('a', { service: svc({ hosts: ['b.example'], ingress: [{ ip: '127.1.1.1' }] }) }),
      member('b', { service: svc({ hosts: ['a.example', 'b.example'] }) }),
    ])!;
    expect(fs.hosts).toEqual(['a.example', 'b.example']);
    expect(fs.clusters[0]!.ingress).toEqual([{ ip: '127.1.1.1' }]);
    expect(fs.clusters[1]!.sync.cluster).toBe('b');
  });
});
