// fedgate's proxy in front of hand-made services, for gRPC end-to-end tests: a
// ProxyServer with a TLS listener (HTTP/2 by ALPN, where gRPC clients reach it), a
// catalog and router built from literals, and @grpc/grpc-js clients that call any
// method with raw bytes (no protobuf needed to see a status).
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import {
  createServer,
  type IncomingHttpHeaders,
  type Server,
  type ServerResponse,
} from 'node:http';
import { join } from 'node:path';
import { Client, credentials, Metadata, type ServiceError, type StatusObject } from '@grpc/grpc-js';
import { pino } from 'pino';
import { stringify } from 'yaml';
import type { FederatedService, Snapshot } from '../../src/catalog/model.ts';
import { parseConfig } from '../../src/config/load.ts';
import type { Config } from '../../src/config/schema.ts';
import type { Outcome } from '../../src/health/outlier.ts';
import { HealthStore } from '../../src/health/store.ts';
import { makeClusterPki } from '../../src/localfed/pki.ts';
import { Metrics } from '../../src/observe/metrics.ts';
import { ProxyServer } from '../../src/proxy/server.ts';
import { Router, routerOptions } from '../../src/routing/router.ts';

const KUBECONFIG = `apiVersion: v1
kind: Config
clusters: [{ name: c1, cluster: { server: 'https://127.202.255.1:6443' } }]
contexts: [{ name: one, context: { cluster: c1, user: u1 } }]
current-context: one
users: [{ name: u1, user: { token: abc } }]
`;

export interface GrpcProxy {
  readonly proxy: ProxyServer;
  readonly metrics: Metrics;
  readonly store: HealthStore;
  readonly router: Router;
  /** What the proxy told outlier detection, in order. */
  readonly reports: { readonly id: string; readonly outcome: Outcome }[];
  readonly config: Config;
  /** The TLS listener's port (HTTP/2 by ALPN). */
  readonly port: number;
  /** The plain listener's port (HTTP/1.1 and h2c). */
  readonly plainPort: number;
  readonly host: string;
  /** The edge certificate's CA, PEM. */
  readonly ca: string;
  /** The catalog's snapshot now. */
  snapshot(): Snapshot;
  /** Replaces the catalog's services. */
  setServices(services: readonly FederatedService[]): void;
  close(): Promise<void>;
}

export function snapshotOf(services: readonly FederatedService[]): Snapshot {
  return {
    version: 1,
    createdAt: 0,
    services: new Map(services.map((s) => [s.key, s])),
    clusters: new Map(),
  } as unknown as Snapshot;
}

/**
 * A proxy on `host` (TLS, port 0) serving `services`, reached by the names of
 * `aliases` (host → ns/name); `http` is merged into the config's.
 */
export async function startGrpcProxy(opts: {
  dir: string;
  host: string;
  services: readonly FederatedService[];
  aliases: Record<string, string>;
  /** More names the edge certificate carries (hosts no service is served at). */
  names?: readonly string[];
  http?: Record<string, unknown>;
}): Promise<GrpcProxy> {
  const names = [...Object.keys(opts.aliases), ...(opts.names ?? [])];
  const pki = await makeClusterPki('edge', names);
  const cert = join(opts.dir, 'edge.crt');
  const key = join(opts.dir, 'edge.key');
  await writeFile(cert, pki.serverCert);
  await writeFile(key, pki.serverKey);
  // Never read: the catalog is given. The config only needs a cluster it could load.
  await writeFile(join(opts.dir, 'a.kubeconfig'), KUBECONFIG);
  const config = parseConfig(
    stringify({
      federation: { name: 'galaxy', domain: 'example.test' },
      clusters: [{ name: 'alpha', kubeconfig: 'a.kubeconfig' }],
      http: {
        listen: [`${opts.host}:0`],
        tls: { listen: [`${opts.host}:0`], certificates: [{ cert, key }] },
        aliases: opts.aliases,
        ...opts.http,
      },
    }),
    join(opts.dir, 'fedgate.yaml'),
  );
  let snapshot = snapshotOf(opts.services);
  const subscribers = new Set<(s: Snapshot) => void>();
  const catalog = {
    current: () => snapshot,
    subscribe: (fn: (s: Snapshot) => void) => {
      subscribers.add(fn);
      return () => subscribers.delete(fn);
    },
  };
  const store = new HealthStore();
  const router = new Router(routerOptions(config), store);
  const metrics = new Metrics({ worker: '0' });
  const reports: { id: string; outcome: Outcome }[] = [];
  const proxy = await ProxyServer.start({
    config,
    catalog,
    health: { report: (_service, id, outcome) => reports.push({ id, outcome }) },
    router,
    log: pino({ level: 'silent' }),
    observer: metrics,
  });
  const at = proxy.addresses().https[0];
  const plain = proxy.addresses().http[0];
  if (!at || !plain) throw new Error('no TLS or plain listener');
  return {
    proxy,
    metrics,
    store,
    router,
    reports,
    config,
    port: at.port,
    plainPort: plain.port,
    host: opts.host,
    ca: pki.caCert,
    snapshot: () => snapshot,
    setServices(services) {
      snapshot = snapshotOf(services);
      for (const fn of subscribers) fn(snapshot);
    },
    close: () => proxy.stop(),
  };
}

