// The Gateway API conformance cases of the Extended features fedgate implements, end to
// end as a user runs them (sigs.k8s.io/gateway-api conformance v1.6.3, tests/*.go|yaml):
// the upstream manifests applied with kubectl to a local-federation member whose
// services are the conformance backends (answering echo-basic's ?delay,
// X-Echo-Set-Header and /retry/ as the cases need: src/localfed/echo-basic.ts), a
// real `fedgate start` with the Gateway's port 80 mapped onto its HTTP listener, the
// cases' requests through fedgate and their expectations. On the simulator and on a
// real kube-apiserver (test/helpers/gateway-e2e-env.ts). HTTPRouteRetry is in
// test/gateway-e2e-retry.test.ts: `retry` is in the experimental channel's HTTPRoute
// only, so its federation serves that channel's CRDs.
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { API_KINDS } from '../src/localfed/member.ts';
import {
  METHOD_MATCHING,
  QUERY_PARAM_MATCHING,
  REDIRECT_PATH,
  REWRITE_PATH,
  REWRITE_PATH_AND_HEADERS,
  type RedirectWant,
  type RequestCase,
} from './helpers/extended-cases.ts';
import { type Answer, useGatewayE2E } from './helpers/gateway-e2e-env.ts';
import { modifiesAnswers } from './helpers/header-modifier-cases.ts';
import { waitFor } from './helpers/wait.ts';

/** 127.235/16: one member cluster, the simulator's federation first, then the real one. */
const ADDRESS_BLOCK = 235;
const ORG = 'example.org';

/** The backend that answered (v1, v2, v3), or the status when no backend did. */
const who = (r: Answer): string =>
  r.status === 200 && r.body.service ? r.body.service.replace('infra-backend-', '') : `${r.status}`;

