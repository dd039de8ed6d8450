// Gateway API objects (and the Namespaces and TLS Secrets they name), as JSON off the
// wire, trimmed into gateway-records.ts's records with the CRDs' defaults applied
// (gateway-api v1.6.3, config/crd/standard). A malformed object yields undefined:
// skipped, never fatal. Each record names the cluster it was read from.
import type {
  GatewayClassRecord,
  GatewayObjectMeta,
  GatewayRecord,
  GatewayRecordOf,
  GatewayResourceKind,
  GRPCRouteRecord,
  HTTPRouteRecord,
  LabelSelector,
  LabelSelectorRequirement,
  ListenerRecord,
  NamespaceRecord,
  ParentRef,
  ReferenceGrantRecord,
  TlsSecretRecord,
} from './gateway-records.ts';
import { grpcRules, httpRules, Malformed, objectRef } from './route-trim.ts';
import { arr, type Json, obj, str, strMap, timestamp } from './trim.ts';

export const GATEWAY_GROUP = 'gateway.networking.k8s.io';
export const TLS_SECRET_TYPE = 'kubernetes.io/tls';

/** Where each kind is listed and watched; Secrets only of type kubernetes.io/tls. */
export const GATEWAY_RESOURCE_PATHS: Record<
  GatewayResourceKind,
  { path: string; params: Record<string, string> }
> = {
  gatewayclasses: { path: `/apis/${GATEWAY_GROUP}/v1/gatewayclasses`, params: {} },
  gateways: { path: `/apis/${GATEWAY_GROUP}/v1/gateways`, params: {} },
  httproutes: { path: `/apis/${GATEWAY_GROUP}/v1/httproutes`, params: {} },
  grpcroutes: { path: `/apis/${GATEWAY_GROUP}/v1/grpcroutes`, params: {} },
  referencegrants: { path: `/apis/${GATEWAY_GROUP}/v1beta1/referencegrants`, params: {} },
  namespaces: { path: '/api/v1/namespaces', params: {} },
  secrets: { path: '/api/v1/secrets', params: { fieldSelector: `type=${TLS_SECRET_TYPE}` } },
};

function meta(cluster: string, o: Json): GatewayObjectMeta | undefined {
  const m = obj(o.metadata);
  const name = str(m.name);
  if (!name) return undefined;
  return {
    cluster,
    namespace: str(m.namespace) ?? '',
    name,
    generation: typeof m.generation === 'number' ? m.generation : 0,
    createdAt: timestamp(m.creationTimestamp),
    uid: str(m.uid) ?? '',
  };
}

/** Runs a trimmer whose parts throw Malformed: a malformed object is skipped. */
function guarded<R>(cluster: string, o: Json, body: (m: GatewayObjectMeta, spec: Json) => R) {
  const m = meta(cluster, o);
  if (!m) return undefined;
  try {
    return body(m, obj(o.spec));
  } catch (e) {
    if (e instanceof Malformed) return undefined;
    throw e;
  }
}

export function trimGatewayClass(cluster: string, o: Json): GatewayClassRecord | undefined {
  return guarded(cluster, o, (m, spec) => {
    const controllerName = str(spec.controllerName);
    return controllerName ? { ...m, controllerName } : undefined;
  });
}

function labelSelector(v: unknown): LabelSelector {
  const s = obj(v);
  const expressions: LabelSelectorRequirement[] = arr(s.matchExpressions)
    .map(obj)
    .map((e) => {
      const operator = e.operator;
      if (
        operator !== 'In' &&
        operator !== 'NotIn' &&
        operator !== 'Exists' &&
        operator !== 'DoesNotExist'
      )
        throw new Malformed(`selector operator ${String(operator)}`);
      const key = str(e.key);
      if (!key) throw new Malformed('a selector requirement without a key');
      return {
        key,
        operator,
        values: arr(e.values).filter((x): x is string => typeof x === 'string'),
      };
    });
  return { matchLabels: strMap(s.matchLabels), matchExpressions: expressions };
}

