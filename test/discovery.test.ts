// End to end: fedgate's discovery (watchers per member cluster → catalog)
// against the API simulator over HTTPS, through kubeconfigs, as fedgate runs
// in production. Every wait is bounded; faults are the simulator's own.
import { join } from 'node:path';
import { setImmediate } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import type { Endpoint, Snapshot } from '../src/catalog/model.ts';
import { parseConfig } from '../src/config/load.ts';
import type { Discovery } from '../src/discovery.ts';
import { MCS_GROUP, type SimCluster } from '../src/localfed/cluster.ts';
import { LocalFederation } from '../src/localfed/federation.ts';
import type { FaultMode } from '../src/localfed/member.ts';
import type { KubeObject } from '../src/localfed/objects.ts';
import { parseScenario } from '../src/localfed/scenario.ts';
import { simOf } from '../src/localfed/sim-member.ts';
import {
  addressesOf,
  compareAddresses,
  DiscoveryEnv,
  type EndpointSpec,
  FAST_WATCH,
  member,
  namespace,
  node,
  putCreatedAt,
  readyEndpoints,
  SnapshotRecorder,
  service,
  serviceExport,
  slice,
  WARN,
} from './helpers/discovery-env.ts';
import { waitFor } from './helpers/wait.ts';

const EXPORT_API = 'multicluster.x-k8s.io/v1alpha1';
const SLICE_API = 'discovery.k8s.io/v1';
/** Recovery after a fault waits out the watch backoff (0.8 s doubling): be generous. */
const RECOVERY_MS = 40_000;
const SHORT_MS = 15_000;

let env: DiscoveryEnv;
beforeEach(() => {
  env = new DiscoveryEnv();
});
afterEach(async () => {
  await env.cleanup();
});

/** Waits until the current snapshot satisfies `pred`, and returns that snapshot. */
function waitSnapshot(
  d: Discovery,
  pred: (s: Snapshot) => unknown,
  what: string,
  timeoutMs = SHORT_MS,
): Promise<Snapshot> {
  return waitFor(
    () => {
      const s = d.catalog.current();
      return pred(s) ? s : undefined;
    },
    timeoutMs,
    what,
  );
}

/** An exported service with one slice, created in one go. */
function deploy(sim: SimCluster, ns: string, name: string, endpoints: EndpointSpec[]): void {
  if (!sim.get('v1', 'Namespace', undefined, ns)) sim.apply(namespace(ns));
  sim.apply(service(ns, name));
  sim.apply(serviceExport(ns, name));
  sim.apply(slice(ns, name, `${name}-a`, endpoints));
}

function undeploy(sim: SimCluster, ns: string, name: string): void {
  sim.remove(EXPORT_API, 'ServiceExport', ns, name);
  sim.remove('v1', 'Service', ns, name);
  for (const s of sim.store.list('discovery.k8s.io/endpointslices', ns)) {
    if (s.metadata.labels?.['kubernetes.io/service-name'] === name) {
      sim.remove(SLICE_API, 'EndpointSlice', ns, s.metadata.name);
    }
  }
}

interface EndpointView {
  address: string;
  ready: boolean;
  serving: boolean;
  terminating: boolean;
  zone: string | undefined;
  region: string | undefined;
}

function view(e: Endpoint): EndpointView {
  return {
    address: e.addresses[0]!,
    ...e.conditions,
    zone: e.locality.zone,
    region: e.locality.region,
  };
}

function endpointsOf(s: Snapshot, key: string, cluster: string): EndpointView[] {
  const m = member(s, key, cluster);
  if (!m) return [];
  return m.member.endpoints.map(view).sort((a, b) => compareAddresses(a.address, b.address));
}

const byAddress = (list: EndpointView[]) => new Map(list.map((e) => [e.address, e]));

// ---- 1. export and unexport ----------------------------------------------------------

describe('exporting', () => {
  it('federates a service exactly while its ServiceExport exists, never an unexported one', async () => {
    const alpha = await env.cluster('alpha');
    alpha.apply(namespace('shop'));
    alpha.apply(service('shop', 'web'));
    alpha.apply(slice('shop', 'web', 'web-a', readyEndpoints(1, 2)));
    alpha.apply(service('shop', 'internal'));
    alpha.apply(slice('shop', 'internal', 'internal-a', readyEndpoints(2, 2)));
    // An ExternalName service has no endpoints: exported or not, it is never federated.
    alpha.apply({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'ext', namespace: 'shop' },
      spec: { type: 'ExternalName', externalName: 'db.example.com' },
    });
    alpha.apply(serviceExport('shop', 'ext'));
    const d = await env.startSynced(await env.config([{ sim: alpha, region: 'r1' }]));
    const rec = new SnapshotRecorder(d.catalog);

    expect(d.catalog.current().services.size).toBe(0);
    expect(d.catalog.current().clusters.get('alpha')).toMatchObject({
      state: 'synced',
      exportMode: 'ServiceExport',
    });

    alpha.apply(serviceExport('shop', 'web'));
    let s = await waitSnapshot(d, (x) => x.services.has('shop/web'), 'web to be federated');
    expect([...s.services.keys()]).toEqual(['shop/web']);
    expect(addressesOf(s, 'shop/web', 'alpha')).toEqual(['127.11.1.1', '127.11.1.2']);
    const exported = alpha.get(EXPORT_API, 'ServiceExport', 'shop', 'web')!;
    expect(member(s, 'shop/web', 'alpha')!.member.exportedAt).toBe(
      Date.parse(exported.metadata.creationTimestamp!),
    );

    alpha.remove(EXPORT_API, 'ServiceExport', 'shop', 'web');
    s = await waitSnapshot(d, (x) => !x.services.has('shop/web'), 'web to be unexported');
    expect(s.services.size).toBe(0);

    // Exported again, then its Service deleted: an export without a Service federates nothing.
    alpha.apply(serviceExport('shop', 'web'));
    await waitSnapshot(d, (x) => x.services.has('shop/web'), 'web to be federated again');
    alpha.remove('v1', 'Service', 'shop', 'web');
    s = await waitSnapshot(d, (x) => !x.services.has('shop/web'), 'web to go with its Service');
    expect(s.services.size).toBe(0);

    // The unexported services never appeared in any snapshot.
    for (const snap of rec.snapshots) {
      expect(snap.services.has('shop/internal')).toBe(false);
      expect(snap.services.has('shop/ext')).toBe(false);
      expect(snap.services.has('default/kubernetes')).toBe(false);
    }
    expect(rec.count).toBeGreaterThanOrEqual(4);
  });
});

