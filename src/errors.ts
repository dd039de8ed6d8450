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
  /** A kubeconfig could not be loaded or names no usable cluster. */
  KUBECONFIG_INVALID: { http: 500, dnsRcode: 'SERVFAIL', exit: 2 },
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
