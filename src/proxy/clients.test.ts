import { describe, expect, it } from 'vitest';
import type { Plan } from '../routing/types.ts';
import { ClientShares } from './clients.ts';

/** A plan whose tiers hold `n` endpoints (one listed twice, counted once). */
function plan(n: number): Plan {
  const targets = Array.from({ length: n }, (_, i) => ({ id: `c/127.9.0.${i}` }));
  return { tiers: [{ targets }, { targets: targets.slice(0, 1) }] } as unknown as Plan;
}

const SETTINGS = { share: 0.25, floor: 2, perEndpoint: 8, ipv4Prefix: 24, ipv6Prefix: 56 };

describe('ClientShares', () => {
  it('caps a client at share × endpoints × perEndpoint, never below the floor', () => {
    const c = new ClientShares(SETTINGS);
    expect(c.cap(plan(4))).toBe(8);
    expect(c.cap(plan(1))).toBe(2);
    expect(c.cap(plan(0))).toBe(2);
    c.reconfigure({ ...SETTINGS, share: 0 });
    expect(c.cap(plan(4))).toBe(Number.POSITIVE_INFINITY);
  });

  it('counts places per service and netblock; a place goes with its last holder', () => {
    const c = new ClientShares(SETTINGS);
    const p = plan(1);
    const a = c.admit('ns/a', '127.44.1.1', p);
    const b = c.admit('ns/a', '::ffff:127.44.1.2', p);
    expect(a && b).toBeTruthy();
    expect(c.admit('ns/a', '127.44.1.3', p)).toBeUndefined();
    expect(c.admit('ns/b', '127.44.1.3', p)).toBeDefined();
    expect(c.admit('ns/a', '127.44.2.1', p)).toBeDefined();
    a?.hold();
    a?.drop();
    expect(c.held('ns/a', '127.44.1.1')).toBe(2);
    a?.drop();
    a?.drop();
    expect(c.held('ns/a', '127.44.1.1')).toBe(1);
    expect(c.admit('ns/a', '127.44.1.3', p)).toBeDefined();
  });
});
