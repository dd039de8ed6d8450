// The simulated API server over raw HTTPS: wire shapes, status codes and watch
// streams exactly as a client sees them, with no Kubernetes client in between.
import type { ClientRequest, IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { SimCluster } from '../src/localfed/cluster.ts';
import type { KubeObject } from '../src/localfed/objects.ts';
import { rawCall } from './helpers/raw-api.ts';
import { waitFor } from './helpers/wait.ts';

const HOST = '127.0.0.1';

interface Resp {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
  // biome-ignore lint/suspicious/noExplicitAny: response bodies are checked field by field
  json: any;
}

interface ReqOpts {
  body?: unknown;
  /** null sends no Authorization header; undefined sends the cluster's token. */
  token?: string | null;
  contentType?: string;
  timeoutMs?: number;
}

async function call(
  c: SimCluster,
  method: string,
  path: string,
  opts: ReqOpts = {},
): Promise<Resp> {
  const target = { url: c.url, ca: c.caCert, token: c.token };
  return rawCall(target, { method, path, timeoutMs: 5000, ...opts });
}

interface WatchEvent {
  type: string;
  object: KubeObject & { code?: number; reason?: string };
}

/** A raw watch: every line the server sent, and whether (and how) the stream ended. */
class RawWatch {
  readonly events: WatchEvent[] = [];
  status = 0;
  ended = false;
  error: Error | undefined;
  readonly endedAt: Promise<number>;
  #req: ClientRequest | undefined;
  #buf = '';

  constructor(c: SimCluster, path: string, ready: (w: RawWatch) => void, fail: (e: Error) => void) {
    let settle: (t: number) => void = () => {};
    this.endedAt = new Promise((r) => {
      settle = r;
    });
    const finish = (err?: Error) => {
      if (this.ended) return;
      this.ended = true;
      this.error = err;
      settle(Date.now());
    };
    this.#req = httpsRequest(
      {
        host: c.api.host,
        port: c.api.port,
        path,
        headers: { Authorization: `Bearer ${c.token}`, Accept: 'application/json' },
        ca: c.caCert,
        agent: false,
      },
      (res) => {
        this.status = res.statusCode ?? 0;
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          this.#buf += chunk;
          let nl = this.#buf.indexOf('\n');
          while (nl >= 0) {
            const line = this.#buf.slice(0, nl);
            this.#buf = this.#buf.slice(nl + 1);
            if (line.trim()) this.events.push(JSON.parse(line) as WatchEvent);
            nl = this.#buf.indexOf('\n');
          }
        });
        res.on('end', () => finish());
        res.on('error', (e: Error) => finish(e));
        res.on('close', () => finish(res.complete ? undefined : new Error('aborted')));
        ready(this);
      },
    );
    this.#req.on('error', (e: Error) => {
      finish(e);
      fail(e);
    });
    this.#req.end();
  }

  close(): void {
    this.#req?.destroy();
  }
}

const openWatches = new Set<RawWatch>();

function watch(c: SimCluster, path: string): Promise<RawWatch> {
  return new Promise((resolve, reject) => {
    const w = new RawWatch(c, path, resolve, reject);
    openWatches.add(w);
  });
}

const svc = (ns: string, name: string, labels: Record<string, string> = {}): KubeObject => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name, namespace: ns, labels },
  spec: { ports: [{ port: 80 }] },
});

const namespace = (name: string): KubeObject => ({
  apiVersion: 'v1',
  kind: 'Namespace',
  metadata: { name },
});

let c: SimCluster;

beforeAll(async () => {
  c = await SimCluster.create({ name: 'http', host: HOST, port: 0, bookmarkIntervalMs: 200 });
  await c.start();
});

afterEach(() => {
  for (const w of openWatches) w.close();
  openWatches.clear();
});

afterAll(async () => {
  await c?.stop();
});

