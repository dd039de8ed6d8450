// Holds the simulator's Gateway API kinds to kube-apiserver v1.37 with the Gateway API
// CRDs installed: the same manifests (the conformance suite's and hand-made invalid
// ones) go to both, and the answers are compared: status, warnings, the causes of every
// refusal (field, reason and message, as a set: kube-apiserver's order varies from run
// to run), and the defaulted objects read back. What differs on purpose is listed in
// src/localfed/README.md and asserted here.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SimCluster } from '../src/localfed/cluster.ts';
import type { KubeObject } from '../src/localfed/objects.ts';
import { conformanceObjects, installGatewayCrds } from './helpers/gateway-api.ts';
import { ControlPlane } from './helpers/kube-control-plane.ts';
import {
  differences,
  events,
  maskedTable,
  type PairRequest,
  ServerPair,
  startedPair,
  withCauses,
} from './helpers/parity.ts';
import type { RawResponse } from './helpers/raw-api.ts';
import { shapeDiff } from './helpers/shape-diff.ts';

interface ApiResource {
  name: string;
  verbs: string[];
}

const GROUP = '/apis/gateway.networking.k8s.io';
const NS = 'gw-parity';
const TABLE = 'application/json;as=Table;v=v1;g=meta.k8s.io';

let sim: SimCluster;
let cp: ControlPlane;
let pair: ServerPair | undefined;

const servers = () => startedPair(pair);

/** Sends to both and expects the answers to agree (warnings as a set), or exactly `listed` differences. */
async function same(
  r: PairRequest,
  listed: string[] = [],
  body: (r: RawResponse) => unknown = withCauses,
) {
  const p = await servers().both(r);
  for (const x of [p.sim, p.real]) {
    const w = x.headers.warning;
    if (typeof w === 'string') x.headers.warning = w.split(', 299').sort().join(', 299');
  }
  expect.soft(differences(p, body)).toEqual(listed);
  return p;
}

const kindPath: Record<string, string> = {
  GatewayClass: 'gatewayclasses',
  Gateway: 'gateways',
  HTTPRoute: 'httproutes',
  GRPCRoute: 'grpcroutes',
  ReferenceGrant: 'referencegrants',
};

function collection(o: KubeObject): string {
  const plural = kindPath[o.kind] ?? o.kind.toLowerCase();
  return o.kind === 'GatewayClass'
    ? `/apis/${o.apiVersion}/${plural}`
    : `/apis/${o.apiVersion}/namespaces/${o.metadata.namespace ?? NS}/${plural}`;
}

const createNs = (name: string) => ({
  method: 'POST',
  path: '/api/v1/namespaces',
  body: { apiVersion: 'v1', kind: 'Namespace', metadata: { name } },
});

const route = (name: string, spec: unknown, kind = 'HTTPRoute') => ({
  method: 'POST',
  path: `${GROUP}/v1/namespaces/${NS}/${kindPath[kind]}`,
  body: { apiVersion: 'gateway.networking.k8s.io/v1', kind, metadata: { name }, spec },
});

beforeAll(async () => {
  sim = await SimCluster.create({ name: 'gw-parity', host: '127.223.0.1' });
  await sim.start();
  cp = await ControlPlane.start();
  pair = new ServerPair({
    sim: { url: sim.url, ca: sim.caCert, token: sim.token },
    real: { url: cp.url, ca: cp.ca, token: cp.token },
  });
  await installGatewayCrds(cp);
  for (const ns of [
    NS,
    'gateway-conformance-infra',
    'gateway-conformance-app-backend',
    'gateway-conformance-web-backend',
  ])
    await servers().both(createNs(ns));
}, 180_000);

afterAll(async () => {
  await sim?.stop();
  await cp?.stop();
});

const CONFORMANCE = [
  'httproute-matching',
  'httproute-request-header-modifier',
  'httproute-redirect-path',
  'httproute-rewrite-path',
  'httproute-weight',
  'httproute-cors',
  'httproute-timeout-backend-request',
  'httproute-reference-grant',
  'grpcroute-exact-method-matching',
  'grpcroute-header-matching',
  'gateway-modify-listeners',
  'gateway-static-addresses',
  'gateway-infrastructure',
];

