// What failed in a try, from undici's error: the one classifier for requests and
// upgrades alike, and what outlier detection hears as a local failure. One kind is
// no endpoint's failure: undici refusing the request itself ('request'). A TLS
// handshake that failed ('tls': verification, or the backend refusing fedgate's
// client certificate) sent nothing the backend processed, as a connect failure.
import { type ErrorCode, FedgateError } from '../errors.ts';

export type Failure = 'connect' | 'reset' | 'timeout' | 'tls';
/** A try's error: an endpoint's failure, the request's own ('request'), or never processed ('refused'). */
export type TryError = Failure | 'request' | 'refused';
/**
 * Why a try was retried: a failure, a 502, 503 or 504 answer, an HTTP/2 stream the
 * backend refused (REFUSED_STREAM, or past its GOAWAY): never processed, so retried for
 * any method, and no fault of the endpoint's health; or a gRPC call's trailers-only
 * answer with a status of http.retries.grpcRetryOn.
 */
export type RetryReason = Failure | 'status' | 'refused' | 'grpc_status';

/** The code on the error of a stream the backend refused (h2-upstream.ts). */
export const REFUSED_STREAM_CODE = 'ERR_FEDGATE_H2_STREAM_REFUSED';

/** Connect errors: nothing reached the upstream. */
const CONNECT_ERRORS = new Set([
  'ECONNREFUSED',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EADDRNOTAVAIL',
  'UND_ERR_CONNECT_TIMEOUT',
  'ENOTFOUND',
]);

/** Certificate verification codes (OpenSSL's, as Node names them on the error). */
const TLS_UNTRUSTED = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'CERT_SIGNATURE_FAILURE',
  'CERT_REVOKED',
  'INVALID_CA',
  'INVALID_PURPOSE',
  'PATH_LENGTH_EXCEEDED',
]);
const TLS_EXPIRED = new Set(['CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID']);
const TLS_NAME = new Set(['ERR_TLS_CERT_ALTNAME_INVALID', 'HOSTNAME_MISMATCH']);
/** Alerts a backend sends when it refuses (or did not get) fedgate's client certificate. */
const TLS_CLIENT_CERTIFICATE =
  /^ERR_SSL_(TLSV13_ALERT_CERTIFICATE_REQUIRED|SSLV3_ALERT_BAD_CERTIFICATE|TLSV1_ALERT_UNKNOWN_CA|SSLV3_ALERT_CERTIFICATE_UNKNOWN|SSLV3_ALERT_UNSUPPORTED_CERTIFICATE|SSLV3_ALERT_CERTIFICATE_EXPIRED|SSLV3_ALERT_CERTIFICATE_REVOKED|TLSV1_ALERT_ACCESS_DENIED|PEER_DID_NOT_RETURN_A_CERTIFICATE)$/;

/** What a TLS failure was, for its metric label: a few fixed words. */
export type TlsReason = 'untrusted' | 'expired' | 'name' | 'client_certificate' | 'handshake';

function tlsReasonOf(code: string | undefined): TlsReason | undefined {
  if (code === undefined) return undefined;
  if (TLS_UNTRUSTED.has(code)) return 'untrusted';
  if (TLS_EXPIRED.has(code)) return 'expired';
  if (TLS_NAME.has(code)) return 'name';
  if (TLS_CLIENT_CERTIFICATE.test(code)) return 'client_certificate';
  if (code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_')) return 'handshake';
  return undefined;
}

/**
 * The TLS failure in a try's error, on it or its cause (upstreams.ts puts a TLS alert
 * that came before undici's "other side closed" there): its reason and the error
 * that says it. undefined: not a TLS failure.
 */
export function tlsFailure(err: Error): { reason: TlsReason; error: Error } | undefined {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 3; depth++) {
    const reason = tlsReasonOf((e as NodeJS.ErrnoException).code);
    if (reason) return { reason, error: e };
    e = e.cause;
  }
  return undefined;
}

/** A TLS failure in a sentence: its code and first line, printable and short. */
export function tlsDetail(err: Error): string {
  const e = tlsFailure(err)?.error ?? err;
  const code = (e as NodeJS.ErrnoException).code;
  const line = (e.message.split('\n', 1)[0] ?? '').replace(/[^\x20-\x7e]/g, '?').slice(0, 240);
  return code && !line.includes(code) ? `${code}: ${line}` : line;
}

