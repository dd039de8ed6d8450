// A service's routing plan for one client locality: priority tiers by locality,
// each tier's load by Envoy's priority-level rules (health = min(1, eligible /
// total × overprovisioning); a tier takes min(what is left, health / normalized
// total health)), per-tier panic, cluster weights inside a tier. Pure.
import type { ClusterMember, Endpoint, FederatedService } from '../catalog/model.ts';
import {
  type EndpointHealth,
  type Exclusion,
  type ExclusionReason,
  endpointId,
  type HealthView,
  type Locality,
  type Plan,
  type Target,
  type Tier,
  type TierScope,
} from './types.ts';

export interface PlanOptions {
  /** Envoy's overprovisioning factor (1.4). */
  readonly overprovisioning: number;
  /** A tier whose eligible fraction is under this panics while the service lacks capacity; 0 disables. */
  readonly panicThreshold: number;
  /** Per client region, the other regions in failover order. Unlisted regions come last, together. */
  readonly failoverOrder: Readonly<Record<string, readonly string[]>>;
}

interface Placed {
  readonly id: string;
  readonly member: ClusterMember;
  readonly endpoint: Endpoint;
  readonly reasons: readonly ExclusionReason[];
  /** Counts toward its tier's total: every endpoint but a terminating one that is not standing in. */
  readonly counted: boolean;
  readonly ejectedUntil: number | undefined;
  readonly detail: string | undefined;
}

interface Bucket {
  readonly rank: number;
  readonly scope: TierScope;
  readonly locality: Locality;
  readonly stale: boolean;
  readonly regions: Set<string>;
  readonly placed: Placed[];
}

const SCOPE_RANK: Record<TierScope, number> = {
  all: 0,
  subzone: 0,
  zone: 1,
  region: 2,
  failover: 3,
  other: 1_000_000,
};

/**
 * An endpoint's rank relative to the client, lower is preferred: subzone, zone,
 * region, the failover regions in order, then everything else. A number, so the
 * hot loop allocates nothing per endpoint.
 */
function rankOf(
  client: Locality | undefined,
  ep: Locality,
  order: readonly string[] | undefined,
): number {
  if (!client) return SCOPE_RANK.all;
  const sameRegion = client.region === undefined || ep.region === client.region;
  if (sameRegion && client.zone !== undefined && ep.zone === client.zone) {
    return client.subzone !== undefined && ep.subzone === client.subzone
      ? SCOPE_RANK.subzone
      : SCOPE_RANK.zone;
  }
  if (client.region !== undefined && ep.region === client.region) return SCOPE_RANK.region;
  const i = ep.region === undefined || !order ? -1 : order.indexOf(ep.region);
  return i >= 0 ? SCOPE_RANK.failover + i : SCOPE_RANK.other;
}

function scopeOf(
  client: Locality | undefined,
  rank: number,
  ep: Locality,
): { scope: TierScope; locality: Locality } {
  if (!client) return { scope: 'all', locality: {} };
  if (rank === SCOPE_RANK.subzone) return { scope: 'subzone', locality: client };
  if (rank === SCOPE_RANK.zone)
    return { scope: 'zone', locality: { region: client.region, zone: client.zone } };
  if (rank === SCOPE_RANK.region) return { scope: 'region', locality: { region: client.region } };
  if (rank === SCOPE_RANK.other) return { scope: 'other', locality: {} };
  return { scope: 'failover', locality: { region: ep.region } };
}

const NO_REASONS: readonly ExclusionReason[] = [];
/** Endpoint ids per member's endpoint list: built once, so ids are the same strings every build (their hashes cached). */
const idCache = new WeakMap<readonly Endpoint[], readonly string[]>();

function idsOf(member: ClusterMember): readonly string[] {
  let ids = idCache.get(member.endpoints);
  if (!ids) {
    ids = member.endpoints.map((e) => endpointId(member.cluster, e.addresses[0] ?? ''));
    idCache.set(member.endpoints, ids);
  }
  return ids;
}

function classify(
  id: string,
  health: ReadonlyMap<string, EndpointHealth> | undefined,
  servingFallback: boolean,
  member: ClusterMember,
  endpoint: Endpoint,
): Placed {
  const c = endpoint.conditions;
  const standsIn = servingFallback && c.serving;
  const h = health?.get(id);
  let reasons = NO_REASONS;
  if ((c.terminating || !c.ready) && !standsIn)
    reasons = [c.terminating ? 'terminating' : 'not-ready'];
  if (h !== undefined && (h.ejectedUntil !== undefined || h.check === 'unhealthy')) {
    reasons = [...reasons];
    if (h.ejectedUntil !== undefined) (reasons as ExclusionReason[]).push('ejected');
    if (h.check === 'unhealthy') (reasons as ExclusionReason[]).push('check-failing');
  }
  return {
    id,
    member,
    endpoint,
    reasons,
    counted: !c.terminating || standsIn,
    ejectedUntil: h?.ejectedUntil,
    detail: h?.check === 'unhealthy' ? h.checkDetail : undefined,
  };
}

