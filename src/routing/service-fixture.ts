// Federated services from literals, for routing's and health's tests and benchmarks.
import type { ClusterMember, Endpoint, FederatedService } from '../catalog/model.ts';
import { clusterStatus } from '../catalog/testing.ts';
import type { EndpointHealth, HealthView } from './types.ts';

export interface EndpointSpec {
  readonly address: string;
  readonly region?: string;
  readonly zone?: string;
  readonly subzone?: string;
  readonly ready?: boolean;
  readonly serving?: boolean;
  readonly terminating?: boolean;
}

export interface MemberSpec {
  readonly cluster: string;
  readonly weight?: number;
  readonly stale?: boolean;
  readonly endpoints: readonly EndpointSpec[];
}

export function endpoint(spec: EndpointSpec): Endpoint {
  const ready = spec.ready ?? true;
  return {
    addresses: [spec.address],
    addressType: spec.address.includes(':') ? 'IPv6' : 'IPv4',
    ports: [{ name: 'http', protocol: 'TCP', port: 8080 }],
    conditions: {
      ready,
      serving: spec.serving ?? ready,
      terminating: spec.terminating ?? false,
    },
    locality: { region: spec.region, zone: spec.zone, subzone: spec.subzone },
    hostname: undefined,
    nodeName: undefined,
  };
}

export function member(spec: MemberSpec): ClusterMember {
  return {
    cluster: spec.cluster,
    weight: spec.weight ?? 1,
    exportedAt: 1,
    endpoints: spec.endpoints.map(endpoint),
    ingress: [],
    sync: clusterStatus(spec.cluster, spec.stale ? { state: 'stale' } : {}),
  };
}

export function service(members: readonly MemberSpec[], key = 'shop/web'): FederatedService {
  const [namespace, name] = key.split('/') as [string, string];
  return {
    key,
    namespace,
    name,
    type: 'ClusterSetIP',
    sessionAffinity: 'None',
    ports: [{ name: 'http', protocol: 'TCP', port: 80 }],
    hosts: [],
    dnsMode: undefined,
    lbPolicy: undefined,
    clusters: members.map(member),
    conflicts: [],
  };
}

/** `n` endpoints 127.<10 + octet>.x.y in one locality, the first `ready` of them ready. */
export function endpoints(
  octet: number,
  n: number,
  locality: Omit<EndpointSpec, 'address'>,
  ready = n,
): EndpointSpec[] {
  return Array.from({ length: n }, (_, i) => ({
    ...locality,
    address: `127.${10 + octet}.${i >> 8}.${i & 255}`,
    ready: i < ready,
  }));
}

/** A health view from a literal: service → endpoint id → health. */
export function healthView(
  entries: Record<string, EndpointHealth>,
  service = 'shop/web',
  version = 1,
): HealthView {
  return {
    serviceVersion: (s) => (s === service ? version : 0),
    endpoints: (s) => (s === service ? new Map(Object.entries(entries)) : undefined),
  };
}
