// The scenario file: the built-in galaxy federation, and errors that name their path.
import { describe, expect, it } from 'vitest';
import { loadScenario, parseScenario, ScenarioError } from '../src/localfed/scenario.ts';

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
