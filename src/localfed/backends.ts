// Sample backends: real HTTP servers, one per simulated pod, each bound to its own
// 127.x.y.z address. Each answers with JSON naming where it runs, and has a health
// endpoint whose answer can be flipped without touching Kubernetes state (the
// "Kubernetes says ready, the app is failing" case that active checks exist for).
// A few extra paths (echo, bytes, status, delay, reset, WebSocket echo), the Gateway
// API conformance backend's conventions (echo-basic.ts) and a failure mode give
// fedgate's proxy something real to be tested against end to end. A port
// can serve the same over TLS (backend-https.ts) or the gRPC echo (grpc-echo.ts), as
// its Service port's appProtocol says.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import { type WebSocket, WebSocketServer } from 'ws';
import { hostPort } from '../host-port.ts';
import { echo, sendBytes, sendJson, sendRawJson, sendStatus, whenRead } from './backend-answers.ts';
import { httpsOptions, setEchoHealth } from './backend-https.ts';
import type { PodTlsSource } from './backend-pki.ts';
import { close, listen, resetConnection, trackSockets } from './backend-sockets.ts';
import { echoDelayMs, echoSetHeaders, RetrySimulation } from './echo-basic.ts';
import { type GrpcEcho, type GrpcEchoTls, startGrpcEcho } from './grpc-echo.ts';
import type { PodInfo, PortServing } from './pod-info.ts';

export type { PodInfo };

export const HEALTH_PATH = '/healthz';

/**
 * How a backend answers everything but its health endpoint: normally, 503 to all,
 * or by resetting the connection (the "ready and healthy, but broken" cases).
 */
export type BackendMode = 'ok' | 'error503' | 'reset';

/** Largest N for /bytes/N (1 TiB): enough for any test, a safe integer. */
const MAX_BYTES = 2 ** 40;
const MAX_DELAY_MS = 60_000;
/** How long stop() lets WebSocket clients answer the close frame before cutting them. */
const WS_CLOSE_GRACE_MS = 250;

const ROUTE = /^\/(bytes|status|delay)\/(\d+)$/;
const RETRY_PREFIX = '/retry/';
/** The conformance retry case's attempts, shared by every pod of a service. */
const retries = new RetrySimulation();

function isWebSocketUpgrade(req: IncomingMessage): boolean {
  return req.headers.upgrade?.toLowerCase() === 'websocket';
}

export class Backend {
  readonly info: PodInfo;
  /** How every other request is answered; the health endpoint follows `healthy` only. */
  mode: BackendMode = 'ok';
  #healthy = true;
  #servers: Array<Server | HttpsServer> = [];
  #grpc: GrpcEcho[] = [];
  readonly #tls: PodTlsSource | undefined;
  /** Plain HTTP connections; a WebSocket's moves to #wss.clients once it is open. */
  readonly #sockets = new Set<Socket>();
  readonly #wss = new WebSocketServer({ noServer: true });
  /** Every request but health checks (WebSocket upgrades and gRPC calls included), whatever `mode` is. */
  requests = 0;

  /** `tls` is needed when a port of `info.serving` asks for TLS. */
  constructor(info: PodInfo, tls?: PodTlsSource) {
    this.info = info;
    this.#tls = tls;
  }

  /** What the health endpoint answers (200 or 503) and the gRPC health service says. */
  get healthy(): boolean {
    return this.#healthy;
  }

