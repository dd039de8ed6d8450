// The DNS listeners: UDP and TCP on every configured address, around one Responder
// that follows the catalog and health. TCP carries several length-prefixed queries
// per connection (tcp.ts), cuts slow ones and caps how many are open, closing the
// one idle longest for a new one. A reload keeps the
// listeners whose address stays, with their connections, and swaps the settings.
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import {
  type AddressInfo,
  createServer as createTcpServer,
  isIPv6,
  type Socket,
  type Server as TcpServer,
} from 'node:net';
import type { Snapshot } from '../catalog/model.ts';
import type { Config, ListenAddress } from '../config/schema.ts';
import { FedgateError } from '../errors.ts';
import type { HealthStore } from '../health/store.ts';
import { hostPort } from '../host-port.ts';
import { type AcceptGuard, ExhaustionTracker, guardAccept } from '../observe/exhaustion.ts';
import type { Logger } from '../observe/log.ts';
import type { Router } from '../routing/router.ts';
import type { StagedChange } from '../staged-change.ts';
import type { AddressingView } from './addressing.ts';
import { Responder } from './responder.ts';
import { ResponseRateLimiter } from './rrl.ts';
import { TCP_CLOSE_REASONS, type TcpCloseReason, TcpConnection } from './tcp.ts';

export interface DnsServerOptions {
  readonly config: Config;
  readonly catalog: { current(): Snapshot; subscribe(fn: (s: Snapshot) => void): () => void };
  readonly health: HealthStore;
  readonly router: Router;
  readonly log: Logger;
  readonly now?: () => number;
  /** The SOA serial's base (default: seconds at start); worker processes share the primary's. */
  readonly serialBase?: number;
  /** Where running out of descriptors is counted (default: a tracker of its own). */
  readonly exhaustion?: AcceptGuard;
  /**
   * Bind each UDP socket with SO_REUSEPORT: worker processes each bind their own on
   * the same port and the kernel spreads datagrams among them (src/workers/pool.ts).
   */
  readonly reusePort?: boolean;
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

/** One configured address: a UDP socket and a TCP server on the same port. */
interface Listener {
  /** host:port as configured (port 0 stays 0): what a reload compares. */
  readonly key: string;
  readonly udp: UdpSocket;
  readonly tcp: TcpServer;
  /** Its open TCP connections, the one whose last query is oldest first. */
  readonly connections: Set<TcpConnection>;
  /** Removed by a reload: its TCP connections close once their queries are answered. */
  draining: boolean;
}

/**
 * A reload's DNS part: new listeners bound, nothing else changed yet. Its commit
 * makes the new settings and listeners current; removed listeners drain in the
 * background.
 */
export interface StagedDns extends StagedChange {
  readonly opened: readonly string[];
  readonly closed: readonly string[];
}

/** Tries for a UDP and TCP port pair when the config says port 0. */
const EPHEMERAL_ATTEMPTS = 5;

export class DnsServer {
  readonly responder: Responder;
  #rrl: ResponseRateLimiter;
  #listeners: Listener[] = [];
  /** Every open TCP connection, of current and draining listeners. */
  readonly #connections = new Set<TcpConnection>();
  /** TCP connections the server closed itself, by why (fedgate_dns_tcp_closed_total). */
  readonly tcpClosed = new Map<TcpCloseReason, number>(TCP_CLOSE_REASONS.map((r) => [r, 0]));
  /** Removed listeners still draining. */
  readonly #retiring = new Set<Promise<void>>();
  #draining = false;
  readonly #unsubscribe: (() => void)[] = [];
  readonly #log: Logger;
  readonly #now: (() => number) | undefined;
  readonly #exhaustion: AcceptGuard;
  readonly #reusePort: boolean;
  #config: Config;

