import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import {
  trimGateway,
  trimGatewayClass,
  trimGRPCRoute,
  trimHTTPRoute,
  trimNamespace,
  trimReferenceGrant,
  trimTlsSecret,
} from './gateway-trim.ts';
import type { Json } from './trim.ts';

/** The conformance manifests in testdata/ (gateway-api v1.6.3), as a user writes them. */
function manifests(file: string): Json[] {
  const text = readFileSync(
    new URL(`../../test/fixtures/gateway-conformance/${file}`, import.meta.url),
    'utf8',
  );
  return parseAllDocuments(text)
    .map((d) => d.toJS() as Json | null)
    .filter((o): o is Json => o !== null);
}

/** The one object of `kind` named `name` in `file`, with what the API server adds to metadata. */
function served(file: string, kind: string, name: string): Json {
  const o = manifests(file).find(
    (m) => m.kind === kind && (m.metadata as { name?: string }).name === name,
  );
  if (!o) throw new Error(`${file} has no ${kind} ${name}`);
  return {
    ...o,
    metadata: {
      ...(o.metadata as Json),
      uid: `uid-${name}`,
      generation: 3,
      resourceVersion: '42',
      creationTimestamp: '2026-12-01T10:00:00Z',
    },
  };
}

const CREATED = Date.parse('2026-12-01T10:00:00Z');
const INFRA = 'gateway-conformance-infra';
const meta = (namespace: string, name: string) => ({
  cluster: 'alpha',
  namespace,
  name,
  generation: 3,
  createdAt: CREATED,
  uid: `uid-${name}`,
});
const service = (name: string, port = 8080) => ({ group: '', kind: 'Service', name, port });
const prefix = (value: string) => ({
  path: { type: 'PathPrefix', value },
  headers: [],
  queryParams: [],
});

describe('Gateway and GatewayClass', () => {
  it('fills a listener the CRD way: allowedRoutes from Same, tls mode Terminate, Secret refs in core', () => {
    const g = trimGateway(
      'alpha',
      served(
        'gateway-secret-reference-grant-specific.yaml',
        'Gateway',
        'gateway-secret-reference-grant-specific',
      ),
    );
    expect(g).toEqual({
      ...meta(INFRA, 'gateway-secret-reference-grant-specific'),
      gatewayClassName: '{GATEWAY_CLASS_NAME}',
      listeners: [
        {
          name: 'https',
          port: 443,
          protocol: 'HTTPS',
          tls: {
            mode: 'Terminate',
            certificateRefs: [
              {
                group: '',
                kind: 'Secret',
                namespace: 'gateway-conformance-web-backend',
                name: 'certificate',
              },
            ],
          },
          allowedRoutes: { from: 'All', kinds: [] },
        },
      ],
    });
  });

  it('keeps a Selector listener its selector, and defaults allowedRoutes when absent', () => {
    const g = trimGateway('alpha', served('base-gateways.yaml', 'Gateway', 'backend-namespaces'));
    expect(g?.listeners[0]?.allowedRoutes).toEqual({
      from: 'Selector',
      selector: { matchLabels: { 'gateway-conformance': 'backend' }, matchExpressions: [] },
      kinds: [],
    });
    const bare = trimGateway('alpha', {
      metadata: { name: 'g', namespace: 'n' },
      spec: {
        gatewayClassName: 'fedgate',
        listeners: [
          {
            name: 'h',
            port: 80,
            protocol: 'HTTP',
            allowedRoutes: { kinds: [{ kind: 'HTTPRoute' }] },
          },
          {
            name: 's',
            port: 443,
            protocol: 'HTTPS',
            hostname: 'a.example',
            tls: { certificateRefs: [{ name: 'c' }] },
          },
        ],
      },
    });
    expect(bare?.listeners).toEqual([
      {
        name: 'h',
        port: 80,
        protocol: 'HTTP',
        allowedRoutes: {
          from: 'Same',
          kinds: [{ group: 'gateway.networking.k8s.io', kind: 'HTTPRoute' }],
        },
      },
      {
        name: 's',
        hostname: 'a.example',
        port: 443,
        protocol: 'HTTPS',
        tls: { mode: 'Terminate', certificateRefs: [{ group: '', kind: 'Secret', name: 'c' }] },
        allowedRoutes: { from: 'Same', kinds: [] },
      },
    ]);
    expect(bare?.generation).toBe(0);
  });

  it('skips what the CRD would refuse instead of failing', () => {
    const g = (listener: Json) =>
      trimGateway('alpha', {
        metadata: { name: 'g', namespace: 'n' },
        spec: { gatewayClassName: 'c', listeners: [listener] },
      });
    expect(
      g({
        name: 'x',
        port: 80,
        protocol: 'HTTP',
        allowedRoutes: { namespaces: { from: 'Nowhere' } },
      }),
    ).toBeUndefined();
    expect(g({ name: 'x', protocol: 'HTTP' })).toBeUndefined();
    expect(trimGateway('alpha', { metadata: { name: 'g' }, spec: {} })).toBeUndefined();
    expect(trimGatewayClass('alpha', { metadata: { name: 'c' }, spec: {} })).toBeUndefined();
    expect(
      trimGatewayClass('alpha', {
        metadata: { name: 'fedgate', generation: 1, uid: 'u' },
        spec: { controllerName: 'fedgate.io/gateway-controller' },
      }),
    ).toEqual({
      cluster: 'alpha',
      namespace: '',
      name: 'fedgate',
      generation: 1,
      createdAt: 0,
      uid: 'u',
      controllerName: 'fedgate.io/gateway-controller',
    });
  });
});

