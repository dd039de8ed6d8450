// One proxy listener: plain (HTTP/1.1, and HTTP/2 with prior knowledge on the same
// port, told apart by the connection preface), or TLS offering HTTP/2 and HTTP/1.1
// by ALPN, the certificate chosen by SNI. Node's parser does the protocol hardening
// (smuggling shapes, header size and the headers timeout); what it reports becomes
// a short answer and a closed socket. Made, wired, bound; given new limits by a
// reload that keeps it; drained with its connections.
import { createServer, type IncomingMessage, type Server } from 'node:http';
import {
  createServer as createH2cServer,
  createSecureServer,
  type Http2SecureServer,
  type Http2Server,
  type Http2ServerRequest,
  type Http2ServerResponse,
  type ServerHttp2Session,
} from 'node:http2';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { SecureContext } from 'node:tls';
import type { Config, ListenAddress } from '../config/schema.ts';
import type { ErrorCode } from '../errors.ts';
import { hostPort } from '../host-port.ts';
import { type AcceptGuard, guardAccept } from '../observe/exhaustion.ts';
import type { Logger } from '../observe/log.ts';
import { type ProxyRequest, type ProxyResponse, rawError } from './answers.ts';
import { guardSession, type ResetLimit } from './h2-sessions.ts';
import type { ProxyObserver } from './observer.ts';
import { sniffPreface } from './preface.ts';
import { defaultCertificate, type SniContexts } from './tls.ts';

export type Proto = 'http' | 'https';

/** One listening address and what it carries. */
export interface Listener {
  /** host:port as configured (port 0 stays 0): what a reload compares. */
  readonly key: string;
  readonly proto: Proto;
  readonly server: Server | Http2SecureServer;
  /** The plain listener's HTTP/2 (prior knowledge) server: connections starting with the preface go there. */
  readonly h2c: Http2Server | undefined;
  /** Plain connections whose first bytes have not told their protocol yet: idle, for a drain. */
  readonly sniffing: Set<Socket>;
  readonly sockets: Set<Socket | Duplex>;
  readonly sessions: Set<ServerHttp2Session>;
  /** TLS listeners a reload opened: its certificates, until it commits them. */
  readonly sni: { pending: SniContexts | undefined };
  /** Read by its HTTP/2 sessions' reset guards as they go; a reload sets it. */
  readonly resets: ResetLimit;
}

/** What every listener shares: where requests go, and the proxy's bookkeeping. */
export interface ListenerHooks {
  readonly log: Logger;
  readonly exhaustion: AcceptGuard;
  /** Every open connection, of every listener, kept or draining. */
  readonly sockets: Set<Socket | Duplex>;
  /** The certificates in force: read at each handshake. */
  readonly sni: () => SniContexts;
  /** A Gateway API listener's certificate for this server name on this listener: it wins over `sni`. */
  readonly gatewaySni: (listener: string, name: string) => SecureContext | undefined;
  /** `listener`: the address it came in on, as configured (its Gateway API routes' key). */
  readonly request: (req: ProxyRequest, res: ProxyResponse, proto: Proto, listener: string) => void;
  /** An Upgrade request, its socket already counted among the connections. */
  readonly upgrade: (
    req: IncomingMessage,
    socket: Duplex,
    head: Buffer,
    proto: Proto,
    listener: string,
  ) => void;
  /** Where stream resets and connections closed for them are counted: the one in force. */
  readonly observer: () => ProxyObserver | undefined;
  /** Whether a new connection's client may hold one more (client-connections.ts). */
  readonly admit: (socket: Socket) => boolean;
}

/** Makes, wires and binds a listener; `sni` is a reload's certificates, not yet in force. */
export async function openListener(
  proto: Proto,
  at: ListenAddress,
  http: Config['http'],
  hooks: ListenerHooks,
  sni?: SniContexts,
): Promise<Listener> {
  const slot = { pending: sni };
  const key = hostPort(at);
  const server =
    proto === 'http' ? plainServer(http, hooks, key) : tlsServer(http, hooks, slot, key);
  const l: Listener = {
    key,
    proto,
    server,
    h2c: proto === 'http' ? h2cServer(http, hooks, key) : undefined,
    sniffing: new Set(),
    sockets: new Set(),
    sessions: new Set(),
    sni: slot,
    resets: { prematureResetStreams: http.limits.prematureResetStreams },
  };
  wire(l, hooks, http.timeouts.headers);
  await listenOn(server, at);
  // HTTP and HTTPS alike: the same descriptors, one resource.
  guardAccept(server, 'http_accept', hooks.exhaustion, hooks.log);
  return l;
}

/**
 * A reload's timeouts and limits on a listener it keeps. Node reads the HTTP/1 ones
 * from the server as it goes (the TLS listener's HTTP/1.1 fallback too).
 */
export function applyLimits(l: Listener, http: Config['http']): void {
  const server = l.server as unknown as Server;
  const t = http.timeouts;
  server.headersTimeout = t.headers;
  server.requestTimeout = t.request;
  server.keepAliveTimeout = t.idle;
  (server as unknown as { maxHeaderSize: number }).maxHeaderSize = http.limits.maxHeaderSize;
  if (l.proto === 'http') server.maxHeadersCount = http.limits.maxHeaderCount + 1;
  l.resets.prematureResetStreams = http.limits.prematureResetStreams;
  const settings = h2Settings(http);
  // New sessions take the server's; open ones are sent a SETTINGS frame, and a lower
  // stream cap leaves the streams already open alone (RFC 9113 6.5.2).
  (l.h2c ?? (l.server as Http2SecureServer)).updateSettings(settings);
  for (const session of l.sessions) {
    if (session.closed || session.destroyed) continue;
    try {
      session.settings(settings);
    } catch {
      // Node throws when the client has left 10 SETTINGS unacknowledged: that
      // connection keeps what it has, and the reload goes on.
    }
  }
}

