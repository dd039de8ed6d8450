// Which endpoint a try goes to, and how many retries a service may have in flight.
import type { Plan, Target } from '../routing/types.ts';
import type { Policy, RetrySettings } from './route.ts';
import type { Upstreams } from './upstreams.ts';

/** What picking reads of an exchange: its plan and hash, and what was tried. */
export interface PickState {
  readonly plan: Plan;
  readonly hash: number | undefined;
  readonly tried: ReadonlySet<string>;
  readonly clusters: ReadonlySet<string>;
}

/**
 * A target not tried yet, in a cluster not tried yet if possible, with a free slot.
 * 'full' when every candidate is at its request cap. `reuse`: when every target was
 * tried, one of them again (a Gateway API rule's retry retries "a request to a
 * backend", which may have a single endpoint).
 */
export function pickTarget(
  ex: PickState,
  policy: Policy,
  up: Pick<Upstreams, 'isFull' | 'outstanding'>,
  reuse = false,
): Target | 'full' | undefined {
  if (ex.tried.size === 0) {
    const t = policy.picker.pick(ex.plan, { hash: ex.hash, outstanding: up.outstanding });
    if (t && !up.isFull(t.id)) return t;
    if (!t) return undefined;
  }
  // Retries, or the first choice was full: a few more picks by the policy…
  let fallback: Target | undefined;
  let sawFull = false;
  /** The target when it is new in a new cluster; remembers a second best. */
  const consider = (t: Target): Target | undefined => {
    if (ex.tried.has(t.id)) return undefined;
    if (up.isFull(t.id)) {
      sawFull = true;
      return undefined;
    }
    if (!ex.clusters.has(t.cluster)) return t;
    fallback ??= t;
    return undefined;
  };
  for (let i = 0; i < 8; i++) {
    const t = policy.picker.pick(ex.plan, { outstanding: up.outstanding });
    if (!t) break;
    const ok = consider(t);
    if (ok) return ok;
  }
  // …then every target in priority order, so a retry finds one whenever one exists.
  for (const tier of ex.plan.tiers) {
    for (const t of tier.targets) {
      const ok = consider(t);
      if (ok) return ok;
    }
  }
  if (fallback) return fallback;
  if (reuse && ex.tried.size > 0) {
    const again = policy.picker.pick(ex.plan, { outstanding: up.outstanding });
    if (again) return up.isFull(again.id) ? 'full' : again;
  }
  return sawFull ? 'full' : undefined;
}

/** A service's requests in flight, and its budgeted retries among them. */
export interface ServiceLoad {
  active: number;
  retries: number;
}

/**
 * Envoy's retry budget: budgeted retries in flight stay under
 * max(minConcurrency, budget × active requests), per service.
 */
export class RetryBudget {
  readonly #load = new Map<string, ServiceLoad>();

  load(service: string): ServiceLoad {
    let l = this.#load.get(service);
    if (!l) {
      l = { active: 0, retries: 0 };
      this.#load.set(service, l);
    }
    return l;
  }

  allowed(l: ServiceLoad, r: RetrySettings): boolean {
    return l.retries < Math.max(r.minConcurrency, r.budget * l.active);
  }

  end(service: string, l: ServiceLoad): void {
    if (--l.active === 0 && l.retries === 0) this.#load.delete(service);
  }
}
