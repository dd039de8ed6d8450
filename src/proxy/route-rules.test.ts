import { describe, expect, it } from 'vitest';
import { rule } from '../../test/helpers/gateway-rules.ts';
import type { GatewayRouted } from './gateway.ts';
import type { RetrySettings } from './route.ts';
import { requestDeadline, routeLoopDeps, ruleRetries } from './route-rules.ts';
import type { LoopDeps } from './try.ts';

const base: RetrySettings = { attempts: 2, budget: 0.2, minConcurrency: 3, perTryTimeout: 10_000 };

describe('a rule on the attempt loop', () => {
  it("takes the rule's per-try timeout, attempts, codes and backoff over the proxy's, and keeps the rest", () => {
    const r = rule({
      route: 'a/r',
      timeouts: { backendRequestMs: 250 },
      retry: { codes: [500, 503], attempts: 4, backoffMs: 20 },
    });
    const got = ruleRetries(base, r);
    expect(got).toMatchObject({ perTryTimeout: 250, attempts: 4, backoffMs: 20, budget: 0.2 });
    expect([...(got.retryOn ?? [])]).toEqual([500, 503]);
    // A rule's retries may go back to an endpoint tried (one pod still gets them).
    expect(got.reuseTried).toBe(true);
    expect(ruleRetries(base, rule({ route: 'a/r' }))).toEqual(base);
    // No codes: the proxy's own (502, 503, 504).
    expect(ruleRetries(base, rule({ route: 'a/r', retry: { codes: [] } })).retryOn).toBeUndefined();
  });

  it('makes the loop once per loop and rule', () => {
    const loop = { retries: base } as unknown as LoopDeps;
    const r = rule({ route: 'a/r', retry: { codes: [500] } });
    expect(routeLoopDeps(loop, r)).toBe(routeLoopDeps(loop, r));
    const next = { retries: { ...base, attempts: 1 } } as unknown as LoopDeps;
    expect(routeLoopDeps(next, r).retries.attempts).toBe(1);
  });

  it('deadline: the earlier of grpc-timeout and timeouts.request', () => {
    const gw = (ms?: number) =>
      ({
        rule: rule({ route: 'a/r', ...(ms ? { timeouts: { requestMs: ms } } : {}) }),
      }) as GatewayRouted;
    expect(requestDeadline(1000, undefined, undefined)).toBeUndefined();
    expect(requestDeadline(1000, undefined, gw())).toBeUndefined();
    expect(requestDeadline(1000, undefined, gw(300))).toEqual({ at: 1300, byRoute: true });
    expect(requestDeadline(1000, 1200, gw(300))).toEqual({ at: 1200, byRoute: false });
    expect(requestDeadline(1000, 5000, gw(300))).toEqual({ at: 1300, byRoute: true });
  });
});
