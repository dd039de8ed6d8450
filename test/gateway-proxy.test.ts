// Gateway API routes through a real ProxyServer (test/helpers/static-proxy.ts) in
// front of real backends: the behaviour of the upstream conformance cases
// (sigs.k8s.io/gateway-api/conformance/tests, named after them where one exists)
// with RouteTables built by hand, as route compilation would hand them over.

import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AttachedRule } from '../src/gateway/attached.ts';
import { type GrpcEcho, startGrpcEcho } from '../src/localfed/grpc-echo.ts';
import { type EchoClient, grpcEchoClient } from '../src/localfed/grpc-echo-client.ts';
import { ECHO_SERVICE, type EchoReply } from '../src/localfed/grpc-echo-proto.ts';
import { seededRandom } from '../src/routing/random.ts';
import type { HTTPRouteFilter } from '../src/watch/gateway-records.ts';
import {
  askThrough,
  type EchoAnswer,
  type EchoBackend,
  echoBackend,
} from './helpers/gateway-backends.ts';
import { backend, httpMatch, rule, tables } from './helpers/gateway-rules.ts';
import { type StaticProxy, type StaticService, startStaticProxy } from './helpers/static-proxy.ts';
import { waitFor } from './helpers/wait.ts';

const NAMES = ['v1', 'v2', 'v3', 'mirror', 'stable', 'canary', 'flaky-a', 'flaky-b'] as const;
type Name = (typeof NAMES)[number];

let fg: StaticProxy;
const b = {} as Record<Name, EchoBackend>;
/** A port nothing listens on (a stopped backend's): connections are refused. */
let deadPort = 0;

const svc = (name: string) => `gw/${name}`;

const get = (
  host: string,
  path: string,
  opts: { method?: string; headers?: Record<string, string> } = {},
): Promise<EchoAnswer> => askThrough(fg.url, host, path, opts);

/** Which backend answered (its name), or the status when fedgate answered. */
const who = async (host: string, path: string, headers?: Record<string, string>) => {
  const a = await get(host, path, headers ? { headers } : {});
  return a.body?.backend ?? String(a.status);
};

const filter = {
  requestHeaders: (
    m: Partial<{ set: [string, string][]; add: [string, string][]; remove: string[] }>,
  ): HTTPRouteFilter => ({
    type: 'RequestHeaderModifier',
    requestHeaderModifier: {
      set: (m.set ?? []).map(([name, value]) => ({ name, value })),
      add: (m.add ?? []).map(([name, value]) => ({ name, value })),
      remove: m.remove ?? [],
    },
  }),
  responseHeaders: (
    m: Partial<{ set: [string, string][]; add: [string, string][]; remove: string[] }>,
  ): HTTPRouteFilter => ({
    type: 'ResponseHeaderModifier',
    responseHeaderModifier: {
      set: (m.set ?? []).map(([name, value]) => ({ name, value })),
      add: (m.add ?? []).map(([name, value]) => ({ name, value })),
      remove: m.remove ?? [],
    },
  }),
  redirect: (
    r: Omit<
      Extract<HTTPRouteFilter, { type: 'RequestRedirect' }>['requestRedirect'],
      'statusCode'
    > & { statusCode?: number },
  ): HTTPRouteFilter => ({
    type: 'RequestRedirect',
    requestRedirect: { statusCode: 302, ...r },
  }),
};

const prefix = (value: string) => httpMatch({ path: { type: 'PathPrefix', value } });
const exact = (value: string) => httpMatch({ path: { type: 'Exact', value } });
const to = (name: string, weight = 1) => backend(svc(name), weight);

