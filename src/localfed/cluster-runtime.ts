// What localfed wants one member cluster to run: its nodes, its pods (each a real
// backend), its load balancers and the services deployed there. Only desired state
// lives here; controllers.ts makes the member's API and the backends match it.
import { createHash } from 'node:crypto';
import { ActionError } from './action-error.ts';
import type { PodTlsSource } from './backend-pki.ts';
import { Backend, type PodInfo } from './backends.ts';
import { LoadBalancer } from './load-balancer.ts';
import type { MemberCluster } from './member.ts';
import { portServing, replicasIn, type ScenarioCluster, type ScenarioService } from './scenario.ts';
import { SerialQueue } from './serial-queue.ts';

export interface Pod {
  backend: Backend;
  service: ScenarioService;
  terminating: boolean;
  /** Its grace period is over: the next reconcile stops it and drops it. */
  gone: boolean;
  timer?: NodeJS.Timeout;
}

export interface NodeSpec {
  name: string;
  zone: string;
  ip: string;
}

export interface ClusterRuntime {
  spec: ScenarioCluster;
  octet: number;
  member: MemberCluster;
  /** The certificates its pods serve TLS with. */
  tls: PodTlsSource;
  nodes: NodeSpec[];
  pods: Pod[];
  podCounter: number;
  lbs: Map<string, LoadBalancer>;
  failed: boolean;
  /** Services deployed here (from the scenario, or added by scale). */
  services: Map<string, ScenarioService>;
  /** Every reconcile of this cluster runs here, one at a time, so writes never interleave. */
  queue: SerialQueue;
  /** A reconcile queued and not yet begun: a change made now is seen by it. */
  pendingReconcile: Promise<void> | undefined;
}

export const serviceId = (s: { namespace: string; name: string }) => `${s.namespace}/${s.name}`;

/** A name suffix as Kubernetes generates them: stable for the same input. */
export function shortHash(input: string, length: number): string {
  const alphabet = 'bcdfghjklmnpqrstvwxz2456789';
  const digest = createHash('sha256').update(input).digest();
  let out = '';
  for (const byte of digest.subarray(0, length)) out += alphabet[byte % alphabet.length];
  return out;
}

export function newRuntime(
  spec: ScenarioCluster,
  octet: number,
  member: MemberCluster,
  tls: PodTlsSource,
): ClusterRuntime {
  const nodes: NodeSpec[] = [];
  for (const zone of spec.zones) {
    for (let i = 1; i <= zone.nodes; i++) {
      nodes.push({
        name: `${spec.name}-${zone.name}-${i}`,
        zone: zone.name,
        ip: `127.${octet}.0.${10 + nodes.length}`,
      });
    }
  }
  return {
    spec,
    octet,
    member,
    tls,
    nodes,
    pods: [],
    podCounter: 0,
    lbs: new Map(),
    failed: false,
    services: new Map(),
    queue: new SerialQueue(),
    pendingReconcile: undefined,
  };
}

/** Deploys a service here: its load balancer and its pods (all zones, or one zone with N). */
export function deploy(
  rt: ClusterRuntime,
  svc: ScenarioService,
  only?: { zone: string; replicas: number },
): void {
  const id = serviceId(svc);
  rt.services.set(id, svc);
  if (svc.loadBalancer) {
    const lb = new LoadBalancer(
      `127.${rt.octet}.255.${rt.lbs.size + 1}`,
      svc.ports.map((p) => ({ port: p.port, targetPort: p.targetPort ?? p.port })),
      () => rt.pods.filter((p) => serviceId(p.service) === id).map((p) => p.backend),
    );
    rt.lbs.set(id, lb);
  }
  for (const zone of rt.spec.zones) {
    if (only && zone.name !== only.zone) continue;
    const n = only?.replicas ?? replicasIn(svc, rt.spec.name, zone.name);
    for (let i = 0; i < n; i++) addPod(rt, svc, zone.name);
  }
}

/** A new pod on the next free address, on the zone's nodes in turn. */
export function addPod(rt: ClusterRuntime, svc: ScenarioService, zone: string): Pod {
  const index = rt.podCounter++;
  if (index >= 254 * 254)
    throw new ActionError(`cluster ${rt.spec.name} has no pod addresses left`);
  const ip = `127.${rt.octet}.${1 + Math.floor(index / 254)}.${1 + (index % 254)}`;
  const zoneNodes = rt.nodes.filter((n) => n.zone === zone);
  const id = serviceId(svc);
  const sameService = rt.pods.filter((p) => serviceId(p.service) === id);
  const inZone = sameService.filter((p) => p.backend.info.zone === zone).length;
  const node = zoneNodes[inZone % zoneNodes.length]?.name ?? `${rt.spec.name}-${zone}-1`;
  const ordinal = sameService.length;
  const name = svc.headless
    ? `${svc.name}-${ordinal}`
    : `${svc.name}-${shortHash(`${rt.spec.name}/${id}`, 10)}-${shortHash(`${rt.spec.name}/${id}/${index}`, 5)}`;
  const info: PodInfo = {
    cluster: rt.spec.name,
    region: rt.spec.region,
    zone,
    node,
    pod: name,
    namespace: svc.namespace,
    service: svc.name,
    ip,
    ports: svc.ports.map((p) => p.targetPort ?? p.port),
    serving: Object.fromEntries(svc.ports.map((p) => [p.targetPort ?? p.port, portServing(p)])),
    ...(svc.headless ? { hostname: name } : {}),
  };
  const pod: Pod = {
    backend: new Backend(info, rt.tls),
    service: svc,
    terminating: false,
    gone: false,
  };
  rt.pods.push(pod);
  return pod;
}
