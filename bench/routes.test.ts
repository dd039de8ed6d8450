// The route benchmark's pieces: the seeded route set is what it claims (every route
// accepted, every rule in the table), the request mix exercises it, match takes what
// explain's full walk takes, and an edited route reaches the rebuilt matcher.
import { describe, expect, it } from 'vitest';
import { compileGateways } from '../src/gateway/compile.ts';
import { GatewayRoutes } from '../src/proxy/gateway.ts';
import {
  BENCH_LISTENER,
  editedRoute,
  hostPool,
  requestMix,
  routeSetInput,
  routeSetObjects,
  routeSetRecords,
} from './route-set.ts';

const small = { routes: 60, rulesPerRoute: 10, hosts: 20, seed: 20 };
const objects = routeSetObjects(small);
const records = routeSetRecords(objects);
const compiled = compileGateways(routeSetInput(records));

describe('route set', () => {
  it('is the same set for the same seed, another for another seed', () => {
    expect(routeSetObjects(small)).toEqual(objects);
    expect(routeSetObjects({ ...small, seed: 21 })).not.toEqual(objects);
  });

  it('compiles with every route accepted and every rule in the table under each of its hostnames', () => {
    const routes = compiled.status.objects.filter((o) => o.kind === 'HTTPRoute');
    expect(routes).toHaveLength(small.routes);
    for (const r of routes) {
      if (r.kind !== 'HTTPRoute') continue;
      const conditions = r.status.parents.flatMap((p) => p.conditions);
      expect(conditions.filter((c) => c.status !== 'True')).toEqual([]);
    }
    const hosts = compiled.tables.listeners[0]?.hosts ?? [];
    const expected = records.httpRoutes.reduce(
      (n, r) => n + r.hostnames.length * r.rules.length,
      0,
    );
    expect(hosts.reduce((n, h) => n + h.rules.length, 0)).toBe(expected);
    expect(new Set(hosts.map((h) => h.hostname))).toEqual(
      new Set(records.httpRoutes.flatMap((r) => r.hostnames)),
    );
    expect(hostPool(small.hosts).filter((h) => h.startsWith('*.'))).toHaveLength(4);
  });

  it('varies paths, header, query and method matches', () => {
    const matches = records.httpRoutes.flatMap((r) => r.rules.flatMap((x) => x.matches));
    expect(new Set(matches.map((m) => m.path.type))).toEqual(
      new Set(['Exact', 'PathPrefix', 'RegularExpression']),
    );
    expect(matches.some((m) => m.headers.length > 0)).toBe(true);
    expect(matches.some((m) => m.queryParams.length > 0)).toBe(true);
    expect(matches.some((m) => m.method !== undefined)).toBe(true);
  });
});

describe('request mix', () => {
  const routes = new GatewayRoutes();
  routes.set(compiled.tables);
  const requests = requestMix(objects, 2000, 7);

  it('is seeded, and mostly matches a rule, with misses and unrouted hosts among it', () => {
    expect(requestMix(objects, 2000, 7)).toEqual(requests);
    const matched = requests.filter((r) => routes.match(BENCH_LISTENER, r)).length;
    expect(matched).toBeGreaterThan(requests.length / 2);
    expect(matched).toBeLessThan(requests.length);
    expect(requests.some((r) => r.host.endsWith('.elsewhere.test'))).toBe(true);
  });

  it('match takes the rule explain (every candidate, in order) takes', () => {
    for (const r of requests) {
      const m = routes.match(BENCH_LISTENER, r);
      const e = routes.explain(BENCH_LISTENER, r)?.matched;
      expect(m && `${m.rule.route.name}#${m.rule.index}/${m.match}`).toBe(
        e && `${e.rule.route.name}#${e.rule.index}/${e.match}`,
      );
    }
  });
});

describe('editedRoute', () => {
  it('changes one route; the matcher rebuilt from the one before routes its new path', () => {
    const changed = editedRoute(objects, 3, 1);
    const httpRoutes = records.httpRoutes.map((r) => (r.name === changed.name ? changed : r));
    const host = changed.hostnames[0]?.replace('*', 'x') ?? '';
    const req = { host, method: 'GET', path: '/edited-1/a', query: '', headers: {}, grpc: false };
    const routes = new GatewayRoutes();
    routes.set(compiled.tables);
    expect(routes.match(BENCH_LISTENER, req)?.rule.route.name).not.toBe(changed.name);
    const input = { ...routeSetInput(records), objects: { ...records, httpRoutes } };
    routes.set(compileGateways(input).tables);
    const m = routes.match(BENCH_LISTENER, req);
    expect(m?.rule.route.name).toBe(changed.name);
    expect(m?.rule.index).toBe(0);
  });
});