/** Every host's rules: hostname → rules. */
function routes(): Record<string, AttachedRule[]> {
  return {
    'exact.example.test': [
      rule({ route: 'gw/exact', index: 0, matches: [exact('/one')], backends: [to('v1')] }),
      rule({ route: 'gw/exact', index: 1, matches: [exact('/two')], backends: [to('v2')] }),
    ],
    'match.example.test': [
      rule({ route: 'gw/match', index: 0, matches: [prefix('/')], backends: [to('v1')] }),
      rule({ route: 'gw/match', index: 1, matches: [prefix('/v2')], backends: [to('v2')] }),
    ],
    'headers.example.test': [
      rule({
        route: 'gw/headers',
        index: 0,
        matches: [httpMatch({ headers: { version: 'one' } })],
        backends: [to('v1')],
      }),
      rule({
        route: 'gw/headers',
        index: 1,
        matches: [httpMatch({ headers: { version: 'two' } })],
        backends: [to('v2')],
      }),
      rule({
        route: 'gw/headers',
        index: 2,
        matches: [httpMatch({ headers: { version: 'two', color: 'orange' } })],
        backends: [to('v1')],
      }),
      rule({
        route: 'gw/headers',
        index: 3,
        matches: [
          httpMatch({ headers: { color: 'blue' } }),
          httpMatch({ headers: { color: 'green' } }),
        ],
        backends: [to('v1')],
      }),
      rule({
        route: 'gw/headers',
        index: 4,
        matches: [
          httpMatch({ headers: { color: 'red' } }),
          httpMatch({ headers: { color: 'yellow' } }),
        ],
        backends: [to('v2')],
      }),
    ],
    'across-a.example.test': [
      rule({ route: 'gw/across-1', matches: [prefix('/')], backends: [to('v1')] }),
      rule({ route: 'gw/across-2', createdAt: 1, matches: [prefix('/v2')], backends: [to('v2')] }),
    ],
    'across-b.example.test': [
      rule({ route: 'gw/across-1', matches: [exact('/')], backends: [to('v1')] }),
      rule({ route: 'gw/across-2', createdAt: 1, matches: [prefix('/v2')], backends: [to('v2')] }),
    ],
    'order.example.test': [
      rule({ route: 'gw/order', index: 0, matches: [prefix('/match')], backends: [to('v1')] }),
      rule({
        route: 'gw/order',
        index: 1,
        matches: [prefix('/match/exact')],
        backends: [to('v2')],
      }),
      rule({
        route: 'gw/order',
        index: 2,
        matches: [exact('/match/exact/one')],
        backends: [to('v3')],
      }),
      rule({
        route: 'gw/order',
        index: 3,
        matches: [
          httpMatch({ path: { type: 'PathPrefix', value: '/match' }, headers: { version: 'one' } }),
        ],
        backends: [to('v2')],
      }),
      rule({
        route: 'gw/order',
        index: 4,
        matches: [httpMatch({ path: { type: 'PathPrefix', value: '/match' }, method: 'POST' })],
        backends: [to('v3')],
      }),
      rule({
        route: 'gw/order',
        index: 5,
        matches: [httpMatch({ path: { type: 'PathPrefix', value: '/match' }, query: { q: '1' } })],
        backends: [to('mirror')],
      }),
    ],
    'extended.example.test': [
      rule({
        route: 'gw/method',
        matches: [httpMatch({ path: { type: 'Exact', value: '/method' }, method: 'POST' })],
        backends: [to('v2')],
      }),
      rule({ route: 'gw/method', index: 1, matches: [exact('/method')], backends: [to('v1')] }),
      rule({
        route: 'gw/query',
        matches: [
          httpMatch({ path: { type: 'Exact', value: '/query' }, query: { animal: 'whale' } }),
        ],
        backends: [to('v2')],
      }),
      rule({ route: 'gw/query', index: 1, matches: [exact('/query')], backends: [to('v1')] }),
      rule({
        route: 'gw/regex',
        matches: [httpMatch({ path: { type: 'RegularExpression', value: '/items/[0-9]+' } })],
        backends: [to('v3')],
      }),
      rule({
        route: 'gw/regex',
        index: 1,
        matches: [
          httpMatch({
            path: { type: 'PathPrefix', value: '/items' },
            headers: [{ type: 'RegularExpression', name: 'x-tier', value: 'gold|silver' }],
          }),
        ],
        backends: [to('v2')],
      }),
    ],
    'headers-mod.example.test': [
      rule({
        route: 'gw/request-headers',
        matches: [prefix('/set')],
        filters: [
          filter.requestHeaders({
            set: [['X-Header-Set', 'set-overwrites-values']],
            add: [['X-Header-Add', 'add-appends-values']],
            remove: ['X-Header-Remove'],
          }),
        ],
        backends: [to('v1')],
      }),
      rule({
        route: 'gw/response-headers',
        matches: [prefix('/response')],
        filters: [
          filter.responseHeaders({
            set: [['X-Backend', 'overwritten']],
            add: [['X-Added', 'yes']],
            remove: ['x-remove-me'],
          }),
        ],
        backends: [to('v1')],
      }),
      rule({
        route: 'gw/backend-filters',
        matches: [prefix('/backend-filter')],
        backends: [
          backend(svc('v2'), 1, {
            filters: [filter.requestHeaders({ set: [['X-Backend-Filter', 'v2']] })],
          }),
        ],
      }),
    ],
    'redirect.example.test': [
      rule({
        route: 'gw/redirect',
        matches: [prefix('/hostname-redirect')],
        filters: [filter.redirect({ hostname: 'example.org' })],
      }),
      rule({
        route: 'gw/redirect',
        index: 1,
        matches: [prefix('/host-and-status')],
        filters: [filter.redirect({ hostname: 'example.org', statusCode: 301 })],
      }),
      rule({
        route: 'gw/redirect',
        index: 2,
        matches: [prefix('/scheme')],
        filters: [filter.redirect({ scheme: 'https' })],
      }),
      rule({
        route: 'gw/redirect',
        index: 3,
        matches: [prefix('/port')],
        filters: [filter.redirect({ port: 8083 })],
      }),
      rule({
        route: 'gw/redirect',
        index: 4,
        matches: [prefix('/scheme-and-port')],
        filters: [filter.redirect({ scheme: 'https', port: 8443, statusCode: 303 })],
      }),
      rule({
        route: 'gw/redirect',
        index: 5,
        matches: [prefix('/full')],
        filters: [
          filter.redirect({
            path: { type: 'ReplaceFullPath', replaceFullPath: '/full-path-replaced' },
            statusCode: 307,
          }),
        ],
      }),
      rule({
        route: 'gw/redirect',
        index: 6,
        matches: [prefix('/prefix')],
        filters: [
          filter.redirect({
            path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/replacement-prefix' },
            statusCode: 308,
          }),
        ],
      }),
    ],
    'rewrite.example.test': [
      rule({
        route: 'gw/rewrite',
        matches: [prefix('/prefix/one')],
        filters: [
          {
            type: 'URLRewrite',
            urlRewrite: { path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/one' } },
          },
        ],
        backends: [to('v1')],
      }),
      rule({
        route: 'gw/rewrite',
        index: 1,
        matches: [prefix('/full/one')],
        filters: [
          {
            type: 'URLRewrite',
            urlRewrite: { path: { type: 'ReplaceFullPath', replaceFullPath: '/one' } },
          },
        ],
        backends: [to('v1')],
      }),
      rule({
        route: 'gw/rewrite',
        index: 2,
        matches: [prefix('/host')],
        filters: [{ type: 'URLRewrite', urlRewrite: { hostname: 'rewritten.example.test' } }],
        backends: [to('v1')],
      }),
    ],
    'weights.example.test': [
      rule({ route: 'gw/weights', backends: [to('v1', 90), to('v2', 10), to('v3', 0)] }),
    ],
    'canary.example.test': [
      rule({ route: 'gw/canary', backends: [to('stable', 90), to('canary', 10)] }),
    ],
    'invalid.example.test': [
      rule({ route: 'gw/invalid', matches: [prefix('/zero')], backends: [to('v1', 0)] }),
      rule({ route: 'gw/invalid', index: 1, matches: [prefix('/none')] }),
      rule({
        route: 'gw/invalid',
        index: 2,
        matches: [prefix('/not-found')],
        backends: [
          backend(undefined as unknown as string, 1, {
            problem: { reason: 'BackendNotFound', message: 'service gw/nope not found' },
          }),
        ],
      }),
      rule({
        route: 'gw/invalid',
        index: 3,
        matches: [prefix('/unknown-service')],
        backends: [to('nope')],
      }),
    ],
    'mirror.example.test': [
      rule({
        route: 'gw/mirror',
        matches: [prefix('/')],
        filters: [
          {
            type: 'RequestMirror',
            requestMirror: { backendRef: { group: '', kind: 'Service', name: 'mirror' } },
          },
        ],
        backends: [to('v1')],
      }),
    ],
    'dead-mirror.example.test': [
      rule({
        route: 'gw/dead-mirror',
        filters: [
          {
            type: 'RequestMirror',
            requestMirror: {
              backendRef: { group: '', kind: 'Service', namespace: 'gw', name: 'dead' },
            },
          },
        ],
        backends: [to('v1')],
      }),
    ],
    'timeouts.example.test': [
      rule({
        route: 'gw/timeouts',
        matches: [prefix('/request')],
        timeouts: { requestMs: 300 },
        backends: [to('v1')],
      }),
      rule({
        route: 'gw/timeouts',
        index: 1,
        matches: [prefix('/backend')],
        timeouts: { backendRequestMs: 200 },
        backends: [to('v1')],
      }),
    ],
    'retry.example.test': [
      rule({
        route: 'gw/retry',
        matches: [prefix('/flaky')],
        retry: { codes: [500], attempts: 2 },
        backends: [to('flaky')],
      }),
      rule({
        route: 'gw/retry',
        index: 1,
        matches: [prefix('/backoff')],
        retry: { codes: [500], attempts: 2, backoffMs: 30 },
        backends: [to('flaky')],
      }),
    ],
    'noretry.example.test': [rule({ route: 'gw/noretry', backends: [to('flaky')] })],
  };
}

beforeAll(async () => {
  for (const [i, name] of NAMES.entries()) b[name] = await echoBackend(name, `127.221.0.${i + 1}`);
  const dead = await echoBackend('dead', '127.221.1.1');
  deadPort = dead.port;
  await dead.stop();
  const one = (name: Name): StaticService => ({
    key: svc(name),
    endpoints: [{ address: b[name].address, port: b[name].port }],
  });
  const services: StaticService[] = [
    one('v1'),
    one('v2'),
    one('v3'),
    one('mirror'),
    one('stable'),
    // The canary's own zone (the proxy's) has a dead endpoint; its other zone a live one.
    {
      key: svc('canary'),
      endpoints: [
        { address: '127.221.1.1', port: deadPort, cluster: 'c0', zone: 'z1' },
        { address: b.canary.address, port: b.canary.port, cluster: 'c1', zone: 'z2' },
      ],
    },
    {
      key: svc('flaky'),
      endpoints: [
        { address: b['flaky-a'].address, port: b['flaky-a'].port },
        { address: b['flaky-b'].address, port: b['flaky-b'].port },
      ],
    },
    { key: svc('dead'), endpoints: [{ address: '127.221.1.1', port: deadPort }] },
  ];
  const random = seededRandom(20);
  fg = await startStaticProxy(
    services,
    {},
    undefined,
    undefined,
    tables('127.0.0.1:0', routes()),
    random,
  );
}, 30_000);

afterAll(async () => {
  await fg?.stop();
  for (const x of Object.values(b)) await x.stop();
});

describe('HTTPRoute core matching', () => {
  it('HTTPRouteExactPathMatching: exact paths only; anything else is not routed by the route', async () => {
    expect(await who('exact.example.test', '/one')).toBe('v1');
    expect(await who('exact.example.test', '/two')).toBe('v2');
    // No rule: Host routing, which knows no such host.
    const miss = await get('exact.example.test', '/one/example');
    expect(miss.status).toBe(404);
    expect(miss.headers['x-fedgate-error']).toBe('HOST_UNKNOWN');
    // The answer says a route's rules missed, not that the host is unknown.
    expect(miss.text).toContain('no rule of the routes for host "exact.example.test"');
    expect((await get('exact.example.test', '/')).status).toBe(404);
    expect((await get('nowhere.example.test', '/')).text).toContain(
      'no federated service is served at host',
    );
  });

  it('HTTPRouteMatching: the longest prefix by whole segments', async () => {
    expect(await who('match.example.test', '/')).toBe('v1');
    expect(await who('match.example.test', '/example')).toBe('v1');
    expect(await who('match.example.test', '/v2')).toBe('v2');
    expect(await who('match.example.test', '/v2/example')).toBe('v2');
    expect(await who('match.example.test', '/v2example')).toBe('v1');
  });

  it('HTTPRouteHeaderMatching: exact header values, more headers first, any match of a rule', async () => {
    const h = (headers: Record<string, string>) => who('headers.example.test', '/', headers);
    expect(await h({ version: 'one' })).toBe('v1');
    expect(await h({ version: 'two' })).toBe('v2');
    expect(await h({ version: 'two', color: 'orange' })).toBe('v1');
    expect(await h({ color: 'blue' })).toBe('v1');
    expect(await h({ color: 'green' })).toBe('v1');
    expect(await h({ color: 'red' })).toBe('v2');
    expect(await h({ color: 'yellow' })).toBe('v2');
    expect(await h({ Version: 'two', COLOR: 'orange' })).toBe('v1');
    expect(await h({ version: 'three' })).toBe('404');
  });

  it('HTTPRouteMatchingAcrossRoutes: rules of several routes on one host, by precedence', async () => {
    expect(await who('across-a.example.test', '/')).toBe('v1');
    expect(await who('across-a.example.test', '/v2/x')).toBe('v2');
    expect(await who('across-b.example.test', '/')).toBe('v1');
    expect(await who('across-b.example.test', '/v2')).toBe('v2');
    expect(await who('across-b.example.test', '/example')).toBe('404');
  });

  it('HTTPRoutePathMatchOrder: Exact, longest prefix, method, headers, query params', async () => {
    expect(await who('order.example.test', '/match/exact/one')).toBe('v3');
    expect(await who('order.example.test', '/match/exact/two')).toBe('v2');
    expect(await who('order.example.test', '/match/prefix')).toBe('v1');
    expect(
      (await get('order.example.test', '/match', { method: 'POST', headers: { version: 'one' } }))
        .body?.backend,
    ).toBe('v3');
    expect(await who('order.example.test', '/match', { version: 'one' })).toBe('v2');
    expect(await who('order.example.test', '/match?q=1')).toBe('mirror');
  });
});

describe('HTTPRoute extended matching', () => {
  it('HTTPRouteMethodMatching', async () => {
    expect((await get('extended.example.test', '/method', { method: 'POST' })).body?.backend).toBe(
      'v2',
    );
    expect(await who('extended.example.test', '/method')).toBe('v1');
  });

  it('HTTPRouteQueryParamMatching', async () => {
    expect(await who('extended.example.test', '/query?animal=whale')).toBe('v2');
    expect(await who('extended.example.test', '/query?animal=dolphin')).toBe('v1');
  });

  it('RegularExpression paths and headers, anchored to the whole value', async () => {
    expect(await who('extended.example.test', '/items/42')).toBe('v3');
    expect(await who('extended.example.test', '/items/42x', { 'x-tier': 'gold' })).toBe('v2');
    expect(await who('extended.example.test', '/items/x', { 'x-tier': 'golden' })).toBe('404');
  });
});

describe('filters', () => {
  it('HTTPRouteRequestHeaderModifier: set, add (appended), remove', async () => {
    const a = await get('headers-mod.example.test', '/set', {
      headers: {
        'x-header-set': 'some-other-value',
        'x-header-add': 'some-other-value',
        'x-header-remove': 'val',
      },
    });
    expect(a.body?.backend).toBe('v1');
    expect(a.body?.headers['x-header-set']).toBe('set-overwrites-values');
    expect(a.body?.headers['x-header-add']).toBe('some-other-value,add-appends-values');
    expect(a.body?.headers['x-header-remove']).toBeUndefined();
  });

  it('HTTPRouteResponseHeaderModifier: the client sees the answer modified', async () => {
    const a = await get('headers-mod.example.test', '/response');
    expect(a.headers['x-backend']).toBe('overwritten');
    expect(a.headers['x-added']).toBe('yes');
    expect(a.headers['x-remove-me']).toBeUndefined();
  });

  it("a backendRef's own filters apply to the requests sent to it", async () => {
    const a = await get('headers-mod.example.test', '/backend-filter');
    expect(a.body?.backend).toBe('v2');
    expect(a.body?.headers['x-backend-filter']).toBe('v2');
  });

  it('HTTPRouteRedirectHostAndStatus: Location with the new host, the listener port kept, the status', async () => {
    const port = new URL(fg.url).port;
    const a = await get('redirect.example.test', '/hostname-redirect?x=1');
    expect(a.status).toBe(302);
    expect(a.headers.location).toBe(`http://example.org:${port}/hostname-redirect?x=1`);
    const s = await get('redirect.example.test', '/host-and-status');
    expect(s.status).toBe(301);
    expect(s.headers.location).toBe(`http://example.org:${port}/host-and-status`);
  });

  it('HTTPRouteRedirectScheme, HTTPRouteRedirectPort, HTTPRouteRedirectPortAndScheme: the default-port rules', async () => {
    const port = new URL(fg.url).port;
    const scheme = await get('redirect.example.test', '/scheme');
    expect(scheme.headers.location).toBe('https://redirect.example.test/scheme');
    const p = await get('redirect.example.test', '/port');
    expect(p.headers.location).toBe('http://redirect.example.test:8083/port');
    const both = await get('redirect.example.test', '/scheme-and-port');
    expect(both.status).toBe(303);
    expect(both.headers.location).toBe('https://redirect.example.test:8443/scheme-and-port');
    expect(port).not.toBe('');
  });

  it('HTTPRouteRedirectPath: ReplaceFullPath (307) and ReplacePrefixMatch (308)', async () => {
    const port = new URL(fg.url).port;
    const full = await get('redirect.example.test', '/full/path?q=1');
    expect(full.status).toBe(307);
    expect(full.headers.location).toBe(
      `http://redirect.example.test:${port}/full-path-replaced?q=1`,
    );
    const pre = await get('redirect.example.test', '/prefix/rest');
    expect(pre.status).toBe(308);
    expect(pre.headers.location).toBe(
      `http://redirect.example.test:${port}/replacement-prefix/rest`,
    );
  });

  it('HTTPRouteRewritePath and HTTPRouteRewriteHost: the backend sees the rewritten path and Host', async () => {
    expect((await get('rewrite.example.test', '/prefix/one/two?a=b')).body?.url).toBe(
      '/one/two?a=b',
    );
    expect((await get('rewrite.example.test', '/full/one/two')).body?.url).toBe('/one');
    const h = await get('rewrite.example.test', '/host');
    expect(h.body?.headers.host).toBe('rewritten.example.test');
    expect(h.body?.headers['x-forwarded-host']).toBe('rewrite.example.test');
  });

  it('HTTPRouteRequestMirror: the mirror backend sees copies, the client the real answer', async () => {
    const before = b.mirror.seen.length;
    const a = await get('mirror.example.test', '/mirrored?n=1', { headers: { 'x-mark': 'm1' } });
    expect(a.body?.backend).toBe('v1');
    await waitFor(() => b.mirror.seen.length > before || undefined, 5000);
    const copy = b.mirror.seen.at(-1);
    expect(copy?.url).toBe('/mirrored?n=1');
    expect(copy?.headers['x-mark']).toBe('m1');
  });

  it('a small body goes with the copy; a large one does not, and the real request gets it whole', async () => {
    const post = async (body: string) => {
      const before = b.mirror.seen.length;
      const r = await request(`${fg.url}/upload`, {
        method: 'POST',
        headers: { host: 'mirror.example.test', 'content-type': 'text/plain' },
        body,
      });
      await r.body.text();
      await waitFor(
        () =>
          (b.mirror.seen.length > before && b.mirror.seen.at(-1)?.body !== undefined) || undefined,
        5000,
      );
      return { real: b.v1.seen.at(-1), copy: b.mirror.seen.at(-1) };
    };
    const small = await post('x'.repeat(1000));
    expect(small.real?.body).toHaveLength(1000);
    expect(small.copy?.method).toBe('POST');
    expect(small.copy?.body).toBe('x'.repeat(1000));
    const large = await post('y'.repeat(100_000));
    expect(large.real?.body).toHaveLength(100_000);
    expect(large.copy?.body).toBe('');
  });

  it('a dead mirror neither fails nor holds the real request; its failures are counted', async () => {
    for (let i = 0; i < 5; i++) expect(await who('dead-mirror.example.test', '/')).toBe('v1');
    await waitFor(async () => {
      const text = (await fg.metrics.scrape()).text;
      return (
        /fedgate_http_mirrored_requests_total\{service="gw\/dead",result="failed"\} 5/.test(text) ||
        undefined
      );
    }, 5000);
  });

  it('a mirror that never answers does not hold the real request back', async () => {
    b.mirror.hangAll = true;
    try {
      const a = await get('mirror.example.test', '/held');
      expect(a.body?.backend).toBe('v1');
      // The copy reached the mirror, which holds it still: the answer did not wait for it.
      await waitFor(() => b.mirror.hanging > 0 || undefined, 5000);
      expect(b.mirror.seen.at(-1)?.url).toBe('/held');
    } finally {
      b.mirror.hangAll = false;
    }
  });
});

describe('backends', () => {
  it('HTTPRouteWeight: 1,000 requests split 90/10 within 3 %, weight 0 never chosen', async () => {
    const counts: Record<string, number> = {};
    for (let i = 0; i < 1000; i++) {
      const w = await who('weights.example.test', '/');
      counts[w] = (counts[w] ?? 0) + 1;
    }
    expect(counts.v3).toBeUndefined();
    expect((counts.v1 ?? 0) + (counts.v2 ?? 0)).toBe(1000);
    expect(Math.abs((counts.v1 ?? 0) - 900)).toBeLessThanOrEqual(30);
  }, 60_000);

  it('a failing zone inside the canary backend fails over inside it, and the 90/10 split stays', async () => {
    const counts: Record<string, number> = {};
    for (let i = 0; i < 1000; i++) {
      const w = await who('canary.example.test', '/');
      counts[w] = (counts[w] ?? 0) + 1;
    }
    // Every canary request reached the canary's live zone: none failed, none went to stable.
    expect((counts.stable ?? 0) + (counts.canary ?? 0)).toBe(1000);
    expect(Math.abs((counts.canary ?? 0) - 100)).toBeLessThanOrEqual(30);
    expect(fg.reports.some((r) => r.startsWith('gw/canary ') && r.endsWith('local/connect'))).toBe(
      true,
    );
  }, 60_000);

  it('a rule that cannot serve answers 500 ROUTE_BACKEND_INVALID', async () => {
    for (const path of ['/zero', '/none', '/not-found', '/unknown-service']) {
      const a = await get('invalid.example.test', path);
      expect(a.status, path).toBe(500);
      expect(a.headers['x-fedgate-error'], path).toBe('ROUTE_BACKEND_INVALID');
    }
    expect((await get('invalid.example.test', '/not-found')).text).toContain('BackendNotFound');
  });

  it('HTTPRouteRequestTimeout: no answer within timeouts.request is 504 UPSTREAM_TIMEOUT', async () => {
    const a = await get('timeouts.example.test', '/request/slow/3000');
    expect(a.status).toBe(504);
    expect(a.headers['x-fedgate-error']).toBe('UPSTREAM_TIMEOUT');
    expect(a.text).toContain('timeouts.request');
    expect((await get('timeouts.example.test', '/request/fast')).status).toBe(200);
  });

  it('timeouts.request cuts an answer still streaming when it passes (as Envoy’s route timeout)', async () => {
    const t0 = performance.now();
    const cut = await get('timeouts.example.test', '/request/drip/3000').then(
      (a) => `whole: ${a.status} ${a.text.length} bytes`,
      (e: Error) => `cut: ${e.message}`,
    );
    expect(cut).toMatch(/^cut: /);
    expect(performance.now() - t0).toBeLessThan(2500);
    // An answer that ends within the bound is whole.
    const whole = await get('timeouts.example.test', '/request/drip/100');
    expect([whole.status, whole.text.endsWith('end')]).toEqual([200, true]);
  });

  it('HTTPRouteBackendRequestTimeout: timeouts.backendRequest is the per-try timeout', async () => {
    const before = b.v1.seen.length;
    const a = await get('timeouts.example.test', '/backend/slow/3000');
    expect(a.status).toBe(504);
    expect(a.headers['x-fedgate-error']).toBe('UPSTREAM_TIMEOUT');
    expect(b.v1.seen.length).toBeGreaterThan(before);
  });

  it('retry: retry.codes makes a 500 retried on another endpoint; without it a 500 is relayed', async () => {
    b['flaky-a'].flaky = true;
    try {
      const statuses = new Set<number>();
      for (let i = 0; i < 20; i++) statuses.add((await get('retry.example.test', '/flaky')).status);
      // With retry.backoff the retry waits, then goes as well.
      for (let i = 0; i < 10; i++) {
        statuses.add((await get('retry.example.test', '/backoff/flaky')).status);
      }
      expect([...statuses]).toEqual([200]);
      const plain = new Set<number>();
      for (let i = 0; i < 40; i++) plain.add((await get('noretry.example.test', '/flaky')).status);
      expect(plain.has(500)).toBe(true);
      expect(b['flaky-a'].seen.length).toBeGreaterThan(0);
    } finally {
      b['flaky-a'].flaky = false;
    }
  });
});

describe('metrics', () => {
  it('fedgate_http_requests_total carries the route; Host routing and redirects count too', async () => {
    await get('redirect.example.test', '/scheme');
    const text = (await fg.metrics.scrape()).text;
    expect(text).toMatch(
      /fedgate_http_requests_total\{service="gw\/v1",[^}]*outcome="relayed",route="gw\/exact"\} \d+/,
    );
    expect(text).toMatch(
      /fedgate_http_requests_total\{service="",[^}]*code="3xx",outcome="redirected",route="gw\/redirect"\} \d+/,
    );
    expect(text).toMatch(
      /fedgate_http_requests_total\{service="",[^}]*code="5xx",outcome="failed",route="gw\/invalid"\} \d+/,
    );
    expect(text).toMatch(
      /fedgate_http_requests_total\{service="",[^}]*code="4xx",outcome="rejected",route=""\} \d+/,
    );
  });
});

