// Holds the simulator to kube-apiserver: the same requests go to a SimCluster and to a
// real control plane (etcd + kube-apiserver v1.37, tools/kube), over raw HTTPS, and the
// answers are compared: status, the headers clients read, framing, and the body's shape
// (keys and JSON types everywhere, values where the server has no choice). Where the two
// differ on purpose, the difference is listed in src/localfed/README.md and asserted
// here line for line, so a change on either side shows.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SimUser } from '../src/localfed/access.ts';
import { SimCluster } from '../src/localfed/cluster.ts';
import { installGatewayCrds } from './helpers/gateway-api.ts';
import { ControlPlane } from './helpers/kube-control-plane.ts';
import {
  type Api,
  events,
  initialEvents,
  maskedTable,
  type Pair,
  type PairRequest,
  ServerPair,
  startedPair,
  tableEvents,
} from './helpers/parity.ts';
import { type RawResponse, rawCall } from './helpers/raw-api.ts';
import { shapeDiff } from './helpers/shape-diff.ts';
import { waitFor } from './helpers/wait.ts';

const NS = 'parity';
const SVC = `/api/v1/namespaces/${NS}/services`;
const SE = `/apis/multicluster.x-k8s.io/v1alpha1/namespaces/${NS}/serviceexports`;
const TABLE = 'application/json;as=Table;v=v1;g=meta.k8s.io';
// A user who may only read namespaces: the same rule as a ClusterRole on the real server.
const READER: SimUser = {
  name: 'reader',
  token: randomBytes(24).toString('hex'),
  rules: [{ verbs: ['get', 'list', 'watch'], apiGroups: [''], resources: ['namespaces'] }],
};

let sim: SimCluster;
let cp: ControlPlane;
let pair: ServerPair | undefined;

const servers = () => startedPair(pair);
const both = (r: PairRequest) => servers().both(r);
const same = (...args: Parameters<ServerPair['same']>) => servers().same(...args);

// biome-ignore lint/suspicious/noExplicitAny: bodies are read field by field
const json = (r: RawResponse): any => r.json;

const patch = (path: string, contentType: string, body: unknown) => ({
  method: 'PATCH',
  path,
  contentType,
  body,
});

const createExport = (name: string) => ({
  method: 'POST',
  path: SE,
  body: { apiVersion: 'multicluster.x-k8s.io/v1alpha1', kind: 'ServiceExport', metadata: { name } },
});

const service = (name: string, labels: Record<string, string> = {}, port = 80) => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name, namespace: NS, labels },
  spec: { ports: [{ name: 'http', port }] },
});

beforeAll(async () => {
  sim = await SimCluster.create({ name: 'parity', host: '127.220.0.1', users: [READER] });
  await sim.start();
  // No watch cache for nodes: their watches and lists go to etcd, so an etcd compaction
  // shows as 410 there (a cached resource keeps serving from its cache, see the 410 test).
  cp = await ControlPlane.start({
    users: [{ name: READER.name, token: READER.token }],
    apiserverArgs: ['--watch-cache-sizes=nodes#0'],
  });
  pair = new ServerPair({
    sim: { url: sim.url, ca: sim.caCert, token: sim.token },
    real: { url: cp.url, ca: cp.ca, token: cp.token },
  });
  await cp.kubectl(['apply', '-f', cp.tools.serviceExportCrd]);
  await cp.kubectl(['apply', '-f', cp.tools.serviceImportCrd]);
  // The simulator serves the Gateway API kinds (test/gateway-parity.test.ts compares them).
  await installGatewayCrds(cp);
  await cp.kubectl([
    'create',
    'clusterrole',
    'ns-reader',
    '--verb=get,list,watch',
    '--resource=namespaces',
  ]);
  await cp.kubectl([
    'create',
    'clusterrolebinding',
    'ns-reader',
    '--clusterrole=ns-reader',
    `--user=${READER.name}`,
  ]);
  await cp.kubectl([
    'wait',
    '--for=condition=Established',
    '--timeout=60s',
    'crd/serviceexports.multicluster.x-k8s.io',
    'crd/serviceimports.multicluster.x-k8s.io',
  ]);
  // Discovery of a new group can lag Established by a moment.
  await waitFor(
    async () => (await rawCall(servers().targets.real, { path: SE })).status === 200,
    30_000,
    'the ServiceExport resource served',
    200,
  );
}, 120_000);

