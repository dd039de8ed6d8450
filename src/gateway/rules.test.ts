// Rules compiled: backends resolved in place, filters and durations checked, rules
// fedgate cannot serve dropped and reported.
import { describe, expect, it } from 'vitest';
import {
  backendRef,
  compileObjects,
  conditionsByType,
  gateway,
  grpcRoute,
  httpRoute,
  listener,
  parentRef,
  routeStatus,
  rule,
  serviceLookup,
} from '../../test/helpers/gateway-objects.ts';
import type { HTTPRouteFilter, HTTPRouteRule } from '../watch/gateway-records.ts';

const services = serviceLookup({ 'default/svc': [8080], 'default/canary': [8080] });
const svc = backendRef({ name: 'svc', port: 8080 });

function compileRules(rules: HTTPRouteRule[]) {
  const c = compileObjects(
    {
      gateways: [gateway({ name: 'gw' }, [listener({})])],
      httpRoutes: [httpRoute({ name: 'r' }, { parentRefs: [parentRef({ name: 'gw' })], rules })],
    },
    services,
  );
  const parent = routeStatus(c, 'r').status.parents[0];
  const served = c.tables.listeners[0]?.hosts[0]?.rules ?? [];
  return { c, conditions: parent?.conditions ?? [], served };
}

const unknown: HTTPRouteFilter = { type: 'Unknown', written: 'ExternalAuth' };
const redirect: HTTPRouteFilter = { type: 'RequestRedirect', requestRedirect: { statusCode: 302 } };
const rewrite: HTTPRouteFilter = { type: 'URLRewrite', urlRewrite: { hostname: 'x.test' } };

