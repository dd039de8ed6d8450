// References out of Gateway API objects: backendRefs to federated services and
// listeners' certificateRefs to TLS Secrets, with ReferenceGrant (v1beta1) deciding
// which cross-namespace references are allowed. A grant lives in the namespace
// referred to and names who may refer (group, kind, namespace) and to what (group,
// kind, and optionally name).
import type {
  HTTPBackendRef,
  ObjectRef,
  ReferenceGrantRecord,
  TlsSecretRecord,
} from '../watch/gateway-records.ts';
import type { BackendProblem, ResolvedBackend, RouteId } from './attached.ts';
import type { FederatedServiceLookup } from './inputs.ts';

export const GATEWAY_GROUP = 'gateway.networking.k8s.io';
/** ServiceImport's group (GEP-1748: a backendRef to a ServiceImport is the federated service). */
export const MCS_GROUP = 'multicluster.x-k8s.io';

export interface GroupKindNamespace {
  readonly group: string;
  readonly kind: string;
  readonly namespace: string;
}

/** Does a ReferenceGrant in the target's namespace let `from` refer to the target? */
export function grantAllows(
  grants: readonly ReferenceGrantRecord[],
  from: GroupKindNamespace,
  to: GroupKindNamespace & { readonly name: string },
): boolean {
  return grants.some(
    (g) =>
      g.namespace === to.namespace &&
      g.from.some(
        (f) => f.group === from.group && f.kind === from.kind && f.namespace === from.namespace,
      ) &&
      g.to.some(
        (t) =>
          t.group === to.group &&
          t.kind === to.kind &&
          (t.name === undefined || t.name === '' || t.name === to.name),
      ),
  );
}

const problem = (
  ref: HTTPBackendRef,
  reason: BackendProblem,
  message: string,
): ResolvedBackend => ({
  weight: ref.weight,
  filters: ref.filters,
  ...(ref.port !== undefined ? { port: ref.port } : {}),
  problem: { reason, message },
});

const describe = (ref: ObjectRef, namespace: string): string =>
  `${ref.kind} ${namespace}/${ref.name}`;

/**
 * A backendRef resolved to the federated service it names, or to why it cannot be
 * used: InvalidKind (not a Service or ServiceImport), RefNotPermitted (another
 * namespace and no grant), UnsupportedValue (a Service without a port; the CRD
 * rejects it, a trimmed record may still carry it), BackendNotFound (no such
 * federated service, or it has no such port).
 */
export function resolveBackend(
  ref: HTTPBackendRef,
  route: RouteId,
  services: FederatedServiceLookup,
  grants: readonly ReferenceGrantRecord[],
): ResolvedBackend {
  const namespace = ref.namespace ?? route.namespace;
  const isService = ref.group === '' && ref.kind === 'Service';
  const isImport = ref.group === MCS_GROUP && ref.kind === 'ServiceImport';
  if (!isService && !isImport) {
    const gk = ref.group === '' ? ref.kind : `${ref.kind}.${ref.group}`;
    return problem(
      ref,
      'InvalidKind',
      `backendRef kind ${gk} is not supported (Service or ServiceImport.${MCS_GROUP})`,
    );
  }
  if (
    namespace !== route.namespace &&
    !grantAllows(
      grants,
      { group: GATEWAY_GROUP, kind: route.kind, namespace: route.namespace },
      { group: ref.group, kind: ref.kind, namespace, name: ref.name },
    )
  ) {
    return problem(
      ref,
      'RefNotPermitted',
      `${describe(ref, namespace)} is in another namespace and no ReferenceGrant there allows ${route.kind}s of ${route.namespace} to refer to it`,
    );
  }
  const service = services(namespace, ref.name);
  if (isService && ref.port === undefined) {
    return problem(
      ref,
      'UnsupportedValue',
      `backendRef to ${describe(ref, namespace)} has no port`,
    );
  }
  if (service === undefined) {
    return problem(
      ref,
      'BackendNotFound',
      `${describe(ref, namespace)}: no such federated service`,
    );
  }
  let port = ref.port;
  if (port === undefined) {
    // A ServiceImport may leave the port out when the service has only one.
    const only = service.ports.length === 1 ? service.ports[0] : undefined;
    if (only === undefined) {
      return problem(
        ref,
        'UnsupportedValue',
        `backendRef to ${describe(ref, namespace)} has no port and the service has ${service.ports.length}`,
      );
    }
    port = only.port;
  }
  const wanted = port;
  if (!service.ports.some((p) => p.port === wanted)) {
    return problem(ref, 'BackendNotFound', `${describe(ref, namespace)} has no port ${wanted}`);
  }
  return { serviceKey: `${namespace}/${ref.name}`, port, weight: ref.weight, filters: ref.filters };
}

/** Why a listener's certificateRef cannot be used, or undefined when it can. */
export function certificateRefProblem(
  ref: ObjectRef,
  gatewayNamespace: string,
  grants: readonly ReferenceGrantRecord[],
  secrets: ReadonlyMap<string, TlsSecretRecord>,
):
  | { readonly reason: 'InvalidCertificateRef' | 'RefNotPermitted'; readonly message: string }
  | undefined {
  const namespace = ref.namespace ?? gatewayNamespace;
  if (ref.group !== '' || ref.kind !== 'Secret') {
    return {
      reason: 'InvalidCertificateRef',
      message: `certificateRef kind ${ref.kind} is not supported (Secret)`,
    };
  }
  if (
    namespace !== gatewayNamespace &&
    !grantAllows(
      grants,
      { group: GATEWAY_GROUP, kind: 'Gateway', namespace: gatewayNamespace },
      { group: '', kind: 'Secret', namespace, name: ref.name },
    )
  ) {
    return {
      reason: 'RefNotPermitted',
      message: `Secret ${namespace}/${ref.name} is in another namespace and no ReferenceGrant there allows Gateways of ${gatewayNamespace} to refer to it`,
    };
  }
  if (!secrets.has(`${namespace}/${ref.name}`)) {
    return {
      reason: 'InvalidCertificateRef',
      message: `Secret ${namespace}/${ref.name}: no such kubernetes.io/tls Secret`,
    };
  }
  return undefined;
}