afterAll(async () => {
  await sim?.stop();
  await cp?.stop();
});

describe('writes', () => {
  it('creates, with generateName, and answers 409 AlreadyExists and 404 for a missing namespace', async () => {
    await same({
      method: 'POST',
      path: '/api/v1/namespaces',
      body: { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } },
    });
    await same({ method: 'POST', path: SVC, body: service('a', { app: 'web', tier: 'front' }) });
    await same({ method: 'POST', path: SVC, body: service('b', { app: 'web', tier: 'back' }) });
    await same({ method: 'POST', path: SVC, body: service('c', { app: 'db' }) });
    await same({
      method: 'POST',
      path: SVC,
      body: { ...service(''), metadata: { generateName: 'gen-', namespace: NS } },
    });
    await same({ method: 'POST', path: SVC, body: service('a') });
    await same({
      method: 'POST',
      path: '/api/v1/namespaces/nope/services',
      body: { ...service('x'), metadata: { name: 'x' } },
    });
    await same(createExport('a'));
  });

  it('answers 422 Invalid with causes, 400 for strict field validation, and warns on unknown fields', async () => {
    await same({ method: 'POST', path: SVC, body: service('bad', {}, 70000) });
    await same({ method: 'POST', path: SVC, body: service('Bad_Name') });
    await same({
      method: 'POST',
      path: `${SVC}?fieldValidation=Strict`,
      body: { ...service('s'), bogus: 1 },
    });
    await same({
      method: 'POST',
      path: SVC,
      body: { ...service('w'), bogus: 1, spec: { ports: [{ port: 80 }], nope: true } },
    });
  });

  it('updates: 409 Conflict for a stale resourceVersion, 422 for a changed cluster IP', async () => {
    const cur = await both({ path: `${SVC}/b` });
    const edit = (
      api: Api,
      f: (o: { metadata: Record<string, unknown>; spec: Record<string, unknown> }) => void,
    ) => {
      const o = structuredClone(json(cur[api]));
      f(o);
      return { method: 'PUT', path: `${SVC}/b`, body: o };
    };
    await same((api) =>
      edit(api, (o) => {
        o.metadata.resourceVersion = '1';
      }),
    );
    await same((api) =>
      edit(api, (o) => {
        o.metadata.labels = { app: 'web', v: '2' };
      }),
    );
    await same((api) =>
      edit(api, (o) => {
        delete o.metadata.resourceVersion;
        o.spec.clusterIP = '127.64.9.9';
        o.spec.clusterIPs = ['127.64.9.9'];
      }),
    );
    await same({ method: 'PUT', path: `${SVC}/b`, body: service('c') });
  });

  it('patches: JSON merge and strategic merge; ServiceExport refuses strategic merge (415)', async () => {
    await same(
      patch(`${SVC}/a`, 'application/merge-patch+json', { metadata: { labels: { extra: 'x' } } }),
    );
    await same(
      patch(`${SVC}/a`, 'application/strategic-merge-patch+json', {
        spec: { ports: [{ name: 'alt', port: 81 }] },
      }),
    );
    await same(
      patch(`${SE}/a`, 'application/merge-patch+json', { metadata: { labels: { x: 'y' } } }),
    );
    await same(
      patch(`${SE}/a`, 'application/strategic-merge-patch+json', {
        metadata: { labels: { x: 'z' } },
      }),
    );
    await same(patch(`${SVC}/nope`, 'application/merge-patch+json', {}));
    await same({ method: 'PATCH', path: `${SVC}/a`, contentType: 'text/plain', body: 'x' });
    await same({ method: 'POST', path: SVC, contentType: 'text/plain', body: 'x' });
  });

  it('deletes, with preconditions (409), and a ServiceExport answers a Status', async () => {
    await same({
      method: 'DELETE',
      path: `${SVC}/c`,
      body: { kind: 'DeleteOptions', apiVersion: 'v1', preconditions: { uid: 'nope' } },
    });
    await same({
      method: 'DELETE',
      path: `${SVC}/c`,
      body: { kind: 'DeleteOptions', apiVersion: 'v1', preconditions: { resourceVersion: '1' } },
    });
    await same({ method: 'DELETE', path: `${SVC}/c` });
    await same({ method: 'DELETE', path: `${SVC}/c` });
    await same(createExport('gone'));
    await same({ method: 'DELETE', path: `${SE}/gone` });
    await same({ method: 'PUT', path: SVC, body: service('x') });
    const slice = {
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: { name: 's1', labels: { 'kubernetes.io/service-name': 'a' } },
      addressType: 'IPv4',
      endpoints: [],
      ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
    };
    const slices = `/apis/discovery.k8s.io/v1/namespaces/${NS}/endpointslices`;
    await same({ method: 'POST', path: slices, body: slice });
    await same({ method: 'POST', path: slices, body: { ...slice, metadata: { name: 's2' } } });
    await same({ method: 'DELETE', path: `${slices}/s2` });
  });
});