describe('conformance manifests', () => {
  it.each(CONFORMANCE)('%s: created and read back alike', async (name) => {
    const objects = conformanceObjects(name).filter((o) =>
      o.apiVersion?.startsWith('gateway.networking.k8s.io/'),
    );
    expect(objects.length).toBeGreaterThan(0);
    for (const o of objects) {
      await same({ method: 'POST', path: collection(o), body: o });
      await same({ path: `${collection(o)}/${o.metadata.name}` });
    }
  });
});

const backend = (name = 'svc', port = 8080) => ({ name, port });

const accepted = (extra: Record<string, unknown> = {}) => ({
  type: 'Accepted',
  status: 'True',
  reason: 'Accepted',
  message: '',
  lastTransitionTime: '2026-01-01T00:00:00Z',
  ...extra,
});

/** Invalid objects users write, one refusal (or a few) each. */
const INVALID: [string, ReturnType<typeof route>][] = [
  [
    'a relative path',
    route('rel', { rules: [{ matches: [{ path: { type: 'PathPrefix', value: 'api' } }] }] }),
  ],
  [
    'paths with // and /./, an Exact path ending /..',
    route('dots', {
      rules: [
        { matches: [{ path: { type: 'Exact', value: '/a//b' } }, { path: { value: '/a/./b' } }] },
        { matches: [{ path: { type: 'Exact', value: '/a/..' } }, { path: { value: '/a b' } }] },
      ],
    }),
  ],
  [
    'RequestRedirect with URLRewrite, and with backendRefs',
    route('redirect', {
      rules: [
        {
          filters: [
            { type: 'RequestRedirect', requestRedirect: { scheme: 'https' } },
            { type: 'URLRewrite', urlRewrite: { hostname: 'x.example' } },
          ],
          backendRefs: [backend()],
        },
      ],
    }),
  ],
  [
    'schema: hostname, weight, port, header name, method, filter type',
    route('schema', {
      hostnames: ['Bad_Host', 'ok.example', 'x..y'],
      parentRefs: [{ name: 'gw', port: 0 }],
      rules: [
        {
          matches: [
            {
              path: { type: 'Nope', value: '/' },
              headers: [{ name: 'bad header', value: 'x' }],
              method: 'FOO',
            },
          ],
          backendRefs: [
            { name: 'svc', port: 80, weight: 2_000_000 },
            { name: 's', port: 'eighty' },
          ],
          filters: [{ type: 'Bogus' }],
        },
      ],
    }),
  ],
  [
    'required names, too long a hostname, too many rules',
    route('required', {
      parentRefs: [{ port: 80 }],
      hostnames: ['a'.repeat(254)],
      rules: Array.from({ length: 17 }, () => ({ backendRefs: [{ port: 80 }] })),
    }),
  ],
  ['no spec', { ...route('nospec', {}), body: { ...route('nospec', {}).body, spec: undefined } }],
  ['an invalid name', route('Bad_Name', {})],
  [
    'a Service without a port, a filter without its field, a repeated filter',
    route('filters', {
      rules: [
        {
          backendRefs: [{ name: 'svc' }],
          filters: [
            { type: 'RequestHeaderModifier' },
            {
              type: 'RequestHeaderModifier',
              requestHeaderModifier: { add: [{ name: 'a', value: 'b' }] },
            },
            {
              type: 'ResponseHeaderModifier',
              requestHeaderModifier: { set: [{ name: 'a', value: 'b' }] },
            },
          ],
        },
      ],
    }),
  ],
  [
    'duplicate header matches and modifier names',
    route('dups', {
      rules: [
        {
          matches: [
            {
              headers: [
                { name: 'x', value: '1' },
                { name: 'x', value: '2' },
              ],
            },
          ],
          filters: [
            {
              type: 'RequestHeaderModifier',
              requestHeaderModifier: {
                set: [
                  { name: 'a', value: '1' },
                  { name: 'a', value: '2' },
                ],
                remove: ['r', 'r'],
              },
            },
          ],
        },
      ],
    }),
  ],
  [
    'a prefix rewrite without one PathPrefix match; a backendRequest timeout over the request timeout',
    route('rewrite', {
      rules: [
        {
          matches: [{ path: { type: 'Exact', value: '/a' } }],
          filters: [
            {
              type: 'URLRewrite',
              urlRewrite: { path: { type: 'ReplacePrefixMatch', replaceFullPath: '/b' } },
            },
          ],
          timeouts: { request: '1s', backendRequest: '2s' },
        },
      ],
    }),
  ],
  [
    'parentRefs to one Gateway without sectionName',
    route('parents', {
      parentRefs: [
        { name: 'gw' },
        { name: 'gw', sectionName: 'http' },
        { name: 'gw', sectionName: 'http' },
      ],
    }),
  ],
  [
    'GRPCRoute: a method match without service or method, bad service and method names',
    route(
      'grpc',
      {
        rules: [
          {
            matches: [
              { method: { type: 'Exact' } },
              { method: { service: 'bad-service', method: 'Do.It' } },
            ],
            backendRefs: [{ name: 'svc' }],
          },
        ],
      },
      'GRPCRoute',
    ),
  ],
];

