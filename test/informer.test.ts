// The real @kubernetes/client-node 2.x informer (list, then watch, relist on 410)
// and its generated API clients against the simulator, through a kubeconfig.
import {
  CoreV1Api,
  DiscoveryV1Api,
  type Informer,
  KubeConfig,
  type KubernetesListObject,
  type KubernetesObject,
  ListWatch,
  makeInformer,
  type ObjectCache,
  type V1EndpointSlice,
  type V1Service,
  Watch,
} from '@kubernetes/client-node';
import { afterEach, describe, expect, it } from 'vitest';
import { SimCluster, type SimClusterOptions } from '../src/localfed/cluster.ts';
import type { FaultMode } from '../src/localfed/member.ts';
import type { KubeObject } from '../src/localfed/objects.ts';
import { sleep, waitFor } from './helpers/wait.ts';

const HOST = '127.0.0.1';
const SERVICES = '/api/v1/services';
const SLICES = '/apis/discovery.k8s.io/v1/endpointslices';

const clusters: SimCluster[] = [];
const informers: Informed<KubernetesObject>[] = [];

async function cluster(name: string, opts: Partial<SimClusterOptions> = {}): Promise<SimCluster> {
  const c = await SimCluster.create({ name, host: HOST, port: 0, ...opts });
  clusters.push(c);
  await c.start();
  return c;
}

afterEach(async () => {
  for (const i of informers.splice(0)) await i.stop();
  for (const c of clusters.splice(0)) await c.stop();
});

/** A KubeConfig of its own for one cluster: never a shared one with a switched context. */
function kubeConfig(c: SimCluster, token?: string): KubeConfig {
  const kc = new KubeConfig();
  const yaml = c.kubeconfig();
  kc.loadFromString(token === undefined ? yaml : yaml.replace(c.token, token));
  return kc;
}

const keyOf = (o: KubernetesObject) => `${o.metadata?.namespace ?? ''}/${o.metadata?.name}`;

/**
 * An informer with its callbacks recorded. On an error it restarts after a short
 * delay, as client-node documents (its ListWatch stops on any error but a 410).
 */
class Informed<T extends KubernetesObject> {
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
    informers.push(this as unknown as Informed<KubernetesObject>);
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

/** `ns/name@rv` of every object of a type on the server, sorted. */
function serverState(c: SimCluster, resource: string): string[] {
  return c.store
    .list(resource)
    .map((o) => `${o.metadata.namespace ?? ''}/${o.metadata.name}@${o.metadata.resourceVersion}`)
    .sort();
}

function serviceInformer(c: SimCluster, kc = kubeConfig(c)) {
  const api = kc.makeApiClient(CoreV1Api);
  return new Informed<V1Service>(
    (listFn) => makeInformer(kc, SERVICES, listFn),
    () => api.listServiceForAllNamespaces(),
  );
}

/** A ListWatch with its own Watch, for a short inactivity timeout and other paths. */
function serviceListWatch(
  c: SimCluster,
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

const svc = (ns: string, name: string, labels: Record<string, string> = {}): KubeObject => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name, namespace: ns, labels },
  spec: { ports: [{ port: 80 }] },
});

const slice = (ns: string, name: string, addresses: string[]): KubeObject => ({
  apiVersion: 'discovery.k8s.io/v1',
  kind: 'EndpointSlice',
  metadata: { name, namespace: ns, labels: { 'kubernetes.io/service-name': 'web' } },
  addressType: 'IPv4',
  endpoints: addresses.map((a) => ({ addresses: [a], conditions: { ready: true } })),
  ports: [{ name: 'http', port: 8080 }],
});

const namespace = (name: string): KubeObject => ({
  apiVersion: 'v1',
  kind: 'Namespace',
  metadata: { name },
});

async function synced<T extends KubernetesObject>(
  i: Informed<T>,
  c: SimCluster,
  resource: string,
  what = 'the cache to match the server',
  timeoutMs = 10_000,
) {
  await waitFor(
    () => JSON.stringify(i.cache()) === JSON.stringify(serverState(c, resource)),
    timeoutMs,
    what,
  );
}