describe('GRPCRoute', () => {
  const HOST = 'grpc.example.test';
  let gp: StaticProxy;
  const echoes: GrpcEcho[] = [];
  let client: EchoClient;

  const grpcRule = (
    index: number,
    match: Partial<{ method: string; headers: Record<string, string> }>,
    backends: AttachedRule['backends'],
  ) =>
    rule({
      route: 'gw/grpc',
      index,
      grpc: [
        {
          ...(match.method
            ? { method: { type: 'Exact' as const, service: ECHO_SERVICE, method: match.method } }
            : {}),
          headers: Object.entries(match.headers ?? {}).map(([name, value]) => ({
            type: 'Exact' as const,
            name,
            value,
          })),
        },
      ],
      backends,
    });

  beforeAll(async () => {
    const services: StaticService[] = [];
    for (const [i, name] of ['g1', 'g2'].entries()) {
      const host = `127.221.2.${i + 1}`;
      const info = {
        cluster: name,
        region: 'r1',
        zone: 'z1',
        node: 'n',
        pod: `${name}-0`,
        namespace: 'gw',
        service: name,
        ip: host,
      };
      const e = await startGrpcEcho({ host, port: 0, info });
      echoes.push(e);
      services.push({
        key: svc(name),
        portName: 'grpc',
        appProtocol: 'grpc',
        endpoints: [{ address: host, port: e.port, cluster: name }],
      });
    }
    const hosts = {
      [HOST]: [
        grpcRule(0, { method: 'Unary', headers: { 'x-route': 'two' } }, [to('g2')]),
        grpcRule(1, { method: 'Unary' }, [to('g1')]),
        grpcRule(2, { method: 'ServerStream' }, [to('g2')]),
      ],
      'grpc-weights.example.test': [grpcRule(0, {}, [to('g1', 90), to('g2', 10)])],
      'grpc-invalid.example.test': [grpcRule(0, {}, [to('g1', 0)])],
    };
    const random = seededRandom(21);
    gp = await startStaticProxy(
      services,
      {},
      undefined,
      undefined,
      tables('127.0.0.1:0', hosts),
      random,
    );
    client = grpcEchoClient(`127.0.0.1:${new URL(gp.url).port}`, { authority: HOST });
  }, 30_000);

  afterAll(async () => {
    client?.close();
    await gp?.stop();
    for (const e of echoes) await e.stop();
  });

  const via = (authority: string) => {
    const c = grpcEchoClient(`127.0.0.1:${new URL(gp.url).port}`, { authority });
    return c;
  };

  it('GRPCExactMethodMatching: service and method pick the backend', async () => {
    expect((await client.unary({ message: 'a' })).value.where?.cluster).toBe('g1');
    const stream = client.serverStream({ message: 's', count: 2 });
    const clusters: string[] = [];
    for await (const r of stream) clusters.push((r as EchoReply).where?.cluster ?? '');
    expect(clusters).toEqual(['g2', 'g2']);
  });

  it('GRPCRouteHeaderMatching: more header matches first', async () => {
    const r = await client.unary({ message: 'h' }, { metadata: { 'x-route': 'two' } });
    expect(r.value.where?.cluster).toBe('g2');
    const other = await client.unary({ message: 'h' }, { metadata: { 'x-route': 'one' } });
    expect(other.value.where?.cluster).toBe('g1');
  });

  it('GRPCRouteWeight: 1,000 calls split 90/10 within 3 %', async () => {
    const c = via('grpc-weights.example.test');
    try {
      let g2 = 0;
      for (let i = 0; i < 1000; i++) {
        if ((await c.unary({ message: 'w' })).value.where?.cluster === 'g2') g2++;
      }
      expect(Math.abs(g2 - 100)).toBeLessThanOrEqual(30);
    } finally {
      c.close();
    }
  }, 60_000);

  it('a call fedgate fails keeps its trailers-only gRPC answer (ROUTE_BACKEND_INVALID: UNAVAILABLE)', async () => {
    const c = via('grpc-invalid.example.test');
    try {
      const err = await c.unary({ message: 'x' }).then(
        () => undefined,
        (e: { code: number; details: string }) => e,
      );
      expect(err?.code).toBe(14);
      expect(err?.details).toContain('ROUTE_BACKEND_INVALID');
    } finally {
      c.close();
    }
  });
});

describe('upgrades', () => {
  it('an Upgrade request a redirect rule matches gets the redirect, raw, and the connection closes', async () => {
    const { connect } = await import('node:net');
    const port = Number(new URL(fg.url).port);
    const socket = connect(port, '127.0.0.1');
    socket.write(
      'GET /scheme/ws HTTP/1.1\r\nHost: redirect.example.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n',
    );
    let text = '';
    socket.on('data', (c: Buffer) => {
      text += c.toString();
    });
    await new Promise((r) => socket.on('close', r));
    expect(text).toMatch(/^HTTP\/1\.1 302 /);
    expect(text).toContain('location: https://redirect.example.test/scheme/ws');
  });
});
