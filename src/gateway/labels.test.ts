import { describe, expect, it } from 'vitest';
import type { LabelSelector } from '../watch/gateway-records.ts';
import { selectorMatches } from './labels.ts';

const sel = (s: Partial<LabelSelector>): LabelSelector => ({
  matchLabels: {},
  matchExpressions: [],
  ...s,
});

describe('selectorMatches', () => {
  const labels = { team: 'web', env: 'prod' };

  it('an empty selector selects every namespace', () => {
    expect(selectorMatches(sel({}), {})).toBe(true);
  });

  it('matchLabels needs every pair', () => {
    expect(selectorMatches(sel({ matchLabels: { team: 'web' } }), labels)).toBe(true);
    expect(selectorMatches(sel({ matchLabels: { team: 'web', env: 'dev' } }), labels)).toBe(false);
    expect(selectorMatches(sel({ matchLabels: { tier: 'x' } }), labels)).toBe(false);
  });

  it('In, NotIn, Exists and DoesNotExist read as in Kubernetes', () => {
    const expr = (
      operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist',
      key: string,
      values: string[] = [],
    ) => sel({ matchExpressions: [{ key, operator, values }] });
    expect(selectorMatches(expr('In', 'env', ['prod', 'stage']), labels)).toBe(true);
    expect(selectorMatches(expr('In', 'env', ['dev']), labels)).toBe(false);
    expect(selectorMatches(expr('In', 'missing', ['x']), labels)).toBe(false);
    expect(selectorMatches(expr('NotIn', 'env', ['dev']), labels)).toBe(true);
    expect(selectorMatches(expr('NotIn', 'env', ['prod']), labels)).toBe(false);
    // NotIn selects objects without the key at all.
    expect(selectorMatches(expr('NotIn', 'missing', ['x']), labels)).toBe(true);
    expect(selectorMatches(expr('Exists', 'team'), labels)).toBe(true);
    expect(selectorMatches(expr('Exists', 'missing'), labels)).toBe(false);
    expect(selectorMatches(expr('DoesNotExist', 'missing'), labels)).toBe(true);
    expect(selectorMatches(expr('DoesNotExist', 'team'), labels)).toBe(false);
  });

  it('matchLabels and matchExpressions must both hold', () => {
    const s = sel({
      matchLabels: { team: 'web' },
      matchExpressions: [{ key: 'env', operator: 'In', values: ['dev'] }],
    });
    expect(selectorMatches(s, labels)).toBe(false);
  });
});
