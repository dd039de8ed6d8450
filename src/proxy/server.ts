// The proxy's listeners: plain HTTP/1.1 on http.listen, and TLS on http.tls.listen
// offering HTTP/2 and HTTP/1.1 by ALPN, the certificate chosen by SNI. Node's
// parser does the protocol hardening (smuggling shapes, header size and the
// headers timeout); what it reports becomes a short answer and a closed socket.
// A reload keeps the listeners whose address stays, with their connections, and
// gives them the new timeouts, limits and certificates in place.
import { createHash, X509Certificate } from 'node:crypto';
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
import { type ErrorCode, FedgateError } from '../errors.ts';
import type { Outcome } from '../health/outlier.ts';
import { hostPort } from '../host-port.ts';
import { type AcceptGuard, ExhaustionTracker, guardAccept } from '../observe/exhaustion.ts';
import type { Logger } from '../observe/log.ts';
import type { Router } from '../routing/router.ts';
import { endpointId } from '../routing/types.ts';
import { rawError } from './answers.ts';
import { Forwarder, type ForwardSettings, type ProxyResponse } from './forward.ts';
import { HostTable, hostRules } from './hosts.ts';
import type { ProxyObserver } from './observer.ts';
import { Upstreams } from './upstreams.ts';

export interface ProxyServerOptions {
  readonly config: Config;
  readonly catalog: { current(): Snapshot; subscribe(fn: (s: Snapshot) => void): () => void };
  readonly health: { report(service: string, id: string, outcome: Outcome): void };
  readonly router: Router;
  readonly log: Logger;
  readonly random?: () => number;
  readonly observer?: ProxyObserver;
  /** Where running out of descriptors is counted (default: a tracker of its own). */
  readonly exhaustion?: AcceptGuard;
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

type Certificates = readonly { cert: string; key: string }[];

/** SNI: exact names first, then one-label wildcards, else the first certificate. */
function sniContexts(certs: Certificates): (name: string) => SecureContext {
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

/** The certificates' files as they are now: a rotation with the same paths is a change too. */
function certificatesHash(certs: Certificates | undefined): string {
  const h = createHash('sha256');
  for (const c of certs ?? []) {
    h.update(c.cert).update('\0').update(c.key).update('\0');
    try {
      h.update(readFileSync(c.cert)).update(readFileSync(c.key));
    } catch {
      h.update('unreadable');
    }
  }
  return h.digest('hex');
}

function upstreamOptions(http: Config['http']) {
  return {
    maxRequestsPerEndpoint: http.limits.maxRequestsPerEndpoint,
    maxPendingPerService: http.limits.maxPendingPerService,
    connectTimeoutMs: http.retries.perTryTimeout || 10_000,
    idleTimeoutMs: http.timeouts.upstreamIdle,
    bodyTimeoutMs: http.timeouts.upstreamBody,
  };
}

function forwardSettings(config: Config): ForwardSettings {
  const http = config.http;
  return {
    locality: http.locality,
    retries: http.retries,
    maxHeaderCount: http.limits.maxHeaderCount,
    picker: config.routing.picker,
    hashOn: config.routing.hashOn,
    services: config.routing.services,
  };
}

/**
 * The HTTP/1 timeouts and parser limit, which Node reads from the server as it goes
 * (the TLS listener's HTTP/1.1 fallback too): a reload sets them on kept listeners.
 */
function applyHttp1Limits(server: Server, http: Config['http']): void {
  const t = http.timeouts;
  server.headersTimeout = t.headers;
  server.requestTimeout = t.request;
  server.keepAliveTimeout = t.idle;
  (server as unknown as { maxHeaderSize: number }).maxHeaderSize = http.limits.maxHeaderSize;
}

/** One listening address and what it carries. */
interface Listener {
  /** host:port as configured (port 0 stays 0): what a reload compares. */
  readonly key: string;
  readonly proto: 'http' | 'https';
  readonly server: Server | Http2SecureServer;
  readonly sockets: Set<Socket | Duplex>;
  readonly sessions: Set<ServerHttp2Session>;
  /** TLS listeners a reload opened: its certificates, until it commits them. */
  readonly sni: { pending: ((name: string) => SecureContext) | undefined };
}

/** A reload's proxy part: new listeners bound, nothing else changed yet. */
export interface PreparedProxy {
  /** "http host:port" and "https host:port". */
  readonly opened: readonly string[];
  readonly closed: readonly string[];
  /** The certificate files differ from the running ones (paths or content). */
  readonly certificatesChanged: boolean;
  /** Makes the new settings and listeners current; removed listeners drain in the background. */
  commit(): void;
  /** Closes what prepare opened. */
  abort(): Promise<void>;
}

export class ProxyServer {
  readonly forwarder: Forwarder;
  #upstreams: Upstreams;
  #hosts: HostTable;
  #listeners: Listener[] = [];
  /** Every open connection, of current and draining listeners. */
  readonly #sockets = new Set<Socket | Duplex>();
  readonly #sessions = new Set<ServerHttp2Session>();
  /** Listeners a reload removed, draining in the background. */
  readonly #retiring = new Map<Listener, Promise<void>>();
  /** Their connections: answers on these ask the client to close. */
  readonly #closing = new WeakSet<Socket | Duplex>();
  readonly #log: Logger;
  readonly #exhaustion: AcceptGuard;
  #config: Config;
  #sni: (name: string) => SecureContext = () => {
    throw new Error('no TLS certificates');
  };
  #certificatesHash: string;
  readonly #unsubscribe: () => void;
  #draining = false;

  private constructor(opts: ProxyServerOptions) {
    const { config } = opts;
    this.#config = config;
    this.#log = opts.log;
    this.#exhaustion = opts.exhaustion ?? new ExhaustionTracker({ log: opts.log });
    this.#upstreams = new Upstreams(upstreamOptions(config.http));
    this.#hosts = new HostTable(hostRules(config));
    this.#certificatesHash = certificatesHash(config.http.tls?.certificates);
    if (config.http.tls) this.#sni = sniContexts(config.http.tls.certificates);
    this.forwarder = new Forwarder({
      catalog: opts.catalog,
      router: opts.router,
      health: opts.health,
      upstreams: this.#upstreams,
      hosts: this.#hosts,
      settings: forwardSettings(config),
      random: opts.random ?? Math.random,
      log: opts.log,
      draining: (socket) =>
        this.#draining || (socket !== undefined && this.#closing.has(socket as Socket)),
      observer: opts.observer,
      exhaustion: this.#exhaustion,
    });
    let warned = '';
    this.#unsubscribe = opts.catalog.subscribe((s) => {
      const live = new Set<string>();
      for (const svc of s.services.values()) {
        for (const m of svc.clusters) {
          for (const e of m.endpoints) live.add(endpointId(m.cluster, e.addresses[0] ?? ''));
        }
      }
      this.#upstreams.retain(live);
      // Say once per change which hosts more than one service claims.
      const claimed = this.#hosts.conflicts(s);
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
      const http = opts.config.http;
      for (const at of http.listen) p.#listeners.push(await p.#open('http', at, http));
      for (const at of http.tls?.listen ?? []) p.#listeners.push(await p.#open('https', at, http));
    } catch (e) {
      await p.stop();
      throw e;
    }
    return p;
  }

