// The Gateway API conformance case HTTPRouteRetry end to end (sigs.k8s.io/gateway-api
// conformance v1.6.3, tests/httproute-retry.go|yaml), as a user runs it: HTTPRoute rules'
// `retry` is in the experimental channel's CRD only, so the local federation's member
// serves the experimental channel (the scenario's gatewayAPIChannel), the upstream
// manifest is applied with kubectl, and the case's requests go through a real `fedgate
// start` to the conformance backends, whose /retry/ path fails the first `succeedAfter`
// attempts of a uuid with `responseCode` (echo-basic's retry simulation:
// src/localfed/echo-basic.ts). On the simulator and on a real kube-apiserver.
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { API_KINDS } from '../src/localfed/member.ts';
import { INFRA, useGatewayE2E } from './helpers/gateway-e2e-env.ts';
import { waitFor } from './helpers/wait.ts';

/** 127.243/16: one member cluster, the simulator's federation first, then the real one. */
const ADDRESS_BLOCK = 243;
const BACKEND = 'infra-backend-v3';

interface RetryCase {
  name: string;
  path: '/retry/code-500-attempts-3' | '/retry/code-all-attempts-2';
  responseCode: number;
  succeedAfter: number;
  /** The status the client gets. */
  want: number;
  /** The attempts the backend sees: the first, then retries while the code is retried. */
  attempts: number;
}

// The upstream cases in their order, with the attempts each implies: `attempts` of the
// rule is the retries after the first try (3 → four tries, 2 → three).
const CASES: readonly RetryCase[] = [
  {
    name: 'succeeds after 2 retries when retry is configured for status code 500 and max attempts is 3',
    path: '/retry/code-500-attempts-3',
    responseCode: 500,
    succeedAfter: 2,
    want: 200,
    attempts: 3,
  },
  {
    name: 'fails when required retries on 500 exceed max attempts',
    path: '/retry/code-500-attempts-3',
    responseCode: 500,
    succeedAfter: 4,
    want: 500,
    attempts: 4,
  },
  {
    name: 'does not retry on 503 when retry is only configured for status code 500',
    path: '/retry/code-500-attempts-3',
    responseCode: 503,
    succeedAfter: 2,
    want: 503,
    attempts: 1,
  },
  ...[500, 502, 503, 504].flatMap((code): RetryCase[] => [
    {
      name: `succeeds after 1 retry on ${code} when retry is configured for all status code and max attempts is 2`,
      path: '/retry/code-all-attempts-2',
      responseCode: code,
      succeedAfter: 1,
      want: 200,
      attempts: 2,
    },
    {
      name: `fails when required retries on ${code} exceed max attempts`,
      path: '/retry/code-all-attempts-2',
      responseCode: code,
      succeedAfter: 3,
      want: code,
      attempts: 3,
    },
  ]),
];

/** The upstream probe: a fresh uuid each time, so the backend counts its attempts afresh. */
const probe = (c: RetryCase): string =>
  `${c.path}?${new URLSearchParams({
    responseCode: String(c.responseCode),
    succeedAfter: String(c.succeedAfter),
    uuid: randomUUID(),
  })}`;

describe.each(API_KINDS)('Gateway API HTTPRouteRetry end to end on %s API servers', (api) => {
  const e2e = useGatewayE2E(api, {
    addressBlock: ADDRESS_BLOCK,
    clusters: ['alpha'],
    gatewayAPIChannel: 'experimental',
  });

  /** Requests the backend's pods have answered (fedgate's tries included). */
  const backendRequests = () =>
    e2e.local.fed
      .backends()
      .filter((b) => b.info.service === BACKEND)
      .reduce((n, b) => n + b.requests, 0);

  it('HTTPRouteRetry', async () => {
    await e2e.apply('httproute-retry');
    // GatewayAndHTTPRoutesMustBeAccepted, HTTPRouteMustHaveResolvedRefsConditionsTrue.
    await e2e.accepted('retries');
    const route = await e2e.kubectl(['get', 'httproute', 'retries', '-n', INFRA, '-o', 'json']);
    expect(route.code, route.stderr).toBe(0);
    const obj = JSON.parse(route.stdout) as {
      metadata: { generation: number };
      spec: { rules: { retry?: unknown }[] };
    };
    // The experimental CRD kept the field (the standard one prunes it or refuses it).
    expect(obj.spec.rules.map((r) => r.retry)).toEqual([
      { codes: [500], attempts: 3 },
      { codes: [500, 502, 503, 504], attempts: 2 },
    ]);
    const conditions = await e2e.routeConditions('retries');
    for (const type of ['Accepted', 'ResolvedRefs'])
      expect(conditions.find((c) => c.type === type)).toMatchObject({
        status: 'True',
        reason: type,
        observedGeneration: obj.metadata.generation,
      });

    // The first case until the tables carry the route (fedgate follows the objects
    // asynchronously), each probe with a fresh uuid as upstream's AwaitConvergence does.
    const first = CASES[0];
    if (first === undefined) throw new Error('no cases');
    await waitFor(
      async () => {
        const before = backendRequests();
        const r = await e2e.get(probe(first));
        // Thrown, not returned: a timeout then says what was answered last.
        if (r.status !== first.want)
          throw new Error(
            `answered ${r.status} after ${backendRequests() - before} tries: ${r.text}`,
          );
        return true;
      },
      30_000,
      `${first.path} to retry`,
      100,
    );
    for (const c of CASES) {
      // Three probes each, as the suite's consecutive successes: status, the backend
      // that answered, and how many tries reached it.
      for (let i = 0; i < 3; i++) {
        const before = backendRequests();
        const r = await e2e.get(probe(c));
        const tries = backendRequests() - before;
        const got = {
          status: r.status,
          tries,
          ...(r.status === 200 ? { by: r.body.service } : {}),
        };
        expect(got, c.name).toEqual({
          status: c.want,
          tries: c.attempts,
          ...(c.want === 200 ? { by: BACKEND } : {}),
        });
      }
    }
    await e2e.remove('httproute-retry');
  });
});
