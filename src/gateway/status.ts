// The status compilation reports, as plain data: per object (kind, cluster,
// namespace, name) the `status` body the Gateway API expects, so a writer can
// compare it with what the API server holds and patch only differences. Conditions
// carry no lastTransitionTime: the writer keeps the old one when type, status and
// reason are unchanged, and stamps a new one otherwise.
import type { ParentRef, RouteGroupKind } from '../watch/gateway-records.ts';
import { compareText } from './copies.ts';
import type { GatewayAddress } from './inputs.ts';

export interface Condition {
  readonly type: string;
  readonly status: 'True' | 'False' | 'Unknown';
  readonly reason: string;
  readonly message: string;
  readonly observedGeneration: number;
}

export interface ListenerStatus {
  readonly name: string;
  readonly supportedKinds: readonly RouteGroupKind[];
  readonly attachedRoutes: number;
  readonly conditions: readonly Condition[];
}

export interface RouteParentStatus {
  /** The parentRef as the route wrote it (defaults applied). */
  readonly parentRef: ParentRef;
  readonly controllerName: string;
  readonly conditions: readonly Condition[];
}

interface Target {
  readonly cluster: string;
  /** '' for a GatewayClass. */
  readonly namespace: string;
  readonly name: string;
}

export interface GatewayClassStatusReport extends Target {
  readonly kind: 'GatewayClass';
  readonly status: { readonly conditions: readonly Condition[] };
}

export interface GatewayStatusReport extends Target {
  readonly kind: 'Gateway';
  readonly status: {
    readonly addresses: readonly GatewayAddress[];
    readonly conditions: readonly Condition[];
    readonly listeners: readonly ListenerStatus[];
  };
}

export interface RouteStatusReport extends Target {
  readonly kind: 'HTTPRoute' | 'GRPCRoute';
  /**
   * Only the entries of fedgate's controller (controllerName fedgate.io/gateway-controller):
   * the writer keeps other controllers' entries as they are.
   */
  readonly status: { readonly parents: readonly RouteParentStatus[] };
}

export type ObjectStatusReport = GatewayClassStatusReport | GatewayStatusReport | RouteStatusReport;

/** Every status compilation computed, in a stable order (kind, cluster, namespace, name). */
export interface StatusReport {
  readonly objects: readonly ObjectStatusReport[];
}

/** A condition of an object read at `generation`. */
export function condition(
  generation: number,
  type: string,
  ok: boolean,
  reason: string,
  message: string,
): Condition {
  return { type, status: ok ? 'True' : 'False', reason, message, observedGeneration: generation };
}

const KIND_ORDER = { GatewayClass: 0, Gateway: 1, HTTPRoute: 2, GRPCRoute: 3 } as const;

/** The report's order: deterministic, whatever order the objects came in. */
export function compareReports(a: ObjectStatusReport, b: ObjectStatusReport): number {
  return (
    KIND_ORDER[a.kind] - KIND_ORDER[b.kind] ||
    compareText(a.cluster, b.cluster) ||
    compareText(a.namespace, b.namespace) ||
    compareText(a.name, b.name)
  );
}