describe('services informer (makeInformer)', () => {
  it('lists, then sees add, update and delete, once each', async () => {
    const c = await cluster('svc');
    c.apply(namespace('shop'));
    c.apply(svc('shop', 'web'));
    const i = serviceInformer(c);
    await i.start();
    await synced(i, c, '/services', 'the initial list');
    expect(i.log.sort()).toEqual(['add default/kubernetes', 'add shop/web']);
    expect(i.informer.get('web', 'shop')?.spec?.ports?.[0]?.port).toBe(80);
    expect(i.latestResourceVersion()).toBe(String(c.store.revision));
    i.log.length = 0;

    c.apply(svc('shop', 'api'));
    await waitFor(() => i.log.length === 1, 5000, 'the add');
    c.apply(svc('shop', 'web', { version: '2' }));
    await waitFor(() => i.log.length === 2, 5000, 'the update');
    c.remove('v1', 'Service', 'shop', 'api');
    await waitFor(() => i.log.length === 3, 5000, 'the delete');
    expect(i.log).toEqual(['add shop/api', 'update shop/web', 'delete shop/api']);
    expect(i.informer.get('web', 'shop')?.metadata?.labels).toEqual({ version: '2' });
    expect(i.informer.get('api', 'shop')).toBeUndefined();
    await synced(i, c, '/services');

    // A write that changes nothing is no event.
    c.apply(svc('shop', 'web', { version: '2' }));
    await sleep(200);
    expect(i.log).toHaveLength(3);
    expect(i.errors).toEqual([]);
  });
});

describe('endpointslices informer (makeInformer)', () => {
  it('lists the kubernetes slice and follows changes through DiscoveryV1Api', async () => {
    const c = await cluster('slices');
    const kc = kubeConfig(c);
    const api = kc.makeApiClient(DiscoveryV1Api);
    const i = new Informed<V1EndpointSlice>(
      (listFn) => makeInformer(kc, SLICES, listFn),
      () => api.listEndpointSliceForAllNamespaces(),
    );
    await i.start();
    await synced(i, c, 'discovery.k8s.io/endpointslices', 'the initial list');
    expect(i.log).toEqual(['add default/kubernetes']);
    const k = i.informer.get('kubernetes', 'default');
    expect(k?.endpoints?.[0]?.addresses).toEqual([HOST]);
    expect(k?.ports?.[0]?.port).toBe(c.api.port);

    c.apply(namespace('shop'));
    c.apply(slice('shop', 'web-a', ['127.10.0.1']));
    c.apply(slice('shop', 'web-a', ['127.10.0.1', '127.10.0.2']));
    c.apply(slice('shop', 'web-b', ['127.10.1.1']));
    c.remove('discovery.k8s.io/v1', 'EndpointSlice', 'shop', 'web-b');
    await waitFor(() => i.log.length === 5, 5000, 'four slice events');
    expect(i.log.slice(1)).toEqual([
      'add shop/web-a',
      'update shop/web-a',
      'add shop/web-b',
      'delete shop/web-b',
    ]);
    expect(i.informer.get('web-a', 'shop')?.endpoints?.map((e) => e.addresses[0])).toEqual([
      '127.10.0.1',
      '127.10.0.2',
    ]);
    await synced(i, c, 'discovery.k8s.io/endpointslices');
  });
});

describe('bookmarks', () => {
  it('advance latestResourceVersion without any object change', async () => {
    const c = await cluster('bookmarks', { bookmarkIntervalMs: 200 });
    const i = serviceListWatch(c, { path: `${SERVICES}?allowWatchBookmarks=true` });
    await i.start();
    await synced(i, c, '/services', 'the initial list');
    const listed = Number(i.latestResourceVersion());
    i.log.length = 0;

    // Other types move the revision on; no Service changes.
    c.apply(namespace('elsewhere'));
    c.apply(slice('elsewhere', 's', ['127.10.0.1']));
    const target = c.store.revision;
    expect(target).toBeGreaterThan(listed);
    await waitFor(
      () => Number(i.latestResourceVersion()) >= target,
      3000,
      `latestResourceVersion to reach ${target}`,
    );
    expect(i.log).toEqual([]);
    expect(i.lists).toBe(1);
    expect(i.errors).toEqual([]);
  });

  it('are not sent without allowWatchBookmarks', async () => {
    const c = await cluster('no-bookmarks', { bookmarkIntervalMs: 100 });
    const i = serviceListWatch(c);
    await i.start();
    await synced(i, c, '/services', 'the initial list');
    const listed = i.latestResourceVersion();
    c.apply(namespace('elsewhere'));
    await sleep(500);
    expect(i.latestResourceVersion()).toBe(listed);
  });
});