/**
 * undici refused the request as it is, before sending anything (an argument it will
 * not send, a feature it does not support, a Content-Length the client's body does
 * not match): the client's doing, and every endpoint would refuse it the same.
 */
const REQUEST_ERRORS = new Set([
  'UND_ERR_INVALID_ARG',
  'UND_ERR_NOT_SUPPORTED',
  'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH',
]);

/** Thrown at dispatch but no fault of the request: the pool was closed (a reload, stopping). */
const POOL_GONE = new Set(['UND_ERR_DESTROYED', 'UND_ERR_CLOSED']);

/** A try's own deadline (http.retries.perTryTimeout) passed: UPSTREAM_TIMEOUT. */
export class PerTryTimeout extends FedgateError {
  constructor(ms: number) {
    super('UPSTREAM_TIMEOUT', `no response within ${ms} ms`);
    this.name = 'PerTryTimeout';
  }
}

/**
 * What failed, from a try's error: its code or its cause's (undici wraps connect
 * errors). `atDispatch`: it came while dispatch() was still running, before the
 * request started; anything thrown there but a closed pool is the request's shape.
 */
export function classify(err: Error, atDispatch = false): TryError {
  if (err instanceof PerTryTimeout) return 'timeout';
  const code = (err as NodeJS.ErrnoException).code;
  if (code === REFUSED_STREAM_CODE) return 'refused';
  if (code !== undefined && REQUEST_ERRORS.has(code)) return 'request';
  if (code !== undefined && CONNECT_ERRORS.has(code)) return 'connect';
  const cause = (err as { cause?: NodeJS.ErrnoException }).cause;
  if (cause?.code !== undefined && CONNECT_ERRORS.has(cause.code)) return 'connect';
  // Before the dispatch check: a handshake fails while dispatch() may still run.
  if (tlsFailure(err)) return 'tls';
  if (atDispatch && !(code !== undefined && POOL_GONE.has(code))) return 'request';
  return 'reset';
}

/** undici's refusal in a sentence for the client: its first line, printable, short. */
export function refusalDetail(err: Error): string {
  const line = err.message.split('\n', 1)[0] ?? '';
  return `the request cannot be forwarded as it is (${line.replace(/[^\x20-\x7e]/g, '?').slice(0, 120)})`;
}

/** fedgate's answer when a try's failure ends the request: no retry left, allowed or budgeted. */
export function gaveUp(
  failure: Failure | 'refused',
  service: string,
  why: {
    readonly tries: number;
    readonly budget: boolean;
    readonly ms: number;
    /** What the last try's failure was, when it says more than its kind (TLS). */
    readonly detail?: string | undefined;
  },
): { code: ErrorCode; detail: string } {
  const n = why.tries;
  const tries = `${n} ${n === 1 ? 'try' : 'tries'}${why.budget ? ', retry budget exhausted' : ''}`;
  if (failure === 'timeout') {
    return {
      code: 'UPSTREAM_TIMEOUT',
      detail: `${service} did not answer within ${why.ms} ms (${tries})`,
    };
  }
  if (failure === 'tls') {
    const what = why.detail ? `: ${why.detail}` : '';
    return { code: 'UPSTREAM_TLS', detail: `TLS to ${service} failed${what} (${tries})` };
  }
  return {
    code: 'UPSTREAM_UNREACHABLE',
    detail: `could not reach ${service} (${failure}, ${tries})`,
  };
}

/**
 * fedgate's answer when no endpoint is left to try. A TLS failure or a timeout says
 * more than "nothing left to try": the client hears what failed (a timed-out last
 * try is a 504, as when retries run out).
 */
export function nothingLeft(
  service: string,
  tries: number,
  last: { readonly failure: 'tls' | 'timeout'; readonly detail: string } | undefined,
  ms: number,
): { code: ErrorCode; detail: string } {
  if (last !== undefined) {
    return gaveUp(last.failure, service, { tries, budget: false, ms, detail: last.detail });
  }
  return tries === 0
    ? { code: 'NO_HEALTHY_UPSTREAM', detail: `no endpoint of ${service} can take traffic` }
    : { code: 'UPSTREAM_UNREACHABLE', detail: `no other endpoint of ${service} to try` };
}
