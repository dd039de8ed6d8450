// Kubernetes objects, as JSON off the wire, trimmed into records at the edge.
// A malformed object yields undefined: it is skipped, never fatal.
import {
  BACKEND_PROTOCOL_ANNOTATION,
  BACKEND_TLS_ANNOTATION,
  DNS_MODE_ANNOTATION,
  FEDERATE_ANNOTATION,
  HEALTH_CHECK_ANNOTATION,
  HOSTS_ANNOTATION,
  LB_POLICY_ANNOTATION,
  REGION_LABEL,
  SERVICE_NAME_LABEL,
  SUBZONE_LABEL,
  ZONE_LABEL,
} from './annotations.ts';
import type {
  EndpointRecord,
  ExportRecord,
  IngressRecord,
  NodeRecord,
  PortRecord,
  RecordOf,
  ResourceKind,
  ServiceRecord,
  SliceRecord,
} from './records.ts';

export type Json = Record<string, unknown>;

export function obj(v: unknown): Json {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : {};
}
export function arr(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}
export function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}
function bool(v: unknown): boolean | undefined {
  return typeof v === 'boolean' ? v : undefined;
}
export function strMap(v: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, x] of Object.entries(obj(v))) if (typeof x === 'string') out[k] = x;
  return out;
}
export function timestamp(v: unknown): number {
  const t = typeof v === 'string' ? Date.parse(v) : Number.NaN;
  return Number.isFinite(t) ? t : 0;
}

interface Meta {
  name: string;
  namespace: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  createdAt: number;
}

function meta(o: Json): Meta | undefined {
  const m = obj(o.metadata);
  const name = str(m.name);
  if (!name) return undefined;
  return {
    name,
    namespace: str(m.namespace) ?? '',
    labels: strMap(m.labels),
    annotations: strMap(m.annotations),
    createdAt: timestamp(m.creationTimestamp),
  };
}

function ports(v: unknown): PortRecord[] {
  const out: PortRecord[] = [];
  for (const p of arr(v).map(obj)) {
    if (typeof p.port !== 'number') continue;
    const appProtocol = str(p.appProtocol);
    out.push({
      name: str(p.name) ?? '',
      protocol: str(p.protocol) ?? 'TCP',
      port: p.port,
      ...(appProtocol ? { appProtocol } : {}),
    });
  }
  return out;
}

export function trimService(o: Json): ServiceRecord | undefined {
  const m = meta(o);
  if (!m) return undefined;
  const spec = obj(o.spec);
  const ingress: IngressRecord[] = [];
  for (const i of arr(obj(obj(o.status).loadBalancer).ingress).map(obj)) {
    const ip = str(i.ip);
    const hostname = str(i.hostname);
    if (ip || hostname) ingress.push({ ...(ip ? { ip } : {}), ...(hostname ? { hostname } : {}) });
  }
  const hosts = (m.annotations[HOSTS_ANNOTATION] ?? '')
    .split(',')
    .map((h) => h.trim().toLowerCase().replace(/\.$/, ''))
    .filter(Boolean);
  return {
    namespace: m.namespace,
    name: m.name,
    createdAt: m.createdAt,
    headless: spec.clusterIP === 'None',
    externalName: spec.type === 'ExternalName',
    ports: ports(spec.ports),
    sessionAffinity: spec.sessionAffinity === 'ClientIP' ? 'ClientIP' : 'None',
    federate: m.annotations[FEDERATE_ANNOTATION] === 'true',
    hosts,
    ingress,
    ...dnsMode(m.annotations[DNS_MODE_ANNOTATION]),
    ...(m.annotations[LB_POLICY_ANNOTATION]?.trim()
      ? { lbPolicy: m.annotations[LB_POLICY_ANNOTATION].trim() }
      : {}),
    ...healthCheck(m.annotations[HEALTH_CHECK_ANNOTATION]),
    ...trimmed('backendProtocol', m.annotations[BACKEND_PROTOCOL_ANNOTATION]),
    ...trimmed('backendTls', m.annotations[BACKEND_TLS_ANNOTATION]),
  };
}

