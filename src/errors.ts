// Stable error codes, and the one table that maps each to its protocol answers.
// Logs, metrics and the admin page show the code; clients get the mapped status.

export const ERROR_TABLE = {
  /** The configuration file is missing, unparsable or invalid. */
  CONFIG_INVALID: { http: 500, dnsRcode: 'SERVFAIL', exit: 2 },
  /** A member cluster's API server rejected fedgate's credentials (401). */
  CLUSTER_UNAUTHORIZED: { http: 503, dnsRcode: 'SERVFAIL', exit: 1 },
  /** A member cluster's API server refused fedgate's read (403): RBAC is missing. */
  CLUSTER_FORBIDDEN: { http: 503, dnsRcode: 'SERVFAIL', exit: 1 },
  /** A member cluster's API server could not be reached, hung, or dropped the connection. */
  CLUSTER_UNREACHABLE: { http: 503, dnsRcode: 'SERVFAIL', exit: 1 },
  /** A member cluster's API server answered with an unexpected status or body. */
  CLUSTER_API_ERROR: { http: 503, dnsRcode: 'SERVFAIL', exit: 1 },
  /** A listener could not bind its address (in use, not permitted, not on this host). */
  LISTEN_FAILED: { http: 500, dnsRcode: 'SERVFAIL', exit: 2 },
  /** A configuration reload could not be applied for a reason other than the file (stopping, a bug). */
  RELOAD_FAILED: { http: 500, dnsRcode: 'SERVFAIL', exit: 1 },
  /** A kubeconfig could not be loaded or names no usable cluster. */
  KUBECONFIG_INVALID: { http: 500, dnsRcode: 'SERVFAIL', exit: 2 },
  /** The request's Host (or absolute-form URL) names no federated service, alias or scheme name. */
  HOST_UNKNOWN: { http: 404, dnsRcode: 'REFUSED', exit: 1 },
  /** CONNECT: fedgate is not a forward proxy. */
  METHOD_NOT_ALLOWED: { http: 405, dnsRcode: 'NOTIMP', exit: 1 },
  /** The request could not be parsed, or was ambiguous (smuggling shapes). */
  BAD_REQUEST: { http: 400, dnsRcode: 'FORMERR', exit: 1 },
  /** The request head was larger, or had more headers, than http.limits allow. */
  HEADERS_TOO_LARGE: { http: 431, dnsRcode: 'FORMERR', exit: 1 },
  /** The client did not send its request head (or body) in time. */
  REQUEST_TIMEOUT: { http: 408, dnsRcode: 'SERVFAIL', exit: 1 },
  /** The service has no endpoint that can take traffic. */
  NO_HEALTHY_UPSTREAM: { http: 503, dnsRcode: 'SERVFAIL', exit: 1 },
  /** Every endpoint is at its request cap and the service's pending queue is full. */
  UPSTREAM_OVERFLOW: { http: 503, dnsRcode: 'SERVFAIL', exit: 1 },
  /** No endpoint accepted a connection, or each reset it before answering. */
  UPSTREAM_UNREACHABLE: { http: 502, dnsRcode: 'SERVFAIL', exit: 1 },
  /** The upstream did not answer within http.retries.perTryTimeout on any try. */
  UPSTREAM_TIMEOUT: { http: 504, dnsRcode: 'SERVFAIL', exit: 1 },
  /** The process ran out of file descriptors (or another kernel resource) for this socket. */
  RESOURCE_EXHAUSTED: { http: 503, dnsRcode: 'SERVFAIL', exit: 1 },
  /** The loopback-only guard (tests, benchmarks) refused a destination outside 127.0.0.0/8 and ::1. */
  NON_LOOPBACK_REFUSED: { http: 502, dnsRcode: 'SERVFAIL', exit: 1 },
  /** fedgate is shutting down and takes no new requests on this connection. */
  DRAINING: { http: 503, dnsRcode: 'SERVFAIL', exit: 0 },
} as const;

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
