// The proxy's listeners as a set: plain HTTP on http.listen, TLS on
// http.tls.listen. A reload stages the addresses it adds (bound, with the new
// certificates) and on commit keeps the listeners whose address stays, with their
// connections, giving them the new timeouts, limits and certificates in place;
// removed ones drain in the background. Draining all of them ends the proxy.
import type { Http2SecureServer } from 'node:http2';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Config } from '../config/schema.ts';
import { FedgateError } from '../errors.ts';
import { hostPort } from '../host-port.ts';
import type { AcceptGuard } from '../observe/exhaustion.ts';
import type { Logger } from '../observe/log.ts';
import type { StagedChange } from '../staged-change.ts';
import { rawError } from './answers.ts';
import { ClientConnections } from './client-connections.ts';
import {
  applyLimits,
  drainListeners,
  type Listener,
  type ListenerHooks,
  openListener,
  type Proto,
} from './listener.ts';
import { clientConnectionSettings } from './settings.ts';
import { defaultCertificate, type SniContexts, sniContexts } from './tls.ts';

/** A reload's listeners: the new ones bound; on commit, the set becomes `next`'s. */
export interface StagedListeners extends StagedChange {
  /** "http host:port" and "https host:port". */
  readonly opened: readonly string[];
  readonly closed: readonly string[];
}

export interface ProxyListenersOptions {
  readonly log: Logger;
  readonly exhaustion: AcceptGuard;
  readonly request: ListenerHooks['request'];
  readonly upgrade: ListenerHooks['upgrade'];
  readonly observer: ListenerHooks['observer'];
  readonly gatewaySni: ListenerHooks['gatewaySni'];
}

const id = (proto: Proto, key: string) => `${proto} ${key}`;