  get upstreams(): Upstreams {
    return this.#upstreams;
  }

  get hosts(): HostTable {
    return this.#hosts;
  }

  /**
   * Binds the addresses `next` adds (and reads its certificates); throws, having
   * closed them again, when one cannot be bound (FedgateError LISTEN_FAILED, naming
   * the setting). Nothing running changes until commit().
   */
  async prepare(
    next: Config,
    opts: { observer?: ProxyObserver | undefined } = {},
  ): Promise<PreparedProxy> {
    const http = next.http;
    const sni = http.tls ? sniContexts(http.tls.certificates) : undefined;
    const first = http.tls?.certificates[0];
    // The default certificate (no SNI) for the TLS listeners kept.
    const fallback = first && { cert: readFileSync(first.cert), key: readFileSync(first.key) };
    const certsHash = certificatesHash(http.tls?.certificates);
    const want = [
      ...http.listen.map((at) => ({ proto: 'http' as const, at })),
      ...(http.tls?.listen ?? []).map((at) => ({ proto: 'https' as const, at })),
    ];
    const id = (proto: string, key: string) => `${proto} ${key}`;
    const have = new Map(this.#listeners.map((l) => [id(l.proto, l.key), l]));
    const opened = new Map<string, Listener>();
    try {
      for (const { proto, at } of want) {
        const k = id(proto, hostPort(at));
        if (have.has(k) || opened.has(k)) continue;
        const setting = proto === 'http' ? 'http.listen' : 'http.tls.listen';
        const l = await this.#open(proto, at, http, sni).catch((e: unknown) => {
          throw new FedgateError('LISTEN_FAILED', `${setting}: ${(e as Error).message}`, {
            cause: e,
          });
        });
        opened.set(k, l);
      }
    } catch (e) {
      await Promise.all([...opened.values()].map((l) => this.#retire(l, 0)));
      throw e;
    }
    const wanted = new Set(want.map((w) => id(w.proto, hostPort(w.at))));
    const closed = this.#listeners.filter((l) => !wanted.has(id(l.proto, l.key)));
    return {
      opened: [...opened.keys()],
      closed: closed.map((l) => id(l.proto, l.key)),
      certificatesChanged: certsHash !== this.#certificatesHash,
      commit: () => {
        const before = this.#config.http;
        this.#config = next;
        this.#hosts = new HostTable(hostRules(next));
        if (JSON.stringify(upstreamOptions(before)) !== JSON.stringify(upstreamOptions(http))) {
          // Requests in flight finish on the old pools, which then close.
          const old = this.#upstreams;
          this.#upstreams = new Upstreams(upstreamOptions(http));
          void old.close(false);
        }
        this.forwarder.reconfigure({
          hosts: this.#hosts,
          settings: forwardSettings(next),
          upstreams: this.#upstreams,
          observer: opts.observer,
        });
        if (sni && fallback) {
          this.#sni = sni;
          for (const l of this.#listeners) {
            if (l.proto === 'https' && !opened.has(id(l.proto, l.key))) {
              (l.server as Http2SecureServer).setSecureContext(fallback);
            }
          }
        }
        this.#certificatesHash = certsHash;
        this.#listeners = want.map(({ proto, at }) => {
          const k = id(proto, hostPort(at));
          return have.get(k) ?? opened.get(k)!;
        });
        for (const l of this.#listeners) {
          l.sni.pending = undefined;
          if (opened.has(id(l.proto, l.key))) continue;
          applyHttp1Limits(l.server as unknown as Server, http);
          if (l.proto === 'http')
            (l.server as Server).maxHeadersCount = http.limits.maxHeaderCount + 1;
          if (l.proto === 'https') {
            (l.server as Http2SecureServer).updateSettings({
              maxHeaderListSize: http.limits.maxHeaderSize,
            });
          }
        }
        for (const l of closed) void this.#retire(l, http.drainTimeout);
      },
      abort: async () => {
        await Promise.all([...opened.values()].map((l) => this.#retire(l, 0)));
      },
    };
  }

  async #open(
    proto: 'http' | 'https',
    at: ListenAddress,
    http: Config['http'],
    sni?: (name: string) => SecureContext,
  ): Promise<Listener> {
    const slot = { pending: sni };
    const server = proto === 'http' ? this.#plainServer(http) : this.#tlsServer(http, slot);
    const l: Listener = {
      key: hostPort(at),
      proto,
      server,
      sockets: new Set(),
      sessions: new Set(),
      sni: slot,
    };
    this.#wire(l);
    await listenOn(server, at);
    // HTTP and HTTPS alike: the same descriptors, one resource.
    guardAccept(server, 'http_accept', this.#exhaustion, this.#log);
    return l;
  }

  #plainServer(http: Config['http']): Server {
    const t = http.timeouts;
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
    return server;
  }

