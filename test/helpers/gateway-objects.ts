// Gateway API objects for tests: builders of the records of
// src/watch/gateway-records.ts with the CRDs' defaults, and a reader of conformance
// manifests (test/fixtures/gateway-conformance/) into those records, with the
// federated services their Service documents declare.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { type Compiled, compileGateways } from '../../src/gateway/compile.ts';
import type {
  FederatedServiceLookup,
  FederatedServicePorts,
  GatewayAddress,
  GatewayListenerMapping,
} from '../../src/gateway/inputs.ts';
import type {
  Condition,
  GatewayStatusReport,
  RouteStatusReport,
} from '../../src/gateway/status.ts';
import { makeClusterPki } from '../../src/localfed/pki.ts';
import {
  GATEWAY_CONTROLLER,
  type GatewayClassRecord,
  type GatewayObjects,
  type GatewayRecord,
  type GRPCRouteRecord,
  type HTTPBackendRef,
  type HTTPRouteFilter,
  type HTTPRouteMatch,
  type HTTPRouteRecord,
  type HTTPRouteRule,
  type ListenerRecord,
  type NamespaceRecord,
  type ParentRef,
  type ReferenceGrantRecord,
  type TlsSecretRecord,
} from '../../src/watch/gateway-records.ts';

const GATEWAY_GROUP = 'gateway.networking.k8s.io';
export const CLASS_NAME = 'fedgate';

const FIXTURES = join(fileURLToPath(import.meta.url), '../../fixtures/gateway-conformance');

interface Meta {
  cluster?: string;
  namespace?: string;
  name: string;
  generation?: number;
  createdAt?: number;
}

const meta = (m: Meta, namespaced = true) => ({
  cluster: m.cluster ?? 'east',
  namespace: namespaced ? (m.namespace ?? 'default') : '',
  name: m.name,
  generation: m.generation ?? 1,
  createdAt: m.createdAt ?? 0,
  uid: `${m.cluster ?? 'east'}/${m.namespace ?? ''}/${m.name}`,
});

export const emptyObjects = (): GatewayObjects => ({
  gatewayClasses: [],
  gateways: [],
  httpRoutes: [],
  grpcRoutes: [],
  referenceGrants: [],
  namespaces: [],
  secrets: [],
});

export function gatewayClass(
  m: Partial<Meta> = {},
  controllerName = GATEWAY_CONTROLLER,
): GatewayClassRecord {
  return { ...meta({ name: CLASS_NAME, ...m }, false), controllerName };
}

export function listener(l: Partial<ListenerRecord> & { name?: string }): ListenerRecord {
  return {
    name: 'http',
    port: 80,
    protocol: 'HTTP',
    ...l,
    allowedRoutes: { from: 'Same', kinds: [], ...l.allowedRoutes },
  };
}

export function gateway(
  m: Meta,
  listeners: ListenerRecord[],
  className = CLASS_NAME,
): GatewayRecord {
  return { ...meta(m), gatewayClassName: className, listeners };
}

export function parentRef(p: Partial<ParentRef> & { name: string }): ParentRef {
  return { group: GATEWAY_GROUP, kind: 'Gateway', ...p };
}

export function backendRef(b: Partial<HTTPBackendRef> & { name: string }): HTTPBackendRef {
  return { group: '', kind: 'Service', weight: 1, filters: [], ...b };
}

const DEFAULT_MATCH: HTTPRouteMatch = {
  path: { type: 'PathPrefix', value: '/' },
  headers: [],
  queryParams: [],
};

export function rule(r: Partial<HTTPRouteRule> = {}): HTTPRouteRule {
  return { matches: [DEFAULT_MATCH], filters: [], backendRefs: [], ...r };
}

export function httpRoute(
  m: Meta,
  r: { parentRefs: ParentRef[]; hostnames?: string[]; rules?: HTTPRouteRule[] },
): HTTPRouteRecord {
  return {
    ...meta(m),
    parentRefs: r.parentRefs,
    hostnames: r.hostnames ?? [],
    rules: r.rules ?? [rule()],
  };
}

export function grpcRoute(
  m: Meta,
  r: Omit<GRPCRouteRecord, keyof ReturnType<typeof meta>>,
): GRPCRouteRecord {
  return { ...meta(m), ...r };
}

export function namespace(
  name: string,
  labels: Record<string, string> = {},
  cluster = 'east',
): NamespaceRecord {
  return {
    ...meta({ name, cluster }, false),
    labels: { 'kubernetes.io/metadata.name': name, ...labels },
  };
}

