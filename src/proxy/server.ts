// The proxy's listeners: plain HTTP/1.1 on http.listen, and TLS on http.tls.listen
// offering HTTP/2 and HTTP/1.1 by ALPN, the certificate chosen by SNI. Node's
// parser does the protocol hardening (smuggling shapes, header size and the
// headers timeout); what it reports becomes a short answer and a closed socket.
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import {
  createSecureServer,
  type Http2SecureServer,
  type Http2ServerRequest,
  type Http2ServerResponse,
  type ServerHttp2Session,
} from 'node:http2';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { createSecureContext, type SecureContext } from 'node:tls';
import type { Snapshot } from '../catalog/model.ts';
import type { Config, ListenAddress } from '../config/schema.ts';
import type { ErrorCode } from '../errors.ts';
import type { Outcome } from '../health/outlier.ts';
import type { Logger } from '../observe/log.ts';
import type { ProxyObserver } from '../observe/metrics.ts';
import type { Router } from '../routing/router.ts';
import { endpointId } from '../routing/types.ts';
import { Forwarder, type ProxyResponse, ProxyStats } from './forward.ts';
import { HostTable } from './hosts.ts';
import { handleUpgrade, rawError } from './upgrade.ts';
import { Upstreams } from './upstreams.ts';

export interface ProxyServerOptions {
  readonly config: Config;
  readonly catalog: { current(): Snapshot; subscribe(fn: (s: Snapshot) => void): () => void };
  readonly health: { report(service: string, id: string, outcome: Outcome): void };
  readonly router: Router;
  readonly log: Logger;
  readonly random?: () => number;
  readonly observer?: ProxyObserver;
}

/** How often Node looks for sockets past their headers or request timeout. */
function checkEvery(headersTimeoutMs: number): number {
  return Math.max(50, Math.min(1000, headersTimeoutMs / 4));
}

/** What Node's parser reports, as our answer. */
function clientErrorCode(code: string | undefined): ErrorCode {
  if (code === 'HPE_HEADER_OVERFLOW') return 'HEADERS_TOO_LARGE';
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT' || code === 'HPE_HEADERS_TIMEOUT')
    return 'REQUEST_TIMEOUT';
  return 'BAD_REQUEST';
}

/** SNI: exact names first, then one-label wildcards, else the first certificate. */
function sniContexts(
  certs: readonly { cert: string; key: string }[],
): (name: string) => SecureContext {
  const exact = new Map<string, SecureContext>();
  const wildcard = new Map<string, SecureContext>();
  let fallback: SecureContext | undefined;
  for (const c of certs) {
    const cert = readFileSync(c.cert);
    const ctx = createSecureContext({ cert, key: readFileSync(c.key) });
    fallback ??= ctx;
    const x = new X509Certificate(cert);
    const names = (x.subjectAltName ?? '')
      .split(', ')
      .filter((n) => n.startsWith('DNS:'))
      .map((n) => n.slice(4).toLowerCase());
    for (const n of names) {
      if (n.startsWith('*.')) {
        if (!wildcard.has(n.slice(2))) wildcard.set(n.slice(2), ctx);
      } else if (!exact.has(n)) exact.set(n, ctx);
    }
  }
  return (name) => {
    const n = name.toLowerCase();
    return exact.get(n) ?? wildcard.get(n.slice(n.indexOf('.') + 1)) ?? fallback!;
  };
}

