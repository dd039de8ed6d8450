// fedgate's proxy on a local federation, for end-to-end tests: the federation from
// scenario YAML, discovery synced, and a ProxyServer on 127.0.0.1 port 0.

import { join } from 'node:path';
import { stringify } from 'yaml';
import { effectiveConfig, parseConfig } from '../../src/config/load.ts';
import type { Config } from '../../src/config/schema.ts';
import type { Discovery } from '../../src/discovery.ts';
import type { LocalFederation } from '../../src/localfed/federation.ts';
import { Metrics } from '../../src/observe/metrics.ts';
import type { ProxyObserver } from '../../src/proxy/observer.ts';
import { ProxyServer } from '../../src/proxy/server.ts';
import { type DiscoveryEnv, startFederation } from './discovery-env.ts';

export interface ProxyBench {
  fed: LocalFederation;
  d: Discovery;
  config: Config;
  proxy: ProxyServer;
  /** The proxy's series, as /metrics would show them. */
  metrics: Metrics;
  /** http://127.0.0.1:PORT of the first plain listener. */
  url: string;
}

/** A counter as an operator reads it on /metrics: summed over the series with every label given. */
export async function series(metrics: Metrics, name: string, ...labels: string[]): Promise<number> {
  const text = await metrics.registry.metrics();
  let n = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith(`${name}{`) && labels.every((l) => line.includes(l)))
      n += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return n;
}

/**
 * `overrides` are merged over the federation's config as in startFederation; `http`
 * defaults to one listener on 127.0.0.1:0 unless overrides give one.
 */
export async function startProxy(
  env: DiscoveryEnv,
  scenario: string,
  addressBlock: number,
  overrides: Record<string, unknown> = {},
): Promise<ProxyBench> {
  const http = { listen: ['127.0.0.1:0'], ...(overrides.http as Record<string, unknown>) };
  const { fed, d, config } = await startFederation(env, scenario, addressBlock, {
    ...overrides,
    http,
  });
  const metrics = new Metrics({ worker: '0' });
  const proxy = await ProxyServer.start({
    config,
    catalog: d.catalog,
    health: d.health,
    router: d.router,
    log: env.log.logger,
    observer: metrics,
  });
  const at = proxy.addresses().http[0];
  return { fed, d, config, proxy, metrics, url: at ? `http://127.0.0.1:${at.port}` : '' };
}

/**
 * Discovery for a proxy under test: no active checks and outlier detection that never
 * trips, so what the proxy does with failing backends is its own logic alone.
 */
export const PROXY_ONLY_HEALTH = {
  active: { enabled: false },
  outlier: { consecutive5xx: 1000, consecutiveGatewayFailure: 1000 },
};

/** A WebSocket handshake request for `host`, as raw bytes. */
export const webSocketUpgrade = (host: string, version = '13') =>
  `GET /chat HTTP/1.1\r\nHost: ${host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
  `Sec-WebSocket-Version: ${version}\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`;

/** `bench`'s configuration with another `http` block (one listener on 127.0.0.1:0 unless given). */
export async function configBeside(
  env: DiscoveryEnv,
  bench: ProxyBench,
  http: Record<string, unknown>,
): Promise<Config> {
  const eff = effectiveConfig(bench.config) as Record<string, unknown>;
  return parseConfig(
    stringify({ ...eff, http: { listen: ['127.0.0.1:0'], ...http } }),
    join(await env.dir(), 'fedgate.yaml'),
  );
}

/** Another proxy on `bench`'s federation and discovery, with its own `http` block. */
export async function proxyBeside(
  env: DiscoveryEnv,
  bench: ProxyBench,
  http: Record<string, unknown>,
  observer?: ProxyObserver,
): Promise<ProxyServer> {
  const config = await configBeside(env, bench, http);
  return ProxyServer.start({
    config,
    catalog: bench.d.catalog,
    health: bench.d.health,
    router: bench.d.router,
    log: env.log.logger,
    ...(observer ? { observer } : {}),
  });
}

/**
 * A federation of one cluster (alpha, region us-east) with one zone (us-east-a), and
 * in it one pod of each service (namespace shop, port 80 named http → `targetPort`):
 * every request has one endpoint.
 */
export function oneZoneScenario(services: Readonly<Record<string, number>>): string {
  const lines = Object.entries(services).map(
    ([name, targetPort]) =>
      `  - { name: ${name}, namespace: shop, ports: [{ name: http, port: 80, targetPort: ${targetPort} }], clusters: [alpha], replicasPerZone: 1 }`,
  );
  return `
federation: { name: testfed, domain: example.test }
terminationGraceSeconds: 1
clusters:
  - name: alpha
    region: us-east
    zones: [{ name: us-east-a, nodes: 1 }]
services:
${lines.join('\n')}
`;
}

/** A proxy "in" oneZoneScenario's zone, health moved by what it reports alone. */
export const ONE_ZONE_PROXY = {
  self: { region: 'us-east', zone: 'us-east-a' },
  health: PROXY_ONLY_HEALTH,
};
