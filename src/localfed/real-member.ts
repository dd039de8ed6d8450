// A member cluster on a real kube-apiserver and etcd (child processes, control-plane.ts),
// reached through a relay at the member's own address (api-relay.ts) that carries the
// faults. localfed's own reads and writes go straight to kube-apiserver, past the relay,
// so its controllers keep working while a fault is on, as the simulator's in-process
// calls do. src/localfed/README.md ("Real API servers") says what differs.
import { randomBytes } from 'node:crypto';
import { ApiRelay } from './api-relay.ts';
import { KubeControlPlane } from './control-plane.ts';
import { installGatewayApiCrds } from './gateway-api-crds.ts';
import type { GatewayApiChannel } from './gateway-schema.ts';
import { isKubeObject, KubeRest, mustType, resourcePath, toApiError } from './kube-rest.ts';
import type { KubeTools } from './kube-tools.ts';
import { type KubeconfigParams, kubeconfigYaml, writeKubeconfigIn } from './kubeconfig.ts';
import { hasLoopbackEndpoint, putSlice, sliceToStore } from './loopback-slices.ts';
import type { FaultMode, MemberCluster } from './member.ts';
import type { KubeObject } from './objects.ts';
import { makeClusterPki } from './pki.ts';
import { compactBehindRelay } from './real-compaction.ts';
import type { ResourceType } from './resources.ts';
import { installMcsCrds } from './service-export-crd.ts';

export interface RealMemberOptions {
  name: string;
  /** Loopback address the relay binds (what the kubeconfig names). */
  host: string;
  /** The relay's port; 0 picks a free one. */
  port?: number | undefined;
  token?: string | undefined;
  tools?: KubeTools | undefined;
  /** False leaves the ServiceExport CRD out, as a cluster without the MCS API. Default true. */
  serviceExportCRD?: boolean | undefined;
  /** False leaves the Gateway API CRDs out, as a cluster without them. Default true. */
  gatewayApiCRDs?: boolean | undefined;
  /** The Gateway API CRDs' release channel installed. Default standard. */
  gatewayApiChannel?: GatewayApiChannel | undefined;
  /** kube-apiserver --min-request-timeout: watches without timeoutSeconds end in [min, 2*min). */
  minRequestTimeoutSeconds?: number | undefined;
  /** Extra kube-apiserver flags, `--name=value`. */
  apiserverArgs?: string[] | undefined;
  /** Extra etcd flags, `--name=value`. */
  etcdArgs?: string[] | undefined;
}

const MAX_CONFLICT_RETRIES = 5;

/**
 * kube-apiserver sends a watch a BOOKMARK about once a minute, and only when the watch
 * cache of that resource has seen a revision newer than the watch's: on a quiet resource
 * only etcd's progress notifications tell it, every 10 min by default. At 2 s, bookmarks
 * come every ~60 s as on a busy cluster (measured: src/localfed/README.md).
 */
const ETCD_PROGRESS_NOTIFY = '2s';

/** As the simulator's: loopback, outside every localfed cluster block; `kubernetes` gets 127.255.0.1. */
export const REAL_SERVICE_CLUSTER_IP_RANGE = '127.255.0.0/16';

export class RealMember implements MemberCluster {
  readonly api = 'real';
  readonly name: string;
  readonly token: string;
  readonly caCert: string;
  readonly #opts: RealMemberOptions;
  readonly #relay: ApiRelay;
  #cp: KubeControlPlane | undefined;
  #rest: KubeRest | undefined;

  private constructor(opts: RealMemberOptions, tls: { key: string; cert: string }, ca: string) {
    this.#opts = opts;
    this.name = opts.name;
    this.token = opts.token ?? randomBytes(24).toString('base64url');
    this.caCert = ca;
    this.#relay = new ApiRelay({ host: opts.host, port: opts.port ?? 0, tls });
  }

  /** Makes the member's certificates and token; `start()` runs its processes. */
  static async create(opts: RealMemberOptions): Promise<RealMember> {
    const pki = await makeClusterPki(opts.name, [opts.host]);
    return new RealMember(opts, { key: pki.serverKey, cert: pki.serverCert }, pki.caCert);
  }

  get url(): string {
    return this.#relay.url;
  }

  get fault(): FaultMode {
    return this.#relay.mode;
  }

