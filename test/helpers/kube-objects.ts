// Kubernetes objects for tests, as users and controllers write them. Every address
// is loopback (127/8): the tests' network guard refuses anything else.
import type { KubeObject } from '../../src/localfed/objects.ts';

export function namespace(name: string): KubeObject {
  return { apiVersion: 'v1', kind: 'Namespace', metadata: { name } };
}

export interface PortSpec {
  name: string;
  port: number;
}

export function service(
  ns: string,
  name: string,
  opts: {
    ports?: PortSpec[];
    headless?: boolean;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  } = {},
): KubeObject {
  const ports = opts.ports ?? [{ name: 'http', port: 80 }];
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: {
      name,
      namespace: ns,
      labels: { app: name, ...opts.labels },
      ...(opts.annotations ? { annotations: opts.annotations } : {}),
    },
    spec: {
      ...(opts.headless ? { clusterIP: 'None' } : {}),
      selector: { app: name },
      ports: ports.map((p) => ({ name: p.name, port: p.port, targetPort: 8080, protocol: 'TCP' })),
    },
  };
}

export function serviceExport(ns: string, name: string): KubeObject {
  return {
    apiVersion: 'multicluster.x-k8s.io/v1alpha1',
    kind: 'ServiceExport',
    metadata: { name, namespace: ns },
  };
}

export interface EndpointSpec {
  address: string;
  /** Omitted: no conditions at all (every condition nil). */
  conditions?: { ready?: boolean; serving?: boolean; terminating?: boolean };
  nodeName?: string;
  zone?: string;
  hostname?: string;
}

export function slice(
  ns: string,
  svc: string,
  name: string,
  endpoints: EndpointSpec[],
  opts: { labels?: Record<string, string>; ports?: PortSpec[] } = {},
): KubeObject {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: {
      name,
      namespace: ns,
      labels: {
        'kubernetes.io/service-name': svc,
        'endpointslice.kubernetes.io/managed-by': 'endpointslice-controller.k8s.io',
        ...opts.labels,
      },
    },
    addressType: 'IPv4',
    endpoints: endpoints.map((e) => ({
      addresses: [e.address],
      ...(e.conditions ? { conditions: e.conditions } : {}),
      ...(e.nodeName ? { nodeName: e.nodeName } : {}),
      ...(e.zone ? { zone: e.zone } : {}),
      ...(e.hostname ? { hostname: e.hostname } : {}),
    })),
    ports: (opts.ports ?? [{ name: 'http', port: 8080 }]).map((p) => ({
      name: p.name,
      port: p.port,
      protocol: 'TCP',
    })),
  };
}

/** `count` ready endpoints 127.11.<third>.1.. */
export function readyEndpoints(third: number, count: number, from = 1): EndpointSpec[] {
  return Array.from({ length: count }, (_, i) => ({
    address: `127.11.${third}.${from + i}`,
    conditions: { ready: true, serving: true, terminating: false },
  }));
}

export function node(name: string, labels: Record<string, string>): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name, labels },
    spec: {},
    status: { conditions: [{ type: 'Ready', status: 'True' }] },
  };
}
