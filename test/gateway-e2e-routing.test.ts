// Gateway API Core conformance cases of routing end to end (as test/gateway-e2e.test.ts):
// the upstream manifests (test/fixtures/gateway-conformance/, v1.6.3) applied with
// kubectl to the config cluster of a real `fedgate start`, the requests and expected
// backends, statuses and status conditions of sigs.k8s.io/gateway-api/conformance
// tests/<case>.go, through fedgate's proxy. Every Gateway's port-80 HTTP listener maps
// onto fedgate's one HTTP listener, so the cases whose manifests bring their own
// Gateways (with listener hostnames) are served there too. On the simulator and on a
// real kube-apiserver.
import { describe, expect, it } from 'vitest';
import { API_KINDS } from '../src/localfed/member.ts';
import { type GatewayStatus, type RouteStatus, useGatewayE2E } from './helpers/gateway-e2e-env.ts';
import { waitFor } from './helpers/wait.ts';

/** 127.231/16 (only the config cluster runs): the simulator's federation first, then the real one. */
const ADDRESS_BLOCK = 231;
const WEB = 'gateway-conformance-web-backend';
const [V1, V2, V3] = ['infra-backend-v1', 'infra-backend-v2', 'infra-backend-v3'];

/** One request of a case: the Host, the path, and the backend (or status) expected. */
type Ask = [host: string, path: string, want: string | number];