describe('reads', () => {
  it('gets, and answers 404 for a missing object, namespace, resource or path', async () => {
    await same({ path: `${SVC}/a` });
    await same({ path: `${SE}/a` });
    await same({ path: `/api/v1/namespaces/${NS}` });
    await same({ path: `${SVC}/nope` });
    await same({ path: '/api/v1/namespaces/nope/services/a' });
    await same({ path: '/api/v1/namespaces/nope' });
    await same({ path: `/api/v1/namespaces/${NS}/widgets` });
    await same({ path: '/api/v1/nodes/a/b/c/d' });
    await same({ path: '/apis/discovery.k8s.io/v2' });
    await same({ path: '/apis/example.com/v1/widgets' });
    await same({ path: '/nope' });
  });

  it('lists with label and field selectors', async () => {
    await same({ path: SVC });
    await same({ path: '/api/v1/namespaces/nope/services' });
    await same({ path: `${SVC}?labelSelector=${encodeURIComponent('app=web,tier!=back')}` });
    await same({ path: `${SVC}?labelSelector=${encodeURIComponent('app in (web,db),!nope')}` });
    await same({
      path: `/api/v1/services?fieldSelector=${encodeURIComponent(`metadata.name=a,metadata.namespace=${NS}`)}`,
    });
    await same({ path: `${SVC}?fieldSelector=${encodeURIComponent('spec.type=ClusterIP')}` });
    await same({ path: `${SVC}?fieldSelector=${encodeURIComponent('spec.foo=1')}` });
    await same({
      path: `/api/v1/namespaces?fieldSelector=${encodeURIComponent(`status.phase=Active,metadata.name=${NS}`)}`,
    });
    await same({
      path: `/api/v1/nodes?fieldSelector=${encodeURIComponent('spec.unschedulable=false')}`,
    });
    await same({
      path: `/apis/discovery.k8s.io/v1/endpointslices?fieldSelector=addressType%3DIPv4`,
    });
    await same({ path: `${SE}?fieldSelector=${encodeURIComponent('spec.x=1')}` });
    await same({ path: `${SE}?fieldSelector=${encodeURIComponent('metadata.name=a')}` });
    await same({ path: `${SVC}?labelSelector=a%20b` });
  });

  it('pages with limit and continue, remainingItemCount only without selectors', async () => {
    const first = await same({ path: `${SVC}?limit=2` });
    const token = (api: Api) => encodeURIComponent(json(first[api]).metadata.continue);
    await same((api) => ({ path: `${SVC}?limit=2&continue=${token(api)}` }));
    await same({ path: `${SVC}?limit=1&labelSelector=app%3Dweb` });
    await same({ path: `${SVC}?limit=1&continue=garbage` });
    await same((api) => ({ path: `${SVC}?limit=2&continue=${token(api)}&resourceVersion=1` }));
  });

  it('lists at resourceVersion 0 (limit ignored), NotOlderThan and Exact, and refuses bad matches', async () => {
    const now = await both({ path: SVC });
    const rv = (api: Api) => json(now[api]).metadata.resourceVersion as string;
    await same({ path: `${SVC}?resourceVersion=0` });
    await same({ path: `${SVC}?resourceVersion=0&limit=1` });
    await same((api) => ({
      path: `${SVC}?resourceVersion=${rv(api)}&resourceVersionMatch=NotOlderThan`,
    }));
    await same((api) => ({
      path: `${SVC}?resourceVersion=${rv(api)}&resourceVersionMatch=Exact&limit=1`,
    }));
    await same({ path: `${SVC}?resourceVersionMatch=Exact` });
    await same({ path: `${SVC}?resourceVersion=1&resourceVersionMatch=Foo` });
    // A future revision: both wait about 3 s, then 504 with Retry-After.
    await same({
      path: `${SVC}?resourceVersion=99999999&resourceVersionMatch=NotOlderThan`,
      timeoutMs: 20_000,
    });
  });

  it('prints Tables with the columns kubectl shows', async () => {
    await same({ path: SVC, accept: TABLE }, [], maskedTable);
    await same({ path: `${SVC}/a`, accept: TABLE }, [], maskedTable);
    await same(
      { path: `/api/v1/namespaces?fieldSelector=metadata.name%3D${NS}`, accept: TABLE },
      [],
      maskedTable,
    );
    await same({ path: '/api/v1/nodes', accept: TABLE }, [], maskedTable);
    await same(
      { path: `/apis/discovery.k8s.io/v1/namespaces/${NS}/endpointslices`, accept: TABLE },
      [],
      maskedTable,
    );
    await same({ path: SE, accept: TABLE }, [], maskedTable);
  });
});

