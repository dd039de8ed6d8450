// Plans on demand, cached. A plan depends on the service (a snapshot hands out the
// same object for a service that did not change), the service's health version and
// the client locality, so a cache entry is keyed by exactly those: a change to one
// service or its health rebuilds that service's plans and no others.
import type { FederatedService, Snapshot } from '../catalog/model.ts';
import type { Config } from '../config/schema.ts';
import { type Explanation, explain } from './explain.ts';
import { type LocalityRule, LocalityTable, localityKey } from './locality.ts';
import { buildPlan, type PlanOptions } from './plan.ts';
import type { ClientLocality, HealthView, Locality, Plan, Tier } from './types.ts';

export interface RouterOptions extends PlanOptions {
  readonly localities: readonly LocalityRule[];
  /** This replica's locality: clients the table does not cover are routed as if they were here. */
  readonly self: Locality | undefined;
}

/** The router's settings from a configuration. */
export function routerOptions(config: Config): RouterOptions {
  return { ...config.routing, localities: config.localities, self: config.self };
}

/** The tier that takes a plan's traffic first: its scope, or 'none' when nothing can. */
export type PrimaryTier = Tier['scope'] | 'none';

/** Traffic for one service and client locality moved to another tier (a failover or a failback). */
export interface TierShift {
  readonly service: string;
  readonly locality: Locality | undefined;
  readonly from: PrimaryTier;
  readonly to: PrimaryTier;
  /** The plans' summaries: which clusters the primary tier holds, before and after. */
  readonly fromClusters: readonly string[];
  readonly toClusters: readonly string[];
}

const tierScopes = new WeakMap<Plan, Map<string, Tier['scope']>>();

/** The scope of the tier a target of this plan sits in (for metrics), or undefined. */
export function tierScopeOf(plan: Plan, id: string): Tier['scope'] | undefined {
  let m = tierScopes.get(plan);
  if (!m) {
    m = new Map();
    for (const t of plan.tiers) for (const x of t.targets) if (!m.has(x.id)) m.set(x.id, t.scope);
    tierScopes.set(plan, m);
  }
  return m.get(id);
}

export function primaryTier(plan: Plan): { tier: PrimaryTier; clusters: string[] } {
  const t = plan.tiers.find((x) => x.load > 0);
  if (!t) return { tier: 'none', clusters: [] };
  return { tier: t.scope, clusters: [...new Set(t.targets.map((x) => x.cluster))].sort() };
}

interface CacheEntry {
  readonly service: FederatedService;
  readonly healthVersion: number;
  readonly plans: Map<string, Plan>;
  /** Locality keys whose plan traffic has used: where a tier shift is noted. */
  readonly used: Set<string>;
}

export class Router {
  #table: LocalityTable;
  #opts: RouterOptions;
  readonly #health: HealthView;
  readonly #cache = new Map<string, CacheEntry>();
  /** The primary tier last planned, by service key and locality key: what a shift is measured from. */
  readonly #primaries = new Map<string, Map<string, { tier: PrimaryTier; clusters: string[] }>>();
  readonly #onShift: ((shift: TierShift) => void) | undefined;
  readonly #onUse: ((plan: Plan) => void) | undefined;
  #builds = 0;

  /**
   * `onShift` hears failovers and failbacks. `onUse` hears each plan the first time
   * traffic uses it (per service, health version and client locality): a worker
   * process tells the primary so, and the primary's router, asked for the same plan,
   * is the one that notes the shift, once, however many workers used it.
   */
  constructor(
    opts: RouterOptions,
    health: HealthView,
    onShift?: (shift: TierShift) => void,
    onUse?: (plan: Plan) => void,
  ) {
    this.#opts = opts;
    this.#health = health;
    this.#onShift = onShift;
    this.#onUse = onUse;
    this.#table = new LocalityTable(opts.localities);
  }

  get table(): LocalityTable {
    return this.#table;
  }

