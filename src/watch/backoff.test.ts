import { describe, expect, it } from 'vitest';
import { Backoff } from './backoff.ts';

function clock(start = 0) {
  let t = start;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

describe('Backoff', () => {
  it('starts at 0.8 s, doubles, and caps at 30 s (no jitter at random 0)', () => {
    const c = clock();
    const b = new Backoff({}, c.now, () => 0);
    const waits = Array.from({ length: 8 }, () => b.next());
    expect(waits).toEqual([800, 1600, 3200, 6400, 12_800, 25_600, 30_000, 30_000]);
  });

  it('shortens each wait by up to 20 % at random, never above the cap', () => {
    const c = clock();
    const b = new Backoff({}, c.now, () => 0.999);
    expect(b.next()).toBeCloseTo(800 * (1 - 0.2 * 0.999));
    for (let i = 0; i < 10; i++) {
      const w = b.next();
      expect(w).toBeLessThanOrEqual(30_000);
      expect(w).toBeGreaterThan(0);
    }
  });

  it('starts over after 2 minutes without an error', () => {
    const c = clock();
    const b = new Backoff({}, c.now, () => 0);
    for (let i = 0; i < 5; i++) b.next();
    c.advance(119_999);
    expect(b.next()).toBe(25_600);
    c.advance(120_000);
    expect(b.next()).toBe(800);
  });
});
