// Fixtures for the health checker's tests: an HTTP server that counts what it sees,
// a free loopback port, and catalog snapshots built from endpoint literals.
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import { createServer as createTcpServer, type Socket } from 'node:net';
import { pino } from 'pino';
import type { FederatedService, Snapshot } from '../../src/catalog/model.ts';
import { ActiveChecker, type ActiveCheckerOptions } from '../../src/health/active.ts';
import { HealthStore } from '../../src/health/store.ts';
import type { ActiveCheckConfig } from '../../src/health/targets.ts';
import { HEALTH_PATH } from '../../src/localfed/backends.ts';
import { service } from '../fixtures/services.ts';

/** An HTTP server that counts what it sees; `hang` makes it accept and never answer. */
export class CountingServer {
  status = 200;
  hang = false;
  connections = 0;
  requests = 0;
  inFlight = 0;
  maxInFlight = 0;
  readonly userAgents = new Set<string>();
  readonly paths = new Set<string>();
  port = 0;
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();

  constructor() {
    this.#server = createServer((req, res) => {
      this.requests++;
      this.inFlight++;
      this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
      this.userAgents.add(req.headers['user-agent'] ?? '');
      this.paths.add(req.url ?? '');
      res.on('close', () => this.inFlight--);
      if (!this.hang) res.writeHead(this.status).end('x'.repeat(10_000));
    });
    this.#server.on('connection', (s: Socket) => {
      this.connections++;
      this.#sockets.add(s);
      s.on('close', () => this.#sockets.delete(s));
    });
  }

  async start(host: string): Promise<this> {
    this.#server.listen(0, host);
    await once(this.#server, 'listening');
    this.port = (this.#server.address() as { port: number }).port;
    return this;
  }

  get openSockets(): number {
    return this.#sockets.size;
  }

  /** Cuts every connection it holds (hung requests fail), and keeps listening. */
  dropConnections(): void {
    for (const s of this.#sockets) s.destroy();
  }

  async stop(): Promise<void> {
    this.dropConnections();
    await new Promise((resolve) => this.#server.close(resolve));
  }
}

export async function freePort(host: string): Promise<number> {
  const probe = createTcpServer().listen(0, host);
  await once(probe, 'listening');
  const { port } = probe.address() as { port: number };
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

export interface EndpointLiteral {
  readonly cluster: string;
  readonly ip: string;
  readonly port: number;
}

/** n endpoints at one address and port, each in a cluster of its own (so n ids). */
export function manyEndpoints(n: number, ip: string, port: number): EndpointLiteral[] {
  return Array.from({ length: n }, (_, i) => ({ cluster: `c${i}`, ip, port }));
}

/** Services in namespace ns by name; `healthCheck` sets the annotation's value per name. */
export function snapshot(
  services: Record<string, readonly EndpointLiteral[]>,
  healthCheck: Record<string, boolean> = {},
): Snapshot {
  const map = new Map<string, FederatedService>();
  for (const [name, eps] of Object.entries(services)) {
    const members = [...new Set(eps.map((e) => e.cluster))].map((cluster) => ({
      cluster,
      endpoints: eps
        .filter((e) => e.cluster === cluster)
        .map((e) => ({ address: e.ip, port: e.port })),
    }));
    map.set(`ns/${name}`, service(members, `ns/${name}`, { healthCheck: healthCheck[name] }));
  }
  return { version: 1, createdAt: 0, services: map, clusters: new Map() };
}

/** Fast settings for tests: every service checked, caps far above what a test uses. */
export const CHECK_CONFIG: ActiveCheckConfig = {
  enabled: true,
  services: {},
  scope: 'all',
  maxInFlight: 256,
  maxProbesPerSecond: 10_000,
  type: 'http',
  grpcService: '',
  path: HEALTH_PATH,
  expectedStatuses: { min: 200, max: 399 },
  port: undefined,
  jitter: 0.1,
  interval: 50,
  fastInterval: 20,
  timeout: 1000,
  healthyThreshold: 2,
  unhealthyThreshold: 3,
};

/** A checker maker whose checkers are stopped by the caller's cleanups; logs are kept. */
export function checkerFactory(cleanups: Array<() => Promise<void>>) {
  return (config: Partial<ActiveCheckConfig>, over: Partial<ActiveCheckerOptions> = {}) => {
    const store = new HealthStore();
    const logs: { level: number; msg: string; id?: string }[] = [];
    const log = pino({ level: 'debug' }, { write: (line: string) => logs.push(JSON.parse(line)) });
    const c = new ActiveChecker({
      config: { ...CHECK_CONFIG, ...config },
      addressing: 'endpoints',
      store,
      log,
      ...over,
    });
    cleanups.push(() => c.stop());
    return { checker: c, store, logs };
  };
}
