import { describe, expect, it } from 'vitest';
import { clusterStatus } from '../../test/fixtures/catalog.ts';
import type {
  ClusterMember,
  Endpoint,
  FederatedService,
  PortRecord,
  Snapshot,
} from '../catalog/model.ts';
import { catalogIds, probeTargets, type TargetOptions } from './targets.ts';

const SERVICE_PORTS: PortRecord[] = [
  { name: 'http', protocol: 'TCP', port: 80 },
  { name: 'admin', protocol: 'TCP', port: 9000 },
];
const SLICE_PORTS: PortRecord[] = [
  { name: 'http', protocol: 'TCP', port: 8080 },
  { name: 'admin', protocol: 'TCP', port: 9090 },
];

function endpoint(address: string, over: Partial<Endpoint> = {}): Endpoint {
  return {
    addresses: [address],
    addressType: address.includes(':') ? 'IPv6' : 'IPv4',
    ports: SLICE_PORTS,
    conditions: { ready: true, serving: true, terminating: false },
    locality: { region: 'r1', zone: 'z1', subzone: undefined },
    hostname: undefined,
    nodeName: undefined,
    ...over,
  };
}

function member(cluster: string, over: Partial<ClusterMember> = {}): ClusterMember {
  return {
    cluster,
    weight: 1,
    exportedAt: 1000,
    endpoints: [],
    ingress: [],
    sync: clusterStatus(cluster),
    ...over,
  };
}

function service(clusters: ClusterMember[], ports = SERVICE_PORTS): FederatedService {
  return {
    key: 'ns/web',
    namespace: 'ns',
    name: 'web',
    type: 'ClusterSetIP',
    sessionAffinity: 'None',
    ports,
    hosts: [],
    dnsMode: undefined,
    lbPolicy: undefined,
    clusters,
    conflicts: [],
  };
}

function snapshot(...services: FederatedService[]): Snapshot {
  return {
    version: 1,
    createdAt: 0,
    services: new Map(services.map((s) => [s.key, s])),
    clusters: new Map(),
  };
}

const ENDPOINTS: TargetOptions = { addressing: 'endpoints' };
const hostPorts = (snap: Snapshot, opts: TargetOptions) =>
  probeTargets(snap, opts).targets.map((t) => `${t.id} ${t.host} ${t.port}`);

