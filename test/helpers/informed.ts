// client-node informers as the suites drive them: each with its callbacks recorded and
// restarted after an error as client-node documents, its cache comparable with what the
// server holds, and the objects the informer tests write.
import {
  CoreV1Api,
  type Informer,
  KubeConfig,
  type KubernetesListObject,
  type KubernetesObject,
  ListWatch,
  makeInformer,
  type ObjectCache,
  type V1Service,
  Watch,
} from '@kubernetes/client-node';
import type { MemberCluster } from '../../src/localfed/member.ts';
import type { KubeObject } from '../../src/localfed/objects.ts';
import { waitFor } from './wait.ts';

export const SERVICES = '/api/v1/services';
export const SLICES = '/apis/discovery.k8s.io/v1/endpointslices';

/** Every informer made and not yet stopped: a test's afterEach stops them. */
export const openInformers: Informed<KubernetesObject>[] = [];

/** A KubeConfig of its own for one cluster: never a shared one with a switched context. */
export function kubeConfig(c: MemberCluster, token?: string): KubeConfig {
  const kc = new KubeConfig();
  const yaml = c.kubeconfig();
  kc.loadFromString(token === undefined ? yaml : yaml.replace(c.token, token));
  return kc;
}

export const keyOf = (o: KubernetesObject) => `${o.metadata?.namespace ?? ''}/${o.metadata?.name}`;

/**
 * An informer with its callbacks recorded. On an error it restarts after a short
 * delay, as client-node documents (its ListWatch stops on any error but a 410).
 */
export class Informed<T extends KubernetesObject> {
  readonly informer: Informer<T> & ObjectCache<T>;
  readonly log: string[] = [];
  readonly errors: unknown[] = [];
  connects = 0;
  lists = 0;
  #stopped = false;
  #restart: NodeJS.Timeout | undefined;

  constructor(
    make: (listFn: () => Promise<KubernetesListObject<T>>) => Informer<T> & ObjectCache<T>,
    listFn: () => Promise<KubernetesListObject<T>>,
    opts: { restart?: boolean } = {},
  ) {
    this.informer = make(() => {
      this.lists++;
      return listFn();
    });
    const i = this.informer;
    i.on('add', (o) => this.log.push(`add ${keyOf(o)}`));
    i.on('update', (o) => this.log.push(`update ${keyOf(o)}`));
    i.on('delete', (o) => this.log.push(`delete ${keyOf(o)}`));
    i.on('connect', () => {
      this.connects++;
    });
    i.on('error', (err) => {
      if (this.#stopped) return; // stop() aborts the watch, which reports an error
      this.errors.push(err);
      if (opts.restart === false) return;
      clearTimeout(this.#restart);
      this.#restart = setTimeout(() => {
        if (!this.#stopped) void i.start();
      }, 100);
    });
    openInformers.push(this as unknown as Informed<KubernetesObject>);
  }

  async start(): Promise<void> {
    await this.informer.start();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#restart);
    await this.informer.stop();
  }

  /** The resourceVersion the informer would watch from (makeInformer builds a ListWatch). */
  latestResourceVersion(): string {
    if (!(this.informer instanceof ListWatch)) throw new Error('the informer is not a ListWatch');
    return this.informer.latestResourceVersion();
  }

  /** `ns/name@rv` for every cached object, sorted. */
  cache(): string[] {
    return this.informer
      .list()
      .map((o) => `${keyOf(o)}@${o.metadata?.resourceVersion}`)
      .sort();
  }
}

/** `ns/name@rv` of every object of a kind on the server, sorted. */
export async function serverState(c: MemberCluster, kind: Kind): Promise<string[]> {
  return (await c.list(kind.apiVersion, kind.kind))
    .map((o) => `${o.metadata.namespace ?? ''}/${o.metadata.name}@${o.metadata.resourceVersion}`)
    .sort();
}

export interface Kind {
  apiVersion: string;
  kind: string;
}
export const SERVICE: Kind = { apiVersion: 'v1', kind: 'Service' };
export const SLICE: Kind = { apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice' };

export function serviceInformer(c: MemberCluster, kc = kubeConfig(c)) {
  const api = kc.makeApiClient(CoreV1Api);
  return new Informed<V1Service>(
    (listFn) => makeInformer(kc, SERVICES, listFn),
    () => api.listServiceForAllNamespaces(),
  );
}

/** A ListWatch with its own Watch, for a short inactivity timeout and other paths. */
export function serviceListWatch(
  c: MemberCluster,
  opts: { path?: string; requestTimeoutMs?: number; restart?: boolean } = {},
) {
  const kc = kubeConfig(c);
  const api = kc.makeApiClient(CoreV1Api);
  const watch = new Watch(kc);
  // Public at runtime, private in the typings: the inactivity timeout of each watch.
  (watch as unknown as { requestTimeoutMs: number }).requestTimeoutMs =
    opts.requestTimeoutMs ?? 2000;
  return new Informed<V1Service>(
    (listFn) => new ListWatch(opts.path ?? SERVICES, watch, listFn, false),
    () => api.listServiceForAllNamespaces(),
    opts.restart === undefined ? {} : { restart: opts.restart },
  );
}

export const svc = (ns: string, name: string, labels: Record<string, string> = {}): KubeObject => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name, namespace: ns, labels },
  spec: { ports: [{ port: 80 }] },
});

export const slice = (ns: string, name: string, addresses: string[]): KubeObject => ({
  apiVersion: 'discovery.k8s.io/v1',
  kind: 'EndpointSlice',
  metadata: { name, namespace: ns, labels: { 'kubernetes.io/service-name': 'web' } },
  addressType: 'IPv4',
  endpoints: addresses.map((a) => ({ addresses: [a], conditions: { ready: true } })),
  ports: [{ name: 'http', port: 8080 }],
});

export const namespace = (name: string): KubeObject => ({
  apiVersion: 'v1',
  kind: 'Namespace',
  metadata: { name },
});

export async function synced<T extends KubernetesObject>(
  i: Informed<T>,
  c: MemberCluster,
  kind: Kind,
  what = 'the cache to match the server',
  timeoutMs = 10_000,
) {
  await waitFor(
    async () => JSON.stringify(i.cache()) === JSON.stringify(await serverState(c, kind)),
    timeoutMs,
    what,
  );
}
