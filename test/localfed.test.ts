// The local federation as a whole: scenario → clusters, real backends, and
// EndpointSlices that always match the backends really listening, through every action.
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalFederation } from '../src/localfed/federation.ts';
import type { KubeObject } from '../src/localfed/objects.ts';
import { loadScenario, parseScenario, ScenarioError } from '../src/localfed/scenario.ts';
import { waitFor } from './helpers/wait.ts';

interface SliceEndpoint {
  addresses: string[];
  zone: string;
  nodeName: string;
  hostname?: string;
  conditions: { ready: boolean; serving: boolean; terminating: boolean };
}

function slices(fed: LocalFederation, cluster: string, ns: string, svc: string): SliceEndpoint[] {
  return fed
    .cluster(cluster)
    .store.list('discovery.k8s.io/endpointslices', ns)
    .filter((s: KubeObject) => s.metadata.labels?.['kubernetes.io/service-name'] === svc)
    .flatMap((s) => s.endpoints as SliceEndpoint[]);
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

/** Every endpoint is ready exactly when its backend accepts connections. */
async function expectSlicesMatchBackends(fed: LocalFederation): Promise<void> {
  for (const c of fed.describe().clusters) {
    for (const svc of new Set(c.pods.map((p) => p.service))) {
      const [ns, name] = svc.split('/') as [string, string];
      const endpoints = slices(fed, c.name, ns, name);
      const pods = c.pods.filter((p) => p.service === svc);
      expect(endpoints.map((e) => e.addresses[0]).sort()).toEqual(pods.map((p) => p.ip).sort());
      for (const e of endpoints) {
        const pod = pods.find((p) => p.ip === e.addresses[0])!;
        const listening = !(await refuses(pod.ip, pod.ports[0]!));
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

describe('local federation', () => {
  let fed: LocalFederation;

  beforeAll(async () => {
    const scenario = await loadScenario();
    fed = await LocalFederation.start(
      { ...scenario, terminationGraceSeconds: 0.3 },
      { addressBlock: 100, apiPort: 0 },
    );
  });
  afterAll(async () => {
    await fed?.stop();
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

  it('publishes EndpointSlices that match the listening backends, with headless hostnames', async () => {
    await expectSlicesMatchBackends(fed);
    const db = slices(fed, 'beta', 'data', 'db');
    expect(db.map((e) => e.hostname).sort()).toEqual(['db-0', 'db-1']);
    const svc = fed.cluster('beta').get('v1', 'Service', 'data', 'db')!;
    expect((svc.spec as { clusterIP: string }).clusterIP).toBe('None');
    expect(
      fed.cluster('alpha').get('multicluster.x-k8s.io/v1alpha1', 'ServiceExport', 'shop', 'web'),
    ).toBeDefined();
    expect(
      fed
        .cluster('alpha')
        .get('multicluster.x-k8s.io/v1alpha1', 'ServiceExport', 'shop', 'internal'),
    ).toBeUndefined();
    const node = fed.cluster('alpha').get('v1', 'Node', undefined, 'alpha-us-east-b-1')!;
    expect(node.metadata.labels).toMatchObject({
      'topology.kubernetes.io/region': 'us-east',
      'topology.kubernetes.io/zone': 'us-east-b',
    });
  });

  it('fails and restores a zone: backends refuse, nodes and endpoints go not ready', async () => {
    await fed.failZone('us-east-a');
    const inZone = fed.backends().filter((b) => b.info.zone === 'us-east-a');
    expect(inZone.length).toBeGreaterThan(0);
    for (const b of inZone) expect(await refuses(b.info.ip, b.info.ports[0]!)).toBe(true);
    const node = fed.cluster('alpha').get('v1', 'Node', undefined, 'alpha-us-east-a-1')!;
    expect((node.status as { conditions: { status: string }[] }).conditions[0]!.status).toBe(
      'Unknown',
    );
    await expectSlicesMatchBackends(fed);
    await fed.restoreZone('us-east-a');
    for (const b of inZone)
      expect((await get(`http://${b.info.ip}:${b.info.ports[0]}/`)).status).toBe(200);
    await expectSlicesMatchBackends(fed);
    await expect(fed.failZone('nowhere')).rejects.toThrow(/unknown zone "nowhere"/);
  });

  it('fails and restores a whole cluster: API and backends down, state kept', async () => {
    const beta = fed.cluster('beta');
    const before = beta.store.revision;
    await fed.failCluster('beta');
    expect(await refuses(beta.api.host, beta.api.port)).toBe(true);
    for (const b of fed.backends().filter((x) => x.info.cluster === 'beta')) {
      expect(await refuses(b.info.ip, b.info.ports[0]!)).toBe(true);
    }
    expect(beta.store.revision).toBe(before);
    await fed.restoreCluster('beta');
    expect(await refuses(beta.api.host, beta.api.port)).toBe(false);
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
    const terminating = slices(fed, 'gamma', 'shop', 'web').filter((e) => e.conditions.terminating);
    expect(terminating).toHaveLength(2);
    for (const e of terminating)
      expect(e.conditions).toEqual({ ready: false, serving: true, terminating: true });
    await waitFor(
      () => slices(fed, 'gamma', 'shop', 'web').length === 1,
      5000,
      'terminated pods to go',
    );
    expect(count()).toBe(1);
    await expectSlicesMatchBackends(fed);
    // Deploying where the service was not: the Service appears there too.
    await fed.scale('data/db', 'alpha', 'us-east-b', 1);
    expect(fed.cluster('alpha').get('v1', 'Service', 'data', 'db')).toBeDefined();
    expect(slices(fed, 'alpha', 'data', 'db')).toHaveLength(1);
    await expect(fed.scale('shop/nope', 'alpha', 'us-east-a', 1)).rejects.toThrow(
      /unknown service/,
    );
  });

  it('flips health without touching what Kubernetes says', async () => {
    const b = fed.backends().find((x) => x.info.service === 'api' && x.info.cluster === 'alpha')!;
    const revision = fed.cluster('alpha').store.revision;
    fed.setHealth(b.info.pod, false);
    expect((await get(`http://${b.info.ip}:${b.info.ports[0]}/healthz`)).status).toBe(503);
    expect((await get(`http://${b.info.ip}:${b.info.ports[0]}/`)).status).toBe(200);
    expect(fed.cluster('alpha').store.revision).toBe(revision);
    fed.setHealth(b.info.ip, true);
    expect((await get(`http://${b.info.ip}:${b.info.ports[0]}/healthz`)).body).toMatchObject({
      status: 'ok',
    });
  });

  it('serves a load balancer ingress that forwards to its own cluster', async () => {
    const svc = fed.cluster('beta').get('v1', 'Service', 'shop', 'web')!;
    const ingress = (svc.status as { loadBalancer: { ingress: { ip: string }[] } }).loadBalancer
      .ingress;
    expect(ingress).toHaveLength(1);
    const seen = new Set<string>();
    for (let i = 0; i < 4; i++) {
      const { body } = await get(`http://${ingress[0]!.ip}:80/`);
      expect(body.cluster).toBe('beta');
      seen.add(String(body.pod));
    }
    expect(seen.size).toBe(2);
  });

  it('breaks and mends only the API', async () => {
    const alpha = fed.cluster('alpha');
    await fed.apiDown('alpha', 'refuse');
    expect(await refuses(alpha.api.host, alpha.api.port)).toBe(true);
    await fed.apiUp('alpha');
    expect(await refuses(alpha.api.host, alpha.api.port)).toBe(false);
    const before = alpha.store.revision;
    fed.compact('alpha');
    expect(alpha.store.compactedRevision).toBeGreaterThan(before);
  });
});