  set healthy(healthy: boolean) {
    this.#healthy = healthy;
    for (const g of this.#grpc) setEchoHealth(g, healthy);
  }

  get listening(): boolean {
    return this.#servers.length + this.#grpc.length > 0;
  }

  async start(): Promise<void> {
    if (this.listening) return;
    const servers: Array<Server | HttpsServer> = [];
    const grpc: GrpcEcho[] = [];
    try {
      for (const port of this.info.ports) {
        const serving = this.info.serving?.[port] ?? { protocol: 'http', tls: 'none' };
        const tls = serving.tls === 'none' ? undefined : await this.#tlsFor(serving);
        if (serving.protocol === 'grpc') {
          const g = await startGrpcEcho({
            host: this.info.ip,
            port,
            info: this.info,
            ...(tls ? { tls } : {}),
            mode: () => this.mode,
            onCall: () => this.requests++,
          });
          setEchoHealth(g, this.#healthy);
          grpc.push(g);
          continue;
        }
        const server = this.#httpServer(port, tls);
        trackSockets(server, this.#sockets);
        await listen(server, port, this.info.ip);
        servers.push(server);
      }
    } catch (e) {
      await Promise.all([
        ...servers.map((s) => close(s, this.#sockets)),
        ...grpc.map((g) => g.stop()),
      ]);
      const err = e as NodeJS.ErrnoException;
      throw new Error(
        `backend ${this.info.pod} cannot listen on ${this.info.ip}: ${err.code ?? err.message}`,
      );
    }
    this.#servers = servers;
    this.#grpc = grpc;
  }

  async stop(): Promise<void> {
    const servers = this.#servers;
    const grpc = this.#grpc;
    this.#servers = [];
    this.#grpc = [];
    const closed = servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve())));
    for (const s of this.#sockets) s.destroy();
    await closeWebSockets(this.#wss.clients);
    await Promise.all([...closed, ...grpc.map((g) => g.stop())]);
  }

  async #tlsFor(serving: PortServing): Promise<GrpcEchoTls> {
    if (!this.#tls) throw new Error(`backend ${this.info.pod} serves TLS but has no certificates`);
    const { cert, key } = await this.#tls.certificate(this.info);
    return serving.tls === 'mutual' ? { cert, key, clientCa: this.#tls.clientCa } : { cert, key };
  }

  /** The HTTP answers on one port, over TLS when `tls` is given. */
  #httpServer(port: number, tls: GrpcEchoTls | undefined): Server | HttpsServer {
    // Only WebSocket upgrades leave the request path (Node >= 24.9), so any other
    // Upgrade (h2c...) gets the ordinary answer, as it did before.
    const options = { shouldUpgradeCallback: isWebSocketUpgrade };
    const answer = (req: IncomingMessage, res: ServerResponse) => this.#answer(req, res, port);
    const server = tls
      ? createHttpsServer({ ...options, ...httpsOptions(tls) }, answer)
      : createServer(options, answer);
    server.keepAliveTimeout = 65_000;
    server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) =>
      this.#upgrade(req, socket, head, port),
    );
    return server;
  }

  #answer(req: IncomingMessage, res: ServerResponse, port: number): void {
    const url = req.url ?? '/';
    const query = url.indexOf('?');
    const path = query < 0 ? url : url.slice(0, query);
    if (path === HEALTH_PATH) {
      whenRead(req, () =>
        sendJson(res, this.healthy ? 200 : 503, {
          status: this.healthy ? 'ok' : 'failing',
          pod: this.info.pod,
        }),
      );
      return;
    }
    this.requests++;
    if (this.mode === 'reset' || path === '/reset') {
      // RST before any response byte: what a crashed or killed process looks like.
      resetConnection(req.socket, this.#sockets);
      return;
    }
    const where = this.#where(req, port);
    if (this.mode === 'error503') {
      whenRead(req, () => sendJson(res, 503, { ...where, status: 503 }));
      return;
    }
    if (path === '/echo' && (req.method === 'POST' || req.method === 'PUT')) {
      echo(req, res);
      return;
    }
    const route = ROUTE.exec(path);
    const n = Number(route?.[2]);
    switch (route?.[1]) {
      case 'bytes':
        if (n > MAX_BYTES) break;
        req.resume();
        sendBytes(req, res, n);
        return;
      case 'status':
        // 100 belongs to Expect, 101 to upgrades; Node sends no other interim codes.
        if (n <= 101 || n >= 600 || (n > 103 && n < 200)) break;
        whenRead(req, () => sendStatus(res, n, where));
        return;
      case 'delay':
        whenRead(req, () => {
          const timer = setTimeout(() => sendJson(res, 200, where), Math.min(n, MAX_DELAY_MS));
          // The client gone first: nothing to answer, drop the timer now.
          res.once('close', () => clearTimeout(timer));
        });
        return;
      case undefined:
        if (path.startsWith(RETRY_PREFIX)) {
          this.#retry(req, res, query < 0 ? '' : url.slice(query + 1), where);
          return;
        }
        whenRead(req, () =>
          this.#echoBasic(req, res, query < 0 ? '' : url.slice(query + 1), where),
        );
        return;
    }
    whenRead(req, () =>
      sendJson(res, 400, { ...where, status: 400, error: `unsupported value in ${path}` }),
    );
  }

  /** The ordinary answer, after ?delay and with the headers X-Echo-Set-Header names. */
  #echoBasic(
    req: IncomingMessage,
    res: ServerResponse,
    query: string,
    where: Record<string, unknown>,
  ): void {
    const headers = echoSetHeaders(req.headers['x-echo-set-header']);
    const delay = new URLSearchParams(query).get('delay');
    if (delay === null) {
      sendJson(res, 200, where, headers);
      return;
    }
    const ms = echoDelayMs(delay);
    if (ms === undefined) {
      sendJson(res, 400, { ...where, status: 400, error: `unsupported delay ${delay}` });
      return;
    }
    const timer = setTimeout(() => sendJson(res, 200, where, headers), ms);
    res.once('close', () => clearTimeout(timer));
  }

  /** The conformance retry case's flaky backend: the first attempts of a uuid fail. */
  #retry(
    req: IncomingMessage,
    res: ServerResponse,
    query: string,
    where: Record<string, unknown>,
  ): void {
    const outcome = retries.attempt(
      `${this.info.namespace}/${this.info.service}`,
      new URLSearchParams(query),
    );
    if (outcome.kind === 'fail' && outcome.status === undefined) {
      resetConnection(req.socket, this.#sockets);
      return;
    }
    whenRead(req, () => {
      if (outcome.kind === 'bad')
        sendJson(res, 400, { ...where, status: 400, error: outcome.message });
      else if (outcome.kind === 'fail')
        sendJson(res, outcome.status ?? 500, { ...where, status: outcome.status });
      else this.#echoBasic(req, res, query, where);
    });
  }

  #where(req: IncomingMessage, port: number): Record<string, unknown> {
    const { ports: _ports, serving: _serving, ...where } = this.info;
    return {
      ...where,
      address: hostPort({ host: this.info.ip, port }),
      method: req.method,
      host: req.headers.host ?? null,
      path: req.url ?? '/',
      headers: req.headers,
    };
  }

