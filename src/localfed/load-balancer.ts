// A cluster's load balancer: a TCP forwarder per Service port on an ingress address.
import {
  connect,
  createServer as createTcpServer,
  type Socket,
  type Server as TcpServer,
} from 'node:net';
import { close, listen, trackSockets } from './backend-sockets.ts';
import type { Backend } from './backends.ts';

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