// ---- 2 and 10. a local federation: scaling, incremental snapshots --------------------

const SCENARIO = `
federation: { name: testfed, domain: example.test }
terminationGraceSeconds: 1
clusters:
  - name: alpha
    region: us-east
    zones: [{ name: us-east-a, nodes: 1 }, { name: us-east-b, nodes: 1 }]
  - name: beta
    region: us-west
    zones: [{ name: us-west-a, nodes: 2 }]
services:
  - { name: web, namespace: shop, ports: [{ name: http, port: 80, targetPort: 8080 }], clusters: [alpha], replicasPerZone: 1 }
  - { name: api, namespace: shop, ports: [{ name: http, port: 80, targetPort: 8081 }], clusters: [alpha, beta], replicasPerZone: 1 }
  - { name: db, namespace: data, headless: true, ports: [{ name: sql, port: 5432 }], clusters: [beta], replicasPerZone: 2 }
`;

/** What the cluster's EndpointSlices say, in the catalog's terms. */
function storeEndpoints(sim: SimCluster, ns: string, svc: string, region: string): EndpointView[] {
  return sim.store
    .list('discovery.k8s.io/endpointslices', ns)
    .filter((s: KubeObject) => s.metadata.labels?.['kubernetes.io/service-name'] === svc)
    .flatMap((s) => s.endpoints as { addresses: string[]; zone: string; conditions: object }[])
    .map((e) => ({
      address: e.addresses[0]!,
      ready: true,
      serving: true,
      terminating: false,
      ...e.conditions,
      zone: e.zone,
      region,
    }))
    .sort((a, b) => compareAddresses(a.address, b.address));
}

describe('a local federation', () => {
  let fed: LocalFederation;
  let d: Discovery;

  beforeAll(async () => {
    fed = await LocalFederation.start(parseScenario(SCENARIO), {
      addressBlock: 150,
      apiPort: 0,
      bookmarkIntervalMs: 250,
    });
  });
  afterAll(async () => {
    await fed?.stop();
  });
  beforeEach(async () => {
    const dir = await env.dir();
    const kubeconfigs: Record<string, string> = {};
    for (const c of fed.clusters) kubeconfigs[c.name] = await c.writeKubeconfig(dir);
    const raw = parse(fed.fedgateConfig(kubeconfigs)) as Record<string, unknown>;
    const config = parseConfig(stringify({ ...raw, watch: FAST_WATCH }), join(dir, 'fedgate.yaml'));
    d = await env.startSynced(config);
  });

  const matchesStore = (s: Snapshot, svc: string, cluster: string, region: string) => {
    const [ns, name] = svc.split('/') as [string, string];
    const want = storeEndpoints(simOf(fed.cluster(cluster)), ns, name, region);
    return JSON.stringify(endpointsOf(s, svc, cluster)) === JSON.stringify(want);
  };

  it('federates the scenario as its EndpointSlices say', () => {
    const s = d.catalog.current();
    expect([...s.services.keys()].sort()).toEqual(['data/db', 'shop/api', 'shop/web']);
    expect(s.services.get('shop/api')!.clusters.map((c) => c.cluster)).toEqual(['alpha', 'beta']);
    expect(s.services.get('data/db')!.type).toBe('Headless');
    expect(matchesStore(s, 'shop/web', 'alpha', 'us-east')).toBe(true);
    expect(matchesStore(s, 'data/db', 'beta', 'us-west')).toBe(true);
    expect(endpointsOf(s, 'shop/web', 'alpha').map((e) => e.zone)).toEqual([
      'us-east-a',
      'us-east-b',
    ]);
  });

  it('follows scaling up and down, through the terminating phase', async () => {
    const rec = new SnapshotRecorder(d.catalog);
    await fed.scale('shop/web', 'alpha', 'us-east-a', 4);
    let s = await waitSnapshot(
      d,
      (x) => addressesOf(x, 'shop/web', 'alpha').length === 5,
      'web to have 5 endpoints in alpha',
    );
    expect(matchesStore(s, 'shop/web', 'alpha', 'us-east')).toBe(true);
    expect(endpointsOf(s, 'shop/web', 'alpha').every((e) => e.ready && e.serving)).toBe(true);
    expect(endpointsOf(s, 'shop/web', 'alpha').filter((e) => e.zone === 'us-east-a')).toHaveLength(
      4,
    );

    // Down to 1: three pods terminate (serving, not ready), then go.
    await fed.scale('shop/web', 'alpha', 'us-east-a', 1);
    const terminating = storeEndpoints(
      simOf(fed.cluster('alpha')),
      'shop',
      'web',
      'us-east',
    ).filter((e) => e.terminating);
    expect(terminating).toHaveLength(3);
    await waitFor(
      () =>
        rec.snapshots.some((x) => {
          const eps = byAddress(endpointsOf(x, 'shop/web', 'alpha'));
          return terminating.every((t) => {
            const e = eps.get(t.address);
            return e && !e.ready && e.serving && e.terminating;
          });
        }),
      SHORT_MS,
      'the scaled-down endpoints to show as terminating',
    );
    s = await waitSnapshot(
      d,
      (x) => addressesOf(x, 'shop/web', 'alpha').length === 2,
      'the terminated endpoints to go',
    );
    expect(matchesStore(s, 'shop/web', 'alpha', 'us-east')).toBe(true);
    for (const t of terminating) {
      expect(addressesOf(s, 'shop/web', 'alpha')).not.toContain(t.address);
    }

    // Scaled into a cluster where it was not deployed: the new member joins.
    await fed.scale('shop/web', 'beta', 'us-west-a', 2);
    s = await waitSnapshot(
      d,
      (x) => addressesOf(x, 'shop/web', 'beta').length === 2,
      'web to appear in beta',
    );
    expect(s.services.get('shop/web')!.clusters.map((c) => c.cluster)).toEqual(['alpha', 'beta']);
    expect(matchesStore(s, 'shop/web', 'beta', 'us-west')).toBe(true);

    // Down to 0 in beta: no endpoints, still a member (its ServiceExport stays).
    await fed.scale('shop/web', 'beta', 'us-west-a', 0);
    s = await waitSnapshot(
      d,
      (x) => member(x, 'shop/web', 'beta') && addressesOf(x, 'shop/web', 'beta').length === 0,
      'web to have no endpoints in beta',
    );
    expect(matchesStore(s, 'shop/web', 'alpha', 'us-east')).toBe(true);
  });

  it('republishes only the service that changed', async () => {
    const before = d.catalog.current();
    const rec = new SnapshotRecorder(d.catalog);
    await fed.scale('shop/api', 'beta', 'us-west-a', 3);
    const s = await waitSnapshot(
      d,
      (x) => addressesOf(x, 'shop/api', 'beta').length === 3,
      'api to have 3 endpoints in beta',
    );
    expect(s.version).toBeGreaterThan(before.version);
    expect(s.services.get('shop/api')).not.toBe(before.services.get('shop/api'));
    // Every snapshot on the way kept the untouched services as the very same objects.
    for (const x of rec.snapshots) {
      expect(x.services.get('shop/web')).toBe(before.services.get('shop/web'));
      expect(x.services.get('data/db')).toBe(before.services.get('data/db'));
    }
    expect(matchesStore(s, 'shop/api', 'beta', 'us-west')).toBe(true);
    expect(matchesStore(s, 'shop/api', 'alpha', 'us-east')).toBe(true);
  });
});

