import { describe, expect, it } from 'vitest';
import { httpMatch, rule, tables } from '../../test/helpers/gateway-rules.ts';
import type { AttachedRule } from './attached.ts';
import { ListenerMatcher, type MatchRequest } from './match.ts';

const req = (over: Partial<MatchRequest> = {}): MatchRequest => ({
  host: 'shop.example.test',
  method: 'GET',
  path: '/',
  query: '',
  headers: {},
  grpc: false,
  ...over,
});

const matcher = (hosts: Record<string, readonly AttachedRule[]>) => {
  const t = tables('127.0.0.1:80', hosts).listeners[0];
  if (!t) throw new Error('no listener');
  return new ListenerMatcher(t);
};

/** `ns/name#rule` of what a request matched, or 'none'. */
const took = (m: ListenerMatcher, r: Partial<MatchRequest>): string => {
  const hit = m.match(req(r));
  return hit ? `${hit.rule.route.namespace}/${hit.rule.route.name}#${hit.rule.index}` : 'none';
};

describe('hostnames', () => {
  const m = matcher({
    'shop.example.test': [rule({ route: 'a/exact' })],
    '*.example.test': [rule({ route: 'a/wild' })],
    '*.deep.example.test': [rule({ route: 'a/deeper' })],
    '': [rule({ route: 'a/any' })],
  });

  it('takes the exact name, then the longest wildcard, then any host', () => {
    expect(took(m, { host: 'shop.example.test' })).toBe('a/exact#0');
    expect(took(m, { host: 'x.deep.example.test' })).toBe('a/deeper#0');
    expect(took(m, { host: 'a.b.example.test' })).toBe('a/wild#0');
    expect(took(m, { host: 'example.test' })).toBe('a/any#0');
    expect(took(m, { host: 'other.test' })).toBe('a/any#0');
  });

  it('matches nothing for a host no group covers', () => {
    const only = matcher({ 'shop.example.test': [rule({ route: 'a/r' })] });
    expect(took(only, { host: 'else.example.test' })).toBe('none');
  });
});

