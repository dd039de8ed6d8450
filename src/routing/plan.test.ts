import { describe, expect, it } from 'vitest';
import { endpoints, healthView, type MemberSpec, service } from '../../test/fixtures/services.ts';
import { buildPlan, type PlanOptions } from './plan.ts';
import { NO_HEALTH, type Plan } from './types.ts';

const OPTS: PlanOptions = { overprovisioning: 1.4, panicThreshold: 0.5, failoverOrder: {} };
const CLIENT = { region: 'us-east', zone: 'us-east-a' };
const P0 = { region: 'us-east', zone: 'us-east-a' };
const P1 = { region: 'us-east', zone: 'us-east-b' };
const P2 = { region: 'eu-west', zone: 'eu-west-a' };

/** Whole percents that add up to 100, by largest remainder: how Envoy's documentation rounds. */
function percents(values: readonly number[]): number[] {
  const raw = values.map((v) => v * 100);
  const out = raw.map(Math.floor);
  const short = Math.round(100 - out.reduce((s, v) => s + v, 0));
  const order = raw.map((v, i) => [v - Math.floor(v), i] as const).sort((a, b) => b[0] - a[0]);
  for (let k = 0; k < short && k < order.length; k++) out[order[k]![1]]!++;
  return out;
}

/** A service with 100 endpoints per level (so "71 %" is 71 ready ones), levels P0, P1, P2. */
function levels(...healthy: number[]): Plan {
  const members: MemberSpec[] = healthy.map((h, i) => ({
    cluster: `c${i}`,
    endpoints: endpoints(i, 100, [P0, P1, P2][i]!, h),
  }));
  return buildPlan(service(members), CLIENT, NO_HEALTH, OPTS);
}

function loads(plan: Plan): number[] {
  const l = percents(plan.tiers.map((t) => t.load));
  // The documented tables show only levels that received some traffic share or exist.
  return l;
}

describe('priority levels: Envoy documentation figures', () => {
  // docs/root/intro/arch_overview/upstream/load_balancing/priority.rst
  it.each([
    [100, 100, [100, 0]],
    [72, 100, [100, 0]],
    [71, 100, [99, 1]],
    [50, 100, [70, 30]],
    [25, 100, [35, 65]],
    [0, 100, [0, 100]],
    [72, 72, [100, 0]],
    [71, 71, [99, 1]],
    [50, 50, [70, 30]],
    [25, 25, [50, 50]],
  ])('P0 %i %% and P1 %i %% healthy → %j', (h0, h1, want) => {
    expect(loads(levels(h0, h1))).toEqual(want);
  });

  it.each([
    [100, 100, 100, [100, 0, 0]],
    [72, 72, 100, [100, 0, 0]],
    [71, 71, 100, [99, 1, 0]],
    [50, 50, 100, [70, 30, 0]],
    [25, 100, 100, [35, 65, 0]],
    [25, 25, 100, [35, 35, 30]],
    [25, 25, 20, [36, 36, 28]],
  ])('P0 %i, P1 %i, P2 %i %% healthy → %j', (h0, h1, h2, want) => {
    expect(loads(levels(h0, h1, h2))).toEqual(want);
  });

  it('50 % healthy in P0 keeps 70 % there and spills 30 % to P1', () => {
    const plan = levels(50, 100);
    expect(plan.tiers[0]!.load).toBeCloseTo(0.7, 12);
    expect(plan.tiers[1]!.load).toBeCloseTo(0.3, 12);
  });
});

