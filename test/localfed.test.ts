// The local federation as a whole: scenario → clusters, real backends, and
// EndpointSlices that always match the backends really listening, through every action.
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalFederation } from '../src/localfed/federation.ts';
import { API_KINDS, type ApiKind, type MemberCluster } from '../src/localfed/member.ts';
import type { KubeObject } from '../src/localfed/objects.ts';
import { loadScenario, parseScenario, ScenarioError } from '../src/localfed/scenario.ts';
import { simOf } from '../src/localfed/sim-member.ts';
import { waitFor } from './helpers/wait.ts';

/** 127.212–214: the real federation here and `fedgate demo --api real` below, one after the other. */
const REAL_BLOCK = 212;

interface SliceEndpoint {
  addresses: string[];
  zone: string;
  nodeName: string;
  hostname?: string;
  conditions: { ready: boolean; serving: boolean; terminating: boolean };
}

/** Each API kind's federation gets its own addresses (three clusters from the block). */
const ADDRESS_BLOCK: Record<ApiKind, number> = { sim: 100, real: REAL_BLOCK };

async function slices(
  fed: LocalFederation,
  cluster: string,
  ns: string,
  svc: string,
): Promise<SliceEndpoint[]> {
  const all = await fed.cluster(cluster).list('discovery.k8s.io/v1', 'EndpointSlice', ns);
  return all
    .filter((s: KubeObject) => s.metadata.labels?.['kubernetes.io/service-name'] === svc)
    .flatMap((s) => s.endpoints as SliceEndpoint[]);
}

async function mustGet(
  m: MemberCluster,
  apiVersion: string,
  kind: string,
  ns: string | undefined,
  name: string,
): Promise<KubeObject> {
  const obj = await m.get(apiVersion, kind, ns, name);
  if (!obj) throw new Error(`${kind} ${ns ?? ''}/${name} not found in ${m.name}`);
  return obj;
}

async function get(url: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

function refuses(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    s.once('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', (e: NodeJS.ErrnoException) =>
      resolve(e.code === 'ECONNREFUSED' || e.code === 'ECONNRESET'),
    );
  });
}

/** Whether the member's API address (what kubeconfigs name) refuses connections. */
function apiRefuses(m: MemberCluster): Promise<boolean> {
  const url = new URL(m.url);
  return refuses(url.hostname, Number(url.port));
}

/** Every endpoint is ready exactly when its backend accepts connections. */
async function expectSlicesMatchBackends(fed: LocalFederation): Promise<void> {
  for (const c of (await fed.describe()).clusters) {
    for (const svc of new Set(c.pods.map((p) => p.service))) {
      const [ns, name] = svc.split('/') as [string, string];
      const endpoints = await slices(fed, c.name, ns, name);
      const pods = c.pods.filter((p) => p.service === svc);
      expect(endpoints.map((e) => e.addresses[0]).sort()).toEqual(pods.map((p) => p.ip).sort());
      for (const e of endpoints) {
        const pod = pods.find((p) => p.ip === e.addresses[0]);
        if (!pod) throw new Error(`no pod at ${e.addresses[0]}`);
        const listening = !(await refuses(pod.ip, pod.ports[0] ?? 0));
        expect(e.conditions.serving, `${pod.pod} serving`).toBe(listening);
        expect(e.conditions.ready, `${pod.pod} ready`).toBe(listening && !pod.terminating);
        expect(e.zone).toBe(pod.zone);
        expect(e.nodeName).toBe(pod.node);
      }
    }
  }
}