describe('validation', () => {
  it.each(INVALID)('%s: refused alike', async (_what, request) => {
    const p = await same(request);
    expect(p.real.status).toBe(422);
  });

  it('Gateways: listener rules, TLS without certificates, duplicate listeners, IP addresses', async () => {
    const gw = (name: string, spec: unknown) => ({
      method: 'POST',
      path: `${GROUP}/v1/namespaces/${NS}/gateways`,
      body: {
        apiVersion: 'gateway.networking.k8s.io/v1',
        kind: 'Gateway',
        metadata: { name },
        spec,
      },
    });
    const p = await same(
      gw('listeners', {
        gatewayClassName: 'fedgate',
        listeners: [
          { name: 'http', port: 80, protocol: 'HTTP', tls: { mode: 'Terminate' } },
          { name: 'http', port: 80, protocol: 'HTTP' },
          { name: 't', port: 443, protocol: 'TLS' },
          { name: 'tcp', port: 9000, protocol: 'TCP', hostname: 'a.example' },
          {
            name: 's',
            port: 8443,
            protocol: 'HTTPS',
            tls: { mode: 'Passthrough', certificateRefs: [] },
          },
        ],
      }),
    );
    expect(p.real.status).toBe(422);
    await same(
      gw('addresses', {
        gatewayClassName: 'fedgate',
        addresses: [
          { value: '127.0.0.1' },
          { value: '127.0.0.1' },
          { type: 'Hostname', value: 'Bad_Host' },
        ],
        listeners: [{ name: 'http', port: 80, protocol: 'HTTP' }],
      }),
    );
    const infra = await same(
      gw('infra', {
        gatewayClassName: 'fedgate',
        infrastructure: {
          labels: { 'bad key': 'x', [`${'a'.repeat(254)}/b`]: 'y', 'example.com/ok': 'z' },
          annotations: { '-bad': 'z' },
        },
        listeners: [{ name: 'h', port: 80, protocol: 'HTTP' }],
      }),
    );
    expect(infra.real.status).toBe(422);
    await same(
      gw('ip', {
        gatewayClassName: 'fedgate',
        addresses: [{ value: 'nope' }],
        listeners: [{ name: 'h', port: 80, protocol: 'HTTP' }],
      }),
    );
  });

  it('unknown fields: dropped with a warning, refused under Strict', async () => {
    const body = { ...route('unknown', { bogus: 1, rules: [{ x: 2 }] }).body };
    await same({
      method: 'POST',
      path: `${GROUP}/v1/namespaces/${NS}/httproutes?fieldValidation=Strict`,
      body,
    });
    await same({ method: 'POST', path: `${GROUP}/v1/namespaces/${NS}/httproutes`, body });
    await same({ path: `${GROUP}/v1/namespaces/${NS}/httproutes/unknown` });
    // A custom resource takes no strategic merge patch.
    await same({
      method: 'PATCH',
      path: `${GROUP}/v1/namespaces/${NS}/httproutes/unknown`,
      contentType: 'application/strategic-merge-patch+json',
      body: { spec: { hostnames: ['x.example'] } },
    });
  });
});

