// The upstream conformance cases end to end: their manifests (copied verbatim into
// test/fixtures/gateway-conformance/) read into records, compiled by
// compileGateways into RouteTables for the proxy's listener, handed to a real
// ProxyServer in front of real backends named as the conformance suite's
// (gateway-conformance-infra/infra-backend-v1…v3), and the cases' requests and
// expectations from sigs.k8s.io/gateway-api/conformance v1.6.3 tests/*.go.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seededRandom } from '../src/routing/random.ts';
import {
  askThrough,
  type EchoAnswer,
  type EchoBackend,
  echoBackend,
} from './helpers/gateway-backends.ts';
import { compileObjects, conformanceObjects } from './helpers/gateway-objects.ts';
import { type StaticProxy, startStaticProxy } from './helpers/static-proxy.ts';

const NS = 'gateway-conformance-infra';
const V = ['infra-backend-v1', 'infra-backend-v2', 'infra-backend-v3'] as const;
const LISTENER = '127.0.0.1:0';

let fg: StaticProxy;
const backends: EchoBackend[] = [];

beforeAll(async () => {
  for (const [i, name] of V.entries()) backends.push(await echoBackend(name, `127.221.4.${i + 1}`));
}, 30_000);

afterAll(async () => {
  for (const b of backends) await b.stop();
});

/** A proxy serving one conformance case's routes (with base.yaml's Gateways and Services). */
async function serving(file: string): Promise<StaticProxy> {
  const { objects, services } = conformanceObjects(['base.yaml', file]);
  const compiled = compileObjects(objects, services, {
    listeners: [{ port: 80, protocol: 'HTTP', address: LISTENER }],
  });
  return startStaticProxy(
    backends.map((b) => ({
      key: `${NS}/${b.name}`,
      endpoints: [{ address: b.address, port: b.port }],
    })),
    {},
    undefined,
    undefined,
    compiled.tables,
    seededRandom(6),
  );
}

const send = (
  p: StaticProxy,
  path: string,
  opts: { host?: string; headers?: Record<string, string> } = {},
): Promise<EchoAnswer> =>
  askThrough(
    p.url,
    opts.host ?? 'conformance.example.test',
    path,
    opts.headers ? { headers: opts.headers } : {},
  );

/** The backend that answered (v1, v2, v3), or the status fedgate answered with. */
const who = (g: EchoAnswer): string =>
  g.body?.backend.replace('infra-backend-', '') ?? String(g.status);

type Case = [
  path: string,
  expect: string,
  opts?: { host?: string; headers?: Record<string, string> },
];

function cases(file: string, list: readonly Case[]) {
  beforeAll(async () => {
    fg = await serving(file);
  });
  afterAll(async () => {
    await fg?.stop();
  });
  it(`answers every request of ${file} as the case expects`, async () => {
    const got: string[] = [];
    for (const [path, , opts] of list) got.push(who(await send(fg, path, opts)));
    expect(got).toEqual(list.map(([, want]) => want));
  });
}

describe('HTTPRouteExactPathMatching', () => {
  cases('httproute-exact-path-matching.yaml', [
    ['/one', 'v1'],
    ['/two', 'v2'],
    ['/', '404'],
    ['/one/example', '404'],
    ['/two/', '404'],
    ['/Two', '404'],
  ]);
});

describe('HTTPRouteHeaderMatching', () => {
  const h = (headers: Record<string, string>) => ({ headers });
  cases('httproute-header-matching.yaml', [
    ['/', 'v1', h({ Version: 'one' })],
    ['/', 'v2', h({ Version: 'two' })],
    ['/', 'v1', h({ Version: 'two', Color: 'orange' })],
    ['/', 'v2', h({ Version: 'two', Color: 'blue' })],
    ['/', '404', h({ Color: 'orange' })],
    ['/', '404', h({ 'Some-Other-Header': 'one' })],
    ['/', 'v1', h({ Color: 'blue' })],
    ['/', 'v1', h({ Color: 'green' })],
    ['/', 'v2', h({ Color: 'red' })],
    ['/', 'v2', h({ Color: 'yellow' })],
    ['/', '404', h({ Color: 'purple' })],
  ]);
});

describe('HTTPRouteMatching', () => {
  cases('httproute-matching.yaml', [
    ['/', 'v1'],
    ['/example', 'v1'],
    ['/', 'v1', { headers: { Version: 'one' } }],
    ['/v2', 'v2'],
    ['/v2/example', 'v2'],
    ['/', 'v2', { headers: { Version: 'two' } }],
    ['/v2/', 'v2'],
    ['/v2example', 'v1'],
    ['/foo/v2/example', 'v1'],
  ]);
});

describe('HTTPRouteMatchingAcrossRoutes', () => {
  const com = (headers?: Record<string, string>) => ({
    host: 'example.com',
    ...(headers ? { headers } : {}),
  });
  const net = { host: 'example.net' };
  cases('httproute-matching-across-routes.yaml', [
    ['/', 'v1', com()],
    ['/example', 'v1', com()],
    ['/example', 'v1', net],
    ['/example', 'v1', com({ Version: 'one' })],
    ['/v2', 'v2', com()],
    ['/v2', 'v1', net],
    ['/v2/example', 'v2', com()],
    ['/', 'v2', com({ Version: 'two' })],
  ]);
});

