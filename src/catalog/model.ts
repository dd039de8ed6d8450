// What the catalog publishes: immutable, versioned snapshots of the federated
// services. DNS and the proxy read only these.
import type { ClusterStatus } from '../watch/cluster-watcher.ts';
import type { EndpointConditions, IngressRecord, PortRecord } from '../watch/records.ts';

export type { ClusterStatus, EndpointConditions, IngressRecord, PortRecord };

export interface Locality {
  readonly region: string | undefined;
  readonly zone: string | undefined;
  /** Istio's topology.istio.io/subzone on the endpoint's node. */
  readonly subzone: string | undefined;
}

export interface Endpoint {
  readonly addresses: readonly string[];
  readonly addressType: 'IPv4' | 'IPv6' | 'FQDN';
  /** The EndpointSlice's ports: target ports, by the Service port's name. */
  readonly ports: readonly PortRecord[];
  readonly conditions: EndpointConditions;
  readonly locality: Locality;
  readonly hostname: string | undefined;
  readonly nodeName: string | undefined;
}

export interface ClusterMember {
  readonly cluster: string;
  readonly weight: number;
  /** When this cluster exported the service (ServiceExport, or the Service when opted in by annotation). */
  readonly exportedAt: number;
  readonly endpoints: readonly Endpoint[];
  /** The member Service's load-balancer ingress. */
  readonly ingress: readonly IngressRecord[];
  readonly sync: ClusterStatus;
}

export interface Conflict {
  readonly field: 'type' | 'sessionAffinity' | 'ports' | 'backendProtocol' | 'backendTls';
  /** The clusters whose export disagrees with the one that won. */
  readonly clusters: readonly string[];
  readonly reason: string;
}

export interface FederatedService {
  /** namespace/name */
  readonly key: string;
  readonly namespace: string;
  readonly name: string;
  readonly type: 'ClusterSetIP' | 'Headless';
  readonly sessionAffinity: 'None' | 'ClientIP';
  /** Union across clusters, merged by name, then by protocol and port. */
  readonly ports: readonly PortRecord[];
  /** fedgate.io/hosts from every member. */
  readonly hosts: readonly string[];
  /** fedgate.io/dns-mode; undefined: the config's dns.addressing. */
  readonly dnsMode: 'endpoints' | 'ingress' | 'proxy' | undefined;
  /** fedgate.io/lb-policy as written; undefined: the config's routing.picker. */
  readonly lbPolicy: string | undefined;
  /** fedgate.io/health-check; absent or undefined: the config's health.active.scope. */
  readonly healthCheck?: boolean | undefined;
  /** fedgate.io/backend-protocol as written; undefined: each port's appProtocol decides. */
  readonly backendProtocol?: string | undefined;
  /** fedgate.io/backend-tls: a backend TLS profile's name; undefined: routing.services, else none. */
  readonly backendTls?: string | undefined;
  /** Sorted by cluster name. */
  readonly clusters: readonly ClusterMember[];
  readonly conflicts: readonly Conflict[];
}

export interface Snapshot {
  /** Rises by one with every published snapshot. */
  readonly version: number;
  readonly createdAt: number;
  /** By namespace/name. A service unchanged since the last snapshot is the same object. */
  readonly services: ReadonlyMap<string, FederatedService>;
  readonly clusters: ReadonlyMap<string, ClusterStatus>;
}

export interface Readiness {
  readonly ready: boolean;
  /** Clusters that have not synced once. */
  readonly missing: readonly string[];
  /** True when readiness came from startupTimeout rather than every cluster syncing. */
  readonly timedOut: boolean;
}
