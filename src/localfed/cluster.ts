// One simulated member cluster: its store, API semantics, certificates, token and
// HTTPS API server, bootstrapped with what every real cluster has (the system
// namespaces and the `kubernetes` Service), and a kubeconfig to reach it.
import { randomBytes } from 'node:crypto';
import type { SimUser } from './access.ts';
import { ApiServer } from './apiserver.ts';
import type { GatewayApiChannel } from './gateway-schema.ts';
import { type KubeconfigParams, kubeconfigYaml, writeKubeconfigIn } from './kubeconfig.ts';
import type { FaultMode } from './member.ts';
import type { KubeObject } from './objects.ts';
import { makeClusterPki } from './pki.ts';
import { Registry } from './registry.ts';
import { servedAs, typeOfKind } from './resources.ts';
import { ApiError } from './status.ts';
import { ClusterStore } from './store.ts';

export interface SimClusterOptions {
  name: string;
  /** Loopback address the API server binds. */
  host: string;
  /** 0 picks a free port. */
  port?: number | undefined;
  token?: string | undefined;
  bookmarkIntervalMs?: number | undefined;
  minRequestTimeoutSeconds?: number | undefined;
  historyLimit?: number | undefined;
  /** False serves no multicluster.x-k8s.io group, as a cluster without the MCS CRDs. Default true. */
  serviceExportCRD?: boolean | undefined;
  /** Tokens beside the admin's, each allowed only what its rules say (RBAC). */
  users?: readonly SimUser[] | undefined;
  /** The Gateway API CRDs' channel: its schemas prune, default and validate. Default standard. */
  gatewayApiChannel?: GatewayApiChannel | undefined;
}

export const MCS_GROUP = 'multicluster.x-k8s.io';

export const SYSTEM_NAMESPACES = ['default', 'kube-system', 'kube-public', 'kube-node-lease'];

export class SimCluster {
  readonly name: string;
  readonly store: ClusterStore;
  readonly registry: Registry;
  readonly api: ApiServer;
  readonly token: string;
  readonly caCert: string;

  private constructor(
    name: string,
    store: ClusterStore,
    registry: Registry,
    api: ApiServer,
    token: string,
    caCert: string,
  ) {
    this.name = name;
    this.store = store;
    this.registry = registry;
    this.api = api;
    this.token = token;
    this.caCert = caCert;
  }

  /** Makes the cluster (certificates, token, bootstrap objects); `start()` opens its API. */
  static async create(opts: SimClusterOptions): Promise<SimCluster> {
    const store = new ClusterStore({ historyLimit: opts.historyLimit });
    const registry = new Registry(store, undefined, opts.gatewayApiChannel);
    const token = opts.token ?? randomBytes(24).toString('base64url');
    const pki = await makeClusterPki(opts.name, [opts.host]);
    const api = new ApiServer({
      name: opts.name,
      registry,
      host: opts.host,
      port: opts.port ?? 0,
      token,
      tls: { key: pki.serverKey, cert: pki.serverCert },
      bookmarkIntervalMs: opts.bookmarkIntervalMs,
      minRequestTimeoutSeconds: opts.minRequestTimeoutSeconds,
      absentGroups: opts.serviceExportCRD === false ? [MCS_GROUP] : [],
      users: opts.users,
    });
    const cluster = new SimCluster(opts.name, store, registry, api, token, pki.caCert);
    cluster.#bootstrap();
    return cluster;
  }

  #bootstrap(): void {
    for (const name of SYSTEM_NAMESPACES) {
      this.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
    }
    this.apply({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: {
        name: 'kubernetes',
        namespace: 'default',
        labels: { component: 'apiserver', provider: 'kubernetes' },
      },
      spec: {
        clusterIP: '127.255.0.1',
        ports: [{ name: 'https', port: 443, targetPort: 6443, protocol: 'TCP' }],
      },
    });
  }

  get url(): string {
    return this.api.url;
  }

  async start(): Promise<void> {
    await this.api.start();
    // The kubernetes Service's endpoint is the API server itself, once its port is known.
    this.apply({
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
      endpoints: [{ addresses: [this.api.host], conditions: { ready: true } }],
      ports: [{ name: 'https', port: this.api.port, protocol: 'TCP' }],
    });
  }

  async stop(): Promise<void> {
    await this.api.stop();
  }

  setFault(mode: FaultMode): Promise<void> {
    return this.api.setMode(mode);
  }

  compact(): void {
    this.store.compact();
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

  get(
    apiVersion: string,
    kind: string,
    namespace: string | undefined,
    name: string,
  ): KubeObject | undefined {
    const t = mustType(apiVersion, kind);
    try {
      return servedAs(t, this.registry.get(t, namespace, name));
    } catch (e) {
      if (e instanceof ApiError && e.code === 404) return undefined;
      throw e;
    }
  }

  /** In-process create-or-update with the API's semantics (defaults, validation, no-op detection). */
  apply(obj: KubeObject): KubeObject {
    const t = mustType(obj.apiVersion, obj.kind);
    const existing = this.get(obj.apiVersion, obj.kind, obj.metadata.namespace, obj.metadata.name);
    if (!existing) {
      const created = servedAs(t, this.registry.create(t, obj.metadata.namespace, obj));
      if (!t.statusSubresource || obj.status === undefined) return created;
      return servedAs(
        t,
        this.registry.update(
          t,
          obj.metadata.namespace,
          obj.metadata.name,
          { ...created, status: obj.status },
          { subresource: 'status' },
        ),
      );
    }
    const next = {
      ...obj,
      metadata: { ...obj.metadata, resourceVersion: undefined },
    } as KubeObject;
    delete next.metadata.resourceVersion;
    if (t.statusSubresource && obj.status !== undefined) {
      this.registry.update(t, obj.metadata.namespace, obj.metadata.name, next, {
        subresource: 'status',
      });
    }
    return servedAs(t, this.registry.update(t, obj.metadata.namespace, obj.metadata.name, next));
  }

  remove(apiVersion: string, kind: string, namespace: string | undefined, name: string): boolean {
    const t = mustType(apiVersion, kind);
    try {
      this.registry.delete(t, namespace, name);
      return true;
    } catch (e) {
      if (e instanceof ApiError && e.code === 404) return false;
      throw e;
    }
  }
}

function mustType(apiVersion: string, kind: string) {
  const t = typeOfKind(apiVersion, kind);
  if (!t) throw new Error(`localfed does not serve ${kind} in ${apiVersion}`);
  return t;
}
