import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Discovery } from '../src/discovery.ts';
import type { LocalFederation } from '../src/localfed/federation.ts';
import type { Explanation } from '../src/routing/explain.ts';
import { DiscoveryEnv, FAST_HEALTH, startFederation } from './helpers/discovery-env.ts';
import { waitFor } from './helpers/wait.ts';

const SCENARIO = `
federation: { name: testfed, domain: example.test }
terminationGraceSeconds: 1
clusters:
  - name: alpha
    region: us-east
    zones: [{ name: us-east-a, nodes: 1 }, { name: us-east-b, nodes: 1 }]
  - name: beta
    region: us-west
    zones: [{ name: us-west-a, nodes: 1 }]
services:
  - { name: web, namespace: shop, ports: [{ name: http, port: 80, targetPort: 8080 }], clusters: [alpha, beta], replicasPerZone: 2 }
`;
const WAIT_MS = 20_000;

describe('routing and health against the local federation', () => {
  let fed: LocalFederation;
  let d: Discovery;
  const env = new DiscoveryEnv();

  beforeAll(async () => {
    ({ fed, d } = await startFederation(env, SCENARIO, 200, {
      self: { region: 'us-east', zone: 'us-east-a' },
      localities: [{ cidr: '127.3.0.0/16', region: 'us-west', zone: 'us-west-a' }],
      health: { ...FAST_HEALTH, outlier: { consecutive5xx: 3, maxEjectionPercent: 50 } },
    }));
  });
  afterAll(async () => {
    await env.cleanup();
    await fed?.stop();
  });

  const web = () => d.catalog.current().services.get('shop/web')!;
  const explain = (client: string) => d.router.explain(web(), client, Date.now());
  const loads = (x: Explanation) =>
    x.tiers
      .filter((t) => t.load > 0)
      .map((t) => [t.scope, t.locality.zone ?? t.regions.join(','), Math.round(t.load * 100)]);
  const waitLoads = (client: string, want: unknown[], what: string) =>
    waitFor(() => JSON.stringify(loads(explain(client))) === JSON.stringify(want), WAIT_MS, what);

  it('sends clients to their own zone: this replica by default, others by the locality table', async () => {
    await waitLoads('127.192.2.1', [['zone', 'us-east-a', 100]], 'us-east-a to serve');
    const x = explain('127.192.2.1');
    expect(x.client.source).toBe('self');
    expect(x.tiers.map((t) => t.scope)).toEqual(['zone', 'region', 'other']);
    expect(x.tiers[1]!.reason).toMatch(/^unused: the tiers above take all the traffic/);
    const west = explain('127.3.9.9');
    expect(west.client).toMatchObject({
      source: 'table',
      locality: { region: 'us-west', zone: 'us-west-a' },
    });
    expect(loads(west)).toEqual([['zone', 'us-west-a', 100]]);
  });

  it('moves traffic off a zone whose backends fail their health check, and back when they pass', async () => {
    fed.setHealth('us-east-a', false);
    await waitLoads('127.192.2.1', [['region', 'us-east', 100]], 'us-east-a to fail its checks');
    const x = explain('127.192.2.1');
    expect(x.tiers[0]!.reason).toBe('skipped: no eligible endpoint (0 of 2 endpoints eligible)');
    const failing = x.excluded.filter((e) => e.reasons.includes('check-failing'));
    expect(failing).toHaveLength(2);
    expect(failing[0]!.reason).toBe('failing its active health check (HTTP 503)');
    // Kubernetes still says ready: only fedgate's own checks saw it.
    expect(web().clusters[0]!.endpoints.every((e) => e.conditions.ready)).toBe(true);

    fed.setHealth('us-east-a', true);
    await waitLoads('127.192.2.1', [['zone', 'us-east-a', 100]], 'us-east-a to pass again');
  });

  it('spills part of the traffic when half a zone fails', async () => {
    const pod = web().clusters[0]!.endpoints.find((e) => e.locality.zone === 'us-east-a')!
      .addresses[0]!;
    fed.setHealth(pod, false);
    await waitLoads(
      '127.192.2.1',
      [
        ['zone', 'us-east-a', 70],
        ['region', 'us-east', 30],
      ],
      'a 70/30 spill',
    );
    fed.setHealth(pod, true);
    await waitLoads('127.192.2.1', [['zone', 'us-east-a', 100]], 'us-east-a whole again');
  });

  it('ejects an endpoint on consecutive 5xx reported by the proxy, and explains until when', async () => {
    const target = web().clusters[0]!.endpoints.find((e) => e.locality.zone === 'us-east-a')!;
    const id = `alpha/${target.addresses[0]}`;
    for (let i = 0; i < 3; i++)
      d.health.report('shop/web', id, { origin: 'upstream', status: 503 });
    const x = explain('127.192.2.1');
    const ejected = x.excluded.find((e) => e.id === id)!;
    expect(ejected.reasons).toEqual(['ejected']);
    expect(ejected.reason).toMatch(
      /^ejected by outlier detection until \d{4}-\d\d-\d\dT.*Z \(30 s from now\)$/,
    );
    expect(loads(x)).toEqual([
      ['zone', 'us-east-a', 70],
      ['region', 'us-east', 30],
    ]);
    expect(d.health.outlier.stats()).toMatchObject({
      enforced: { 'consecutive-5xx': 1 },
      ejected: 1,
    });
  });

  it('fails over to the other region when a whole zone goes down in Kubernetes too', async () => {
    await fed.failZone('us-east-b');
    await fed.failZone('us-east-a');
    await waitLoads('127.192.2.1', [['other', 'us-west', 100]], 'us-west to take over');
    const x = explain('127.192.2.1');
    expect(x.excluded.filter((e) => e.reasons.includes('not-ready')).length).toBeGreaterThanOrEqual(
      4,
    );
  });
});
