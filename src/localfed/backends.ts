// Sample backends: real HTTP servers, one per simulated pod, each bound to its own
// 127.x.y.z address. Each answers with JSON naming where it runs, and has a health
// endpoint whose answer can be flipped without touching Kubernetes state (the
// "Kubernetes says ready, the app is failing" case that active checks exist for).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import {
  connect,
  createServer as createTcpServer,
  type Socket,
  type Server as TcpServer,
} from 'node:net';

export interface PodInfo {
  cluster: string;
  region: string;
  zone: string;
  node: string;
  pod: string;
  namespace: string;
  service: string;
  ip: string;
  ports: number[];
  /** Set for pods of headless services (StatefulSet-style stable names). */
  hostname?: string;
}

export const HEALTH_PATH = '/healthz';

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
  #servers: Server[] = [];
  readonly #sockets = new Set<Socket>();
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
        const server = createServer((req, res) => this.#answer(req, res, port));
        server.keepAliveTimeout = 65_000;
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
    await Promise.all(servers.map((s) => close(s, this.#sockets)));
  }

  #answer(req: IncomingMessage, res: ServerResponse, port: number): void {
    // Drain any request body so keep-alive connections stay usable.
    req.resume();
    req.on('end', () => {
      const path = req.url ?? '/';
      if (path === HEALTH_PATH || path.startsWith(`${HEALTH_PATH}?`)) {
        sendJson(res, this.healthy ? 200 : 503, {
          status: this.healthy ? 'ok' : 'failing',
          pod: this.info.pod,
        });
        return;
      }
      this.requests++;
      const { ports: _ports, ...where } = this.info;
      sendJson(res, 200, {
        ...where,
        address: `${this.info.ip}:${port}`,
        method: req.method,
        host: req.headers.host ?? null,
        path,
      });
    });
  }
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
