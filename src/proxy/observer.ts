// What the proxy reports as it serves: one call per finished request, retry, or
// retry held back. The proxy owns this contract; metrics and the access log
// implement it.
import type { ErrorCode } from '../errors.ts';
import type { Locality } from '../routing/types.ts';
import type { RetryReason, TlsReason } from './failures.ts';

/** How a request ended, as operators count it (the `outcome` label). */
export type RequestOutcome =
  /** An endpoint's answer reached the client, whatever its status. */
  | 'relayed'
  /** fedgate answered itself after routing (no endpoint, every try failed, a timeout), or an endpoint's answer was cut short. */
  | 'failed'
  /**
   * Refused for a limit of the request or the client: malformed or unsendable,
   * unknown host, too many headers or pipelined requests (or dropped behind an answer
   * that closed the connection: status 0), over the client's share (429
   * CLIENT_OVER_SHARE), or a request body silent past http.timeouts.requestBodyIdle.
   */
  | 'rejected'
  /** Every slot and the pending queue were full: 503 UPSTREAM_OVERFLOW. */
  | 'overflowed'
  /** The client cancelled, reset or closed before its response was complete. */
  | 'client_cancelled'
  /** A Gateway API rule's RequestRedirect: fedgate answered the redirect itself. */
  | 'redirected';

/** How a request fedgate answered itself after routing it ended. */
export function outcomeOf(code: ErrorCode): RequestOutcome {
  if (code === 'UPSTREAM_OVERFLOW') return 'overflowed';
  // The client's own excess, not the service's: kept out of `overflowed`, which says the service lacks slots.
  if (code === 'CLIENT_OVER_SHARE') return 'rejected';
  // undici refused the request as the client sent it: the request's fault, found after routing.
  if (code === 'REQUEST_UNFORWARDABLE') return 'rejected';
  return 'failed';
}

/**
 * The status a request the client cancelled is counted with (nginx's "client closed
 * request"): never sent, as there is no one left to send it to.
 */
export const CLIENT_CLOSED_REQUEST = 499;

/**
 * One finished proxied request, whether or not it reached a service. cluster, zone
 * and tier are '' when fedgate answered itself; service is '' when none was found.
 */
export interface ProxiedRequest {
  readonly service: string;
  /** The Gateway API route (`namespace/name`) that routed it; '' or absent: Host routing. */
  readonly route?: string | undefined;
  readonly outcome: RequestOutcome;
  readonly cluster: string;
  readonly zone: string;
  /** Scope of the plan tier the answering endpoint sits in. */
  readonly tier: string;
  readonly status: number;
  readonly seconds: number;
  /** The client locality the request was routed for (http.locality, a regional or zonal name): the traffic picture's, never a label. */
  readonly locality?: Locality | undefined;
  /** For the access log only; never labels. */
  readonly method?: string;
  readonly target?: string;
  readonly client?: string;
  readonly tries?: number;
  readonly endpoint?: string;
  /** An Upgrade request (WebSocket and the like): counted in fedgate_http_upgrades_total too. */
  readonly upgrade?: boolean;
  /** A gRPC call (content-type application/grpc…): counted in fedgate_grpc_requests_total too. */
  readonly grpc?: boolean;
  /**
   * A gRPC call's status: the upstream's (trailers-only head, or trailers), or the
   * one fedgate answered with; undefined when none reached the client (cut short, or
   * a carrier that delivers no trailers).
   */
  readonly grpcStatus?: number | undefined;
}

/** Why fedgate closed a client connection itself (`fedgate_http_connections_closed_total`). */
export type ConnectionCloseReason =
  /** HTTP/2: the client reset too many of its streams before their answer (h2-sessions.ts). */
  | 'premature_resets'
  /** The client already held http.limits.maxConnectionsPerClient connections (client-connections.ts). */
  | 'client_connections';

/** What the proxy reports, one call per finished request, retry, or retry held back. */
export interface ProxyObserver {
  request(r: ProxiedRequest): void;
  retry(service: string, reason: RetryReason): void;
  /**
   * A retry was wanted but the service's retry budget held it back. Only answers
   * a loaded upstream gives (a status, a timeout) spend the budget.
   */
  retryBudgetExhausted?(service: string, reason: RetryReason): void;
  /** An HTTP/2 stream the client reset before its answer was whole. */
  http2StreamReset?(): void;
  /** fedgate closed a client connection for how the client behaved. */
  connectionClosed?(reason: ConnectionCloseReason): void;
  /** A request refused 429 CLIENT_OVER_SHARE: its client held its share of the service's slots. */
  clientOverShare?(service: string): void;
  /** An upgraded tunnel closed after http.timeouts.tunnelIdle with no byte either way. */
  tunnelIdleClosed?(service: string): void;
  /** A RequestMirror copy of a request ended (mirror.ts): sent, failed, or dropped past the in-flight bound. */
  mirrored?(service: string, result: 'sent' | 'failed' | 'dropped'): void;
  /** A try's TLS handshake with an endpoint failed (every such try, retried or not). */
  tlsFailure?(service: string, cluster: string, reason: TlsReason): void;
  /** A request matched a Gateway API rule: its route (`namespace/name`) and the rule's index. */
  ruleMatched?(route: string, rule: number): void;
}