// ---- 3. endpoint conditions ------------------------------------------------------------

describe('endpoint conditions', () => {
  it('follow the EndpointSlice, with the API defaults for missing conditions', async () => {
    const alpha = await env.cluster('alpha');
    const eps = (list: EndpointSpec[]) => slice('shop', 'web', 'web-a', list);
    deploy(alpha, 'shop', 'web', []);
    alpha.apply(
      eps([
        { address: '127.11.0.1' }, // no conditions at all
        { address: '127.11.0.2', conditions: { ready: false } },
        { address: '127.11.0.3', conditions: { ready: false, serving: true, terminating: true } },
        { address: '127.11.0.4', conditions: { serving: false } },
        { address: '127.11.0.5', conditions: { ready: true, serving: true, terminating: false } },
        { address: '127.11.0.6', conditions: { terminating: true } },
      ]),
    );
    const d = await env.startSynced(await env.config([{ sim: alpha }]));
    const state = (s: Snapshot) =>
      Object.fromEntries(
        endpointsOf(s, 'shop/web', 'alpha').map((e) => [
          e.address,
          [e.ready, e.serving, e.terminating],
        ]),
      );
    let s = await waitSnapshot(d, (x) => addressesOf(x, 'shop/web', 'alpha').length === 6, 'web');
    expect(state(s)).toEqual({
      '127.11.0.1': [true, true, false],
      '127.11.0.2': [false, false, false],
      '127.11.0.3': [false, true, true],
      '127.11.0.4': [true, false, false],
      '127.11.0.5': [true, true, false],
      '127.11.0.6': [true, true, true],
    });

    alpha.apply(
      eps([
        { address: '127.11.0.1', conditions: { ready: false } },
        { address: '127.11.0.2', conditions: { ready: true } },
        { address: '127.11.0.3' },
        { address: '127.11.0.4', conditions: { ready: false, serving: true } },
        { address: '127.11.0.5', conditions: { ready: false, serving: true, terminating: true } },
        { address: '127.11.0.6', conditions: { ready: false, serving: false, terminating: true } },
      ]),
    );
    s = await waitSnapshot(
      d,
      (x) => state(x)['127.11.0.6']?.[1] === false,
      'the condition changes to arrive',
    );
    expect(state(s)).toEqual({
      '127.11.0.1': [false, false, false],
      '127.11.0.2': [true, true, false],
      '127.11.0.3': [true, true, false],
      '127.11.0.4': [false, true, false],
      '127.11.0.5': [false, true, true],
      '127.11.0.6': [false, false, true],
    });
  });
});

// ---- 4. locality from node labels ------------------------------------------------------

describe('endpoint locality', () => {
  it('comes from the endpoint zone, else its node labels, else the configured region', async () => {
    const alpha = await env.cluster('alpha');
    const beta = await env.cluster('beta');
    const ZONE = 'topology.kubernetes.io/zone';
    const REGION = 'topology.kubernetes.io/region';
    alpha.apply(node('n1', { [ZONE]: 'z1', [REGION]: 'r1' }));
    alpha.apply(node('n2', { [ZONE]: 'z2' }));
    alpha.apply(node('n3', {}));
    deploy(alpha, 'shop', 'web', [
      { address: '127.11.0.1', nodeName: 'n1' },
      { address: '127.11.0.2', nodeName: 'n2' },
      { address: '127.11.0.3', nodeName: 'n3' },
      { address: '127.11.0.4' },
      { address: '127.11.0.5', nodeName: 'n1', zone: 'ez' },
      { address: '127.11.0.6', nodeName: 'ghost' },
    ]);
    beta.apply(node('m1', { [ZONE]: 'bz' }));
    deploy(beta, 'shop', 'web', [{ address: '127.12.0.1', nodeName: 'm1' }]);
    const d = await env.startSynced(
      await env.config([{ sim: alpha, region: 'conf' }, { sim: beta }]),
    );
    const loc = (s: Snapshot, cluster = 'alpha') =>
      Object.fromEntries(
        endpointsOf(s, 'shop/web', cluster).map((e) => [e.address, [e.region, e.zone]]),
      );
    let s = await waitSnapshot(d, (x) => Object.keys(loc(x)).length === 6, 'web endpoints');
    expect(loc(s)).toEqual({
      '127.11.0.1': ['r1', 'z1'],
      '127.11.0.2': ['conf', 'z2'],
      '127.11.0.3': ['conf', undefined],
      '127.11.0.4': ['conf', undefined],
      '127.11.0.5': ['r1', 'ez'],
      '127.11.0.6': ['conf', undefined],
    });
    // No configured region and no region label: no region.
    expect(loc(s, 'beta')).toEqual({ '127.12.0.1': [undefined, 'bz'] });

    // Relabelled nodes move their endpoints; the endpoint's own zone still wins.
    alpha.apply(node('n1', { [ZONE]: 'z9', [REGION]: 'r9' }));
    alpha.apply(node('n2', { [ZONE]: 'z2', [REGION]: 'r2' }));
    s = await waitSnapshot(
      d,
      (x) => loc(x)['127.11.0.1']?.[1] === 'z9' && loc(x)['127.11.0.2']?.[0] === 'r2',
      'relabelled nodes',
    );
    expect(loc(s)).toMatchObject({
      '127.11.0.1': ['r9', 'z9'],
      '127.11.0.2': ['r2', 'z2'],
      '127.11.0.5': ['r9', 'ez'],
    });

    // A node that appears after its endpoints, one that loses its labels, one that goes.
    alpha.apply(node('ghost', { [ZONE]: 'zg' }));
    alpha.apply(node('n1', {}));
    alpha.remove('v1', 'Node', undefined, 'n2');
    s = await waitSnapshot(
      d,
      (x) =>
        loc(x)['127.11.0.6']?.[1] === 'zg' &&
        loc(x)['127.11.0.1']?.[1] === undefined &&
        loc(x)['127.11.0.2']?.[1] === undefined,
      'node additions, relabels and deletions',
    );
    expect(loc(s)).toEqual({
      '127.11.0.1': ['conf', undefined],
      '127.11.0.2': ['conf', undefined],
      '127.11.0.3': ['conf', undefined],
      '127.11.0.4': ['conf', undefined],
      '127.11.0.5': ['conf', 'ez'],
      '127.11.0.6': ['conf', 'zg'],
    });
  });
});