  #tlsServer(http: Config['http'], sni: Listener['sni']): Http2SecureServer {
    const t = http.timeouts;
    const first = http.tls!.certificates[0]!;
    const server = createSecureServer(
      {
        allowHTTP1: true,
        cert: readFileSync(first.cert),
        key: readFileSync(first.key),
        // Read at each handshake, so a reload's certificates apply to kept listeners too.
        SNICallback: (name, cb) => cb(null, (sni.pending ?? this.#sni)(name)),
        maxSessionMemory: 64,
        // HTTP/1.1 over TLS: the same parser limit as the plain listener (Node passes
        // it on to its HTTP/1 fallback; the types do not list it).
        ...({ maxHeaderSize: http.limits.maxHeaderSize } as object),
        settings: { maxHeaderListSize: http.limits.maxHeaderSize },
        // The four request pseudo-headers, and one over the cap so it is answered with 431.
        // Fixed for the listener's life: a reload that raises maxHeaderCount needs new
        // TLS listeners for HTTP/2 to take more (the proxy's own count check still applies).
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
    return server;
  }

  #wire(l: Listener): void {
    const { server, proto } = l;
    const track = (s: Socket | Duplex) => {
      this.#sockets.add(s);
      l.sockets.add(s);
      s.once('close', () => {
        this.#sockets.delete(s);
        l.sockets.delete(s);
      });
    };
    server.on(proto === 'http' ? 'connection' : 'secureConnection', track);
    if (proto === 'https') {
      server.on('session', (session: ServerHttp2Session) => {
        this.#sessions.add(session);
        l.sessions.add(session);
        session.once('close', () => {
          this.#sessions.delete(session);
          l.sessions.delete(session);
        });
      });
    }
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
      rawError(
        socket,
        'METHOD_NOT_ALLOWED',
        'CONNECT is not supported: fedgate is not a forward proxy',
      );
    });
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      track(socket);
      if (this.#draining) {
        rawError(socket, 'DRAINING', 'shutting down');
        return;
      }
      this.forwarder.upgrade(req, socket, head, proto);
    });
  }

  /** Where each listener is bound (port 0 in config gets a real one here). */
  addresses(): { http: AddressInfo[]; https: AddressInfo[] } {
    const of = (proto: string) =>
      this.#listeners
        .filter((l) => l.proto === proto)
        .map((l) => l.server.address() as AddressInfo);
    return { http: of('http'), https: of('https') };
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
    const listeners = [...this.#listeners, ...this.#retiring.keys()];
    const cut = await this.#drainListeners(listeners, graceMs, () => this.#sockets);
    await this.#upstreams.close(true);
    this.#unsubscribe();
    return { cut };
  }

  /** Closes everything now. */
  async stop(): Promise<void> {
    await this.drain(0);
  }

  /**
   * A listener a reload removed: it stops accepting, and its connections close as
   * their requests finish (as drain() does for all), cut after `graceMs`.
   */
  #retire(l: Listener, graceMs: number): Promise<void> {
    for (const s of l.sockets) this.#closing.add(s);
    const done = this.#drainListeners([l], graceMs, () => l.sockets).then((cut) => {
      if (cut > 0)
        this.#log.warn(
          { listener: `${l.proto} ${l.key}`, cut },
          'proxy: removed listener cut busy connections',
        );
      this.#retiring.delete(l);
    });
    this.#retiring.set(l, done);
    return done;
  }

  async #drainListeners(
    listeners: readonly Listener[],
    graceMs: number,
    sockets: () => ReadonlySet<Socket | Duplex>,
  ): Promise<number> {
    const closed = Promise.all(
      listeners.map(
        (l) =>
          new Promise<void>((resolve) =>
            l.server.listening ? l.server.close(() => resolve()) : resolve(),
          ),
      ),
    );
    const idle = () => {
      for (const l of listeners)
        if (l.proto === 'http') (l.server as Server).closeIdleConnections();
    };
    idle();
    // HTTP/2: GOAWAY, then the session closes once its streams are done.
    for (const l of listeners) for (const session of l.sessions) session.close();
    const deadline = Date.now() + graceMs;
    while (sockets().size > 0 && Date.now() < deadline) {
      idle();
      await new Promise((r) => setTimeout(r, 50));
    }
    const cut = sockets().size;
    for (const s of [...sockets()]) s.destroy();
    await closed;
    return cut;
  }
}
