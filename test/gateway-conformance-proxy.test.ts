// The upstream conformance cases end to end: their manifests (copied verbatim into
// test/fixtures/gateway-conformance/) read into records, compiled by
// compileGateways into RouteTables for the proxy's listener, handed to a real
// ProxyServer in front of real backends named as the conformance suite's
// (gateway-conformance-infra/infra-backend-v1…v3), and the cases' requests and
// expectations from sigs.k8s.io/gateway-api/conformance v1.6.3 tests/*.go.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seededRandom } from '../src/routing/random.ts';
import {
  METHOD_MATCHING,
  QUERY_PARAM_MATCHING,
  REDIRECT_PATH,
  REWRITE_PATH,
  REWRITE_PATH_AND_HEADERS,
  type RequestCase,
} from './helpers/extended-cases.ts';
import {
  askThrough,
  type EchoAnswer,
  type EchoBackend,
  echoBackend,
} from './helpers/gateway-backends.ts';
import { compileObjects, conformanceObjects } from './helpers/gateway-objects.ts';
import { modifies, modifiesAnswers } from './helpers/header-modifier-cases.ts';
import { type StaticProxy, startStaticProxy } from './helpers/static-proxy.ts';
import { waitFor } from './helpers/wait.ts';

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

interface Ask {
  host?: string;
  method?: string;
  headers?: Record<string, string>;
}

const send = (p: StaticProxy, path: string, opts: Ask = {}): Promise<EchoAnswer> =>
  askThrough(p.url, opts.host ?? 'conformance.example.test', path, {
    ...(opts.method ? { method: opts.method } : {}),
    ...(opts.headers ? { headers: opts.headers } : {}),
  });

/** The backend that answered (v1, v2, v3), or the status fedgate answered with. */
const who = (g: EchoAnswer): string =>
  g.body?.backend.replace('infra-backend-', '') ?? String(g.status);

type Case = RequestCase | readonly [path: string, expect: string, opts?: Ask];

function cases(file: string, list: readonly Case[]) {
  served(file);
  it(`answers every request of ${file} as the case expects`, async () => {
    const got: string[] = [];
    for (const [path, , opts] of list) got.push(who(await send(fg, path, opts)));
    expect(got).toEqual(list.map(([, want]) => want));
  });
}

