// Backends for the HTTP/2 tests: node:http2 (h2c, or TLS) and node:http servers that
// record what they saw (protocol version, streams at once per session, sessions,
// trailers, streams the client closed). Paths:
//   /            JSON { version, path, te, authority }
//   /slow/MS     answers after MS ms
//   /trailers    a body, then trailers x-checksum: abc and grpc-status: 0
//   /echo        the request body's length and its trailers, as JSON (or, when the
//                backend is set to refuse, REFUSED_STREAM once the body is read)
//   /hang        never answers (records when the stream closes)
import { once } from 'node:events';
import { createServer as createHttp1, type IncomingMessage, type ServerResponse } from 'node:http';
import {
  constants,
  createServer as createH2c,
  createSecureServer,
  type Http2ServerRequest,
  type Http2ServerResponse,
  type Http2Session,
  type SecureServerOptions,
} from 'node:http2';
import { createServer as createHttps, type ServerOptions } from 'node:https';
import type { AddressInfo } from 'node:net';

export interface BackendLog {
  readonly versions: string[];
  /** Most streams open at once on one session. */
  maxPerSession: number;
  sessions: number;
  readonly open: Map<Http2Session, number>;
  /** /hang requests whose stream or connection closed before an answer. */
  hangsClosed: number;
  hangsOpen: number;
  requests: number;
  /** Set: /echo reads the whole body, then resets the stream with REFUSED_STREAM. */
  refuse: boolean;
  refused: number;
}

export interface Backend {
  readonly port: number;
  readonly log: BackendLog;
  readonly sessions: Set<Http2Session>;
  stop(): Promise<void>;
}

type Req = IncomingMessage | Http2ServerRequest;
/** Both responses, through the calls these backends make (their overloads differ). */
type Res = ServerResponse;

function handle(req: Req, res: Res, log: BackendLog): void {
  log.requests++;
  log.versions.push(req.httpVersion);
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  const path = q < 0 ? url : url.slice(0, q);
  if (path.startsWith('/slow/')) {
    const ms = Number(path.slice(6));
    const t = setTimeout(() => res.end('slow'), ms);
    res.on('close', () => clearTimeout(t));
    return;
  }
  if (path === '/trailers') {
    res.writeHead(200, { 'content-type': 'text/plain', trailer: 'x-checksum, grpc-status' });
    res.write('body');
    res.addTrailers({ 'x-checksum': 'abc', 'grpc-status': '0' });
    res.end();
    return;
  }
  if (path === '/echo') {
    let n = 0;
    req.on('data', (c: Buffer) => {
      n += c.length;
    });
    req.on('end', () => {
      const stream = (req as Http2ServerRequest).stream;
      if (log.refuse && stream) {
        log.refused++;
        stream.close(constants.NGHTTP2_REFUSED_STREAM);
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          bytes: n,
          trailers: req.trailers,
          version: req.httpVersion,
          framing: {
            length: req.headers['content-length'] ?? null,
            chunked: req.headers['transfer-encoding'] ?? null,
          },
        }),
      );
    });
    return;
  }
  if (path === '/hang') {
    log.hangsOpen++;
    res.on('close', () => {
      if (!res.writableEnded) log.hangsClosed++;
    });
    return;
  }
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(
    JSON.stringify({
      version: req.httpVersion,
      path,
      te: req.headers.te ?? null,
      authority: req.headers[':authority'] ?? req.headers.host ?? null,
    }),
  );
}

function newLog(): BackendLog {
  return {
    versions: [],
    maxPerSession: 0,
    sessions: 0,
    open: new Map(),
    hangsClosed: 0,
    hangsOpen: 0,
    requests: 0,
    refuse: false,
    refused: 0,
  };
}

async function listen(
  server: ReturnType<typeof createHttp1> | ReturnType<typeof createH2c>,
  host: string,
): Promise<number> {
  server.listen(0, host);
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

/** An HTTP/2 backend: h2c with prior knowledge, or over TLS when `tls` is given. */
export async function h2Backend(
  host: string,
  maxConcurrentStreams = 100,
  tls?: SecureServerOptions,
): Promise<Backend> {
  const log = newLog();
  const sessions = new Set<Http2Session>();
  const onRequest = (req: Http2ServerRequest, res: Http2ServerResponse) =>
    handle(req, res as unknown as ServerResponse, log);
  const settings = { maxConcurrentStreams };
  const server = tls
    ? createSecureServer({ ...tls, settings }, onRequest)
    : createH2c({ settings }, onRequest);
  server.on('session', (s: Http2Session) => {
    log.sessions++;
    sessions.add(s);
    log.open.set(s, 0);
    s.on('close', () => sessions.delete(s));
    s.on('error', () => {});
    s.on('stream', (st) => {
      const n = (log.open.get(s) ?? 0) + 1;
      log.open.set(s, n);
      log.maxPerSession = Math.max(log.maxPerSession, n);
      st.on('error', () => {});
      st.once('close', () => log.open.set(s, (log.open.get(s) ?? 1) - 1));
    });
  });
  const port = await listen(server as ReturnType<typeof createH2c>, host);
  return {
    port,
    log,
    sessions,
    stop: async () => {
      for (const s of sessions) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

/** An HTTP/1.1 backend, over TLS when `tls` is given (ALPN: http/1.1 only). */
export async function h1Backend(host: string, tls?: ServerOptions): Promise<Backend> {
  const log = newLog();
  const onRequest = (req: IncomingMessage, res: ServerResponse) => handle(req, res, log);
  const server = tls ? createHttps(tls, onRequest) : createHttp1(onRequest);
  const port = await listen(server, host);
  return {
    port,
    log,
    sessions: new Set(),
    stop: async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}
