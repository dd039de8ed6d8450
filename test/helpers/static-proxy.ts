// A real fedgate ProxyServer in front of backends a test starts itself (HTTP/2,
// gRPC, TLS servers the local federation's sample pods do not serve): the catalog
// is a fixed snapshot naming them, every endpoint healthy, each in a cluster of its
// own so a retry goes to another. Everything else (listeners, routing, attempt
// loop, upstream pools) is the proxy's own.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { stringify } from 'yaml';
import type { FederatedService, PortRecord, Snapshot } from '../../src/catalog/model.ts';
import { effectiveConfig, parseConfig } from '../../src/config/load.ts';
import type { Config } from '../../src/config/schema.ts';
import type { RouteTables } from '../../src/gateway/attached.ts';
import { HealthMonitor } from '../../src/health/monitor.ts';
import { HealthStore } from '../../src/health/store.ts';
import { Metrics } from '../../src/observe/metrics.ts';
import type { BackendTlsSource } from '../../src/proxy/backend-tls.ts';
import { ProxyServer } from '../../src/proxy/server.ts';
import { Router, routerOptions } from '../../src/routing/router.ts';
import { service } from '../fixtures/services.ts';

export interface StaticService {
  /** namespace/name; served at `<name>.<namespace>.galaxy.svc.example.test`. */
  readonly key: string;
  /** Endpoints as 127.x addresses and ports, one cluster each (c0, c1, …) unless named. */
  readonly endpoints: readonly {
    readonly address: string;
    readonly port: number;
    readonly cluster?: string;
    /** Region r1 always; zone z1 (the proxy's own) unless given. */
    readonly zone?: string;
  }[];
  /** The service port's appProtocol; the port is named `name` (default `http`). */
  readonly appProtocol?: string | undefined;
  readonly portName?: string | undefined;
  /** fedgate.io/backend-protocol */
  readonly backendProtocol?: string | undefined;
}

export interface StaticProxy {
  readonly proxy: ProxyServer;
  /** The plain listener's address as configured (`127.0.0.1:0`): its RouteTables key. */
  readonly listener: string;
  readonly config: Config;
  /** The configuration with another `http` block merged over its own (for a reload). */
  withHttp(http: Record<string, unknown>): Config;
  readonly metrics: Metrics;
  /** http://127.0.0.1:PORT of the plain listener. */
  readonly url: string;
  readonly httpsPort: number | undefined;
  /** Reports the proxy made to outlier detection, as `service id origin/failure|status`. */
  readonly reports: string[];
  /** When each report was made (performance.now()), by index in `reports`. */
  readonly reportedAt: number[];
  stop(): Promise<void>;
}

export const hostOf = (key: string): string => {
  const [ns, name] = key.split('/') as [string, string];
  return `${name}.${ns}.galaxy.svc.example.test`;
};

function federated(s: StaticService): FederatedService {
  const port: PortRecord = {
    name: s.portName ?? 'http',
    protocol: 'TCP',
    port: 80,
    ...(s.appProtocol ? { appProtocol: s.appProtocol } : {}),
  };
  const clusters = new Map<
    string,
    { address: string; port: number; region: string; zone: string }[]
  >();
  s.endpoints.forEach((e, i) => {
    const name = e.cluster ?? `c${i}`;
    const list = clusters.get(name) ?? [];
    list.push({ address: e.address, port: e.port, region: 'r1', zone: e.zone ?? 'z1' });
    clusters.set(name, list);
  });
  const members = [...clusters].map(([cluster, endpoints]) => ({ cluster, endpoints }));
  return service(members, s.key, { ports: [port], backendProtocol: s.backendProtocol });
}

/**
 * Starts the proxy; `http` is merged over one plain listener on 127.0.0.1:0 (whose
 * RouteTables key is `listener`); `routes`: Gateway API routes handed to it;
 * `random`: the proxy's random source (weights, pickers), seeded for a replayable run. With
 * `outlier`, its reports feed fedgate's outlier detection (these settings), whose
 * ejections the plans follow; without, nothing is ever ejected.
 */
export async function startStaticProxy(
  services: readonly StaticService[],
  http: Record<string, unknown> = {},
  backendTls?: BackendTlsSource,
  outlier?: Record<string, unknown>,
  routes?: RouteTables,
  random?: () => number,
): Promise<StaticProxy> {
  const dir = await mkdtemp(join(tmpdir(), 'fedgate-static-'));
  // The configuration names a member cluster; the catalog below never reads it.
  await writeFile(
    join(dir, 'unused.kubeconfig'),
    stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'c0', cluster: { server: 'http://127.0.0.1:1' } }],
      users: [{ name: 'u', user: {} }],
      contexts: [{ name: 'c0', context: { cluster: 'c0', user: 'u' } }],
      'current-context': 'c0',
    }),
  );
  const config = parseConfig(
    stringify({
      federation: { name: 'galaxy', domain: 'example.test' },
      clusters: [{ name: 'c0', kubeconfig: join(dir, 'unused.kubeconfig') }],
      self: { region: 'r1', zone: 'z1' },
      http: { listen: ['127.0.0.1:0'], ...http },
      health: { active: { enabled: false }, ...(outlier ? { outlier } : {}) },
    }),
    join(dir, 'fedgate.yaml'),
  );
  const map = new Map(services.map((s) => [s.key, federated(s)]));
  const snap: Snapshot = { version: 1, createdAt: 0, services: map, clusters: new Map() };
  const reports: string[] = [];
  const reportedAt: number[] = [];
  const metrics = new Metrics({ worker: '0' });
  const log = pino({ level: 'silent' });
  const catalog = { current: () => snap, subscribe: () => () => {} };
  const monitor = outlier
    ? new HealthMonitor({ config: config.health, addressing: 'endpoints', log })
    : undefined;
  monitor?.start(catalog);
  const proxy = await ProxyServer.start({
    config,
    catalog,
    health: {
      report: (svc, id, o) => {
        reports.push(`${svc} ${id} ${o.origin}/${o.origin === 'local' ? o.failure : o.status}`);
        reportedAt.push(performance.now());
        monitor?.report(svc, id, o);
      },
    },
    router: new Router(routerOptions(config), monitor?.store ?? new HealthStore()),
    log,
    observer: metrics,
    ...(backendTls ? { backendTls } : {}),
    ...(random ? { random } : {}),
  });
  if (routes) proxy.setRoutes(routes);
  const a = proxy.addresses();
  return {
    proxy,
    listener: '127.0.0.1:0',
    config,
    withHttp: (more) => {
      const eff = effectiveConfig(config) as { http: Record<string, unknown> };
      return parseConfig(
        stringify({ ...eff, http: { ...eff.http, ...more } }),
        join(dir, 'fedgate.yaml'),
      );
    },
    metrics,
    url: `http://127.0.0.1:${a.http[0]?.port}`,
    httpsPort: a.https[0]?.port,
    reports,
    reportedAt,
    stop: async () => {
      await proxy.stop();
      await monitor?.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