/** The SETTINGS fedgate's HTTP/2 sessions advertise. */
function h2Settings(http: Config['http']) {
  return {
    maxHeaderListSize: http.limits.maxHeaderSize,
    maxConcurrentStreams: http.limits.maxConcurrentStreams,
  };
}

/**
 * Header fields (pseudo-headers included) Node takes on an HTTP/2 stream before it
 * resets it. Past maxHeaderCount the proxy answers 431 itself, so Node's cap sits
 * where the byte limit does: Node charges a field its name, value and 32 bytes
 * against maxHeaderListSize, so no list within it has more than size / 32 fields,
 * and that remains the hard ceiling (a list over it is reset, as before).
 */
export function headerPairsCeiling(limits: Config['http']['limits']): number {
  return Math.max(limits.maxHeaderCount, Math.ceil(limits.maxHeaderSize / 32)) + 5;
}

/**
 * Stops `listeners` accepting and lets requests in flight finish; after `graceMs`
 * cuts whatever of `sockets` is left. Resolves with how many were cut.
 */
export async function drainListeners(
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
    for (const l of listeners) {
      if (l.proto !== 'http') continue;
      (l.server as Server).closeIdleConnections();
      for (const s of l.sniffing) s.destroy();
    }
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

function plainServer(http: Config['http'], hooks: ListenerHooks, key: string): Server {
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
    (req, res) => hooks.request(req, res, 'http', key),
  );
  // One more than the cap, so a request over it is seen (Node drops the excess silently).
  server.maxHeadersCount = http.limits.maxHeaderCount + 1;
  return server;
}

/** HTTP/2 with prior knowledge on the plain listener: the TLS listener's settings, never listening itself. */
function h2cServer(http: Config['http'], hooks: ListenerHooks, key: string): Http2Server {
  return createH2cServer(
    {
      maxSessionMemory: 64,
      settings: h2Settings(http),
      maxHeaderListPairs: headerPairsCeiling(http.limits),
    },
    (req: Http2ServerRequest, res: Http2ServerResponse) =>
      hooks.request(req, res as unknown as ProxyResponse, 'http', key),
  );
}

function tlsServer(
  http: Config['http'],
  hooks: ListenerHooks,
  sni: Listener['sni'],
  key: string,
): Http2SecureServer {
  const t = http.timeouts;
  const server = createSecureServer(
    {
      allowHTTP1: true,
      ...defaultCertificate(http.tls!.certificates),
      // Read at each handshake, so a reload's certificates apply to kept listeners too.
      SNICallback: (name, cb) =>
        cb(null, hooks.gatewaySni(key, name) ?? (sni.pending ?? hooks.sni())(name)),
      maxSessionMemory: 64,
      // HTTP/1.1 over TLS: the same parser limit as the plain listener (Node passes
      // it on to its HTTP/1 fallback; the types do not list it).
      ...({ maxHeaderSize: http.limits.maxHeaderSize } as object),
      settings: h2Settings(http),
      // Fixed for the listener's life: a reload that raises maxHeaderCount or
      // maxHeaderSize past it needs new TLS listeners for HTTP/2 to take more.
      maxHeaderListPairs: headerPairsCeiling(http.limits),
    },
    (req: Http2ServerRequest, res: Http2ServerResponse) =>
      hooks.request(req, res as unknown as ProxyResponse, 'https', key),
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

function wire(l: Listener, hooks: ListenerHooks, headersTimeoutMs: number): void {
  const { server, proto } = l;
  const track = (s: Socket | Duplex) => {
    hooks.sockets.add(s);
    l.sockets.add(s);
    s.once('close', () => {
      hooks.sockets.delete(s);
      l.sockets.delete(s);
    });
  };
  // Every accepted TCP connection, plain or before its TLS handshake: one past its
  // client's cap is closed before anything of it is read.
  const admit = (s: Socket): boolean => {
    if (s.destroyed) return false;
    if (hooks.admit(s)) return true;
    hooks.observer()?.connectionClosed?.('client_connections');
    s.destroy();
    return false;
  };
  const h2c = l.h2c;
  if (h2c) {
    // Node's own HTTP/1.1 connection handling runs only for connections that do not
    // begin with the HTTP/2 preface; the others go to the HTTP/2 server.
    const h1 = server.listeners('connection') as ((s: Socket) => void)[];
    server.removeAllListeners('connection');
    server.on('connection', (s: Socket) => {
      if (!admit(s)) return;
      track(s);
      l.sniffing.add(s);
      s.once('close', () => l.sniffing.delete(s));
      sniffPreface(s, headersTimeoutMs, (h2) => {
        l.sniffing.delete(s);
        if (h2) h2c.emit('connection', s);
        else for (const fn of h1) fn.call(server, s);
      });
    });
  } else {
    server.on('connection', (s: Socket) => void admit(s));
    server.on('secureConnection', track);
  }
  const sessions = h2c ?? (proto === 'https' ? server : undefined);
  sessions?.on('session', (session: ServerHttp2Session) => {
    l.sessions.add(session);
    session.once('close', () => l.sessions.delete(session));
    guardSession(session, l.resets, hooks.observer);
  });
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    if (err.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    const code = clientErrorCode(err.code);
    hooks.log.debug({ err: err.code, code }, 'malformed request');
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
    hooks.upgrade(req, socket, head, proto, l.key);
  });
}
