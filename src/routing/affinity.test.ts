import { describe, expect, it } from 'vitest';
import { plan, targets, tier } from '../../test/fixtures/plans.ts';
import { affinityHash, affinityKey, cookieValue, parseHashOn } from './affinity.ts';
import { createPicker } from './pickers.ts';
import { seededRandom } from './random.ts';

const req = (headers: Record<string, string | string[]>, clientAddress = '127.192.2.7') => ({
  headers,
  clientAddress,
});

describe('affinity keys', () => {
  it.each([
    ['header:X-User', { 'x-user': 'ada' }, 'ada'],
    ['header:x-user', { 'x-user': ['ada', 'bob'] }, 'ada'],
    ['header:x-user', {}, undefined],
    ['header:x-user', { 'x-user': '' }, undefined],
    ['cookie:session', { cookie: 'theme=dark; session=abc123; x=1' }, 'abc123'],
    ['cookie:session', { cookie: ['a=1', 'session=zz'] }, 'zz'],
    ['cookie:Session', { cookie: 'session=abc' }, undefined],
    ['cookie:session', { cookie: 'sessionid=abc' }, undefined],
    ['client-address', {}, '127.192.2.7'],
  ])('%s from %j → %s', (spec, headers, want) => {
    expect(affinityKey(parseHashOn(spec), req(headers))).toBe(want);
  });

  it('rejects what is not a hash policy', () => {
    expect(() => parseHashOn('query:id')).toThrow(/expected header:NAME/);
    expect(() => parseHashOn('header:')).toThrow(/expected header:NAME/);
  });

  it('keeps the first cookie of a name, and values with = in them whole', () => {
    expect(cookieValue('t=a=b=c; t=second', 't')).toBe('a=b=c');
  });

  it('the same key lands on the same endpoint; Maglev spreads different keys', () => {
    const p = plan([tier(0, 1, targets(50))]);
    const picker = createPicker('maglev', { random: seededRandom(1) });
    const on = parseHashOn('cookie:session');
    const pick = (session: string) =>
      picker.pick(p, { hash: affinityHash(on, req({ cookie: `session=${session}` })) })!.id;
    expect(new Set(Array.from({ length: 20 }, () => pick('s-1'))).size).toBe(1);
    expect(new Set(Array.from({ length: 200 }, (_, i) => pick(`s-${i}`))).size).toBeGreaterThan(30);
  });
});