describe.each(API_KINDS)('Gateway API Extended conformance end to end on %s API servers', (api) => {
  // One cluster: a federation's cluster i takes 127.(block + i)/16.
  const e2e = useGatewayE2E(api, { addressBlock: ADDRESS_BLOCK, clusters: ['alpha'] });
  const { apply, remove, accepted, get, servedBy } = e2e;

  /** Applies a case's manifest and waits until its route is accepted and `path` served. */
  const serving = async (file: string, route: string, path: string, service: string) => {
    await apply(file);
    await accepted(route);
    await servedBy(path, service);
  };

  /** Each request answered as listed: a backend (v1…v3) or a status. */
  const answers = async (list: readonly RequestCase[]) => {
    const got: string[] = [];
    for (const [path, , r] of list) got.push(who(await get(path, r?.headers, r?.method)));
    expect(got).toEqual(list.map(([, want]) => want));
  };

  /**
   * The suite's redirect check (utils/http CompareRoundTrip): the status, and the
   * Location's scheme, host and path where the case names them (else the request's
   * scheme and path; the host unchecked); without an expected port, http must have 80
   * or none and https 443 or none.
   */
  const redirects = async (list: readonly (readonly [path: string, want: RedirectWant])[]) => {
    for (const [path, want] of list) {
      const r = await get(path);
      const location = typeof r.headers.location === 'string' ? r.headers.location : '';
      const u = new URL(location || 'invalid:');
      const scheme = u.protocol.slice(0, -1);
      const got = { status: r.status, scheme, host: u.hostname, path: u.pathname };
      expect(got, `${path} → ${location}`).toEqual({
        status: want.status,
        scheme: want.scheme ?? 'http',
        host: want.host ?? u.hostname,
        path: want.path ?? path,
      });
      const defaultPort = { http: '80', https: '443' }[scheme] ?? '';
      const ports = want.port !== undefined ? [want.port] : ['', defaultPort];
      expect(ports, `${path} → ${location}: the port`).toContain(u.port);
    }
  };

  it('HTTPRouteMethodMatching', async () => {
    await serving('httproute-method-matching', 'method-matching', '/path1', 'infra-backend-v1');
    await answers(METHOD_MATCHING);
    await remove('httproute-method-matching');
  });

  it('HTTPRouteQueryParamMatching', async () => {
    await serving(
      'httproute-query-param-matching',
      'query-param-matching',
      '/?animal=whale',
      'infra-backend-v1',
    );
    await answers(QUERY_PARAM_MATCHING);
    await remove('httproute-query-param-matching');
  });

  it('HTTPRouteResponseHeaderModifier', async () => {
    await serving(
      'httproute-response-header-modifier',
      'response-header-modifier',
      '/set',
      'infra-backend-v1',
    );
    // The backend answers with the headers X-Echo-Set-Header names (echo-basic's way);
    // the filter modifies them on the way back.
    await modifiesAnswers(async (path, headers) => {
      const r = await get(path, headers);
      expect(who(r), path).toBe('v1');
      return r.headers;
    });
    await remove('httproute-response-header-modifier');
  });

  it('HTTPRouteRewritePath', async () => {
    await serving('httproute-rewrite-path', 'rewrite-path', '/prefix/one', 'infra-backend-v1');
    for (const [path, seen] of REWRITE_PATH) expect((await get(path)).body.path, path).toBe(seen);
    const c = REWRITE_PATH_AND_HEADERS;
    const both = await get(c.path, c.headers);
    expect(both.body.path).toBe(c.seenPath);
    expect(both.body.headers).toMatchObject(c.seenHeaders);
    expect(both.body.headers).not.toHaveProperty(c.absent);
    await remove('httproute-rewrite-path');
  });

  it('HTTPRouteRewriteHost', async () => {
    await apply('httproute-rewrite-host');
    await accepted('rewrite-host');
    const at = (path: string) => get(path, { host: 'rewrite.example' });
    await waitFor(async () => who(await at('/one')) === 'v1', 30_000, '/one served', 100);
    for (const [path, backend, host] of [
      ['/one', 'v1', 'one.example.org'],
      ['/two', 'v2', 'example.org'],
      ['/rewrite-host-and-modify-headers', 'v2', 'test.example.org'],
    ] as const) {
      const r = await at(path);
      expect([who(r), r.body.host], path).toEqual([backend, host]);
    }
    await remove('httproute-rewrite-host');
  });

  it('HTTPRouteRedirectScheme', async () => {
    await apply('httproute-redirect-scheme');
    await accepted('redirect-scheme');
    await waitFor(async () => (await get('/scheme')).status === 302, 30_000, 'a 302', 100);
    await redirects([
      ['/scheme', { status: 302, scheme: 'https' }],
      ['/scheme-and-host', { status: 302, scheme: 'https', host: ORG }],
      ['/scheme-and-status', { status: 301, scheme: 'https' }],
      ['/scheme-and-host-and-status', { status: 302, scheme: 'https', host: ORG }],
    ]);
    await remove('httproute-redirect-scheme');
  });

  it('HTTPRouteRedirectPort', async () => {
    await apply('httproute-redirect-port');
    await accepted('redirect-port');
    await waitFor(async () => (await get('/port')).status === 302, 30_000, 'a 302', 100);
    await redirects([
      ['/port', { status: 302, port: '8083' }],
      ['/port-and-host', { status: 302, host: ORG, port: '8083' }],
      ['/port-and-status', { status: 301, port: '8083' }],
      ['/port-and-host-and-status', { status: 302, host: ORG, port: '8083' }],
    ]);
    await remove('httproute-redirect-port');
  });

  it('HTTPRouteRedirectPath', async () => {
    await apply('httproute-redirect-path');
    await accepted('redirect-path');
    await waitFor(
      async () => (await get('/original-prefix/lemon')).status === 302,
      30_000,
      'a 302',
      100,
    );
    // No port expected: the Gateway listener's port 80 is http's own.
    await redirects(REDIRECT_PATH);
    await remove('httproute-redirect-path');
  });

  it('HTTPRouteRequestMirror', async () => {
    await serving('httproute-request-mirror', 'request-mirror', '/mirror', 'infra-backend-v1');
    // The mirror's pods count every request they get.
    const mirror = e2e.local.fed.backends().filter((b) => b.info.service === 'infra-backend-v2');
    expect(mirror.length).toBeGreaterThan(0);
    const mirrored = () => mirror.reduce((n, b) => n + b.requests, 0);
    // The copies of servedBy's requests land first (a mirror is not waited for).
    let settled = -1;
    await waitFor(
      async () => {
        const now = mirrored();
        if (now === settled) return true;
        settled = now;
        await new Promise((r) => setTimeout(r, 300));
        return false;
      },
      10_000,
      'the mirror to settle',
      0,
    );
    for (const [path, headers] of [
      ['/mirror', {}],
      [
        '/mirror-and-modify-headers',
        { 'X-Header-Remove': 'remove-val', 'X-Header-Add-Append': 'append-val-1' },
      ],
    ] as const) {
      const before = mirrored();
      const r = await get(`${path}?request-id=${randomUUID()}`, headers);
      expect(who(r), path).toBe('v1');
      await waitFor(() => mirrored() > before, 10_000, `${path} mirrored to v2`, 50);
      expect(mirrored(), path).toBe(before + 1);
    }
    const r = await get('/mirror-and-modify-headers', {
      'X-Header-Remove': 'remove-val',
      'X-Header-Add-Append': 'append-val-1',
    });
    expect(r.body.headers).toMatchObject({
      'x-header-add': 'header-val-1',
      'x-header-add-append': 'append-val-1,header-val-2',
      'x-header-set': 'set-overwrites-values',
    });
    expect(r.body.headers).not.toHaveProperty('x-header-remove');
    await remove('httproute-request-mirror');
  });

  it('HTTPRouteRequestTimeout', async () => {
    await serving(
      'httproute-timeout-request',
      'request-timeout',
      '/request-timeout',
      'infra-backend-v1',
    );
    // The backend answers ?delay=1s a second late: past the rule's 500ms, and within no
    // limit where the rule's 0s turns it off.
    await answers([
      ['/request-timeout', 'v1'],
      ['/request-timeout?delay=1s', '504'],
      ['/disable-request-timeout?delay=1s', 'v1'],
    ]);
    await remove('httproute-timeout-request');
  });
});