describe('410 Gone', () => {
  it('relists after compaction, with nothing lost and nothing duplicated', async () => {
    const c = await cluster('relist');
    c.apply(namespace('shop'));
    for (const n of ['a', 'b', 'c']) c.apply(svc('shop', n));
    const i = serviceListWatch(c);
    await i.start();
    await synced(i, c, '/services', 'the initial list');
    expect(i.lists).toBe(1);
    i.log.length = 0;

    await c.setFault('drop');
    await waitFor(() => i.errors.length >= 1, 5000, 'the informer to see the dropped watch');
    // All in one tick: no watch can be served between these changes and the compaction.
    c.apply(svc('shop', 'a', { v: '2' }));
    c.remove('v1', 'Service', 'shop', 'b');
    c.apply(svc('shop', 'd'));
    c.apply(svc('shop', 'e'));
    c.remove('v1', 'Service', 'shop', 'e');
    c.compact();
    await c.setFault('up');

    await synced(i, c, '/services', 'the cache after the relist');
    expect(i.lists).toBeGreaterThanOrEqual(2);
    // Let anything late arrive before counting.
    const after = c.store.revision;
    c.apply(svc('shop', 'z'));
    await waitFor(() => i.log.includes('add shop/z'), 5000, 'a later add');
    expect(Number(i.latestResourceVersion())).toBeGreaterThan(after);
    const log = i.log.filter((l) => l !== 'add shop/z');
    expect(log.sort()).toEqual(['add shop/d', 'delete shop/b', 'update shop/a']);
    expect(i.informer.get('a', 'shop')?.metadata?.labels).toEqual({ v: '2' });
    await synced(i, c, '/services');
  });
});

describe('reconnection after an outage', () => {
  const modes: FaultMode[] = ['refuse', 'hang', 'drop'];

  it.each(modes)('%s: changes made during the outage show up after up', async (mode) => {
    const c = await cluster(`outage-${mode}`);
    c.apply(namespace('shop'));
    c.apply(svc('shop', 'keep'));
    c.apply(svc('shop', 'change'));
    c.apply(svc('shop', 'drop-me'));
    const i = serviceListWatch(c, { requestTimeoutMs: 1500 });
    await i.start();
    await synced(i, c, '/services', 'the initial list');
    i.log.length = 0;
    const connects = i.connects;

    await c.setFault(mode);
    c.apply(svc('shop', 'change', { v: '2' }));
    c.remove('v1', 'Service', 'shop', 'drop-me');
    c.apply(svc('shop', 'new'));
    if (mode === 'hang') {
      // Nothing arrives, and the client's inactivity timeout makes it reconnect (into the hang).
      await waitFor(() => i.connects > connects, 5000, 'a reconnect after the inactivity timeout');
      expect(i.log).toEqual([]);
    } else {
      await waitFor(() => i.errors.length >= 1, 5000, 'the informer to see the outage');
      await sleep(300);
    }
    if (mode !== 'drop') expect(i.log).toEqual([]);
    await c.setFault('up');

    await synced(i, c, '/services', `the cache after ${mode} and up`);
    expect(i.log.sort()).toEqual(['add shop/new', 'delete shop/drop-me', 'update shop/change']);
    expect(i.informer.get('change', 'shop')?.metadata?.labels).toEqual({ v: '2' });
    // The watch is live again.
    c.apply(svc('shop', 'after'));
    await waitFor(() => i.log.includes('add shop/after'), 5000, 'a live add after up');
  });
});