describe('discovery', () => {
  it('serves /version, /api and /api/v1', async () => {
    const version = await call(c, 'GET', '/version');
    expect(version.status).toBe(200);
    expect(version.json).toMatchObject({ major: '1', gitVersion: expect.stringMatching(/^v1\./) });

    const api = await call(c, 'GET', '/api');
    expect(api.json).toMatchObject({ kind: 'APIVersions', versions: ['v1'] });

    const v1 = await call(c, 'GET', '/api/v1');
    expect(v1.json.kind).toBe('APIResourceList');
    expect(v1.json.groupVersion).toBe('v1');
    const names = v1.json.resources.map((r: { name: string }) => r.name);
    expect(names).toEqual(
      expect.arrayContaining(['namespaces', 'services', 'services/status', 'nodes']),
    );
    const services = v1.json.resources.find((r: { name: string }) => r.name === 'services');
    expect(services).toMatchObject({
      kind: 'Service',
      namespaced: true,
      shortNames: ['svc'],
      verbs: expect.arrayContaining(['list', 'watch', 'create', 'patch']),
    });
  });

  it('serves /apis and the discovery and multicluster groups', async () => {
    const apis = await call(c, 'GET', '/apis');
    expect(apis.json.kind).toBe('APIGroupList');
    const groups = apis.json.groups.map((g: { name: string }) => g.name);
    expect(groups).toEqual(expect.arrayContaining(['discovery.k8s.io', 'multicluster.x-k8s.io']));

    const group = await call(c, 'GET', '/apis/discovery.k8s.io');
    expect(group.json).toMatchObject({
      kind: 'APIGroup',
      name: 'discovery.k8s.io',
      preferredVersion: { groupVersion: 'discovery.k8s.io/v1', version: 'v1' },
    });

    const disc = await call(c, 'GET', '/apis/discovery.k8s.io/v1');
    expect(disc.json.groupVersion).toBe('discovery.k8s.io/v1');
    expect(disc.json.resources).toContainEqual(
      expect.objectContaining({ name: 'endpointslices', kind: 'EndpointSlice', namespaced: true }),
    );

    const mc = await call(c, 'GET', '/apis/multicluster.x-k8s.io/v1alpha1');
    expect(mc.json.groupVersion).toBe('multicluster.x-k8s.io/v1alpha1');
    expect(mc.json.resources).toContainEqual(
      expect.objectContaining({ name: 'serviceexports', kind: 'ServiceExport' }),
    );
  });
});

describe('errors', () => {
  it('answers 401 with a Status for a wrong token', async () => {
    for (const token of ['wrong-token', `${c.token}x`]) {
      const r = await call(c, 'GET', '/api/v1/services', { token });
      expect(r.status).toBe(401);
      expect(r.headers['content-type']).toBe('application/json');
      expect(r.json).toEqual({
        kind: 'Status',
        apiVersion: 'v1',
        metadata: {},
        status: 'Failure',
        message: 'Unauthorized',
        reason: 'Unauthorized',
        code: 401,
      });
    }
  });

  it('serves a request without a token as system:anonymous: health and version only (403 else)', async () => {
    expect((await call(c, 'GET', '/version', { token: null })).status).toBe(200);
    expect((await call(c, 'GET', '/healthz', { token: null })).text).toBe('ok');
    const r = await call(c, 'GET', '/api/v1/services', { token: null });
    expect(r.status).toBe(403);
    expect(r.json).toMatchObject({ reason: 'Forbidden', details: { kind: 'services' }, code: 403 });
    expect(r.json.message).toBe(
      'services is forbidden: User "system:anonymous" cannot list resource "services" in API group "" at the cluster scope',
    );
    expect((await call(c, 'GET', '/api', { token: null })).status).toBe(403);
  });

  it('answers 404 with a Status for a missing object', async () => {
    const r = await call(c, 'GET', '/api/v1/namespaces/default/services/nope');
    expect(r.status).toBe(404);
    expect(r.json).toEqual({
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: 'services "nope" not found',
      reason: 'NotFound',
      details: { name: 'nope', kind: 'services' },
      code: 404,
    });
    const slice = await call(
      c,
      'GET',
      '/apis/discovery.k8s.io/v1/namespaces/default/endpointslices/x',
    );
    expect(slice.json.message).toBe('endpointslices.discovery.k8s.io "x" not found');
    expect(slice.json.details).toEqual({
      name: 'x',
      kind: 'endpointslices',
      group: 'discovery.k8s.io',
    });
  });

  it('answers 404 page text for a path outside the served groups, a NotFound Status inside them', async () => {
    for (const path of ['/nope', '/apis/example.com/v1']) {
      const r = await call(c, 'GET', path);
      expect(r.status, path).toBe(404);
      expect(r.headers['content-type']).toMatch(/^text\/plain/);
      expect(r.text).toBe('404 page not found\n');
    }
    for (const path of ['/api/v1/widgets', '/api/v1/nodes/a/b/c/d', '/apis/discovery.k8s.io/v2']) {
      const r = await call(c, 'GET', path);
      expect(r.status, path).toBe(404);
      expect(r.json).toEqual({
        kind: 'Status',
        apiVersion: 'v1',
        metadata: {},
        status: 'Failure',
        message: 'the server could not find the requested resource',
        reason: 'NotFound',
        details: {},
        code: 404,
      });
    }
  });

  it('answers 400 for bad selectors', async () => {
    const bad = await call(c, 'GET', '/api/v1/services?labelSelector=a%20b');
    expect(bad.status).toBe(400);
    expect(bad.json).toMatchObject({ kind: 'Status', reason: 'BadRequest', code: 400 });
    const field = await call(c, 'GET', '/api/v1/services?fieldSelector=spec.foo%3D1');
    expect(field.status).toBe(400);
    expect(field.json.message).toBe('field label not supported: spec.foo');
    // Services also select on spec.clusterIP and spec.type, as kube-apiserver's do.
    const ip = await call(c, 'GET', '/api/v1/services?fieldSelector=spec.clusterIP%3D127.255.0.1');
    expect(ip.json.items.map((o: KubeObject) => o.metadata.name)).toEqual(['kubernetes']);
  });
});

