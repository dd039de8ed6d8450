// A Gateway API rule's timeouts and retry, put onto the proxy's attempt loop:
// `timeouts.backendRequest` is the per-try timeout, `retry.attempts` the retries,
// `retry.codes` the statuses retried (instead of 502, 503, 504), `retry.backoff`
// the wait before each retry; with a `retry`, retries go back to endpoints already
// tried once every one was (a backend of one pod still gets its retries). The rest
// (which failures retry, idempotent methods only for statuses, the retry budget) stays
// the proxy's. `timeouts.request` is the exchange's deadline (attempts.ts). Made once
// per loop and rule, not per request.
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
