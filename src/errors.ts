// Stable error codes, and the one table that maps each to its protocol answers:
// the HTTP status the proxy (and localfed's control API) answers with, the gRPC
// status it answers a gRPC call with (the HTTP → gRPC mapping of the gRPC spec,
// except where fedgate knows more: a timeout is DEADLINE_EXCEEDED, a shortage of
// slots RESOURCE_EXHAUSTED), the rcode
// the DNS server answers with, and the exit code of the command that fails with it.
// Logs, metrics and the admin page show the code. Every column is read through its
// function below; a value a protocol never meets is what it would answer.

/** The DNS rcodes an error can answer with (NXDOMAIN and NOERROR are answers, not errors). */
export type ErrorRcode = 'FORMERR' | 'SERVFAIL' | 'NOTIMP' | 'REFUSED' | 'BADVERS';
/** 0 ok, 1 a runtime failure, 2 a usage or configuration error. */
export type ExitCode = 0 | 1 | 2;

/**
 * gRPC status codes by name (the gRPC spec's doc/statuscodes.md): what a gRPC call
 * fedgate fails itself is answered with, in a trailers-only response.
 */
export const GRPC_STATUS = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;
export type GrpcStatusName = keyof typeof GRPC_STATUS;

interface Answers {
  readonly http: number;
  readonly grpc: GrpcStatusName;
  readonly dnsRcode: ErrorRcode;
  readonly exit: ExitCode;
}