describe('probeTargets, endpoints addressing', () => {
  const snap = snapshot(
    service([
      member('a', { endpoints: [endpoint('127.10.0.1'), endpoint('127.10.0.2')] }),
      member('b', { endpoints: [endpoint('127.11.0.1')] }),
    ]),
  );

  it.each([
    ['the first port by default', undefined, 8080],
    ['a port named in config', 'admin', 9090],
    ['a port given by number', 9000, 9090],
    ['a port by number, mapped by its name', 80, 8080],
  ] as const)('probes %s, mapped to the target port', (_what, port, expected) => {
    expect(hostPorts(snap, { addressing: 'endpoints', port })).toEqual([
      `a/127.10.0.1 127.10.0.1 ${expected}`,
      `a/127.10.0.2 127.10.0.2 ${expected}`,
      `b/127.11.0.1 127.11.0.1 ${expected}`,
    ]);
  });

  it('proxy addressing probes endpoints too', () => {
    expect(hostPorts(snap, { addressing: 'proxy' })).toEqual(hostPorts(snap, ENDPOINTS));
  });

  it('fills in service, id and cluster', () => {
    expect(probeTargets(snap, ENDPOINTS).targets[2]).toEqual({
      service: 'ns/web',
      id: 'b/127.11.0.1',
      cluster: 'b',
      host: '127.11.0.1',
      port: 8080,
    });
  });

  it('skips terminating endpoints silently, and probes not-ready ones', () => {
    const s = snapshot(
      service([
        member('a', {
          endpoints: [
            endpoint('127.10.0.1', {
              conditions: { ready: false, serving: true, terminating: true },
            }),
            endpoint('127.10.0.2', {
              conditions: { ready: false, serving: false, terminating: false },
            }),
          ],
        }),
      ]),
    );
    const { targets, skipped } = probeTargets(s, ENDPOINTS);
    expect(targets.map((t) => t.id)).toEqual(['a/127.10.0.2']);
    expect(skipped).toEqual([]);
  });

  it('skips FQDN endpoints, saying so', () => {
    const s = snapshot(
      service([
        member('a', {
          endpoints: [endpoint('db.example.com', { addressType: 'FQDN' }), endpoint('127.10.0.1')],
        }),
      ]),
    );
    const { targets, skipped } = probeTargets(s, ENDPOINTS);
    expect(targets.map((t) => t.id)).toEqual(['a/127.10.0.1']);
    expect(skipped).toEqual([
      {
        service: 'ns/web',
        id: 'a/db.example.com',
        cluster: 'a',
        reason: 'FQDN endpoints are not probed',
      },
    ]);
  });

  it('skips an endpoint whose slice has no port for the service port', () => {
    const s = snapshot(
      service([
        member('a', {
          endpoints: [
            endpoint('127.10.0.1', { ports: [{ name: 'admin', protocol: 'TCP', port: 9090 }] }),
            endpoint('127.10.0.2'),
          ],
        }),
      ]),
    );
    const { targets, skipped } = probeTargets(s, ENDPOINTS);
    expect(targets.map((t) => t.id)).toEqual(['a/127.10.0.2']);
    expect(skipped.map((x) => [x.id, x.reason])).toEqual([
      ['a/127.10.0.1', 'no EndpointSlice port for service port http 80/TCP'],
    ]);
  });

  it('skips every endpoint when the configured port is not on the service', () => {
    const { targets, skipped } = probeTargets(snap, { addressing: 'endpoints', port: 'grpc' });
    expect(targets).toEqual([]);
    expect(skipped.map((x) => x.reason)).toEqual(Array(3).fill('service has no port "grpc"'));
  });

  it('maps an unnamed single port, and never defaults to a UDP port', () => {
    const s = snapshot(
      service(
        [
          member('a', {
            endpoints: [
              endpoint('127.10.0.1', {
                ports: [
                  { name: 'dns', protocol: 'UDP', port: 5353 },
                  { name: '', protocol: 'TCP', port: 8443 },
                ],
              }),
            ],
          }),
        ],
        [
          { name: 'dns', protocol: 'UDP', port: 53 },
          { name: '', protocol: 'TCP', port: 443 },
        ],
      ),
    );
    expect(hostPorts(s, ENDPOINTS)).toEqual(['a/127.10.0.1 127.10.0.1 8443']);
    expect(probeTargets(s, { addressing: 'endpoints', port: 'dns' }).skipped[0]?.reason).toBe(
      'port 53 is UDP',
    );
  });

  it('takes IPv6 addresses as they are', () => {
    const s = snapshot(service([member('a', { endpoints: [endpoint('::1')] })]));
    expect(hostPorts(s, ENDPOINTS)).toEqual(['a/::1 ::1 8080']);
  });
});

describe('probeTargets, ingress addressing', () => {
  const INGRESS: TargetOptions = { addressing: 'ingress' };

  it('probes each load-balancer ingress on the Service port, ip before hostname', () => {
    const s = snapshot(
      service([
        member('a', {
          endpoints: [endpoint('127.10.0.1')],
          ingress: [{ ip: '127.203.113.1', hostname: 'ignored.example.com' }, { ip: '::1' }],
        }),
        member('b', { ingress: [{ hostname: 'lb.b.example.com' }, {}] }),
        member('c'),
      ]),
    );
    expect(hostPorts(s, INGRESS)).toEqual([
      'a/127.203.113.1 127.203.113.1 80',
      'a/::1 ::1 80',
      'b/lb.b.example.com lb.b.example.com 80',
    ]);
    expect(hostPorts(s, { addressing: 'ingress', port: 'admin' })).toContain(
      'a/127.203.113.1 127.203.113.1 9000',
    );
  });

  it('probes a repeated ingress once', () => {
    const s = snapshot(
      service([member('a', { ingress: [{ ip: '127.203.113.1' }, { ip: '127.203.113.1' }] })]),
    );
    expect(probeTargets(s, INGRESS).targets).toHaveLength(1);
  });
});

describe('catalogIds', () => {
  it('names every endpoint and ingress the catalog holds, probed or not', () => {
    const svc = service([
      member('a', {
        endpoints: [
          endpoint('127.10.0.1', {
            conditions: { ready: false, serving: false, terminating: true },
          }),
        ],
        ingress: [{ ip: '127.203.113.1' }],
      }),
    ]);
    expect([...catalogIds(svc)].sort()).toEqual(['a/127.10.0.1', 'a/127.203.113.1']);
    expect(catalogIds(undefined).size).toBe(0);
  });
});
