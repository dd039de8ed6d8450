// The local federation: member clusters (simulated or real API servers) with real
// backends, driven by a scenario, and the actions that break and mend it. Every
// action changes the desired state and then reconciles on the cluster's queue:
// backends listen exactly when they should, and each cluster's EndpointSlices say
// exactly which backends are listening.
import { resolve } from 'node:path';
import { stringify } from 'yaml';
import { ActionError } from './action-error.ts';
import { BackendPki, type PkiFiles } from './backend-pki.ts';
import type { Backend, BackendMode } from './backends.ts';
import {
  addPod,
  type ClusterRuntime,
  deploy,
  newRuntime,
  type Pod,
  serviceId,
} from './cluster-runtime.ts';
import { reconcileCluster } from './controllers.ts';
import type { KubeTools } from './kube-tools.ts';
import type { ApiKind, FaultMode, MemberCluster } from './member.ts';
import { createMember } from './member-factory.ts';
import { portServing, type Scenario } from './scenario.ts';
import { applyObjects } from './scenario-objects.ts';

const GATEWAY_GROUP = 'gateway.networking.k8s.io/';
/**
 * The namespace deploy/member-rbac makes in every member, and the default of fedgate's
 * writeBack.lease.namespace (a copy: localfed/ reads little of fedgate).
 */
export const READER_NAMESPACE = 'fedgate-reader';

export { ActionError } from './action-error.ts';

export interface LocalFederationOptions {
  /** Which API server each member runs (default: the simulator). */
  api?: ApiKind;
  /** The binaries for `real` (default: FEDGATE_KUBE_TOOLS, or the build cache). */
  tools?: KubeTools;
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

export class LocalFederation {
  readonly scenario: Scenario;
  /** The clusters' backend CAs and fedgate's client certificate (set by start). */
  pki: BackendPki | undefined;
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
    const api = opts.api ?? 'sim';
    // Found once, before any member starts: finding may mean building.
    const tools = api === 'real' ? (opts.tools ?? (await fed.#findKubeTools())) : undefined;
    // Made while the members start (160-410 ms measured on two cores). Awaited by each
    // member below; the catch only keeps a failure seen by none from going unhandled.
    const pkiMade = BackendPki.create(scenario.clusters.map((c) => c.name));
    pkiMade.catch(() => {});
    try {
      // Members start concurrently: a real one is two child processes taking seconds.
      const made = await Promise.allSettled(
        scenario.clusters.map(async (spec, i) => {
          const octet = block + i;
          const member = await createMember(api, {
            tools,
            name: spec.name,
            host: `127.${octet}.0.1`,
            port: opts.apiPort ?? DEFAULT_API_PORT,
            bookmarkIntervalMs: opts.bookmarkIntervalMs,
            minRequestTimeoutSeconds: opts.minRequestTimeoutSeconds,
            serviceExportCRD: spec.serviceExportCRD,
            gatewayApiChannel: scenario.gatewayAPIChannel,
          });
          const pki = await pkiMade;
          fed.pki = pki;
          const rt = newRuntime(spec, octet, member, pki.forCluster(spec.name));
          fed.#clusters.set(spec.name, rt);
          for (const svc of scenario.services)
            if (svc.clusters.includes(spec.name)) deploy(rt, svc);
          await member.start();
        }),
      );
      const failed = made.find((r) => r.status === 'rejected');
      if (failed) throw failed.reason;
      await fed.#reconcileAll();
      // Where fedgate's write-back keeps its Lease: a real kube-apiserver refuses the
      // Lease in a namespace that does not exist, and no writer is ever elected.
      for (const rt of fed.#runtimes()) {
        await applyObjects(rt.member, [
          {
            apiVersion: 'v1',
            kind: 'Namespace',
            metadata: { name: READER_NAMESPACE },
          },
        ]);
      }
      for (const [name, objects] of Object.entries(scenario.objects)) {
        await applyObjects(fed.#runtime(name).member, objects);
      }
    } catch (e) {
      await fed.stop();
      throw e;
    }
    return fed;
  }

  /** The member clusters, in scenario order. */
  get clusters(): MemberCluster[] {
    return this.scenario.clusters.map((c) => this.#runtime(c.name).member);
  }

  cluster(name: string): MemberCluster {
    return this.#runtime(name).member;
  }

  /** Every pod backend, in every cluster (in scenario order). */
  backends(): Backend[] {
    return this.#runtimes().flatMap((rt) => rt.pods.map((p) => p.backend));
  }

  loadBalancers(cluster: string): { service: string; ip: string; ports: number[] }[] {
    return [...this.#runtime(cluster).lbs].map(([service, lb]) => ({
      service,
      ip: lb.ip,
      ports: lb.ports.map((p) => p.port),
    }));
  }

  /** Resolves once every reconcile queued so far (by actions or ended grace periods) is done. */
  async idle(): Promise<void> {
    await Promise.all(this.#runtimes().map((rt) => rt.queue.idle()));
  }

  /** Waits for what is under way, then stops every member, backend and load balancer. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    await Promise.all(
      [...this.#clusters.values()].map(async (rt) => {
        for (const p of rt.pods) clearTimeout(p.timer);
        await rt.queue.idle();
        await Promise.all([
          rt.member.stop(),
          ...rt.pods.map((p) => p.backend.stop()),
          ...[...rt.lbs.values()].map((lb) => lb.stop()),
        ]);
      }),
    );
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
    await this.#act(rt, async () => {
      rt.failed = true;
      await rt.member.setFault('refuse');
    });
    return this.#log(
      `cluster ${name} failed: API refusing connections, backends and load balancers stopped`,
    );
  }

  async restoreCluster(name: string): Promise<string> {
    const rt = this.#runtime(name);
    await this.#act(rt, () => {
      rt.failed = false;
    });
    // The API serves again only once what it says is current.
    await rt.queue.run(() => rt.member.setFault('up'));
    return this.#log(`cluster ${name} restored`);
  }

  async apiDown(name: string, mode: Exclude<FaultMode, 'up'>): Promise<string> {
    const rt = this.#runtime(name);
    await rt.queue.run(() => rt.member.setFault(mode));
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
    await rt.queue.run(() => rt.member.setFault('up'));
    return this.#log(`API of ${name} up`);
  }

  /** Drops the API's watch history; the member says what that came to on its server. */
  async compact(name: string): Promise<string> {
    const rt = this.#runtime(name);
    return this.#log(await rt.queue.run(() => rt.member.compact()));
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
    let before = 0;
    await this.#act(rt, async () => {
      if (!rt.services.has(id)) deploy(rt, svc, { zone, replicas: 0 });
      const live = rt.pods.filter(
        (p) => serviceId(p.service) === id && p.backend.info.zone === zone && !p.terminating,
      );
      before = live.length;
      for (let i = live.length; i < replicas; i++) addPod(rt, svc, zone);
      for (const pod of live.slice(replicas).reverse()) this.#terminate(rt, pod);
    });
    return this.#log(`${id} in ${cluster}/${zone}: ${before} → ${replicas} replicas`);
  }

