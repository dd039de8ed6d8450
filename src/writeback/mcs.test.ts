import { describe, expect, it } from 'vitest';
import { clusterStatus, serviceRecord } from '../../test/fixtures/catalog.ts';
import type { FederatedService, Snapshot } from '../catalog/model.ts';
import type { ServiceRecord } from '../watch/records.ts';
import { exportConditions, exportStatus, type McsView, serviceImports } from './mcs.ts';

const record = serviceRecord;

function merged(over: Partial<FederatedService> = {}): FederatedService {
  return {
    key: 'shop/web',
    namespace: 'shop',
    name: 'web',
    type: 'ClusterSetIP',
    sessionAffinity: 'None',
    ports: [{ name: 'http', protocol: 'TCP', port: 80, appProtocol: 'http' }],
    hosts: [],
    dnsMode: undefined,
    lbPolicy: undefined,
    clusters: ['alpha', 'beta'].map((cluster) => ({
      cluster,
      weight: 1,
      exportedAt: 1,
      endpoints: [],
      ingress: [],
      sync: clusterStatus(cluster),
    })),
    conflicts: [],
    ...over,
  };
}

function view(
  services: FederatedService[],
  members: Record<string, ServiceRecord | undefined>,
  over: Partial<McsView> = {},
): McsView {
  const snapshot: Snapshot = {
    version: 1,
    createdAt: 1,
    services: new Map(services.map((s) => [s.key, s])),
    clusters: new Map(),
  };
  return {
    snapshot,
    memberService: (cluster, key) => (key === 'shop/web' ? members[cluster] : undefined),
    addressing: 'endpoints',
    edges: [
      { region: 'us-east', addresses: ['127.224.0.1', '::1', '127.224.0.3'] },
      { region: 'eu-west', addresses: ['127.224.0.2'] },
    ],
    regions: new Map([
      ['alpha', 'us-east'],
      ['beta', 'eu-west'],
      ['gamma', 'ap-south'],
    ]),
    federation: 'galaxy',
    ...over,
  };
}

/** The ips of `key`'s import, from a serviceImports map. */
const ipsOf = (m: ReturnType<typeof serviceImports>, key = 'shop/web') =>
  (m.get(key)?.spec as { ips?: string[] } | undefined)?.ips;

const brief = (cs: { type: string; status: string; reason: string }[]) =>
  cs.map((c) => `${c.type}=${c.status}/${c.reason}`);

describe('exportConditions', () => {
  it('an exported Service: Valid, Ready (Exported), no conflicts', () => {
    const v = view([merged()], { alpha: record(), beta: record() });
    const cs = exportConditions('alpha', 'shop/web', v);
    expect(brief(cs)).toEqual([
      'Valid=True/Valid',
      'Ready=True/Exported',
      'Conflict=False/NoConflicts',
    ]);
    expect(cs[1]?.message).toContain('with 2 clusters: alpha, beta');
  });

  it('no Service: Valid False NoService, Ready False Failed', () => {
    const cs = exportConditions('alpha', 'shop/web', view([], {}));
    expect(brief(cs)).toEqual([
      'Valid=False/NoService',
      'Ready=False/Failed',
      'Conflict=False/NoConflicts',
    ]);
    expect(cs[0]?.message).toBe('Service shop/web does not exist in cluster alpha');
  });

  it('an ExternalName Service: Valid False InvalidServiceType', () => {
    const cs = exportConditions(
      'alpha',
      'shop/web',
      view([], { alpha: record({ externalName: true }) }),
    );
    expect(brief(cs).slice(0, 2)).toEqual(['Valid=False/InvalidServiceType', 'Ready=False/Failed']);
  });

  it('valid but not merged yet: Ready Unknown Pending', () => {
    const cs = exportConditions('alpha', 'shop/web', view([], { alpha: record() }));
    expect(brief(cs)[1]).toBe('Ready=Unknown/Pending');
  });

  it("the merge's conflicts: Conflict True, mcs-api's reasons joined by commas, the merge's words as the message", () => {
    const svc = merged({
      conflicts: [
        {
          field: 'ports',
          clusters: ['beta'],
          reason: 'beta has port http 81/TCP, the older export (alpha) has http 80/TCP',
        },
        { field: 'sessionAffinity', clusters: ['beta'], reason: 'sessionAffinity differs in beta' },
        { field: 'backendTls', clusters: ['beta'], reason: 'fedgate.io/backend-tls differs' },
      ],
    });
    const v = view([svc], { alpha: record(), beta: record() });
    for (const cluster of ['alpha', 'beta']) {
      const conflict = exportConditions(cluster, 'shop/web', v)[2];
      expect(conflict).toMatchObject({
        status: 'True',
        reason: 'PortConflict,SessionAffinityConflict,AnnotationsConflict',
      });
      expect(conflict?.message).toBe(
        'beta has port http 81/TCP, the older export (alpha) has http 80/TCP; sessionAffinity differs in beta; fedgate.io/backend-tls differs',
      );
    }
  });
});

