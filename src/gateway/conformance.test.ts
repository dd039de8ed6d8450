// Pure-level ports of Gateway API conformance cases (conformance/tests/*.go in
// sigs.k8s.io/gateway-api/conformance v1.6.3): the same manifests (copied under
// test/fixtures/gateway-conformance/), compiled, and the same attachment and status
// outcomes checked. Where a case sends requests, the route table is checked to hold
// (or not hold) the backend for that host; the requests themselves are the matcher's.
import { describe, expect, it } from 'vitest';
import { conformanceObjects } from '../../test/helpers/gateway-objects.ts';
import type { GatewayObjects } from '../watch/gateway-records.ts';
import type { RouteTables } from './attached.ts';
import { compileGateways } from './compile.ts';
import { hostnameMatches } from './hostnames.ts';
import type { FederatedServiceLookup, GatewayListenerMapping } from './inputs.ts';
import type {
  Condition,
  GatewayStatusReport,
  ListenerStatus,
  RouteParentStatus,
  StatusReport,
} from './status.ts';

const INFRA = 'gateway-conformance-infra';
const WEB = 'gateway-conformance-web-backend';
const HTTP_ADDRESS = '127.220.0.1:8080';
const MAPPINGS: GatewayListenerMapping[] = [
  { port: 80, protocol: 'HTTP', address: HTTP_ADDRESS },
  { port: 443, protocol: 'HTTPS', address: '127.220.0.1:8443' },
];

function compile(objects: GatewayObjects, services: FederatedServiceLookup) {
  return compileGateways({
    objects,
    services,
    listeners: MAPPINGS,
    addresses: [{ type: 'IPAddress', value: '127.220.0.1' }],
  });
}

function load(file: string) {
  const { objects, services } = conformanceObjects(['base.yaml', file]);
  return { objects, services, ...compile(objects, services) };
}

function gatewayOf(status: StatusReport, name: string): GatewayStatusReport {
  const g = status.objects.find(
    (o) => o.kind === 'Gateway' && o.namespace === INFRA && o.name === name,
  );
  if (g?.kind !== 'Gateway') throw new Error(`no status for Gateway ${name}`);
  return g;
}

function listenerOf(status: StatusReport, gw: string, name: string): ListenerStatus {
  const l = gatewayOf(status, gw).status.listeners.find((x) => x.name === name);
  if (l === undefined) throw new Error(`no status for listener ${gw}/${name}`);
  return l;
}

function parentsOf(
  status: StatusReport,
  namespace: string,
  name: string,
): readonly RouteParentStatus[] {
  const r = status.objects.find(
    (o) => o.kind === 'HTTPRoute' && o.namespace === namespace && o.name === name,
  );
  if (r?.kind !== 'HTTPRoute') throw new Error(`no status for HTTPRoute ${namespace}/${name}`);
  return r.status.parents;
}

/**
 * The conditions routes hold on their parentRef to Gateway `gw` (HTTPRouteMustHaveCondition):
 * `on(route, type, namespace)`.
 */
function onGateway(status: StatusReport, gw: string) {
  return (route: string, type: string, namespace = INFRA): Condition => {
    const parent = parentsOf(status, namespace, route).find((p) => p.parentRef.name === gw);
    const c = parent?.conditions.find((x) => x.type === type);
    if (c === undefined) throw new Error(`${route} has no ${type} on ${gw}`);
    return c;
  };
}

const cond = (conditions: readonly Condition[], type: string) =>
  conditions.find((c) => c.type === type);

/** A listener's attachedRoutes and its conditions' statuses by type (GatewayStatusMustHaveListeners). */
function listenerSummary(status: StatusReport, gw: string, name: string) {
  const l = listenerOf(status, gw, name);
  return {
    attachedRoutes: l.attachedRoutes,
    ...Object.fromEntries(l.conditions.map((c) => [c.type, c.status])),
  };
}

/** The services a host reaches on the HTTP listener, hostname picked as the matcher picks it. */
function servicesFor(tables: RouteTables, host: string): string[] {
  const table = tables.listeners.find((l) => l.address === HTTP_ADDRESS);
  const candidates = (table?.hosts ?? []).filter(
    (h) => h.hostname === '' || hostnameMatches(h.hostname, host),
  );
  const rank = (h: string) => (h === '' ? 0 : h.startsWith('*.') ? h.length : 1000);
  const best = candidates.sort((a, b) => rank(b.hostname) - rank(a.hostname))[0];
  return (best?.rules ?? []).flatMap((r) =>
    r.backends.map((b) => b.serviceKey ?? `!${b.problem?.reason}`),
  );
}