// ---- 5. API failures: fail static, then catch up -----------------------------------------

describe.each(['refuse', 'hang', 'drop'] as const)('an API that goes %s', (mode: FaultMode) => {
  it('leaves the cluster stale with its endpoints kept, then catches up on everything', async () => {
    const alpha = await env.cluster('alpha');
    const beta = await env.cluster('beta');
    deploy(alpha, 'shop', 'web', readyEndpoints(1, 3));
    deploy(alpha, 'shop', 'gone', readyEndpoints(2, 1));
    deploy(beta, 'shop', 'web', readyEndpoints(3, 2));
    deploy(beta, 'shop', 'solo', readyEndpoints(4, 1));
    const d = await env.startSynced(
      await env.config([
        { sim: alpha, region: 'r1' },
        { sim: beta, region: 'r2' },
      ]),
    );
    const s0 = d.catalog.current();
    const synced0 = s0.clusters.get('alpha')!;
    expect(synced0.state).toBe('synced');
    expect(synced0.lastSyncAt).toBeTypeOf('number');
    const rec = new SnapshotRecorder(d.catalog);

    await alpha.setFault(mode);
    const s1 = await waitSnapshot(
      d,
      (x) => x.clusters.get('alpha')!.state === 'stale',
      `alpha to go stale (${mode})`,
    );
    const status = s1.clusters.get('alpha')!;
    expect(status.error?.code).toBe('CLUSTER_UNREACHABLE');
    expect(status.error?.message).toContain('cluster alpha');
    expect(status.syncedOnce).toBe(true);
    expect(status.lastSyncAt).toBeGreaterThanOrEqual(synced0.lastSyncAt!);
    expect(status.lastSyncAt).toBeLessThanOrEqual(Date.now());
    // Fail static: the endpoints stay, marked stale.
    const web = member(s1, 'shop/web', 'alpha')!.member;
    expect(web.sync.state).toBe('stale');
    expect(web.sync.lastSyncAt).toBe(status.lastSyncAt);
    expect(addressesOf(s1, 'shop/web', 'alpha')).toEqual(addressesOf(s0, 'shop/web', 'alpha'));
    expect(member(s1, 'shop/gone', 'alpha')?.member.sync.state).toBe('stale');
    // The other cluster is untouched; a service only there is the very same object.
    expect(s1.clusters.get('beta')!.state).toBe('synced');
    expect(member(s1, 'shop/web', 'beta')!.member.sync.state).toBe('synced');
    expect(s1.services.get('shop/solo')).toBe(s0.services.get('shop/solo'));
    expect(env.log.find(/member API failing/, 'alpha').length).toBeGreaterThanOrEqual(1);

    // Changes while the API is down, straight into the cluster's store.
    alpha.apply(
      slice('shop', 'web', 'web-a', [
        ...readyEndpoints(1, 4),
        { address: '127.11.1.5', conditions: { ready: false } },
      ]),
    );
    undeploy(alpha, 'shop', 'gone');
    deploy(alpha, 'shop', 'fresh', readyEndpoints(9, 2));
    const afterChanges = new SnapshotRecorder(d.catalog);

    await alpha.setFault('up');
    const s2 = await waitSnapshot(
      d,
      (x) =>
        x.clusters.get('alpha')!.state === 'synced' &&
        addressesOf(x, 'shop/web', 'alpha').length === 5 &&
        !x.services.has('shop/gone') &&
        x.services.has('shop/fresh'),
      `alpha to catch up after ${mode}`,
      RECOVERY_MS,
    );
    expect(s2.clusters.get('alpha')!.error).toBeUndefined();
    expect(endpointsOf(s2, 'shop/web', 'alpha')).toEqual([
      ...readyEndpoints(1, 4).map((e) => ({
        address: e.address,
        ready: true,
        serving: true,
        terminating: false,
        zone: undefined,
        region: 'r1',
      })),
      {
        address: '127.11.1.5',
        ready: false,
        serving: false,
        terminating: false,
        zone: undefined,
        region: 'r1',
      },
    ]);
    expect(addressesOf(s2, 'shop/fresh', 'alpha')).toEqual(['127.11.9.1', '127.11.9.2']);
    expect([...s2.services.keys()].sort()).toEqual(['shop/fresh', 'shop/solo', 'shop/web']);
    for (const svc of s2.services.values()) {
      for (const m of svc.clusters) expect(m.sync.state).toBe('synced');
    }
    expect(addressesOf(s2, 'shop/web', 'beta')).toEqual(addressesOf(s0, 'shop/web', 'beta'));
    expect(env.log.find(/member API back in sync/, 'alpha').length).toBeGreaterThanOrEqual(1);
    // Never, on the way, did web lose its alpha endpoints.
    for (const x of rec.snapshots) {
      expect(addressesOf(x, 'shop/web', 'alpha').length).toBeGreaterThanOrEqual(3);
    }
    // Once the changes were made, alpha counts as synced only with all of them.
    // (Not checked for 'drop': its lists keep working while every watch is cut,
    // so what "synced" means for a moment there depends on which cut came first.)
    for (const x of mode === 'drop' ? [] : afterChanges.snapshots) {
      if (x.clusters.get('alpha')!.state !== 'synced') continue;
      expect(addressesOf(x, 'shop/web', 'alpha')).toEqual(addressesOf(s2, 'shop/web', 'alpha'));
      expect([...x.services.keys()].sort()).toEqual(['shop/fresh', 'shop/solo', 'shop/web']);
    }
  });
});

// ---- 6. compaction: 410, relist ------------------------------------------------------------

