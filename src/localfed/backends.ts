// Sample backends: real HTTP servers, one per simulated pod, each bound to its own
// 127.x.y.z address. Each answers with JSON naming where it runs, and has a health
// endpoint whose answer can be flipped without touching Kubernetes state (the
// "Kubernetes says ready, the app is failing" case that active checks exist for).
// A few extra paths (echo, bytes, status, delay, reset, WebSocket echo) and a failure
// mode give fedgate's proxy something real to be tested against end to end.
import {
  createServer,
  type IncomingMessage,
  type OutgoingHttpHeaders,
  type Server,
  type ServerResponse,
  STATUS_CODES,
} from 'node:http';
import {
  connect,
  createServer as createTcpServer,
  type Socket,
  type Server as TcpServer,
} from 'node:net';
import { pipeline } from 'node:stream';
import { type WebSocket, WebSocketServer } from 'ws';
import { hostPort } from '../host-port.ts';
import type { PodInfo } from './pod-info.ts';

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

// Every /bytes answer repeats this one chunk. Byte k of the stream is k mod 256
// (64 KiB is a multiple of 256), so a client can check what it got.
const CHUNK = Buffer.alloc(64 * 1024);
for (let i = 0; i < CHUNK.length; i++) CHUNK[i] = i & 0xff;

const ROUTE = /^\/(bytes|status|delay)\/(\d+)$/;

function isWebSocketUpgrade(req: IncomingMessage): boolean {
  return req.headers.upgrade?.toLowerCase() === 'websocket';
}