export const ERROR_TABLE = {
  /** The command line could not be parsed, or asked for something that does not exist. */
  USAGE_INVALID: { http: 400, grpc: 'INVALID_ARGUMENT', dnsRcode: 'SERVFAIL', exit: 2 },
  /** The configuration file is missing, unparsable or invalid. */
  CONFIG_INVALID: { http: 500, grpc: 'INTERNAL', dnsRcode: 'SERVFAIL', exit: 2 },
  /** A member cluster's API server rejected fedgate's credentials (401). */
  CLUSTER_UNAUTHORIZED: { http: 503, grpc: 'UNAVAILABLE', dnsRcode: 'SERVFAIL', exit: 1 },
  /** A member cluster's API server refused fedgate's read (403): RBAC is missing. */
  CLUSTER_FORBIDDEN: { http: 503, grpc: 'UNAVAILABLE', dnsRcode: 'SERVFAIL', exit: 1 },
  /** A member cluster's API server could not be reached, hung, or dropped the connection. */
  CLUSTER_UNREACHABLE: { http: 503, grpc: 'UNAVAILABLE', dnsRcode: 'SERVFAIL', exit: 1 },
  /** A member cluster's API server answered with an unexpected status or body. */
  CLUSTER_API_ERROR: { http: 503, grpc: 'UNAVAILABLE', dnsRcode: 'SERVFAIL', exit: 1 },
  /** A member cluster's API server does not serve a resource fedgate reads (404 on the collection: e.g. no ServiceExport CRD). */
  CLUSTER_RESOURCE_NOT_SERVED: { http: 503, grpc: 'UNAVAILABLE', dnsRcode: 'SERVFAIL', exit: 1 },
  /** A watch or list resumed from a resourceVersion the API server's history no longer holds (410 Gone): relist. */
  CLUSTER_WATCH_EXPIRED: { http: 503, grpc: 'UNAVAILABLE', dnsRcode: 'SERVFAIL', exit: 1 },
  /** A watch sent nothing (no event, no bookmark) for longer than the silence limit: restart it. */
  CLUSTER_WATCH_SILENT: { http: 503, grpc: 'UNAVAILABLE', dnsRcode: 'SERVFAIL', exit: 1 },
  /** A write to a member's API lost an optimistic-concurrency race (409 Conflict): read again and retry. */
  WRITE_CONFLICT: { http: 503, grpc: 'UNAVAILABLE', dnsRcode: 'SERVFAIL', exit: 1 },
  /** A listener could not bind its address (in use, not permitted, not on this host). */
  LISTEN_FAILED: { http: 500, grpc: 'INTERNAL', dnsRcode: 'SERVFAIL', exit: 2 },
  /** A configuration reload could not be applied for a reason other than the file (stopping, a bug). */
  RELOAD_FAILED: { http: 500, grpc: 'INTERNAL', dnsRcode: 'SERVFAIL', exit: 1 },
  /** Worker processes kept dying, so fedgate stopped. */
  WORKERS_FAILED: { http: 500, grpc: 'INTERNAL', dnsRcode: 'SERVFAIL', exit: 1 },
  /** A kubeconfig could not be loaded or names no usable cluster. */
  KUBECONFIG_INVALID: { http: 500, grpc: 'INTERNAL', dnsRcode: 'SERVFAIL', exit: 2 },
  /** `self.node` names a Node that its cluster (`self.cluster`) does not have, or that fedgate cannot read there (at start: a replica must not serve from a locality it guessed). */
  SELF_NODE_UNAVAILABLE: { http: 500, grpc: 'INTERNAL', dnsRcode: 'SERVFAIL', exit: 1 },
  /** The request names nothing fedgate serves: a Host (or absolute-form URL) with no federated service, alias or scheme name; a DNS question outside every zone (or before the first catalog). */
  HOST_UNKNOWN: { http: 404, grpc: 'UNIMPLEMENTED', dnsRcode: 'REFUSED', exit: 1 },
  /** An operation fedgate does not do: CONNECT (it is not a forward proxy), a DNS opcode other than QUERY. */
  METHOD_NOT_ALLOWED: { http: 405, grpc: 'UNIMPLEMENTED', dnsRcode: 'NOTIMP', exit: 1 },
  /** A DNS zone transfer (AXFR, IXFR): the zones are computed per question, never transferred. */
  ZONE_TRANSFER_REFUSED: { http: 403, grpc: 'PERMISSION_DENIED', dnsRcode: 'REFUSED', exit: 1 },
  /** The request could not be parsed, or was ambiguous or malformed (smuggling shapes, two Host headers, a bad Host or :authority, :authority and Host that disagree); a malformed DNS message. */
  BAD_REQUEST: { http: 400, grpc: 'INVALID_ARGUMENT', dnsRcode: 'FORMERR', exit: 1 },
  /** The request parsed but cannot be sent upstream as it is: asterisk-form (`OPTIONS *`, addressed to fedgate itself), or a shape the upstream HTTP client refused before sending anything. The client's doing: never retried, no endpoint blamed. */
  REQUEST_UNFORWARDABLE: { http: 400, grpc: 'INVALID_ARGUMENT', dnsRcode: 'FORMERR', exit: 1 },
  /** A DNS query with an EDNS version above 0 (RFC 6891). */
  EDNS_VERSION_UNSUPPORTED: { http: 400, grpc: 'INVALID_ARGUMENT', dnsRcode: 'BADVERS', exit: 1 },
  /** The request head was larger, or had more headers, than http.limits allow. */
  HEADERS_TOO_LARGE: { http: 431, grpc: 'RESOURCE_EXHAUSTED', dnsRcode: 'FORMERR', exit: 1 },
  /** The client did not send its request head (or body) in time. */
  REQUEST_TIMEOUT: { http: 408, grpc: 'DEADLINE_EXCEEDED', dnsRcode: 'SERVFAIL', exit: 1 },
  /** The client took no response bytes for http.timeouts.responseSendIdle: the response was cut and the connection closed (never sent; 408 for the table). */
  RESPONSE_UNREAD: { http: 408, grpc: 'DEADLINE_EXCEEDED', dnsRcode: 'SERVFAIL', exit: 1 },
  /** One HTTP/1.1 connection pipelined more requests than fedgate keeps waiting (src/proxy/pipeline.ts): answered, then the connection closes. */
  TOO_MANY_PIPELINED: { http: 429, grpc: 'RESOURCE_EXHAUSTED', dnsRcode: 'SERVFAIL', exit: 1 },
  /** The service has no endpoint that can take traffic. */
  NO_HEALTHY_UPSTREAM: { http: 503, grpc: 'UNAVAILABLE', dnsRcode: 'SERVFAIL', exit: 1 },
  /** Every endpoint is at its request cap and the service's pending queue is full. */
  UPSTREAM_OVERFLOW: { http: 503, grpc: 'RESOURCE_EXHAUSTED', dnsRcode: 'SERVFAIL', exit: 1 },
  /** The client's netblock already holds its share of the service's request slots (http.limits.clientShare), in flight and waiting. */
  CLIENT_OVER_SHARE: { http: 429, grpc: 'RESOURCE_EXHAUSTED', dnsRcode: 'REFUSED', exit: 1 },
  /** No endpoint accepted a connection, or each reset it before answering. */
  UPSTREAM_UNREACHABLE: { http: 502, grpc: 'UNAVAILABLE', dnsRcode: 'SERVFAIL', exit: 1 },
  /** The upstream did not answer within http.retries.perTryTimeout on any try. */
  /** Every endpoint's TLS handshake failed: its certificate did not verify against the service's backend TLS profile (CA, hostname, subjectAltNames), or it refused fedgate's client certificate. */
  UPSTREAM_TLS: { http: 502, grpc: 'UNAVAILABLE', dnsRcode: 'SERVFAIL', exit: 1 },
  UPSTREAM_TIMEOUT: { http: 504, grpc: 'DEADLINE_EXCEEDED', dnsRcode: 'SERVFAIL', exit: 1 },
  /** A Gateway API rule matched the request but cannot serve it: no backendRef, every weight 0, the chosen backendRef invalid (not found, not permitted, an unsupported kind) or naming no federated service, or a filter fedgate does not implement (the spec's 500; GRPCRoute's UNAVAILABLE). */
  ROUTE_BACKEND_INVALID: { http: 500, grpc: 'UNAVAILABLE', dnsRcode: 'SERVFAIL', exit: 1 },
  /** The process ran out of file descriptors (or another kernel resource) for this socket. */
  RESOURCE_EXHAUSTED: { http: 503, grpc: 'RESOURCE_EXHAUSTED', dnsRcode: 'SERVFAIL', exit: 1 },
  /** The loopback-only guard (tests, benchmarks) refused a destination outside 127.0.0.0/8 and ::1. */
  NON_LOOPBACK_REFUSED: { http: 502, grpc: 'UNAVAILABLE', dnsRcode: 'SERVFAIL', exit: 1 },
  /** fedgate is shutting down and takes no new requests on this connection. */
  DRAINING: { http: 503, grpc: 'UNAVAILABLE', dnsRcode: 'SERVFAIL', exit: 0 },
  /** A localfed scenario file is missing, unparsable or invalid. */
  SCENARIO_INVALID: { http: 500, grpc: 'INTERNAL', dnsRcode: 'SERVFAIL', exit: 2 },
  /** A localfed action cannot be done as asked (unknown action, zone or cluster; bad arguments). */
  ACTION_INVALID: { http: 400, grpc: 'INVALID_ARGUMENT', dnsRcode: 'SERVFAIL', exit: 2 },
  /** A local federation could not start (an address in use, a backend that cannot listen). */
  LOCALFED_START_FAILED: { http: 500, grpc: 'INTERNAL', dnsRcode: 'SERVFAIL', exit: 1 },
  /** `fedgate localfed ctl` found no running local federation in its directory, or it did not answer. */
  LOCALFED_UNAVAILABLE: { http: 503, grpc: 'UNAVAILABLE', dnsRcode: 'SERVFAIL', exit: 1 },
  /** The real kube-apiserver, etcd and kubectl (`--api real`) are not built and could not be: no Go, or the build failed. */
  KUBE_TOOLS_MISSING: { http: 500, grpc: 'INTERNAL', dnsRcode: 'SERVFAIL', exit: 2 },
} as const satisfies Record<string, Answers>;

export type ErrorCode = keyof typeof ERROR_TABLE;

export class FedgateError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = 'FedgateError';
  }
}

export function errorCodeOf(err: unknown): ErrorCode | undefined {
  return err instanceof FedgateError ? err.code : undefined;
}

/** The HTTP status fedgate answers with for `code`. */
export function httpStatusFor<C extends ErrorCode>(code: C): (typeof ERROR_TABLE)[C]['http'] {
  return ERROR_TABLE[code].http;
}

/** The gRPC status (its number) fedgate answers a gRPC call with for `code`. */
export function grpcStatusFor(code: ErrorCode): number {
  return GRPC_STATUS[ERROR_TABLE[code].grpc];
}

/** The DNS rcode fedgate answers with for `code`. */
export function rcodeFor<C extends ErrorCode>(code: C): (typeof ERROR_TABLE)[C]['dnsRcode'] {
  return ERROR_TABLE[code].dnsRcode;
}

/** The exit code of a command that fails with `code`. */
export function exitCodeFor<C extends ErrorCode>(code: C): (typeof ERROR_TABLE)[C]['exit'] {
  return ERROR_TABLE[code].exit;
}