/**
 * A grpc-js client of the proxy for `authority`: TLS, verified against the edge CA,
 * or (`h2c`) in clear on the plain listener.
 */
export function grpcClient(p: GrpcProxy, authority: string, h2c = false): Client {
  if (h2c) {
    return new Client(`${p.host}:${p.plainPort}`, credentials.createInsecure(), {
      'grpc.default_authority': authority,
    });
  }
  return new Client(`${p.host}:${p.port}`, credentials.createSsl(Buffer.from(p.ca)), {
    'grpc.ssl_target_name_override': authority,
    'grpc.default_authority': authority,
  });
}

const raw = (b: Buffer) => b;

/** A unary call of `method` with raw bytes: the reply, or the status error. */
export function unary(
  client: Client,
  method: string,
  options: { deadline?: number } = {},
): { done: Promise<Buffer>; cancel(): void } {
  let cancel = () => {};
  const done = new Promise<Buffer>((resolve, reject) => {
    const call = client.makeUnaryRequest(
      method,
      raw,
      raw,
      Buffer.from('ping'),
      new Metadata(),
      options,
      (err: ServiceError | null, value?: Buffer) =>
        err ? reject(err) : resolve(value ?? Buffer.alloc(0)),
    );
    cancel = () => call.cancel();
  });
  done.catch(() => {});
  return { done, cancel: () => cancel() };
}

/** A server-streaming call that expects no messages: its final status. */
export function emptyStream(client: Client, method: string): Promise<StatusObject> {
  return new Promise((resolve) => {
    const call = client.makeServerStreamRequest(method, raw, raw, Buffer.from('ping'));
    call.on('data', () => {});
    call.on('error', () => {});
    call.on('status', resolve);
  });
}

/** What a fake gRPC backend does with a call: hang, or answer trailers-only with a status. */
export type BackendAnswer = 'hang' | { grpcStatus: number; message?: string };

/**
 * An HTTP/1.1 server that answers gRPC calls trailers-only (what fedgate's HTTP/1.1
 * carrier can reach), recording each call's head and whether its connection closed.
 */
export class FakeGrpcBackend {
  answer: BackendAnswer = { grpcStatus: 0 };
  readonly calls: IncomingHttpHeaders[] = [];
  /** The request body of each answered call, as received. */
  readonly bodies: Buffer[] = [];
  /** Calls whose request closed before an answer (the proxy aborted the try). */
  aborted = 0;
  port = 0;
  readonly #server: Server;

  constructor() {
    this.#server = createServer((req, res) => {
      this.calls.push(req.headers);
      const a = this.answer;
      if (a === 'hang') {
        req.resume();
        res.on('close', () => {
          if (!res.writableEnded) this.aborted++;
        });
        return;
      }
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        this.bodies.push(Buffer.concat(chunks));
        this.#answer(res, a);
      });
    });
  }

  #answer(res: ServerResponse, a: { grpcStatus: number; message?: string }): void {
    res.writeHead(200, {
      'content-type': 'application/grpc',
      'grpc-status': String(a.grpcStatus),
      ...(a.message ? { 'grpc-message': a.message } : {}),
      'content-length': 0,
    });
    res.end();
  }

  async start(host: string): Promise<this> {
    this.#server.listen(0, host);
    await once(this.#server, 'listening');
    this.port = (this.#server.address() as { port: number }).port;
    return this;
  }

  async stop(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise((resolve) => this.#server.close(resolve));
  }
}
