// The records the Gateway API watchers emit (gateway.networking.k8s.io v1 standard
// channel; ReferenceGrant v1beta1), trimmed at watch/'s edge like every other
// record: past watch/, nothing sees an API object. Each record keeps what route
// compilation, status and the proxy read, with the CRDs' defaults applied (a
// record reads the same whether the API server defaulted the field or the
// trimmer did), and the cluster it came from, so copies in several config
// clusters can be told apart (the oldest wins).

/** Where a Gateway API object was read, and what its status must cite. */
export interface GatewayObjectMeta {
  /** The member cluster (one of gatewayAPI.clusters) it was read from. */
  readonly cluster: string;
  /** '' for cluster-scoped kinds (GatewayClass, Namespace). */
  readonly namespace: string;
  readonly name: string;
  /** metadata.generation: what status's observedGeneration says was read. */
  readonly generation: number;
  /** creationTimestamp in ms: among copies that disagree, the oldest wins. */
  readonly createdAt: number;
  /** metadata.uid: a delete and create under the same name is another object. */
  readonly uid: string;
}

export interface LabelSelectorRequirement {
  readonly key: string;
  readonly operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';
  readonly values: readonly string[];
}

export interface LabelSelector {
  readonly matchLabels: Readonly<Record<string, string>>;
  readonly matchExpressions: readonly LabelSelectorRequirement[];
}

export interface GatewayClassRecord extends GatewayObjectMeta {
  readonly controllerName: string;
}

/** A reference to another object: group '' is core. */
export interface ObjectRef {
  readonly group: string;
  readonly kind: string;
  /** Absent: the referring object's own namespace. */
  readonly namespace?: string;
  readonly name: string;
}

export interface RouteGroupKind {
  readonly group: string;
  readonly kind: string;
}

export interface ListenerRecord {
  readonly name: string;
  readonly hostname?: string;
  readonly port: number;
  /** As written: HTTP, HTTPS, TLS, TCP, UDP or a domain-prefixed protocol. */
  readonly protocol: string;
  readonly tls?: {
    readonly mode: 'Terminate' | 'Passthrough';
    /** Default group '' and kind Secret. */
    readonly certificateRefs: readonly ObjectRef[];
  };
  readonly allowedRoutes: {
    /** Default Same. */
    readonly from: 'Same' | 'All' | 'Selector';
    readonly selector?: LabelSelector;
    /** Empty: the kinds the listener's protocol allows (HTTPRoute, GRPCRoute on HTTP/HTTPS). */
    readonly kinds: readonly RouteGroupKind[];
  };
}

export interface GatewayRecord extends GatewayObjectMeta {
  readonly gatewayClassName: string;
  readonly listeners: readonly ListenerRecord[];
}

/** A route's parentRef; defaults: group gateway.networking.k8s.io, kind Gateway. */
export interface ParentRef extends ObjectRef {
  readonly sectionName?: string;
  readonly port?: number;
}

export interface HeaderModifier {
  readonly set: readonly { readonly name: string; readonly value: string }[];
  readonly add: readonly { readonly name: string; readonly value: string }[];
  readonly remove: readonly string[];
}

export interface PathModifier {
  readonly type: 'ReplaceFullPath' | 'ReplacePrefixMatch';
  readonly replaceFullPath?: string;
  readonly replacePrefixMatch?: string;
}

/** A backendRef; defaults: group '' and kind Service, weight 1. */
export interface BackendRef extends ObjectRef {
  readonly port?: number;
  readonly weight: number;
}

export type HTTPRouteFilter =
  | { readonly type: 'RequestHeaderModifier'; readonly requestHeaderModifier: HeaderModifier }
  | { readonly type: 'ResponseHeaderModifier'; readonly responseHeaderModifier: HeaderModifier }
  | {
      readonly type: 'RequestRedirect';
      readonly requestRedirect: {
        readonly scheme?: string;
        readonly hostname?: string;
        readonly path?: PathModifier;
        readonly port?: number;
        /** Default 302. */
        readonly statusCode: number;
      };
    }
  | {
      readonly type: 'URLRewrite';
      readonly urlRewrite: { readonly hostname?: string; readonly path?: PathModifier };
    }
  | {
      readonly type: 'RequestMirror';
      readonly requestMirror: {
        readonly backendRef: Omit<BackendRef, 'weight'>;
        readonly percent?: number;
        readonly fraction?: { readonly numerator: number; readonly denominator: number };
      };
    }
  | { readonly type: 'ExtensionRef'; readonly extensionRef: ObjectRef }
  /** A type this version does not know: the rule is not accepted (UnsupportedValue). */
  | { readonly type: 'Unknown'; readonly written: string };