describe('authentication', () => {
  it('a wrong token gets 401 from the API client, the informer and a raw watch', async () => {
    const c = await cluster('auth');
    const kc = kubeConfig(c, 'not-the-token');
    const api = kc.makeApiClient(CoreV1Api);
    const err = await api.listServiceForAllNamespaces().then(
      () => undefined,
      (e: { code?: number }) => e,
    );
    expect(err?.code).toBe(401);

    const i = new Informed<V1Service>(
      (listFn) => makeInformer(kc, SERVICES, listFn),
      () => api.listServiceForAllNamespaces(),
      { restart: false },
    );
    await i.start();
    await waitFor(() => i.errors.length >= 1, 5000, 'the informer error');
    const e = i.errors[0] as { code?: number; statusCode?: number };
    expect(e.code ?? e.statusCode).toBe(401);
    expect(i.cache()).toEqual([]);

    const done = new Promise<{ statusCode?: number } | null>((resolve) => {
      void new Watch(kc).watch(SERVICES, {}, () => {}, resolve);
    });
    expect((await done)?.statusCode).toBe(401);

    // The right token works.
    const ok = await kubeConfig(c).makeApiClient(CoreV1Api).listServiceForAllNamespaces();
    expect(ok.items.map((s) => s.metadata?.name)).toEqual(['kubernetes']);
  });
});

describe('paging through the generated API client', () => {
  it('limit and _continue return every item once, with remainingItemCount', async () => {
    const c = await cluster('paging');
    c.apply(namespace('shop'));
    for (let n = 0; n < 6; n++) c.apply(svc('shop', `s${n}`));
    const api = kubeConfig(c).makeApiClient(CoreV1Api);

    const first = await api.listServiceForAllNamespaces({ limit: 2 });
    expect(first.items.map((s) => s.metadata?.name)).toEqual(['kubernetes', 's0']);
    expect(first.metadata?.remainingItemCount).toBe(5);
    const rv = first.metadata?.resourceVersion;
    c.apply(svc('shop', 's00')); // after the snapshot: not in the pages

    const names = first.items.map(keyOf);
    let token = first.metadata?._continue;
    let pages = 1;
    while (token) {
      const page = await api.listServiceForAllNamespaces({ limit: 2, _continue: token });
      expect(page.metadata?.resourceVersion).toBe(rv);
      names.push(...page.items.map(keyOf));
      token = page.metadata?._continue;
      pages++;
      expect(pages).toBeLessThan(10);
    }
    expect(pages).toBe(4);
    expect(names).toEqual([
      'default/kubernetes',
      ...['s0', 's1', 's2', 's3', 's4', 's5'].map((n) => `shop/${n}`),
    ]);

    const ns = await api.listNamespacedService({ namespace: 'shop', limit: 10 });
    expect(ns.items).toHaveLength(7);
    expect(ns.metadata?._continue).toBeUndefined();
  });
});

describe('two clusters at once', () => {
  it('each informer, with its own KubeConfig, sees only its own cluster', async () => {
    const east = await cluster('east');
    const west = await cluster('west');
    expect(east.api.port).not.toBe(west.api.port);
    for (const [c, name] of [
      [east, 'only-east'],
      [west, 'only-west'],
    ] as const) {
      c.apply(namespace('shop'));
      c.apply(svc('shop', name));
    }
    const ie = serviceInformer(east);
    const iw = serviceInformer(west);
    await Promise.all([ie.start(), iw.start()]);
    await synced(ie, east, '/services', 'east initial');
    await synced(iw, west, '/services', 'west initial');
    expect(ie.informer.get('only-east', 'shop')).toBeDefined();
    expect(ie.informer.get('only-west', 'shop')).toBeUndefined();
    expect(iw.informer.get('only-west', 'shop')).toBeDefined();
    expect(iw.informer.get('only-east', 'shop')).toBeUndefined();

    east.apply(svc('shop', 'later-east'));
    west.apply(svc('shop', 'later-west'));
    west.remove('v1', 'Service', 'shop', 'only-west');
    await synced(ie, east, '/services', 'east after changes');
    await synced(iw, west, '/services', 'west after changes');
    expect(ie.log.filter((l) => l.includes('later'))).toEqual(['add shop/later-east']);
    expect(iw.log.filter((l) => !l.startsWith('add default/'))).toEqual([
      'add shop/only-west',
      'add shop/later-west',
      'delete shop/only-west',
    ]);

    // An outage of one cluster leaves the other's informer alone.
    await west.setFault('refuse');
    east.apply(svc('shop', 'during-west-outage'));
    await waitFor(
      () => ie.informer.get('during-west-outage', 'shop') !== undefined,
      5000,
      'east to keep following',
    );
    expect(ie.errors).toEqual([]);
  });
});
