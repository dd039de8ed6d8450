// What the proxy reports as it serves: one call per finished request, retry, or
// retry held back. The proxy owns this contract; metrics and the access log
// implement it.
import type { RetryReason } from './failures.ts';

/** How a request ended, as operators count it (the `outcome` label). */
export type RequestOutcome =
  /** An endpoint's answer reached the client, whatever its status. */
  | 'relayed'
  /** fedgate answered itself after routing: no endpoint, every try failed, a timeout. */
  | 'failed'
  /**
   * Refused for a limit of the request or the client: malformed, unknown host, too
   * many headers or pipelined requests (or dropped behind an answer that closed the
   * connection: status 0), or a request body silent past http.timeouts.requestBodyIdle.
   */
  | 'rejected'
  /** Every slot and the pending queue were full: 503 UPSTREAM_OVERFLOW. */
  | 'overflowed'
  /** The client cancelled, reset or closed before its response was complete. */
  | 'client_cancelled';

/**
 * One finished proxied request, whether or not it reached a service. cluster, zone
 * and tier are '' when fedgate answered itself; service is '' when none was found.
 */
export interface ProxiedRequest {
  readonly service: string;
  readonly outcome: RequestOutcome;
  readonly cluster: string;
  readonly zone: string;
  /** Scope of the plan tier the answering endpoint sits in. */
  readonly tier: string;
  readonly status: number;
  readonly seconds: number;
  /** For the access log only; never labels. */
  readonly method?: string;
  readonly target?: string;
  readonly client?: string;
  readonly tries?: number;
  readonly endpoint?: string;
  /** An Upgrade request (WebSocket and the like): counted in fedgate_http_upgrades_total too. */
  readonly upgrade?: boolean;
}

/** What the proxy reports, one call per finished request, retry, or retry held back. */
export interface ProxyObserver {
  request(r: ProxiedRequest): void;
  retry(service: string, reason: RetryReason): void;
  /**
   * A retry was wanted but the service's retry budget held it back. Only answers
   * a loaded upstream gives (a status, a timeout) spend the budget.
   */
  retryBudgetExhausted?(service: string, reason: RetryReason): void;
}