function bucketsOf(
  service: FederatedService,
  client: Locality | undefined,
  health: HealthView,
  opts: PlanOptions,
): { buckets: Bucket[]; servingFallback: boolean } {
  let anyReady = false;
  for (const m of service.clusters) {
    for (const e of m.endpoints) if (e.conditions.ready) anyReady = true;
  }
  const servingFallback = !anyReady;
  const byKey = new Map<number, Bucket>();
  const order = client?.region === undefined ? undefined : opts.failoverOrder[client.region];
  const entries = health.endpoints(service.key);
  for (const member of service.clusters) {
    const stale = member.sync.state === 'stale';
    const ids = idsOf(member);
    const eps = member.endpoints;
    for (let i = 0; i < eps.length; i++) {
      const endpoint = eps[i]!;
      const region = endpoint.locality.region;
      const rank = rankOf(client, endpoint.locality, order);
      const key = rank * 2 + (stale ? 1 : 0);
      let b = byKey.get(key);
      if (!b) {
        b = {
          rank,
          ...scopeOf(client, rank, endpoint.locality),
          stale,
          regions: new Set(),
          placed: [],
        };
        byKey.set(key, b);
      }
      if (region !== undefined && !b.regions.has(region)) b.regions.add(region);
      b.placed.push(classify(ids[i]!, entries, servingFallback, member, endpoint));
    }
  }
  // Fresh before stale within a scope; stale never outranks a fresher, nearer scope.
  const buckets = [...byKey.values()].sort(
    (a, b) => a.rank - b.rank || Number(a.stale) - Number(b.stale),
  );
  return { buckets, servingFallback: servingFallback && byKey.size > 0 };
}

function targetsOf(placed: readonly Placed[], load: number): Target[] {
  let weightSum = 0;
  for (const p of placed) weightSum += p.member.weight;
  return placed.map((p) => ({
    id: p.id,
    cluster: p.member.cluster,
    address: p.endpoint.addresses[0] ?? '',
    endpoint: p.endpoint,
    weight: p.member.weight,
    share: weightSum > 0 ? (load * p.member.weight) / weightSum : 0,
  }));
}

export function buildPlan(
  service: FederatedService,
  client: Locality | undefined,
  health: HealthView,
  opts: PlanOptions,
): Plan {
  const { buckets, servingFallback } = bucketsOf(service, client, health, opts);
  const counts = buckets.map((b) => {
    let total = 0;
    let eligible = 0;
    for (const p of b.placed) {
      if (!p.counted) continue;
      total++;
      if (p.reasons.length === 0) eligible++;
    }
    return {
      total,
      eligible,
      health: total > 0 ? Math.min(1, (eligible / total) * opts.overprovisioning) : 0,
    };
  });
  const normalizedHealth = Math.min(
    1,
    counts.reduce((s, c) => s + c.health, 0),
  );
  const panicAllowed = opts.panicThreshold > 0 && normalizedHealth < 1;
  // Nothing healthy anywhere: Envoy sends everything to the first level, in panic (when panic is on).
  const firstCounted = counts.findIndex((c) => c.total > 0);
  let remaining = 1;
  const tiers: Tier[] = [];
  const excluded: Exclusion[] = [];
  let totalAll = 0;
  let eligibleAll = 0;
  buckets.forEach((b, priority) => {
    const c = counts[priority]!;
    totalAll += c.total;
    eligibleAll += c.eligible;
    const panic = panicAllowed && c.total > 0 && c.eligible / c.total < opts.panicThreshold;
    let load: number;
    if (normalizedHealth > 0) load = Math.min(remaining, c.health / normalizedHealth);
    else load = panicAllowed && priority === firstCounted ? 1 : 0;
    // Float residue must not hand a sliver of traffic to a tier that should get none.
    if (load < 1e-12) load = 0;
    remaining = Math.max(0, remaining - load);
    const serving = b.placed.filter((p) => p.counted && (panic || p.reasons.length === 0));
    tiers.push({
      priority,
      scope: b.scope,
      locality: b.locality,
      regions: [...b.regions].sort(),
      stale: b.stale,
      total: c.total,
      eligible: c.eligible,
      health: c.health,
      load,
      panic,
      targets: targetsOf(serving, load),
    });
    for (const p of b.placed) {
      if (p.reasons.length === 0) continue;
      excluded.push({
        id: p.id,
        cluster: p.member.cluster,
        address: p.endpoint.addresses[0] ?? '',
        priority,
        reasons: p.reasons,
        ejectedUntil: p.ejectedUntil,
        detail: p.detail,
        servedInPanic: panic && p.counted,
      });
    }
  });
  const anyPanic = tiers.some((t) => t.panic && t.load > 0);
  return {
    service: service.key,
    locality: client,
    tiers,
    excluded,
    normalizedHealth,
    healthyFraction: totalAll > 0 ? eligibleAll / totalAll : 0,
    panic: anyPanic,
    servingFallback,
    empty: !tiers.some((t) => t.load > 0 && t.targets.length > 0),
  };
}
