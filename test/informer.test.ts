// The real @kubernetes/client-node 2.x informer (list, then watch, relist on 410) and
// its generated API clients through a kubeconfig, against both API servers: the
// simulator and a real kube-apiserver (faults from the member's relay).
import {
  CoreV1Api,
  DiscoveryV1Api,
  type KubeConfig,
  makeInformer,
  type V1EndpointSlice,
  type V1Service,
  Watch,
} from '@kubernetes/client-node';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import {
  API_KINDS,
  type ApiKind,
  type FaultMode,
  type MemberCluster,
} from '../src/localfed/member.ts';
import {
  Informed,
  keyOf,
  kubeConfig,
  namespace,
  openInformers,
  SERVICE,
  SERVICES,
  SLICE,
  SLICES,
  serviceInformer,
  serviceListWatch,
  slice,
  svc,
  synced,
} from './helpers/informed.ts';
import { memberRequest } from './helpers/member-request.ts';
import { startMember } from './helpers/members.ts';
import { forbidden, grantRead, READER_USER, readerToken, removeReader } from './helpers/rbac.ts';
import { type MemberOptions, MemberPool } from './helpers/shared-members.ts';
import { sleep, waitFor } from './helpers/wait.ts';

// Real members are shared by the file's tests: each gives back a clean cluster.
const pool = new MemberPool(startMember);
const taken: { member: MemberCluster; shared: boolean }[] = [];

/** A started member of `api` for this test (a shared one on a real server). */
async function cluster(
  api: ApiKind,
  name: string,
  opts: MemberOptions = {},
): Promise<MemberCluster> {
  const t = await pool.take(api, name, opts);
  taken.push(t);
  return t.member;
}

afterEach(async () => {
  for (const i of openInformers.splice(0)) await i.stop();
  for (const t of taken.splice(0)) await pool.giveBack(t.member, t.shared);
});
afterAll(async () => {
  await pool.stopAll();
});

/**
 * The status code each client-node path gets with `kc`'s credentials: the generated
 * API client, an informer (not restarted) and a raw Watch; and what the informer cached.
 */
async function refusals(kc: KubeConfig) {
  const client = kc.makeApiClient(CoreV1Api);
  const err = await client.listServiceForAllNamespaces().then(
    () => undefined,
    (e: { code?: number }) => e,
  );
  const i = new Informed<V1Service>(
    (listFn) => makeInformer(kc, SERVICES, listFn),
    () => client.listServiceForAllNamespaces(),
    { restart: false },
  );
  await i.start();
  await waitFor(() => i.errors.length >= 1, 5000, 'the informer error');
  const e = i.errors[0] as { code?: number; statusCode?: number };
  const done = new Promise<{ statusCode?: number } | null>((resolve) => {
    void new Watch(kc).watch(SERVICES, {}, () => {}, resolve);
  });
  return {
    client: err?.code,
    informer: e.code ?? e.statusCode,
    watch: (await done)?.statusCode,
    cached: i.cache().length,
  };
}