describe('panic: Envoy documentation figures', () => {
  // docs/root/intro/arch_overview/upstream/load_balancing/panic_threshold.rst. Two rows of
  // that page's second table (50/60 → 50/50, 25/100 → 25/75) contradict the page's own
  // formula and its priority-level page; they are left out, the formula's rows are kept.
  it.each([
    [72, 100, [100, 0], [false, false], 100],
    [71, 100, [99, 1], [false, false], 100],
    [50, 100, [70, 30], [false, false], 100],
    [25, 100, [35, 65], [false, false], 100],
    [0, 100, [0, 100], [false, false], 100],
    [72, 72, [100, 0], [false, false], 100],
    [71, 71, [99, 1], [false, false], 100],
    [25, 25, [50, 50], [true, true], 70],
    [5, 65, [7, 93], [true, false], 98],
  ])('P0 %i, P1 %i → traffic %j, panic %j, normalized health %i', (h0, h1, want, panic, norm) => {
    const plan = levels(h0, h1);
    expect(loads(plan)).toEqual(want);
    expect(plan.tiers.map((t) => t.panic)).toEqual(panic);
    expect(Math.round(plan.normalizedHealth * 100)).toBe(norm);
    expect(plan.panic).toBe(panic.includes(true));
  });

  it('a panicking tier balances over all its endpoints, healthy or not, and says so', () => {
    const plan = levels(25, 25);
    expect(plan.tiers[0]!.targets).toHaveLength(100);
    const unhealthy = plan.excluded.filter((e) => e.priority === 0);
    expect(unhealthy).toHaveLength(75);
    expect(unhealthy.every((e) => e.servedInPanic && e.reasons.includes('not-ready'))).toBe(true);
  });

  it('nothing healthy anywhere: all traffic to P0, in panic', () => {
    const plan = levels(0, 0);
    expect(loads(plan)).toEqual([100, 0]);
    expect(plan.tiers[0]!.panic).toBe(true);
    expect(plan.tiers[0]!.targets).toHaveLength(100);
    expect(plan.empty).toBe(false);
  });

  it('panic threshold 0 disables panic: nothing healthy means nothing to route to', () => {
    const members = [{ cluster: 'a', endpoints: endpoints(0, 10, P0, 0) }];
    const plan = buildPlan(service(members), CLIENT, NO_HEALTH, { ...OPTS, panicThreshold: 0 });
    expect(plan.panic).toBe(false);
    expect(plan.empty).toBe(true);
    expect(plan.tiers[0]!.targets).toHaveLength(0);
    const low = buildPlan(
      service([{ cluster: 'a', endpoints: endpoints(0, 10, P0, 2) }]),
      CLIENT,
      NO_HEALTH,
      { ...OPTS, panicThreshold: 0 },
    );
    expect(low.tiers[0]!.targets.map((t) => t.address)).toEqual(['127.10.0.0', '127.10.0.1']);
    expect(low.tiers[0]!.load).toBe(1);
  });

  it('a single tier panics exactly when under the threshold', () => {
    const one = (ready: number) =>
      buildPlan(
        service([{ cluster: 'a', endpoints: endpoints(0, 10, P0, ready) }]),
        undefined,
        NO_HEALTH,
        OPTS,
      );
    expect(one(5).panic).toBe(false);
    expect(one(5).tiers[0]!.targets).toHaveLength(5);
    expect(one(4).panic).toBe(true);
    expect(one(4).tiers[0]!.targets).toHaveLength(10);
  });
});

describe('tiers by locality', () => {
  const world: MemberSpec[] = [
    {
      cluster: 'alpha',
      endpoints: [
        { address: '127.10.0.1', region: 'us-east', zone: 'us-east-a', subzone: 'rack1' },
        { address: '127.10.0.2', region: 'us-east', zone: 'us-east-a', subzone: 'rack2' },
        { address: '127.10.0.3', region: 'us-east', zone: 'us-east-b' },
      ],
    },
    {
      cluster: 'gamma',
      endpoints: [{ address: '127.12.0.1', region: 'eu-west', zone: 'eu-west-a' }],
    },
    {
      cluster: 'delta',
      endpoints: [{ address: '127.13.0.1', region: 'ap-south', zone: 'ap-south-a' }],
    },
    { cluster: 'omega', endpoints: [{ address: '127.14.0.1' }] },
  ];
  const shape = (plan: Plan) =>
    plan.tiers.map((t) => [t.scope, t.targets.map((x) => x.address).join(',')]);

  it('P0 same zone, P1 same region, then every other region together', () => {
    expect(shape(buildPlan(service(world), CLIENT, NO_HEALTH, OPTS))).toEqual([
      ['zone', '127.10.0.1,127.10.0.2'],
      ['region', '127.10.0.3'],
      ['other', '127.12.0.1,127.13.0.1,127.14.0.1'],
    ]);
  });

  it('a client subzone adds a tier before the rest of its zone', () => {
    const plan = buildPlan(service(world), { ...CLIENT, subzone: 'rack2' }, NO_HEALTH, OPTS);
    expect(shape(plan).slice(0, 2)).toEqual([
      ['subzone', '127.10.0.2'],
      ['zone', '127.10.0.1'],
    ]);
  });

  it('the failover order ranks listed regions in order; unlisted ones come last, together', () => {
    const opts = { ...OPTS, failoverOrder: { 'us-east': ['ap-south', 'eu-west'] } };
    const plan = buildPlan(service(world), CLIENT, NO_HEALTH, opts);
    expect(shape(plan).slice(2)).toEqual([
      ['failover', '127.13.0.1'],
      ['failover', '127.12.0.1'],
      ['other', '127.14.0.1'],
    ]);
    expect(plan.tiers[2]!.locality).toEqual({ region: 'ap-south' });
    expect(plan.tiers[4]!.regions).toEqual([]);
  });

  it('a client in another region starts from its own region', () => {
    const plan = buildPlan(
      service(world),
      { region: 'eu-west', zone: 'eu-west-a' },
      NO_HEALTH,
      OPTS,
    );
    expect(shape(plan)).toEqual([
      ['zone', '127.12.0.1'],
      ['other', '127.10.0.1,127.10.0.2,127.10.0.3,127.13.0.1,127.14.0.1'],
    ]);
  });

  it('no client locality: one tier over everything', () => {
    const plan = buildPlan(service(world), undefined, NO_HEALTH, OPTS);
    expect(shape(plan)).toEqual([
      ['all', '127.10.0.1,127.10.0.2,127.10.0.3,127.12.0.1,127.13.0.1,127.14.0.1'],
    ]);
    expect(plan.tiers[0]!.load).toBe(1);
  });
});

