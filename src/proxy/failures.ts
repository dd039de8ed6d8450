// What failed in a try, from undici's error: the one classifier for requests and
// upgrades alike, and what outlier detection hears as a local failure. One kind is
// no endpoint's failure: undici refusing the request itself ('request').
import { type ErrorCode, FedgateError } from '../errors.ts';

export type Failure = 'connect' | 'reset' | 'timeout';
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
export const REFUSED_STREAM_CODE = 'FEDGATE_STREAM_REFUSED';

/** Connect errors: nothing reached the upstream. */
const CONNECT_ERRORS = new Set([
  'ECONNREFUSED',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EADDRNOTAVAIL',
  'UND_ERR_CONNECT_TIMEOUT',
  'ENOTFOUND',
]);

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
  why: { readonly tries: number; readonly budget: boolean; readonly ms: number },
): { code: ErrorCode; detail: string } {
  const n = why.tries;
  const tries = `${n} ${n === 1 ? 'try' : 'tries'}${why.budget ? ', retry budget exhausted' : ''}`;
  return failure === 'timeout'
    ? {
        code: 'UPSTREAM_TIMEOUT',
        detail: `${service} did not answer within ${why.ms} ms (${tries})`,
      }
    : { code: 'UPSTREAM_UNREACHABLE', detail: `could not reach ${service} (${failure}, ${tries})` };
}