  private constructor(opts: DnsServerOptions) {
    const { config } = opts;
    this.#config = config;
    this.#log = opts.log;
    this.#exhaustion = opts.exhaustion ?? new ExhaustionTracker({ log: opts.log });
    this.#now = opts.now;
    this.#reusePort = opts.reusePort ?? false;
    this.#rrl = new ResponseRateLimiter(config.dns.rrl, opts.now);
    this.responder = new Responder({
      config,
      router: opts.router,
      rrl: this.#rrl,
      addressing: addressingView(config),
      // Serials rise across restarts too: seconds at start, plus one per snapshot.
      serialBase: opts.serialBase ?? Math.floor((opts.now ?? Date.now)() / 1000),
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
      for (const l of opts.config.dns.listen) server.#listeners.push(await server.#open(l));
    } catch (e) {
      await server.stop();
      throw e;
    }
    return server;
  }

  get rrl(): ResponseRateLimiter {
    return this.#rrl;
  }

  /** Bytes of answers written to TCP connections and not yet taken by the kernel. */
  tcpBuffered(): number {
    let n = 0;
    for (const c of this.#connections) n += c.socket.writableLength;
    return n;
  }

  /** Where it listens: UDP sockets, then TCP servers, in config order. */
  addresses(): { udp: AddressInfo[]; tcp: AddressInfo[] } {
    return {
      udp: this.#listeners.map((l) => l.udp.address()),
      tcp: this.#listeners.map((l) => l.tcp.address() as AddressInfo),
    };
  }

  /**
   * Binds the addresses `next` adds; throws FedgateError LISTEN_FAILED (having
   * closed them again) when one cannot be bound. Nothing running changes until commit().
   */
  async stage(next: Config): Promise<StagedDns> {
    const have = new Map(this.#listeners.map((l) => [l.key, l]));
    const wanted = new Set(next.dns.listen.map(hostPort));
    const opened = new Map<string, Listener>();
    try {
      for (const at of next.dns.listen) {
        const key = hostPort(at);
        if (have.has(key) || opened.has(key)) continue;
        const l = await this.#open(at).catch((e: unknown) => {
          throw new FedgateError('LISTEN_FAILED', `dns.listen: ${(e as Error).message}`, {
            cause: e,
          });
        });
        opened.set(key, l);
      }
    } catch (e) {
      await Promise.all([...opened.values()].map((l) => closeListener(l)));
      throw e;
    }
    const closed = this.#listeners.filter((l) => !wanted.has(l.key));
    return {
      opened: [...opened.keys()],
      closed: closed.map((l) => l.key),
      commit: () => {
        const before = this.#config.dns;
        this.#config = next;
        if (JSON.stringify(before.rrl) !== JSON.stringify(next.dns.rrl)) {
          this.#rrl = new ResponseRateLimiter(next.dns.rrl, this.#now);
        }
        this.responder.reconfigure(next, addressingView(next), this.#rrl);
        const tcp = next.dns.tcp;
        this.#listeners = next.dns.listen.map((at) => {
          const key = hostPort(at);
          return have.get(key) ?? opened.get(key)!;
        });
        if (before.tcp.idleTimeout !== tcp.idleTimeout) {
          for (const c of this.#connections) c.setIdleTimeout(tcp.idleTimeout);
        }
        for (const l of closed) {
          // UDP has nothing in flight: it closes now. TCP drains as on SIGTERM.
          l.udp.close();
          const done = this.#drainListeners([l], next.http.drainTimeout).then(({ cut }) => {
            if (cut > 0)
              this.#log.warn(
                { listener: l.key, cut },
                'dns: removed listener cut busy connections',
              );
          });
          this.#retiring.add(done);
          void done.finally(() => this.#retiring.delete(done));
        }
      },
      abort: async () => {
        await Promise.all([...opened.values()].map((l) => closeListener(l)));
      },
    };
  }

  async #open(at: ListenAddress): Promise<Listener> {
    // Port 0: the kernel picks a UDP port and TCP takes the same one, which another
    // process may hold for TCP; pick again a few times rather than fail.
    let udp: UdpSocket | undefined;
    let tcp: TcpServer | undefined;
    for (let attempt = 1; !tcp; attempt++) {
      udp = await this.#listenUdp(at.host, at.port);
      try {
        tcp = await this.#listenTcp(at.host, at.port === 0 ? udp.address().port : at.port);
      } catch (e) {
        udp.close();
        const inUse = (e as NodeJS.ErrnoException).code === 'EADDRINUSE';
        if (at.port !== 0 || !inUse || attempt >= EPHEMERAL_ATTEMPTS) throw e;
      }
    }
    const l: Listener = {
      key: hostPort(at),
      udp: udp!,
      tcp,
      connections: new Set(),
      draining: false,
    };
    // Out of descriptors, a new connection is closed unserved (and counted); UDP needs
    // none and keeps answering.
    guardAccept(tcp, 'dns_tcp_accept', this.#exhaustion, this.#log);
    tcp.on('connection', (conn: Socket) => this.#serveTcp(conn, l));
    return l;
  }

  async #listenUdp(host: string, port: number): Promise<UdpSocket> {
    // reusePort also keeps the socket out of node:cluster's sharing: it is this process's own.
    const sock = createSocket({
      type: isIPv6(host) ? 'udp6' : 'udp4',
      ipv6Only: isIPv6(host),
      reusePort: this.#reusePort,
    });
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
    return sock;
  }

