// The DNS listeners: UDP and TCP on every configured address, around one Responder
// that follows the catalog and health. TCP carries several length-prefixed queries
// per connection, closes idle ones and caps how many are open.
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import {
  type AddressInfo,
  createServer as createTcpServer,
  isIPv6,
  type Socket,
  type Server as TcpServer,
} from 'node:net';
import type { Snapshot } from '../catalog/model.ts';
import type { Config } from '../config/schema.ts';
import type { HealthStore } from '../health/store.ts';
import type { Logger } from '../observe/log.ts';
import type { Router } from '../routing/router.ts';
import type { AddressingView } from './addressing.ts';
import { Responder } from './responder.ts';
import { ResponseRateLimiter } from './rrl.ts';

export interface DnsServerOptions {
  readonly config: Config;
  readonly catalog: { current(): Snapshot; subscribe(fn: (s: Snapshot) => void): () => void };
  readonly health: HealthStore;
  readonly router: Router;
  readonly log: Logger;
  readonly now?: () => number;
}

/** What DNS answers point at, from config: the annotation can override per service. */
export function addressingView(config: Config): AddressingView {
  return {
    mode: (svc) => svc.dnsMode ?? config.dns.addressing,
    edges: config.dns.proxyAddresses,
    clusterRegions: new Map(config.clusters.map((c) => [c.name, c.region])),
    // SRV records in proxy mode name the edge's first plain HTTP port (else its TLS one).
    proxyPort: config.http.listen[0]?.port ?? config.http.tls?.listen[0]?.port ?? 80,
  };
}

export class DnsServer {
  readonly responder: Responder;
  readonly rrl: ResponseRateLimiter;
  readonly #udp: UdpSocket[] = [];
  readonly #tcp: TcpServer[] = [];
  readonly #connections = new Set<Socket>();
  /** Connections holding part of a query: drain lets them finish it. */
  readonly #partial = new Set<Socket>();
  #draining = false;
  readonly #unsubscribe: (() => void)[] = [];
  readonly #log: Logger;

  private constructor(opts: DnsServerOptions) {
    const { config } = opts;
    this.#log = opts.log;
    this.rrl = new ResponseRateLimiter(config.dns.rrl, opts.now);
    this.responder = new Responder({
      config,
      router: opts.router,
      rrl: this.rrl,
      addressing: addressingView(config),
      // Serials rise across restarts too: seconds at start, plus one per snapshot.
      serialBase: Math.floor((opts.now ?? Date.now)() / 1000),
    });
    this.responder.setSnapshot(opts.catalog.current());
    this.#unsubscribe.push(
      opts.catalog.subscribe((s) => this.responder.setSnapshot(s)),
      opts.health.subscribe(() => this.responder.invalidate()),
    );
  }

  static async start(opts: DnsServerOptions): Promise<DnsServer> {
    const server = new DnsServer(opts);
    try {
      for (const l of opts.config.dns.listen) {
        await server.#listenUdp(l.host, l.port);
        await server.#listenTcp(l.host, l.port, opts.config.dns.tcp);
      }
    } catch (e) {
      await server.stop();
      throw e;
    }
    return server;
  }

  /** Where it listens: UDP sockets, then TCP servers, in config order. */
  addresses(): { udp: AddressInfo[]; tcp: AddressInfo[] } {
    return {
      udp: this.#udp.map((s) => s.address()),
      tcp: this.#tcp.map((s) => s.address() as AddressInfo),
    };
  }

  async #listenUdp(host: string, port: number): Promise<void> {
    const sock = createSocket({ type: isIPv6(host) ? 'udp6' : 'udp4', ipv6Only: isIPv6(host) });
    sock.on('message', (msg, rinfo) => {
      let out: Buffer | undefined;
      try {
        out = this.responder.respond(msg, rinfo.address, true);
      } catch (err) {
        // A bug must not take the listener down; the query goes unanswered.
        this.#log.error({ err }, 'dns: failed to answer');
      }
      if (out) sock.send(out, rinfo.port, rinfo.address);
    });
    sock.on('error', (err) => this.#log.warn({ err }, 'dns: udp socket error'));
    await new Promise<void>((resolve, reject) => {
      sock.once('error', reject);
      sock.bind(port, host, () => {
        sock.off('error', reject);
        resolve();
      });
    });
    this.#udp.push(sock);
  }

  async #listenTcp(host: string, port: number, limits: Config['dns']['tcp']): Promise<void> {
    const server = createTcpServer((conn) => this.#serveTcp(conn, limits.idleTimeout));
    server.maxConnections = limits.maxConnections;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      // Port 0 on UDP took an ephemeral port: TCP takes the same one.
      const udpPort = port === 0 ? this.#udp.at(-1)!.address().port : port;
      server.listen({ host, port: udpPort, ipv6Only: isIPv6(host) }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.#tcp.push(server);
  }

  #serveTcp(conn: Socket, idleMs: number): void {
    this.#connections.add(conn);
    conn.setTimeout(idleMs, () => conn.destroy());
    conn.on('close', () => this.#connections.delete(conn));
    conn.on('error', () => conn.destroy());
    conn.on('close', () => this.#partial.delete(conn));
    let pending: Buffer = Buffer.alloc(0);
    conn.on('data', (chunk: Buffer) => {
      if (conn.writableEnded) return;
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      while (pending.length >= 2) {
        const len = pending.readUInt16BE(0);
        if (pending.length < 2 + len) break;
        const msg = pending.subarray(2, 2 + len);
        pending = pending.subarray(2 + len);
        let out: Buffer | undefined;
        try {
          out = this.responder.respond(msg, conn.remoteAddress ?? '', false);
        } catch (err) {
          this.#log.error({ err }, 'dns: failed to answer');
        }
        // A TCP message cannot exceed 64 KiB; answers are capped well below, but never throw here.
        if (out && out.length <= 0xffff) {
          const framed = Buffer.allocUnsafe(2 + out.length);
          framed.writeUInt16BE(out.length, 0);
          out.copy(framed, 2);
          conn.write(framed);
        }
      }
      if (pending.length > 0) this.#partial.add(conn);
      else this.#partial.delete(conn);
      // Draining: every whole query got its answer; close once nothing is half-read.
      if (this.#draining && pending.length === 0) conn.end();
    });
  }

  /**
   * Stops taking TCP connections and closes the open ones as soon as each has
   * answered the queries it holds; UDP keeps answering until stop(). After
   * `graceMs`, connections still mid-query are cut. Resolves with how many were.
   */
  async drain(graceMs: number): Promise<{ cut: number }> {
    this.#draining = true;
    const closed = this.#tcp.map((s) => new Promise<void>((r) => s.close(() => r())));
    for (const c of this.#connections) if (!this.#partial.has(c)) c.end();
    const deadline = Date.now() + graceMs;
    // Ended connections close when their answers are flushed and the client hangs up.
    while (this.#connections.size > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, Math.min(50, Math.max(1, deadline - Date.now()))));
    }
    const cut = this.#partial.size;
    for (const c of this.#connections) c.destroy();
    await Promise.all(closed);
    return { cut };
  }

  async stop(): Promise<void> {
    for (const u of this.#unsubscribe) u();
    for (const c of this.#connections) c.destroy();
    await Promise.all([
      ...this.#udp.map((s) => new Promise<void>((r) => s.close(() => r()))),
      ...this.#tcp.map((s) => new Promise<void>((r) => (s.listening ? s.close(() => r()) : r()))),
    ]);
  }
}
