// fedgate's discovery on a whole local federation: the scenario's services federated as
// their EndpointSlices say, scaling through the terminating phase, and snapshots that
// republish only what changed.
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import type { Snapshot } from '../src/catalog/model.ts';
import { parseConfig } from '../src/config/load.ts';
import type { Discovery } from '../src/discovery.ts';
import type { SimCluster } from '../src/localfed/cluster.ts';
import { LocalFederation } from '../src/localfed/federation.ts';
import type { KubeObject } from '../src/localfed/objects.ts';
import { parseScenario } from '../src/localfed/scenario.ts';
import { simOf } from '../src/localfed/sim-member.ts';
import {
  byAddress,
  discoveryEnvs,
  type EndpointView,
  endpointsOf,
  SHORT_MS,
  waitSnapshot,
} from './helpers/discovery-checks.ts';
import {
  addressesOf,
  compareAddresses,
  type DiscoveryEnv,
  FAST_WATCH,
  member,
  SnapshotRecorder,
} from './helpers/discovery-env.ts';
import { waitFor } from './helpers/wait.ts';

let env: DiscoveryEnv;
const useEnv = discoveryEnvs((e) => {
  env = e;
});

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

// LocalFederation's scenario controllers drive the simulator's store directly.
describe('a local federation (simulator)', () => {
  useEnv('sim');
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