describe('list', () => {
  beforeAll(() => {
    c.apply(namespace('lists'));
    c.apply(svc('lists', 'web', { tier: 'front', env: 'prod' }));
    c.apply(svc('lists', 'api', { tier: 'back', env: 'prod' }));
    c.apply(svc('lists', 'db', { tier: 'back', env: 'dev' }));
  });

  const names = (r: Resp) => r.json.items.map((o: KubeObject) => o.metadata.name);

  it('lists one namespace, sorted by name, with the list kind and a resourceVersion', async () => {
    const r = await call(c, 'GET', '/api/v1/namespaces/lists/services');
    expect(r.status).toBe(200);
    expect(r.json.kind).toBe('ServiceList');
    expect(r.json.apiVersion).toBe('v1');
    expect(r.json.metadata.resourceVersion).toBe(String(c.store.revision));
    expect(names(r)).toEqual(['api', 'db', 'web']);
    // As kube-apiserver: a built-in type's list items carry no kind or apiVersion.
    expect(r.json.items[0].kind).toBeUndefined();
    expect(r.json.items[0].apiVersion).toBeUndefined();
  });

  it('filters by labelSelector', async () => {
    const sel = (s: string) =>
      call(c, 'GET', `/api/v1/namespaces/lists/services?labelSelector=${encodeURIComponent(s)}`);
    expect(names(await sel('tier=back'))).toEqual(['api', 'db']);
    expect(names(await sel('tier=back,env!=dev'))).toEqual(['api']);
    expect(names(await sel('env in (dev,staging)'))).toEqual(['db']);
    expect(names(await sel('!tier'))).toEqual([]);
  });

  it('filters by fieldSelector, across namespaces', async () => {
    const r = await call(
      c,
      'GET',
      `/api/v1/services?fieldSelector=${encodeURIComponent('metadata.name=web')}`,
    );
    expect(
      r.json.items.map((o: KubeObject) => `${o.metadata.namespace}/${o.metadata.name}`),
    ).toEqual(['lists/web']);
    const notDefault = await call(
      c,
      'GET',
      `/api/v1/services?fieldSelector=${encodeURIComponent('metadata.namespace!=default')}`,
    );
    expect(notDefault.json.items.every((o: KubeObject) => o.metadata.namespace !== 'default')).toBe(
      true,
    );
    expect(names(notDefault)).toEqual(expect.arrayContaining(['api', 'db', 'web']));
  });

  it('pages with limit and continue over a consistent snapshot', async () => {
    c.apply(namespace('paging'));
    for (let i = 0; i < 7; i++) c.apply(svc('paging', `s${i}`));
    const base = '/api/v1/namespaces/paging/services';
    const first = await call(c, 'GET', `${base}?limit=3`);
    expect(first.status).toBe(200);
    expect(first.json.items).toHaveLength(3);
    expect(first.json.metadata.remainingItemCount).toBe(4);
    const snapshotRv = first.json.metadata.resourceVersion;
    const seen: string[] = names(first);
    let token: string | undefined = first.json.metadata.continue;
    expect(token).toBeTruthy();

    // Changes between pages are not in the remaining pages: a list is one snapshot.
    c.apply(svc('paging', 's00'));
    c.apply(svc('paging', 's9'));
    c.remove('v1', 'Service', 'paging', 's6');
    c.apply(svc('paging', 's5', { changed: 'yes' }));

    let pages = 1;
    while (token) {
      const r = await call(c, 'GET', `${base}?limit=3&continue=${encodeURIComponent(token)}`);
      expect(r.status).toBe(200);
      expect(r.json.metadata.resourceVersion).toBe(snapshotRv);
      for (const o of r.json.items as KubeObject[]) {
        if (o.metadata.name === 's5') expect(o.metadata.labels).toBeUndefined();
      }
      seen.push(...names(r));
      token = r.json.metadata.continue;
      if (token) expect(r.json.metadata.remainingItemCount).toBe(1);
      else expect(r.json.metadata.remainingItemCount).toBeUndefined();
      pages++;
    }
    expect(pages).toBe(3);
    expect(seen).toEqual(['s0', 's1', 's2', 's3', 's4', 's5', 's6']);

    // A fresh list sees the changes.
    const now = await call(c, 'GET', base);
    expect(names(now)).toEqual(['s0', 's00', 's1', 's2', 's3', 's4', 's5', 's9']);
  });

  it('pages with a selector, without remainingItemCount', async () => {
    const r = await call(
      c,
      'GET',
      `/api/v1/services?limit=1&labelSelector=${encodeURIComponent('tier=back')}`,
    );
    expect(names(r)).toEqual(['api']);
    expect(r.json.metadata.continue).toBeTruthy();
    expect(r.json.metadata.remainingItemCount).toBeUndefined();
    const next = await call(
      c,
      'GET',
      `/api/v1/services?limit=1&labelSelector=${encodeURIComponent('tier=back')}&continue=${r.json.metadata.continue}`,
    );
    expect(names(next)).toEqual(['db']);
    expect(next.json.metadata.continue).toBeUndefined();
  });

  it('answers 410 Expired for a continue token after compaction', async () => {
    const first = await call(c, 'GET', '/api/v1/namespaces/lists/services?limit=1');
    const token = first.json.metadata.continue;
    expect(token).toBeTruthy();
    c.apply(svc('lists', 'late'));
    c.compact();
    const r = await call(c, 'GET', `/api/v1/namespaces/lists/services?limit=1&continue=${token}`);
    expect(r.status).toBe(410);
    expect(r.json).toMatchObject({
      kind: 'Status',
      status: 'Failure',
      reason: 'Expired',
      code: 410,
      metadata: { continue: expect.any(String) },
    });
    expect(r.json.message).toContain('The provided continue parameter is too old');
    c.remove('v1', 'Service', 'lists', 'late');
  });

  it('answers 400 for a malformed continue token', async () => {
    const r = await call(c, 'GET', '/api/v1/services?limit=1&continue=bm9wZQ');
    expect(r.status).toBe(400);
    expect(r.json.message).toContain('continue key is not valid');
  });

  it('lists an old revision with resourceVersionMatch=Exact, and 410 once compacted', async () => {
    c.apply(namespace('exact'));
    c.apply(svc('exact', 'a', { v: '1' }));
    const oldRv = c.store.revision;
    c.apply(svc('exact', 'a', { v: '2' }));
    c.apply(svc('exact', 'b'));
    const base = '/api/v1/namespaces/exact/services';

    const then = await call(
      c,
      'GET',
      `${base}?resourceVersion=${oldRv}&resourceVersionMatch=Exact`,
    );
    expect(then.status).toBe(200);
    expect(then.json.metadata.resourceVersion).toBe(String(oldRv));
    expect(then.json.items.map((o: KubeObject) => [o.metadata.name, o.metadata.labels])).toEqual([
      ['a', { v: '1' }],
    ]);

    const notOlder = await call(
      c,
      'GET',
      `${base}?resourceVersion=${oldRv}&resourceVersionMatch=NotOlderThan`,
    );
    expect(notOlder.json.items.map((o: KubeObject) => o.metadata.name)).toEqual(['a', 'b']);
    expect(notOlder.json.items[0].metadata.labels).toEqual({ v: '2' });

    const noRv = await call(c, 'GET', `${base}?resourceVersionMatch=Exact`);
    expect(noRv.status).toBe(422);

    c.compact();
    const gone = await call(
      c,
      'GET',
      `${base}?resourceVersion=${oldRv}&resourceVersionMatch=Exact`,
    );
    expect(gone.status).toBe(410);
    expect(gone.json).toMatchObject({ kind: 'Status', reason: 'Expired', code: 410 });
  });
});

