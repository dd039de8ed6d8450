import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { plan, type TargetSpec, targets, tier } from '../../test/fixtures/plans.ts';
import {
  createPicker,
  hashKey,
  PICKER_KINDS,
  type PickContext,
  type PickerKind,
} from './pickers.ts';
import { seededRandom } from './random.ts';
import type { Plan, Target } from './types.ts';

/** Ids picked n times; maglev gets a fresh key per pick from the same seed. */
function pickIds(
  kind: PickerKind,
  p: Plan,
  seed: number,
  n: number,
  ctx: PickContext = {},
): string[] {
  const picker = createPicker(kind, { random: seededRandom(seed) });
  const keys = seededRandom(seed + 1);
  return Array.from({ length: n }, () => {
    const hash = kind === 'maglev' ? Math.floor(keys() * 2 ** 32) : undefined;
    return picker.pick(p, { ...ctx, hash })?.id ?? 'none';
  });
}

function counts(ids: readonly string[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const id of ids) m.set(id, (m.get(id) ?? 0) + 1);
  return m;
}

/** Asserts each id's count is within ±5 % (relative) of n × its expected share. */
function expectShares(ids: readonly string[], shares: Record<string, number>): void {
  const got = counts(ids);
  for (const [id, share] of Object.entries(shares)) {
    expect(Math.abs((got.get(id) ?? 0) / (ids.length * share) - 1), id).toBeLessThan(0.05);
  }
}

const weighted: TargetSpec[] = [
  { cluster: 'a', address: '127.10.0.1', weight: 2 },
  { cluster: 'b', address: '127.10.0.2', weight: 3 },
  { cluster: 'c', address: '127.10.0.3', weight: 5 },
];
const weightedPlan = plan([tier(0, 1, weighted)]);
const weightedShares = { 'a/127.10.0.1': 0.2, 'b/127.10.0.2': 0.3, 'c/127.10.0.3': 0.5 };
const twoTiers = plan([tier(0, 0.7, targets(3, 'near')), tier(1, 0.3, targets(2, 'far'))]);

// Arbitrary plans: tiers with loads (some 0), targets (some none) and weights (some 0).
const arbitraryPlan = fc
  .array(
    fc.record({
      load: fc.oneof(fc.constant(0), fc.double({ min: 0.01, max: 1, noNaN: true })),
      weights: fc.array(fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 5 })), { maxLength: 6 }),
    }),
    { minLength: 1, maxLength: 4 },
  )
  .map((specs) => {
    const sum = specs.reduce((s, t) => s + t.load, 0) || 1;
    return plan(
      specs.map((t, p) =>
        tier(
          p,
          t.load / sum,
          t.weights.map((weight, i) => ({ cluster: `p${p}`, address: `127.10.${p}.${i}`, weight })),
        ),
      ),
    );
  });

const pickable = (p: Plan): Set<Target> =>
  new Set(p.tiers.filter((t) => t.load > 0).flatMap((t) => t.targets.filter((x) => x.weight > 0)));

describe('every picker', () => {
  it('picks the same sequence from the same seed', () => {
    fc.assert(
      fc.property(arbitraryPlan, fc.nat(), fc.constantFrom(...PICKER_KINDS), (p, seed, kind) => {
        expect(pickIds(kind, p, seed, 50)).toEqual(pickIds(kind, p, seed, 50));
      }),
      { seed: 42, numRuns: 200 },
    );
  });

  it('picks only weighted targets of loaded tiers of the plan, and something when it can', () => {
    fc.assert(
      fc.property(arbitraryPlan, fc.nat(), fc.constantFrom(...PICKER_KINDS), (p, seed, kind) => {
        const allowed = pickable(p);
        const picker = createPicker(kind, { random: seededRandom(seed) });
        const keys = seededRandom(seed);
        for (let i = 0; i < 100; i++) {
          const got = picker.pick(p, {
            hash: Math.floor(keys() * 2 ** 32),
            outstanding: () => i % 3,
          });
          if (allowed.size === 0) expect(got).toBeUndefined();
          else expect(allowed.has(got!)).toBe(true);
        }
      }),
      { seed: 42, numRuns: 300 },
    );
  });

  it('returns undefined for an empty plan or one whose loaded tiers have no targets', () => {
    const noTargets = plan([tier(0, 1, [])]);
    const unloaded = { ...plan([tier(0, 0, targets(2))]), empty: false };
    for (const kind of PICKER_KINDS) {
      const picker = createPicker(kind, { random: seededRandom(1) });
      expect(picker.pick(plan([]), { hash: 1 })).toBeUndefined();
      expect(picker.pick(noTargets, { hash: 1 })).toBeUndefined();
      expect(picker.pick(unloaded, { hash: 1 })).toBeUndefined();
      expect(picker.pick({ ...weightedPlan, empty: true }, { hash: 1 })).toBeUndefined();
    }
  });

  it('respects tier loads of 0.7 / 0.3 over 10,000 picks', () => {
    for (const kind of PICKER_KINDS) {
      const ids = pickIds(kind, twoTiers, 42, 10_000);
      const near = ids.filter((id) => id.startsWith('near/')).length;
      expect(Math.abs(near / 7000 - 1), kind).toBeLessThan(0.05);
      expect(Math.abs((ids.length - near) / 3000 - 1), kind).toBeLessThan(0.05);
    }
  });
});

