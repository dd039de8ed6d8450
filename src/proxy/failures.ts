// What failed in a try, from undici's error: the one classifier for requests and
// upgrades alike, and what outlier detection hears as a local failure.
import { type ErrorCode, FedgateError } from '../errors.ts';

export type Failure = 'connect' | 'reset' | 'timeout';
/** Why a try was retried: a failure, or a 502, 503 or 504 answer. */
export type RetryReason = Failure | 'status';

/** Connect errors: nothing reached the upstream. */
const CONNECT_ERRORS = new Set([
  'ECONNREFUSED',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EADDRNOTAVAIL',
  'UND_ERR_CONNECT_TIMEOUT',
  'ENOTFOUND',
]);

/** A try's own deadline (http.retries.perTryTimeout) passed: UPSTREAM_TIMEOUT. */
export class PerTryTimeout extends FedgateError {
  constructor(ms: number) {
    super('UPSTREAM_TIMEOUT', `no response within ${ms} ms`);
    this.name = 'PerTryTimeout';
  }
}

/** What failed, from a try's error: its code or its cause's (undici wraps connect errors). */
export function classify(err: Error): Failure {
  if (err instanceof PerTryTimeout) return 'timeout';
  const code = (err as NodeJS.ErrnoException).code;
  if (code !== undefined && CONNECT_ERRORS.has(code)) return 'connect';
  const cause = (err as { cause?: NodeJS.ErrnoException }).cause;
  if (cause?.code !== undefined && CONNECT_ERRORS.has(cause.code)) return 'connect';
  return 'reset';
}

/** fedgate's answer when a try's failure ends the request: no retry left, allowed or budgeted. */
export function gaveUp(
  failure: Failure,
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