describe.each(API_KINDS)('client-node informers on %s', (api) => {
  const real = api === 'real';
  // A real member's watch cache bookmarks a quiet watch about every 60 s (REAL_WATCH in
  // discovery-env.ts): a client inactivity timeout shorter than that cuts healthy watches
  // (ListWatch then resumes from its resourceVersion). The simulator bookmarks every 250 ms.
  const quietMs = real ? 90_000 : 2000;
  // What a hang needs to be noticed by that inactivity timeout, kept short on real too.
  const hangMs = real ? 5000 : 1500;

  describe('services informer (makeInformer)', () => {
    it('lists, then sees add, update and delete, once each', async () => {
      const c = await cluster(api, 'east');
      await c.apply(namespace('shop'));
      await c.apply(svc('shop', 'web'));
      const before = Number(await c.revision());
      const i = serviceInformer(c);
      await i.start();
      await synced(i, c, SERVICE, 'the initial list');
      expect(i.log.sort()).toEqual(['add default/kubernetes', 'add shop/web']);
      expect(i.informer.get('web', 'shop')?.spec?.ports?.[0]?.port).toBe(80);
      // The list's resourceVersion is the store's revision when it was served (a real
      // kube-apiserver writes its own leases meanwhile: not necessarily `before`).
      const listed = Number(i.latestResourceVersion());
      expect(listed).toBeGreaterThanOrEqual(before);
      expect(listed).toBeLessThanOrEqual(Number(await c.revision()));
      i.log.length = 0;

      await c.apply(svc('shop', 'api'));
      await waitFor(() => i.log.length === 1, 5000, 'the add');
      await c.apply(svc('shop', 'web', { version: '2' }));
      await waitFor(() => i.log.length === 2, 5000, 'the update');
      await c.remove('v1', 'Service', 'shop', 'api');
      await waitFor(() => i.log.length === 3, 5000, 'the delete');
      expect(i.log).toEqual(['add shop/api', 'update shop/web', 'delete shop/api']);
      expect(i.informer.get('web', 'shop')?.metadata?.labels).toEqual({ version: '2' });
      expect(i.informer.get('api', 'shop')).toBeUndefined();
      await synced(i, c, SERVICE);

      // A write that changes nothing is no event.
      await c.apply(svc('shop', 'web', { version: '2' }));
      await sleep(500);
      expect(i.log).toHaveLength(3);
      expect(i.errors).toEqual([]);
    });
  });

  describe('endpointslices informer (makeInformer)', () => {
    it('lists the kubernetes slice and follows changes through DiscoveryV1Api', async () => {
      const c = await cluster(api, 'east');
      const kc = kubeConfig(c);
      const client = kc.makeApiClient(DiscoveryV1Api);
      const i = new Informed<V1EndpointSlice>(
        (listFn) => makeInformer(kc, SLICES, listFn),
        () => client.listEndpointSliceForAllNamespaces(),
      );
      await i.start();
      await synced(i, c, SLICE, 'the initial list');
      expect(i.log).toEqual(['add default/kubernetes']);
      // The kubernetes Service's endpoint is the address kubeconfigs name.
      const k = i.informer.get('kubernetes', 'default');
      const url = new URL(c.url);
      expect(k?.endpoints?.[0]?.addresses).toEqual([url.hostname]);
      expect(k?.ports?.[0]?.port).toBe(Number(url.port));

      await c.apply(namespace('shop'));
      await c.apply(slice('shop', 'web-a', ['127.10.0.1']));
      await c.apply(slice('shop', 'web-a', ['127.10.0.1', '127.10.0.2']));
      await c.apply(slice('shop', 'web-b', ['127.10.1.1']));
      await c.remove('discovery.k8s.io/v1', 'EndpointSlice', 'shop', 'web-b');
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
      await synced(i, c, SLICE);
    });
  });

  describe('bookmarks', () => {
    it(
      'advance latestResourceVersion without any object change, only with allowWatchBookmarks',
      async () => {
        const c = await cluster(api, 'east', { bookmarkIntervalMs: 200 });
        const withBookmarks = serviceListWatch(c, {
          path: `${SERVICES}?allowWatchBookmarks=true`,
          requestTimeoutMs: quietMs,
        });
        const without = serviceListWatch(c, { requestTimeoutMs: quietMs });
        await withBookmarks.start();
        await without.start();
        await synced(withBookmarks, c, SERVICE, 'the initial list');
        await synced(without, c, SERVICE, 'the initial list without bookmarks');
        const listed = Number(withBookmarks.latestResourceVersion());
        const listedWithout = without.latestResourceVersion();
        withBookmarks.log.length = 0;

        // Other kinds move the revision on; no Service changes.
        await c.apply(namespace('elsewhere'));
        await c.apply(slice('elsewhere', 's', ['127.10.0.1']));
        const target = Number(await c.revision());
        expect(target).toBeGreaterThan(listed);
        await waitFor(
          () => Number(withBookmarks.latestResourceVersion()) >= target,
          real ? 150_000 : 3000,
          `latestResourceVersion to reach ${target}`,
          real ? 500 : 20,
        );
        expect(withBookmarks.log).toEqual([]);
        expect(withBookmarks.lists).toBe(1);
        expect(withBookmarks.errors).toEqual([]);
        // All that while, the watch without bookmarks heard nothing.
        expect(without.latestResourceVersion()).toBe(listedWithout);
        expect(without.lists).toBe(1);
      },
      real ? 180_000 : 60_000,
    );
  });

  describe('410 Gone', () => {
    it('relists after compaction, with nothing lost and nothing duplicated', async () => {
      const c = await cluster(api, 'east');
      await c.apply(namespace('shop'));
      for (const n of ['a', 'b', 'c']) await c.apply(svc('shop', n));
      const i = serviceListWatch(c, { requestTimeoutMs: quietMs });
      await i.start();
      await synced(i, c, SERVICE, 'the initial list');
      expect(i.lists).toBe(1);
      i.log.length = 0;

      await c.setFault('drop');
      await waitFor(() => i.errors.length >= 1, 5000, 'the informer to see the dropped watch');
      // While every watch is cut: changes, then the history goes. The informer's next
      // watch resumes from a resourceVersion that is gone.
      await c.apply(svc('shop', 'a', { v: '2' }));
      await c.remove('v1', 'Service', 'shop', 'b');
      await c.apply(svc('shop', 'd'));
      await c.apply(svc('shop', 'e'));
      await c.remove('v1', 'Service', 'shop', 'e');
      await c.compact();
      await c.setFault('up');

      await synced(i, c, SERVICE, 'the cache after the relist', 30_000);
      expect(i.lists).toBeGreaterThanOrEqual(2);
      // Let anything late arrive before counting.
      const after = Number(await c.revision());
      await c.apply(svc('shop', 'z'));
      await waitFor(() => i.log.includes('add shop/z'), 5000, 'a later add');
      expect(Number(i.latestResourceVersion())).toBeGreaterThan(after);
      const log = i.log.filter((l) => l !== 'add shop/z');
      expect(log.sort()).toEqual(['add shop/d', 'delete shop/b', 'update shop/a']);
      expect(i.informer.get('a', 'shop')?.metadata?.labels).toEqual({ v: '2' });
      await synced(i, c, SERVICE);
    });
  });

  describe('reconnection after an outage', () => {
    const modes: FaultMode[] = ['refuse', 'hang', 'drop'];

    it.each(modes)('%s: changes made during the outage show up after up', async (mode) => {
      const c = await cluster(api, 'east');
      await c.apply(namespace('shop'));
      await c.apply(svc('shop', 'keep'));
      await c.apply(svc('shop', 'change'));
      await c.apply(svc('shop', 'drop-me'));
      const i = serviceListWatch(c, { requestTimeoutMs: mode === 'hang' ? hangMs : quietMs });
      await i.start();
      await synced(i, c, SERVICE, 'the initial list');
      i.log.length = 0;

      await c.setFault(mode);
      const connects = i.connects;
      await c.apply(svc('shop', 'change', { v: '2' }));
      await c.remove('v1', 'Service', 'shop', 'drop-me');
      await c.apply(svc('shop', 'new'));
      if (mode === 'hang') {
        // Nothing arrives, and the client's inactivity timeout makes it reconnect (into the hang).
        await waitFor(
          () => i.connects > connects,
          hangMs * 3,
          'a reconnect after the inactivity timeout',
        );
        expect(i.log).toEqual([]);
      } else {
        await waitFor(() => i.errors.length >= 1, 5000, 'the informer to see the outage');
        await sleep(300);
      }
      if (mode !== 'drop') expect(i.log).toEqual([]);
      await c.setFault('up');

      await synced(i, c, SERVICE, `the cache after ${mode} and up`, 30_000);
      expect(i.log.sort()).toEqual(['add shop/new', 'delete shop/drop-me', 'update shop/change']);
      expect(i.informer.get('change', 'shop')?.metadata?.labels).toEqual({ v: '2' });
      // The watch is live again.
      await c.apply(svc('shop', 'after'));
      await waitFor(() => i.log.includes('add shop/after'), 5000, 'a live add after up');
    });
  });

  describe('authentication', () => {
    it('a wrong token gets 401 from the API client, the informer and a raw watch', async () => {
      const c = await cluster(api, 'east');
      const kc = kubeConfig(c, 'not-the-token');
      // The Status kube-apiserver sends for a token it does not know.
      const raw = await memberRequest(c, 'GET', SERVICES, { token: 'not-the-token' });
      expect(raw).toEqual({ status: 401, body: UNAUTHORIZED });
      expect(await refusals(kc)).toEqual({ client: 401, informer: 401, watch: 401, cached: 0 });

      // The right token works.
      const ok = await kubeConfig(c).makeApiClient(CoreV1Api).listServiceForAllNamespaces();
      expect(ok.items.map((s) => s.metadata?.name)).toEqual(['kubernetes']);
    });
  });

  describe('paging through the generated API client', () => {
    it('limit and _continue return every item once, with remainingItemCount', async () => {
      const c = await cluster(api, 'east');
      await c.apply(namespace('shop'));
      for (let n = 0; n < 6; n++) await c.apply(svc('shop', `s${n}`));
      const client = kubeConfig(c).makeApiClient(CoreV1Api);

      const first = await client.listServiceForAllNamespaces({ limit: 2 });
      expect(first.items.map((s) => s.metadata?.name)).toEqual(['kubernetes', 's0']);
      expect(first.metadata?.remainingItemCount).toBe(5);
      const rv = first.metadata?.resourceVersion;
      await c.apply(svc('shop', 's00')); // after the snapshot: not in the pages

      const names = first.items.map(keyOf);
      let token = first.metadata?._continue;
      let pages = 1;
      while (token) {
        const page = await client.listServiceForAllNamespaces({ limit: 2, _continue: token });
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

      const ns = await client.listNamespacedService({ namespace: 'shop', limit: 10 });
      expect(ns.items).toHaveLength(7);
      expect(ns.metadata?._continue).toBeUndefined();
    });
  });

  describe('two clusters at once', () => {
    it('each informer, with its own KubeConfig, sees only its own cluster', async () => {
      const east = await cluster(api, 'east');
      const west = await cluster(api, 'west');
      expect(east.url).not.toBe(west.url);
      for (const [c, name] of [
        [east, 'only-east'],
        [west, 'only-west'],
      ] as const) {
        await c.apply(namespace('shop'));
        await c.apply(svc('shop', name));
      }
      const ie = serviceInformer(east);
      const iw = serviceInformer(west);
      await Promise.all([ie.start(), iw.start()]);
      await synced(ie, east, SERVICE, 'east initial');
      await synced(iw, west, SERVICE, 'west initial');
      expect(ie.informer.get('only-east', 'shop')).toBeDefined();
      expect(ie.informer.get('only-west', 'shop')).toBeUndefined();
      expect(iw.informer.get('only-west', 'shop')).toBeDefined();
      expect(iw.informer.get('only-east', 'shop')).toBeUndefined();

      await east.apply(svc('shop', 'later-east'));
      await west.apply(svc('shop', 'later-west'));
      await west.remove('v1', 'Service', 'shop', 'only-west');
      await synced(ie, east, SERVICE, 'east after changes');
      await synced(iw, west, SERVICE, 'west after changes');
      expect(ie.log.filter((l) => l.includes('later'))).toEqual(['add shop/later-east']);
      expect(iw.log.filter((l) => !l.startsWith('add default/'))).toEqual([
        'add shop/only-west',
        'add shop/later-west',
        'delete shop/only-west',
      ]);

      // An outage of one cluster leaves the other's informer alone.
      await west.setFault('refuse');
      await east.apply(svc('shop', 'during-west-outage'));
      await waitFor(
        () => ie.informer.get('during-west-outage', 'shop') !== undefined,
        5000,
        'east to keep following',
      );
      expect(ie.errors).toEqual([]);
    });
  });
});

/** The Status kube-apiserver 1.37 answers a request with an unknown bearer token. */
const UNAUTHORIZED = {
  kind: 'Status',
  apiVersion: 'v1',
  metadata: {},
  status: 'Failure',
  message: 'Unauthorized',
  reason: 'Unauthorized',
  code: 401,
};

// The simulator knows one token and authorizes everything it accepts: a token the server
// knows but no RBAC rule names exists only on a real server.
describe('authorization on real', () => {
  it('a token without RBAC gets 403 from the API client, the informer and a raw watch, and lists once granted', async () => {
    const c = await cluster('real', 'east');
    try {
      const token = await readerToken(c);
      expect(await memberRequest(c, 'GET', SERVICES, { token })).toEqual({
        status: 403,
        body: forbidden(READER_USER, 'list', 'services'),
      });
      expect(await memberRequest(c, 'GET', `${SERVICES}?watch=true`, { token })).toEqual({
        status: 403,
        body: forbidden(READER_USER, 'watch', 'services'),
      });
      const kc = kubeConfig(c, token);
      const client = kc.makeApiClient(CoreV1Api);
      expect(await refusals(kc)).toEqual({ client: 403, informer: 403, watch: 403, cached: 0 });

      // Granted what deploy/member-rbac grants, the same token lists.
      await grantRead(c);
      const ok = await waitFor(
        () => client.listServiceForAllNamespaces().catch(() => undefined),
        10_000,
        'the grant to take effect',
      );
      expect(ok.items.map((s) => s.metadata?.name)).toEqual(['kubernetes']);
    } finally {
      await removeReader(c);
    }
  });
});