/** `{ [key]: value }` trimmed, or nothing when the annotation is absent or blank. */
function trimmed<K extends string>(key: K, v: string | undefined): { [P in K]?: string } {
  const t = v?.trim();
  return (t ? { [key]: t } : {}) as { [P in K]?: string };
}

/** "true" or "false"; anything else is as if absent, so the config's scope decides. */
function healthCheck(v: string | undefined): { healthCheck?: boolean } {
  const t = v?.trim().toLowerCase();
  return t === 'true' ? { healthCheck: true } : t === 'false' ? { healthCheck: false } : {};
}

const DNS_MODES = ['endpoints', 'ingress', 'proxy'] as const;

/** A known mode, or nothing: an unknown value falls back to the config's default. */
function dnsMode(v: string | undefined): { dnsMode?: (typeof DNS_MODES)[number] } {
  const m = DNS_MODES.find((x) => x === v?.trim().toLowerCase());
  return m ? { dnsMode: m } : {};
}

export function trimSlice(o: Json): SliceRecord | undefined {
  const m = meta(o);
  const service = m?.labels[SERVICE_NAME_LABEL];
  if (!m || !service) return undefined;
  const addressType = o.addressType;
  if (addressType !== 'IPv4' && addressType !== 'IPv6' && addressType !== 'FQDN') return undefined;
  const endpoints: EndpointRecord[] = [];
  for (const e of arr(o.endpoints).map(obj)) {
    const addresses = arr(e.addresses).filter(
      (a): a is string => typeof a === 'string' && a !== '',
    );
    if (addresses.length === 0) continue;
    const c = obj(e.conditions);
    // The API's defaults: ready nil means true; serving nil defers to ready; terminating nil means false.
    const ready = bool(c.ready) ?? true;
    const serving = bool(c.serving) ?? ready;
    const terminating = bool(c.terminating) ?? false;
    const hostname = str(e.hostname);
    const nodeName = str(e.nodeName);
    const zone = str(e.zone);
    endpoints.push({
      addresses,
      conditions: { ready, serving, terminating },
      ...(hostname ? { hostname } : {}),
      ...(nodeName ? { nodeName } : {}),
      ...(zone ? { zone } : {}),
    });
  }
  return {
    namespace: m.namespace,
    name: m.name,
    service,
    addressType,
    ports: ports(o.ports),
    endpoints,
  };
}

export function trimNode(o: Json): NodeRecord | undefined {
  const m = meta(o);
  if (!m) return undefined;
  const zone = m.labels[ZONE_LABEL];
  const region = m.labels[REGION_LABEL];
  const subzone = m.labels[SUBZONE_LABEL];
  return {
    name: m.name,
    ...(zone ? { zone } : {}),
    ...(region ? { region } : {}),
    ...(subzone ? { subzone } : {}),
  };
}

export function trimExport(o: Json): ExportRecord | undefined {
  const m = meta(o);
  if (!m) return undefined;
  return { namespace: m.namespace, name: m.name, createdAt: m.createdAt };
}

export const TRIM: { [K in ResourceKind]: (o: Json) => RecordOf[K] | undefined } = {
  services: trimService,
  endpointslices: trimSlice,
  nodes: trimNode,
  serviceexports: trimExport,
};

/** The object's key in its kind: namespace/name, or name for cluster-scoped objects. */
export function objectKey(o: Json): string | undefined {
  const m = obj(o.metadata);
  const name = str(m.name);
  if (!name) return undefined;
  const ns = str(m.namespace);
  return ns ? `${ns}/${name}` : name;
}

export function resourceVersionOf(o: Json): string | undefined {
  return str(obj(o.metadata).resourceVersion);
}

/** Records are built field by field in a fixed order, so equal records serialize equally. */
export function sameRecord(a: unknown, b: unknown): boolean {
  return a === b || JSON.stringify(a) === JSON.stringify(b);
}