describe('watch', () => {
  it('streams ADDED, MODIFIED and DELETED from a resourceVersion, replaying what came after it', async () => {
    c.apply(namespace('w1'));
    c.apply(svc('w1', 'before'));
    const rv = c.store.revision;
    c.apply(svc('w1', 'replayed'));
    const w = await watch(c, `/api/v1/namespaces/w1/services?watch=true&resourceVersion=${rv}`);
    expect(w.status).toBe(200);
    c.apply(svc('w1', 'replayed', { v: '2' }));
    c.apply(svc('w1', 'other'));
    c.remove('v1', 'Service', 'w1', 'replayed');
    c.apply(namespace('w1-elsewhere'));
    c.apply(svc('w1-elsewhere', 'not-mine'));
    await waitFor(() => w.events.length >= 4, 3000, 'four watch events');
    expect(w.events.map((e) => `${e.type} ${e.object.metadata.name}`)).toEqual([
      'ADDED replayed',
      'MODIFIED replayed',
      'ADDED other',
      'DELETED replayed',
    ]);
    expect(w.events[1]!.object.metadata.labels).toEqual({ v: '2' });
    const rvs = w.events.map((e) => Number(e.object.metadata.resourceVersion));
    expect(rvs).toEqual([...rvs].sort((a, b) => a - b));
    // The DELETED object carries the deletion's own revision.
    expect(rvs[3]).toBeGreaterThan(rvs[2]!);
    expect(w.ended).toBe(false);
  });

  it('starts with the current state as ADDED without a resourceVersion', async () => {
    c.apply(namespace('w2'));
    c.apply(svc('w2', 'a'));
    c.apply(svc('w2', 'b'));
    const w = await watch(c, '/api/v1/namespaces/w2/services?watch=1');
    await waitFor(() => w.events.length >= 2, 3000, 'initial events');
    expect(w.events.map((e) => `${e.type} ${e.object.metadata.name}`)).toEqual([
      'ADDED a',
      'ADDED b',
    ]);
  });

  it('sends BOOKMARK events with the current revision when asked, and only then', async () => {
    c.apply(namespace('w3'));
    const plain = await watch(
      c,
      `/api/v1/namespaces/w3/services?watch=true&resourceVersion=${c.store.revision}`,
    );
    const w = await watch(
      c,
      `/api/v1/namespaces/w3/services?watch=true&allowWatchBookmarks=true&resourceVersion=${c.store.revision}`,
    );
    await waitFor(() => w.events.length >= 1, 2000, 'a first bookmark');
    // Something else moves the revision on; the next bookmarks carry it.
    c.apply(namespace('w3-other'));
    const moved = c.store.revision;
    await waitFor(
      () => w.events.some((e) => e.object.metadata.resourceVersion === String(moved)),
      2000,
      'a bookmark at the new revision',
    );
    expect(w.events.every((e) => e.type === 'BOOKMARK')).toBe(true);
    expect(w.events[0]!.object).toMatchObject({
      kind: 'Service',
      apiVersion: 'v1',
      metadata: { resourceVersion: expect.stringMatching(/^\d+$/) },
    });
    expect(w.events.length).toBeGreaterThanOrEqual(2);
    expect(plain.events).toEqual([]);
  });

  it('sends an ERROR 410 event and ends when the resourceVersion was compacted', async () => {
    c.apply(namespace('w4'));
    const rv = c.store.revision;
    c.apply(svc('w4', 'a'));
    c.compact();
    const w = await watch(c, `/api/v1/namespaces/w4/services?watch=true&resourceVersion=${rv}`);
    expect(w.status).toBe(200);
    await w.endedAt;
    expect(w.error).toBeUndefined();
    expect(w.events).toHaveLength(1);
    expect(w.events[0]!.type).toBe('ERROR');
    expect(w.events[0]!.object).toMatchObject({
      kind: 'Status',
      apiVersion: 'v1',
      status: 'Failure',
      reason: 'Expired',
      code: 410,
    });
    expect(w.events[0]!.object).toHaveProperty(
      'message',
      expect.stringContaining('too old resource version'),
    );
    // The current revision is still fine.
    const ok = await watch(
      c,
      `/api/v1/namespaces/w4/services?watch=true&resourceVersion=${c.store.revision}`,
    );
    c.apply(svc('w4', 'b'));
    await waitFor(() => ok.events.length === 1, 2000, 'an event after compaction');
    expect(ok.events[0]!.type).toBe('ADDED');
  });

  it('ends the watch cleanly after timeoutSeconds', async () => {
    const start = Date.now();
    const w = await watch(c, '/api/v1/services?watch=true&timeoutSeconds=1');
    const at = await Promise.race([
      w.endedAt,
      new Promise<number>((_, reject) =>
        setTimeout(() => reject(new Error('watch never ended')), 4000),
      ),
    ]);
    expect(w.error).toBeUndefined();
    expect(at - start).toBeGreaterThanOrEqual(900);
    expect(at - start).toBeLessThan(3000);
  });

  it('treats timeoutSeconds=0 as no timeout given (the server default)', async () => {
    c.apply(namespace('w0'));
    const w = await watch(
      c,
      `/api/v1/namespaces/w0/services?watch=true&timeoutSeconds=0&resourceVersion=${c.store.revision}`,
    );
    await new Promise((r) => setTimeout(r, 300));
    c.apply(svc('w0', 'a'));
    await waitFor(() => w.events.length === 1 || w.ended, 2000, 'an event or the end');
    expect(w.ended).toBe(false);
    expect(w.events[0]!.type).toBe('ADDED');
  });

  it('with a labelSelector, sees DELETED when a label stops matching and ADDED when it matches again', async () => {
    c.apply(namespace('w5'));
    c.apply(svc('w5', 'web', { track: 'stable' }));
    c.apply(svc('w5', 'api', { track: 'canary' }));
    const w = await watch(
      c,
      `/api/v1/namespaces/w5/services?watch=true&labelSelector=${encodeURIComponent('track=stable')}`,
    );
    await waitFor(() => w.events.length >= 1, 2000, 'the initial event');
    c.apply(svc('w5', 'web', { track: 'canary' }));
    c.apply(svc('w5', 'api', { track: 'canary', touched: 'yes' }));
    c.apply(svc('w5', 'api', { track: 'stable' }));
    c.apply(svc('w5', 'api', { track: 'stable', v: '2' }));
    c.remove('v1', 'Service', 'w5', 'api');
    await waitFor(() => w.events.length >= 5, 2000, 'five events');
    expect(w.events.map((e) => `${e.type} ${e.object.metadata.name}`)).toEqual([
      'ADDED web',
      'DELETED web',
      'ADDED api',
      'MODIFIED api',
      'DELETED api',
    ]);
    // The DELETED for a label change carries the object as it now is.
    expect(w.events[1]!.object.metadata.labels).toEqual({ track: 'canary' });
  });

  it('answers 400 for a malformed resourceVersion', async () => {
    const r = await call(c, 'GET', '/api/v1/services?watch=true&resourceVersion=abc');
    expect(r.status).toBe(400);
    expect(r.json.kind).toBe('Status');
  });
});

