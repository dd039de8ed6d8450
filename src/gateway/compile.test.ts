// Compilation as a whole: copies across config clusters, the route tables'
// shape and order, and determinism.
import { describe, expect, it } from 'vitest';
import {
  backendRef,
  compileObjects,
  conditionsByType,
  gateway,
  gatewayStatus,
  HTTP_ADDRESS,
  HTTPS_ADDRESS,
  httpRoute,
  listener,
  parentRef,
  routeStatus,
  rule,
  serviceLookup,
  tlsSecret,
} from '../../test/helpers/gateway-objects.ts';
import type { GatewayObjects } from '../watch/gateway-records.ts';

const services = serviceLookup({ 'default/a': [80], 'default/b': [80], 'default/c': [80] });
const to = (name: string) => [rule({ backendRefs: [backendRef({ name, port: 80 })] })];
const hostsOf = (c: ReturnType<typeof compileObjects>, address = HTTP_ADDRESS) =>
  Object.fromEntries(
    (c.tables.listeners.find((l) => l.address === address)?.hosts ?? []).map((h) => [
      h.hostname,
      h.rules.map((r) => r.backends[0]?.serviceKey),
    ]),
  );

describe('copies across config clusters', () => {
  const older = gateway({ name: 'gw', cluster: 'west', createdAt: 1000 }, [
    listener({ hostname: 'old.test' }),
  ]);
  const newer = gateway({ name: 'gw', cluster: 'east', createdAt: 2000 }, [
    listener({ hostname: 'new.test' }),
  ]);

  it('the oldest Gateway copy is served; the others are Accepted False, reason Conflicted', () => {
    const c = compileObjects(
      {
        gateways: [newer, older],
        httpRoutes: [
          httpRoute({ name: 'r' }, { parentRefs: [parentRef({ name: 'gw' })], rules: to('a') }),
        ],
      },
      services,
    );
    expect(
      conditionsByType(gatewayStatus(c, 'gw', 'default', 'west').status.conditions).Accepted,
    ).toEqual(['True', 'Accepted']);
    const lost = gatewayStatus(c, 'gw', 'default', 'east').status;
    expect(conditionsByType(lost.conditions)).toEqual({
      Accepted: ['False', 'Conflicted'],
      Programmed: ['False', 'Invalid'],
    });
    expect(lost.conditions[0]?.message).toContain('west');
    expect(lost.listeners).toEqual([]);
    expect(Object.keys(hostsOf(c))).toEqual(['old.test']);
  });

  it('equal ages: the cluster name decides', () => {
    const a = gateway({ name: 'gw', cluster: 'b-cluster', createdAt: 5 }, [
      listener({ hostname: 'b.test' }),
    ]);
    const b = gateway({ name: 'gw', cluster: 'a-cluster', createdAt: 5 }, [
      listener({ hostname: 'a.test' }),
    ]);
    const c = compileObjects(
      {
        gateways: [a, b],
        httpRoutes: [
          httpRoute({ name: 'r' }, { parentRefs: [parentRef({ name: 'gw' })], rules: to('a') }),
        ],
      },
      services,
    );
    expect(Object.keys(hostsOf(c))).toEqual(['a.test']);
  });

  it('route copies: the oldest is served, the others say Conflicted on each of their parents', () => {
    const r1 = httpRoute(
      { name: 'r', cluster: 'west', createdAt: 1 },
      { parentRefs: [parentRef({ name: 'gw' })], rules: to('a') },
    );
    const r2 = httpRoute(
      { name: 'r', cluster: 'east', createdAt: 2 },
      { parentRefs: [parentRef({ name: 'gw' })], rules: to('b') },
    );
    const c = compileObjects({ gateways: [older], httpRoutes: [r2, r1] }, services);
    expect(hostsOf(c)).toEqual({ 'old.test': ['default/a'] });
    const lost = routeStatus(c, 'r', 'default', 'HTTPRoute', 'east').status.parents;
    expect(lost.map((p) => conditionsByType(p.conditions))).toEqual([
      { Accepted: ['False', 'Conflicted'] },
    ]);
    const won = routeStatus(c, 'r', 'default', 'HTTPRoute', 'west').status.parents;
    expect(conditionsByType(won[0]?.conditions ?? []).Accepted).toEqual(['True', 'Accepted']);
  });
});

describe('copies that agree', () => {
  it('are the same object: each shows the served copy status, with its own generation', () => {
    const west = gateway({ name: 'gw', cluster: 'west', createdAt: 1000, generation: 3 }, [
      listener({ hostname: 'same.test' }),
    ]);
    const east = gateway({ name: 'gw', cluster: 'east', createdAt: 2000, generation: 7 }, [
      listener({ hostname: 'same.test' }),
    ]);
    const rule = { parentRefs: [parentRef({ name: 'gw' })], rules: to('a') };
    const r1 = httpRoute({ name: 'r', cluster: 'west', createdAt: 1, generation: 2 }, rule);
    const r2 = httpRoute({ name: 'r', cluster: 'east', createdAt: 2, generation: 5 }, rule);
    const c = compileObjects({ gateways: [east, west], httpRoutes: [r2, r1] }, services);
    expect(hostsOf(c)).toEqual({ 'same.test': ['default/a'] });
    const gw = (cluster: string) => gatewayStatus(c, 'gw', 'default', cluster).status;
    expect(conditionsByType(gw('east').conditions)).toEqual(
      conditionsByType(gw('west').conditions),
    );
    expect(gw('east').conditions.map((x) => x.observedGeneration)).toEqual([7, 7]);
    expect(gw('east').listeners[0]?.attachedRoutes).toBe(1);
    const parents = (cluster: string) =>
      routeStatus(c, 'r', 'default', 'HTTPRoute', cluster).status.parents;
    expect(conditionsByType(parents('east')[0]?.conditions ?? []).Accepted).toEqual([
      'True',
      'Accepted',
    ]);
    expect(parents('east')[0]?.conditions[0]?.observedGeneration).toBe(5);
    expect(parents('west')[0]?.conditions[0]?.observedGeneration).toBe(2);
  });
});

