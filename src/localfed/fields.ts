// Which fields each type declares, for server-side field validation
// (fieldValidation=Strict|Warn|Ignore). `true` is a leaf or a free-form map;
// an object lists its fields; a one-element array describes each list item.
import { type GatewayApiChannel, type SchemaNode, schemaOf } from './gateway-schema.ts';
import { isRecord } from './objects.ts';

type Shape = true | { [field: string]: Shape } | [Shape];

const objectMeta: Shape = {
  name: true,
  generateName: true,
  namespace: true,
  selfLink: true,
  uid: true,
  resourceVersion: true,
  generation: true,
  creationTimestamp: true,
  deletionTimestamp: true,
  deletionGracePeriodSeconds: true,
  labels: true,
  annotations: true,
  finalizers: true,
  managedFields: true,
  ownerReferences: [
    {
      apiVersion: true,
      kind: true,
      name: true,
      uid: true,
      controller: true,
      blockOwnerDeletion: true,
    },
  ],
};

function top(rest: Record<string, Shape>): Shape {
  return { apiVersion: true, kind: true, metadata: objectMeta, ...rest };
}

export const FIELDS: Record<string, Shape> = {
  Namespace: top({ spec: { finalizers: true }, status: { phase: true, conditions: true } }),
  Service: top({
    spec: {
      ports: [
        {
          name: true,
          protocol: true,
          appProtocol: true,
          port: true,
          targetPort: true,
          nodePort: true,
        },
      ],
      selector: true,
      clusterIP: true,
      clusterIPs: true,
      type: true,
      externalIPs: true,
      sessionAffinity: true,
      loadBalancerIP: true,
      loadBalancerSourceRanges: true,
      externalName: true,
      externalTrafficPolicy: true,
      healthCheckNodePort: true,
      publishNotReadyAddresses: true,
      sessionAffinityConfig: true,
      ipFamilies: true,
      ipFamilyPolicy: true,
      allocateLoadBalancerNodePorts: true,
      loadBalancerClass: true,
      internalTrafficPolicy: true,
      trafficDistribution: true,
    },
    status: {
      loadBalancer: { ingress: [{ ip: true, hostname: true, ipMode: true, ports: true }] },
      conditions: true,
    },
  }),
  // Node spec and status are large and written only by the simulator: not checked below the top.
  Node: top({ spec: true, status: true }),
  EndpointSlice: top({
    addressType: true,
    endpoints: [
      {
        addresses: true,
        conditions: { ready: true, serving: true, terminating: true },
        hostname: true,
        targetRef: true,
        nodeName: true,
        zone: true,
        hints: true,
        deprecatedTopology: true,
      },
    ],
    ports: [{ name: true, protocol: true, port: true, appProtocol: true }],
  }),
  ServiceExport: top({ status: { conditions: true } }),
};

/**
 * Removes the fields the type does not declare, as decoding into the API's Go
 * types does, and returns their paths (`spec.foo`, `endpoints[0].bar`).
 */
export function pruneUnknownFields(
  kind: string,
  obj: unknown,
  channel: GatewayApiChannel = 'standard',
): string[] {
  const shape = FIELDS[kind] ?? crdShape(kind, channel);
  if (!shape) return [];
  const out: string[] = [];
  walk(shape, obj, '', out);
  return out;
}

/** A CRD-served kind's fields, from its structural schema; metadata is ObjectMeta as for any kind. */
function crdShape(kind: string, channel: GatewayApiChannel): Shape | undefined {
  const schema = schemaOf(kind, channel);
  if (!schema) return undefined;
  const shape = shapeOf(schema);
  return shape === true || Array.isArray(shape) ? shape : { ...shape, metadata: objectMeta };
}

function shapeOf(node: SchemaNode): Shape {
  if (node.p) return Object.fromEntries(Object.entries(node.p).map(([k, v]) => [k, shapeOf(v)]));
  if (node.i) return [shapeOf(node.i)];
  return true;
}

function walk(shape: Shape, value: unknown, path: string, out: string[]): void {
  if (shape === true || value === null || value === undefined) return;
  if (Array.isArray(shape)) {
    if (Array.isArray(value)) {
      value.forEach((v, i) => {
        walk(shape[0], v, `${path}[${i}]`, out);
      });
    }
    return;
  }
  if (!isRecord(value)) return;
  for (const [k, v] of Object.entries(value)) {
    // Strategic merge patch directives ($patch, $setElementOrder/…) are not fields.
    if (k.startsWith('$')) continue;
    const child = shape[k];
    const here = path ? `${path}.${k}` : k;
    if (child === undefined) {
      out.push(here);
      delete value[k];
    } else walk(child, v, here, out);
  }
}