describe('default scenario', () => {
  it('is the galaxy federation: three clusters in two regions', async () => {
    const s = await loadScenario();
    expect(s.federation).toEqual({ name: 'galaxy', domain: 'example.test' });
    const clusters = Object.fromEntries(
      s.clusters.map((c) => [c.name, [c.region, c.zones.map((z) => z.name)]]),
    );
    expect(clusters).toEqual({
      alpha: ['us-east', ['us-east-a', 'us-east-b']],
      beta: ['us-east', ['us-east-c']],
      gamma: ['eu-west', ['eu-west-a']],
    });
    const svc = (ns: string, name: string) =>
      s.services.find((x) => x.namespace === ns && x.name === name)!;
    expect(svc('shop', 'web').clusters).toEqual(['alpha', 'beta', 'gamma']);
    expect(svc('shop', 'web').exported).toBe(true);
    expect(svc('shop', 'web').replicasPerZone).toBeGreaterThanOrEqual(2);
    expect(svc('shop', 'api').clusters).toEqual(['alpha', 'gamma']);
    expect(svc('data', 'db').headless).toBe(true);
    expect(svc('data', 'db').clusters).toEqual(['beta', 'gamma']);
  });

  it('rejects bad scenarios with the path of each problem', () => {
    const bad = `
federation: { name: galaxy, domain: example.test }
clusters:
  - { name: alpha, region: us-east, zones: [{ name: a }] }
services:
  - { name: web, namespace: shop, ports: [{ name: http, port: 70000 }], clusters: [nope] }
`;
    let err: unknown;
    try {
      parseScenario(bad, 'x.yaml');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ScenarioError);
    const msg = (err as Error).message;
    expect(msg).toContain('x.yaml: services[0].ports[0].port:');
    expect(msg).toContain('x.yaml: services[0].clusters[0]: unknown cluster "nope"');
    expect(() => parseScenario('clusters: [', 'y.yaml')).toThrow(/y\.yaml: not valid YAML/);
  });
});