describe('writes', () => {
  const GC = `${GROUP}/v1/gatewayclasses`;
  const HR = `${GROUP}/v1/namespaces/${NS}/httproutes`;

  it('GatewayClass: status defaulted on create; controllerName immutable; generation on spec changes only', async () => {
    await same({
      method: 'POST',
      path: GC,
      body: {
        apiVersion: 'gateway.networking.k8s.io/v1',
        kind: 'GatewayClass',
        metadata: { name: 'fedgate' },
        spec: { controllerName: 'fedgate.dev/gateway' },
        status: { conditions: [] },
      },
    });
    const merge = (path: string, body: unknown) => ({
      method: 'PATCH',
      path,
      contentType: 'application/merge-patch+json',
      body,
    });
    await same(merge(`${GC}/fedgate`, { spec: { controllerName: 'other.dev/x' } }));
    const labelled = await same(merge(`${GC}/fedgate`, { metadata: { labels: { a: 'b' } } }));
    expect((labelled.sim.json as KubeObject).metadata.generation).toBe(1);
    const described = await same(merge(`${GC}/fedgate`, { spec: { description: 'fedgate' } }));
    expect((described.sim.json as KubeObject).metadata.generation).toBe(2);
    const status = {
      conditions: [accepted({ observedGeneration: 2 })],
    };
    const written = await same(merge(`${GC}/fedgate/status`, { status }));
    expect((written.sim.json as KubeObject).metadata.generation).toBe(2);
    // The main resource ignores status; the Table shows the condition.
    await same(merge(`${GC}/fedgate`, { status: { conditions: [] } }));
    await same({ path: GC, accept: TABLE }, [], maskedTable);
  });

  it('HTTPRoute: defaults read back, a PUT of the same spec keeps the generation, status through /status', async () => {
    const created = await same(
      route('web', {
        parentRefs: [{ name: 'gw' }],
        hostnames: ['a.example', 'b.example'],
        rules: [{ backendRefs: [backend()] }],
      }),
    );
    expect(created.sim.status).toBe(201);
    const put = (api: 'sim' | 'real', f: (o: KubeObject) => void) => {
      const o = structuredClone(created[api].json as KubeObject);
      f(o);
      return { method: 'PUT', path: `${HR}/web`, body: o };
    };
    const unchanged = await same((api) => put(api, () => {}));
    expect((unchanged.sim.json as KubeObject).metadata.generation).toBe(1);
    await same((api) =>
      put(api, (o) => {
        (o.spec as { hostnames: string[] }).hostnames = ['c.example'];
      }),
    );
    // A custom resource's PUT needs a resourceVersion; /status takes only the status.
    const status = {
      parents: [
        {
          parentRef: { name: 'gw' },
          controllerName: 'fedgate.dev/gateway',
          conditions: [accepted()],
        },
      ],
    };
    await same({
      method: 'PUT',
      path: `${HR}/web/status`,
      body: { ...route('web', {}).body, status },
    });
    const current = await same({ path: `${HR}/web` });
    const written = await same((api) => {
      const o = structuredClone(current[api].json as KubeObject);
      o.status = status;
      o.spec = { hostnames: ['ignored.example'] };
      return { method: 'PUT', path: `${HR}/web/status`, body: o };
    });
    expect((written.sim.json as KubeObject).metadata.generation).toBe(2);
    expect((written.sim.json as { spec: { hostnames: string[] } }).spec.hostnames).toEqual([
      'c.example',
    ]);
    await same({ path: `${HR}/web` });
  });
});