describe('watch', () => {
  it('ends at timeoutSeconds, with the same events, bookmarks on request', async () => {
    const now = await both({ path: SVC });
    const rv = (api: Api) => json(now[api]).metadata.resourceVersion as string;
    const changes = same(
      (api) => ({
        path: `${SVC}?watch=1&allowWatchBookmarks=true&timeoutSeconds=4&resourceVersion=${rv(api)}`,
        timeoutMs: 20_000,
      }),
      [],
      events,
    );
    await new Promise((r) => setTimeout(r, 500));
    await both(
      patch(`${SVC}/a`, 'application/merge-patch+json', { metadata: { labels: { w: '1' } } }),
    );
    await both({ method: 'POST', path: SVC, body: service('d') });
    await both({ method: 'DELETE', path: `${SVC}/d` });
    const p = await changes;
    expect(events(p.real)).toHaveLength(3);
    await same(
      { path: `${SVC}?watch=1&allowWatchBookmarks=true&timeoutSeconds=4`, timeoutMs: 20_000 },
      [],
      events,
    );
    await same({ path: `${SVC}?watch=1&resourceVersion=0&timeoutSeconds=1` }, [], events);
  });

  it('sends initial events and the initial-events-end bookmark', async () => {
    await same(
      {
        path: `${SVC}?watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&timeoutSeconds=2`,
      },
      [],
      initialEvents,
    );
    await same(
      {
        path: `${SVC}?watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&timeoutSeconds=1`,
      },
      [],
      initialEvents,
    );
    await same(
      {
        path: `${SVC}?watch=1&sendInitialEvents=false&resourceVersionMatch=NotOlderThan&resourceVersion=0&timeoutSeconds=1`,
      },
      [],
      initialEvents,
    );
    await same({
      path: `${SVC}?watch=1&sendInitialEvents=true&allowWatchBookmarks=true&timeoutSeconds=1`,
    });
  });

  it('ends the initial events with a bookmark shaped as an empty object of each kind', async () => {
    const initial =
      'watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&timeoutSeconds=1';
    await same(
      { path: `/api/v1/namespaces?fieldSelector=metadata.name%3D${NS}&${initial}` },
      [],
      initialEvents,
    );
    await same({ path: `/api/v1/nodes?${initial}` }, [], initialEvents);
    await same(
      { path: `/apis/discovery.k8s.io/v1/namespaces/${NS}/endpointslices?${initial}` },
      [],
      initialEvents,
    );
    await same({ path: `${SE}?${initial}` }, [], initialEvents);
  });

  it('watches as a Table: column definitions in the first event only', async () => {
    await same(
      { path: `${SVC}?watch=1&resourceVersion=0&timeoutSeconds=1`, accept: TABLE },
      [],
      tableEvents,
    );
  });

  it('answers 410 Expired for a watch or list from a compacted resourceVersion', async () => {
    const node = (name: string) => ({ apiVersion: 'v1', kind: 'Node', metadata: { name } });
    const created = await both({ method: 'POST', path: '/api/v1/nodes', body: node('n1') });
    const rv = (api: Api) => json(created[api]).metadata.resourceVersion as string;
    // Two changes, then compaction at the latest revision: a watch from the creation
    // starts at a compacted revision. (With one change it would start at the compaction
    // revision itself, which etcd still serves, without the previous value kube-apiserver
    // needs: observed as a 500 InternalError "etcd event received with PrevKv=nil".)
    for (const a of ['1', '2']) {
      await both(
        patch('/api/v1/nodes/n1', 'application/merge-patch+json', { metadata: { labels: { a } } }),
      );
    }
    const latest = await both({ path: '/api/v1/nodes' });
    sim.compact();
    const res = await fetch(`${cp.etcdUrl}/v3/kv/compaction`, {
      method: 'POST',
      body: JSON.stringify({
        revision: json(latest.real).metadata.resourceVersion,
        physical: true,
      }),
    });
    expect(res.status).toBe(200);
    await same(
      (api) => ({ path: `/api/v1/nodes?watch=1&resourceVersion=${rv(api)}&timeoutSeconds=2` }),
      [],
      events,
    );
    await same((api) => ({
      path: `/api/v1/nodes?resourceVersion=${rv(api)}&resourceVersionMatch=Exact`,
    }));
    await same({ method: 'DELETE', path: '/api/v1/nodes/n1' });
  });
});

