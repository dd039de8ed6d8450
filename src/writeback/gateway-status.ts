// Gateway API status as the writer writes it: route compilation's report
// (src/gateway/status.ts, plain data without condition times) made into the status
// each object should hold, given what it holds now. fedgate's GatewayClasses and
// Gateways are its own: their status is the report's, beside any other field. A route
// may have parents of other controllers: their entries are kept as they are, and
// fedgate's are replaced by the report's.
import type { ObjectStatusReport } from '../gateway/status.ts';
import { GATEWAY_CONTROLLER } from '../watch/gateway-records.ts';
import type { Gvr, KubeObject, ObjectRef } from './kube-api.ts';

const GROUP = 'gateway.networking.k8s.io';

export const GATEWAY_GVRS: Record<ObjectStatusReport['kind'], Gvr> = {
  GatewayClass: { group: GROUP, version: 'v1', resource: 'gatewayclasses' },
  Gateway: { group: GROUP, version: 'v1', resource: 'gateways' },
  HTTPRoute: { group: GROUP, version: 'v1', resource: 'httproutes' },
  GRPCRoute: { group: GROUP, version: 'v1', resource: 'grpcroutes' },
};

/** Where the report's object is: a GatewayClass is cluster-scoped (namespace ""). */
export function gatewayRef(report: ObjectStatusReport): ObjectRef {
  return { gvr: GATEWAY_GVRS[report.kind], namespace: report.namespace, name: report.name };
}

/** The status `current` should hold, by `report`. */
export function gatewayStatus(
  report: ObjectStatusReport,
  current: KubeObject,
): Record<string, unknown> {
  const held = (current.status ?? {}) as Record<string, unknown>;
  if (report.kind !== 'HTTPRoute' && report.kind !== 'GRPCRoute') {
    return { ...held, ...report.status };
  }
  const parents = Array.isArray(held.parents)
    ? (held.parents as { controllerName?: unknown }[])
    : [];
  const others = parents.filter((p) => p.controllerName !== GATEWAY_CONTROLLER);
  return { ...held, parents: [...others, ...report.status.parents] };
}
