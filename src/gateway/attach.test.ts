// Route attachment, per parentRef, and the route parent status it gives.
import { describe, expect, it } from 'vitest';
import {
  backendRef,
  compileObjects,
  conditionsByType,
  gateway,
  grpcRoute,
  httpRoute,
  listener,
  namespace,
  parentRef,
  routeStatus,
  serviceLookup,
} from '../../test/helpers/gateway-objects.ts';
import type { ListenerRecord } from '../watch/gateway-records.ts';

const services = serviceLookup({ 'default/svc': [8080], 'team-a/svc': [8080] });
const gw = (...ls: ListenerRecord[]) => gateway({ name: 'gw' }, ls);
const route = (
  m: { name?: string; namespace?: string },
  parent: Parameters<typeof parentRef>[0] = { name: 'gw' },
  hostnames: string[] = [],
) =>
  httpRoute(
    { name: m.name ?? 'r', namespace: m.namespace ?? 'default', generation: 4 },
    { parentRefs: [parentRef(parent)], hostnames },
  );
const accepted = (c: ReturnType<typeof compileObjects>, name = 'r', ns = 'default') =>
  conditionsByType(routeStatus(c, name, ns).status.parents[0]?.conditions ?? []).Accepted;

describe('attachment', () => {
  it('a parentRef without sectionName or port attaches to every listener that admits the route', () => {
    const c = compileObjects(
      {
        gateways: [
          gw(
            listener({ name: 'a', hostname: 'a.test' }),
            listener({ name: 'b', hostname: 'b.test' }),
          ),
        ],
        httpRoutes: [route({})],
      },
      services,
    );
    expect(accepted(c)).toEqual(['True', 'Accepted']);
    expect(c.tables.listeners[0]?.hosts.map((h) => h.hostname)).toEqual(['a.test', 'b.test']);
  });

  it('sectionName picks one listener; a name no listener has is NoMatchingParent', () => {
    const ls = [
      listener({ name: 'a', hostname: 'a.test' }),
      listener({ name: 'b', hostname: 'b.test' }),
    ];
    const one = compileObjects(
      { gateways: [gw(...ls)], httpRoutes: [route({}, { name: 'gw', sectionName: 'b' })] },
      services,
    );
    expect(one.tables.listeners[0]?.hosts.map((h) => h.hostname)).toEqual(['b.test']);
    const none = compileObjects(
      { gateways: [gw(...ls)], httpRoutes: [route({}, { name: 'gw', sectionName: 'c' })] },
      services,
    );
    expect(accepted(none)).toEqual(['False', 'NoMatchingParent']);
  });

  it('port picks the listeners on that port, and must agree with sectionName', () => {
    const ls = [
      listener({ name: 'a' }),
      listener({
        name: 'b',
        port: 443,
        protocol: 'HTTPS',
        tls: { mode: 'Terminate', certificateRefs: [] },
      }),
    ];
    const byPort = compileObjects(
      { gateways: [gw(...ls)], httpRoutes: [route({}, { name: 'gw', port: 80 })] },
      services,
    );
    expect(accepted(byPort)).toEqual(['True', 'Accepted']);
    const disagree = compileObjects(
      {
        gateways: [gw(...ls)],
        httpRoutes: [route({}, { name: 'gw', port: 443, sectionName: 'a' })],
      },
      services,
    );
    expect(accepted(disagree)).toEqual(['False', 'NoMatchingParent']);
  });

  it('from Same admits routes of the Gateway namespace only (NotAllowedByListeners)', () => {
    const c = compileObjects(
      {
        gateways: [gw(listener({}))],
        httpRoutes: [route({ namespace: 'team-a' }, { name: 'gw', namespace: 'default' })],
      },
      services,
    );
    expect(accepted(c, 'r', 'team-a')).toEqual(['False', 'NotAllowedByListeners']);
  });

  it('from All admits every namespace', () => {
    const l = listener({ allowedRoutes: { from: 'All', kinds: [] } });
    const c = compileObjects(
      {
        gateways: [gw(l)],
        httpRoutes: [route({ namespace: 'team-a' }, { name: 'gw', namespace: 'default' })],
      },
      services,
    );
    expect(accepted(c, 'r', 'team-a')).toEqual(['True', 'Accepted']);
  });

  it('from Selector reads the Namespace labels, matchLabels and matchExpressions', () => {
    const l = listener({
      allowedRoutes: {
        from: 'Selector',
        selector: {
          matchLabels: { edge: 'yes' },
          matchExpressions: [{ key: 'env', operator: 'NotIn', values: ['dev'] }],
        },
        kinds: [],
      },
    });
    const compileFor = (labels: Record<string, string>) =>
      compileObjects(
        {
          gateways: [gw(l)],
          namespaces: [namespace('team-a', labels)],
          httpRoutes: [route({ namespace: 'team-a' }, { name: 'gw', namespace: 'default' })],
        },
        services,
      );
    expect(accepted(compileFor({ edge: 'yes', env: 'prod' }), 'r', 'team-a')).toEqual([
      'True',
      'Accepted',
    ]);
    expect(accepted(compileFor({ edge: 'yes', env: 'dev' }), 'r', 'team-a')).toEqual([
      'False',
      'NotAllowedByListeners',
    ]);
    expect(accepted(compileFor({}), 'r', 'team-a')).toEqual(['False', 'NotAllowedByListeners']);
  });

  it('allowedRoutes kinds: a listener for HTTPRoutes only does not admit a GRPCRoute', () => {
    const l = listener({
      allowedRoutes: {
        from: 'Same',
        kinds: [{ group: 'gateway.networking.k8s.io', kind: 'HTTPRoute' }],
      },
    });
    const g = grpcRoute(
      { name: 'g' },
      { parentRefs: [parentRef({ name: 'gw' })], hostnames: [], rules: [] },
    );
    const c = compileObjects({ gateways: [gw(l)], grpcRoutes: [g] }, services);
    const parents = routeStatus(c, 'g', 'default', 'GRPCRoute').status.parents;
    expect(conditionsByType(parents[0]?.conditions ?? []).Accepted).toEqual([
      'False',
      'NotAllowedByListeners',
    ]);
  });

  it('no hostname in common with any admitting listener is NoMatchingListenerHostname', () => {
    const c = compileObjects(
      {
        gateways: [gw(listener({ hostname: '*.example.com' }))],
        httpRoutes: [route({}, { name: 'gw' }, ['example.com'])],
      },
      services,
    );
    expect(accepted(c)).toEqual(['False', 'NoMatchingListenerHostname']);
    expect(c.tables.listeners[0]?.hosts).toEqual([]);
  });

  it("parentRefs to other kinds or to Gateways fedgate does not run get no entry (their controller's)", () => {
    const r = httpRoute(
      { name: 'r' },
      {
        parentRefs: [
          parentRef({ name: 'gw', kind: 'Service', group: '' }),
          parentRef({ name: 'elsewhere' }),
          parentRef({ name: 'gw' }),
        ],
      },
    );
    const c = compileObjects({ gateways: [gw(listener({}))], httpRoutes: [r] }, services);
    expect(routeStatus(c, 'r').status.parents.map((p) => p.parentRef.name)).toEqual(['gw']);
  });

  it('a parentRef namespace names the Gateway namespace; absent, the route namespace', () => {
    const l = listener({ allowedRoutes: { from: 'All', kinds: [] } });
    const c = compileObjects(
      { gateways: [gw(l)], httpRoutes: [route({ namespace: 'team-a' }, { name: 'gw' })] },
      services,
    );
    expect(routeStatus(c, 'r', 'team-a').status.parents).toEqual([]);
  });

  it('each parent entry echoes the parentRef, names fedgate as controller and cites the route generation', () => {
    const c = compileObjects(
      {
        gateways: [gw(listener({}))],
        httpRoutes: [route({}, { name: 'gw', sectionName: 'http' })],
      },
      services,
    );
    const [p] = routeStatus(c, 'r').status.parents;
    expect(p?.parentRef).toEqual({
      group: 'gateway.networking.k8s.io',
      kind: 'Gateway',
      name: 'gw',
      sectionName: 'http',
    });
    expect(p?.controllerName).toBe('fedgate.io/gateway-controller');
    expect(p?.conditions.map((x) => [x.type, x.observedGeneration])).toEqual([
      ['Accepted', 4],
      ['ResolvedRefs', 4],
    ]);
  });

  it('routes attach to listeners whose refs do not resolve (counted) but are served only by programmed ones', () => {
    const l = listener({
      name: 'https',
      port: 443,
      protocol: 'HTTPS',
      tls: { mode: 'Terminate', certificateRefs: [] },
    });
    const r = httpRoute(
      { name: 'r' },
      {
        parentRefs: [parentRef({ name: 'gw' })],
        rules: [
          { matches: [], filters: [], backendRefs: [backendRef({ name: 'svc', port: 8080 })] },
        ],
      },
    );
    const c = compileObjects({ gateways: [gw(l)], httpRoutes: [r] }, services);
    expect(accepted(c)).toEqual(['True', 'Accepted']);
    expect(c.tables.listeners).toEqual([]);
  });
});

describe('a route without rules', () => {
  it('attaches and is counted, but adds no host to the table', () => {
    const g = grpcRoute(
      { name: 'g' },
      { parentRefs: [parentRef({ name: 'gw' })], hostnames: ['g.test'], rules: [] },
    );
    const c = compileObjects({ gateways: [gw(listener({}))], grpcRoutes: [g] }, services);
    expect(
      conditionsByType(
        routeStatus(c, 'g', 'default', 'GRPCRoute').status.parents[0]?.conditions ?? [],
      ).Accepted,
    ).toEqual(['True', 'Accepted']);
    expect(
      c.status.objects.find(
        (o) => o.kind === 'Gateway' && o.status.listeners[0]?.attachedRoutes === 1,
      ),
    ).toBeDefined();
    expect(c.tables.listeners[0]?.hosts).toEqual([]);
  });
});