  /** Watches through the relay: open now, and started in all (for tests, as the simulator's openWatches). */
  get relayWatches(): { open: number; started: number } {
    return { open: this.#relay.openWatches, started: this.#relay.watchesStarted };
  }

  /** The control plane (for kubectl, the etcd URL, the log directory); undefined before start. */
  get controlPlane(): KubeControlPlane | undefined {
    return this.#cp;
  }

  get #api(): KubeRest {
    if (!this.#rest) throw new Error(`member ${this.name} is not started`);
    return this.#rest;
  }

  async start(): Promise<void> {
    if (this.#cp) return;
    const args = [...(this.#opts.apiserverArgs ?? [])];
    if (this.#opts.minRequestTimeoutSeconds !== undefined)
      args.push(`--min-request-timeout=${this.#opts.minRequestTimeoutSeconds}`);
    const cp = await KubeControlPlane.start({
      tools: this.#opts.tools,
      name: this.name,
      token: this.token,
      serviceClusterIpRange: REAL_SERVICE_CLUSTER_IP_RANGE,
      apiserverArgs: args,
      etcdArgs: [
        `--watch-progress-notify-interval=${ETCD_PROGRESS_NOTIFY}`,
        ...(this.#opts.etcdArgs ?? []),
      ],
    });
    this.#cp = cp;
    try {
      this.#rest = new KubeRest(cp.url, this.token, cp.ca);
      this.#relay.setUpstream({ url: cp.url, ca: cp.ca });
      await this.#relay.start();
      if (this.#opts.serviceExportCRD !== false) {
        await installMcsCrds(
          this.#api,
          [cp.tools.serviceExportCrd, cp.tools.serviceImportCrd],
          this.name,
        );
      }
      if (this.#opts.gatewayApiCRDs !== false) {
        const channel = this.#opts.gatewayApiChannel ?? 'standard';
        const { gatewayApiCrds, gatewayApiExperimentalCrds } = cp.tools;
        const dir = channel === 'experimental' ? gatewayApiExperimentalCrds : gatewayApiCrds;
        await installGatewayApiCrds(this.#api, dir, this.name, channel);
      }
      await this.#publishApiEndpoint();
    } catch (e) {
      await this.stop();
      throw e;
    }
  }

  async stop(): Promise<void> {
    await this.#relay.close();
    this.#rest?.close();
    await this.#cp?.stop();
    this.#cp = undefined;
    this.#rest = undefined;
  }

  async get(
    apiVersion: string,
    kind: string,
    namespace: string | undefined,
    name: string,
  ): Promise<KubeObject | undefined> {
    const path = resourcePath(mustType(apiVersion, kind), namespace, name);
    const r = await this.#api.send('GET', path);
    if (r.status === 404) return undefined;
    if (r.status === 200 && isKubeObject(r.body)) return r.body;
    throw toApiError(r, `GET ${path}`);
  }

  async list(apiVersion: string, kind: string, namespace?: string): Promise<KubeObject[]> {
    const t = mustType(apiVersion, kind);
    const body = (await this.#api.call('GET', resourcePath(t, namespace))) as {
      items?: KubeObject[];
    };
    // A list's items carry no kind or apiVersion on the wire; the simulator's do.
    return (body.items ?? []).map((o) => ({ ...o, apiVersion, kind }));
  }

  async apply(obj: KubeObject): Promise<KubeObject> {
    const t = mustType(obj.apiVersion, obj.kind);
    const { namespace, name } = obj.metadata;
    const path = resourcePath(t, namespace, name);
    const next = withoutResourceVersion(obj);
    const existing = await this.get(obj.apiVersion, obj.kind, namespace, name);
    if (hasLoopbackEndpoint(obj)) return this.#storeSlice(t, obj, existing);
    let current: KubeObject;
    if (existing === undefined) {
      current = (await this.#api.call('POST', resourcePath(t, namespace), next)) as KubeObject;
    } else {
      current = await this.#update(path, next, existing);
    }
    if (t.statusSubresource && obj.status !== undefined)
      current = await this.#update(`${path}/status`, { ...current, status: obj.status }, current);
    return current;
  }

  /** See loopback-slices.ts: what kube-apiserver refuses goes into etcd, and is read back through it. */
  async #storeSlice(
    t: ResourceType,
    obj: KubeObject,
    existing: KubeObject | undefined,
  ): Promise<KubeObject> {
    const cp = this.#cp;
    if (!cp) throw new Error(`member ${this.name} is not started`);
    const next = sliceToStore(t, obj, existing);
    if ('unchanged' in next) return next.unchanged;
    const revision = await putSlice(cp.etcdUrl, next.store);
    const path = resourcePath(t, obj.metadata.namespace, obj.metadata.name);
    // A read without resourceVersion is consistent, so it sees the write at once.
    const stored = (await this.#api.call('GET', path)) as KubeObject;
    if (Number(stored.metadata.resourceVersion) < revision)
      throw new Error(`member ${this.name}: ${path} read back older than its write`);
    return stored;
  }

  /**
   * PUT, with the stored resourceVersion: custom resources refuse an update without one,
   * and a conflict (someone wrote in between) reads and tries again. A PUT that changes
   * nothing makes no new resourceVersion: kube-apiserver skips the etcd write itself
   * (seen with 1.37.2 for a Service and a ServiceExport), so no comparison is needed here.
   */
  async #update(path: string, body: KubeObject, current: KubeObject): Promise<KubeObject> {
    let stored = current;
    for (let attempt = 1; ; attempt++) {
      const next = {
        ...body,
        metadata: { ...body.metadata, resourceVersion: stored.metadata.resourceVersion },
      };
      const r = await this.#api.send('PUT', path, next);
      if (r.status === 200 && isKubeObject(r.body)) return r.body;
      if (r.status !== 409 || attempt === MAX_CONFLICT_RETRIES) throw toApiError(r, `PUT ${path}`);
      stored = (await this.#api.call('GET', path.replace(/\/status$/, ''))) as KubeObject;
    }
  }

  async remove(
    apiVersion: string,
    kind: string,
    namespace: string | undefined,
    name: string,
  ): Promise<boolean> {
    const path = resourcePath(mustType(apiVersion, kind), namespace, name);
    const r = await this.#api.send('DELETE', path);
    if (r.status === 404) return false;
    if (r.status === 200 || r.status === 202) return true;
    throw toApiError(r, `DELETE ${path}`);
  }

  async revision(): Promise<string> {
    // A list without resourceVersion is a consistent read: its resourceVersion is etcd's
    // current revision.
    const body = (await this.#api.call('GET', '/api/v1/namespaces?limit=1')) as {
      metadata?: { resourceVersion?: string };
    };
    const rv = body.metadata?.resourceVersion;
    if (!rv) throw new Error(`member ${this.name}: a list carried no resourceVersion`);
    return rv;
  }

  setFault(mode: FaultMode): Promise<void> {
    return this.#relay.setMode(mode);
  }

  /** See real-compaction.ts: etcd compacted, kube-apiserver restarted behind the relay's drain. */
  async compact(): Promise<string> {
    const cp = this.#cp;
    if (!cp) throw new Error(`member ${this.name} is not started`);
    return compactBehindRelay(this.name, this.url, cp, this.#relay, this.#api);
  }

  kubeconfig(): string {
    return kubeconfigYaml(this.#kubeconfigParams());
  }

  /** Writes `<dir>/<name>.kubeconfig` (mode 0600) and returns its path. */
  writeKubeconfig(dir: string): Promise<string> {
    return writeKubeconfigIn(dir, this.#kubeconfigParams());
  }

  #kubeconfigParams(): KubeconfigParams {
    return { cluster: this.name, server: this.url, caCert: this.caCert, token: this.token };
  }

  /** The `kubernetes` Service's endpoint is the relay, as the simulator's is its API server (no reconciler runs). */
  async #publishApiEndpoint(): Promise<void> {
    await this.apply({
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: {
        name: 'kubernetes',
        namespace: 'default',
        labels: {
          'kubernetes.io/service-name': 'kubernetes',
          'endpointslice.kubernetes.io/managed-by': 'endpointslicemirroring-controller.k8s.io',
        },
      },
      addressType: 'IPv4',
      endpoints: [{ addresses: [this.#relay.host], conditions: { ready: true } }],
      ports: [{ name: 'https', port: this.#relay.port, protocol: 'TCP' }],
    });
  }
}

function withoutResourceVersion(obj: KubeObject): KubeObject {
  const metadata = { ...obj.metadata };
  delete metadata.resourceVersion;
  return { ...obj, metadata };
}
