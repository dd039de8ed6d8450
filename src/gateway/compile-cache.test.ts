// Compiling with a cache gives what compiling everything gives. Seeded random runs of
// edits (routes edited, added, deleted, copied to another cluster, re-sent unchanged;
// Gateways, ReferenceGrants, Namespace labels, Secrets, the services' shape and the
// listener mappings changed), each step compiled both ways and compared whole: tables,
// status, and what a matcher built on the last one answers.
import { describe, expect, it } from 'vitest';
import {
  backendRef,
  emptyObjects,
  gateway,
  gatewayClass,
  grpcRoute,
  HTTP_ADDRESS,
  httpRoute,
  listener,
  MAPPINGS,
  namespace,
  parentRef,
  referenceGrant,
  rule,
  serviceLookup,
  tlsSecret,
} from '../../test/helpers/gateway-objects.ts';
import { seededRandom } from '../routing/random.ts';
import type {
  GatewayObjects,
  GRPCRouteRecord,
  HTTPRouteMatch,
  HTTPRouteRecord,
  HTTPRouteRule,
} from '../watch/gateway-records.ts';
import { compileGateways, newCompileCache } from './compile.ts';
import type { CompileInput } from './inputs.ts';
import { ListenerMatcher, type MatchRequest } from './match.ts';

const HOSTS = ['a.example.test', 'b.example.test', '*.example.test', 'secure.example.test'];
const NAMESPACES = ['default', 'team', 'other'];
const SERVICES = ['default/a', 'default/b', 'team/c', 'other/d'];

type Random = () => number;
const pick = <T>(random: Random, xs: readonly T[]): T => xs[Math.floor(random() * xs.length)] as T;
const some = <T>(random: Random, xs: readonly T[], max: number): T[] =>
  xs.filter(() => random() < max / xs.length);

function randomMatch(random: Random, i: number): HTTPRouteMatch {
  const type = pick(random, ['Exact', 'PathPrefix', 'RegularExpression'] as const);
  return {
    path: { type, value: type === 'RegularExpression' ? `/r${i}/[a-z]+` : `/p${i % 4}` },
    headers: random() < 0.3 ? [{ type: 'Exact', name: 'x-v', value: `v${i % 2}` }] : [],
    queryParams: [],
    ...(random() < 0.2 ? { method: 'POST' } : {}),
  };
}

function randomRule(random: Random, i: number): HTTPRouteRule {
  const [ns, name] = pick(random, SERVICES).split('/') as [string, string];
  return rule({
    matches: Array.from({ length: 1 + Math.floor(random() * 2) }, () => randomMatch(random, i)),
    backendRefs: [backendRef({ name, port: pick(random, [80, 81]), namespace: ns })],
    ...(random() < 0.1 ? { filters: [{ type: 'Unknown', written: 'Odd' }] } : {}),
    ...(random() < 0.1 ? { timeouts: { request: pick(random, ['1s', 'soon']) } } : {}),
  });
}

interface World {
  version: number;
  objects: GatewayObjects;
  services: Record<string, number[]>;
  /** Whether port 443 is mapped too. */
  https: boolean;
}

function randomHttpRoute(random: Random, w: World, name?: string): HTTPRouteRecord {
  const n = name ?? `r${Math.floor(random() * 12)}`;
  const old = w.objects.httpRoutes.find((r) => r.name === n);
  return httpRoute(
    {
      name: n,
      namespace: old?.namespace ?? pick(random, NAMESPACES),
      cluster: old?.cluster ?? 'east',
      createdAt: old?.createdAt ?? Math.floor(random() * 50),
      generation: (old?.generation ?? 0) + 1,
    },
    {
      parentRefs: [
        parentRef({
          name: 'edge',
          namespace: 'default',
          ...(random() < 0.2 ? { sectionName: pick(random, ['http', 'named', 'tls']) } : {}),
        }),
      ],
      hostnames: some(random, HOSTS, 1.5),
      rules: Array.from({ length: 1 + Math.floor(random() * 3) }, (_, i) => randomRule(random, i)),
    },
  );
}

function randomGrpcRoute(random: Random): GRPCRouteRecord {
  return grpcRoute(
    { name: `g${Math.floor(random() * 3)}`, createdAt: Math.floor(random() * 50) },
    {
      parentRefs: [parentRef({ name: 'edge' })],
      hostnames: some(random, HOSTS, 1),
      rules: [
        {
          matches: [
            { method: { type: 'Exact', service: pick(random, ['s.A', 's.B']) }, headers: [] },
          ],
          filters: [],
          backendRefs: [
            { ...backendRef({ name: pick(random, ['a', 'b']), port: 80 }), filters: [] },
          ],
        },
      ],
    },
  );
}