describe('HTTPRoutePathMatchOrder', () => {
  cases('httproute-path-match-order.yaml', [
    ['/match/exact/one', 'v3'],
    ['/match/exact', 'v2'],
    ['/match', 'v1'],
    ['/match/prefix/one/any', 'v2'],
    ['/match/prefix/any', 'v1'],
    ['/match/any', 'v3'],
  ]);
});

describe('HTTPRouteListenerHostnameMatching', () => {
  const at = (host: string) => ({ host });
  cases('httproute-listener-hostname-matching.yaml', [
    ['/', 'v1', at('bar.com')],
    ['/', 'v2', at('foo.bar.com')],
    ['/', 'v3', at('baz.bar.com')],
    ['/', 'v3', at('boo.bar.com')],
    ['/', 'v3', at('multiple.prefixes.bar.com')],
    ['/', 'v3', at('multiple.prefixes.foo.com')],
    ['/', '404', at('foo.com')],
    ['/', '404', at('no.matching.host')],
  ]);
});

describe('HTTPRouteRedirectHostAndStatus', () => {
  beforeAll(async () => {
    fg = await serving('httproute-redirect-host-and-status.yaml');
  });
  afterAll(async () => {
    await fg?.stop();
  });
  it('redirects to example.org with 302, and 301 where the rule says', async () => {
    const port = new URL(fg.url).port;
    const a = await send(fg, '/hostname-redirect');
    expect([a.status, a.headers.location]).toEqual([
      302,
      `http://example.org:${port}/hostname-redirect`,
    ]);
    const b = await send(fg, '/host-and-status');
    expect([b.status, b.headers.location]).toEqual([
      301,
      `http://example.org:${port}/host-and-status`,
    ]);
  });
});

describe('HTTPRouteRequestHeaderModifier', () => {
  beforeAll(async () => {
    fg = await serving('httproute-request-header-modifier.yaml');
  });
  afterAll(async () => {
    await fg?.stop();
  });
  const seen = async (path: string, headers: Record<string, string>) => {
    const g = await send(fg, path, { headers });
    expect(who(g)).toBe('v1');
    return g.body?.headers ?? {};
  };

  it('set, add, remove; several at once; names case-insensitive', async () => {
    expect((await seen('/set', { 'Some-Other-Header': 'val' }))['x-header-set']).toBe(
      'set-overwrites-values',
    );
    expect((await seen('/set', { 'X-Header-Set': 'some-other-value' }))['x-header-set']).toBe(
      'set-overwrites-values',
    );
    expect((await seen('/add', { 'Some-Other-Header': 'val' }))['x-header-add']).toBe(
      'add-appends-values',
    );
    expect((await seen('/add', { 'X-Header-Add': 'some-other-value' }))['x-header-add']).toBe(
      'some-other-value,add-appends-values',
    );
    expect(await seen('/remove', { 'X-Header-Remove': 'val' })).not.toHaveProperty(
      'x-header-remove',
    );
    const multiple = await seen('/multiple', {
      'X-Header-Set-2': 'set-val-2',
      'X-Header-Add-2': 'add-val-2',
      'X-Header-Remove-2': 'remove-val-2',
      'Another-Header': 'another-header-val',
    });
    expect(multiple).toMatchObject({
      'x-header-set-1': 'header-set-1',
      'x-header-set-2': 'header-set-2',
      'x-header-add-1': 'header-add-1',
      'x-header-add-2': 'add-val-2,header-add-2',
      'x-header-add-3': 'header-add-3',
      'another-header': 'another-header-val',
    });
    expect(multiple).not.toHaveProperty('x-header-remove-1');
    expect(multiple).not.toHaveProperty('x-header-remove-2');
    const folded = await seen('/case-insensitivity', {
      'x-header-set': 'original-val-set',
      'x-header-add': 'original-val-add',
      'x-header-remove': 'original-val-remove',
    });
    expect(folded).toMatchObject({
      'x-header-set': 'header-set',
      'x-header-add': 'original-val-add,header-add',
    });
    expect(folded).not.toHaveProperty('x-header-remove');
  });
});

describe('HTTPRouteWeight', () => {
  beforeAll(async () => {
    fg = await serving('httproute-weight.yaml');
  });
  afterAll(async () => {
    await fg?.stop();
  });
  // The conformance suite's own measure (utils/weight): 500 requests, each share within 5 %.
  it('splits 500 requests 70/30, each share within 5 %, and never to weight 0', async () => {
    const counts: Record<string, number> = {};
    for (let i = 0; i < 500; i++) {
      const w = who(await send(fg, '/'));
      counts[w] = (counts[w] ?? 0) + 1;
    }
    expect(counts.v3).toBeUndefined();
    expect((counts.v1 ?? 0) + (counts.v2 ?? 0)).toBe(500);
    expect(Math.abs((counts.v1 ?? 0) / 500 - 0.7)).toBeLessThanOrEqual(0.05);
  }, 60_000);
});
