import { describe, expect, it } from 'vitest';
import {
  hostnameMatches,
  hostnameSpecificity,
  intersectHostname,
  intersectHostnames,
} from './hostnames.ts';

describe('hostnameMatches', () => {
  it('a wildcard matches one or more labels in front of its suffix, never the suffix itself', () => {
    expect(hostnameMatches('*.example.com', 'a.example.com')).toBe(true);
    expect(hostnameMatches('*.example.com', 'a.b.example.com')).toBe(true);
    expect(hostnameMatches('*.example.com', 'example.com')).toBe(false);
    expect(hostnameMatches('*.example.com', 'aexample.com')).toBe(false);
    expect(hostnameMatches('*.example.com', 'a.example.net')).toBe(false);
  });

  it('an exact name matches itself, case-insensitively', () => {
    expect(hostnameMatches('Foo.Example.com', 'foo.example.COM')).toBe(true);
    expect(hostnameMatches('foo.example.com', 'bar.example.com')).toBe(false);
  });
});

describe('intersectHostname (route, listener)', () => {
  it.each([
    // The spec's examples (HTTPRouteSpec.Hostnames).
    ['test.example.com', 'test.example.com', 'test.example.com'],
    ['*.example.com', 'test.example.com', 'test.example.com'],
    ['*.example.com', '*.example.com', '*.example.com'],
    ['test.example.com', '*.example.com', 'test.example.com'],
    ['foo.test.example.com', '*.example.com', 'foo.test.example.com'],
    ['example.com', '*.example.com', undefined],
    ['test.example.net', '*.example.com', undefined],
    // Wildcard inside wildcard: the narrower one is what both serve.
    ['*.a.example.com', '*.example.com', '*.a.example.com'],
    ['*.com', '*.example.com', '*.example.com'],
    ['*.example.net', '*.example.com', undefined],
    ['other.example.com', 'test.example.com', undefined],
  ])('%s ∩ %s = %s', (route, listener, both) => {
    expect(intersectHostname(route, listener)).toBe(both);
  });
});

describe('intersectHostnames', () => {
  it('no listener hostname: the route hostnames, or any host when the route has none', () => {
    expect(intersectHostnames([], undefined)).toEqual(['']);
    expect(intersectHostnames(['a.test', '*.b.test'], undefined)).toEqual(['a.test', '*.b.test']);
  });

  it('no route hostname: the listener hostname', () => {
    expect(intersectHostnames([], '*.example.com')).toEqual(['*.example.com']);
  });

  it('route hostnames that miss the listener are ignored; none left means no attachment', () => {
    expect(intersectHostnames(['test.example.com', 'test.example.net'], '*.example.com')).toEqual([
      'test.example.com',
    ]);
    expect(intersectHostnames(['specific.but.wrong.com', 'wildcard.io'], '*.wildcard.io')).toEqual(
      [],
    );
  });

  it('duplicates collapse and names are lower-cased', () => {
    expect(intersectHostnames(['*.Example.com', 'a.example.com'], 'A.example.com')).toEqual([
      'a.example.com',
    ]);
  });
});

describe('hostnameSpecificity', () => {
  it('exact beats every wildcard, a longer wildcard beats a shorter, none is last', () => {
    const ranked = ['', '*.com', '*.example.com', 'a.com'].sort(
      (a, b) => hostnameSpecificity(b) - hostnameSpecificity(a),
    );
    expect(ranked).toEqual(['a.com', '*.example.com', '*.com', '']);
  });
});