describe('exportStatus', () => {
  it("sets observedGeneration and keeps other controllers' conditions", () => {
    const foreign = {
      type: 'example.com/Synced',
      status: 'True',
      reason: 'Done',
      message: '',
      lastTransitionTime: 't',
    };
    const stale = {
      type: 'Valid',
      status: 'False',
      reason: 'NoService',
      message: 'x',
      lastTransitionTime: 't',
    };
    const status = exportStatus(
      'alpha',
      {
        metadata: { namespace: 'shop', name: 'web', generation: 4 },
        status: { conditions: [foreign, stale] },
      },
      view([merged()], { alpha: record() }),
    ) as { conditions: { type: string; observedGeneration?: number }[] };
    expect(status.conditions.map((c) => c.type)).toEqual([
      'example.com/Synced',
      'Valid',
      'Ready',
      'Conflict',
    ]);
    expect(status.conditions.slice(1).every((c) => c.observedGeneration === 4)).toBe(true);
  });
});

describe('serviceImports', () => {
  it("one per federated service: type, merged ports, affinity, exporting clusters, marked as fedgate's", () => {
    const imports = serviceImports('gamma', view([merged()], {}));
    expect([...imports.keys()]).toEqual(['shop/web']);
    expect(imports.get('shop/web')).toEqual({
      metadata: {
        labels: { 'app.kubernetes.io/managed-by': 'fedgate' },
        annotations: { 'fedgate.io/federation': 'galaxy' },
      },
      spec: {
        type: 'ClusterSetIP',
        ports: [{ name: 'http', protocol: 'TCP', port: 80, appProtocol: 'http' }],
        sessionAffinity: 'None',
      },
      status: { clusters: [{ cluster: 'alpha' }, { cluster: 'beta' }] },
    });
  });

  it("in proxy mode, ips are fedgate's edges in the member's region, one per family; all edges when its region has none", () => {
    const v = view([merged({ dnsMode: 'proxy' })], {});
    const ips = (cluster: string) => ipsOf(serviceImports(cluster, v));
    expect(ips('alpha')).toEqual(['127.224.0.1', '::1']);
    expect(ips('beta')).toEqual(['127.224.0.2']);
    expect(ips('gamma')).toEqual(['127.224.0.1', '::1']);
    // dns.addressing proxy for every service without its own mode; none for Headless.
    const byConfig = view(
      [merged(), merged({ key: 'shop/db', name: 'db', type: 'Headless' })],
      {},
      { addressing: 'proxy' },
    );
    const specs = serviceImports('beta', byConfig);
    expect(ipsOf(specs)).toEqual(['127.224.0.2']);
    expect(specs.get('shop/db')?.spec as { ips?: string[]; type: string }).toMatchObject({
      type: 'Headless',
    });
    expect(ipsOf(specs, 'shop/db')).toBeUndefined();
  });

  it('no ips in endpoints mode', () => {
    const imports = serviceImports('alpha', view([merged()], {}));
    expect(imports.has('shop/web')).toBe(true);
    expect(ipsOf(imports)).toBeUndefined();
  });
});
