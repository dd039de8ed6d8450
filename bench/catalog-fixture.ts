// The federation catalog.bench.ts measures, shared by the bench (which checks what
// fedgate publishes) and catalog-sim.ts (which serves it): cluster, service and
// endpoint names, addresses and zones, as pure functions of their indexes, and the
// messages the two processes exchange over the IPC channel.
import type { KubeObject } from '../src/localfed/objects.ts';

export const CLUSTERS = 10;
export const SERVICES = 2000;
export const ENDPOINTS = 10;
export const NODES = 3;
export const NAMESPACES = 4;
/** Seeding writes ~6,000 changes per cluster; the change phase adds ~100 more per cluster. */
export const HISTORY_LIMIT = 20_000;

const REGIONS = ['us-east', 'us-west', 'eu-west'];

export const clusterName = (c: number) => `c${c}`;
export const regionOf = (c: number) => REGIONS[c % REGIONS.length]!;
export const zoneOf = (c: number, n: number) => `${regionOf(c)}-c${c}${'abc'[n % 3]}`;
export const nodeName = (c: number, n: number) => `c${c}-node-${n}`;
export const namespaceOf = (i: number) => `bench-${i % NAMESPACES}`;
export const serviceName = (i: number) => `svc-${i}`;
export const serviceKey = (i: number) => `${namespaceOf(i)}/${serviceName(i)}`;
export const sliceName = (i: number) => `svc-${i}-x7k2p`;

/** Unique per cluster, service and endpoint: 10.<cluster>.<hi>.<lo>. */
export function address(c: number, i: number, j: number): string {
  const n = i * ENDPOINTS + j + 1;
  return `10.${c}.${n >> 8}.${n & 255}`;
}

export function namespaceObjects(): KubeObject[] {
  return Array.from({ length: NAMESPACES }, (_, k) => ({
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name: `bench-${k}` },
  }));
}

export function nodeObjects(c: number): KubeObject[] {
  return Array.from({ length: NODES }, (_, n) => ({
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name: nodeName(c, n),
      labels: {
        'topology.kubernetes.io/region': regionOf(c),
        'topology.kubernetes.io/zone': zoneOf(c, n),
      },
    },
  }));
}

export function serviceObject(i: number): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: serviceName(i), namespace: namespaceOf(i), labels: { app: serviceName(i) } },
    spec: {
      selector: { app: serviceName(i) },
      ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }],
    },
  };
}

export function exportObject(i: number): KubeObject {
  return {
    apiVersion: 'multicluster.x-k8s.io/v1alpha1',
    kind: 'ServiceExport',
    metadata: { name: serviceName(i), namespace: namespaceOf(i) },
  };
}

/** `notReady`: endpoint indexes whose ready condition is false. */
export function sliceObject(
  c: number,
  i: number,
  notReady: ReadonlySet<number> = new Set(),
): KubeObject {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: {
      name: sliceName(i),
      namespace: namespaceOf(i),
      labels: {
        'kubernetes.io/service-name': serviceName(i),
        'endpointslice.kubernetes.io/managed-by': 'endpointslice-controller.k8s.io',
      },
    },
    addressType: 'IPv4',
    endpoints: Array.from({ length: ENDPOINTS }, (_, j) => {
      const ready = !notReady.has(j);
      return {
        addresses: [address(c, i, j)],
        conditions: { ready, serving: ready, terminating: false },
        nodeName: nodeName(c, j % NODES),
        zone: zoneOf(c, j % NODES),
        targetRef: { kind: 'Pod', namespace: namespaceOf(i), name: `${serviceName(i)}-pod-${j}` },
      };
    }),
    ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
  };
}

/** Parent → child. */
export type SimRequest =
  | { type: 'ping'; id: number }
  | { type: 'stats'; id: number }
  /** Set one endpoint's ready condition (read, modify, write through the API's registry). */
  | { type: 'set'; id: number; cluster: number; service: number; endpoint: number; ready: boolean }
  | { type: 'stop'; id: number };

/** Child → parent. */
export type SimMessage =
  | {
      type: 'ready';
      kubeconfigs: string[];
      seedMs: number;
      objects: number;
      rss: number;
      heapUsed: number;
    }
  | { type: 'reply'; id: number; applyMs?: number; rv?: string; rss?: number; heapUsed?: number }
  | { type: 'error'; id?: number; message: string };
