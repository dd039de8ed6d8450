// What routing produces and reads. Plain data: a plan is immutable once built, and
// everything here can be written as a literal in a test.
import type { Endpoint } from '../catalog/model.ts';

/** Where a client or an endpoint is. Any part may be unknown. */
export interface Locality {
  readonly region?: string | undefined;
  readonly zone?: string | undefined;
  readonly subzone?: string | undefined;
}

/** Where a client's locality came from: the locality table, this replica, nowhere, or the caller. */
export type LocalitySource = 'table' | 'self' | 'none' | 'given';

export interface ClientLocality {
  readonly locality: Locality | undefined;
  readonly source: LocalitySource;
  /** With source 'table': the matching rule's prefix length (how far the answer holds, for ECS). */
  readonly prefixLength?: number;
}

/** An endpoint's identity across catalog, health and proxy: "<cluster>/<address>". */
export function endpointId(cluster: string, address: string): string {
  return `${cluster}/${address}`;
}

// ---------------------------------------------------------------- health, read side

export type CheckState = 'unknown' | 'healthy' | 'unhealthy';

export interface EndpointHealth {
  /** The active check's verdict; unknown until its thresholds are met (counts as passing). */
  readonly check: CheckState;
  /** Why the last check failed, for explain. */
  readonly checkDetail?: string | undefined;
  /** Set while outlier detection has the endpoint ejected: when it may return (epoch ms). */
  readonly ejectedUntil?: number | undefined;
  /** What ejected it: consecutive-5xx or consecutive-gateway-failure. */
  readonly ejectionReason?: string | undefined;
}

/** What routing reads from health/. */
export interface HealthView {
  /** Changes whenever anything that can alter this service's eligibility changes. */
  serviceVersion(service: string): number;
  /**
   * A service's endpoints whose health changes routing (failing a check, or ejected),
   * by endpoint id; undefined when there are none. Passing and unchecked ones may be left out.
   */
  endpoints(service: string): ReadonlyMap<string, EndpointHealth> | undefined;
}

/** A health view with nothing to say: every endpoint is as Kubernetes reports it. */
export const NO_HEALTH: HealthView = {
  serviceVersion: () => 0,
  endpoints: () => undefined,
};

// ---------------------------------------------------------------- plans

/** Why an endpoint takes no traffic, or (panic) takes it though unhealthy. */
export type ExclusionReason = 'not-ready' | 'terminating' | 'ejected' | 'check-failing';

export type TierScope = 'subzone' | 'zone' | 'region' | 'failover' | 'other' | 'all';

export interface Target {
  readonly id: string;
  readonly cluster: string;
  readonly address: string;
  readonly endpoint: Endpoint;
  /** Relative weight inside its tier: its cluster's weight. */
  readonly weight: number;
  /** Absolute share of the service's traffic: tier load × weight / tier weight sum. */
  readonly share: number;
}

export interface Tier {
  /** 0 is the most preferred. */
  readonly priority: number;
  readonly scope: TierScope;
  /** The locality the tier covers, e.g. {region: 'us-east', zone: 'us-east-a'}; regions for failover/other. */
  readonly locality: Locality;
  readonly regions: readonly string[];
  /** The clusters in it are stale (API unreachable): ranked behind the fresh ones of the same scope. */
  readonly stale: boolean;
  /** Endpoints counted for health: every endpoint placed here except terminating ones. */
  readonly total: number;
  readonly eligible: number;
  /** min(1, eligible / total × overprovisioning). */
  readonly health: number;
  /** Share of the service's traffic this tier receives, 0..1. */
  readonly load: number;
  /** Balancing over all its endpoints regardless of health. */
  readonly panic: boolean;
  /** Who takes its load: the eligible endpoints, or (panic) all of them. */
  readonly targets: readonly Target[];
}

export interface Exclusion {
  readonly id: string;
  readonly cluster: string;
  readonly address: string;
  /** The tier it sits in. */
  readonly priority: number;
  readonly reasons: readonly ExclusionReason[];
  readonly ejectedUntil?: number | undefined;
  readonly detail?: string | undefined;
  /** In a panicking tier it takes traffic anyway. */
  readonly servedInPanic: boolean;
}

export interface Plan {
  readonly service: string;
  readonly locality: Locality | undefined;
  /** Every tier, in priority order, including those with no load. */
  readonly tiers: readonly Tier[];
  readonly excluded: readonly Exclusion[];
  /** Σ tier health, capped at 1 (Envoy's normalized total health). */
  readonly normalizedHealth: number;
  /** Eligible / total across the service. */
  readonly healthyFraction: number;
  /** Some tier is in panic. */
  readonly panic: boolean;
  /** No endpoint was ready anywhere, so serving (terminating) ones stand in. */
  readonly servingFallback: boolean;
  /** Nothing can take traffic. */
  readonly empty: boolean;
}