async function listen(server: Server | TcpServer, port: number, host: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    server.once('error', onError);
    server.listen({ port, host }, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

function trackSockets(server: Server | TcpServer, sockets: Set<Socket>): void {
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
}

async function close(server: Server | TcpServer, sockets: Set<Socket>): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  for (const s of sockets) s.destroy();
  await closed;
}

export class Backend {
  readonly info: PodInfo;
  /** What the health endpoint answers: 200 when true, 503 when false. */
  healthy = true;
  /** How every other request is answered; the health endpoint follows `healthy` only. */
  mode: BackendMode = 'ok';
  #servers: Server[] = [];
  /** Plain HTTP connections; a WebSocket's moves to #wss.clients once it is open. */
  readonly #sockets = new Set<Socket>();
  readonly #wss = new WebSocketServer({ noServer: true });
  /** Every request but health checks, WebSocket upgrades included, whatever `mode` is. */
  requests = 0;

  constructor(info: PodInfo) {
    this.info = info;
  }

  get listening(): boolean {
    return this.#servers.length > 0;
  }

  async start(): Promise<void> {
    if (this.listening) return;
    const servers: Server[] = [];
    try {
      for (const port of this.info.ports) {
        // Only WebSocket upgrades leave the request path (Node >= 24.9), so any other
        // Upgrade (h2c...) gets the ordinary answer, as it did before.
        const server = createServer({ shouldUpgradeCallback: isWebSocketUpgrade }, (req, res) =>
          this.#answer(req, res, port),
        );
        server.keepAliveTimeout = 65_000;
        server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) =>
          this.#upgrade(req, socket, head, port),
        );
        trackSockets(server, this.#sockets);
        await listen(server, port, this.info.ip);
        servers.push(server);
      }
    } catch (e) {
      await Promise.all(servers.map((s) => close(s, this.#sockets)));
      const err = e as NodeJS.ErrnoException;
      throw new Error(
        `backend ${this.info.pod} cannot listen on ${this.info.ip}: ${err.code ?? err.message}`,
      );
    }
    this.#servers = servers;
  }

  async stop(): Promise<void> {
    const servers = this.#servers;
    this.#servers = [];
    const closed = servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve())));
    for (const s of this.#sockets) s.destroy();
    await closeWebSockets(this.#wss.clients);
    await Promise.all(closed);
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
      req.socket.resetAndDestroy();
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
        whenRead(req, () => sendJson(res, 200, where));
        return;
    }
    whenRead(req, () =>
      sendJson(res, 400, { ...where, status: 400, error: `unsupported value in ${path}` }),
    );
  }

  #where(req: IncomingMessage, port: number): Record<string, unknown> {
    const { ports: _ports, ...where } = this.info;
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
      socket.resetAndDestroy();
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

/** Runs `then` once the request body has been read to the end and dropped. */
function whenRead(req: IncomingMessage, then: () => void): void {
  // Reading the body keeps keep-alive connections usable.
  req.resume();
  req.on('end', then);
}

/** The body straight back as it arrives; pipeline gives backpressure both ways. */
function echo(req: IncomingMessage, res: ServerResponse): void {
  const headers: OutgoingHttpHeaders = { 'Cache-Control': 'no-store' };
  const type = req.headers['content-type'];
  if (type !== undefined) headers['Content-Type'] = type;
  // Without a length node:http answers chunked.
  const length = req.headers['content-length'];
  if (length !== undefined) headers['Content-Length'] = length;
  res.writeHead(200, headers);
  // An error here is a client gone mid-body; pipeline has destroyed both sides already.
  pipeline(req, res, () => {});
}

function sendBytes(req: IncomingMessage, res: ServerResponse, n: number): void {
  res.writeHead(200, {
    'Content-Type': 'application/octet-stream',
    'Content-Length': n,
    'Cache-Control': 'no-store',
  });
  if (req.method === 'HEAD') {
    res.end();
    return;
  }
  let left = n;
  const pump = (): void => {
    while (left > 0) {
      if (res.destroyed) return;
      const size = Math.min(left, CHUNK.length);
      left -= size;
      if (!res.write(size === CHUNK.length ? CHUNK : CHUNK.subarray(0, size))) {
        res.once('drain', pump);
        return;
      }
    }
    res.end();
  };
  // A client gone mid-stream never drains: forget the pending pump.
  res.once('close', () => res.off('drain', pump));
  pump();
}

function sendStatus(res: ServerResponse, code: number, where: Record<string, unknown>): void {
  if (code === 102 || code === 103) {
    // A 1xx is interim: send it, then a final answer (a 1xx alone leaves clients waiting).
    if (code === 102) res.writeProcessing();
    else res.writeEarlyHints({ link: '</early-hint>; rel=preload; as=fetch' });
    sendJson(res, 200, { ...where, status: 200, informational: code });
    return;
  }
  if (code === 204 || code === 205 || code === 304) {
    // No content allowed (RFC 9110 15.3.5, 15.3.6, 15.4.5); 205 says so with a zero length.
    res.writeHead(code, {
      'Cache-Control': 'no-store',
      ...(code === 205 ? { 'Content-Length': 0 } : {}),
    });
    res.end();
    return;
  }
  sendJson(res, code, { ...where, status: code });
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

function sendJson(res: ServerResponse, code: number, body: unknown): void {
  const text = `${JSON.stringify(body)}\n`;
  res.writeHead(code, {
    'Content-Type': 'application/json',
    'Content-Length': Buffer.byteLength(text),
    'Cache-Control': 'no-store',
  });
  res.end(text);
}

/** An HTTP answer written on a socket node:http has handed over (a refused upgrade). */
function sendRawJson(socket: Socket, code: number, body: unknown): void {
  const text = `${JSON.stringify(body)}\n`;
  socket.end(
    `HTTP/1.1 ${code} ${STATUS_CODES[code] ?? ''}\r\n` +
      'Content-Type: application/json\r\n' +
      `Content-Length: ${Buffer.byteLength(text)}\r\n` +
      'Cache-Control: no-store\r\nConnection: close\r\n\r\n' +
      text,
  );
}

/**
 * A cluster's load balancer for one service: a TCP forwarder on the ingress
 * address, round robin over that cluster's listening pods, as a cloud LB would.
 */
export class LoadBalancer {
  readonly ip: string;
  readonly ports: { port: number; targetPort: number }[];
  readonly #pods: () => Backend[];
  #servers: TcpServer[] = [];
  readonly #sockets = new Set<Socket>();
  #next = 0;

  constructor(ip: string, ports: { port: number; targetPort: number }[], pods: () => Backend[]) {
    this.ip = ip;
    this.ports = ports;
    this.#pods = pods;
  }

  get listening(): boolean {
    return this.#servers.length > 0;
  }

  async start(): Promise<void> {
    if (this.listening) return;
    for (const { port, targetPort } of this.ports) {
      const server = createTcpServer((client) => this.#forward(client, targetPort));
      trackSockets(server, this.#sockets);
      await listen(server, port, this.ip);
      this.#servers.push(server);
    }
  }

  async stop(): Promise<void> {
    const servers = this.#servers;
    this.#servers = [];
    await Promise.all(servers.map((s) => close(s, this.#sockets)));
  }

  #forward(client: Socket, targetPort: number): void {
    const pods = this.#pods().filter((p) => p.listening);
    if (pods.length === 0) {
      client.resetAndDestroy();
      return;
    }
    const pod = pods[this.#next++ % pods.length]!;
    const upstream = connect({ host: pod.info.ip, port: targetPort });
    this.#sockets.add(upstream);
    upstream.on('close', () => this.#sockets.delete(upstream));
    client.pipe(upstream).pipe(client);
    const fail = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', fail);
    upstream.on('error', fail);
  }
}