async function listenOn(server: Server | Http2SecureServer, at: ListenAddress): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const onError = (e: Error) => reject(e);
    server.once('error', onError);
    server.listen({ host: at.host, port: at.port }, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

export class ProxyServer {
  readonly stats = new ProxyStats();
  readonly forwarder: Forwarder;
  readonly upstreams: Upstreams;
  readonly hosts: HostTable;
  readonly #plain: Server[] = [];
  readonly #tls: Http2SecureServer[] = [];
  readonly #sockets = new Set<Socket | Duplex>();
  readonly #sessions = new Set<ServerHttp2Session>();
  readonly #log: Logger;
  readonly #config: Config;
  readonly #unsubscribe: () => void;
  #draining = false;

  private constructor(opts: ProxyServerOptions) {
    const { config } = opts;
    const http = config.http;
    this.#config = config;
    this.#log = opts.log;
    this.upstreams = new Upstreams({
      maxRequestsPerEndpoint: http.limits.maxRequestsPerEndpoint,
      maxPendingPerService: http.limits.maxPendingPerService,
      connectTimeoutMs: http.retries.perTryTimeout || 10_000,
      idleTimeoutMs: http.timeouts.upstreamIdle,
      bodyTimeoutMs: http.timeouts.upstreamBody,
    });
    this.hosts = new HostTable({
      clusterset: config.federation.clustersetZone,
      domain: config.federation.domain,
      federation: config.federation.name,
      aliases: http.aliases,
    });
    this.forwarder = new Forwarder({
      catalog: opts.catalog,
      router: opts.router,
      health: opts.health,
      upstreams: this.upstreams,
      hosts: this.hosts,
      settings: {
        locality: http.locality,
        retries: http.retries,
        maxHeaderCount: http.limits.maxHeaderCount,
        picker: config.routing.picker,
        hashOn: config.routing.hashOn,
        services: config.routing.services,
      },
      random: opts.random ?? Math.random,
      log: opts.log,
      stats: this.stats,
      draining: () => this.#draining,
      observer: opts.observer,
    });
    let warned = '';
    this.#unsubscribe = opts.catalog.subscribe((s) => {
      const live = new Set<string>();
      for (const svc of s.services.values()) {
        for (const m of svc.clusters) {
          for (const e of m.endpoints) live.add(endpointId(m.cluster, e.addresses[0] ?? ''));
        }
      }
      this.upstreams.retain(live);
      // Say once per change which hosts more than one service claims.
      const claimed = this.hosts.conflicts(s);
      const conflicts = JSON.stringify(claimed);
      if (conflicts !== warned && claimed.length > 0) {
        this.#log.warn({ conflicts: claimed }, 'host names claimed by several services');
      }
      warned = conflicts;
    });
  }

  static async start(opts: ProxyServerOptions): Promise<ProxyServer> {
    const p = new ProxyServer(opts);
    try {
      await p.#listen();
    } catch (e) {
      await p.stop();
      throw e;
    }
    return p;
  }

  async #listen(): Promise<void> {
    const http = this.#config.http;
    const t = http.timeouts;
    for (const at of http.listen) {
      const server = createServer(
        {
          maxHeaderSize: http.limits.maxHeaderSize,
          headersTimeout: t.headers,
          requestTimeout: t.request,
          keepAliveTimeout: t.idle,
          // How often Node looks for sockets past their headers or request timeout.
          connectionsCheckingInterval: checkEvery(t.headers),
          // A request without Host gets our own 400 (forward.ts), with its error code.
          requireHostHeader: false,
        },
        (req, res) => this.forwarder.handle(req, res, 'http'),
      );
      // One more than the cap, so a request over it is seen (Node drops the excess silently).
      server.maxHeadersCount = http.limits.maxHeaderCount + 1;
      this.#wire(server, 'http');
      await listenOn(server, at);
      this.#plain.push(server);
    }
    if (http.tls) {
      const sni = sniContexts(http.tls.certificates);
      const first = http.tls.certificates[0]!;
      for (const at of http.tls.listen) {
        const server = createSecureServer(
          {
            allowHTTP1: true,
            cert: readFileSync(first.cert),
            key: readFileSync(first.key),
            SNICallback: (name, cb) => cb(null, sni(name)),
            maxSessionMemory: 64,
            // HTTP/1.1 over TLS: the same parser limit as the plain listener (Node passes
            // it on to its HTTP/1 fallback; the types do not list it).
            ...({ maxHeaderSize: http.limits.maxHeaderSize } as object),
            settings: { maxHeaderListSize: http.limits.maxHeaderSize },
            // The four request pseudo-headers, and one over the cap so it is answered with 431.
            maxHeaderListPairs: http.limits.maxHeaderCount + 5,
          },
          (req: Http2ServerRequest, res: Http2ServerResponse) =>
            this.forwarder.handle(req, res as unknown as ProxyResponse, 'https'),
        );
        // Node's HTTP/2 server has its own HTTP/1.1 timeouts; ours must be set before listen.
        const h1 = server as unknown as Server;
        h1.headersTimeout = t.headers;
        h1.requestTimeout = t.request;
        h1.keepAliveTimeout = t.idle;
        (h1 as unknown as { connectionsCheckingInterval: number }).connectionsCheckingInterval =
          checkEvery(t.headers);
        this.#wire(server, 'https');
        server.on('session', (session: ServerHttp2Session) => {
          this.#sessions.add(session);
          session.once('close', () => this.#sessions.delete(session));
        });
        await listenOn(server, at);
        this.#tls.push(server);
      }
    }
  }

  #wire(server: Server | Http2SecureServer, proto: 'http' | 'https'): void {
    server.on(proto === 'http' ? 'connection' : 'secureConnection', (s: Socket) => {
      this.#sockets.add(s);
      s.once('close', () => this.#sockets.delete(s));
    });
    server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
      if (err.code === 'ECONNRESET' || !socket.writable) {
        socket.destroy();
        return;
      }
      const code = clientErrorCode(err.code);
      this.#log.debug({ err: err.code, code }, 'malformed request');
      rawError(
        socket,
        code,
        err.code === 'HPE_HEADER_OVERFLOW' ? 'request head too large' : err.message,
      );
    });
    // CONNECT over HTTP/1.1 arrives as its own event.
    server.on('connect', (_req: IncomingMessage, socket: Duplex) => {
      this.stats.requests++;
      rawError(
        socket,
        'METHOD_NOT_ALLOWED',
        'CONNECT is not supported: fedgate is not a forward proxy',
      );
    });
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      this.#sockets.add(socket);
      socket.once('close', () => this.#sockets.delete(socket));
      if (this.#draining) {
        rawError(socket, 'DRAINING', 'shutting down');
        return;
      }
      handleUpgrade(this.forwarder, req, socket, head, proto);
    });
  }

  /** Where each listener is bound (port 0 in config gets a real one here). */
  addresses(): { http: AddressInfo[]; https: AddressInfo[] } {
    return {
      http: this.#plain.map((s) => s.address() as AddressInfo),
      https: this.#tls.map((s) => s.address() as AddressInfo),
    };
  }

  get draining(): boolean {
    return this.#draining;
  }

  get connections(): number {
    return this.#sockets.size;
  }

  /**
   * Stops accepting, lets requests in flight finish (each answer asks its client to
   * close), and after `graceMs` cuts whatever is left. Resolves with how many
   * connections had to be cut.
   */
  async drain(graceMs = this.#config.http.drainTimeout): Promise<{ cut: number }> {
    this.#draining = true;
    const servers = [...this.#plain, ...this.#tls];
    const closed = Promise.all(
      servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))),
    );
    for (const s of this.#plain) s.closeIdleConnections();
    // HTTP/2: GOAWAY, then the session closes once its streams are done.
    for (const session of this.#sessions) session.close();
    const deadline = Date.now() + graceMs;
    while (this.#sockets.size > 0 && Date.now() < deadline) {
      for (const s of this.#plain) s.closeIdleConnections();
      await new Promise((r) => setTimeout(r, 50));
    }
    const cut = this.#sockets.size;
    for (const s of this.#sockets) s.destroy();
    await closed;
    await this.upstreams.close(true);
    this.#unsubscribe();
    return { cut };
  }

  /** Closes everything now. */
  async stop(): Promise<void> {
    await this.drain(0);
  }
}
