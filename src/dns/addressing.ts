// What DNS answers point at, per service: pod addresses (`endpoints`), the member
// Services' load-balancer ingress (`ingress`, as Federation v1 did), or fedgate's
// own edge addresses (`proxy`). Ingress and edge addresses are routed like
// endpoints: each becomes a pseudo-endpoint with a locality, planned by the same
// router under its own cache variant, so tiers, spill and health apply alike.
import type { ClusterMember, Endpoint, FederatedService, PortRecord } from '../catalog/model.ts';
import type { Router } from '../routing/router.ts';
import type { Locality, Plan } from '../routing/types.ts';

export type AddressingMode = 'endpoints' | 'ingress' | 'proxy';

export interface Edge {
  readonly region: string;
  readonly zone?: string | undefined;
  readonly addresses: readonly string[];
}

export interface AddressingView {
  mode(svc: FederatedService): AddressingMode;
  readonly edges: readonly Edge[];
  /** Configured region per cluster, for ingress addresses. */
  readonly clusterRegions: ReadonlyMap<string, string | undefined>;
  /** The proxy's port, for SRV answers in proxy mode. */
  readonly proxyPort: number;
}

function pseudoEndpoint(address: string, locality: Locality, ready: boolean): Endpoint {
  return {
    addresses: [address],
    addressType: address.includes(':') ? 'IPv6' : 'IPv4',
    ports: [],
    conditions: { ready, serving: ready, terminating: false },
    locality: { region: locality.region, zone: locality.zone, subzone: undefined },
    hostname: undefined,
    nodeName: undefined,
  };
}

/** A cluster's region: configured, else the one most of its endpoints report. */
function regionOf(m: ClusterMember, view: AddressingView): string | undefined {
  const configured = view.clusterRegions.get(m.cluster);
  if (configured) return configured;
  const counts = new Map<string, number>();
  for (const e of m.endpoints) {
    const r = e.locality.region;
    if (r) counts.set(r, (counts.get(r) ?? 0) + 1);
  }
  return [...counts].sort((a, b) => b[1] - a[1])[0]?.[0];
}

const ingressViews = new WeakMap<FederatedService, FederatedService>();
const proxyViews = new WeakMap<FederatedService, FederatedService>();

/** The service as its clusters' ingress addresses: ready while the cluster has a ready endpoint. */
function ingressView(svc: FederatedService, view: AddressingView): FederatedService {
  let v = ingressViews.get(svc);
  if (!v) {
    v = {
      ...svc,
      clusters: svc.clusters.map((m) => {
        const ready = m.endpoints.some((e) => e.conditions.ready);
        const region = regionOf(m, view);
        return {
          ...m,
          endpoints: m.ingress.flatMap((i) =>
            i.ip ? [pseudoEndpoint(i.ip, { region }, ready)] : [],
          ),
        };
      }),
    };
    ingressViews.set(svc, v);
  }
  return v;
}

/** The service as fedgate's edges: always ready (the proxy answers 503 itself when nothing is behind). */
function proxyView(svc: FederatedService, view: AddressingView): FederatedService {
  let v = proxyViews.get(svc);
  if (!v) {
    const first = svc.clusters[0];
    v = {
      ...svc,
      clusters: first
        ? [
            {
              ...first,
              cluster: 'fedgate',
              weight: 1,
              endpoints: view.edges.flatMap((e) =>
                e.addresses.map((a) => pseudoEndpoint(a, e, true)),
              ),
            },
          ]
        : [],
    };
    proxyViews.set(svc, v);
  }
  return v;
}

export function addressingPlan(
  svc: FederatedService,
  locality: Locality | undefined,
  router: Router,
  view: AddressingView,
): Plan {
  switch (view.mode(svc)) {
    case 'endpoints':
      return router.plan(svc, locality);
    case 'ingress':
      return router.plan(ingressView(svc, view), locality, 'ingress');
    case 'proxy':
      return router.plan(proxyView(svc, view), locality, 'proxy');
  }
}

/** The port an SRV answer names: where the addresses of this mode listen. */
export function srvPort(svc: FederatedService, port: PortRecord, view: AddressingView): number {
  switch (view.mode(svc)) {
    case 'endpoints': {
      for (const m of svc.clusters) {
        for (const e of m.endpoints) {
          const p = e.ports.find((x) => x.name === port.name && x.protocol === port.protocol);
          if (p) return p.port;
        }
      }
      return port.port;
    }
    case 'ingress':
      return port.port;
    case 'proxy':
      return view.proxyPort;
  }
}
