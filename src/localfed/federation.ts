// The local federation: simulated member clusters with real backends, driven by a
// scenario, and the actions that break and mend it. Every action changes the
// desired state and then reconciles: backends listen exactly when they should, and
// each cluster's EndpointSlices say exactly which backends are listening.
import { createHash } from 'node:crypto';
import { stringify } from 'yaml';
import { FedgateError } from '../errors.ts';
import { FEDERATE_ANNOTATION } from '../watch/annotations.ts';
import { Backend, LoadBalancer, type PodInfo } from './backends.ts';
import { SimCluster } from './cluster.ts';
import type { FaultMode } from './member.ts';
import type { KubeObject } from './objects.ts';
import {
  replicasIn,
  type Scenario,
  type ScenarioCluster,
  type ScenarioService,
} from './scenario.ts';

export interface LocalFederationOptions {
  /** Second octet of the first cluster's 127.x.0.0/16; cluster i uses block + i. */
  addressBlock?: number;
  /** API server port on each cluster's own address; 0 picks a free one. */
  apiPort?: number;
  bookmarkIntervalMs?: number;
  minRequestTimeoutSeconds?: number;
  /** Called with one line per thing that changed, for logs. */
  onEvent?: (message: string) => void;
}

export const DEFAULT_ADDRESS_BLOCK = 20;
export const DEFAULT_API_PORT = 6443;
const ENDPOINTS_PER_SLICE = 100;
const KUBELET_VERSION = 'v1.33.0';

/** An action that cannot be done as asked: the control API's 400, `localfed ctl`'s exit 2. */
export class ActionError extends FedgateError {
  constructor(message: string) {
    super('ACTION_INVALID', message);
    this.name = 'ActionError';
  }
}

interface Pod {
  backend: Backend;
  service: ScenarioService;
  terminating: boolean;
  timer?: NodeJS.Timeout;
}

interface ClusterRuntime {
  spec: ScenarioCluster;
  octet: number;
  sim: SimCluster;
  pods: Pod[];
  podCounter: number;
  lbs: Map<string, LoadBalancer>;
  failed: boolean;
  /** Services deployed here (from the scenario, or added by scale). */
  services: Map<string, ScenarioService>;
}

const serviceId = (s: { namespace: string; name: string }) => `${s.namespace}/${s.name}`;

function shortHash(input: string, length: number): string {
  const alphabet = 'bcdfghjklmnpqrstvwxz2456789';
  const digest = createHash('sha256').update(input).digest();
  let out = '';
  for (const byte of digest.subarray(0, length)) out += alphabet[byte % alphabet.length];
  return out;
}

export class LocalFederation {
  readonly scenario: Scenario;
  readonly #clusters = new Map<string, ClusterRuntime>();
  readonly #failedZones = new Set<string>();
  readonly #emit: (message: string) => void;
  #stopped = false;

  private constructor(scenario: Scenario, onEvent: (message: string) => void) {
    this.scenario = scenario;
    this.#emit = onEvent;
  }

