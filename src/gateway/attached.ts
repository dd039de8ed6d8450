// What route compilation hands the proxy: per fedgate listener, the rules of every
// route attached to a Gateway listener mapped onto it, each backendRef resolved to a
// federated service (or to why it cannot be used), grouped by the hostnames the
// route's and the listener's hostnames intersect to. Matching (precedence, filters,
// weights) works on this and nothing else; status reads the compilation's report.
import type { GRPCRouteMatch, HTTPRouteFilter, HTTPRouteMatch } from '../watch/gateway-records.ts';

/** A route as status, explain and the `route` metric label name it. */
export interface RouteId {
  readonly kind: 'HTTPRoute' | 'GRPCRoute';
  readonly namespace: string;
  readonly name: string;
}

/** Why a backendRef cannot be used: the spec's ResolvedRefs reasons. */
export type BackendProblem =
  | 'BackendNotFound'
  | 'RefNotPermitted'
  | 'InvalidKind'
  | 'UnsupportedValue';

/** A backendRef resolved: the federated service it names, or why it cannot be used. */
export interface ResolvedBackend {
  /** `namespace/name` of the federated service; absent when `problem` says why not (its share answers 500). */
  readonly serviceKey?: string;
  readonly port?: number;
  readonly weight: number;
  readonly filters: readonly HTTPRouteFilter[];
  readonly problem?: { readonly reason: BackendProblem; readonly message: string };
}

export interface AttachedRule {
  readonly route: RouteId;
  /** The rule's index in its route, and its name when it has one. */
  readonly index: number;
  readonly name?: string;
  /** The route's creationTimestamp (ms): the spec's first tie-breaker across routes. */
  readonly createdAt: number;
  /** An HTTPRoute rule's matches (defaulted: at least one). */
  readonly http?: readonly HTTPRouteMatch[];
  /** A GRPCRoute rule's matches (empty: every call). */
  readonly grpc?: readonly GRPCRouteMatch[];
  readonly filters: readonly HTTPRouteFilter[];
  /** Empty: the rule answers 500 (no backendRefs and no redirect). */
  readonly backends: readonly ResolvedBackend[];
  readonly timeouts?: { readonly requestMs?: number; readonly backendRequestMs?: number };
  readonly retry?: {
    readonly codes: readonly number[];
    readonly attempts?: number;
    readonly backoffMs?: number;
  };
}

/** The rules for one hostname on one fedgate listener. */
export interface HostRules {
  /** A host name, a wildcard (`*.example.test`), or '' for any host. */
  readonly hostname: string;
  readonly rules: readonly AttachedRule[];
}

/** What one fedgate listener serves under the Gateway API. */
export interface ListenerTable {
  /** The fedgate listen address, as written in http.listen or http.tls.listen. */
  readonly address: string;
  readonly tls: boolean;
  /**
   * The port of the Gateway listeners mapped onto it, when they share one: what clients
   * see (a Service in front may map it to fedgate's own port), so a redirect that names
   * no port keeps it. Absent when several ports share this fedgate listener.
   */
  readonly gatewayPort?: number;
  readonly hosts: readonly HostRules[];
  /**
   * A TLS listener's certificates from programmed HTTPS Gateway listeners'
   * certificateRefs (PEM, checked): served for SNI names matching `hostname`
   * (a wildcard, or '' for any), most specific first.
   */
  readonly certificates?: readonly ListenerCertificate[];
}

/** One Secret's certificate for the SNI names a Gateway listener's hostname matches. */
export interface ListenerCertificate {
  /** The Gateway listener's hostname: exact, a wildcard, or '' for any name. */
  readonly hostname: string;
  /** PEM: the chain, then the private key. */
  readonly cert: string;
  readonly key: string;
}

/** Every fedgate listener's routes; hosts with no route keep Host routing. */
export interface RouteTables {
  readonly listeners: readonly ListenerTable[];
}