describe('eligibility', () => {
  const id = (a: string) => `alpha/${a}`;
  const base = (over: Partial<Record<string, object>> = {}) =>
    service([
      {
        cluster: 'alpha',
        endpoints: ['127.10.0.1', '127.10.0.2', '127.10.0.3', '127.10.0.4'].map((address) => ({
          address,
          ...P0,
          ...over[address],
        })),
      },
    ]);

  it('excludes not ready, ejected and failing endpoints, each with its reason', () => {
    const svc = base({ '127.10.0.2': { ready: false } });
    const health = healthView({
      [id('127.10.0.3')]: {
        check: 'healthy',
        ejectedUntil: 90_000,
        ejectionReason: 'consecutive-5xx',
      },
      [id('127.10.0.4')]: { check: 'unhealthy', checkDetail: 'HTTP 503' },
    });
    const plan = buildPlan(svc, CLIENT, health, { ...OPTS, panicThreshold: 0 });
    expect(plan.tiers[0]!.targets.map((t) => t.address)).toEqual(['127.10.0.1']);
    expect(plan.excluded.map((e) => [e.address, e.reasons, e.ejectedUntil, e.detail])).toEqual([
      ['127.10.0.2', ['not-ready'], undefined, undefined],
      ['127.10.0.3', ['ejected'], 90_000, undefined],
      ['127.10.0.4', ['check-failing'], undefined, 'HTTP 503'],
    ]);
    expect(plan.healthyFraction).toBe(0.25);
  });

  it('an endpoint not yet checked counts as passing', () => {
    const plan = buildPlan(
      base(),
      CLIENT,
      healthView({ [id('127.10.0.1')]: { check: 'unknown' } }),
      OPTS,
    );
    expect(plan.tiers[0]!.eligible).toBe(4);
  });

  it('terminating endpoints take no traffic and do not count against health', () => {
    const svc = base({ '127.10.0.4': { ready: false, serving: true, terminating: true } });
    const plan = buildPlan(svc, CLIENT, NO_HEALTH, OPTS);
    expect(plan.tiers[0]!.total).toBe(3);
    expect(plan.tiers[0]!.health).toBe(1);
    expect(plan.excluded.map((e) => e.reasons)).toEqual([['terminating']]);
    expect(plan.servingFallback).toBe(false);
  });

  it('serving endpoints stand in when nothing is ready anywhere', () => {
    const svc = base({
      '127.10.0.1': { ready: false, serving: true, terminating: true },
      '127.10.0.2': { ready: false, serving: false, terminating: true },
      '127.10.0.3': { ready: false },
      '127.10.0.4': { ready: false },
    });
    const plan = buildPlan(svc, CLIENT, NO_HEALTH, { ...OPTS, panicThreshold: 0 });
    expect(plan.servingFallback).toBe(true);
    expect(plan.tiers[0]!.targets.map((t) => t.address)).toEqual(['127.10.0.1']);
    expect(plan.excluded.map((e) => [e.address, e.reasons])).toEqual([
      ['127.10.0.2', ['terminating']],
      ['127.10.0.3', ['not-ready']],
      ['127.10.0.4', ['not-ready']],
    ]);
  });
});

describe('clusters inside a tier', () => {
  it('cluster weights set the shares inside a tier', () => {
    const svc = service([
      { cluster: 'a', weight: 3, endpoints: [{ address: '127.10.0.1', ...P0 }] },
      { cluster: 'b', weight: 1, endpoints: [{ address: '127.11.0.1', ...P0 }] },
    ]);
    const plan = buildPlan(svc, CLIENT, NO_HEALTH, OPTS);
    expect(plan.tiers).toHaveLength(1);
    expect(plan.tiers[0]!.targets.map((t) => [t.cluster, t.share])).toEqual([
      ['a', 0.75],
      ['b', 0.25],
    ]);
  });

  it('a stale cluster ranks behind the fresh ones of its scope, ahead of wider scopes', () => {
    const svc = service([
      { cluster: 'fresh', endpoints: endpoints(0, 10, P0, 5) },
      { cluster: 'old', stale: true, endpoints: endpoints(1, 10, P0) },
      { cluster: 'far', endpoints: endpoints(2, 10, P2) },
    ]);
    const plan = buildPlan(svc, CLIENT, NO_HEALTH, OPTS);
    expect(plan.tiers.map((t) => [t.scope, t.stale, Math.round(t.load * 100)])).toEqual([
      ['zone', false, 70],
      ['zone', true, 30],
      ['other', false, 0],
    ]);
    const healthy = buildPlan(
      service([
        { cluster: 'fresh', endpoints: endpoints(0, 10, P0) },
        { cluster: 'old', stale: true, endpoints: endpoints(1, 10, P0) },
      ]),
      CLIENT,
      NO_HEALTH,
      OPTS,
    );
    expect(healthy.tiers.map((t) => t.load)).toEqual([1, 0]);
  });

  it('a service with no endpoints yields an empty plan', () => {
    const plan = buildPlan(service([{ cluster: 'a', endpoints: [] }]), CLIENT, NO_HEALTH, OPTS);
    expect(plan.empty).toBe(true);
    expect(plan.tiers).toEqual([]);
  });
});
