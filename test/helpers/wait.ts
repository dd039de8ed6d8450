// Bounded waiting for tests: every wait has a deadline and says what it waited for.
import { pollUntil } from '../../src/localfed/loopback-http.ts';

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Polls `predicate` until it returns a truthy value (which is returned) or
 * `timeoutMs` passes, then fails with `what` and the last error the predicate threw.
 */
export function waitFor<T>(
  predicate: () => T | Promise<T>,
  timeoutMs = 5000,
  what = 'condition',
  intervalMs = 20,
): Promise<NonNullable<T>> {
  return pollUntil(predicate, timeoutMs, what, intervalMs);
}
