// A Gateway API rule's timeouts and retry, put onto the proxy's attempt loop:
// `timeouts.backendRequest` is the per-try timeout, `retry.attempts` the retries,
// `retry.codes` the statuses retried (instead of 502, 503, 504), `retry.backoff`
// the wait before each retry; with a `retry`, retries go back to endpoints already
// tried once every one was (a backend of one pod still gets its retries). The rest
// (which failures retry, idempotent methods only for statuses, the retry budget) stays
// the proxy's. Made once per loop and rule, not per request. `timeouts.request` is
// the exchange's deadline, with a gRPC call's grpc-timeout: armed here, acted on by
// attempts.ts.
import type { AttachedRule } from '../gateway/attached.ts';
import type { GatewayRouted } from './gateway.ts';
import type { RetrySettings } from './route.ts';
import type { LoopDeps } from './try.ts';

const made = new WeakMap<LoopDeps, WeakMap<AttachedRule, LoopDeps>>();

/** The retry settings a rule gives over the proxy's. */
export function ruleRetries(base: RetrySettings, rule: AttachedRule): RetrySettings {
  const t = rule.timeouts?.backendRequestMs;
  const r = rule.retry;
  return {
    ...base,
    ...(t !== undefined ? { perTryTimeout: t } : {}),
    ...(r?.attempts !== undefined ? { attempts: r.attempts } : {}),
    ...(r && r.codes.length > 0 ? { retryOn: new Set(r.codes) } : {}),
    ...(r?.backoffMs !== undefined ? { backoffMs: r.backoffMs } : {}),
    ...(r ? { reuseTried: true } : {}),
  };
}

/** The loop deps for a rule's requests: `base` (swapped by a reload) with the rule's retries. */
export function routeLoopDeps(base: LoopDeps, rule: AttachedRule): LoopDeps {
  let byRule = made.get(base);
  if (!byRule) {
    byRule = new WeakMap();
    made.set(base, byRule);
  }
  let deps = byRule.get(rule);
  if (!deps) {
    deps = { ...base, retries: ruleRetries(base.retries, rule) };
    byRule.set(rule, deps);
  }
  return deps;
}

/**
 * When a request must have been answered (performance.now() ms): the earlier of a
 * gRPC call's deadline and its rule's timeouts.request from `started`; `byRoute`
 * when the rule's is the one.
 */
export function requestDeadline(
  started: number,
  grpc: number | undefined,
  gw: GatewayRouted | undefined,
): { at: number; byRoute: boolean } | undefined {
  const ms = gw?.rule.timeouts?.requestMs;
  const route = ms === undefined || ms <= 0 ? undefined : started + ms;
  if (route !== undefined && (grpc === undefined || route <= grpc))
    return { at: route, byRoute: true };
  return grpc === undefined ? undefined : { at: grpc, byRoute: false };
}

const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Arms `passed` for when the request must have been answered (requestDeadline): no
 * timer when it has no deadline.
 */
export function armDeadline(
  started: number,
  grpc: number | undefined,
  gw: GatewayRouted | undefined,
  passed: () => void,
): { timer: NodeJS.Timeout | undefined; byRoute: boolean } {
  const deadline = requestDeadline(started, grpc, gw);
  const left = deadline === undefined ? undefined : Math.max(0, deadline.at - performance.now());
  // Node fires a timer past 2^31-1 ms (24.8 days) at once: a deadline that far bounds nothing.
  const timer = left !== undefined && left <= MAX_TIMER_MS ? setTimeout(passed, left) : undefined;
  return { timer, byRoute: deadline?.byRoute ?? false };
}

/** What the client hears when the request's deadline passed before an answer started. */
export function deadlineDetail(
  service: string,
  route: string | undefined,
  byRoute: boolean,
  waitedMs: number,
  tries: number,
): string {
  const n = `${tries} ${tries === 1 ? 'try' : 'tries'}`;
  return byRoute
    ? `${service} did not answer within route ${route}'s timeouts.request (${waitedMs} ms, ${n})`
    : `${service} did not answer within the call's deadline (grpc-timeout, ${waitedMs} ms, ${n})`;
}
