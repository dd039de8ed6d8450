// The small internal records the watchers emit. Nothing past watch/ sees an API
// object: these keep only what routing, DNS and the proxy read.

export interface PortRecord {
  readonly name: string;
  readonly protocol: string;
  readonly port: number;
  readonly appProtocol?: string;
}

export interface IngressRecord {
  readonly ip?: string;
  readonly hostname?: string;
}

export interface ServiceRecord {
  readonly namespace: string;
  readonly name: string;
  /** creationTimestamp in ms: the export time when the annotation opts the service in. */
  readonly createdAt: number;
  /** clusterIP None. */
  readonly headless: boolean;
  /** ExternalName services have no endpoints and are never federated. */
  readonly externalName: boolean;
  readonly ports: readonly PortRecord[];
  readonly sessionAffinity: 'None' | 'ClientIP';
  /** The fedgate.io/federate annotation says "true". */
  readonly federate: boolean;
  /** fedgate.io/hosts. */
  readonly hosts: readonly string[];
  readonly ingress: readonly IngressRecord[];
  /** fedgate.io/dns-mode, when it names a known mode. */
  readonly dnsMode?: 'endpoints' | 'ingress' | 'proxy';
  /** fedgate.io/lb-policy as written (the proxy parses it and says when it cannot). */
  readonly lbPolicy?: string;
  /** fedgate.io/health-check, when it says "true" or "false". */
  readonly healthCheck?: boolean;
  /** fedgate.io/backend-protocol as written, trimmed (the proxy parses it and says when it cannot). */
  readonly backendProtocol?: string;
  /** fedgate.io/backend-tls: the backend TLS profile's name, as written, trimmed. */
  readonly backendTls?: string;
}

export interface EndpointConditions {
  readonly ready: boolean;
  readonly serving: boolean;
  readonly terminating: boolean;
}

export interface EndpointRecord {
  readonly addresses: readonly string[];
  readonly conditions: EndpointConditions;
  readonly hostname?: string;
  readonly nodeName?: string;
  readonly zone?: string;
}

export interface SliceRecord {
  readonly namespace: string;
  readonly name: string;
  /** The Service it belongs to (label kubernetes.io/service-name). */
  readonly service: string;
  readonly addressType: 'IPv4' | 'IPv6' | 'FQDN';
  readonly ports: readonly PortRecord[];
  readonly endpoints: readonly EndpointRecord[];
}

export interface NodeRecord {
  readonly name: string;
  readonly zone?: string;
  readonly region?: string;
  readonly subzone?: string;
}

export interface ExportRecord {
  readonly namespace: string;
  readonly name: string;
  /** creationTimestamp in ms: MCS resolves conflicts by the oldest export. */
  readonly createdAt: number;
}

export type ResourceKind = 'services' | 'endpointslices' | 'nodes' | 'serviceexports';

export interface RecordOf {
  services: ServiceRecord;
  endpointslices: SliceRecord;
  nodes: NodeRecord;
  serviceexports: ExportRecord;
}
