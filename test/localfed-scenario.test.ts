// The scenario file: the built-in galaxy federation, and errors that name their path.
import { describe, expect, it } from 'vitest';
import { backendTlsConfig, withBackendTls } from '../src/localfed/backend-tls-config.ts';
import {
  loadScenario,
  parseScenario,
  portServing,
  ScenarioError,
} from '../src/localfed/scenario.ts';

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
    // gRPC and TLS-only services, each port serving as its appProtocol (and tls) say.
    const serving = (ns: string, name: string) => svc(ns, name).ports.map(portServing);
    expect(serving('shop', 'grpc-echo')).toEqual([{ protocol: 'grpc', tls: 'none' }]);
    expect(serving('shop', 'secure')).toEqual([{ protocol: 'http', tls: 'server' }]);
    expect(serving('shop', 'secure-mtls')).toEqual([{ protocol: 'http', tls: 'mutual' }]);
    expect(serving('shop', 'web')).toEqual([{ protocol: 'http', tls: 'none' }]);
    expect(svc('shop', 'grpc-echo').clusters).toEqual(['alpha', 'beta', 'gamma']);
    expect(svc('shop', 'secure').annotations['fedgate.io/backend-tls']).toBe('shop-secure');
  });

  it('writes a backend TLS profile per TLS service, with the CAs of the clusters it runs in', async () => {
    const files = {
      clusterCas: { alpha: '/d/pki/alpha.pem', beta: '/d/pki/beta.pem', gamma: '/d/pki/gamma.pem' },
      clientCa: '/d/pki/clients-ca.pem',
      clientCert: '/d/pki/fedgate-client.pem',
      clientKey: '/d/pki/fedgate-client-key.pem',
    };
    const scenario = await loadScenario();
    const tls = backendTlsConfig(scenario, files);
    // Added under routing, what the configuration already says winning.
    const given = {
      admin: { listen: '127.0.0.1:0' },
      routing: {
        picker: 'random',
        services: { 'shop/secure': { picker: 'round-robin' }, 'shop/secure-mtls': { tls: 'mine' } },
      },
    };
    expect(withBackendTls(given, tls)).toEqual({
      admin: { listen: '127.0.0.1:0' },
      routing: {
        picker: 'random',
        backendTLS: tls.backendTLS,
        services: {
          'shop/secure': { tls: 'shop-secure', picker: 'round-robin' },
          'shop/secure-mtls': { tls: 'mine' },
        },
      },
    });
    expect(withBackendTls(given, backendTlsConfig({ ...scenario, services: [] }, files))).toBe(
      given,
    );
    expect(tls).toEqual({
      backendTLS: {
        'shop-secure': {
          caFiles: ['/d/pki/alpha.pem', '/d/pki/beta.pem', '/d/pki/gamma.pem'],
          hostname: 'secure.shop.svc',
        },
        'shop-secure-mtls': {
          caFiles: ['/d/pki/alpha.pem', '/d/pki/gamma.pem'],
          hostname: 'secure-mtls.shop.svc',
          clientCertificate: {
            certFile: '/d/pki/fedgate-client.pem',
            keyFile: '/d/pki/fedgate-client-key.pem',
          },
        },
      },
      services: {
        'shop/secure': { tls: 'shop-secure' },
        'shop/secure-mtls': { tls: 'shop-secure-mtls' },
      },
    });
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
    const badObjects = `${bad.replace('port: 70000', 'port: 80').replace('[nope]', '[alpha]')}objects:\n  omega: [{ apiVersion: v1, kind: Namespace, metadata: { name: x } }]\n`;
    expect(() => parseScenario(badObjects, 'o.yaml')).toThrow(
      'o.yaml: objects.omega: unknown cluster "omega"',
    );
    const badTls = bad.replace('port: 70000', 'port: 80, tls: maybe').replace('[nope]', '[alpha]');
    expect(() => parseScenario(badTls, 'z.yaml')).toThrow(
      'z.yaml: services[0].ports[0].tls: Invalid option: expected one of "none"|"server"|"mutual"',
    );
  });
});