describe('HTTPRoute precedence', () => {
  it('Exact beats every prefix; a longer prefix beats a shorter; prefixes match whole segments', () => {
    const m = matcher({
      '': [
        rule({ route: 'a/root', matches: [httpMatch()] }),
        rule({
          route: 'a/foo',
          matches: [httpMatch({ path: { type: 'PathPrefix', value: '/foo' } })],
        }),
        rule({
          route: 'a/foobar',
          matches: [httpMatch({ path: { type: 'PathPrefix', value: '/foo/bar/' } })],
        }),
        rule({
          route: 'a/exact',
          matches: [httpMatch({ path: { type: 'Exact', value: '/foo/bar' } })],
        }),
      ],
    });
    expect(took(m, { path: '/foo/bar' })).toBe('a/exact#0');
    expect(took(m, { path: '/foo/bar/baz' })).toBe('a/foobar#0');
    expect(took(m, { path: '/foo/x' })).toBe('a/foo#0');
    expect(took(m, { path: '/foo' })).toBe('a/foo#0');
    expect(took(m, { path: '/foobar' })).toBe('a/root#0');
  });

  it('then method, then more headers, then more query params', () => {
    const m = matcher({
      '': [
        rule({ route: 'a/plain', matches: [httpMatch()] }),
        rule({ route: 'a/q', matches: [httpMatch({ query: { a: '1', b: '2' } })] }),
        rule({ route: 'a/h1', matches: [httpMatch({ headers: { x: '1' } })] }),
        rule({ route: 'a/h2', matches: [httpMatch({ headers: { x: '1', y: '2' } })] }),
        rule({ route: 'a/post', matches: [httpMatch({ method: 'POST' })] }),
      ],
    });
    expect(took(m, { method: 'POST', headers: { x: '1', y: '2' } })).toBe('a/post#0');
    expect(took(m, { headers: { x: '1', y: '2' }, query: 'a=1&b=2' })).toBe('a/h2#0');
    expect(took(m, { headers: { x: '1' }, query: 'a=1&b=2' })).toBe('a/h1#0');
    expect(took(m, { query: 'b=2&a=1' })).toBe('a/q#0');
    expect(took(m, { query: 'a=1' })).toBe('a/plain#0');
  });

  it('ties go to the older route, then namespace/name, then rule order', () => {
    const m = matcher({
      '': [
        rule({ route: 'b/young', createdAt: 2, index: 0 }),
        rule({ route: 'z/old', createdAt: 1, index: 1 }),
        rule({ route: 'z/old', createdAt: 1, index: 0 }),
        rule({ route: 'a/young', createdAt: 2, index: 0 }),
      ],
    });
    expect(took(m, {})).toBe('z/old#0');
    const same = matcher({
      '': [rule({ route: 'b/r', createdAt: 1 }), rule({ route: 'a/r', createdAt: 1 })],
    });
    expect(took(same, {})).toBe('a/r#0');
  });

  it('RegularExpression paths come after Exact and before PathPrefix, anchored to the whole path', () => {
    const m = matcher({
      '': [
        rule({
          route: 'a/prefix',
          matches: [httpMatch({ path: { type: 'PathPrefix', value: '/v1' } })],
        }),
        rule({
          route: 'a/re',
          matches: [httpMatch({ path: { type: 'RegularExpression', value: '/v[0-9]+/items' } })],
        }),
        rule({
          route: 'a/exact',
          matches: [httpMatch({ path: { type: 'Exact', value: '/v1/items' } })],
        }),
      ],
    });
    expect(took(m, { path: '/v1/items' })).toBe('a/exact#0');
    expect(took(m, { path: '/v2/items' })).toBe('a/re#0');
    expect(took(m, { path: '/v1/items/x' })).toBe('a/prefix#0');
  });

  it('matches headers case-insensitively by name, exactly or by anchored regex; query params by name', () => {
    const m = matcher({
      '': [
        rule({
          route: 'a/r',
          matches: [
            httpMatch({
              headers: [
                { type: 'Exact', name: 'X-Version', value: 'two' },
                {
                  type: 'Exact',
                  name: 'x-version',
                  value: 'ignored: only the first of a name counts',
                },
                { type: 'RegularExpression', name: 'X-Tier', value: 'gold|silver' },
              ],
              query: [{ type: 'RegularExpression', name: 'id', value: '[0-9]+' }],
            }),
          ],
        }),
      ],
    });
    expect(took(m, { headers: { 'x-version': 'two', 'x-tier': 'gold' }, query: 'id=42' })).toBe(
      'a/r#0',
    );
    expect(took(m, { headers: { 'x-version': 'two', 'x-tier': 'golden' }, query: 'id=42' })).toBe(
      'none',
    );
    expect(took(m, { headers: { 'x-version': 'two', 'x-tier': 'gold' }, query: 'id=42x' })).toBe(
      'none',
    );
    expect(took(m, { headers: { 'x-version': 'Two', 'x-tier': 'gold' }, query: 'id=4' })).toBe(
      'none',
    );
  });

  it('reports a pattern that does not compile, and that candidate never matches', () => {
    const m = matcher({
      '': [
        rule({
          route: 'a/bad',
          matches: [httpMatch({ path: { type: 'RegularExpression', value: '/(' } })],
        }),
        rule({ route: 'a/good', matches: [httpMatch()] }),
      ],
    });
    expect(m.problems).toHaveLength(1);
    expect(m.problems[0]).toMatchObject({ route: 'a/bad', rule: 0 });
    expect(m.problems[0]?.message).toContain('invalid regular expression');
    expect(took(m, { path: '/(' })).toBe('a/good#0');
  });

  it('explains why every candidate tried before the match failed', () => {
    const m = matcher({
      '*.example.test': [
        rule({ route: 'a/exact', matches: [httpMatch({ path: { type: 'Exact', value: '/x' } })] }),
        rule({ route: 'a/get', matches: [httpMatch({ method: 'PUT' })] }),
        rule({ route: 'a/any' }),
      ],
    });
    const e = m.explain(req({ path: '/y' }));
    expect(e.hostname).toBe('*.example.test');
    expect(e.matched?.rule.route.name).toBe('any');
    expect(e.misses.map((x) => `${x.rule.route.name}: ${x.why}`)).toEqual([
      'exact: path is not "/x" (Exact)',
      'get: method is not PUT',
    ]);
  });

  it('gives the PathPrefix matched, without its trailing slash, for ReplacePrefixMatch', () => {
    const m = matcher({
      '': [
        rule({
          route: 'a/r',
          matches: [httpMatch({ path: { type: 'PathPrefix', value: '/api/' } })],
        }),
      ],
    });
    expect(m.match(req({ path: '/api/v1' }))?.prefix).toBe('/api');
  });
});

