// What a backend pod is: where it runs and what it listens on. Its HTTP answers and
// its gRPC replies name the same fields.

export interface PodInfo {
  cluster: string;
  region: string;
  zone: string;
  node: string;
  pod: string;
  namespace: string;
  service: string;
  ip: string;
  ports: number[];
  /** Set for pods of headless services (StatefulSet-style stable names). */
  hostname?: string;
}

/** The fields that say where a pod runs. */
export type PodPlace = Pick<
  PodInfo,
  'cluster' | 'region' | 'zone' | 'node' | 'pod' | 'namespace' | 'service'
>;