describe.each(['refuse', 'drop'] as const)(
  'changes and compaction during an outage (%s)',
  (mode) => {
    it('end in a relist: nothing lost, nothing duplicated, and watching resumes', async () => {
      const alpha = await env.cluster('alpha');
      for (let i = 0; i < 5; i++) deploy(alpha, 'shop', `s${i}`, readyEndpoints(i, 2));
      // Small pages, so the relists page through continue tokens.
      const d = await env.startSynced(
        await env.config([{ sim: alpha }], { ...FAST_WATCH, pageSize: 2 }),
      );
      expect([...d.catalog.current().services.keys()].sort()).toEqual([
        'shop/s0',
        'shop/s1',
        'shop/s2',
        'shop/s3',
        'shop/s4',
      ]);

      await alpha.setFault(mode);
      await waitSnapshot(d, (x) => x.clusters.get('alpha')!.state === 'stale', 'alpha stale');
      const revision = alpha.store.revision;
      // One synchronous burst, then the history is dropped: whatever watch fedgate
      // opens next starts from a revision that is gone.
      alpha.apply(slice('shop', 's0', 's0-a', readyEndpoints(0, 3)));
      alpha.apply(slice('shop', 's0', 's0-b', readyEndpoints(0, 1, 4)));
      undeploy(alpha, 'shop', 's1');
      alpha.remove(EXPORT_API, 'ServiceExport', 'shop', 's2');
      alpha.remove(SLICE_API, 'EndpointSlice', 'shop', 's3-a');
      alpha.apply(slice('shop', 's3', 's3-b', readyEndpoints(3, 1, 7)));
      for (let i = 1; i <= 9; i++)
        alpha.apply(slice('shop', 's4', 's4-a', readyEndpoints(4, 1, i)));
      deploy(alpha, 'shop', 's5', readyEndpoints(5, 2));
      alpha.compact();
      expect(alpha.store.compactedRevision).toBeGreaterThan(revision);

      const rec = new SnapshotRecorder(d.catalog);
      await alpha.setFault('up');
      const expected = {
        'shop/s0': ['127.11.0.1', '127.11.0.2', '127.11.0.3', '127.11.0.4'],
        'shop/s3': ['127.11.3.7'],
        'shop/s4': ['127.11.4.9'],
        'shop/s5': ['127.11.5.1', '127.11.5.2'],
      };
      const actual = (x: Snapshot) =>
        Object.fromEntries(
          [...x.services.keys()].sort().map((k) => [k, addressesOf(x, k, 'alpha')]),
        );
      const s = await waitSnapshot(
        d,
        (x) =>
          x.clusters.get('alpha')!.state === 'synced' &&
          JSON.stringify(actual(x)) === JSON.stringify(expected),
        'alpha to relist after compaction',
        RECOVERY_MS,
      );
      expect(actual(s)).toEqual(expected);
      // Synced means the catalog holds what the cluster says: never before the
      // relist is done. (With 'drop' lists work throughout, so fedgate may be in
      // sync for a moment before the API is "up" again; only refuse is checked.)
      if (mode === 'refuse') {
        for (const x of rec.snapshots) {
          if (x.clusters.get('alpha')!.state === 'synced') expect(actual(x)).toEqual(expected);
        }
      }
      // Exact counts: no endpoint listed twice, none from a deleted slice.
      for (const svc of s.services.values()) {
        const eps = svc.clusters[0]!.endpoints;
        expect(new Set(eps.map((e) => e.addresses[0])).size).toBe(eps.length);
      }

      // The watch goes on from the relist: live changes arrive.
      alpha.apply(slice('shop', 's5', 's5-a', readyEndpoints(5, 3)));
      alpha.remove(SLICE_API, 'EndpointSlice', 'shop', 's0-b');
      await waitSnapshot(
        d,
        (x) =>
          addressesOf(x, 'shop/s5', 'alpha').length === 3 &&
          addressesOf(x, 'shop/s0', 'alpha').length === 3,
        'live changes after the relist',
      );
      expect(env.log.atLeast(50)).toEqual([]);
    });
  },
);

describe('a watch resumed past a compaction', () => {
  it('gets 410 and relists, exactly and without calling the cluster stale', async () => {
    // Bookmarks far apart: the watchdog restarts quiet watches routinely, each
    // resuming from the last resourceVersion it saw (not an outage).
    const alpha = await env.cluster('alpha', { bookmarkIntervalMs: 600_000 });
    const ZONE = 'topology.kubernetes.io/zone';
    alpha.apply(node('n1', { [ZONE]: 'z1' }));
    const onN1 = (third: number, count: number) =>
      readyEndpoints(third, count).map((e) => ({ ...e, nodeName: 'n1' }));
    for (let i = 0; i < 3; i++) deploy(alpha, 'shop', `s${i}`, onN1(i, 2));
    let expired = 0;
    const changesSince = alpha.store.changesSince.bind(alpha.store);
    alpha.store.changesSince = (rev: number) => {
      try {
        return changesSince(rev);
      } catch (e) {
        expired++;
        throw e;
      }
    };
    const d = await env.startSynced(
      await env.config([{ sim: alpha }], { ...FAST_WATCH, silenceLimit: '1s', pageSize: 2 }),
    );
    const rec = new SnapshotRecorder(d.catalog);
    await waitFor(() => alpha.api.openWatches === 4, SHORT_MS, 'four open watches');
    // Best effort: strike while some watch is between restarts, so it misses the
    // changes outright. Every watch resumes past the compaction anyway.
    const deadline = Date.now() + 5000;
    while (alpha.api.openWatches === 4 && Date.now() < deadline) await setImmediate();
    alpha.apply(slice('shop', 's0', 's0-a', onN1(0, 3)));
    alpha.remove(EXPORT_API, 'ServiceExport', 'shop', 's1');
    deploy(alpha, 'shop', 's3', onN1(3, 1));
    alpha.apply(node('n1', { [ZONE]: 'z2' }));
    alpha.compact();

    const expected = {
      'shop/s0': ['127.11.0.1', '127.11.0.2', '127.11.0.3'],
      'shop/s2': ['127.11.2.1', '127.11.2.2'],
      'shop/s3': ['127.11.3.1'],
    };
    const actual = (x: Snapshot) =>
      Object.fromEntries([...x.services.keys()].sort().map((k) => [k, addressesOf(x, k, 'alpha')]));
    const s = await waitSnapshot(
      d,
      (x) =>
        JSON.stringify(actual(x)) === JSON.stringify(expected) &&
        endpointsOf(x, 'shop/s0', 'alpha').every((e) => e.zone === 'z2'),
      'the changes to arrive',
    );
    for (const svc of s.services.values()) {
      expect(svc.clusters[0]!.endpoints.every((e) => e.locality.zone === 'z2')).toBe(true);
    }
    // Every kind's watch restarts from before the compaction: four 410s, four relists.
    await waitFor(() => expired >= 4, SHORT_MS, 'every watch to meet the compaction');
    await waitFor(() => alpha.api.openWatches === 4, SHORT_MS, 'watching again');
    alpha.apply(slice('shop', 's2', 's2-a', onN1(2, 1)));
    const after = await waitSnapshot(
      d,
      (x) => addressesOf(x, 'shop/s2', 'alpha').length === 1,
      'a live change after the relists',
    );
    expect(actual(after)).toEqual({ ...expected, 'shop/s2': ['127.11.2.1'] });
    // A 410 is routine: the cluster never went stale, nothing was logged as failing.
    for (const x of rec.snapshots) expect(x.clusters.get('alpha')!.state).toBe('synced');
    expect(env.log.atLeast(WARN)).toEqual([]);
    // The metrics' counters saw it the same way: relists for expiry, none for errors.
    const stats = [...d.watchers[0]!.watchStats().values()];
    expect(stats.reduce((n, s) => n + s.relists.expired, 0)).toBeGreaterThanOrEqual(4);
    expect(stats.reduce((n, s) => n + s.relists.error, 0)).toBe(0);
    expect(d.watchers[0]!.watchStats().get('endpointslices')!.events.MODIFIED).toBeGreaterThan(0);
  });
});

