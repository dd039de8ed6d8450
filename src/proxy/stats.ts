import type { ErrorCode } from '../errors.ts';
import type { RetryReason } from './attempts.ts';

/** Counters the admin server and metrics read. */
export class ProxyStats {
  requests = 0;
  /** Answers by status class: 2xx … 5xx, and the client going away first. */
  readonly responses = { '1xx': 0, '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 0, aborted: 0 };
  readonly retries: Record<RetryReason, number> = { connect: 0, reset: 0, timeout: 0, status: 0 };
  /** A retry was wanted but the budget said no. */
  budgetExhausted = 0;
  readonly errors: Partial<Record<ErrorCode, number>> = {};
  upgrades = 0;

  /** One answer sent, by its status. */
  count(status: number): void {
    const r = this.responses;
    if (status < 200) r['1xx']++;
    else if (status < 300) r['2xx']++;
    else if (status < 400) r['3xx']++;
    else if (status < 500) r['4xx']++;
    else r['5xx']++;
  }
}
