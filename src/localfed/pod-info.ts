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
  /** What each port serves, by port; a port not here serves HTTP/1.1 in clear. */
  serving?: Record<number, PortServing>;
  /** Set for pods of headless services (StatefulSet-style stable names). */
  hostname?: string;
}

/** The fields that say where a pod runs. */
export type PodPlace = Pick<
  PodInfo,
  'cluster' | 'region' | 'zone' | 'node' | 'pod' | 'namespace' | 'service'
>;

/**
 * What one port serves: the HTTP answers or the gRPC echo service, in clear, over
 * TLS, or over TLS requiring a client certificate.
 */
export interface PortServing {
  protocol: 'http' | 'grpc';
  tls: 'none' | 'server' | 'mutual';
}