  /**
   * New options (a configuration reload): every cached plan is dropped, and so is
   * the memory of primary tiers, so the move a new option causes is not told as a
   * failover.
   */
  reconfigure(opts: RouterOptions): void {
    this.#opts = opts;
    this.#table = new LocalityTable(opts.localities);
    this.#cache.clear();
    this.#primaries.clear();
  }

  /** Plans built so far (cache misses): lets tests and metrics see the cache work. */
  get builds(): number {
    return this.#builds;
  }

  /** Where a client is: by the CIDR table, else this replica's locality, else nowhere. */
  locate(address: string): ClientLocality {
    const hit = this.#table.match(address);
    if (hit) return { locality: hit.locality, source: 'table', prefixLength: hit.length };
    const self = this.self;
    return self ? { locality: self, source: 'self' } : { locality: undefined, source: 'none' };
  }

  /** This replica's locality, when the config gives one. */
  get self(): Locality | undefined {
    const self = this.#opts.self;
    return self && (self.region !== undefined || self.zone !== undefined) ? self : undefined;
  }

  /**
   * `variant` names a derived view of the service with its own cache entry (DNS
   * plans over ingress or edge addresses); health is still read by the service key.
   * `traffic` false: asked by someone looking (explain), so no failover is noted.
   */
  plan(
    service: FederatedService,
    locality: Locality | undefined,
    variant = '',
    traffic = true,
  ): Plan {
    const healthVersion = this.#health.serviceVersion(service.key);
    const cacheKey = variant === '' ? service.key : `${variant} ${service.key}`;
    let entry = this.#cache.get(cacheKey);
    if (!entry || entry.service !== service || entry.healthVersion !== healthVersion) {
      entry = { service, healthVersion, plans: new Map(), used: new Set() };
      this.#cache.set(cacheKey, entry);
    }
    const key = localityKey(locality);
    let plan = entry.plans.get(key);
    if (!plan) {
      plan = buildPlan(service, locality, this.#health, this.#opts);
      this.#builds++;
      entry.plans.set(key, plan);
    }
    if (traffic && variant === '' && !entry.used.has(key)) {
      entry.used.add(key);
      this.#onUse?.(plan);
      this.#noteShift(plan, key);
    }
    return plan;
  }

  // Plans are built when asked for, so a shift is seen when the first client after
  // the change is routed, which is when traffic actually moves; explain and the
  // status page only look, and a locality no client comes from never fails over.
  #noteShift(plan: Plan, localityKey: string): void {
    let byLocality = this.#primaries.get(plan.service);
    if (!byLocality) {
      byLocality = new Map();
      this.#primaries.set(plan.service, byLocality);
    }
    const now = primaryTier(plan);
    const before = byLocality.get(localityKey);
    byLocality.set(localityKey, now);
    if (!before || !this.#onShift || before.tier === now.tier) return;
    this.#onShift({
      service: plan.service,
      locality: plan.locality,
      from: before.tier,
      to: now.tier,
      fromClusters: before.clusters,
      toClusters: now.clusters,
    });
  }

  planFor(service: FederatedService, clientAddress: string): Plan {
    return this.plan(service, this.locate(clientAddress).locality);
  }

  /**
   * The plan for a client given by address (located through the table) or by
   * locality, and the reasons behind it. `now` dates the ejections.
   */
  explain(service: FederatedService, client: string | Locality, now: number): Explanation {
    const where: ClientLocality & { address?: string } =
      typeof client === 'string'
        ? { ...this.locate(client), address: client }
        : { locality: client, source: 'given' };
    return explain(this.plan(service, where.locality, '', false), where, this.#opts, now);
  }

  /** Drop cached plans of services the snapshot no longer has. */
  prune(snapshot: Snapshot): void {
    for (const [key, entry] of this.#cache) {
      if (!snapshot.services.has(entry.service.key)) this.#cache.delete(key);
    }
    for (const key of this.#primaries.keys()) {
      if (!snapshot.services.has(key)) this.#primaries.delete(key);
    }
  }
}