  /** Port 0 on UDP took an ephemeral port: TCP is given the same one. */
  async #listenTcp(host: string, port: number): Promise<TcpServer> {
    // No server.maxConnections: at the cap #serveTcp closes the connection idle
    // longest rather than refuse the new one, so idle or slow clients cannot fill it.
    const server = createTcpServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host, port, ipv6Only: isIPv6(host) }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    return server;
  }

  #serveTcp(conn: Socket, l: Listener): void {
    if (conn.destroyed) return; // closed at accept: out of descriptors
    // Full: the connection whose last query is oldest goes, as Knot's XDP TCP resets
    // the most inactive ones; a client that trickles never completes one, so it is first.
    for (const oldest of l.connections) {
      if (l.connections.size < this.#config.dns.tcp.maxConnections) break;
      l.connections.delete(oldest);
      this.#connections.delete(oldest);
      oldest.cut('evicted');
    }
    const c = new TcpConnection(conn, {
      limits: () => this.#config.dns.tcp,
      answer: (msg, client) => {
        try {
          return this.responder.respond(msg, client, false);
        } catch (err) {
          // A bug must not take the listener down; the query goes unanswered.
          this.#log.error({ err }, 'dns: failed to answer');
          return undefined;
        }
      },
      active: (it) => {
        if (!l.connections.delete(it)) return;
        l.connections.add(it);
      },
      closedBy: (reason) => this.tcpClosed.set(reason, (this.tcpClosed.get(reason) ?? 0) + 1),
      draining: () => this.#draining || l.draining,
    });
    this.#connections.add(c);
    l.connections.add(c);
    conn.on('close', () => {
      this.#connections.delete(c);
      l.connections.delete(c);
    });
  }

  /**
   * Stops taking TCP connections and closes the open ones as soon as each has
   * answered the queries it holds; UDP keeps answering until stop(). After
   * `graceMs`, connections still mid-query are cut. Resolves with how many were.
   */
  async drain(graceMs: number): Promise<{ cut: number }> {
    this.#draining = true;
    const [mine] = await Promise.all([
      this.#drainListeners(this.#listeners, graceMs),
      Promise.all(this.#retiring),
    ]);
    return mine;
  }

  async #drainListeners(listeners: readonly Listener[], graceMs: number): Promise<{ cut: number }> {
    const closed = listeners.map(
      (l) => new Promise<void>((r) => (l.tcp.listening ? l.tcp.close(() => r()) : r())),
    );
    const conns = () => listeners.flatMap((l) => [...l.connections]);
    for (const l of listeners) l.draining = true;
    for (const c of conns()) if (!c.busy) c.socket.end();
    const deadline = Date.now() + graceMs;
    // Ended connections close when their answers are flushed and the client hangs up.
    while (conns().length > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, Math.min(50, Math.max(1, deadline - Date.now()))));
    }
    const left = conns();
    const cut = left.filter((c) => c.busy).length;
    for (const c of left) c.socket.destroy();
    await Promise.all(closed);
    return { cut };
  }

  async stop(): Promise<void> {
    for (const u of this.#unsubscribe) u();
    for (const c of this.#connections) c.socket.destroy();
    await Promise.all([...this.#listeners.map((l) => closeListener(l)), ...this.#retiring]);
  }
}

function closeListener(l: Listener): Promise<void> {
  for (const c of l.connections) c.socket.destroy();
  return Promise.all([
    new Promise<void>((r) => {
      try {
        l.udp.close(() => r());
      } catch {
        r(); // already closed (a removed listener)
      }
    }),
    new Promise<void>((r) => (l.tcp.listening ? l.tcp.close(() => r()) : r())),
  ]).then(() => {});
}