describe('GRPCRoute precedence', () => {
  const g = (
    route: string,
    service?: string,
    method?: string,
    headers: Record<string, string> = {},
  ) =>
    rule({
      route,
      grpc: [
        {
          ...(service || method
            ? {
                method: {
                  type: 'Exact' as const,
                  ...(service ? { service } : {}),
                  ...(method ? { method } : {}),
                },
              }
            : {}),
          headers: Object.entries(headers).map(([name, value]) => ({
            type: 'Exact' as const,
            name,
            value,
          })),
        },
      ],
    });

  it('more characters of service, then of method, then more headers; HTTPRoutes after', () => {
    const m = matcher({
      '': [
        g('a/any'),
        g('a/svc', 'echo.Echo'),
        g('a/method', undefined, 'Say'),
        g('a/both', 'echo.Echo', 'Say'),
        g('a/hdr', 'echo.Echo', 'Say', { v: '2' }),
        rule({ route: 'a/http' }),
      ],
    });
    const call = (path: string, headers: Record<string, string> = {}) =>
      took(m, { path, headers, grpc: true, method: 'POST' });
    expect(call('/echo.Echo/Say', { v: '2' })).toBe('a/hdr#0');
    expect(call('/echo.Echo/Say')).toBe('a/both#0');
    expect(call('/echo.Echo/Other')).toBe('a/svc#0');
    expect(call('/other.Svc/Say')).toBe('a/method#0');
    expect(call('/other.Svc/Else')).toBe('a/any#0');
    // A plain request never takes a GRPCRoute.
    expect(took(m, { path: '/echo.Echo/Say' })).toBe('a/http#0');
  });

  it('a rule without matches takes every call; RegularExpression methods are anchored', () => {
    const m = matcher({
      '': [
        rule({
          route: 'a/re',
          grpc: [{ method: { type: 'RegularExpression', method: 'Get.*' }, headers: [] }],
        }),
        rule({ route: 'a/all', grpc: [] }),
      ],
    });
    expect(took(m, { path: '/s.S/GetThing', grpc: true })).toBe('a/re#0');
    expect(took(m, { path: '/s.S/ForgetThing', grpc: true })).toBe('a/all#0');
  });
});

describe('a matcher built from the one before', () => {
  const r1 = rule({
    route: 'a/one',
    matches: [httpMatch({ path: { type: 'Exact', value: '/x' } })],
  });
  const r2 = rule({
    route: 'a/two',
    matches: [httpMatch({ path: { type: 'PathPrefix', value: '/y' } })],
  });
  const listener = (hosts: Record<string, readonly AttachedRule[]>) => {
    const t = tables('127.0.0.1:80', hosts).listeners[0];
    if (!t) throw new Error('no listener');
    return t;
  };
  const before = new ListenerMatcher(listener({ 'shop.example.test': [r1, r2] }));

  it('answers with the new table rule objects where the records are the same', () => {
    const n1 = { ...r1, backends: [] };
    const n2 = { ...r2, backends: [] };
    const after = new ListenerMatcher(listener({ 'shop.example.test': [n1, n2] }), before);
    expect(after.match(req({ path: '/x' }))?.rule).toBe(n1);
    expect(after.match(req({ path: '/y/z' }))?.rule).toBe(n2);
    expect(after.explain(req({ path: '/y' })).misses[0]?.rule).toBe(n1);
  });

  it('builds a host anew when a route of it changed', () => {
    const changed = rule({
      route: 'a/two',
      matches: [httpMatch({ path: { type: 'Exact', value: '/x' } })],
    });
    const after = new ListenerMatcher(
      listener({ 'shop.example.test': [r1, changed], 'new.example.test': [r2] }),
      before,
    );
    expect(took(after, { path: '/y/z' })).toBe('none');
    expect(took(after, { host: 'new.example.test', path: '/y/z' })).toBe('a/two#0');
  });
});
