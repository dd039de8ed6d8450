// Which failed tries a request may go again after (the table in src/proxy/README.md),
// before its service's retry budget is asked: the attempt loop's rules (attempts.ts).
import type { Carrier } from './carrier.ts';
import type { RetryReason } from './failures.ts';

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);
/** Failures whose retries the budget limits, and which only idempotent methods retry. */
export const BUDGETED: ReadonlySet<RetryReason> = new Set(['status', 'timeout', 'grpc_status']);
/** Connection failures a gRPC call with its whole body kept is sent again after. */
const GRPC_CONNECTION: ReadonlySet<RetryReason> = new Set(['connect', 'reset', 'tls']);
/** Retries that only idempotent methods get (a gRPC call's retry is by its status rules). */
const IDEMPOTENT_ONLY: ReadonlySet<RetryReason> = new Set(['status', 'timeout']);

/** A method retried after an answer or a timeout (absent: GET). */
export function isIdempotent(method: string | undefined): boolean {
  return IDEMPOTENT.has(method ?? 'GET');
}

/** Where a request stands when one of its tries failed. */
export interface RetryCase {
  readonly clientGone: boolean;
  /** Tries sent so far. */
  readonly tries: number;
  /** Retries allowed (http.retries.attempts, or its rule's). */
  readonly attempts: number;
  readonly idempotent: boolean;
  readonly carrier: Pick<Carrier, 'hasBody' | 'bodyStarted' | 'canReplay' | 'grpc'>;
}

/** The request may go again after `failure`, the budget aside. */
export function retryable(failure: RetryReason, c: RetryCase): boolean {
  if (c.clientGone || c.tries > c.attempts) return false;
  if (c.carrier.hasBody && c.carrier.bodyStarted() && !replays(failure, c.carrier)) return false;
  if (IDEMPOTENT_ONLY.has(failure) && !c.idempotent) return false;
  return true;
}

/**
 * A refused stream was never processed: its request goes again when its body read
 * so far was kept. A gRPC call whose answer has not started goes again, when its
 * whole body was kept, on a trailers-only UNAVAILABLE (grpcRetryOn) and on a
 * connection failure (refused, reset, a failed TLS handshake), as Envoy's gRPC
 * retry_on reset and connect-failure do: when a cluster dies, the unary calls in
 * flight there go to another. A streaming call still sending is never retried.
 */
function replays(failure: RetryReason, carrier: RetryCase['carrier']): boolean {
  if (failure === 'refused') return carrier.canReplay?.() === true;
  const again =
    failure === 'grpc_status' || (carrier.grpc !== undefined && GRPC_CONNECTION.has(failure));
  return again && carrier.canReplay?.(true) === true;
}
