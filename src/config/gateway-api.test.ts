import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { gatewayListenerMappings } from './gateway-api.ts';
import { ConfigError, parseConfig } from './load.ts';

const KUBECONFIG = `apiVersion: v1
kind: Config
clusters: [{ name: c1, cluster: { server: https://127.0.0.1:6443 } }]
contexts: [{ name: one, context: { cluster: c1, user: u1 } }]
current-context: one
users: [{ name: u1, user: { token: abc } }]
`;

let source: string;
beforeAll(() => {
  const dir = mkdtempSync(join(tmpdir(), 'fedgate-gwconfig-'));
  writeFileSync(join(dir, 'k'), KUBECONFIG);
  source = join(dir, 'fedgate.yaml');
});

const BASE = `federation: { name: galaxy, domain: example.test }
clusters:
  - { name: alpha, kubeconfig: k }
  - { name: beta, kubeconfig: k }
http: { listen: ["127.0.0.1:8080", "[::1]:8080", "127.0.0.1:9090"] }
`;

function problemsOf(text: string): readonly string[] {
  try {
    parseConfig(text, source);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as ConfigError).problems;
  }
  return [];
}

describe('gatewayAPI', () => {
  it('is off by default: no clusters, and every fedgate listener serves its own port', () => {
    const c = parseConfig(BASE, source);
    expect(c.gatewayAPI.clusters).toEqual([]);
    expect(gatewayListenerMappings(c)).toEqual([
      { port: 8080, protocol: 'HTTP', address: '127.0.0.1:8080' },
      { port: 8080, protocol: 'HTTP', address: '[::1]:8080' },
      { port: 9090, protocol: 'HTTP', address: '127.0.0.1:9090' },
    ]);
  });

  it('takes member names, and refuses a name that is no member or is given twice', () => {
    expect(
      parseConfig(`${BASE}gatewayAPI: { clusters: [beta] }\n`, source).gatewayAPI.clusters,
    ).toEqual(['beta']);
    expect(problemsOf(`${BASE}gatewayAPI: { clusters: [gamma, alpha, alpha] }\n`)).toEqual([
      'gatewayAPI.clusters[0]: "gamma" is not a member cluster (clusters[].name: alpha, beta)',
      'gatewayAPI.clusters[2]: "alpha" is named twice',
    ]);
  });

  it('maps Gateway ports onto the listeners given, which must be fedgate listeners of that protocol', () => {
    const c = parseConfig(
      `${BASE}gatewayAPI:\n  listeners: [{ port: 80, protocol: HTTP, address: "127.0.0.1:9090" }]\n`,
      source,
    );
    expect(gatewayListenerMappings(c)).toEqual([
      { port: 80, protocol: 'HTTP', address: '127.0.0.1:9090' },
    ]);
    expect(
      problemsOf(
        `${BASE}gatewayAPI:\n  listeners:\n    - { port: 80, protocol: HTTP, address: "127.0.0.1:7070" }\n    - { port: 443, protocol: HTTPS, address: "127.0.0.1:8080" }\n`,
      ),
    ).toEqual([
      'gatewayAPI.listeners[0].address: 127.0.0.1:7070 is not in http.listen (127.0.0.1:8080, [::1]:8080, 127.0.0.1:9090), where HTTP is served',
      'gatewayAPI.listeners[1].address: 127.0.0.1:8080 is not in http.tls.listen (none), where HTTPS is served',
    ]);
    expect(
      problemsOf(
        `${BASE}gatewayAPI:\n  listeners: [{ port: 80, protocol: TCP, address: "127.0.0.1:9090" }]\n`,
      )[0],
    ).toMatch(/^gatewayAPI\.listeners\[0\]\.protocol:/);
  });
});