/** A proxy serving `file` for the describe block it is called in. */
function served(file: string): void {
  beforeAll(async () => {
    fg = await serving(file);
  });
  afterAll(async () => {
    await fg?.stop();
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
  served('httproute-redirect-host-and-status.yaml');
  // The Location keeps the Gateway listener's port (80, so none is written), not the
  // port fedgate's own listener has here: clients reach the Gateway's.
  it('redirects to example.org with 302, and 301 where the rule says', async () => {
    const a = await send(fg, '/hostname-redirect');
    expect([a.status, a.headers.location]).toEqual([302, 'http://example.org/hostname-redirect']);
    const b = await send(fg, '/host-and-status');
    expect([b.status, b.headers.location]).toEqual([301, 'http://example.org/host-and-status']);
  });
});

describe('HTTPRouteRequestHeaderModifier', () => {
  served('httproute-request-header-modifier.yaml');
  const seen = async (path: string, headers: Record<string, string>) => {
    const g = await send(fg, path, { headers });
    expect(who(g)).toBe('v1');
    return g.body?.headers ?? {};
  };

  it('set, add, remove; several at once; names case-insensitive', async () => {
    await modifies(seen);
  });
});

describe('HTTPRouteWeight', () => {
  served('httproute-weight.yaml');
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

describe('HTTPRouteMethodMatching', () => {
  cases('httproute-method-matching.yaml', METHOD_MATCHING);
});

describe('HTTPRouteQueryParamMatching', () => {
  cases('httproute-query-param-matching.yaml', QUERY_PARAM_MATCHING);
});

describe('HTTPRouteRewritePath', () => {
  served('httproute-rewrite-path.yaml');
  it('the backend sees the path rewritten, and the headers modified too', async () => {
    const url = async (path: string) => (await send(fg, path)).body?.url;
    for (const [path, seen] of REWRITE_PATH) expect(await url(path), path).toBe(seen);
    const c = REWRITE_PATH_AND_HEADERS;
    const both = await send(fg, c.path, { headers: c.headers });
    expect(both.body?.url).toBe(c.seenPath);
    expect(both.body?.headers).toMatchObject(c.seenHeaders);
    expect(both.body?.headers).not.toHaveProperty(c.absent);
  });
});

describe('HTTPRouteRewriteHost', () => {
  served('httproute-rewrite-host.yaml');
  it('the backend sees the Host rewritten', async () => {
    const at = async (path: string) => {
      const g = await send(fg, path, { host: 'rewrite.example' });
      return `${who(g)} ${g.body?.headers.host}`;
    };
    expect(await at('/one')).toBe('v1 one.example.org');
    expect(await at('/two')).toBe('v2 example.org');
    expect(await at('/rewrite-host-and-modify-headers')).toBe('v2 test.example.org');
  });
});

/** Where a redirect points, as the conformance suite compares it: scheme, host, port (when expected), path. */
async function redirected(
  path: string,
): Promise<{ status: number; scheme: string; host: string; port: string; path: string }> {
  const g = await send(fg, path);
  const location = g.headers.location;
  const u = new URL(typeof location === 'string' ? location : 'invalid:');
  return {
    status: g.status,
    scheme: u.protocol.slice(0, -1),
    host: u.hostname,
    port: u.port,
    path: u.pathname,
  };
}

type Where = Partial<Awaited<ReturnType<typeof redirected>>>;

/** A proxy serving `file`, and where each path's redirect points (the parts the case names). */
function redirectCases(
  file: string,
  what: string,
  list: readonly (readonly [path: string, want: Where])[],
) {
  served(file);
  it(what, async () => {
    for (const [path, want] of list) expect(await redirected(path), path).toMatchObject(want);
  });
}

const HOST = 'conformance.example.test';
const ORG = 'example.org';

describe('HTTPRouteRedirectScheme', () => {
  redirectCases(
    'httproute-redirect-scheme.yaml',
    'https, with the host and status the rule gives; no port for https',
    [
      ['/scheme', { status: 302, scheme: 'https', host: HOST, port: '', path: '/scheme' }],
      ['/scheme-and-host', { status: 302, scheme: 'https', host: ORG }],
      ['/scheme-and-status', { status: 301, scheme: 'https', host: HOST }],
      ['/scheme-and-host-and-status', { status: 302, scheme: 'https', host: ORG }],
    ],
  );
});

describe('HTTPRouteRedirectPort', () => {
  redirectCases(
    'httproute-redirect-port.yaml',
    'the port the rule gives, with its host and status',
    [
      ['/port', { status: 302, scheme: 'http', port: '8083', path: '/port' }],
      ['/port-and-host', { status: 302, host: ORG, port: '8083' }],
      ['/port-and-status', { status: 301, port: '8083' }],
      ['/port-and-host-and-status', { status: 302, host: ORG, port: '8083' }],
    ],
  );
});

describe('HTTPRouteRedirectPath', () => {
  redirectCases(
    'httproute-redirect-path.yaml',
    'ReplacePrefixMatch and ReplaceFullPath, with host and status',
    REDIRECT_PATH,
  );
});

describe('HTTPRouteResponseHeaderModifier', () => {
  served('httproute-response-header-modifier.yaml');
  it('set, add, remove on the answer; several at once; names case-insensitive', async () => {
    await modifiesAnswers(async (path, headers) => {
      const g = await send(fg, path, { headers });
      expect(who(g)).toBe('v1');
      return g.headers;
    });
  });
});

describe('HTTPRouteRequestMirror', () => {
  served('httproute-request-mirror.yaml');
  it('v1 answers, v2 sees the copy, with the headers modified', async () => {
    const [, v2] = backends;
    if (!v2) throw new Error('no v2');
    for (const path of ['/mirror', '/mirror-and-modify-headers']) {
      const before = v2.seen.length;
      expect(
        who(
          await send(fg, path, { headers: { 'X-Header-Remove': 'r', 'X-Header-Add-Append': 'a' } }),
        ),
      ).toBe('v1');
      await waitFor(() => v2.seen.length > before || undefined, 5000);
      expect(v2.seen.at(-1)?.url).toBe(path);
    }
    expect(v2.seen.at(-1)?.headers).toMatchObject({
      'x-header-set': 'set-overwrites-values',
      'x-header-add': 'header-val-1',
      'x-header-add-append': 'a,header-val-2',
    });
    expect(v2.seen.at(-1)?.headers).not.toHaveProperty('x-header-remove');
  });
});