describe.each(API_KINDS)('local federation on %s API servers', (api) => {
  let fed: LocalFederation;

  beforeAll(async () => {
    const scenario = await loadScenario();
    fed = await LocalFederation.start(
      { ...scenario, terminationGraceSeconds: 0.3 },
      { api, addressBlock: ADDRESS_BLOCK[api], apiPort: 0 },
    );
  }, 120_000);
  afterAll(async () => {
    await fed?.stop();
  }, 60_000);

  it('runs every member on the API server asked for, listed in scenario order', async () => {
    expect(fed.clusters.map((c) => [c.name, c.api])).toEqual([
      ['alpha', api],
      ['beta', api],
      ['gamma', api],
    ]);
    const d = await fed.describe();
    expect(d.clusters.map((c) => c.apiKind)).toEqual([api, api, api]);
    expect(d.clusters[0]?.api).toMatch(new RegExp(`^https://127\\.${ADDRESS_BLOCK[api]}\\.0\\.1:`));
    for (const c of d.clusters) expect(c.revision).toMatch(/^\d+$/);
  });

  it('runs a real backend per pod that says where it runs', async () => {
    const backends = fed.backends();
    expect(backends.length).toBeGreaterThanOrEqual(20);
    expect(new Set(backends.map((b) => b.info.ip)).size).toBe(backends.length);
    for (const b of backends) {
      const { status, body } = await get(`http://${b.info.ip}:${b.info.ports[0]}/some/path`);
      expect(status).toBe(200);
      expect(body).toMatchObject({
        cluster: b.info.cluster,
        zone: b.info.zone,
        node: b.info.node,
        pod: b.info.pod,
        service: b.info.service,
        path: '/some/path',
        host: `${b.info.ip}:${b.info.ports[0]}`,
      });
    }
  });

  it('publishes EndpointSlices that match the listening backends, as the EndpointSlice controller does', async () => {
    await expectSlicesMatchBackends(fed);
    const db = await slices(fed, 'beta', 'data', 'db');
    expect(db.map((e) => e.hostname).sort()).toEqual(['db-0', 'db-1']);
    const beta = fed.cluster('beta');
    const svc = await mustGet(beta, 'v1', 'Service', 'data', 'db');
    expect((svc.spec as { clusterIP: string }).clusterIP).toBe('None');
    const [slice] = (await beta.list('discovery.k8s.io/v1', 'EndpointSlice', 'data')).filter(
      (s) => s.metadata.labels?.['kubernetes.io/service-name'] === 'db',
    );
    expect(slice?.metadata.labels).toMatchObject({
      'endpointslice.kubernetes.io/managed-by': 'endpointslice-controller.k8s.io',
    });
    expect(slice?.metadata.ownerReferences).toEqual([
      expect.objectContaining({
        kind: 'Service',
        name: 'db',
        uid: svc.metadata.uid,
        controller: true,
      }),
    ]);
    const alpha = fed.cluster('alpha');
    const exportType = ['multicluster.x-k8s.io/v1alpha1', 'ServiceExport'] as const;
    expect(await alpha.get(...exportType, 'shop', 'web')).toBeDefined();
    expect(await alpha.get(...exportType, 'shop', 'internal')).toBeUndefined();
    const node = await mustGet(alpha, 'v1', 'Node', undefined, 'alpha-us-east-b-1');
    expect(node.metadata.labels).toMatchObject({
      'topology.kubernetes.io/region': 'us-east',
      'topology.kubernetes.io/zone': 'us-east-b',
    });
    expect((node.status as { addresses: unknown[] }).addresses).toContainEqual({
      type: 'InternalIP',
      address: expect.stringMatching(new RegExp(`^127\\.${ADDRESS_BLOCK[api]}\\.0\\.`)),
    });
  });

  it('fails and restores a zone: backends refuse, nodes and endpoints go not ready', async () => {
    await fed.failZone('us-east-a');
    const inZone = fed.backends().filter((b) => b.info.zone === 'us-east-a');
    expect(inZone.length).toBeGreaterThan(0);
    for (const b of inZone) expect(await refuses(b.info.ip, b.info.ports[0] ?? 0)).toBe(true);
    const node = await mustGet(fed.cluster('alpha'), 'v1', 'Node', undefined, 'alpha-us-east-a-1');
    expect(
      (node.status as { conditions: { type: string; status: string }[] }).conditions,
    ).toContainEqual(expect.objectContaining({ type: 'Ready', status: 'Unknown' }));
    await expectSlicesMatchBackends(fed);
    await fed.restoreZone('us-east-a');
    for (const b of inZone)
      expect((await get(`http://${b.info.ip}:${b.info.ports[0]}/`)).status).toBe(200);
    await expectSlicesMatchBackends(fed);
    await expect(fed.failZone('nowhere')).rejects.toThrow(/unknown zone "nowhere"/);
  });

  it('fails and restores a whole cluster: API and backends down, state kept', async () => {
    const beta = fed.cluster('beta');
    const before = await beta.revision();
    await fed.failCluster('beta');
    expect(await apiRefuses(beta)).toBe(true);
    for (const b of fed.backends().filter((x) => x.info.cluster === 'beta')) {
      expect(await refuses(b.info.ip, b.info.ports[0] ?? 0)).toBe(true);
    }
    expect(await beta.revision()).toBe(before);
    await fed.restoreCluster('beta');
    expect(await apiRefuses(beta)).toBe(false);
    await expectSlicesMatchBackends(fed);
  });

  it('scales up and down, with a terminating phase that still serves', async () => {
    const count = () =>
      fed.backends().filter((b) => b.info.service === 'web' && b.info.cluster === 'gamma').length;
    expect(count()).toBe(2);
    await fed.scale('shop/web', 'gamma', 'eu-west-a', 3);
    expect(count()).toBe(3);
    await expectSlicesMatchBackends(fed);
    await fed.scale('shop/web', 'gamma', 'eu-west-a', 1);
    const terminating = (await slices(fed, 'gamma', 'shop', 'web')).filter(
      (e) => e.conditions.terminating,
    );
    expect(terminating).toHaveLength(2);
    for (const e of terminating)
      expect(e.conditions).toEqual({ ready: false, serving: true, terminating: true });
    await waitFor(
      async () => (await slices(fed, 'gamma', 'shop', 'web')).length === 1,
      10_000,
      'terminated pods to go',
    );
    expect(count()).toBe(1);
    await expectSlicesMatchBackends(fed);
    // Deploying where the service was not: the Service appears there too.
    await fed.scale('data/db', 'alpha', 'us-east-b', 1);
    expect(await fed.cluster('alpha').get('v1', 'Service', 'data', 'db')).toBeDefined();
    expect(await slices(fed, 'alpha', 'data', 'db')).toHaveLength(1);
    await expect(fed.scale('shop/nope', 'alpha', 'us-east-a', 1)).rejects.toThrow(
      /unknown service/,
    );
  });

  it('serializes the actions on one cluster: concurrent scales end as the last one asked', async () => {
    const sizes = [4, 2, 5, 3];
    await Promise.all(sizes.map((n) => fed.scale('shop/api', 'alpha', 'us-east-b', n)));
    const live = (await fed.describe()).clusters
      .find((c) => c.name === 'alpha')
      ?.pods.filter((p) => p.service === 'shop/api' && p.zone === 'us-east-b' && !p.terminating);
    expect(live).toHaveLength(3);
    const ready = (await slices(fed, 'alpha', 'shop', 'api')).filter(
      (e) => e.zone === 'us-east-b' && e.conditions.ready,
    );
    expect(ready).toHaveLength(3);
    await expectSlicesMatchBackends(fed);
  });

  it('flips health without touching what Kubernetes says', async () => {
    const b = fed.backends().find((x) => x.info.service === 'api' && x.info.cluster === 'alpha');
    if (!b) throw new Error('no api pod in alpha');
    const alpha = fed.cluster('alpha');
    const revision = await alpha.revision();
    fed.setHealth(b.info.pod, false);
    expect((await get(`http://${b.info.ip}:${b.info.ports[0]}/healthz`)).status).toBe(503);
    expect((await get(`http://${b.info.ip}:${b.info.ports[0]}/`)).status).toBe(200);
    expect(await alpha.revision()).toBe(revision);
    fed.setHealth(b.info.ip, true);
    expect((await get(`http://${b.info.ip}:${b.info.ports[0]}/healthz`)).body).toMatchObject({
      status: 'ok',
    });
  });

  it('serves a load balancer ingress that forwards to its own cluster', async () => {
    const svc = await mustGet(fed.cluster('beta'), 'v1', 'Service', 'shop', 'web');
    const ingress = (svc.status as { loadBalancer: { ingress: { ip: string }[] } }).loadBalancer
      .ingress;
    expect(ingress).toHaveLength(1);
    const seen = new Set<string>();
    for (let i = 0; i < 4; i++) {
      const { body } = await get(`http://${ingress[0]?.ip}:80/`);
      expect(body.cluster).toBe('beta');
      seen.add(String(body.pod));
    }
    expect(seen.size).toBe(2);
  });

  it('breaks and mends only the API, and compacts its history', async () => {
    const alpha = fed.cluster('alpha');
    await fed.apiDown('alpha', 'refuse');
    expect(await apiRefuses(alpha)).toBe(true);
    expect((await fed.describe()).clusters[0]?.apiMode).toBe('refuse');
    await fed.apiUp('alpha');
    expect(await apiRefuses(alpha)).toBe(false);
    expect((await fed.describe()).clusters[0]?.apiMode).toBe('up');
    expect(await fed.compact('alpha')).toMatch(/compact/);
  });
});

// What only the simulator can show: its store's compaction point.
describe('local federation on the simulator only', () => {
  let fed: LocalFederation;

  beforeAll(async () => {
    fed = await LocalFederation.start(await loadScenario(), {
      addressBlock: ADDRESS_BLOCK.sim,
      apiPort: 0,
    });
  });
  afterAll(async () => {
    await fed?.stop();
  });

  it('compacts the store at its current revision', async () => {
    const alpha = simOf(fed.cluster('alpha'));
    const before = alpha.store.compactedRevision;
    await fed.compact('alpha');
    expect(alpha.store.compactedRevision).toBeGreaterThan(before);
  });
});