/** A real certificate and key (compilation checks a Secret's PEM), made once per test file. */
export const FIXTURE_PEM = await makeClusterPki('fixture', ['*.example.test']).then((p) => ({
  cert: p.serverCert,
  key: p.serverKey,
}));

export function tlsSecret(
  m: Meta,
  pem: { cert: string; key: string } = FIXTURE_PEM,
): TlsSecretRecord {
  return { ...meta(m), ...pem };
}

export function referenceGrant(
  m: Meta,
  from: ReferenceGrantRecord['from'],
  to: ReferenceGrantRecord['to'],
): ReferenceGrantRecord {
  return { ...meta(m), from, to };
}

/** A lookup over `namespace/name` → ports. */
export function serviceLookup(services: Record<string, number[]>): FederatedServiceLookup {
  return (ns, name) => {
    const ports = services[`${ns}/${name}`];
    return ports === undefined ? undefined : { ports: ports.map((port) => ({ port })) };
  };
}

// ---- conformance manifests → records ----

// biome-ignore lint/suspicious/noExplicitAny: API objects as parsed from YAML
type Obj = any;

function trimListener(l: Obj): ListenerRecord {
  const ns = l.allowedRoutes?.namespaces ?? {};
  const selector = ns.selector;
  return {
    name: l.name,
    port: l.port,
    protocol: l.protocol,
    ...(l.hostname !== undefined ? { hostname: l.hostname } : {}),
    ...(l.tls !== undefined
      ? {
          tls: {
            mode: l.tls.mode ?? 'Terminate',
            certificateRefs: (l.tls.certificateRefs ?? []).map((c: Obj) => ({
              group: c.group ?? '',
              kind: c.kind ?? 'Secret',
              name: c.name,
              ...(c.namespace !== undefined ? { namespace: c.namespace } : {}),
            })),
          },
        }
      : {}),
    allowedRoutes: {
      from: ns.from ?? 'Same',
      ...(selector !== undefined
        ? {
            selector: {
              matchLabels: selector.matchLabels ?? {},
              matchExpressions: (selector.matchExpressions ?? []).map((e: Obj) => ({
                values: [],
                ...e,
              })),
            },
          }
        : {}),
      kinds: (l.allowedRoutes?.kinds ?? []).map((k: Obj) => ({
        group: k.group ?? GATEWAY_GROUP,
        kind: k.kind,
      })),
    },
  };
}

const KNOWN_FILTERS = new Set([
  'RequestHeaderModifier',
  'ResponseHeaderModifier',
  'RequestRedirect',
  'URLRewrite',
  'RequestMirror',
  'ExtensionRef',
]);

function trimFilter(f: Obj): HTTPRouteFilter {
  return KNOWN_FILTERS.has(f.type) ? f : { type: 'Unknown', written: f.type };
}

function trimBackendRef(b: Obj): HTTPBackendRef {
  return backendRef({ ...b, filters: (b.filters ?? []).map(trimFilter) });
}

function trimRule(r: Obj): HTTPRouteRule {
  return rule({
    ...(r.name !== undefined ? { name: r.name } : {}),
    matches: (r.matches ?? [{}]).map((m: Obj) => ({
      path: { type: 'PathPrefix', value: '/', ...m.path },
      headers: (m.headers ?? []).map((h: Obj) => ({ type: 'Exact', ...h })),
      queryParams: (m.queryParams ?? []).map((q: Obj) => ({ type: 'Exact', ...q })),
      ...(m.method !== undefined ? { method: m.method } : {}),
    })),
    filters: (r.filters ?? []).map(trimFilter),
    backendRefs: (r.backendRefs ?? []).map(trimBackendRef),
  });
}

export interface ManifestObjects {
  readonly objects: GatewayObjects;
  readonly services: FederatedServiceLookup;
}

/**
 * The records of conformance manifests (file names under
 * test/fixtures/gateway-conformance/), as the watchers would emit them from one
 * cluster: `{GATEWAY_CLASS_NAME}` is fedgate's class, each object is created one
 * second after the one before, in file order, and Namespaces carry the
 * kubernetes.io/metadata.name label the API server adds.
 */