describe('versions', () => {
  it('a ReferenceGrant written at v1 is stored at v1beta1 and read at either; an HTTPRoute at v1beta1 likewise', async () => {
    const grant = {
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'ReferenceGrant',
      metadata: { name: 'both' },
      spec: {
        from: [{ group: 'gateway.networking.k8s.io', kind: 'HTTPRoute', namespace: 'other' }],
        to: [{ group: '', kind: 'Service' }],
      },
    };
    await same({
      method: 'POST',
      path: `${GROUP}/v1/namespaces/${NS}/referencegrants`,
      body: grant,
    });
    for (const v of ['v1', 'v1beta1']) {
      await same({ path: `${GROUP}/${v}/namespaces/${NS}/referencegrants/both` });
      await same({ path: `${GROUP}/${v}/namespaces/${NS}/referencegrants` });
    }
    await same({
      method: 'PATCH',
      path: `${GROUP}/v1beta1/namespaces/${NS}/referencegrants/both`,
      contentType: 'application/merge-patch+json',
      body: { metadata: { labels: { v: 'beta' } } },
    });
    const old = { ...route('beta', { hostnames: ['b.example'] }) };
    await same({
      ...old,
      path: `${GROUP}/v1beta1/namespaces/${NS}/httproutes`,
      body: { ...old.body, apiVersion: 'gateway.networking.k8s.io/v1beta1' },
    });
    await same({ path: `${GROUP}/v1/namespaces/${NS}/httproutes/beta` });
    await same(
      {
        path: `${GROUP}/v1beta1/namespaces/${NS}/httproutes?watch=1&resourceVersion=0&timeoutSeconds=1`,
      },
      [],
      events,
    );
  });
});

describe('watches and deletes', () => {
  it('a watch of HTTPRoutes sends the same events; deletes answer a Status', async () => {
    const HR = `${GROUP}/v1/namespaces/${NS}/httproutes`;
    const now = await servers().both({ path: HR });
    const rv = (api: 'sim' | 'real') =>
      (now[api].json as { metadata: { resourceVersion: string } }).metadata.resourceVersion;
    const watched = same(
      (api) => ({
        path: `${HR}?watch=1&timeoutSeconds=3&resourceVersion=${rv(api)}`,
        timeoutMs: 20_000,
      }),
      [],
      events,
    );
    await new Promise((r) => setTimeout(r, 500));
    await servers().both(route('watched', { hostnames: ['w.example'] }));
    await servers().both({
      method: 'PATCH',
      path: `${HR}/watched`,
      contentType: 'application/merge-patch+json',
      body: { spec: { hostnames: ['v.example'] } },
    });
    await same({ method: 'DELETE', path: `${HR}/watched` });
    const p = await watched;
    expect(events(p.real)).toHaveLength(3);
    await same({ method: 'DELETE', path: `${GROUP}/v1/gatewayclasses/fedgate` });
    await same({ method: 'DELETE', path: `${GROUP}/v1/gatewayclasses/fedgate` });
  });
});

describe('reads', () => {
  it('Tables as kubectl get shows them', async () => {
    for (const path of [
      `${GROUP}/v1/namespaces/${NS}/httproutes`,
      `${GROUP}/v1/namespaces/gateway-conformance-infra/gateways`,
      `${GROUP}/v1/namespaces/gateway-conformance-infra/grpcroutes`,
      `${GROUP}/v1beta1/namespaces/gateway-conformance-infra/referencegrants`,
    ])
      await same({ path, accept: TABLE }, [], maskedTable);
  });

  it('discovery: the group, its versions and resources', async () => {
    await same({ path: GROUP });
    for (const version of ['v1', 'v1beta1']) {
      const p = await servers().both({ path: `${GROUP}/${version}` });
      const listOf = (r: RawResponse) => (r.json as { resources: ApiResource[] }).resources;
      expect
        .soft(
          shapeDiff(
            { ...(p.sim.json as object), resources: [] },
            { ...(p.real.json as object), resources: [] },
          ),
        )
        .toEqual([]);
      for (const r of listOf(p.sim)) {
        const twin = listOf(p.real).find((x) => x.name === r.name);
        expect(twin, `${version} ${r.name}`).toBeDefined();
        if (!twin) continue;
        // Listed (README.md): no deletecollection, no storage to hash.
        expect
          .soft(twin.verbs.filter((v) => v !== 'deletecollection').sort(), r.name)
          .toEqual([...r.verbs].sort());
        expect
          .soft(shapeDiff({ ...r, verbs: [] }, { ...twin, verbs: [] }, r.name))
          .toEqual(r.name.includes('/') ? [] : [`${r.name}.storageVersionHash: only real`]);
      }
      const only = (a: RawResponse, b: RawResponse) =>
        listOf(a)
          .map((r) => r.name)
          .filter((n) => !listOf(b).some((r) => r.name === n));
      expect(only(p.real, p.sim)).toEqual([]);
      expect(only(p.sim, p.real)).toEqual([]);
    }
  });
});
