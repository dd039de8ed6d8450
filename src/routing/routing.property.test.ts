// Plans and pickers together, over services drawn at random (seeded): whatever the
// mix of localities, conditions, health and staleness, the invariants hold.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type EndpointSpec,
  healthView,
  type MemberSpec,
  service,
} from '../../test/fixtures/services.ts';
import { createPicker, hashKey, PICKER_KINDS } from './pickers.ts';
import { buildPlan } from './plan.ts';
import { seededRandom } from './random.ts';
import type { EndpointHealth, Locality } from './types.ts';

const PLACES: Locality[] = [
  { region: 'us-east', zone: 'us-east-a', subzone: 'r1' },
  { region: 'us-east', zone: 'us-east-a' },
  { region: 'us-east', zone: 'us-east-b' },
  { region: 'eu-west', zone: 'eu-west-a' },
  { region: 'ap-south', zone: 'ap-south-a' },
  {},
];

const endpointArb = fc.record({
  place: fc.integer({ min: 0, max: PLACES.length - 1 }),
  ready: fc.boolean(),
  serving: fc.boolean(),
  terminating: fc.boolean(),
  health: fc.constantFrom<EndpointHealth | undefined>(
    undefined,
    { check: 'healthy' },
    { check: 'unknown' },
    { check: 'unhealthy', checkDetail: 'HTTP 503' },
    { check: 'healthy', ejectedUntil: 5_000, ejectionReason: 'consecutive-5xx' },
  ),
});

const worldArb = fc.record({
  members: fc.array(
    fc.record({
      weight: fc.integer({ min: 1, max: 5 }),
      stale: fc.boolean(),
      endpoints: fc.array(endpointArb, { maxLength: 12 }),
    }),
    { minLength: 1, maxLength: 4 },
  ),
  client: fc.option(fc.integer({ min: 0, max: PLACES.length - 1 }), { nil: undefined }),
  panicThreshold: fc.constantFrom(0, 0.5),
  failover: fc.boolean(),
});

type World = typeof worldArb extends fc.Arbitrary<infer T> ? T : never;

function build(w: World) {
  const health: Record<string, EndpointHealth> = {};
  let n = 0;
  const members: MemberSpec[] = w.members.map((m, c) => ({
    cluster: `c${c}`,
    weight: m.weight,
    stale: m.stale,
    endpoints: m.endpoints.map((e): EndpointSpec => {
      const address = `127.${10 + c}.0.${n++}`;
      if (e.health) health[`c${c}/${address}`] = e.health;
      return {
        address,
        ...PLACES[e.place],
        ready: e.ready && !e.terminating,
        serving: e.serving,
        terminating: e.terminating,
      };
    }),
  }));
  const plan = buildPlan(
    service(members),
    w.client === undefined ? undefined : PLACES[w.client],
    healthView(health),
    {
      overprovisioning: 1.4,
      panicThreshold: w.panicThreshold,
      failoverOrder: w.failover ? { 'us-east': ['ap-south'] } : {},
    },
  );
  return plan;
}

describe('plans and pickers over random services (seeded)', () => {
  it('outside panic, no pick ever lands on an ineligible endpoint; every pick is in the plan', () => {
    fc.assert(
      fc.property(worldArb, fc.integer(), (w, seed) => {
        const plan = build(w);
        const excluded = new Set(plan.excluded.map((e) => e.id));
        const inPlan = new Set(
          plan.tiers.flatMap((t) => (t.load > 0 ? t.targets.map((x) => x.id) : [])),
        );
        for (const kind of PICKER_KINDS) {
          const picker = createPicker(kind, { random: seededRandom(seed) });
          for (let i = 0; i < 50; i++) {
            const t = picker.pick(plan, { hash: hashKey(`k${i}`) });
            if (plan.empty) {
              expect(t).toBeUndefined();
              continue;
            }
            expect(t).toBeDefined();
            expect(inPlan.has(t!.id)).toBe(true);
            if (!plan.panic) expect(excluded.has(t!.id)).toBe(false);
          }
        }
      }),
      { seed: 4242, numRuns: 300 },
    );
  });

  it('loads add up to 1 and shares to each tier load; stale never outranks fresh of the same scope', () => {
    fc.assert(
      fc.property(worldArb, (w) => {
        const plan = build(w);
        const total = plan.tiers.reduce((s, t) => s + t.load, 0);
        if (plan.empty && plan.tiers.every((t) => t.load === 0)) return;
        expect(total).toBeCloseTo(1, 9);
        for (const t of plan.tiers) {
          if (t.targets.length === 0) continue;
          expect(t.targets.reduce((s, x) => s + x.share, 0)).toBeCloseTo(t.load, 9);
        }
        plan.tiers.forEach((t, i) => {
          const next = plan.tiers[i + 1];
          if (t.stale && next && next.scope === t.scope) {
            expect(next.locality).not.toEqual(t.locality);
          }
        });
      }),
      { seed: 99, numRuns: 300 },
    );
  });
});