describe('route tables', () => {
  it('Gateways mapped onto one fedgate listener share its table; HTTPS listeners make a TLS table', () => {
    const https = listener({
      name: 'https',
      port: 443,
      protocol: 'HTTPS',
      tls: { mode: 'Terminate', certificateRefs: [{ group: '', kind: 'Secret', name: 'cert' }] },
    });
    const c = compileObjects(
      {
        gateways: [
          gateway({ name: 'g1' }, [listener({ hostname: 'one.test' }), https]),
          gateway({ name: 'g2' }, [listener({ hostname: 'two.test' })]),
        ],
        secrets: [tlsSecret({ name: 'cert' })],
        httpRoutes: [
          httpRoute({ name: 'r1' }, { parentRefs: [parentRef({ name: 'g1' })], rules: to('a') }),
          httpRoute({ name: 'r2' }, { parentRefs: [parentRef({ name: 'g2' })], rules: to('b') }),
        ],
      },
      services,
    );
    expect(c.tables.listeners.map((l) => [l.address, l.tls])).toEqual([
      [HTTP_ADDRESS, false],
      [HTTPS_ADDRESS, true],
    ]);
    expect(hostsOf(c)).toEqual({ 'one.test': ['default/a'], 'two.test': ['default/b'] });
    expect(hostsOf(c, HTTPS_ADDRESS)).toEqual({ '': ['default/a'] });
  });

  it('rules of several routes on one host: oldest route first, then namespace/name, then rule order', () => {
    const l = listener({});
    const mk = (name: string, createdAt: number, backends: string[]) =>
      httpRoute(
        { name, createdAt },
        {
          parentRefs: [parentRef({ name: 'gw' })],
          hostnames: ['h.test'],
          rules: backends.flatMap(to),
        },
      );
    const c = compileObjects(
      {
        gateways: [gateway({ name: 'gw' }, [l])],
        httpRoutes: [mk('z', 1, ['a', 'b']), mk('y', 2, ['c']), mk('x', 2, ['a'])],
      },
      services,
    );
    const rules = c.tables.listeners[0]?.hosts[0]?.rules ?? [];
    expect(rules.map((r) => `${r.route.name}#${r.index}`)).toEqual(['z#0', 'z#1', 'x#0', 'y#0']);
    expect(rules.map((r) => r.createdAt)).toEqual([1, 1, 2, 2]);
  });

  it('a route reaching an exact host through a wildcard listener leaves it to the listener naming that host', () => {
    const c = compileObjects(
      {
        gateways: [
          gateway({ name: 'gw' }, [
            listener({ name: 'wild', hostname: '*.example.com' }),
            listener({ name: 'foo', hostname: 'foo.example.com' }),
          ]),
        ],
        httpRoutes: [
          httpRoute(
            { name: 'wide' },
            {
              parentRefs: [parentRef({ name: 'gw', sectionName: 'wild' })],
              hostnames: ['foo.example.com', 'bar.example.com'],
              rules: to('a'),
            },
          ),
          httpRoute(
            { name: 'narrow' },
            { parentRefs: [parentRef({ name: 'gw', sectionName: 'foo' })], rules: to('b') },
          ),
        ],
      },
      services,
    );
    expect(hostsOf(c)).toEqual({
      'bar.example.com': ['default/a'],
      'foo.example.com': ['default/b'],
    });
    // Still attached (and counted): attachment does not depend on other listeners.
    expect(gatewayStatus(c, 'gw').status.listeners.map((x) => x.attachedRoutes)).toEqual([1, 1]);
  });

  it('the same input in another order compiles to the same tables and status', () => {
    const objects: Partial<GatewayObjects> = {
      gateways: [
        gateway({ name: 'gw' }, [
          listener({ name: 'a', hostname: 'a.test' }),
          listener({ name: 'b', hostname: '*.b.test' }),
        ]),
      ],
      httpRoutes: [
        httpRoute(
          { name: 'r1', createdAt: 3 },
          {
            parentRefs: [parentRef({ name: 'gw' })],
            hostnames: ['a.test', 'x.b.test'],
            rules: to('a'),
          },
        ),
        httpRoute(
          { name: 'r2', createdAt: 3 },
          { parentRefs: [parentRef({ name: 'gw' })], rules: to('b') },
        ),
        httpRoute(
          { name: 'r3', cluster: 'west', createdAt: 1 },
          { parentRefs: [parentRef({ name: 'gw' })], rules: to('c') },
        ),
      ],
    };
    const reversed: Partial<GatewayObjects> = {
      ...objects,
      httpRoutes: [...(objects.httpRoutes ?? [])].reverse(),
    };
    const one = compileObjects(objects, services);
    const two = compileObjects(reversed, services);
    expect(two).toEqual(one);
    expect(JSON.stringify(two)).toBe(JSON.stringify(one));
  });
});