// ---- 7. wrong credentials ---------------------------------------------------------------

describe('wrong credentials', () => {
  it('report CLUSTER_UNAUTHORIZED naming the cluster, and readiness times out without it', async () => {
    const good = await env.cluster('good');
    const bad = await env.cluster('bad');
    deploy(good, 'shop', 'web', readyEndpoints(1, 2));
    deploy(bad, 'shop', 'web', readyEndpoints(2, 2));
    await env.breakToken(bad, 'not-the-right-token');
    const config = await env.config([{ sim: good }, { sim: bad }], {
      ...FAST_WATCH,
      startupTimeout: '3s',
    });
    const d = env.start(config);
    const readiness = await d.catalog.whenReady(config.watch.startupTimeout);
    expect(readiness).toEqual({ ready: false, missing: ['bad'], timedOut: true });

    const s = await waitSnapshot(
      d,
      (x) => x.clusters.get('bad')!.error !== undefined && x.clusters.get('good')!.syncedOnce,
      'the bad cluster to report its error',
    );
    const status = s.clusters.get('bad')!;
    expect(status.state).toBe('syncing');
    expect(status.syncedOnce).toBe(false);
    expect(status.error?.code).toBe('CLUSTER_UNAUTHORIZED');
    expect(status.error?.message).toMatch(/^cluster bad: /);
    expect(status.error?.message).toContain('401');
    expect(s.clusters.get('good')!.state).toBe('synced');
    // What the good cluster exports is served; nothing from the bad one.
    expect(s.services.get('shop/web')!.clusters.map((c) => c.cluster)).toEqual(['good']);
    expect(d.catalog.readiness()).toEqual({ ready: false, missing: ['bad'], timedOut: false });
    // An operator at the default level sees why, once, not once per retry.
    const warned = env.log
      .atLeast(WARN)
      .filter((e) => e.cluster === 'bad' && e.code === 'CLUSTER_UNAUTHORIZED');
    expect(warned).toHaveLength(1);
  });
});

// ---- 8. clusters without ServiceExport ---------------------------------------------------

describe('a cluster without the ServiceExport resource', () => {
  it('federates annotated services, warns once, and the annotation works everywhere', async () => {
    const nocrd = await env.cluster('nocrd', { serviceExportCRD: false });
    const crd = await env.cluster('crd');
    nocrd.apply(namespace('shop'));
    nocrd.apply(service('shop', 'web', { annotations: { 'fedgate.io/federate': 'true' } }));
    nocrd.apply(slice('shop', 'web', 'web-a', readyEndpoints(1, 2)));
    nocrd.apply(service('shop', 'plain'));
    nocrd.apply(slice('shop', 'plain', 'plain-a', readyEndpoints(2, 1)));
    nocrd.apply(service('shop', 'off', { annotations: { 'fedgate.io/federate': 'false' } }));
    deploy(crd, 'shop', 'web', readyEndpoints(3, 1));
    crd.apply(service('shop', 'anno', { annotations: { 'fedgate.io/federate': 'true' } }));
    crd.apply(slice('shop', 'anno', 'anno-a', readyEndpoints(4, 1)));
    crd.apply(service('shop', 'plain'));

    // Look for ServiceExport again often, so the check repeats many times here.
    const d = await env.startSynced(await env.config([{ sim: nocrd }, { sim: crd }]), {
      absentRecheckMs: 100,
    });
    let s = d.catalog.current();
    expect(s.clusters.get('nocrd')!.exportMode).toBe('annotation');
    expect(s.clusters.get('crd')!.exportMode).toBe('ServiceExport');
    expect([...s.services.keys()].sort()).toEqual(['shop/anno', 'shop/web']);
    expect(s.services.get('shop/web')!.clusters.map((c) => c.cluster)).toEqual(['crd', 'nocrd']);
    expect(addressesOf(s, 'shop/web', 'nocrd')).toEqual(['127.11.1.1', '127.11.1.2']);
    expect(addressesOf(s, 'shop/anno', 'crd')).toEqual(['127.11.4.1']);
    // Opted in by annotation: exported since the Service was created.
    const svc = nocrd.get('v1', 'Service', 'shop', 'web')!;
    expect(member(s, 'shop/web', 'nocrd')!.member.exportedAt).toBe(
      Date.parse(svc.metadata.creationTimestamp!),
    );

    const warned = () => env.log.find(/does not serve ServiceExport/);
    expect(warned().map((e) => [e.cluster, e.level])).toEqual([['nocrd', WARN]]);

    // A reconnect, and many rechecks later: still the one warning.
    await nocrd.setFault('refuse');
    await waitSnapshot(d, (x) => x.clusters.get('nocrd')!.state === 'stale', 'nocrd stale');
    await nocrd.setFault('up');
    s = await waitSnapshot(
      d,
      (x) => x.clusters.get('nocrd')!.state === 'synced',
      'nocrd back in sync',
      RECOVERY_MS,
    );
    expect(s.clusters.get('nocrd')!.exportMode).toBe('annotation');
    expect(member(s, 'shop/web', 'nocrd')).toBeDefined();
    expect(warned()).toHaveLength(1);

    // The annotation is the export: removing it unexports, adding it exports.
    nocrd.apply(service('shop', 'web'));
    await waitSnapshot(d, (x) => !member(x, 'shop/web', 'nocrd'), 'web unexported in nocrd');
    nocrd.apply(service('shop', 'plain', { annotations: { 'fedgate.io/federate': 'true' } }));
    s = await waitSnapshot(d, (x) => x.services.has('shop/plain'), 'plain exported by annotation');
    expect(s.services.get('shop/plain')!.clusters.map((c) => c.cluster)).toEqual(['nocrd']);

    // The CRD gets installed: ServiceExport is read there from now on.
    nocrd.api.setGroupServed(MCS_GROUP, true);
    nocrd.apply(serviceExport('shop', 'web'));
    s = await waitSnapshot(
      d,
      (x) =>
        x.clusters.get('nocrd')!.exportMode === 'ServiceExport' && !!member(x, 'shop/web', 'nocrd'),
      'ServiceExport to be read in nocrd',
    );
    expect(member(s, 'shop/plain', 'nocrd')).toBeDefined();
    expect(env.log.find(/ServiceExport is now served/, 'nocrd')).toHaveLength(1);
    expect(warned()).toHaveLength(1);
  });
});