  /** Flips the health endpoint (and gRPC health) of pods matched by name, address, zone or cluster. */
  setHealth(target: string, healthy: boolean): string {
    const match = this.#podsMatching(target);
    for (const p of match) p.backend.healthy = healthy;
    return this.#log(
      `health of ${match.length} pod(s) matching ${target}: ${healthy ? 'passing' : 'failing'}`,
    );
  }

  /** How matched pods answer everything but health checks (BackendMode). */
  setMode(target: string, mode: BackendMode): string {
    const match = this.#podsMatching(target);
    for (const p of match) p.backend.mode = mode;
    const what = {
      ok: 'answering',
      error503: 'failing with 503 (gRPC: UNAVAILABLE)',
      reset: 'resetting connections',
    }[mode];
    return this.#log(`${match.length} pod(s) matching ${target}: ${what}`);
  }

  #podsMatching(target: string): Pod[] {
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
    return match;
  }

  #log(message: string): string {
    this.#emit(message);
    return message;
  }

  // ---- reconciling -----------------------------------------------------------

  /** Changes the cluster's desired state and reconciles, on its queue, after what is queued. */
  #act(rt: ClusterRuntime, change: () => Promise<void> | void): Promise<void> {
    return rt.queue.run(async () => {
      await change();
      await this.#reconcileNow(rt);
    });
  }

  /**
   * Reconciles after every change made so far. Changes that come while a reconcile
   * waits its turn share it: a hundred grace periods ending at once are one reconcile.
   */
  #reconcile(rt: ClusterRuntime): Promise<void> {
    if (rt.pendingReconcile) return rt.pendingReconcile;
    const queued = rt.queue.run(() => {
      rt.pendingReconcile = undefined;
      return this.#reconcileNow(rt);
    });
    rt.pendingReconcile = queued;
    return queued;
  }

  async #reconcileAll(): Promise<void> {
    await Promise.all(this.#runtimes().map((rt) => this.#reconcile(rt)));
  }

  #reconcileNow(rt: ClusterRuntime): Promise<void> {
    if (this.#stopped) return Promise.resolve();
    return reconcileCluster(rt, (zone) => !this.#failedZones.has(zone));
  }

  /** Terminating: still serving, no longer ready; gone after the grace period. */
  #terminate(rt: ClusterRuntime, pod: Pod): void {
    pod.terminating = true;
    pod.timer = setTimeout(() => {
      pod.gone = true;
      this.#reconcile(rt).catch((e: unknown) =>
        this.#emit(`reconcile of ${rt.spec.name} failed: ${String(e)}`),
      );
    }, this.scenario.terminationGraceSeconds * 1000);
  }

  /** Loaded only for `real`, so the simulator's start (npm start) pays nothing for it. */
  async #findKubeTools(): Promise<KubeTools> {
    const { findKubeTools } = await import('./find-kube-tools.ts');
    return findKubeTools((line) => this.#emit(line));
  }

  /** The clusters' runtimes in scenario order (they are made concurrently). */
  #runtimes(): ClusterRuntime[] {
    return this.scenario.clusters.map((c) => this.#runtime(c.name));
  }

  // ---- what is running -----------------------------------------------------

  /**
   * A fedgate configuration for this federation, as YAML. `kubeconfigs` maps
   * each cluster to its kubeconfig path as the config should write it.
   */
  fedgateConfig(kubeconfigs: Record<string, string>, adminListen = '127.0.0.1:9464'): string {
    const clusters = this.#runtimes().map((rt) => ({
      name: rt.spec.name,
      kubeconfig: kubeconfigs[rt.spec.name] ?? `${rt.spec.name}.kubeconfig`,
      region: rt.spec.region,
    }));
    // Services whose pods serve only gRPC are checked with grpc.health.v1 (which
    // `localfed ctl health` flips), whatever health.active.type the others get.
    const grpc = this.scenario.services.filter((svc) =>
      svc.ports.every((p) => portServing(p).protocol === 'grpc'),
    );
    const checks = Object.fromEntries(
      grpc.map((svc) => [`${svc.namespace}/${svc.name}`, { type: 'grpc' }]),
    );
    // The clusters the scenario puts Gateway API objects in are fedgate's config clusters.
    const gatewayClusters = Object.entries(this.scenario.objects)
      .filter(([, objects]) => objects.some((o) => o.apiVersion.startsWith(GATEWAY_GROUP)))
      .map(([name]) => name);
    return stringify({
      federation: { ...this.scenario.federation },
      clusters,
      admin: { listen: adminListen },
      ...(grpc.length > 0 ? { health: { active: { services: checks } } } : {}),
      ...(gatewayClusters.length > 0 ? { gatewayAPI: { clusters: gatewayClusters } } : {}),
    });
  }

  /** Writes the backend CAs and fedgate's client certificate under `dir`. */
  writePki(dir: string): Promise<PkiFiles> {
    if (!this.pki) throw new ActionError('the federation has not started');
    return this.pki.writeFiles(resolve(dir));
  }

  /** What is running and what is broken (`localfed ctl status`, the demo's page). */
  async describe() {
    return {
      federation: this.scenario.federation,
      failedZones: [...this.#failedZones],
      clusters: await Promise.all(
        this.#runtimes().map(async (rt) => ({
          name: rt.spec.name,
          region: rt.spec.region,
          zones: rt.spec.zones.map((z) => z.name),
          api: rt.member.url,
          apiKind: rt.member.api,
          apiMode: rt.member.fault,
          failed: rt.failed,
          // A real member answers this from kube-apiserver itself, behind any fault.
          revision: await rt.member.revision().catch(() => 'unavailable'),
          loadBalancers: this.loadBalancers(rt.spec.name),
          pods: rt.pods.map((p) => ({
            service: serviceId(p.service),
            pod: p.backend.info.pod,
            zone: p.backend.info.zone,
            node: p.backend.info.node,
            ip: p.backend.info.ip,
            ports: p.backend.info.ports,
            /** What each port serves, by port; a port not listed serves HTTP in clear. */
            serving: p.backend.info.serving ?? {},
            listening: p.backend.listening,
            terminating: p.terminating,
            healthy: p.backend.healthy,
          })),
        })),
      ),
    };
  }
}

export type FederationDescription = Awaited<ReturnType<LocalFederation['describe']>>;