function edgeGateway(random: Random, generation: number) {
  return gateway({ name: 'edge', generation }, [
    listener({ name: 'http', allowedRoutes: { from: 'All', kinds: [] } }),
    listener({
      name: 'named',
      port: 80,
      hostname: pick(random, ['*.example.test', 'b.example.test']),
      allowedRoutes: {
        from: 'Selector',
        selector: { matchLabels: { edge: 'yes' }, matchExpressions: [] },
        kinds: [],
      },
    }),
    listener({
      name: 'tls',
      port: 443,
      protocol: 'HTTPS',
      hostname: 'secure.example.test',
      tls: { mode: 'Terminate', certificateRefs: [{ group: '', kind: 'Secret', name: 'cert' }] },
      allowedRoutes: { from: 'All', kinds: [] },
    }),
  ]);
}

/** One random change to the world: mostly to routes, sometimes to what they share. */
function step(random: Random, w: World): void {
  const o = w.objects;
  const replace = <T extends { name: string; cluster: string }>(list: readonly T[], r: T) => [
    ...list.filter((x) => x.name !== r.name || x.cluster !== r.cluster),
    r,
  ];
  const roll = random();
  if (roll < 0.45) {
    w.objects = { ...o, httpRoutes: replace(o.httpRoutes, randomHttpRoute(random, w)) };
  } else if (roll < 0.55 && o.httpRoutes.length > 0) {
    const gone = pick(random, o.httpRoutes);
    w.objects = { ...o, httpRoutes: o.httpRoutes.filter((r) => r !== gone) };
  } else if (roll < 0.62 && o.httpRoutes.length > 0) {
    // The same route read from another cluster: agreeing, or saying something else.
    const r = pick(random, o.httpRoutes);
    const copy = { ...(random() < 0.5 ? r : randomHttpRoute(random, w, r.name)) };
    const west = { ...copy, cluster: 'west', createdAt: r.createdAt + pick(random, [-1, 1]) };
    w.objects = { ...o, httpRoutes: replace(o.httpRoutes, west) };
  } else if (roll < 0.67 && o.httpRoutes.length > 0) {
    // Re-sent as a new object saying the same (a relist).
    const r = pick(random, o.httpRoutes);
    w.objects = { ...o, httpRoutes: replace(o.httpRoutes, { ...r }) };
  } else if (roll < 0.72) {
    w.objects = { ...o, grpcRoutes: replace(o.grpcRoutes, randomGrpcRoute(random)) };
  } else if (roll < 0.77) {
    w.objects = { ...o, gateways: [edgeGateway(random, (o.gateways[0]?.generation ?? 0) + 1)] };
  } else if (roll < 0.82) {
    const grants =
      o.referenceGrants.length > 0
        ? []
        : [
            referenceGrant(
              { name: 'g', namespace: 'other' },
              [{ group: 'gateway.networking.k8s.io', kind: 'HTTPRoute', namespace: 'default' }],
              [{ group: '', kind: 'Service' }],
            ),
          ];
    w.objects = { ...o, referenceGrants: grants };
  } else if (roll < 0.87) {
    const ns = pick(random, NAMESPACES);
    const labels = random() < 0.5 ? { edge: 'yes' } : {};
    w.objects = { ...o, namespaces: replace(o.namespaces, namespace(ns, labels)) };
  } else if (roll < 0.9) {
    w.objects = { ...o, secrets: o.secrets.length > 0 ? [] : [tlsSecret({ name: 'cert' })] };
  } else if (roll < 0.96) {
    const key = pick(random, SERVICES);
    const { [key]: had, ...rest } = w.services;
    w.services = had === undefined ? { ...rest, [key]: some(random, [80, 81], 1.5) } : rest;
  } else {
    w.https = !w.https;
  }
}

function inputOf(w: World, lookups: Map<string, CompileInput['services']>): CompileInput {
  // The feed keeps one lookup per services' shape: a new one only when it changes.
  const shape = JSON.stringify(w.services);
  const services = lookups.get(shape) ?? serviceLookup(w.services);
  lookups.clear();
  lookups.set(shape, services);
  return {
    objects: w.objects,
    services,
    listeners: w.https ? MAPPINGS : MAPPINGS.filter((m) => m.protocol === 'HTTP'),
    addresses: [{ type: 'IPAddress', value: '127.220.0.1' }],
  };
}