  #upgrade(req: IncomingMessage, socket: Socket, head: Buffer, port: number): void {
    this.requests++;
    // After 'upgrade' nothing of node:http listens for errors on the socket any more.
    socket.on('error', () => socket.destroy());
    if (this.mode === 'reset') {
      resetConnection(socket, this.#sockets);
      return;
    }
    if (this.mode === 'error503' || !isWebSocketUpgrade(req)) {
      // The second case only on Node < 24.9, which ignores shouldUpgradeCallback.
      const code = this.mode === 'error503' ? 503 : 400;
      sendRawJson(socket, code, { ...this.#where(req, port), status: code });
      return;
    }
    this.#wss.handleUpgrade(req, socket, head, (ws) => {
      // Open: stop() now closes it with a close frame rather than cutting it.
      this.#sockets.delete(socket);
      // A misbehaving client (bad frame, reset) must not take localfed down.
      ws.on('error', () => ws.terminate());
      ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
      const { pod, cluster, zone } = this.info;
      ws.send(JSON.stringify({ pod, cluster, zone }));
    });
  }
}

/** Sends close frames and waits briefly for the answers, then cuts whoever is left. */
async function closeWebSockets(clients: Set<WebSocket>): Promise<void> {
  if (clients.size === 0) return;
  const open = [...clients];
  const closed = Promise.all(open.map((ws) => new Promise((resolve) => ws.once('close', resolve))));
  for (const ws of open) ws.close(1001, 'backend stopping');
  let timer: NodeJS.Timeout | undefined;
  const grace = new Promise((resolve) => {
    timer = setTimeout(resolve, WS_CLOSE_GRACE_MS);
  });
  await Promise.race([closed, grace]);
  clearTimeout(timer);
  for (const ws of open) ws.terminate();
}