/** The rules' path prefixes a host reaches (the hostname-intersection cases route by path). */
function pathsFor(tables: RouteTables, host: string): string[] {
  const table = tables.listeners.find((l) => l.address === HTTP_ADDRESS);
  const hosts =
    table?.hosts.filter((h) => h.hostname === '' || hostnameMatches(h.hostname, host)) ?? [];
  const rank = (h: string) => (h === '' ? 0 : h.startsWith('*.') ? h.length : 1000);
  const best = hosts.sort((a, b) => rank(b.hostname) - rank(a.hostname))[0];
  return (best?.rules ?? []).flatMap((r) => (r.http ?? []).map((m) => m.path.value));
}

describe('Gateway API conformance, compiled', () => {
  it('GatewayWithAttachedRoutes', () => {
    const { status } = load('gateway-with-attached-routes.yaml');
    const http = { Accepted: 'True', ResolvedRefs: 'True' };
    expect(listenerSummary(status, 'gateway-with-one-attached-route', 'http')).toMatchObject({
      attachedRoutes: 1,
      ...http,
    });
    expect(
      listenerOf(status, 'gateway-with-one-attached-route', 'http').supportedKinds,
    ).toContainEqual({
      group: 'gateway.networking.k8s.io',
      kind: 'HTTPRoute',
    });
    expect(listenerSummary(status, 'gateway-with-two-attached-routes', 'http')).toMatchObject({
      attachedRoutes: 2,
      ...http,
    });
    const notAccepted = onGateway(status, 'gateway-with-two-attached-routes')(
      'http-route-not-accepted',
      'Accepted',
    );
    expect([notAccepted.status, notAccepted.reason]).toEqual([
      'False',
      'NoMatchingListenerHostname',
    ]);

    expect(
      listenerSummary(status, 'unresolved-gateway-with-one-attached-unresolved-route', 'tls'),
    ).toMatchObject({ attachedRoutes: 1, Programmed: 'False', ResolvedRefs: 'False' });
    const unresolved = onGateway(status, 'unresolved-gateway-with-one-attached-unresolved-route')(
      'http-route-4',
      'ResolvedRefs',
    );
    expect(unresolved.status).toBe('False');
  });

  it('HTTPRouteHostnameIntersection', () => {
    const { status, tables } = load('httproute-hostname-intersection.yaml');
    const gw = 'httproute-hostname-intersection';
    for (const route of [
      'specific-host-matches-listener-specific-host',
      'specific-host-matches-listener-wildcard-host',
      'wildcard-host-matches-listener-specific-host',
      'wildcard-host-matches-listener-wildcard-host',
    ]) {
      expect(onGateway(status, gw)(route, 'Accepted').status, route).toBe('True');
      expect(onGateway(status, gw)(route, 'ResolvedRefs').status, route).toBe('True');
    }
    const none = parentsOf(status, INFRA, 'no-intersecting-hosts');
    expect(none).toHaveLength(1);
    expect(none[0]?.controllerName).toBe('fedgate.io/gateway-controller');
    expect(none[0]?.parentRef).toMatchObject({
      group: 'gateway.networking.k8s.io',
      kind: 'Gateway',
      namespace: INFRA,
      name: gw,
    });
    const accepted = cond(none[0]?.conditions ?? [], 'Accepted');
    expect([accepted?.status, accepted?.reason]).toEqual(['False', 'NoMatchingListenerHostname']);

    // AttachedRoutes counts only accepted routes.
    expect(listenerOf(status, gw, 'listener-1').attachedRoutes).toBe(2);
    expect(listenerOf(status, gw, 'listener-2').attachedRoutes).toBe(1);
    expect(listenerOf(status, gw, 'listener-3').attachedRoutes).toBe(1);

    // The hosts each route serves: the intersections only.
    expect(pathsFor(tables, 'very.specific.com').sort()).toEqual(['/s1', '/s3']);
    expect(pathsFor(tables, 'non.matching.com')).toEqual([]);
    expect(pathsFor(tables, 'foo.nonmatchingwildcard.io')).toEqual([]);
    expect(pathsFor(tables, 'foo.wildcard.io')).toEqual(['/s2']);
    expect(pathsFor(tables, 'bar.wildcard.io')).toEqual(['/s2']);
    expect(pathsFor(tables, 'foo.bar.wildcard.io')).toEqual(['/s2']);
    expect(pathsFor(tables, 'wildcard.io')).toEqual([]);
    expect(pathsFor(tables, 'foo.specific.com')).toEqual([]);
    expect(pathsFor(tables, 'foo.anotherwildcard.io')).toEqual(['/s4']);
    expect(pathsFor(tables, 'foo.bar.anotherwildcard.io')).toEqual(['/s4']);
    expect(pathsFor(tables, 'anotherwildcard.io')).toEqual([]);
    expect(pathsFor(tables, 'specific.but.wrong.com')).toEqual([]);

    // The listener without a hostname serves exactly the route's hostnames.
    const all = 'httproute-hostname-intersection-all';
    expect(onGateway(status, all)(all, 'Accepted').status).toBe('True');
    for (const host of ['first.com', 'sub.first.com', 'second.com', 'sub.second.com']) {
      expect(servicesFor(tables, host), host).toEqual([`${INFRA}/infra-backend-v2`]);
    }
    expect(servicesFor(tables, 'third.com')).toEqual([]);
    expect(servicesFor(tables, 'sub.third.com')).toEqual([]);
  });

  it('HTTPRouteListenerHostnameMatching', () => {
    const { status, tables } = load('httproute-listener-hostname-matching.yaml');
    const gw = 'httproute-listener-hostname-matching';
    for (const route of ['backend-v1', 'backend-v2', 'backend-v3']) {
      expect(onGateway(status, gw)(route, 'Accepted').status, route).toBe('True');
      expect(onGateway(status, gw)(route, 'ResolvedRefs').status, route).toBe('True');
    }
    expect(parentsOf(status, INFRA, 'backend-v3')).toHaveLength(2);
    const v = (n: number) => [`${INFRA}/infra-backend-v${n}`];
    expect(servicesFor(tables, 'bar.com')).toEqual(v(1));
    expect(servicesFor(tables, 'foo.bar.com')).toEqual(v(2));
    expect(servicesFor(tables, 'baz.bar.com')).toEqual(v(3));
    expect(servicesFor(tables, 'boo.bar.com')).toEqual(v(3));
    expect(servicesFor(tables, 'multiple.prefixes.bar.com')).toEqual(v(3));
    expect(servicesFor(tables, 'multiple.prefixes.foo.com')).toEqual(v(3));
    expect(servicesFor(tables, 'foo.com')).toEqual([]);
    expect(servicesFor(tables, 'no.matching.host')).toEqual([]);
  });

  it('HTTPRouteCrossNamespace', () => {
    const { status, tables } = load('httproute-cross-namespace.yaml');
    const accepted = onGateway(status, 'backend-namespaces')('cross-namespace', 'Accepted', WEB);
    expect(accepted.status).toBe('True');
    expect(
      onGateway(status, 'backend-namespaces')('cross-namespace', 'ResolvedRefs', WEB).status,
    ).toBe('True');
    expect(servicesFor(tables, 'any.example')).toContain(`${WEB}/web-backend`);
  });

  it('HTTPRouteInvalidBackendRefUnknownKind', () => {
    const { status, tables } = load('httproute-invalid-backendref-unknown-kind.yaml');
    const route = 'invalid-backend-ref-unknown-kind';
    expect(onGateway(status, 'same-namespace')(route, 'Accepted').status).toBe('True');
    const resolved = onGateway(status, 'same-namespace')(route, 'ResolvedRefs');
    expect([resolved.status, resolved.reason]).toEqual(['False', 'InvalidKind']);
    expect(resolved.message).toContain('NonExistent.unknownkind.example.com');
    // The request answers 500: the rule keeps the backend with its problem and no service.
    expect(servicesFor(tables, 'any.example')).toEqual(['!InvalidKind']);
  });

  it('HTTPRouteInvalidNonExistentBackendRef', () => {
    const { status, tables } = load('httproute-invalid-nonexistent-backendref.yaml');
    const route = 'invalid-nonexistent-backend-ref';
    expect(onGateway(status, 'same-namespace')(route, 'Accepted').status).toBe('True');
    const resolved = onGateway(status, 'same-namespace')(route, 'ResolvedRefs');
    expect([resolved.status, resolved.reason]).toEqual(['False', 'BackendNotFound']);
    expect(servicesFor(tables, 'any.example')).toEqual(['!BackendNotFound']);
  });

  it('HTTPRouteInvalidCrossNamespaceParentRef', () => {
    const { status, tables } = load('httproute-invalid-cross-namespace-parent-ref.yaml');
    const route = 'invalid-cross-namespace-parent-ref';
    expect(onGateway(status, 'same-namespace')(route, 'ResolvedRefs', WEB).status).toBe('True');
    const accepted = onGateway(status, 'same-namespace')(route, 'Accepted', WEB);
    expect([accepted.status, accepted.reason]).toEqual(['False', 'NotAllowedByListeners']);
    // HTTPRouteMustHaveNoAcceptedParents: one parent at most, not accepted.
    expect(parentsOf(status, WEB, route)).toHaveLength(1);
    expect(listenerOf(status, 'same-namespace', 'http').attachedRoutes).toBe(0);
    expect(servicesFor(tables, 'any.example')).toEqual([]);
  });

  it('HTTPRouteInvalidParentRefNotMatchingSectionName', () => {
    const { status } = load('httproute-invalid-parentref-not-matching-section-name.yaml');
    const route = 'httproute-listener-not-matching-section-name';
    const accepted = onGateway(status, 'same-namespace')(route, 'Accepted');
    expect([accepted.status, accepted.reason]).toEqual(['False', 'NoMatchingParent']);
    expect(parentsOf(status, INFRA, route)).toHaveLength(1);
    expect(listenerOf(status, 'same-namespace', 'http').attachedRoutes).toBe(0);
  });

  it('HTTPRouteReferenceGrant', () => {
    const { objects, services, status, tables } = load('httproute-reference-grant.yaml');
    expect(onGateway(status, 'same-namespace')('reference-grant', 'Accepted').status).toBe('True');
    expect(onGateway(status, 'same-namespace')('reference-grant', 'ResolvedRefs').status).toBe(
      'True',
    );
    expect(servicesFor(tables, 'any.example')).toEqual([`${WEB}/web-backend`]);

    // The grant deleted: the backend answers 500 (RefNotPermitted).
    const after = compile({ ...objects, referenceGrants: [] }, services);
    const resolved = onGateway(after.status, 'same-namespace')('reference-grant', 'ResolvedRefs');
    expect([resolved.status, resolved.reason]).toEqual(['False', 'RefNotPermitted']);
    expect(servicesFor(after.tables, 'any.example')).toEqual(['!RefNotPermitted']);
  });

  it('HTTPRouteInvalidReferenceGrant', () => {
    const { objects, status, tables } = load('httproute-invalid-reference-grant.yaml');
    expect(objects.referenceGrants).toHaveLength(7);
    expect(onGateway(status, 'same-namespace')('reference-grant', 'Accepted').status).toBe('True');
    const resolved = onGateway(status, 'same-namespace')('reference-grant', 'ResolvedRefs');
    expect([resolved.status, resolved.reason]).toEqual(['False', 'RefNotPermitted']);
    expect(servicesFor(tables, 'any.example')).toEqual(['!RefNotPermitted']);
  });

  it('HTTPRouteObservedGenerationBump', () => {
    const { objects, services, status } = load('httproute-observed-generation-bump.yaml');
    const route = 'observed-generation-bump';
    const before = parentsOf(status, INFRA, route)[0]?.conditions ?? [];
    expect(before.map((c) => c.observedGeneration)).toEqual([1, 1]);

    // The patch: backendRefs[0] names infra-backend-v2, and the API server bumps generation.
    const patched = objects.httpRoutes.map((r) =>
      r.name !== route
        ? r
        : {
            ...r,
            generation: r.generation + 1,
            rules: r.rules.map((rule, i) =>
              i === 0
                ? {
                    ...rule,
                    backendRefs: rule.backendRefs.map((b, j) =>
                      j === 0 ? { ...b, name: 'infra-backend-v2' } : b,
                    ),
                  }
                : rule,
            ),
          },
    );
    const after = compile({ ...objects, httpRoutes: patched }, services);
    const conditions = parentsOf(after.status, INFRA, route)[0]?.conditions ?? [];
    expect(cond(conditions, 'Accepted')?.status).toBe('True');
    expect(cond(conditions, 'ResolvedRefs')?.status).toBe('True');
    expect(conditions.map((c) => c.observedGeneration)).toEqual([2, 2]);
    expect(servicesFor(after.tables, 'any.example')).toEqual([`${INFRA}/infra-backend-v2`]);
  });
});