describe('rules', () => {
  it('a valid rule is served with its matches, filters and resolved backends', () => {
    const header: HTTPRouteFilter = {
      type: 'RequestHeaderModifier',
      requestHeaderModifier: { set: [{ name: 'x', value: '1' }], add: [], remove: [] },
    };
    const { served, conditions } = compileRules([
      rule({
        name: 'main',
        filters: [header],
        backendRefs: [svc, backendRef({ name: 'canary', port: 8080, weight: 0 })],
      }),
    ]);
    expect(conditionsByType(conditions)).toEqual({
      Accepted: ['True', 'Accepted'],
      ResolvedRefs: ['True', 'ResolvedRefs'],
    });
    expect(served).toHaveLength(1);
    expect(served[0]).toMatchObject({
      route: { kind: 'HTTPRoute', namespace: 'default', name: 'r' },
      index: 0,
      name: 'main',
      http: [{ path: { type: 'PathPrefix', value: '/' }, headers: [], queryParams: [] }],
      filters: [header],
      backends: [
        { serviceKey: 'default/svc', port: 8080, weight: 1 },
        { serviceKey: 'default/canary', port: 8080, weight: 0 },
      ],
    });
  });

  it('a rule without backendRefs is served with no backends (it answers 500 unless it redirects)', () => {
    expect(compileRules([rule({ backendRefs: [] })]).served[0]?.backends).toEqual([]);
    expect(compileRules([rule({ filters: [redirect] })]).served[0]?.filters).toEqual([redirect]);
  });

  it('an invalid backendRef keeps its place and weight; ResolvedRefs says why', () => {
    const { served, conditions } = compileRules([
      rule({ backendRefs: [svc, backendRef({ name: 'gone', port: 8080, weight: 2 })] }),
    ]);
    expect(served[0]?.backends[1]).toMatchObject({
      weight: 2,
      problem: { reason: 'BackendNotFound' },
    });
    expect(conditionsByType(conditions)).toEqual({
      Accepted: ['True', 'Accepted'],
      ResolvedRefs: ['False', 'BackendNotFound'],
    });
  });

  it('an unknown filter type drops the rule: PartiallyInvalid when others remain', () => {
    const { served, conditions } = compileRules([
      rule({ backendRefs: [svc] }),
      rule({ filters: [unknown], backendRefs: [svc] }),
    ]);
    expect(served.map((r) => r.index)).toEqual([0]);
    expect(conditionsByType(conditions)).toEqual({
      Accepted: ['True', 'Accepted'],
      ResolvedRefs: ['True', 'ResolvedRefs'],
      PartiallyInvalid: ['True', 'UnsupportedValue'],
    });
    expect(conditions.find((x) => x.type === 'PartiallyInvalid')?.message).toMatch(
      /^Dropped Rule\(s\) 1 \(filter type ExternalAuth/,
    );
  });

  it('every rule dropped: the route is not Accepted (UnsupportedValue) and serves nothing', () => {
    const { c, served, conditions } = compileRules([
      rule({ backendRefs: [{ ...svc, filters: [unknown] }] }),
    ]);
    expect(conditionsByType(conditions).Accepted).toEqual(['False', 'UnsupportedValue']);
    expect(served).toEqual([]);
    expect(c.tables.listeners[0]?.hosts).toEqual([]);
    const gw = c.status.objects.find((o) => o.kind === 'Gateway');
    expect(gw?.kind === 'Gateway' && gw.status.listeners[0]?.attachedRoutes).toBe(0);
  });

  it('RequestRedirect with URLRewrite is IncompatibleFilters', () => {
    const { conditions } = compileRules([rule({ filters: [redirect, rewrite] })]);
    expect(conditionsByType(conditions).Accepted).toEqual(['False', 'IncompatibleFilters']);
  });

  it('an ExtensionRef (fedgate knows none) stays in the rule and makes ResolvedRefs InvalidKind', () => {
    const ext: HTTPRouteFilter = {
      type: 'ExtensionRef',
      extensionRef: { group: 'example.com', kind: 'Auth', name: 'a' },
    };
    const { served, conditions } = compileRules([rule({ filters: [ext], backendRefs: [svc] })]);
    expect(served[0]?.filters).toEqual([ext]);
    expect(conditionsByType(conditions).ResolvedRefs).toEqual(['False', 'InvalidKind']);
  });

  it('a mirror to a backend that does not resolve makes ResolvedRefs False', () => {
    const mirror: HTTPRouteFilter = {
      type: 'RequestMirror',
      requestMirror: { backendRef: { group: '', kind: 'Service', name: 'gone', port: 8080 } },
    };
    const { conditions } = compileRules([rule({ filters: [mirror], backendRefs: [svc] })]);
    expect(conditionsByType(conditions).ResolvedRefs).toEqual(['False', 'BackendNotFound']);
  });

  it('timeouts and retry backoff are parsed into milliseconds', () => {
    const { served } = compileRules([
      rule({
        backendRefs: [svc],
        timeouts: { request: '10s', backendRequest: '1s500ms' },
        retry: { codes: [503], attempts: 2, backoff: '100ms' },
      }),
    ]);
    expect(served[0]?.timeouts).toEqual({ requestMs: 10_000, backendRequestMs: 1500 });
    expect(served[0]?.retry).toEqual({ codes: [503], attempts: 2, backoffMs: 100 });
  });

  it('0s is kept as 0 (the spec: the timeout is off)', () => {
    expect(
      compileRules([
        rule({ backendRefs: [svc], timeouts: { request: '0s', backendRequest: '5s' } }),
      ]).served[0]?.timeouts,
    ).toEqual({
      requestMs: 0,
      backendRequestMs: 5000,
    });
  });

  it.each([
    [{ timeouts: { request: '10' } }, 'timeouts.request'],
    [{ timeouts: { backendRequest: '1.5s' } }, 'timeouts.backendRequest'],
    [{ retry: { codes: [500], backoff: '1d' } }, 'retry.backoff'],
    [{ timeouts: { request: '1s', backendRequest: '2s' } }, 'exceeds'],
  ])('%j is not accepted (UnsupportedValue)', (fields, said) => {
    const { conditions } = compileRules([rule({ backendRefs: [svc], ...fields })]);
    const a = conditions.find((x) => x.type === 'Accepted');
    expect([a?.status, a?.reason]).toEqual(['False', 'UnsupportedValue']);
    expect(a?.message).toContain(said);
  });
});

describe('GRPCRoute rules', () => {
  it('keep their grpc matches and resolve their backends like HTTPRoute rules', () => {
    const g = grpcRoute(
      { name: 'g' },
      {
        parentRefs: [parentRef({ name: 'gw' })],
        hostnames: ['grpc.test'],
        rules: [
          {
            matches: [
              { method: { type: 'Exact', service: 'pkg.Echo', method: 'Say' }, headers: [] },
            ],
            filters: [],
            backendRefs: [
              { ...svc, filters: [] },
              { ...backendRef({ name: 'gone', port: 1 }), filters: [] },
            ],
          },
        ],
      },
    );
    const c = compileObjects(
      { gateways: [gateway({ name: 'gw' }, [listener({})])], grpcRoutes: [g] },
      services,
    );
    const host = c.tables.listeners[0]?.hosts[0];
    expect(host?.hostname).toBe('grpc.test');
    expect(host?.rules[0]).toMatchObject({
      route: { kind: 'GRPCRoute', name: 'g' },
      grpc: [{ method: { type: 'Exact', service: 'pkg.Echo', method: 'Say' }, headers: [] }],
      backends: [{ serviceKey: 'default/svc' }, { problem: { reason: 'BackendNotFound' } }],
    });
    expect(host?.rules[0]?.http).toBeUndefined();
    const parent = routeStatus(c, 'g', 'default', 'GRPCRoute').status.parents[0];
    expect(conditionsByType(parent?.conditions ?? [])).toEqual({
      Accepted: ['True', 'Accepted'],
      ResolvedRefs: ['False', 'BackendNotFound'],
    });
  });
});