  static async start(
    scenario: Scenario,
    opts: LocalFederationOptions = {},
  ): Promise<LocalFederation> {
    const block = opts.addressBlock ?? DEFAULT_ADDRESS_BLOCK;
    if (block < 1 || block + scenario.clusters.length > 255) {
      throw new ActionError(
        `address block ${block} leaves no room for ${scenario.clusters.length} clusters in 127.0.0.0/8`,
      );
    }
    const fed = new LocalFederation(scenario, opts.onEvent ?? (() => {}));
    try {
      for (const [i, spec] of scenario.clusters.entries()) {
        const octet = block + i;
        const sim = await SimCluster.create({
          name: spec.name,
          host: `127.${octet}.0.1`,
          port: opts.apiPort ?? DEFAULT_API_PORT,
          bookmarkIntervalMs: opts.bookmarkIntervalMs,
          minRequestTimeoutSeconds: opts.minRequestTimeoutSeconds,
          serviceExportCRD: spec.serviceExportCRD,
        });
        const rt: ClusterRuntime = {
          spec,
          octet,
          sim,
          pods: [],
          podCounter: 0,
          lbs: new Map(),
          failed: false,
          services: new Map(),
        };
        fed.#clusters.set(spec.name, rt);
        fed.#seedNodes(rt);
        for (const svc of scenario.services)
          if (svc.clusters.includes(spec.name)) fed.#deploy(rt, svc);
        await sim.start();
      }
      for (const rt of fed.#clusters.values()) await fed.#reconcile(rt);
    } catch (e) {
      await fed.stop();
      throw e;
    }
    return fed;
  }

  get clusters(): SimCluster[] {
    return [...this.#clusters.values()].map((rt) => rt.sim);
  }

  cluster(name: string): SimCluster {
    return this.#runtime(name).sim;
  }

  /** Every pod backend, in every cluster. */
  backends(): Backend[] {
    return [...this.#clusters.values()].flatMap((rt) => rt.pods.map((p) => p.backend));
  }

  loadBalancers(cluster: string): { service: string; ip: string; ports: number[] }[] {
    return [...this.#runtime(cluster).lbs].map(([service, lb]) => ({
      service,
      ip: lb.ip,
      ports: lb.ports.map((p) => p.port),
    }));
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    for (const rt of this.#clusters.values()) {
      for (const p of rt.pods) clearTimeout(p.timer);
      await Promise.all([
        rt.sim.stop(),
        ...rt.pods.map((p) => p.backend.stop()),
        ...[...rt.lbs.values()].map((lb) => lb.stop()),
      ]);
    }
  }

  #runtime(name: string): ClusterRuntime {
    const rt = this.#clusters.get(name);
    if (!rt)
      throw new ActionError(
        `unknown cluster "${name}" (have: ${[...this.#clusters.keys()].join(', ')})`,
      );
    return rt;
  }

  #zoneExists(zone: string): boolean {
    return [...this.#clusters.values()].some((rt) => rt.spec.zones.some((z) => z.name === zone));
  }

  // ---- actions -------------------------------------------------------------

  /** Every backend in the zone stops listening, its nodes go NotReady, its endpoints not ready. */
  async failZone(zone: string): Promise<string> {
    if (!this.#zoneExists(zone)) throw new ActionError(`unknown zone "${zone}"`);
    this.#failedZones.add(zone);
    await this.#reconcileAll();
    return this.#log(
      `zone ${zone} failed: its backends stopped, its nodes NotReady, its endpoints not ready`,
    );
  }

  async restoreZone(zone: string): Promise<string> {
    if (!this.#zoneExists(zone)) throw new ActionError(`unknown zone "${zone}"`);
    this.#failedZones.delete(zone);
    await this.#reconcileAll();
    return this.#log(`zone ${zone} restored`);
  }

  /** The cluster is gone from the network: API refuses, backends and LBs stop; its stored state is frozen as last seen. */
  async failCluster(name: string): Promise<string> {
    const rt = this.#runtime(name);
    rt.failed = true;
    await rt.sim.setFault('refuse');
    await this.#reconcile(rt);
    return this.#log(
      `cluster ${name} failed: API refusing connections, backends and load balancers stopped`,
    );
  }

  async restoreCluster(name: string): Promise<string> {
    const rt = this.#runtime(name);
    rt.failed = false;
    await this.#reconcile(rt);
    await rt.sim.setFault('up');
    return this.#log(`cluster ${name} restored`);
  }

  async apiDown(name: string, mode: Exclude<FaultMode, 'up'>): Promise<string> {
    const rt = this.#runtime(name);
    await rt.sim.setFault(mode);
    const what = {
      refuse: 'refusing connections',
      hang: 'accepting but never answering',
      drop: 'dropping every watch',
    }[mode];
    return this.#log(`API of ${name} down: ${what}`);
  }

  async apiUp(name: string): Promise<string> {
    const rt = this.#runtime(name);
    if (rt.failed) throw new ActionError(`cluster ${name} is failed; use restore-cluster`);
    await rt.sim.setFault('up');
    return this.#log(`API of ${name} up`);
  }