describe.each(API_KINDS)('Gateway API routing conformance end to end on %s API servers', (api) => {
  const e2e = useGatewayE2E(api, {
    addressBlock: ADDRESS_BLOCK,
    clusters: ['alpha'],
    gateways: ['same-namespace', 'backend-namespaces'],
  });
  const { apply, remove, status, routeConditions, accepted, answers } = e2e;

  /** A Gateway a case's manifest brings: fedgate's writer says it is Programmed. */
  const programmed = (gateway: string) =>
    waitFor(
      async () =>
        (await status<GatewayStatus>('gateway', gateway))?.conditions?.find(
          (c) => c.type === 'Programmed',
        )?.status === 'True',
      30_000,
      `the ${gateway} Gateway to be Programmed`,
      200,
    );
  /** Every parent fedgate writes for `route` Accepted with refs resolved, `n` of them. */
  const allParentsAccepted = (route: string, n: number) =>
    waitFor(
      async () => {
        const parents = (await status<RouteStatus>('httproute', route))?.parents ?? [];
        const ok = (c: { type: string; status: string }[], t: string) =>
          c.find((x) => x.type === t)?.status === 'True';
        return (
          parents.length === n &&
          parents.every((p) => ok(p.conditions, 'Accepted') && ok(p.conditions, 'ResolvedRefs'))
        );
      },
      30_000,
      `${route}'s ${n} parent(s) to be Accepted with refs resolved`,
      200,
    );
  const asks = async (list: readonly Ask[]) => {
    for (const [host, path, want] of list) await answers(path, { host }, want);
  };

  it('HTTPRouteCrossNamespace', async () => {
    await apply('httproute-cross-namespace');
    await accepted(`${WEB}/cross-namespace`);
    await answers('/', {}, 'web-backend', WEB);
    await remove('httproute-cross-namespace');
  });

  it('HTTPRouteHostnameIntersection', async () => {
    await apply('httproute-hostname-intersection');
    await programmed('httproute-hostname-intersection');
    for (const route of [
      'specific-host-matches-listener-specific-host',
      'specific-host-matches-listener-wildcard-host',
      'wildcard-host-matches-listener-specific-host',
      'wildcard-host-matches-listener-wildcard-host',
    ]) {
      await accepted(route);
    }
    await asks([
      // specific-host-matches-listener-specific-host; the Host's port is not matched.
      ['very.specific.com', '/s1', V1],
      ['very.specific.com:1234', '/s1', V1],
      ['non.matching.com', '/s1', 404],
      ['foo.nonmatchingwildcard.io', '/s1', 404],
      ['foo.wildcard.io', '/s1', 404],
      ['very.specific.com', '/non-matching-prefix', 404],
      // specific-host-matches-listener-wildcard-host
      ['foo.wildcard.io', '/s2', V2],
      ['bar.wildcard.io', '/s2', V2],
      ['foo.bar.wildcard.io', '/s2', V2],
      ['non.matching.com', '/s2', 404],
      ['wildcard.io', '/s2', 404],
      ['very.specific.com', '/s2', 404],
      ['foo.wildcard.io', '/non-matching-prefix', 404],
      // wildcard-host-matches-listener-specific-host
      ['very.specific.com', '/s3', V3],
      ['non.matching.com', '/s3', 404],
      ['foo.specific.com', '/s3', 404],
      ['foo.wildcard.io', '/s3', 404],
      ['very.specific.com', '/non-matching-prefix', 404],
      // wildcard-host-matches-listener-wildcard-host
      ['foo.anotherwildcard.io', '/s4', V1],
      ['bar.anotherwildcard.io', '/s4', V1],
      ['foo.bar.anotherwildcard.io', '/s4', V1],
      ['anotherwildcard.io', '/s4', 404],
      ['foo.wildcard.io', '/s4', 404],
      ['very.specific.com', '/s4', 404],
      ['foo.anotherwildcard.io', '/non-matching-prefix', 404],
    ]);

    // No intersecting hostnames: refused by the Gateway it names, and not served.
    await waitFor(
      async () =>
        (await routeConditions('no-intersecting-hosts')).find((c) => c.type === 'Accepted')
          ?.reason === 'NoMatchingListenerHostname',
      30_000,
      'no-intersecting-hosts to be refused',
      200,
    );
    const refused = (await status<RouteStatus>('httproute', 'no-intersecting-hosts'))?.parents;
    expect(refused?.[0]?.parentRef).toMatchObject({
      name: 'httproute-hostname-intersection',
      namespace: 'gateway-conformance-infra',
    });
    expect(refused?.[0]?.conditions.find((c) => c.type === 'Accepted')).toMatchObject({
      status: 'False',
      reason: 'NoMatchingListenerHostname',
    });
    await asks([
      ['specific.but.wrong.com', '/s5', 404],
      ['wildcard.io', '/s5', 404],
    ]);

    // Only accepted routes count in attachedRoutes.
    const want = { 'listener-1': 2, 'listener-2': 1, 'listener-3': 1 };
    const listeners = await waitFor(
      async () => {
        const l = (await status<GatewayStatus>('gateway', 'httproute-hostname-intersection'))
          ?.listeners;
        const counts = Object.fromEntries((l ?? []).map((x) => [x.name, x.attachedRoutes]));
        return JSON.stringify(counts) === JSON.stringify(want) ? l : undefined;
      },
      30_000,
      'the listeners to count 2, 1, 1 attached routes',
      200,
    );
    for (const l of listeners) {
      expect(l.supportedKinds, l.name).toEqual(
        expect.arrayContaining([expect.objectContaining({ kind: 'HTTPRoute' })]),
      );
      for (const t of ['Accepted', 'ResolvedRefs']) {
        expect(l.conditions.find((c) => c.type === t)?.status, `${l.name} ${t}`).toBe('True');
      }
    }

    // A listener without a hostname: the route's own hostnames, and only them.
    await programmed('httproute-hostname-intersection-all');
    await accepted('httproute-hostname-intersection-all');
    await asks([
      ['first.com', '/', V2],
      ['sub.first.com', '/', V2],
      ['second.com', '/', V2],
      ['sub.second.com', '/', V2],
      ['third.com', '/', 404],
      ['sub.third.com', '/', 404],
    ]);
    await remove('httproute-hostname-intersection');
  });

  it('HTTPRouteListenerHostnameMatching', async () => {
    await apply('httproute-listener-hostname-matching');
    await programmed('httproute-listener-hostname-matching');
    await allParentsAccepted('backend-v1', 1);
    await allParentsAccepted('backend-v2', 1);
    await allParentsAccepted('backend-v3', 2);
    await asks([
      ['bar.com', '/', V1],
      ['foo.bar.com', '/', V2],
      ['baz.bar.com', '/', V3],
      ['boo.bar.com', '/', V3],
      ['multiple.prefixes.bar.com', '/', V3],
      ['multiple.prefixes.foo.com', '/', V3],
      ['foo.com', '/', 404],
      ['no.matching.host', '/', 404],
    ]);
    await remove('httproute-listener-hostname-matching');
  });

  it('HTTPRouteMatchingAcrossRoutes', async () => {
    await apply('httproute-matching-across-routes');
    await accepted('matching-part1');
    await accepted('matching-part2');
    await asks([
      ['example.com', '/', V1],
      ['example.com', '/example', V1],
      ['example.net', '/example', V1],
      ['example.com', '/v2', V2],
      // v2 matches are limited to example.com
      ['example.net', '/v2', V1],
      ['example.com', '/v2/example', V2],
    ]);
    await answers('/example', { host: 'example.com', version: 'one' }, V1);
    await answers('/', { host: 'example.com', version: 'two' }, V2);
    await remove('httproute-matching-across-routes');
  });

  it('HTTPRoutePathMatchOrder', async () => {
    await apply('httproute-path-match-order');
    await accepted('path-matching-order');
    await asks([
      ['example.com', '/match/exact/one', V3],
      ['example.com', '/match/exact', V2],
      ['example.com', '/match', V1],
      ['example.com', '/match/prefix/one/any', V2],
      ['example.com', '/match/prefix/any', V1],
      ['example.com', '/match/any', V3],
    ]);
    await remove('httproute-path-match-order');
  });

  it('HTTPRouteRedirectHostAndStatus', async () => {
    await apply('httproute-redirect-host-and-status');
    await accepted('redirect-host-and-status');
    // The Location keeps the Gateway listener's port (80, so none is written), as
    // upstream expects, though fedgate's own listener is on another port here.
    for (const [path, code] of [
      ['/hostname-redirect', 302],
      ['/host-and-status', 301],
    ] as const) {
      const r = await answers(path, {}, code);
      expect(r.headers.location, path).toBe(`http://example.org${path}`);
    }
    await remove('httproute-redirect-host-and-status');
  });
});
