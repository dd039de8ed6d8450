// The Gateway API kinds through the simulator's registry: the CRDs' defaults, their
// schema and CEL refusals in kube-apiserver's words (test/gateway-parity.test.ts holds
// the same words to a real kube-apiserver), generation and status.
import { beforeEach, describe, expect, it } from 'vitest';
import { SimCluster } from './cluster.ts';
import { pruneUnknownFields } from './fields.ts';
import { durationMs } from './gateway-route-rules.ts';
import type { KubeObject } from './objects.ts';
import { Registry } from './registry.ts';
import { findType, type ResourceType } from './resources.ts';
import { ApiError, type StatusCause } from './status.ts';
import { ClusterStore } from './store.ts';

const G = 'gateway.networking.k8s.io';

function mustType(version: string, plural: string): ResourceType {
  const t = findType(G, version, plural);
  if (!t) throw new Error(`no type ${plural}`);
  return t;
}
const CLASS = mustType('v1', 'gatewayclasses');
const GATEWAY = mustType('v1', 'gateways');
const HTTP = mustType('v1', 'httproutes');
const GRPC = mustType('v1', 'grpcroutes');
const GRANT = mustType('v1beta1', 'referencegrants');

const obj = (kind: string, name: string, spec: unknown, version = 'v1'): KubeObject => ({
  apiVersion: `${G}/${version}`,
  kind,
  metadata: { name },
  spec,
});

const grant = (name: string, version: string) =>
  obj(
    'ReferenceGrant',
    name,
    {
      from: [{ group: G, kind: 'HTTPRoute', namespace: 'web' }],
      to: [{ group: '', kind: 'Service' }],
    },
    version,
  );

let reg: Registry;

beforeEach(() => {
  reg = new Registry(new ClusterStore());
  reg.create(findType('', 'v1', 'namespaces') as ResourceType, undefined, {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name: 'shop' },
  });
});

/** The causes of a refused create, as `field: message`. */
function refusal(t: ResourceType, o: KubeObject): string[] {
  try {
    reg.create(t, 'shop', o);
  } catch (e) {
    if (!(e instanceof ApiError) || e.code !== 422) throw e;
    return (e.details?.causes ?? []).map((c: StatusCause) => `${c.field}: ${c.message}`);
  }
  throw new Error('expected a 422');
}

const RULES_SKIPPED =
  '<nil>: Invalid value: null: some validation rules were not checked because the object was invalid; correct the existing errors to complete validation';

describe('defaults', () => {
  it('an HTTPRoute gets the CRD defaults: match, parentRef and backendRef group, kind and weight', () => {
    const r = reg.create(
      HTTP,
      'shop',
      obj('HTTPRoute', 'web', {
        parentRefs: [{ name: 'gw' }],
        rules: [
          { backendRefs: [{ name: 'svc', port: 80 }] },
          { matches: [{ headers: [{ name: 'x', value: 'y' }] }] },
        ],
      }),
    );
    expect(r.spec).toEqual({
      parentRefs: [{ group: G, kind: 'Gateway', name: 'gw' }],
      rules: [
        {
          matches: [{ path: { type: 'PathPrefix', value: '/' } }],
          backendRefs: [{ group: '', kind: 'Service', name: 'svc', port: 80, weight: 1 }],
        },
        {
          matches: [
            {
              headers: [{ name: 'x', type: 'Exact', value: 'y' }],
              path: { type: 'PathPrefix', value: '/' },
            },
          ],
        },
      ],
    });
    expect(r.status).toBeUndefined();
    expect(r.metadata.generation).toBe(1);
  });

  it('a Gateway listener allows routes from its own namespace; its status starts Pending', () => {
    const g = reg.create(
      GATEWAY,
      'shop',
      obj('Gateway', 'gw', {
        gatewayClassName: 'fedgate',
        listeners: [{ name: 'http', port: 80, protocol: 'HTTP' }],
      }),
    );
    expect((g.spec as { listeners: unknown[] }).listeners[0]).toEqual({
      name: 'http',
      port: 80,
      protocol: 'HTTP',
      allowedRoutes: { namespaces: { from: 'Same' } },
    });
    const conds = (g.status as { conditions: { type: string; reason: string }[] }).conditions;
    expect(conds.map((c) => `${c.type}=${c.reason}`)).toEqual([
      'Accepted=Pending',
      'Programmed=Pending',
    ]);
  });

  it('a GatewayClass status starts Pending whatever the create carried', () => {
    const c = reg.create(CLASS, undefined, {
      ...obj('GatewayClass', 'fedgate', { controllerName: 'fedgate.dev/gateway' }),
      status: { conditions: [] },
    });
    expect((c.status as { conditions: { type: string }[] }).conditions.map((x) => x.type)).toEqual([
      'Accepted',
    ]);
  });
});