describe('writes', () => {
  beforeAll(() => {
    c.apply(namespace('writes'));
  });

  it('creates with POST (201) and answers 409 AlreadyExists the second time', async () => {
    const body = svc('writes', 'post');
    const r = await call(c, 'POST', '/api/v1/namespaces/writes/services', { body });
    expect(r.status).toBe(201);
    expect(r.json.metadata.uid).toBeTruthy();
    expect(r.json.spec.clusterIP).toMatch(/^127\.255\./);
    const again = await call(c, 'POST', '/api/v1/namespaces/writes/services', { body });
    expect(again.status).toBe(409);
    expect(again.json).toMatchObject({ kind: 'Status', reason: 'AlreadyExists', code: 409 });
  });

  it('answers 409 Conflict for a PUT with a stale resourceVersion', async () => {
    const created = c.apply(svc('writes', 'put'));
    const path = '/api/v1/namespaces/writes/services/put';
    const fresh = await call(c, 'PUT', path, {
      body: { ...created, metadata: { ...created.metadata, labels: { v: '2' } } },
    });
    expect(fresh.status).toBe(200);
    expect(fresh.json.metadata.labels).toEqual({ v: '2' });
    const stale = await call(c, 'PUT', path, {
      body: { ...created, metadata: { ...created.metadata, labels: { v: '3' } } },
    });
    expect(stale.status).toBe(409);
    expect(stale.json).toMatchObject({
      kind: 'Status',
      reason: 'Conflict',
      code: 409,
      details: { name: 'put', kind: 'services' },
    });
    expect(c.get('v1', 'Service', 'writes', 'put')?.metadata.labels).toEqual({ v: '2' });
  });

  it('applies a JSON merge patch and a strategic merge patch, and answers 415 for other patch types', async () => {
    c.apply(svc('writes', 'patch', { a: '1', b: '2' }));
    const path = '/api/v1/namespaces/writes/services/patch';
    const r = await call(c, 'PATCH', path, {
      body: { metadata: { labels: { a: null, c: '3' } } },
      contentType: 'application/merge-patch+json',
    });
    expect(r.status).toBe(200);
    expect(r.json.metadata.labels).toEqual({ b: '2', c: '3' });
    const smp = await call(c, 'PATCH', path, {
      body: {
        spec: {
          ports: [
            { port: 80, name: 'web' },
            { name: 'admin', port: 9000 },
          ],
        },
      },
      contentType: 'application/strategic-merge-patch+json',
    });
    expect(smp.status).toBe(200);
    expect(smp.json.spec.ports.map((p: { port: number }) => p.port)).toEqual([80, 9000]);
    for (const ct of ['application/json-patch+json', 'application/apply-patch+yaml']) {
      const bad = await call(c, 'PATCH', path, {
        body: ct === 'application/json-patch+json' ? [] : { metadata: { labels: { d: '4' } } },
        contentType: ct,
      });
      expect(bad.status, ct).toBe(415);
      expect(bad.json).toMatchObject({ kind: 'Status', reason: 'UnsupportedMediaType', code: 415 });
    }
    // As for any custom resource on a real cluster: no strategic merge patch.
    c.apply({
      apiVersion: 'multicluster.x-k8s.io/v1alpha1',
      kind: 'ServiceExport',
      metadata: { name: 'patch', namespace: 'writes' },
    });
    const crd = await call(
      c,
      'PATCH',
      '/apis/multicluster.x-k8s.io/v1alpha1/namespaces/writes/serviceexports/patch',
      {
        body: { metadata: { labels: { d: '4' } } },
        contentType: 'application/strategic-merge-patch+json',
      },
    );
    expect(crd.status).toBe(415);
    expect(c.get('v1', 'Service', 'writes', 'patch')?.metadata.labels).toEqual({ b: '2', c: '3' });
  });

  it('writes status only through /status', async () => {
    const created = c.apply(svc('writes', 'lb'));
    const status = { loadBalancer: { ingress: [{ ip: '127.192.2.10' }] } };
    const main = await call(c, 'PATCH', '/api/v1/namespaces/writes/services/lb', {
      body: { status },
      contentType: 'application/merge-patch+json',
    });
    expect(main.json.status).toEqual({ loadBalancer: {} });
    expect(main.json.metadata.resourceVersion).toBe(created.metadata.resourceVersion);
    const sub = await call(c, 'PATCH', '/api/v1/namespaces/writes/services/lb/status', {
      body: { status, spec: { type: 'NodePort' } },
      contentType: 'application/merge-patch+json',
    });
    expect(sub.status).toBe(200);
    expect(sub.json.status).toEqual(status);
    expect(sub.json.spec.type).toBe('ClusterIP');
  });

  it('rejects unknown fields with fieldValidation=Strict, and warns by default', async () => {
    const body = { ...svc('writes', 'strict'), spec: { ports: [{ port: 80 }], bogus: 1 } };
    const strict = await call(
      c,
      'POST',
      '/api/v1/namespaces/writes/services?fieldValidation=Strict',
      {
        body,
      },
    );
    expect(strict.status).toBe(400);
    expect(strict.json).toMatchObject({ kind: 'Status', reason: 'BadRequest', code: 400 });
    expect(strict.json.message).toBe(
      'Service in version "v1" cannot be handled as a Service: strict decoding error: unknown field "spec.bogus"',
    );
    expect(c.get('v1', 'Service', 'writes', 'strict')).toBeUndefined();

    const warn = await call(c, 'POST', '/api/v1/namespaces/writes/services', { body });
    expect(warn.status).toBe(201);
    expect(warn.headers.warning).toContain('unknown field \\"spec.bogus\\"');
    expect(warn.json.spec.bogus).toBeUndefined();
  });

  it('deletes with DELETE and answers 404 afterwards', async () => {
    c.apply(svc('writes', 'gone'));
    const path = '/api/v1/namespaces/writes/services/gone';
    const del = await call(c, 'DELETE', path);
    expect(del.status).toBe(200);
    expect(del.json.metadata.name).toBe('gone');
    expect((await call(c, 'GET', path)).status).toBe(404);
    expect((await call(c, 'DELETE', path)).status).toBe(404);
  });
});

