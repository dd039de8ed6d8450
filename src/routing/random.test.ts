import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fmix32, hashString, seededRandom } from './random.ts';

const draw = (random: () => number, n: number) => Array.from({ length: n }, () => random());

describe('seededRandom', () => {
  it('gives the same sequence for the same seed, in [0, 1)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 32 - 1 }), (seed) => {
        const a = draw(seededRandom(seed), 200);
        expect(draw(seededRandom(seed), 200)).toEqual(a);
        for (const x of a) expect(x >= 0 && x < 1).toBe(true);
      }),
      { seed: 42, numRuns: 100 },
    );
  });

  it('gives unrelated sequences for nearby seeds', () => {
    const a = draw(seededRandom(1), 100);
    const b = draw(seededRandom(2), 100);
    expect(a.filter((x, i) => x === b[i])).toHaveLength(0);
  });

  it('fills 16 buckets evenly (chi-square, 15 degrees of freedom)', () => {
    const random = seededRandom(42);
    const n = 160_000;
    const buckets = new Array<number>(16).fill(0);
    for (let i = 0; i < n; i++) buckets[Math.floor(random() * 16)]!++;
    const expected = n / 16;
    const chi2 = buckets.reduce((sum, o) => sum + (o - expected) ** 2 / expected, 0);
    expect(chi2).toBeLessThan(37.7); // p = 0.001
  });
});

describe('hashString', () => {
  it('is a deterministic unsigned 32-bit number', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), fc.integer(), (s, seed) => {
        const h = hashString(s, seed);
        expect(Number.isInteger(h) && h >= 0 && h < 2 ** 32).toBe(true);
        expect(hashString(s, seed)).toBe(h);
      }),
      { seed: 42, numRuns: 200 },
    );
  });

  it('agrees with murmur3 on the empty string and depends on the seed', () => {
    expect(hashString('')).toBe(0);
    expect(hashString('127.10.0.1', 1)).not.toBe(hashString('127.10.0.1', 2));
  });

  it('uses the whole of every UTF-16 code unit', () => {
    // Byte-truncating ports would give these the same hash.
    expect(hashString('\u0141')).not.toBe(hashString('\u0041'));
    expect(hashString('ab')).not.toBe(hashString('ba'));
  });

  it('avalanches: one changed character flips about half of the bits', () => {
    const random = seededRandom(7);
    let flipped = 0;
    const n = 2000;
    for (let i = 0; i < n; i++) {
      const s = `client-${Math.floor(random() * 1e9)}`;
      const at = Math.floor(random() * s.length);
      const t = s.slice(0, at) + String.fromCharCode(s.charCodeAt(at) ^ 1) + s.slice(at + 1);
      flipped += popcount(hashString(s) ^ hashString(t));
    }
    expect(flipped / n).toBeGreaterThan(15);
    expect(flipped / n).toBeLessThan(17);
  });

  it('spreads sequential addresses evenly over buckets', () => {
    const buckets = new Array<number>(64).fill(0);
    const n = 64_000;
    for (let i = 0; i < n; i++) buckets[hashString(`127.10.${i >> 8}.${i & 255}`) % 64]!++;
    const expected = n / 64;
    const chi2 = buckets.reduce((sum, o) => sum + (o - expected) ** 2 / expected, 0);
    expect(chi2).toBeLessThan(103.4); // 63 degrees of freedom, p = 0.001
  });
});

describe('fmix32', () => {
  it('is a bijection on a sample and maps 0 to 0', () => {
    expect(fmix32(0)).toBe(0);
    const seen = new Set<number>();
    for (let i = 0; i < 10_000; i++) seen.add(fmix32(i));
    expect(seen.size).toBe(10_000);
  });
});

function popcount(x: number): number {
  let n = 0;
  for (let v = x >>> 0; v !== 0; v &= v - 1) n++;
  return n;
}