describe('validation', () => {
  it('refuses a relative PathPrefix as kube-apiserver words it', () => {
    expect(
      refusal(
        HTTP,
        obj('HTTPRoute', 'r', {
          rules: [{ matches: [{ path: { type: 'PathPrefix', value: 'api' } }] }],
        }),
      ),
    ).toEqual([
      "spec.rules[0].matches[0].path: Invalid value: value must be an absolute path and start with '/' when type one of ['Exact', 'PathPrefix']",
    ]);
  });

  it('refuses RequestRedirect with URLRewrite, and RequestRedirect with backendRefs', () => {
    const causes = refusal(
      HTTP,
      obj('HTTPRoute', 'r', {
        rules: [
          {
            filters: [
              { type: 'RequestRedirect', requestRedirect: { scheme: 'https' } },
              { type: 'URLRewrite', urlRewrite: { hostname: 'x.example' } },
            ],
            backendRefs: [{ name: 'svc', port: 80 }],
          },
        ],
      }),
    );
    expect(causes.sort()).toEqual([
      'spec.rules[0].filters: Invalid value: May specify either httpRouteFilterRequestRedirect or httpRouteFilterRequestRewrite, but not both',
      'spec.rules[0]: Invalid value: RequestRedirect filter must not be used together with backendRefs',
    ]);
  });

  it('reports schema errors (pattern, range, enum, type, required) and skips the CEL rules then', () => {
    const causes = refusal(
      HTTP,
      obj('HTTPRoute', 'r', {
        hostnames: ['Bad_Host'],
        parentRefs: [{ port: 80 }],
        rules: [
          {
            matches: [
              {
                path: { type: 'PathPrefix', value: 'relative' },
                headers: [{ name: 'bad header', value: 'x' }],
              },
            ],
            backendRefs: [{ name: 'svc', port: 'eighty', weight: 2_000_000 }],
          },
        ],
      }),
    );
    expect(causes.sort()).toEqual(
      [
        `spec.hostnames[0]: Invalid value: "Bad_Host": spec.hostnames[0] in body should match '^(\\*\\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$'`,
        'spec.parentRefs[0].name: Required value',
        "spec.rules[0].matches[0].headers[0].name: Invalid value: \"bad header\": spec.rules[0].matches[0].headers[0].name in body should match '^[A-Za-z0-9!#$%&'*+\\-.^_\\x60|~]+$'",
        'spec.rules[0].backendRefs[0].port: Invalid value: "string": spec.rules[0].backendRefs[0].port in body must be of type integer: "string"',
        'spec.rules[0].backendRefs[0].weight: Invalid value: 2000000: spec.rules[0].backendRefs[0].weight in body should be less than or equal to 1000000',
        RULES_SKIPPED,
      ].sort(),
    );
  });

  it('refuses duplicates in list-type maps and sets, beside the CEL rules', () => {
    const causes = refusal(
      GATEWAY,
      obj('Gateway', 'gw', {
        gatewayClassName: 'fedgate',
        listeners: [
          { name: 'http', port: 80, protocol: 'HTTP' },
          { name: 'http', port: 81, protocol: 'HTTP' },
        ],
      }),
    );
    expect(causes).toEqual([
      'spec.listeners[1]: Duplicate value: {"name":"http"}',
      'spec.listeners: Invalid value: Listener name must be unique within the Gateway',
    ]);
  });

  it('words a rule that reads a missing field as a CEL runtime error', () => {
    expect(
      refusal(
        GATEWAY,
        obj('Gateway', 'gw', {
          gatewayClassName: 'fedgate',
          listeners: [{ name: 'https', port: 443, protocol: 'HTTPS', tls: {} }],
        }),
      ),
    ).toEqual([
      'spec.listeners[0].tls: Invalid value: "object": no such key: certificateRefs evaluating rule: certificateRefs or options must be specified when mode is Terminate',
    ]);
  });

  it('GRPCRoute: method matches need a service or method with valid characters', () => {
    const causes = refusal(
      GRPC,
      obj('GRPCRoute', 'g', {
        rules: [
          {
            matches: [{ method: { type: 'Exact' } }, { method: { service: 'a-b', method: 'Do' } }],
          },
        ],
      }),
    );
    expect(causes).toEqual([
      "spec.rules[0].matches[0].method: Invalid value: One or both of 'service' or 'method' must be specified",
      'spec.rules[0].matches[1].method: Invalid value: service must only contain valid characters (matching ^(?i)\\.?[a-z_][a-z_0-9]*(\\.[a-z_][a-z_0-9]*)*$)',
    ]);
  });

  it('a custom resource name is a DNS subdomain', () => {
    expect(refusal(GRANT, grant('Bad_Name', 'v1beta1'))).toEqual([
      `metadata.name: Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')`,
    ]);
  });

  it('reads Gateway API durations', () => {
    expect(durationMs('1h2m3s4ms')).toBe(3_723_004);
    expect(durationMs('0s')).toBe(0);
  });
});

