import { describe, expect, it } from 'vitest';
import type { Plan, Target } from '../routing/types.ts';
import { pickTarget } from './picks.ts';
import type { Policy } from './route.ts';

// One endpoint: the picker always names it, as a backend of one pod has it.
const only = { id: 'alpha/127.16.0.1:80', cluster: 'alpha' } as Target;
const plan = { tiers: [{ targets: [only] }] } as unknown as Plan;
const policy = { picker: { pick: () => only }, hashOn: undefined } as unknown as Policy;
const free = { isFull: () => false, outstanding: () => 0 };

describe('pickTarget', () => {
  const state = (tried: string[]) => ({
    plan,
    hash: undefined,
    tried: new Set(tried),
    clusters: new Set(tried.length > 0 ? ['alpha'] : []),
  });

  it('picks the endpoint first, and no endpoint tried already for a retry', () => {
    expect(pickTarget(state([]), policy, free)).toBe(only);
    expect(pickTarget(state([only.id]), policy, free)).toBeUndefined();
  });

  it('reuse: a retry goes back to an endpoint tried when every one was', () => {
    expect(pickTarget(state([only.id]), policy, free, true)).toBe(only);
    expect(pickTarget(state([only.id]), policy, { ...free, isFull: () => true }, true)).toBe(
      'full',
    );
  });
});