export class ProxyListeners {
  #listeners: Listener[] = [];
  /** Every open connection, of current and draining listeners. */
  readonly #sockets = new Set<Socket | Duplex>();
  /** Listeners a reload removed, draining in the background. */
  readonly #retiring = new Map<Listener, Promise<void>>();
  /** Their connections: answers on these ask the client to close. */
  readonly #closing = new WeakSet<Socket | Duplex>();
  readonly #log: Logger;
  readonly #hooks: ListenerHooks;
  #sni: SniContexts = () => {
    throw new Error('no TLS certificates');
  };
  #draining = false;
  /** Connections per client, against http.limits.maxConnectionsPerClient (set at open). */
  #clients: ClientConnections | undefined;

  constructor(opts: ProxyListenersOptions) {
    this.#log = opts.log;
    this.#hooks = {
      log: opts.log,
      exhaustion: opts.exhaustion,
      sockets: this.#sockets,
      sni: () => this.#sni,
      gatewaySni: opts.gatewaySni,
      request: opts.request,
      observer: opts.observer,
      admit: (socket) => this.#clients?.admit(socket) ?? true,
      upgrade: (req, socket, head, proto, listener) => {
        if (this.#draining) rawError(socket, 'DRAINING', 'shutting down');
        else opts.upgrade(req, socket, head, proto, listener);
      },
    };
  }

  /** Opens every listener `http` names (at start); throws at the first that cannot bind. */
  async open(http: Config['http']): Promise<void> {
    this.#clients = new ClientConnections(clientConnectionSettings(http));
    if (http.tls) this.#sni = sniContexts(http.tls.certificates);
    for (const { proto, at } of wanted(http)) {
      this.#listeners.push(await openListener(proto, at, http, this.#hooks));
    }
  }

  /**
   * Reads `http`'s certificates and binds the addresses it adds; throws, having
   * closed them again, when one cannot be bound (FedgateError LISTEN_FAILED, naming
   * the setting). Nothing running changes until commit.
   */
  async stage(http: Config['http']): Promise<StagedListeners> {
    const sni = http.tls ? sniContexts(http.tls.certificates) : undefined;
    // The default certificate (no SNI) for the TLS listeners kept.
    const fallback = defaultCertificate(http.tls?.certificates ?? []);
    const want = wanted(http);
    const have = new Map(this.#listeners.map((l) => [id(l.proto, l.key), l]));
    const opened = new Map<string, Listener>();
    const closeOpened = async () => {
      await Promise.all([...opened.values()].map((l) => this.#retire(l, 0)));
    };
    try {
      for (const { proto, at } of want) {
        const k = id(proto, hostPort(at));
        if (have.has(k) || opened.has(k)) continue;
        const setting = proto === 'http' ? 'http.listen' : 'http.tls.listen';
        const l = await openListener(proto, at, http, this.#hooks, sni).catch((e: unknown) => {
          throw new FedgateError('LISTEN_FAILED', `${setting}: ${(e as Error).message}`, {
            cause: e,
          });
        });
        opened.set(k, l);
      }
    } catch (e) {
      await closeOpened();
      throw e;
    }
    const keys = new Set(want.map((w) => id(w.proto, hostPort(w.at))));
    const closed = this.#listeners.filter((l) => !keys.has(id(l.proto, l.key)));
    return {
      opened: [...opened.keys()],
      closed: closed.map((l) => id(l.proto, l.key)),
      commit: () => {
        if (sni && fallback) {
          this.#sni = sni;
          for (const l of this.#listeners) {
            if (l.proto === 'https' && !opened.has(id(l.proto, l.key))) {
              (l.server as Http2SecureServer).setSecureContext(fallback);
            }
          }
        }
        this.#listeners = want.map(({ proto, at }) => {
          const k = id(proto, hostPort(at));
          return have.get(k) ?? opened.get(k)!;
        });
        this.#clients?.reconfigure(clientConnectionSettings(http));
        for (const l of this.#listeners) {
          l.sni.pending = undefined;
          if (!opened.has(id(l.proto, l.key))) applyLimits(l, http);
        }
        for (const l of closed) void this.#retire(l, http.drainTimeout);
      },
      abort: closeOpened,
    };
  }

  /** Where each listener is bound (port 0 in config gets a real one here). */
  addresses(): { http: AddressInfo[]; https: AddressInfo[] } {
    const of = (proto: Proto) =>
      this.#listeners
        .filter((l) => l.proto === proto)
        .map((l) => l.server.address() as AddressInfo);
    return { http: of('http'), https: of('https') };
  }

  get draining(): boolean {
    return this.#draining;
  }

  /** Whether an answer on `socket` should ask its client to close: all are while draining. */
  closing(socket: unknown): boolean {
    return this.#draining || (socket !== undefined && this.#closing.has(socket as Socket));
  }

  get connections(): number {
    return this.#sockets.size;
  }

  /**
   * Stops accepting on every listener, lets requests in flight finish, and after
   * `graceMs` cuts whatever is left. Resolves with how many connections were cut.
   */
  drain(graceMs: number): Promise<number> {
    this.#draining = true;
    const listeners = [...this.#listeners, ...this.#retiring.keys()];
    return drainListeners(listeners, graceMs, () => this.#sockets);
  }

  /**
   * A listener a reload removed: it stops accepting, and its connections close as
   * their requests finish (as drain() does for all), cut after `graceMs`.
   */
  #retire(l: Listener, graceMs: number): Promise<void> {
    for (const s of l.sockets) this.#closing.add(s);
    const done = drainListeners([l], graceMs, () => l.sockets).then((cut) => {
      if (cut > 0)
        this.#log.warn(
          { listener: id(l.proto, l.key), cut },
          'proxy: removed listener cut busy connections',
        );
      this.#retiring.delete(l);
    });
    this.#retiring.set(l, done);
    return done;
  }
}

/** The addresses `http` names, plain then TLS, in config order. */
function wanted(http: Config['http']) {
  return [
    ...http.listen.map((at) => ({ proto: 'http' as const, at })),
    ...(http.tls?.listen ?? []).map((at) => ({ proto: 'https' as const, at })),
  ];
}
