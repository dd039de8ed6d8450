import { describe, expect, it } from 'vitest';
import { backend } from '../../test/helpers/gateway-rules.ts';
import { seededRandom } from '../routing/random.ts';
import {
  chooseBackend,
  mirrors,
  modifiedPath,
  modifyFields,
  modifyRecord,
  type RedirectFrom,
  redirectLocation,
} from './filters.ts';

describe('header modifiers', () => {
  const mod = {
    set: [{ name: 'X-Set', value: 'set' }],
    add: [
      { name: 'X-Add', value: 'more' },
      { name: 'X-New', value: 'new' },
    ],
    remove: ['x-remove'],
  };

  it('set replaces every field of the name, add appends with a comma, remove drops, names case-insensitive', () => {
    const out = modifyFields(
      ['x-set', 'old', 'X-SET', 'old2', 'x-add', 'some', 'X-Remove', 'gone', 'keep', 'k'],
      mod,
    );
    expect(out).toEqual(['x-add', 'some,more', 'keep', 'k', 'X-Set', 'set', 'X-New', 'new']);
  });

  it('takes a modifier that leaves out its lists (as written: the CRD has no default)', () => {
    const partial = { set: [{ name: 'a', value: '2' }] } as unknown as typeof mod;
    expect(modifyFields(['a', '1', 'b', 'x'], partial)).toEqual(['b', 'x', 'a', '2']);
    expect(modifyRecord({ a: '1' }, partial)).toEqual({ a: '2' });
  });

  it('does the same on a response head', () => {
    expect(
      modifyRecord({ 'x-set': 'a', 'x-add': ['1', '2'], 'x-remove': 'r', k: 'k' }, mod),
    ).toEqual({
      'x-set': 'set',
      'x-add': '1,2,more',
      'x-new': 'new',
      k: 'k',
    });
  });
});

describe('paths', () => {
  it('ReplaceFullPath and ReplacePrefixMatch by whole segments (HTTPRouteRewritePath)', () => {
    const prefix = (p: string, under: string, by: string) =>
      modifiedPath(p, { type: 'ReplacePrefixMatch', replacePrefixMatch: by }, under);
    expect(
      modifiedPath('/full/one', { type: 'ReplaceFullPath', replaceFullPath: '/one' }, undefined),
    ).toBe('/one');
    expect(prefix('/prefix/one/two', '/prefix/one', '/one')).toBe('/one/two');
    expect(prefix('/strip-prefix/three', '/strip-prefix', '/')).toBe('/three');
    expect(prefix('/strip-prefix', '/strip-prefix', '/')).toBe('/');
    expect(prefix('/strip-prefix/', '/strip-prefix', '/')).toBe('/');
    expect(prefix('/foo/bar', '/foo', '/xyz/')).toBe('/xyz/bar');
    expect(prefix('/a', '/', '/b')).toBe('/b/a');
  });
});

describe('redirect Location', () => {
  const from: RedirectFrom = {
    scheme: 'http',
    host: 'shop.test',
    listenerPort: 8080,
    path: '/a/b',
    search: '?q=1',
  };

  it('keeps the listener port without a scheme, takes the scheme port with one, drops well-known ports', () => {
    expect(redirectLocation(from, {})).toBe('http://shop.test:8080/a/b?q=1');
    expect(redirectLocation(from, { hostname: 'other.test' })).toBe(
      'http://other.test:8080/a/b?q=1',
    );
    expect(redirectLocation(from, { scheme: 'https' })).toBe('https://shop.test/a/b?q=1');
    expect(redirectLocation(from, { scheme: 'http' })).toBe('http://shop.test/a/b?q=1');
    expect(redirectLocation(from, { scheme: 'https', port: 8443 })).toBe(
      'https://shop.test:8443/a/b?q=1',
    );
    expect(redirectLocation(from, { port: 80 })).toBe('http://shop.test/a/b?q=1');
    expect(redirectLocation({ ...from, listenerPort: 80 }, {})).toBe('http://shop.test/a/b?q=1');
    expect(redirectLocation(from, { scheme: 'ftp' })).toBe('ftp://shop.test:8080/a/b?q=1');
  });

  it('rewrites the path', () => {
    expect(
      redirectLocation(
        from,
        { path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/z' } },
        '/a',
      ),
    ).toBe('http://shop.test:8080/z/b?q=1');
    expect(
      redirectLocation(from, { path: { type: 'ReplaceFullPath', replaceFullPath: '/only' } }),
    ).toBe('http://shop.test:8080/only?q=1');
  });
});

describe('weights', () => {
  it('splits by weight, never chooses weight 0, and gives none when every weight is 0', () => {
    const random = seededRandom(7);
    const backends = [backend('a/x', 90), backend('a/zero', 0), backend('a/y', 10)];
    const counts = new Map<string, number>();
    for (let i = 0; i < 10_000; i++) {
      const b = chooseBackend(backends, random)?.serviceKey ?? 'none';
      counts.set(b, (counts.get(b) ?? 0) + 1);
    }
    expect(counts.get('a/zero')).toBeUndefined();
    expect(Math.abs((counts.get('a/x') ?? 0) - 9000)).toBeLessThan(300);
    expect(chooseBackend([backend('a/x', 0)], random)).toBeUndefined();
    expect(chooseBackend([], random)).toBeUndefined();
  });

  it('mirrors by percent or fraction', () => {
    const random = seededRandom(3);
    let n = 0;
    for (let i = 0; i < 1000; i++) if (mirrors({ percent: 20 }, random)) n++;
    expect(n).toBeGreaterThan(150);
    expect(n).toBeLessThan(250);
    expect(mirrors({ fraction: { numerator: 0, denominator: 100 } }, random)).toBe(false);
    expect(mirrors({ fraction: { numerator: 1, denominator: 1 } }, random)).toBe(true);
    expect(mirrors({}, random)).toBe(true);
  });
});