describe('authentication and authorization', () => {
  it('answers 401 for an unknown token, 403 for what a user may not do, and serves what it may', async () => {
    const reader = READER.token;
    await same({ path: SVC, token: 'wrong' });
    await same({ path: '/nope', token: 'wrong' });
    await same({ path: SVC, token: reader });
    await same({ path: `${SVC}/a`, token: reader });
    await same({ path: `${SVC}/a/status`, token: reader });
    await same({ path: `${SVC}?watch=1`, token: reader });
    await same({ method: 'POST', path: SVC, body: service('z'), token: reader });
    await same({ method: 'DELETE', path: `${SVC}/a`, token: reader });
    await same({ path: '/api/v1/nodes/x', token: reader });
    await same({ path: '/apis/discovery.k8s.io/v1/endpointslices', token: reader });
    await same({ path: '/api/v1/widgets', token: reader });
    await same({ path: `/api/v1/namespaces/${NS}`, token: reader });

    await same({ path: '/nope', token: reader });
  });

  it('treats a request without a token as system:anonymous: health and version only', async () => {
    await same({ path: '/healthz', token: null });
    await same({ path: '/readyz', token: null });
    // The build's own values (version suffix, commit, date) aside.
    await same({ path: '/version', token: null }, [], (r) => ({
      ...json(r),
      gitVersion: '',
      gitCommit: '',
      buildDate: '',
    }));
    await same({ path: '/api', token: null });
    await same({ path: SVC, token: null });
    await same({ path: `${SVC}/a`, token: null });
  });
});