describe('HTTPRoute', () => {
  it('HTTPRouteMatching: parentRef group and kind, backendRef group, kind and weight, header match type', () => {
    const r = trimHTTPRoute('alpha', served('httproute-matching.yaml', 'HTTPRoute', 'matching'));
    expect(r?.parentRefs).toEqual([
      { group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'same-namespace' },
    ]);
    expect(r?.hostnames).toEqual([]);
    expect(r?.rules).toEqual([
      {
        matches: [
          { path: { type: 'PathPrefix', value: '/' }, headers: [], queryParams: [] },
          {
            path: { type: 'PathPrefix', value: '/' },
            headers: [{ type: 'Exact', name: 'version', value: 'one' }],
            queryParams: [],
          },
        ],
        filters: [],
        backendRefs: [{ ...service('infra-backend-v1'), weight: 1, filters: [] }],
      },
      {
        matches: [
          { path: { type: 'PathPrefix', value: '/v2' }, headers: [], queryParams: [] },
          {
            path: { type: 'PathPrefix', value: '/' },
            headers: [{ type: 'Exact', name: 'version', value: 'two' }],
            queryParams: [],
          },
        ],
        filters: [],
        backendRefs: [{ ...service('infra-backend-v2'), weight: 1, filters: [] }],
      },
    ]);
  });

  it('HTTPRouteRequestHeaderModifier: set, add and remove kept in order', () => {
    const r = trimHTTPRoute(
      'alpha',
      served('httproute-request-header-modifier.yaml', 'HTTPRoute', 'request-header-modifier'),
    );
    expect(r?.rules[0]?.filters).toEqual([
      {
        type: 'RequestHeaderModifier',
        requestHeaderModifier: {
          set: [{ name: 'X-Header-Set', value: 'set-overwrites-values' }],
          add: [],
          remove: [],
        },
      },
    ]);
    expect(r?.rules[3]?.filters).toEqual([
      {
        type: 'RequestHeaderModifier',
        requestHeaderModifier: {
          set: [
            { name: 'X-Header-Set-1', value: 'header-set-1' },
            { name: 'X-Header-Set-2', value: 'header-set-2' },
          ],
          add: [
            { name: 'X-Header-Add-1', value: 'header-add-1' },
            { name: 'X-Header-Add-2', value: 'header-add-2' },
            { name: 'X-Header-Add-3', value: 'header-add-3' },
          ],
          remove: ['X-Header-Remove-1', 'X-Header-Remove-2'],
        },
      },
    ]);
  });

  it('HTTPRouteRedirectHostAndStatus: statusCode kept, and 302 when absent', () => {
    const r = trimHTTPRoute(
      'alpha',
      served('httproute-redirect-host-and-status.yaml', 'HTTPRoute', 'redirect-host-and-status'),
    );
    expect(r?.rules.map((x) => x.filters)).toEqual([
      [{ type: 'RequestRedirect', requestRedirect: { hostname: 'example.org', statusCode: 302 } }],
      [{ type: 'RequestRedirect', requestRedirect: { hostname: 'example.org', statusCode: 301 } }],
    ]);
  });

  it('HTTPRouteRewritePath: both path modifier types', () => {
    const r = trimHTTPRoute(
      'alpha',
      served('httproute-rewrite-path.yaml', 'HTTPRoute', 'rewrite-path'),
    );
    expect(r?.rules[0]?.filters).toEqual([
      {
        type: 'URLRewrite',
        urlRewrite: { path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/one' } },
      },
    ]);
    expect(r?.rules[2]?.filters).toEqual([
      {
        type: 'URLRewrite',
        urlRewrite: { path: { type: 'ReplaceFullPath', replaceFullPath: '/one' } },
      },
    ]);
  });

  it('HTTPRouteRequestPercentageMirror: percent, fraction, and the mirror backendRef defaulted to Service', () => {
    const r = trimHTTPRoute(
      'alpha',
      served('httproute-request-percentage-mirror.yaml', 'HTTPRoute', 'request-percentage-mirror'),
    );
    const mirror = {
      group: '',
      kind: 'Service',
      namespace: INFRA,
      name: 'infra-backend-v2',
      port: 8080,
    };
    expect(r?.rules[0]?.filters).toEqual([
      { type: 'RequestMirror', requestMirror: { backendRef: mirror, percent: 20 } },
    ]);
    expect(r?.rules[1]?.filters).toEqual([
      {
        type: 'RequestMirror',
        requestMirror: { backendRef: mirror, fraction: { numerator: 25, denominator: 50 } },
      },
    ]);
    expect(r?.rules[0]?.backendRefs).toEqual([
      {
        group: '',
        kind: 'Service',
        namespace: INFRA,
        name: 'infra-backend-v1',
        port: 8080,
        weight: 1,
        filters: [],
      },
    ]);
  });

  it('HTTPRouteTimeoutRequest and HTTPRouteRetry: durations as written', () => {
    const t = trimHTTPRoute(
      'alpha',
      served('httproute-timeout-request.yaml', 'HTTPRoute', 'request-timeout'),
    );
    expect(t?.rules.map((x) => x.timeouts)).toEqual([{ request: '500ms' }, { request: '0s' }]);
    const r = trimHTTPRoute('alpha', served('httproute-retry.yaml', 'HTTPRoute', 'retries'));
    expect(r?.rules.map((x) => x.retry)).toEqual([
      { codes: [500], attempts: 3 },
      { codes: [500, 502, 503, 504], attempts: 2 },
    ]);
  });

  it('HTTPRouteReferenceGrant: a cross-namespace backendRef keeps its namespace; a rule without matches matches everything', () => {
    const r = trimHTTPRoute(
      'alpha',
      served('httproute-reference-grant.yaml', 'HTTPRoute', 'reference-grant'),
    );
    expect(r?.rules).toEqual([
      {
        matches: [prefix('/')],
        filters: [],
        backendRefs: [
          {
            group: '',
            kind: 'Service',
            namespace: 'gateway-conformance-web-backend',
            name: 'web-backend',
            port: 8080,
            weight: 1,
            filters: [],
          },
        ],
      },
    ]);
  });

  it('HTTPRouteOmittedBackendRefs, and a route without rules: one rule matching everything', () => {
    const r = trimHTTPRoute(
      'alpha',
      served('httproute-omitted-backendrefs.yaml', 'HTTPRoute', 'omitted-backendrefs'),
    );
    expect(r?.rules.map((x) => x.backendRefs.length)).toEqual([0, 0, 1]);
    const bare = trimHTTPRoute('alpha', {
      metadata: { name: 'r', namespace: 'n' },
      spec: { parentRefs: [{ name: 'g' }] },
    });
    expect(bare?.rules).toEqual([{ matches: [prefix('/')], filters: [], backendRefs: [] }]);
  });

  it('a filter type this version does not know (CORS) is kept as Unknown, so compilation can refuse the rule', () => {
    const r = trimHTTPRoute(
      'alpha',
      served('httproute-cors.yaml', 'HTTPRoute', 'cors-multiple-origins-methods-headers'),
    );
    expect(r?.rules[0]?.filters).toEqual([{ type: 'Unknown', written: 'CORS' }]);
  });

  it('skips a route with a path type outside the enum, or a header match without a name', () => {
    const route = (match: Json) =>
      trimHTTPRoute('alpha', {
        metadata: { name: 'r', namespace: 'n' },
        spec: { rules: [{ matches: [match] }] },
      });
    expect(route({ path: { type: 'Glob', value: '/x' } })).toBeUndefined();
    expect(route({ headers: [{ value: 'v' }] })).toBeUndefined();
    expect(route({ method: 'GET' })?.rules[0]?.matches).toEqual([
      { ...prefix('/'), method: 'GET' },
    ]);
  });
});

describe('GRPCRoute', () => {
  it('GRPCRouteExactMethodMatching: method match type Exact by default', () => {
    const r = trimGRPCRoute(
      'alpha',
      served('grpcroute-exact-method-matching.yaml', 'GRPCRoute', 'exact-matching'),
    );
    expect(r?.rules[0]).toEqual({
      matches: [
        {
          method: {
            type: 'Exact',
            service: 'gateway_api_conformance.echo_basic.grpcecho.GrpcEcho',
            method: 'Echo',
          },
          headers: [],
        },
      ],
      filters: [],
      backendRefs: [{ ...service('grpc-infra-backend-v1'), weight: 1, filters: [] }],
    });
  });

  it('GRPCRouteHeaderMatching: header matches without a method', () => {
    const r = trimGRPCRoute(
      'alpha',
      served('grpcroute-header-matching.yaml', 'GRPCRoute', 'grpc-header-matching'),
    );
    expect(r?.rules[0]?.matches).toEqual([
      { headers: [{ type: 'Exact', name: 'version', value: 'one' }] },
    ]);
  });

  it('keeps an HTTP-only filter type on a GRPCRoute as Unknown', () => {
    const r = trimGRPCRoute('alpha', {
      metadata: { name: 'r', namespace: 'n' },
      spec: { rules: [{ filters: [{ type: 'URLRewrite', urlRewrite: {} }] }] },
    });
    expect(r?.rules).toEqual([
      { matches: [], filters: [{ type: 'Unknown', written: 'URLRewrite' }], backendRefs: [] },
    ]);
  });
});

describe('ReferenceGrant, Namespace, TLS Secret', () => {
  it('a grant to a named Secret, and one to every Service of its namespace', () => {
    const g = trimReferenceGrant(
      'alpha',
      served(
        'gateway-secret-reference-grant-specific.yaml',
        'ReferenceGrant',
        'reference-grant-specific',
      ),
    );
    expect(g).toEqual({
      ...meta('gateway-conformance-web-backend', 'reference-grant-specific'),
      from: [{ group: 'gateway.networking.k8s.io', kind: 'Gateway', namespace: INFRA }],
      to: [{ group: '', kind: 'Secret', name: 'certificate' }],
    });
    const all = trimReferenceGrant('alpha', {
      metadata: { name: 'g', namespace: 'n' },
      spec: {
        from: [{ group: 'gateway.networking.k8s.io', kind: 'HTTPRoute', namespace: 'm' }],
        to: [{ group: '', kind: 'Service' }],
      },
    });
    expect(all?.to).toEqual([{ group: '', kind: 'Service' }]);
  });

  it("a Namespace's labels", () => {
    const ns = trimNamespace('alpha', served('base-gateways.yaml', 'Namespace', INFRA));
    expect(ns).toEqual({ ...meta('', INFRA), labels: { 'gateway-conformance': 'infra' } });
  });

  it('a TLS Secret decoded to PEM; other types and half pairs are not kept', () => {
    const data = {
      'tls.crt': Buffer.from('-----BEGIN CERTIFICATE-----\nA\n').toString('base64'),
      'tls.key': Buffer.from('-----BEGIN PRIVATE KEY-----\nB\n').toString('base64'),
    };
    const secret = (type: string, d: Json) =>
      trimTlsSecret('alpha', { metadata: { name: 's', namespace: 'n', uid: 'u' }, type, data: d });
    expect(secret('kubernetes.io/tls', data)).toEqual({
      cluster: 'alpha',
      namespace: 'n',
      name: 's',
      generation: 0,
      createdAt: 0,
      uid: 'u',
      cert: '-----BEGIN CERTIFICATE-----\nA\n',
      key: '-----BEGIN PRIVATE KEY-----\nB\n',
    });
    expect(secret('Opaque', data)).toBeUndefined();
    expect(secret('kubernetes.io/tls', { 'tls.crt': data['tls.crt'] })).toBeUndefined();
  });
});
