// The federation catalog.bench.ts measures, shared by the bench (which checks what
// fedgate publishes) and catalog-sim.ts (which serves it): cluster, service and
// endpoint names, addresses and zones, as pure functions of their indexes, the
// shapes measured, and the messages the processes exchange over their IPC channels.
// Every address is loopback: health checks dial each one.
import type { KubeObject } from '../src/localfed/objects.ts';

/** The same 200,000 endpoints, over few clusters or many. */
export interface Shape {
  readonly name: string;
  readonly clusters: number;
  readonly services: number;
}

export const SHAPES: readonly Shape[] = [
  { name: '10x2000x10', clusters: 10, services: 2000 },
  { name: '50x400x10', clusters: 50, services: 400 },
];

export function shapeNamed(name: string | undefined): Shape {
  const shape = SHAPES.find((s) => s.name === name);
  if (!shape)
    throw new Error(`unknown shape ${name} (have: ${SHAPES.map((s) => s.name).join(', ')})`);
  return shape;
}

export const ENDPOINTS = 10;
/** Health checks pass at one endpoint in this many; the rest refuse at once. */
export const LIVE_EVERY = 100;
export const BACKEND_PORT = 8080;
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

/**
 * Unique per cluster, service and endpoint, on loopback: 127.<10+cluster>.<hi>.<lo>
 * (up to 6,553 services of 10 endpoints per cluster, 245 clusters). Linux answers
 * for all of 127/8, so a check of one nobody listens on is refused at once.
 */
export function address(c: number, i: number, j: number): string {
  const n = i * ENDPOINTS + j + 1;
  if (c > 245 || n > 0xffff) throw new Error(`no loopback address for ${c}/${i}/${j}`);
  return `127.${10 + c}.${n >> 8}.${n & 255}`;
}

/** Whether a backend listens at this endpoint (one in LIVE_EVERY, spread over clusters and services). */
export function isLive(c: number, i: number, j: number): boolean {
  return (c + i * ENDPOINTS + j) % LIVE_EVERY === 0;
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
      ports: [{ name: 'http', port: 80, targetPort: BACKEND_PORT, protocol: 'TCP' }],
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
    ports: [{ name: 'http', port: BACKEND_PORT, protocol: 'TCP' }],
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
      /** Backends listening (one per live endpoint), for the health checks to pass at. */
      listeners: number;
      seedMs: number;
      objects: number;
      rss: number;
      heapUsed: number;
    }
  | {
      type: 'reply';
      id: number;
      applyMs?: number;
      rv?: string;
      rss?: number;
      heapUsed?: number;
      /** Connections the backends accepted so far: health checks that reached one. */
      accepted?: number;
    }
  | { type: 'error'; id?: number; message: string };