// ---- 9. no-op updates ----------------------------------------------------------------------

describe('updates that change nothing fedgate reads', () => {
  it('publish no snapshot', async () => {
    const alpha = await env.cluster('alpha');
    const ZONE = 'topology.kubernetes.io/zone';
    alpha.apply(node('n1', { [ZONE]: 'z1' }));
    alpha.apply(node('n2', { [ZONE]: 'z2' }));
    const onNode = (third: number, nodeName: string, count = 2): EndpointSpec[] =>
      readyEndpoints(third, count).map((e) => ({ ...e, nodeName }));
    // web's endpoints carry their own zone: their node's zone is not theirs.
    const webEndpoints = onNode(1, 'n1').map((e) => ({ ...e, zone: 'wz' }));
    deploy(alpha, 'shop', 'web', webEndpoints);
    deploy(alpha, 'shop', 'api', onNode(2, 'n2'));
    const d = await env.startSynced(await env.config([{ sim: alpha }]));
    const rec = new SnapshotRecorder(d.catalog);

    /**
     * Runs the no-ops, then a real change to api on the same watch (so it is
     * read after them), and checks that exactly one snapshot came, for api.
     */
    const round = async (what: string, noops: () => void, change: () => void, done: Check) => {
      const count = rec.count;
      const prev = d.catalog.current();
      const version = prev.version;
      noops();
      change();
      const s = await waitSnapshot(d, done, `${what}: the real change`);
      expect(rec.count, `${what}: snapshots published`).toBe(count + 1);
      expect(s.version).toBe(version + 1);
      expect(s.services.get('shop/web'), `${what}: web unchanged`).toBe(
        prev.services.get('shop/web'),
      );
      expect(s.services.get('shop/api')).not.toBe(prev.services.get('shop/api'));
    };
    type Check = (s: Snapshot) => unknown;

    await round(
      'Service',
      () => {
        alpha.apply(service('shop', 'web')); // identical
        alpha.apply(service('shop', 'web', { labels: { tier: 'front' } }));
        alpha.apply(
          service('shop', 'web', {
            labels: { tier: 'front' },
            annotations: { 'example.com/owner': 'team-a' },
          }),
        );
        const web = alpha.get('v1', 'Service', 'shop', 'web')!;
        alpha.apply({ ...web, status: { conditions: [] } });
      },
      () =>
        alpha.apply(
          service('shop', 'api', {
            ports: [
              { name: 'http', port: 80 },
              { name: 'grpc', port: 9090 },
            ],
          }),
        ),
      (s) => s.services.get('shop/api')!.ports.length === 2,
    );

    await round(
      'EndpointSlice',
      () => {
        alpha.apply(slice('shop', 'web', 'web-a', webEndpoints)); // identical
        alpha.apply(slice('shop', 'web', 'web-a', webEndpoints, { labels: { extra: 'x' } }));
        const web = alpha.get(SLICE_API, 'EndpointSlice', 'shop', 'web-a')!;
        alpha.apply({
          ...web,
          metadata: { ...web.metadata, annotations: { 'example.com/note': 'n' } },
          endpoints: (web.endpoints as object[]).map((e, i) => ({
            ...e,
            targetRef: { kind: 'Pod', namespace: 'shop', name: `web-${i}` },
          })),
        });
      },
      () => alpha.apply(slice('shop', 'api', 'api-a', onNode(2, 'n2', 3))),
      (s) => addressesOf(s, 'shop/api', 'alpha').length === 3,
    );

    await round(
      'Node',
      () => {
        alpha.apply(node('n1', { [ZONE]: 'z1' })); // identical
        alpha.apply(node('n1', { [ZONE]: 'z1', 'kubernetes.io/arch': 'arm64' }));
        alpha.apply({
          ...alpha.get('v1', 'Node', undefined, 'n1')!,
          status: { conditions: [{ type: 'Ready', status: 'False' }] },
        });
      },
      () => alpha.apply(node('n2', { [ZONE]: 'z7' })),
      (s) => endpointsOf(s, 'shop/api', 'alpha').every((e) => e.zone === 'z7'),
    );

    // A zone change on web's node reaches the catalog, but changes none of web's
    // endpoints (their own zone wins): web is merged again and found equal.
    await round(
      'Node zone under endpoints with their own',
      () => alpha.apply(node('n1', { [ZONE]: 'z5' })),
      () => alpha.apply(node('n2', { [ZONE]: 'z8' })),
      (s) => endpointsOf(s, 'shop/api', 'alpha').every((e) => e.zone === 'z8'),
    );
    expect(endpointsOf(d.catalog.current(), 'shop/web', 'alpha').map((e) => e.zone)).toEqual([
      'wz',
      'wz',
    ]);

    await round(
      'ServiceExport',
      () => {
        alpha.apply(serviceExport('shop', 'web')); // identical
        alpha.apply({
          ...serviceExport('shop', 'web'),
          metadata: { name: 'web', namespace: 'shop', labels: { seen: 'yes' } },
        });
        alpha.apply({
          ...alpha.get(EXPORT_API, 'ServiceExport', 'shop', 'web')!,
          status: { conditions: [{ type: 'Valid', status: 'True' }] },
        });
      },
      () => alpha.remove(EXPORT_API, 'ServiceExport', 'shop', 'api'),
      (s) => !s.services.has('shop/api'),
    );
  });
});

// ---- 11. one service from two clusters -----------------------------------------------------