export function conformanceObjects(files: readonly string[], cluster = 'east'): ManifestObjects {
  const out = {
    gatewayClasses: [gatewayClass({ cluster })],
    gateways: [] as GatewayRecord[],
    httpRoutes: [] as HTTPRouteRecord[],
    grpcRoutes: [] as GRPCRouteRecord[],
    referenceGrants: [] as ReferenceGrantRecord[],
    namespaces: [] as NamespaceRecord[],
    secrets: [] as TlsSecretRecord[],
  };
  const services = new Map<string, FederatedServicePorts>();
  let createdAt = 1_700_000_000_000;
  for (const file of files) {
    const text = readFileSync(join(FIXTURES, file), 'utf8').replaceAll(
      '{GATEWAY_CLASS_NAME}',
      CLASS_NAME,
    );
    for (const doc of parseAllDocuments(text)) {
      const o: Obj = doc.toJSON();
      if (o === null || typeof o !== 'object') continue;
      createdAt += 1000;
      const m = {
        cluster,
        name: o.metadata.name,
        namespace: o.metadata.namespace ?? 'default',
        generation: o.metadata.generation ?? 1,
        createdAt,
      };
      const spec = o.spec ?? {};
      switch (o.kind) {
        case 'Namespace':
          out.namespaces.push(namespace(o.metadata.name, o.metadata.labels ?? {}, cluster));
          break;
        case 'Service':
          services.set(`${m.namespace}/${m.name}`, {
            ports: (spec.ports ?? []).map((p: Obj) => ({ name: p.name, port: p.port })),
          });
          break;
        case 'Gateway':
          out.gateways.push(gateway(m, spec.listeners.map(trimListener), spec.gatewayClassName));
          break;
        case 'HTTPRoute':
          out.httpRoutes.push(
            httpRoute(m, {
              parentRefs: (spec.parentRefs ?? []).map((p: Obj) => parentRef(p)),
              hostnames: spec.hostnames ?? [],
              rules: (spec.rules ?? [{}]).map(trimRule),
            }),
          );
          break;
        case 'ReferenceGrant':
          out.referenceGrants.push(
            referenceGrant(
              m,
              spec.from,
              spec.to.map((t: Obj) => ({
                group: t.group,
                kind: t.kind,
                ...(t.name !== undefined ? { name: t.name } : {}),
              })),
            ),
          );
          break;
        default:
          throw new Error(
            `conformanceObjects: ${file} has a ${o.kind}, which this reader does not convert`,
          );
      }
    }
  }
  return { objects: out, services: (ns, name) => services.get(`${ns}/${name}`) };
}

// ---- compiling a handful of records ----

export const HTTP_ADDRESS = '127.220.0.1:8080';
export const HTTPS_ADDRESS = '127.220.0.1:8443';

export const MAPPINGS: GatewayListenerMapping[] = [
  { port: 80, protocol: 'HTTP', address: HTTP_ADDRESS },
  { port: 443, protocol: 'HTTPS', address: HTTPS_ADDRESS },
];

/** compileGateways over these records, fedgate's GatewayClass added, ports 80/443 mapped. */
export function compileObjects(
  objects: Partial<GatewayObjects>,
  services: FederatedServiceLookup = serviceLookup({}),
  options: { listeners?: GatewayListenerMapping[]; addresses?: GatewayAddress[] } = {},
): Compiled {
  return compileGateways({
    objects: { ...emptyObjects(), gatewayClasses: [gatewayClass()], ...objects },
    services,
    listeners: options.listeners ?? MAPPINGS,
    addresses: options.addresses ?? [{ type: 'IPAddress', value: '127.220.0.1' }],
  });
}

export function gatewayStatus(
  c: Compiled,
  name: string,
  namespace = 'default',
  cluster = 'east',
): GatewayStatusReport {
  const g = c.status.objects.find(
    (o) =>
      o.kind === 'Gateway' && o.name === name && o.namespace === namespace && o.cluster === cluster,
  );
  if (g?.kind !== 'Gateway')
    throw new Error(`no status for Gateway ${namespace}/${name} in ${cluster}`);
  return g;
}

export function routeStatus(
  c: Compiled,
  name: string,
  namespace = 'default',
  kind: 'HTTPRoute' | 'GRPCRoute' = 'HTTPRoute',
  cluster = 'east',
): RouteStatusReport {
  const r = c.status.objects.find(
    (o) => o.kind === kind && o.name === name && o.namespace === namespace && o.cluster === cluster,
  );
  if (r === undefined || (r.kind !== 'HTTPRoute' && r.kind !== 'GRPCRoute')) {
    throw new Error(`no status for ${kind} ${namespace}/${name} in ${cluster}`);
  }
  return r;
}

/** type → [status, reason] of some conditions, for compact assertions. */
export function conditionsByType(
  conditions: readonly Condition[],
): Record<string, [string, string]> {
  return Object.fromEntries(conditions.map((c) => [c.type, [c.status, c.reason]]));
}