describe('updates', () => {
  it('bumps generation on spec changes only; /status writes status only', () => {
    const created = reg.create(HTTP, 'shop', obj('HTTPRoute', 'web', { hostnames: ['a.example'] }));
    const labelled = reg.mergePatch(HTTP, 'shop', 'web', { metadata: { labels: { a: 'b' } } });
    expect(labelled.metadata.generation).toBe(1);
    const status = { parents: [] };
    const withStatus = reg.mergePatch(
      HTTP,
      'shop',
      'web',
      { status, spec: { hostnames: ['x.example'] } },
      { subresource: 'status' },
    );
    expect(withStatus.metadata.generation).toBe(1);
    expect(withStatus.status).toEqual(status);
    expect((withStatus.spec as { hostnames: string[] }).hostnames).toEqual(['a.example']);
    const changed = reg.update(HTTP, 'shop', 'web', {
      ...created,
      metadata: { name: 'web' },
      spec: { hostnames: ['b.example'] },
    });
    expect(changed.metadata.generation).toBe(2);
    expect(changed.status).toEqual(status);
  });

  it("a client's PUT of a custom resource needs a resourceVersion", () => {
    reg.create(HTTP, 'shop', obj('HTTPRoute', 'web', {}));
    const put = () =>
      reg.update(HTTP, 'shop', 'web', obj('HTTPRoute', 'web', {}), { fromClient: true });
    expect(() => put()).toThrow(
      'httproutes.gateway.networking.k8s.io "web" is invalid: metadata.resourceVersion',
    );
  });

  it('GatewayClass controllerName is immutable', () => {
    reg.create(
      CLASS,
      undefined,
      obj('GatewayClass', 'fedgate', { controllerName: 'fedgate.dev/gateway' }),
    );
    let causes: unknown;
    try {
      reg.mergePatch(CLASS, undefined, 'fedgate', { spec: { controllerName: 'other.dev/x' } });
    } catch (e) {
      causes = (e as ApiError).details?.causes;
    }
    expect(causes).toEqual([
      {
        reason: 'FieldValueInvalid',
        message: 'Invalid value: "other.dev/x": Value is immutable',
        field: 'spec.controllerName',
      },
    ]);
  });
});

describe('fields', () => {
  it('drops what the CRD schema does not declare, and reports it', () => {
    const o = obj('HTTPRoute', 'r', {
      bogus: 1,
      rules: [{ x: 2, matches: [{ path: { value: '/' } }] }],
    });
    (o.metadata as Record<string, unknown>).nope = true;
    expect(pruneUnknownFields('HTTPRoute', o)).toEqual([
      'metadata.nope',
      'spec.bogus',
      'spec.rules[0].x',
    ]);
    expect(o.spec).toEqual({ rules: [{ matches: [{ path: { value: '/' } }] }] });
  });

  it('drops a ReferenceGrant status: the CRD has none', () => {
    const o = { ...obj('ReferenceGrant', 'g', { from: [], to: [] }, 'v1beta1'), status: { a: 1 } };
    expect(pruneUnknownFields('ReferenceGrant', o)).toEqual(['status']);
  });
});

describe('versions', () => {
  it('a ReferenceGrant written at v1 is stored at v1beta1, its storage version', () => {
    const v1 = mustType('v1', 'referencegrants');
    const created = reg.create(v1, 'shop', grant('g', 'v1'));
    expect(created.apiVersion).toBe(`${G}/v1beta1`);
    expect(reg.get(GRANT, 'shop', 'g')).toEqual(created);
    const patched = reg.mergePatch(v1, 'shop', 'g', { metadata: { labels: { a: 'b' } } });
    expect(patched.apiVersion).toBe(`${G}/v1beta1`);
  });
});

describe('in-process apply (localfed and scenario objects)', () => {
  it('a v1beta1 Gateway with status is created, its status written, and read back at v1beta1', async () => {
    const sim = await SimCluster.create({ name: 'gw-unit', host: '127.223.0.3' });
    const gw = {
      ...obj(
        'Gateway',
        'edge',
        { gatewayClassName: 'fedgate', listeners: [{ name: 'http', port: 80, protocol: 'HTTP' }] },
        'v1beta1',
      ),
      metadata: { name: 'edge', namespace: 'default' },
      status: { conditions: [] },
    };
    const applied = sim.apply(gw);
    expect(applied.apiVersion).toBe(`${G}/v1beta1`);
    expect(applied.status).toEqual({ conditions: [] });
    expect(sim.get(`${G}/v1beta1`, 'Gateway', 'default', 'edge')?.apiVersion).toBe(`${G}/v1beta1`);
    expect(sim.get(`${G}/v1`, 'Gateway', 'default', 'edge')?.apiVersion).toBe(`${G}/v1`);
    expect(sim.apply(gw).metadata.resourceVersion).toBe(applied.metadata.resourceVersion);
  });
});
