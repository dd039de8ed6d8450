// Plan, tier and target literals for routing's unit tests and benchmarks: only
// what pickers read is meaningful, the rest is filled with plausible constants.
import type { Endpoint } from '../catalog/model.ts';
import { endpointId, type Plan, type Target, type Tier } from './types.ts';

export interface TargetSpec {
  readonly cluster?: string;
  readonly address: string;
  /** 1 unless given. */
  readonly weight?: number;
}

function endpoint(address: string): Endpoint {
  return {
    addresses: [address],
    addressType: 'IPv4',
    ports: [{ name: 'http', protocol: 'TCP', port: 8080 }],
    conditions: { ready: true, serving: true, terminating: false },
    locality: { region: 'r1', zone: 'z1', subzone: undefined },
    hostname: undefined,
    nodeName: undefined,
  };
}

/** A tier of priority `priority` taking `load` of the traffic, over the targets given. */
export function tier(priority: number, load: number, specs: readonly TargetSpec[]): Tier {
  const weightSum = specs.reduce((sum, s) => sum + (s.weight ?? 1), 0);
  const targets: Target[] = specs.map((s) => {
    const cluster = s.cluster ?? 'c1';
    const weight = s.weight ?? 1;
    return {
      id: endpointId(cluster, s.address),
      cluster,
      address: s.address,
      endpoint: endpoint(s.address),
      weight,
      share: weightSum > 0 ? (load * weight) / weightSum : 0,
    };
  });
  return {
    priority,
    scope: priority === 0 ? 'zone' : 'failover',
    locality: {},
    regions: [],
    stale: false,
    total: targets.length,
    eligible: targets.length,
    health: 1,
    load,
    panic: false,
    targets,
  };
}

/** A plan over the tiers given; empty when no tier has load. */
export function plan(tiers: readonly Tier[]): Plan {
  return {
    service: 'ns/svc',
    locality: undefined,
    tiers,
    excluded: [],
    normalizedHealth: 1,
    healthyFraction: 1,
    panic: false,
    servingFallback: false,
    empty: !tiers.some((t) => t.load > 0 && t.targets.length > 0),
  };
}

/** `count` targets 127.<10 + i>.<j>.<k> in cluster `cluster`, all of weight `weight`. */
export function targets(count: number, cluster = 'c1', weight = 1, from = 0): TargetSpec[] {
  return Array.from({ length: count }, (_, n) => {
    const i = from + n;
    return { cluster, weight, address: `127.${10 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}` };
  });
}