const REQUESTS: MatchRequest[] = HOSTS.flatMap((h) =>
  ['/p0', '/p1/x', '/r0/abc', '/r2/q'].map((path) => ({
    host: h.replace('*', 'w'),
    method: 'GET',
    path,
    query: '',
    headers: { 'x-v': 'v0' },
    grpc: false,
  })),
);

describe('compiling with a cache', () => {
  for (const seed of [1, 2, 3, 4, 5, 6]) {
    it(`gives what a full compilation gives, step after step (seed ${seed})`, () => {
      const random = seededRandom(seed);
      const w: World = {
        version: 0,
        objects: {
          ...emptyObjects(),
          gatewayClasses: [gatewayClass()],
          gateways: [edgeGateway(random, 1)],
          namespaces: NAMESPACES.map((ns) => namespace(ns)),
          secrets: [tlsSecret({ name: 'cert' })],
        },
        services: { 'default/a': [80], 'default/b': [80, 81], 'other/d': [80] },
        https: true,
      };
      const cache = newCompileCache();
      const lookups = new Map<string, CompileInput['services']>();
      let matcher: ListenerMatcher | undefined;
      for (let n = 0; n < 150; n++) {
        step(random, w);
        const input = inputOf(w, lookups);
        const incremental = compileGateways(input, cache);
        const full = compileGateways(input);
        expect(incremental, `step ${n}`).toStrictEqual(full);
        // A matcher built on the one before answers as one built afresh.
        const table = incremental.tables.listeners.find((l) => l.address === HTTP_ADDRESS);
        const fresh = full.tables.listeners.find((l) => l.address === HTTP_ADDRESS);
        if (table === undefined || fresh === undefined) continue;
        matcher = new ListenerMatcher(table, matcher);
        const afresh = new ListenerMatcher(fresh);
        for (const req of REQUESTS) expect(matcher.match(req)).toStrictEqual(afresh.match(req));
      }
    });
  }
});

describe('what the cache keeps', () => {
  const route = (name: string, host: string, path = '/') =>
    httpRoute(
      { name },
      {
        parentRefs: [parentRef({ name: 'edge' })],
        hostnames: [host],
        rules: [
          rule({
            matches: [{ path: { type: 'PathPrefix', value: path }, headers: [], queryParams: [] }],
            backendRefs: [backendRef({ name: 'a', port: 80 })],
          }),
        ],
      },
    );
  const base = {
    ...emptyObjects(),
    gatewayClasses: [gatewayClass()],
    gateways: [gateway({ name: 'edge' }, [listener({})])],
  };
  const input = (
    httpRoutes: HTTPRouteRecord[],
    services = serviceLookup({ 'default/a': [80] }),
  ) => ({
    objects: { ...base, httpRoutes },
    services,
    listeners: MAPPINGS,
    addresses: [],
  });
  const services = serviceLookup({ 'default/a': [80] });
  const one = route('one', 'one.test');
  const two = route('two', 'two.test');

  it('one route changed: the other hosts and the other routes status are the same objects', () => {
    const cache = newCompileCache();
    const before = compileGateways(input([one, two], services), cache);
    const after = compileGateways(input([one, route('two', 'two.test', '/v2')], services), cache);
    const hosts = (c: typeof before) => c.tables.listeners[0]?.hosts ?? [];
    const [oneBefore, twoBefore] = hosts(before);
    const [oneAfter, twoAfter] = hosts(after);
    expect(oneAfter).toBe(oneBefore);
    expect(twoAfter).not.toBe(twoBefore);
    const status = (c: typeof before, name: string) =>
      c.status.objects.find((o) => o.name === name);
    expect(status(after, 'one')).toBe(status(before, 'one'));
  });

  it('a new services lookup compiles every route again', () => {
    const cache = newCompileCache();
    const before = compileGateways(input([one, two], services), cache);
    const after = compileGateways(input([one, two], serviceLookup({})), cache);
    expect(after.tables.listeners[0]?.hosts[0]?.rules[0]?.backends[0]?.problem?.reason).toBe(
      'BackendNotFound',
    );
    expect(before.tables.listeners[0]?.hosts[0]?.rules[0]?.backends[0]?.serviceKey).toBe(
      'default/a',
    );
  });
});