function listener(o: Json): ListenerRecord {
  const name = str(o.name);
  const protocol = str(o.protocol);
  if (!name || !protocol || typeof o.port !== 'number') throw new Malformed('listener');
  const hostname = str(o.hostname);
  const allowed = obj(o.allowedRoutes);
  const ns = obj(allowed.namespaces);
  const from = ns.from ?? 'Same';
  if (from !== 'Same' && from !== 'All' && from !== 'Selector')
    throw new Malformed(`allowedRoutes from ${String(from)}`);
  const tls = o.tls === undefined || o.tls === null ? undefined : obj(o.tls);
  const mode = tls?.mode ?? 'Terminate';
  if (mode !== 'Terminate' && mode !== 'Passthrough')
    throw new Malformed(`tls mode ${String(mode)}`);
  return {
    name,
    ...(hostname ? { hostname } : {}),
    port: o.port,
    protocol,
    ...(tls
      ? {
          tls: {
            mode,
            certificateRefs: arr(tls.certificateRefs)
              .map(obj)
              .map((r) => objectRef(r, '', 'Secret')),
          },
        }
      : {}),
    allowedRoutes: {
      from,
      ...(from === 'Selector' && ns.selector !== undefined
        ? { selector: labelSelector(ns.selector) }
        : {}),
      kinds: arr(allowed.kinds)
        .map(obj)
        .map((k) => ({
          group: typeof k.group === 'string' ? k.group : GATEWAY_GROUP,
          kind: str(k.kind) ?? '',
        }))
        .filter((k) => k.kind !== ''),
    },
  };
}

export function trimGateway(cluster: string, o: Json): GatewayRecord | undefined {
  return guarded(cluster, o, (m, spec) => {
    const gatewayClassName = str(spec.gatewayClassName);
    if (!gatewayClassName) return undefined;
    return { ...m, gatewayClassName, listeners: arr(spec.listeners).map(obj).map(listener) };
  });
}

function parentRefs(spec: Json): ParentRef[] {
  return arr(spec.parentRefs)
    .map(obj)
    .map((p) => {
      const sectionName = str(p.sectionName);
      return {
        ...objectRef(p, GATEWAY_GROUP, 'Gateway'),
        ...(sectionName ? { sectionName } : {}),
        ...(typeof p.port === 'number' ? { port: p.port } : {}),
      };
    });
}

function hostnames(spec: Json): string[] {
  return arr(spec.hostnames).filter((h): h is string => typeof h === 'string' && h !== '');
}

export function trimHTTPRoute(cluster: string, o: Json): HTTPRouteRecord | undefined {
  return guarded(cluster, o, (m, spec) => ({
    ...m,
    parentRefs: parentRefs(spec),
    hostnames: hostnames(spec),
    rules: httpRules(spec),
  }));
}

export function trimGRPCRoute(cluster: string, o: Json): GRPCRouteRecord | undefined {
  return guarded(cluster, o, (m, spec) => ({
    ...m,
    parentRefs: parentRefs(spec),
    hostnames: hostnames(spec),
    rules: grpcRules(spec),
  }));
}

export function trimReferenceGrant(cluster: string, o: Json): ReferenceGrantRecord | undefined {
  return guarded(cluster, o, (m, spec) => ({
    ...m,
    from: arr(spec.from)
      .map(obj)
      .map((f) => {
        const kind = str(f.kind);
        const namespace = str(f.namespace);
        if (!kind || !namespace) throw new Malformed('a grant from no kind or namespace');
        return { group: typeof f.group === 'string' ? f.group : '', kind, namespace };
      }),
    to: arr(spec.to)
      .map(obj)
      .map((t) => {
        const kind = str(t.kind);
        if (!kind) throw new Malformed('a grant to no kind');
        const name = str(t.name);
        return {
          group: typeof t.group === 'string' ? t.group : '',
          kind,
          ...(name ? { name } : {}),
        };
      }),
  }));
}

export function trimNamespace(cluster: string, o: Json): NamespaceRecord | undefined {
  const m = meta(cluster, o);
  return m ? { ...m, labels: strMap(obj(o.metadata).labels) } : undefined;
}

/** A TLS Secret's PEM pair; any other Secret, or one missing either half, is not kept. */
export function trimTlsSecret(cluster: string, o: Json): TlsSecretRecord | undefined {
  if (o.type !== TLS_SECRET_TYPE) return undefined;
  const m = meta(cluster, o);
  const data = obj(o.data);
  const cert = str(data['tls.crt']);
  const key = str(data['tls.key']);
  if (!m || !cert || !key) return undefined;
  return {
    ...m,
    cert: Buffer.from(cert, 'base64').toString('utf8'),
    key: Buffer.from(key, 'base64').toString('utf8'),
  };
}

export const GATEWAY_TRIM: {
  [K in GatewayResourceKind]: (cluster: string, o: Json) => GatewayRecordOf[K] | undefined;
} = {
  gatewayclasses: trimGatewayClass,
  gateways: trimGateway,
  httproutes: trimHTTPRoute,
  grpcroutes: trimGRPCRoute,
  referencegrants: trimReferenceGrant,
  namespaces: trimNamespace,
  secrets: trimTlsSecret,
};
