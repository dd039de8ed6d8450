// Gateway API Core conformance cases of routes fedgate must refuse or cannot serve, end
// to end (as test/gateway-e2e.test.ts): the upstream manifests (test/fixtures/
// gateway-conformance/, v1.6.3) applied with kubectl to the config cluster of a real
// `fedgate start`; the status conditions fedgate's writer sets, the Gateway's attached
// route count, and fedgate's answers, as sigs.k8s.io/gateway-api/conformance
// tests/<case>.go expects them. On the simulator and on a real kube-apiserver.
import { describe, expect, it } from 'vitest';
import { API_KINDS } from '../src/localfed/member.ts';
import {
  type GatewayStatus,
  type RouteStatus,
  routeRef,
  useGatewayE2E,
} from './helpers/gateway-e2e-env.ts';
import { waitFor } from './helpers/wait.ts';

/** 127.232/16 (only the config cluster runs): the simulator's federation first, then the real one. */
const ADDRESS_BLOCK = 232;
const WEB = 'gateway-conformance-web-backend';

describe.each(API_KINDS)(
  'Gateway API invalid-route conformance end to end on %s API servers',
  (api) => {
    const { apply, remove, status, condition, accepted, answers } = useGatewayE2E(api, {
      addressBlock: ADDRESS_BLOCK,
      clusters: ['alpha'],
      gateways: ['same-namespace'],
    });

    /** Waits for fedgate's condition `type` on `route` to have `state` and `reason`. */
    const hasCondition = async (route: string, type: string, state: string, reason: string) => {
      await waitFor(
        async () => {
          const c = await condition(route, type);
          return c?.status === state && c.reason === reason;
        },
        30_000,
        `${route} to have ${type} ${state} (${reason})`,
        200,
      );
    };
    /** No parent accepts the route: none written, or one that says Accepted False. */
    const noAcceptedParents = async (route: string) => {
      const { ns, name } = routeRef(route);
      const parents = (await status<RouteStatus>('httproute', name, ns))?.parents ?? [];
      expect(parents.length, `${route}'s parents`).toBeLessThanOrEqual(1);
      for (const p of parents) {
        expect(p.conditions.find((c) => c.type === 'Accepted')?.status).toBe('False');
      }
    };
    /** The Gateway counts no route on its one listener. */
    const zeroRoutes = (gateway: string) =>
      waitFor(
        async () => {
          const l = (await status<GatewayStatus>('gateway', gateway))?.listeners ?? [];
          return l.length === 0 || (l.length === 1 && l[0]?.attachedRoutes === 0);
        },
        30_000,
        `${gateway} to count no attached route`,
        200,
      );

    it('HTTPRouteNoBackendRefs', async () => {
      await apply('httproute-omitted-backendrefs');
      await accepted('omitted-backendrefs');
      await answers('/forward', {}, 'infra-backend-v1');
      // A rule with its backendRefs omitted or empty answers 500, and forwards nowhere.
      await answers('/omitted-no-forward', {}, 500);
      await answers('/empty-no-forward', {}, 500);
      await remove('httproute-omitted-backendrefs');
    });

    it('HTTPRouteInvalidBackendRefUnknownKind', async () => {
      const route = 'invalid-backend-ref-unknown-kind';
      await apply('httproute-invalid-backendref-unknown-kind');
      await hasCondition(route, 'ResolvedRefs', 'False', 'InvalidKind');
      expect(await condition(route, 'Accepted')).toMatchObject({ status: 'True' });
      await answers('/v2', {}, 500);
      await remove('httproute-invalid-backendref-unknown-kind');
    });

    it('HTTPRouteInvalidCrossNamespaceParentRef', async () => {
      // same-namespace admits routes of its own namespace only.
      const route = `${WEB}/invalid-cross-namespace-parent-ref`;
      await apply('httproute-invalid-cross-namespace-parent-ref');
      await hasCondition(route, 'ResolvedRefs', 'True', 'ResolvedRefs');
      await hasCondition(route, 'Accepted', 'False', 'NotAllowedByListeners');
      await noAcceptedParents(route);
      await zeroRoutes('same-namespace');
      await remove('httproute-invalid-cross-namespace-parent-ref');
    });

    it('HTTPRouteInvalidParentRefNotMatchingSectionName', async () => {
      const route = 'httproute-listener-not-matching-section-name';
      await apply('httproute-invalid-parentref-not-matching-section-name');
      await hasCondition(route, 'Accepted', 'False', 'NoMatchingParent');
      await noAcceptedParents(route);
      await zeroRoutes('same-namespace');
      await remove('httproute-invalid-parentref-not-matching-section-name');
    });

    it('HTTPRouteInvalidReferenceGrant', async () => {
      // Seven ReferenceGrants, each wrong in one field: none permits the route's backendRef.
      const route = 'reference-grant';
      await apply('httproute-invalid-reference-grant');
      await hasCondition(route, 'ResolvedRefs', 'False', 'RefNotPermitted');
      expect(await condition(route, 'Accepted')).toMatchObject({ status: 'True' });
      await answers('/', {}, 500);
      await remove('httproute-invalid-reference-grant');
    });
  },
);
