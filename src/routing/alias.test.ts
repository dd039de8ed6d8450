import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AliasTable } from './alias.ts';
import { seededRandom } from './random.ts';

/** The share of each item over an even grid of u: the table's exact distribution, up to the grid. */
function gridShares(table: AliasTable, n: number, steps: number): number[] {
  const counts = new Array<number>(n).fill(0);
  for (let k = 0; k < steps; k++) counts[table.sample((k + 0.5) / steps)]!++;
  return counts.map((c) => c / steps);
}

const weights = fc.array(
  fc.oneof(fc.constant(0), fc.double({ min: 0.01, max: 100, noNaN: true })),
  {
    minLength: 1,
    maxLength: 40,
  },
);

describe('AliasTable', () => {
  it('samples each item with probability weight / total', () => {
    fc.assert(
      fc.property(weights, (ws) => {
        const total = ws.reduce((a, b) => a + b, 0);
        fc.pre(total > 0);
        const shares = gridShares(new AliasTable(ws), ws.length, ws.length * 20_000);
        ws.forEach((w, i) => {
          expect(Math.abs(shares[i]! - w / total)).toBeLessThan(1e-3);
        });
      }),
      { seed: 42, numRuns: 200 },
    );
  });

  it('never samples a zero weight, whatever the draws', () => {
    fc.assert(
      fc.property(
        weights,
        fc.array(fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true })),
        (ws, us) => {
          fc.pre(ws.some((w) => w > 0));
          const table = new AliasTable(ws);
          for (const u of [...us, 0, 1 - 2 ** -53]) expect(ws[table.sample(u)]).toBeGreaterThan(0);
          for (const u of us) expect(ws[table.sample2(u, 1 - u)]).toBeGreaterThan(0);
        },
      ),
      { seed: 42, numRuns: 300 },
    );
  });

  it('lands within ±5 % of the weights over 10,000 seeded draws', () => {
    const ws = [2, 3, 5];
    const table = new AliasTable(ws);
    const random = seededRandom(42);
    const counts = [0, 0, 0];
    for (let i = 0; i < 10_000; i++) counts[table.sample(random())]!++;
    ws.forEach((w, i) => {
      expect(Math.abs(counts[i]! / (w * 1000) - 1)).toBeLessThan(0.05);
    });
  });

  it('takes the plain-index path for equal weights and a single item', () => {
    const equal = new AliasTable([3, 3, 3, 3]);
    expect(equal.uniform).toBe(true);
    expect([0, 0.26, 0.5, 0.99].map((u) => equal.sample(u))).toEqual([0, 1, 2, 3]);
    const one = new AliasTable([7]);
    expect(one.size).toBe(1);
    expect(one.sample(0.999)).toBe(0);
    expect(new AliasTable([1, 1, 0]).uniform).toBe(false);
  });

  it('has nothing to sample without a positive weight', () => {
    expect(new AliasTable([]).sample(0.5)).toBe(-1);
    expect(new AliasTable([0, 0]).sample(0.5)).toBe(-1);
    expect(new AliasTable([0, 0]).size).toBe(0);
  });

  it('rejects weights that are negative or not finite', () => {
    expect(() => new AliasTable([1, -1])).toThrow(RangeError);
    expect(() => new AliasTable([Number.NaN])).toThrow(RangeError);
    expect(() => new AliasTable([Number.POSITIVE_INFINITY])).toThrow(RangeError);
  });
});
