import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAGLEV_TABLE_SIZE } from '../config/defaults.ts';
import { MaglevTable } from './maglev.ts';
import { hashString, seededRandom } from './random.ts';

const hosts = (n: number, weight = 1) =>
  Array.from({ length: n }, (_, i) => ({ id: `c${i % 3}/127.10.${i >> 8}.${i & 255}`, weight }));

const randomKeys = (n: number, seed: number) => {
  const random = seededRandom(seed);
  return Array.from({ length: n }, () => Math.floor(random() * 2 ** 32));
};

function slotCounts(table: MaglevTable, n: number): number[] {
  const counts = new Array<number>(n).fill(0);
  for (const h of table.slots) counts[h]!++;
  return counts;
}

describe('MaglevTable', () => {
  it('fills every slot and gives equal hosts slot counts within one of each other', () => {
    for (const n of [1, 7, 100, 1000]) {
      const table = new MaglevTable(hosts(n));
      expect(table.size).toBe(MAGLEV_TABLE_SIZE);
      const counts = slotCounts(table, n);
      expect(counts.reduce((a, b) => a + b, 0)).toBe(MAGLEV_TABLE_SIZE);
      expect(Math.max(...counts) - Math.min(...counts)).toBeLessThanOrEqual(1);
    }
  });

  for (const n of [10, 100, 1000]) {
    it(`remaps at most 1/N + 2 % of keys when one of ${n} hosts goes`, () => {
      const all = hosts(n);
      const before = new MaglevTable(all);
      const keys = randomKeys(20_000, n);
      const removed = n >> 1;
      const rest = all.filter((_, i) => i !== removed);
      const after = new MaglevTable(rest);
      let moved = 0;
      for (const k of keys) {
        if (all[before.lookup(k)]!.id !== rest[after.lookup(k)]!.id) moved++;
      }
      expect(moved / keys.length).toBeLessThanOrEqual(1 / n + 0.02);
      // The removed host's keys had to move: about 1/N of them.
      expect(moved / keys.length).toBeGreaterThan(0.5 / n);
    });
  }

  it('builds the same table from the same hosts in any order', () => {
    const base = hosts(20).map((h, i) => ({ ...h, weight: 1 + (i % 4) }));
    const reference = new MaglevTable(base);
    const ids = Array.from(reference.slots, (i) => base[i]!.id);
    fc.assert(
      fc.property(fc.shuffledSubarray(base, { minLength: 20, maxLength: 20 }), (shuffled) => {
        const table = new MaglevTable(shuffled);
        expect(Array.from(table.slots, (i) => shuffled[i]!.id)).toEqual(ids);
      }),
      { seed: 42, numRuns: 10 },
    );
  });

  it('distributes slots and keys by weight', () => {
    const weighted = [1, 2, 3, 4].map((weight, i) => ({ id: `c${i}/127.10.0.${i}`, weight }));
    const table = new MaglevTable(weighted);
    const counts = slotCounts(table, 4);
    const keys = new Array<number>(4).fill(0);
    for (const k of randomKeys(20_000, 1)) keys[table.lookup(k)]!++;
    weighted.forEach((h, i) => {
      expect(Math.abs(counts[i]! / ((MAGLEV_TABLE_SIZE * h.weight) / 10) - 1)).toBeLessThan(0.01);
      expect(Math.abs(keys[i]! / ((20_000 * h.weight) / 10) - 1)).toBeLessThan(0.05);
    });
  });

  it('gives a weightless host no slot, and no host at all -1', () => {
    const table = new MaglevTable([
      { id: 'a', weight: 1 },
      { id: 'b', weight: 0 },
      { id: 'c', weight: 2 },
    ]);
    expect(slotCounts(table, 3)[1]).toBe(0);
    expect(new MaglevTable([{ id: 'a', weight: 0 }]).lookup(123)).toBe(-1);
    expect(new MaglevTable([]).lookup(123)).toBe(-1);
    expect(() => new MaglevTable([{ id: 'a', weight: -1 }])).toThrow(RangeError);
  });

  it('looks up any 32-bit hash, signed or not, in range', () => {
    const table = new MaglevTable(hosts(5));
    fc.assert(
      fc.property(fc.integer({ min: -(2 ** 31), max: 2 ** 32 - 1 }), (h) => {
        const i = table.lookup(h);
        expect(i >= 0 && i < 5).toBe(true);
        expect(table.lookup(h)).toBe(i);
      }),
      { seed: 42, numRuns: 1000 },
    );
    expect(table.lookup(-1)).toBe(table.lookup(2 ** 32 - 1));
    expect(table.lookup(hashString('client'))).toBe(table.lookup(hashString('client')));
  });

  it('works with a small table, as the Maglev paper describes it', () => {
    const table = new MaglevTable(hosts(3), 7);
    expect(table.slots.length).toBe(7);
    expect([...table.slots].every((h) => h >= 0 && h < 3)).toBe(true);
  });
});