  compact(name: string): string {
    const rt = this.#runtime(name);
    rt.sim.compact();
    return this.#log(
      `history of ${name} compacted at revision ${rt.sim.store.revision}: watches from older revisions get 410 Expired`,
    );
  }

  /** Sets the replicas of NS/SVC in one zone of one cluster, deploying the service there if needed. */
  async scale(id: string, cluster: string, zone: string, replicas: number): Promise<string> {
    if (!Number.isInteger(replicas) || replicas < 0 || replicas > 200)
      throw new ActionError('replicas must be an integer from 0 to 200');
    const svc = this.scenario.services.find((s) => serviceId(s) === id);
    if (!svc)
      throw new ActionError(
        `unknown service "${id}" (have: ${this.scenario.services.map(serviceId).join(', ')})`,
      );
    const rt = this.#runtime(cluster);
    if (!rt.spec.zones.some((z) => z.name === zone))
      throw new ActionError(`cluster ${cluster} has no zone "${zone}"`);
    if (!rt.services.has(id)) this.#deploy(rt, svc, zone, 0);
    const live = rt.pods.filter(
      (p) => serviceId(p.service) === id && p.backend.info.zone === zone && !p.terminating,
    );
    for (let i = live.length; i < replicas; i++) this.#addPod(rt, svc, zone);
    for (const pod of live.slice(replicas).reverse()) this.#terminate(rt, pod);
    await this.#reconcile(rt);
    return this.#log(`${id} in ${cluster}/${zone}: ${live.length} → ${replicas} replicas`);
  }

  /** Flips the health endpoint of pods matched by name, address, zone or cluster. */
  setHealth(target: string, healthy: boolean): string {
    const all = [...this.#clusters.values()].flatMap((rt) => rt.pods);
    const match = all.filter(
      (p) =>
        p.backend.info.pod === target ||
        p.backend.info.ip === target ||
        p.backend.info.zone === target ||
        p.backend.info.cluster === target,
    );
    if (match.length === 0)
      throw new ActionError(
        `no pod matches "${target}" (give a pod name, pod address, zone or cluster)`,
      );
    for (const p of match) p.backend.healthy = healthy;
    return this.#log(
      `health of ${match.length} pod(s) matching ${target}: ${healthy ? 'passing' : 'failing'}`,
    );
  }

  #log(message: string): string {
    this.#emit(message);
    return message;
  }

  // ---- desired state -------------------------------------------------------

  #seedNodes(rt: ClusterRuntime): void {
    let n = 0;
    for (const zone of rt.spec.zones) {
      for (let i = 1; i <= zone.nodes; i++) {
        rt.sim.apply(
          this.#node(
            rt,
            zone.name,
            `${rt.spec.name}-${zone.name}-${i}`,
            `127.${rt.octet}.0.${10 + n++}`,
            true,
          ),
        );
      }
    }
  }

  #node(rt: ClusterRuntime, zone: string, name: string, ip: string, ready: boolean): KubeObject {
    return {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: {
        name,
        labels: {
          'kubernetes.io/hostname': name,
          'topology.kubernetes.io/region': rt.spec.region,
          'topology.kubernetes.io/zone': zone,
        },
      },
      spec: {},
      status: {
        conditions: [
          {
            type: 'Ready',
            status: ready ? 'True' : 'Unknown',
            reason: ready ? 'KubeletReady' : 'NodeStatusUnknown',
            message: ready
              ? 'kubelet is posting ready status'
              : 'Kubelet stopped posting node status.',
          },
        ],
        addresses: [
          { type: 'InternalIP', address: ip },
          { type: 'Hostname', address: name },
        ],
        nodeInfo: {
          kubeletVersion: KUBELET_VERSION,
          operatingSystem: 'linux',
          architecture: 'amd64',
        },
      },
    };
  }

  /** Creates the Service (and ServiceExport, LB) in a cluster and its scenario pods. */
  #deploy(
    rt: ClusterRuntime,
    svc: ScenarioService,
    onlyZone?: string,
    onlyReplicas?: number,
  ): void {
    const id = serviceId(svc);
    rt.services.set(id, svc);
    if (!rt.sim.get('v1', 'Namespace', undefined, svc.namespace)) {
      rt.sim.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: svc.namespace } });
    }
    let lbIp: string | undefined;
    if (svc.loadBalancer) {
      lbIp = `127.${rt.octet}.255.${rt.lbs.size + 1}`;
      const lb = new LoadBalancer(
        lbIp,
        svc.ports.map((p) => ({ port: p.port, targetPort: p.targetPort ?? p.port })),
        () => rt.pods.filter((p) => serviceId(p.service) === id).map((p) => p.backend),
      );
      rt.lbs.set(id, lb);
    }
    rt.sim.apply({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: {
        name: svc.name,
        namespace: svc.namespace,
        labels: { app: svc.name, ...svc.labels },
        // Without the ServiceExport CRD, exporting is the fedgate.io/federate annotation.
        annotations:
          svc.exported && !rt.spec.serviceExportCRD
            ? { ...svc.annotations, [FEDERATE_ANNOTATION]: 'true' }
            : svc.annotations,
      },
      spec: {
        type: svc.loadBalancer ? 'LoadBalancer' : 'ClusterIP',
        ...(svc.headless ? { clusterIP: 'None' } : {}),
        selector: { app: svc.name },
        ports: svc.ports.map((p) => ({
          name: p.name,
          port: p.port,
          targetPort: p.targetPort ?? p.port,
          protocol: p.protocol,
          ...(p.appProtocol ? { appProtocol: p.appProtocol } : {}),
        })),
      },
      ...(lbIp ? { status: { loadBalancer: { ingress: [{ ip: lbIp, ipMode: 'VIP' }] } } } : {}),
    });
    if (svc.exported && rt.spec.serviceExportCRD) {
      rt.sim.apply({
        apiVersion: 'multicluster.x-k8s.io/v1alpha1',
        kind: 'ServiceExport',
        metadata: { name: svc.name, namespace: svc.namespace },
      });
    }
    for (const zone of rt.spec.zones) {
      if (onlyZone !== undefined && zone.name !== onlyZone) continue;
      const n = onlyReplicas ?? replicasIn(svc, rt.spec.name, zone.name);
      for (let i = 0; i < n; i++) this.#addPod(rt, svc, zone.name);
    }
  }

  #addPod(rt: ClusterRuntime, svc: ScenarioService, zone: string): void {
    const index = rt.podCounter++;
    if (index >= 254 * 254)
      throw new ActionError(`cluster ${rt.spec.name} has no pod addresses left`);
    const ip = `127.${rt.octet}.${1 + Math.floor(index / 254)}.${1 + (index % 254)}`;
    const zoneSpec = rt.spec.zones.find((z) => z.name === zone)!;
    const sameService = rt.pods.filter((p) => serviceId(p.service) === serviceId(svc));
    const inZone = sameService.filter((p) => p.backend.info.zone === zone).length;
    const node = `${rt.spec.name}-${zone}-${1 + (inZone % zoneSpec.nodes)}`;
    const ordinal = sameService.length;
    const pod = svc.headless
      ? `${svc.name}-${ordinal}`
      : `${svc.name}-${shortHash(`${rt.spec.name}/${serviceId(svc)}`, 10)}-${shortHash(`${rt.spec.name}/${serviceId(svc)}/${index}`, 5)}`;
    const info: PodInfo = {
      cluster: rt.spec.name,
      region: rt.spec.region,
      zone,
      node,
      pod,
      namespace: svc.namespace,
      service: svc.name,
      ip,
      ports: svc.ports.map((p) => p.targetPort ?? p.port),
      ...(svc.headless ? { hostname: pod } : {}),
    };
    rt.pods.push({ backend: new Backend(info), service: svc, terminating: false });
  }

  /** Terminating: still serving, no longer ready; gone after the grace period. */
  #terminate(rt: ClusterRuntime, pod: Pod): void {
    pod.terminating = true;
    pod.timer = setTimeout(() => {
      rt.pods = rt.pods.filter((p) => p !== pod);
      void pod.backend
        .stop()
        .then(() => this.#reconcile(rt))
        .catch((e: unknown) => this.#emit(`reconcile of ${rt.spec.name} failed: ${String(e)}`));
    }, this.scenario.terminationGraceSeconds * 1000);
  }

  async #reconcileAll(): Promise<void> {
    for (const rt of this.#clusters.values()) await this.#reconcile(rt);
  }

  /** Makes backends, load balancers, nodes and EndpointSlices match the desired state. */
  async #reconcile(rt: ClusterRuntime): Promise<void> {
    if (this.#stopped) return;
    const up = (zone: string) => !rt.failed && !this.#failedZones.has(zone);
    await Promise.all(
      rt.pods.map((p) => (up(p.backend.info.zone) ? p.backend.start() : p.backend.stop())),
    );
    await Promise.all([...rt.lbs.values()].map((lb) => (rt.failed ? lb.stop() : lb.start())));
    if (rt.failed) return; // Unreachable: what its API would say is frozen as last seen.
    for (const zone of rt.spec.zones) {
      for (let i = 1; i <= zone.nodes; i++) {
        const node = rt.sim.get('v1', 'Node', undefined, `${rt.spec.name}-${zone.name}-${i}`);
        if (!node) continue;
        const ip = (node.status as { addresses: { address: string }[] }).addresses[0]!.address;
        rt.sim.apply(this.#node(rt, zone.name, node.metadata.name, ip, up(zone.name)));
      }
    }
    for (const svc of rt.services.values()) this.#syncSlices(rt, svc);
  }

  #syncSlices(rt: ClusterRuntime, svc: ScenarioService): void {
    const id = serviceId(svc);
    const service = rt.sim.get('v1', 'Service', svc.namespace, svc.name);
    if (!service) return;
    const endpoints = rt.pods
      .filter((p) => serviceId(p.service) === id)
      .map((p) => {
        const info = p.backend.info;
        const listening = p.backend.listening;
        return {
          addresses: [info.ip],
          conditions: {
            ready: listening && !p.terminating,
            serving: listening,
            terminating: p.terminating,
          },
          ...(info.hostname ? { hostname: info.hostname } : {}),
          nodeName: info.node,
          zone: info.zone,
          targetRef: { kind: 'Pod', namespace: info.namespace, name: info.pod },
        };
      });
    const chunks: (typeof endpoints)[] = [];
    for (let i = 0; i < endpoints.length; i += ENDPOINTS_PER_SLICE)
      chunks.push(endpoints.slice(i, i + ENDPOINTS_PER_SLICE));
    if (chunks.length === 0) chunks.push([]);
    const names = chunks.map((_, k) => `${svc.name}-${shortHash(`${rt.spec.name}/${id}/${k}`, 5)}`);
    chunks.forEach((chunk, k) => {
      rt.sim.apply({
        apiVersion: 'discovery.k8s.io/v1',
        kind: 'EndpointSlice',
        metadata: {
          name: names[k]!,
          namespace: svc.namespace,
          labels: {
            'kubernetes.io/service-name': svc.name,
            'endpointslice.kubernetes.io/managed-by': 'endpointslice-controller.k8s.io',
          },
          ownerReferences: [
            {
              apiVersion: 'v1',
              kind: 'Service',
              name: svc.name,
              uid: service.metadata.uid,
              controller: true,
              blockOwnerDeletion: true,
            },
          ],
        },
        addressType: 'IPv4',
        endpoints: chunk,
        ports: svc.ports.map((p) => ({
          name: p.name,
          port: p.targetPort ?? p.port,
          protocol: p.protocol,
        })),
      });
    });
    // Slices beyond what is needed now are deleted, as the EndpointSlice controller does.
    for (const slice of rt.sim.store.list('discovery.k8s.io/endpointslices', svc.namespace)) {
      if (
        slice.metadata.labels?.['kubernetes.io/service-name'] === svc.name &&
        !names.includes(slice.metadata.name)
      ) {
        rt.sim.remove('discovery.k8s.io/v1', 'EndpointSlice', svc.namespace, slice.metadata.name);
      }
    }
  }

  // ---- what is running -----------------------------------------------------

  /**
   * A fedgate configuration for this federation, as YAML. `kubeconfigs` maps
   * each cluster to its kubeconfig path as the config should write it.
   */
  fedgateConfig(kubeconfigs: Record<string, string>, adminListen = '127.0.0.1:9464'): string {
    const clusters = [...this.#clusters.values()].map((rt) => ({
      name: rt.spec.name,
      kubeconfig: kubeconfigs[rt.spec.name] ?? `${rt.spec.name}.kubeconfig`,
      region: rt.spec.region,
    }));
    return stringify({
      federation: { ...this.scenario.federation },
      clusters,
      admin: { listen: adminListen },
    });
  }

  describe() {
    return {
      federation: this.scenario.federation,
      failedZones: [...this.#failedZones],
      clusters: [...this.#clusters.values()].map((rt) => ({
        name: rt.spec.name,
        region: rt.spec.region,
        zones: rt.spec.zones.map((z) => z.name),
        api: rt.sim.url,
        apiMode: rt.sim.api.mode,
        failed: rt.failed,
        revision: rt.sim.store.revision,
        loadBalancers: this.loadBalancers(rt.spec.name),
        pods: rt.pods.map((p) => ({
          service: serviceId(p.service),
          pod: p.backend.info.pod,
          zone: p.backend.info.zone,
          node: p.backend.info.node,
          ip: p.backend.info.ip,
          ports: p.backend.info.ports,
          listening: p.backend.listening,
          terminating: p.terminating,
          healthy: p.backend.healthy,
        })),
      })),
    };
  }
}

export type FederationDescription = ReturnType<LocalFederation['describe']>;
