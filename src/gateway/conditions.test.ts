// The literal prefix a path pattern is screened by: never longer than what every
// match starts with (a longer one would turn down a path the pattern matches).
import { describe, expect, it } from 'vitest';
import { seededRandom } from '../routing/random.ts';
import { anchored, literalPrefix } from './conditions.ts';

describe('literalPrefix', () => {
  it.each([
    ['/r1/[a-z]+', '/r1/'],
    ['/static/.*\\.(css|js)', '/static/'],
    ['/api/v1', '/api/v1'],
    ['/ab*c', '/a'],
    ['/ab?c', '/a'],
    ['/ab{0,2}c', '/a'],
    ['/ab+c', '/ab'],
    ['/a\\|b', '/a'],
    ['/a[\\]|]b', '/a'],
    ['/x(/y|/z)', '/x'],
    ['/a|/b', ''],
    ['/a)|(/b', ''],
    ['/a[)]|b', ''],
    ['.*', ''],
  ])('%s → %s', (pattern, prefix) => {
    expect(literalPrefix(pattern)).toBe(prefix);
  });

  it('every value a pattern matches starts with it (random patterns, every short value)', () => {
    const random = seededRandom(21);
    const tokens = [
      'a',
      'b',
      '/',
      '|',
      '(',
      ')',
      '*',
      '?',
      '+',
      '[a|]',
      '\\|',
      '{1,2}',
      '.',
      '(?:',
    ];
    const alphabet = ['a', 'b', '/', '|'];
    const values = [''];
    for (let n = 0; n < 4; n++)
      for (const v of values.filter((x) => x.length === n))
        for (const c of alphabet) values.push(v + c);
    let matched = 0;
    for (let k = 0; k < 600; k++) {
      const length = 1 + Math.floor(random() * 6);
      const pattern = Array.from(
        { length },
        () => tokens[Math.floor(random() * tokens.length)] as string,
      ).join('');
      const re = anchored(pattern);
      if (typeof re === 'string') continue;
      const prefix = literalPrefix(pattern);
      for (const v of values) {
        if (!re.test(v)) continue;
        matched++;
        expect(v.startsWith(prefix), `/${pattern}/ matches ${JSON.stringify(v)}`).toBe(true);
      }
    }
    expect(matched).toBeGreaterThan(1000);
  });
});