describe('merging', () => {
  it('unions ports and clusters, and settles a type conflict by the oldest export', async () => {
    const alpha = await env.cluster('alpha');
    const beta = await env.cluster('beta');
    for (const sim of [alpha, beta]) sim.apply(namespace('shop'));
    alpha.apply(
      service('shop', 'web', {
        headless: true,
        ports: [
          { name: 'http', port: 80 },
          { name: 'admin', port: 8081 },
        ],
      }),
    );
    alpha.apply(slice('shop', 'web', 'web-a', readyEndpoints(1, 2)));
    beta.apply(
      service('shop', 'web', {
        ports: [
          { name: 'http', port: 80 },
          { name: 'metrics', port: 9090 },
          { name: 'admin', port: 8082 },
        ],
      }),
    );
    beta.apply(slice('shop', 'web', 'web-a', readyEndpoints(2, 3)));
    // beta exported first: it decides the type.
    putCreatedAt(alpha, serviceExport('shop', 'web'), '2023-06-01T00:00:00Z');
    putCreatedAt(beta, serviceExport('shop', 'web'), '2021-06-01T00:00:00Z');
    const d = await env.startSynced(
      await env.config([
        { sim: alpha, region: 'r1' },
        { sim: beta, region: 'r2', weight: 3 },
      ]),
    );
    let s = d.catalog.current();
    let web = s.services.get('shop/web')!;
    expect(web.clusters.map((c) => [c.cluster, c.weight, c.exportedAt])).toEqual([
      ['alpha', 1, Date.parse('2023-06-01T00:00:00Z')],
      ['beta', 3, Date.parse('2021-06-01T00:00:00Z')],
    ]);
    expect(addressesOf(s, 'shop/web', 'alpha')).toEqual(['127.11.1.1', '127.11.1.2']);
    expect(addressesOf(s, 'shop/web', 'beta')).toEqual(['127.11.2.1', '127.11.2.2', '127.11.2.3']);
    expect(web.type).toBe('ClusterSetIP');
    const portsOf = (w: typeof web) =>
      w.ports.map((p) => `${p.name}:${p.port}`).sort((a, b) => a.localeCompare(b));
    // The union by name; admin differs and the older export's number stands.
    expect(portsOf(web)).toEqual(['admin:8082', 'http:80', 'metrics:9090']);
    expect(web.conflicts.map((c) => [c.field, c.clusters])).toEqual([
      ['type', ['alpha']],
      ['ports', ['alpha']],
    ]);
    expect(web.conflicts[0]!.reason).toContain('beta');

    // Now alpha's export is the older one: it wins the type and the port.
    putCreatedAt(beta, serviceExport('shop', 'web'), '2024-06-01T00:00:00Z');
    s = await waitSnapshot(
      d,
      (x) => x.services.get('shop/web')?.type === 'Headless',
      'alpha to win as the oldest export',
    );
    web = s.services.get('shop/web')!;
    expect(portsOf(web)).toEqual(['admin:8081', 'http:80', 'metrics:9090']);
    expect(web.conflicts.map((c) => [c.field, c.clusters])).toEqual([
      ['type', ['beta']],
      ['ports', ['beta']],
    ]);

    // Agreement ends the conflicts (clusterIP is immutable: beta's Service is
    // replaced); unexporting one cluster leaves the other alone.
    beta.remove('v1', 'Service', 'shop', 'web');
    beta.apply(
      service('shop', 'web', {
        headless: true,
        ports: [
          { name: 'http', port: 80 },
          { name: 'admin', port: 8081 },
        ],
      }),
    );
    s = await waitSnapshot(
      d,
      (x) =>
        x.services.get('shop/web')?.conflicts.length === 0 &&
        x.services.get('shop/web')?.clusters.length === 2,
      'the conflicts to clear',
    );
    expect(portsOf(s.services.get('shop/web')!)).toEqual(['admin:8081', 'http:80']);
    alpha.remove(EXPORT_API, 'ServiceExport', 'shop', 'web');
    s = await waitSnapshot(
      d,
      (x) => x.services.get('shop/web')?.clusters.length === 1,
      'alpha to leave',
    );
    expect(s.services.get('shop/web')!.clusters[0]!.cluster).toBe('beta');
  });
});

// ---- 12. stopping ------------------------------------------------------------------------------

describe('stopping', () => {
  it('closes every watch, publishes nothing more and logs no error', async () => {
    const alpha = await env.cluster('alpha');
    deploy(alpha, 'shop', 'web', readyEndpoints(1, 2));
    const config = await env.config([{ sim: alpha }]);
    const d = await env.startSynced(config);
    await waitFor(() => alpha.api.openWatches === 4, SHORT_MS, 'four open watches');
    const rec = new SnapshotRecorder(d.catalog);
    const final = d.catalog.current();
    const logged = env.log.entries.length;

    await d.stop();
    await waitFor(() => alpha.api.openWatches === 0, SHORT_MS, 'the watches to close');

    // A second fedgate sees the next changes: by then the stopped one would have too.
    const witness = await env.startSynced(config);
    await waitFor(() => alpha.api.openWatches === 4, SHORT_MS, "the witness's watches");
    alpha.apply(slice('shop', 'web', 'web-a', readyEndpoints(1, 5)));
    deploy(alpha, 'shop', 'api', readyEndpoints(2, 1));
    await waitSnapshot(
      witness,
      (x) => addressesOf(x, 'shop/web', 'alpha').length === 5 && x.services.has('shop/api'),
      'the witness to see the changes',
    );
    expect(rec.count).toBe(0);
    expect(d.catalog.current()).toBe(final);
    expect(alpha.api.openWatches).toBe(4);
    await witness.stop();
    await waitFor(() => alpha.api.openWatches === 0, SHORT_MS, "the witness's watches to close");
    expect(env.log.atLeast(WARN, logged)).toEqual([]);
  });

  it.each(['hang', 'refuse'] as const)(
    'stops promptly and quietly while the API is down (%s)',
    async (mode) => {
      const alpha = await env.cluster('alpha');
      deploy(alpha, 'shop', 'web', readyEndpoints(1, 2));
      const d = await env.startSynced(await env.config([{ sim: alpha }]));
      await alpha.setFault(mode);
      await waitSnapshot(d, (x) => x.clusters.get('alpha')!.state === 'stale', 'alpha stale');
      const logged = env.log.entries.length;
      let timer: NodeJS.Timeout | undefined;
      const outcome = await Promise.race([
        d.stop().then(() => 'stopped'),
        new Promise((resolve) => {
          timer = setTimeout(() => resolve('still running'), 10_000);
        }),
      ]);
      clearTimeout(timer);
      expect(outcome).toBe('stopped');
      const rec = new SnapshotRecorder(d.catalog);
      await alpha.setFault('up');
      await waitFor(() => alpha.api.openWatches === 0, SHORT_MS, 'no watches');
      expect(env.log.atLeast(WARN, logged)).toEqual([]);
      expect(rec.count).toBe(0);
    },
  );
});