interface ApiResource {
  name: string;
  verbs: string[];
}

describe('discovery and OpenAPI', () => {
  it('serves every resource the simulator serves, with the same shape and verbs', async () => {
    for (const gv of [
      '/api/v1',
      '/apis/discovery.k8s.io/v1',
      '/apis/multicluster.x-k8s.io/v1alpha1',
      '/apis/coordination.k8s.io/v1',
    ]) {
      const p = await both({ path: gv });
      const simList = json(p.sim);
      const realList = json(p.real);
      expect
        .soft(shapeDiff({ ...simList, resources: [] }, { ...realList, resources: [] }, gv))
        .toEqual([]);
      for (const r of simList.resources as ApiResource[]) {
        const twin = (realList.resources as ApiResource[]).find((x) => x.name === r.name);
        expect(twin, `${gv} ${r.name}`).toBeDefined();
        if (!twin) continue;
        // Listed: the simulator has no deletecollection, and no storage to hash.
        expect
          .soft(twin.verbs.filter((v) => v !== 'deletecollection').sort(), r.name)
          .toEqual([...r.verbs].sort());
        const d = shapeDiff({ ...r, verbs: [] }, { ...twin, verbs: [] }, r.name);
        expect
          .soft(d)
          .toEqual(r.name.includes('/') ? [] : [`${r.name}.storageVersionHash: only real`]);
      }
    }
  });

  it('serves /api, /apis and the group documents', async () => {
    await same({ path: '/api' });
    await same({ path: '/api', token: READER.token });
    await same({ path: '/apis/discovery.k8s.io' });
    // Listed: the MCS CRD also serves v1beta1 (preferred); the simulator serves v1alpha1, which fedgate reads.
    const mcs = await both({ path: '/apis/multicluster.x-k8s.io' });
    expect(json(mcs.real).versions.map((v: { version: string }) => v.version)).toEqual([
      'v1beta1',
      'v1alpha1',
    ]);
    expect(json(mcs.sim).versions.map((v: { version: string }) => v.version)).toEqual(['v1alpha1']);
    const apis = await both({ path: '/apis' });
    for (const g of json(apis.sim).groups as { name: string }[]) {
      const twin = (json(apis.real).groups as { name: string }[]).find((x) => x.name === g.name);
      expect(twin, g.name).toBeDefined();
      if (g.name !== 'multicluster.x-k8s.io') expect.soft(shapeDiff(g, twin, g.name)).toEqual([]);
    }
  });

  it('indexes OpenAPI v3 as kube-apiserver does, with what kubectl reads from each document', async () => {
    const index = await same({ path: '/openapi/v3' }, [], (r) => {
      const paths = (json(r) as { paths: Record<string, { serverRelativeURL: string }> }).paths;
      // Only the group-versions the simulator serves; the URL's hash is the server's own.
      return Object.fromEntries(
        [
          'api/v1',
          'apis/discovery.k8s.io/v1',
          'apis/multicluster.x-k8s.io/v1alpha1',
          'apis/coordination.k8s.io/v1',
        ].map((gv) => [gv, paths[gv]?.serverRelativeURL.replace(/hash=[0-9A-F]{128}$/, 'hash=*')]),
      );
    });
    const url = (api: Api, gv: string) => json(index[api]).paths[gv].serverRelativeURL as string;
    for (const gv of Object.keys(json(index.sim).paths)) {
      // Each server's own URL: kube-apiserver redirects (301) a hash that is not its own.
      const docs = await both((api) => ({ path: url(api, gv) }));
      expect(docs.real.headers['content-type']).toBe(docs.sim.headers['content-type']);
      const realPaths = json(docs.real).paths;
      // kubectl looks for each kind's PATCH operation and its fieldValidation parameter.
      for (const [path, item] of Object.entries(
        json(docs.sim).paths as Record<
          string,
          { patch: { parameters: { name: string }[] } & Record<string, unknown> }
        >,
      )) {
        const patch = realPaths[path]?.patch;
        expect(patch, `${gv} ${path}`).toBeDefined();
        expect(patch['x-kubernetes-group-version-kind']).toEqual(
          item.patch['x-kubernetes-group-version-kind'],
        );
        expect(patch.parameters.map((q: { name: string }) => q.name)).toContain('fieldValidation');
      }
    }
  });
});