export interface HTTPBackendRef extends BackendRef {
  readonly filters: readonly HTTPRouteFilter[];
}

export interface StringMatch {
  readonly type: 'Exact' | 'RegularExpression';
  readonly name: string;
  readonly value: string;
}

export interface HTTPRouteMatch {
  /** Default { type: PathPrefix, value: '/' }. */
  readonly path: {
    readonly type: 'Exact' | 'PathPrefix' | 'RegularExpression';
    readonly value: string;
  };
  readonly headers: readonly StringMatch[];
  readonly queryParams: readonly StringMatch[];
  readonly method?: string;
}

export interface HTTPRouteRule {
  readonly name?: string;
  /** Default: one match, PathPrefix '/'. */
  readonly matches: readonly HTTPRouteMatch[];
  readonly filters: readonly HTTPRouteFilter[];
  readonly backendRefs: readonly HTTPBackendRef[];
  /** Gateway API durations as written (e.g. '10s', '500ms', '1h2m'). */
  readonly timeouts?: { readonly request?: string; readonly backendRequest?: string };
  readonly retry?: {
    readonly codes: readonly number[];
    readonly attempts?: number;
    readonly backoff?: string;
  };
}

export interface HTTPRouteRecord extends GatewayObjectMeta {
  readonly parentRefs: readonly ParentRef[];
  readonly hostnames: readonly string[];
  /** Default: one rule matching everything, no backends. */
  readonly rules: readonly HTTPRouteRule[];
}

export interface GRPCMethodMatch {
  /** Default Exact. */
  readonly type: 'Exact' | 'RegularExpression';
  readonly service?: string;
  readonly method?: string;
}

export interface GRPCRouteMatch {
  readonly method?: GRPCMethodMatch;
  readonly headers: readonly StringMatch[];
}

export type GRPCRouteFilter = Extract<
  HTTPRouteFilter,
  {
    readonly type:
      | 'RequestHeaderModifier'
      | 'ResponseHeaderModifier'
      | 'RequestMirror'
      | 'ExtensionRef'
      | 'Unknown';
  }
>;

export interface GRPCBackendRef extends BackendRef {
  readonly filters: readonly GRPCRouteFilter[];
}

export interface GRPCRouteRule {
  readonly name?: string;
  readonly matches: readonly GRPCRouteMatch[];
  readonly filters: readonly GRPCRouteFilter[];
  readonly backendRefs: readonly GRPCBackendRef[];
}

export interface GRPCRouteRecord extends GatewayObjectMeta {
  readonly parentRefs: readonly ParentRef[];
  readonly hostnames: readonly string[];
  readonly rules: readonly GRPCRouteRule[];
}

export interface ReferenceGrantRecord extends GatewayObjectMeta {
  readonly from: readonly {
    readonly group: string;
    readonly kind: string;
    readonly namespace: string;
  }[];
  /** name absent: every object of that kind in the grant's namespace. */
  readonly to: readonly { readonly group: string; readonly kind: string; readonly name?: string }[];
}

/** A Namespace's labels: what allowedRoutes' Selector reads. */
export interface NamespaceRecord extends GatewayObjectMeta {
  readonly labels: Readonly<Record<string, string>>;
}

/** A kubernetes.io/tls Secret a listener's certificateRefs names. */
export interface TlsSecretRecord extends GatewayObjectMeta {
  /** PEM. */
  readonly cert: string;
  readonly key: string;
}

export type GatewayResourceKind =
  | 'gatewayclasses'
  | 'gateways'
  | 'httproutes'
  | 'grpcroutes'
  | 'referencegrants'
  | 'namespaces'
  | 'secrets';

export interface GatewayRecordOf {
  gatewayclasses: GatewayClassRecord;
  gateways: GatewayRecord;
  httproutes: HTTPRouteRecord;
  grpcroutes: GRPCRouteRecord;
  referencegrants: ReferenceGrantRecord;
  namespaces: NamespaceRecord;
  secrets: TlsSecretRecord;
}

/** Every Gateway API object fedgate holds, from every config cluster: route compilation's input. */
export interface GatewayObjects {
  readonly gatewayClasses: readonly GatewayClassRecord[];
  readonly gateways: readonly GatewayRecord[];
  readonly httpRoutes: readonly HTTPRouteRecord[];
  readonly grpcRoutes: readonly GRPCRouteRecord[];
  readonly referenceGrants: readonly ReferenceGrantRecord[];
  readonly namespaces: readonly NamespaceRecord[];
  readonly secrets: readonly TlsSecretRecord[];
}

/** The controllerName fedgate's GatewayClasses name. */
export const GATEWAY_CONTROLLER = 'fedgate.io/gateway-controller';