describe('faults', () => {
  let f: SimCluster;

  beforeAll(async () => {
    f = await SimCluster.create({ name: 'faults', host: HOST, port: 0 });
    await f.start();
  });

  afterAll(async () => {
    await f?.stop();
  });

  it("'refuse' cuts open watches and refuses connections; 'up' serves on the same port", async () => {
    const port = f.api.port;
    const w = await watch(f, '/api/v1/services?watch=true');
    await f.setFault('refuse');
    await waitFor(() => w.ended, 2000, 'the open watch to be cut');
    const err = await call(f, 'GET', '/version').then(
      () => undefined,
      (e: NodeJS.ErrnoException) => e,
    );
    expect(err?.code).toBe('ECONNREFUSED');
    f.apply(svc('default', 'while-down'));

    await f.setFault('up');
    expect(f.api.port).toBe(port);
    const r = await call(f, 'GET', '/api/v1/namespaces/default/services/while-down');
    expect(r.status).toBe(200);
  });

  it("'hang' answers nothing until 'up', which cuts the held requests", async () => {
    await f.setFault('hang');
    const held = call(f, 'GET', '/version', { timeoutMs: 10_000 }).then(
      () => 'answered',
      () => 'cut',
    );
    const early = await Promise.race([
      held,
      new Promise((r) => setTimeout(() => r('pending'), 300)),
    ]);
    expect(early).toBe('pending');
    await f.setFault('up');
    expect(await held).toBe('cut');
    expect((await call(f, 'GET', '/version')).status).toBe(200);
  });

  it("'hang' silences open watches", async () => {
    const w = await watch(f, `/api/v1/services?watch=true&resourceVersion=${f.store.revision}`);
    await f.setFault('hang');
    f.apply(svc('default', 'silent'));
    await new Promise((r) => setTimeout(r, 200));
    expect(w.events).toEqual([]);
    expect(w.ended).toBe(false);
    await f.setFault('up');
    await waitFor(() => w.ended, 2000, 'the silent watch to be cut');
    expect(w.events).toEqual([]);
  });

  it("'drop' cuts watches but still serves other requests", async () => {
    const w = await watch(f, '/api/v1/services?watch=true');
    await f.setFault('drop');
    await waitFor(() => w.ended, 2000, 'the open watch to be cut');
    expect(w.error).toBeDefined();
    const again = await watch(f, '/api/v1/services?watch=true');
    await waitFor(() => again.ended, 2000, 'a new watch to be cut');
    expect((await call(f, 'GET', '/api/v1/services')).status).toBe(200);
    expect(f.api.openWatches).toBe(0);
    await f.setFault('up');
    const ok = await watch(f, `/api/v1/services?watch=true&resourceVersion=${f.store.revision}`);
    f.apply(svc('default', 'after-drop'));
    await waitFor(() => ok.events.length === 1, 2000, 'an event after up');
    expect(ok.ended).toBe(false);
  });
});