describe('random and p2c', () => {
  it('land within ±5 % of the weights over 10,000 picks (p2c with equal outstanding)', () => {
    expectShares(pickIds('random', weightedPlan, 42, 10_000), weightedShares);
    expectShares(pickIds('p2c', weightedPlan, 42, 10_000), weightedShares);
    expectShares(
      pickIds('p2c', weightedPlan, 43, 10_000, { outstanding: () => 4 }),
      weightedShares,
    );
  });
});

describe('p2c', () => {
  it('prefers the less loaded of the two it draws', () => {
    const p = plan([tier(0, 1, targets(2))]);
    const busy = p.tiers[0]!.targets[0]!.id;
    const ids = pickIds('p2c', p, 42, 10_000, { outstanding: (id) => (id === busy ? 100 : 0) });
    // It loses only when both draws are the busy one: 1/4 of the time.
    expect(ids.filter((id) => id !== busy).length / ids.length).toBeGreaterThanOrEqual(0.7);
  });

  it('asks for at most two outstanding counts per pick, whatever the tier size', () => {
    const p = plan([tier(0, 1, targets(10_000))]);
    let calls = 0;
    const picker = createPicker('p2c', { random: seededRandom(3) });
    const outstanding = () => {
      calls++;
      return 0;
    };
    for (let i = 0; i < 1000; i++) picker.pick(p, { outstanding });
    expect(calls).toBe(2000);
  });
});

describe('round-robin', () => {
  it('cycles exactly through equal weights, and starts afresh with a new plan', () => {
    const p = plan([tier(0, 1, targets(3))]);
    const ids = pickIds('round-robin', p, 0, 7);
    const [a, b, c] = p.tiers[0]!.targets.map((t) => t.id);
    expect(ids).toEqual([a, b, c, a, b, c, a]);
    const picker = createPicker('round-robin', { random: seededRandom(0) });
    picker.pick(p);
    expect(picker.pick(plan([tier(0, 1, targets(3))]))?.id).toBe(a);
  });

  it('follows weights and tier loads exactly over a whole cycle, smoothly', () => {
    const ids = pickIds('round-robin', weightedPlan, 0, 1000);
    expect(Object.fromEntries(counts(ids))).toEqual({
      'a/127.10.0.1': 200,
      'b/127.10.0.2': 300,
      'c/127.10.0.3': 500,
    });
    // Smooth: the heaviest never comes more than twice in a row at weights 2/3/5.
    expect(ids.join(',')).not.toContain(['c/127.10.0.3', 'c/127.10.0.3', 'c/127.10.0.3'].join(','));
    const tiers = pickIds('round-robin', twoTiers, 0, 10);
    expect(tiers.filter((id) => id.startsWith('near/'))).toHaveLength(7);
  });
});

describe('maglev', () => {
  it('sends a key to the same target every time, and keys by weight', () => {
    const picker = createPicker('maglev', { random: seededRandom(1) });
    const hash = hashKey('session-1234');
    const first = picker.pick(weightedPlan, { hash });
    for (let i = 0; i < 10; i++) expect(picker.pick(weightedPlan, { hash })).toBe(first);
    expectShares(pickIds('maglev', weightedPlan, 42, 10_000), weightedShares);
  });

  it('chooses the tier independently of the slot', () => {
    // Were tier and slot correlated, some of the four would take far more than a quarter.
    const p = plan([tier(0, 0.5, targets(2, 'near')), tier(1, 0.5, targets(2, 'far'))]);
    const ids = pickIds('maglev', p, 42, 10_000);
    expectShares(
      ids,
      Object.fromEntries(
        pickable(p)
          .values()
          .map((t) => [t.id, 0.25]),
      ),
    );
  });

  it('picks at random by weight when the request has no key', () => {
    const picker = createPicker('maglev', { random: seededRandom(5) });
    const ids = Array.from({ length: 10_000 }, () => picker.pick(weightedPlan)!.id);
    expectShares(ids, weightedShares);
  });
});