describe('listed differences (src/localfed/README.md)', () => {
  it('JSON patch, apply patch, YAML and protobuf bodies: served by kube-apiserver, 415 from the simulator', async () => {
    const jsonPatch = await both(
      patch(`${SVC}/a`, 'application/json-patch+json', [
        { op: 'add', path: '/metadata/labels/jp', value: 'v' },
      ]),
    );
    const apply = await both(
      patch(`${SVC}/a?fieldManager=parity`, 'application/apply-patch+yaml', {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: 'a', namespace: NS },
      }),
    );
    const yaml = await both({
      method: 'POST',
      path: SVC,
      contentType: 'application/yaml',
      body: 'apiVersion: v1\nkind: Service\nmetadata:\n  name: yml\nspec:\n  ports:\n  - port: 80\n',
    });
    // Not a valid object: kube-apiserver decodes protobuf and says so (400); the simulator does not decode it.
    const protobuf = await both({
      method: 'POST',
      path: SVC,
      contentType: 'application/vnd.kubernetes.protobuf',
      body: Buffer.from('k8s\u0000garbage'),
    });
    const statuses = (p: Pair) => [p.sim.status, p.real.status];
    expect([jsonPatch, apply, yaml, protobuf].map(statuses)).toEqual([
      [415, 200],
      [415, 200],
      [415, 201],
      [415, 400],
    ]);
    for (const p of [jsonPatch, apply, yaml, protobuf])
      expect(json(p.sim).reason).toBe('UnsupportedMediaType');
  });

  it('deletecollection and dryRun: performed by kube-apiserver, refused by the simulator', async () => {
    const dry = await both({ method: 'POST', path: `${SVC}?dryRun=All`, body: service('dry') });
    const collection = await both({ method: 'DELETE', path: SE });
    expect([
      dry.sim.status,
      dry.real.status,
      collection.sim.status,
      collection.real.status,
    ]).toEqual([400, 201, 405, 200]);
  });

  it('EndpointSlice addresses on loopback: refused by kube-apiserver (422), stored by the simulator', async () => {
    const p = await both({
      method: 'POST',
      path: `/apis/discovery.k8s.io/v1/namespaces/${NS}/endpointslices`,
      body: {
        apiVersion: 'discovery.k8s.io/v1',
        kind: 'EndpointSlice',
        metadata: { name: 'loopback' },
        addressType: 'IPv4',
        endpoints: [{ addresses: ['127.220.1.1'] }],
        ports: [],
      },
    });
    expect([p.sim.status, p.real.status]).toEqual([201, 422]);
    expect(json(p.real).details.causes).toEqual([
      {
        reason: 'FieldValueInvalid',
        message:
          'Invalid value: "127.220.1.1": may not be in the loopback range (127.0.0.0/8, ::1/128)',
        field: 'endpoints[0].addresses[0]',
      },
    ]);
  });

  it('managedFields: kube-apiserver records them on every write, the simulator keeps none', async () => {
    const p = await both({ path: `${SVC}/a` });
    expect(json(p.real).metadata.managedFields.length).toBeGreaterThan(0);
    expect(json(p.sim).metadata.managedFields).toBeUndefined();
  });
});
