// HTTP/2 sessions to one backend origin (an endpoint's address and port, and its TLS
// settings), requests multiplexed on them. A session takes at most the streams its
// peer's SETTINGS_MAX_CONCURRENT_STREAMS allows; when every session is full, another
// is opened. A session that got GOAWAY takes no new streams (those past its last
// stream id fail as refused: h2-upstream.ts). Idle sessions close after the pool
// idle timeout; opening one is bounded by the connect timeout. Over TLS, HTTP/2 is
// offered by ALPN: a backend that picks http/1.1 is remembered, and its requests
// (those waiting and all later ones) go to the HTTP/1.1 fallback.
import { type ClientHttp2Session, connect as h2connect } from 'node:http2';
import type { Duplex } from 'node:stream';
import type { Dispatcher } from 'undici';
import { H2Request, type UpstreamRequest } from './h2-upstream.ts';

/** A socket to the backend, connected: or 'http/1.1' when TLS's ALPN did not pick h2. */
export type Dial = () => Promise<Duplex | 'http/1.1'>;

export interface H2PoolOptions {
  /** http://host:port or https://host:port: the scheme and the default :authority. */
  readonly origin: string;
  readonly dial: Dial;
  readonly connectTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly bodyTimeoutMs: number;
  /** Where requests go once ALPN picked http/1.1 (an undici Pool over TLS). */
  readonly fallback?: (() => Dispatcher) | undefined;
  /** …and those whose body may end with trailers (node:http over TLS, h1-trailers.ts). */
  readonly fallbackForTrailers?: (() => Dispatcher) | undefined;
}

/** Streams a session is assumed to take before its peer's SETTINGS say (RFC 9113 §6.5.2 recommends at least 100). */
const ASSUMED_STREAMS = 100;

class PoolError extends Error {
  readonly code: string;
  constructor(message: string, code: string, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.code = code;
  }
}

interface Session {
  readonly session: ClientHttp2Session;
  active: number;
  max: number;
  /** GOAWAY received, or closing: no new streams. */
  draining: boolean;
  idle: NodeJS.Timeout | undefined;
}

export class H2Pool {
  readonly #o: H2PoolOptions;
  readonly #scheme: 'http' | 'https';
  readonly #authority: string;
  readonly #sessions = new Set<Session>();
  readonly #queue: H2Request[] = [];
  #connecting = 0;
  /** The peer's last SETTINGS_MAX_CONCURRENT_STREAMS: what a new session is expected to take. */
  #expected = ASSUMED_STREAMS;
  /** ALPN picked http/1.1: everything goes to the fallback. */
  #h1: Dispatcher | undefined;
  #closing = false;
  #destroyed = false;
  readonly #closedWaiters: (() => void)[] = [];

  constructor(o: H2PoolOptions) {
    this.#o = o;
    const url = new URL(o.origin);
    this.#scheme = url.protocol === 'https:' ? 'https' : 'http';
    this.#authority = url.host;
  }

  /** Sessions open (connected or not): for tests and the debug view. */
  get sessions(): number {
    return this.#sessions.size + this.#connecting;
  }

  /** Streams open, and requests waiting for one (undici's Pool stats, in part). */
  get stats(): { running: number; pending: number } {
    let running = 0;
    for (const s of this.#sessions) running += s.active;
    return { running, pending: this.#queue.length };
  }

  dispatch(opts: UpstreamRequest, handler: Dispatcher.DispatchHandler): boolean {
    if (this.#h1) return this.#http1(opts).dispatch(opts, handler);
    if (this.#closing || this.#destroyed) {
      throw new PoolError(
        'the pool is closed',
        this.#destroyed ? 'UND_ERR_DESTROYED' : 'UND_ERR_CLOSED',
      );
    }
    const r = new H2Request(opts, handler, this.#scheme, this.#authority, this.#o.bodyTimeoutMs);
    handler.onRequestStart?.(r, {});
    if (r.done) return true;
    this.#queue.push(r);
    this.#pump();
    return true;
  }

  /** Gives every waiting request a stream where a session has room; opens sessions for the rest. */
  #pump(): void {
    while (this.#queue.length > 0) {
      const r = this.#queue[0]!;
      if (r.done) {
        this.#queue.shift();
        continue;
      }
      const s = this.#roomy();
      if (!s) break;
      this.#queue.shift();
      this.#attach(s, r);
    }
    const waiting = this.#queue.filter((r) => !r.done).length;
    while (!this.#destroyed && waiting > this.#connecting * this.#expected) this.#open();
    if (this.#closing && this.#queue.length === 0) this.#closeIdle();
  }

  #roomy(): Session | undefined {
    for (const s of this.#sessions) {
      if (!s.draining && s.active < s.max && !s.session.closed && !s.session.destroyed) return s;
    }
    return undefined;
  }

  #attach(s: Session, r: H2Request): void {
    s.active++;
    if (s.idle) clearTimeout(s.idle);
    s.idle = undefined;
    let released = false;
    const ok = r.run(s.session, () => {
      if (released) return;
      released = true;
      s.active--;
      this.#idleLater(s);
      this.#pump();
    });
    if (!ok) {
      // The session stopped taking streams between the pick and the request.
      released = true;
      s.active--;
      s.draining = true;
      this.#queue.unshift(r);
      queueMicrotask(() => this.#pump());
    }
  }

  #open(): void {
    this.#connecting++;
    let settled = false;
    /** Ends a session still opening when the connect timeout passes. */
    let abandon: (() => void) | undefined;
    const timer = setTimeout(() => {
      if (settled) return;
      settled = true;
      abandon?.();
      this.#connecting--;
      const ms = this.#o.connectTimeoutMs;
      this.#connectFailed(
        new PoolError(`connect timeout after ${ms} ms`, 'UND_ERR_CONNECT_TIMEOUT'),
      );
    }, this.#o.connectTimeoutMs);
    this.#o.dial().then(
      (socket) => {
        if (settled) {
          if (socket !== 'http/1.1') socket.destroy();
          return;
        }
        if (this.#destroyed) {
          settled = true;
          clearTimeout(timer);
          this.#connecting--;
          if (socket !== 'http/1.1') socket.destroy();
          this.#notifyClosed();
          return;
        }
        if (socket === 'http/1.1') {
          settled = true;
          clearTimeout(timer);
          this.#connecting--;
          this.#toHttp1();
          return;
        }
        abandon = () => socket.destroy();
        this.#handshake(socket, () => {
          if (settled) return false;
          settled = true;
          clearTimeout(timer);
          this.#connecting--;
          return true;
        });
      },
      (err: Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.#connecting--;
        this.#connectFailed(err);
      },
    );
  }

  /** An HTTP/2 session on a connected socket; usable once the peer's SETTINGS arrive. */
  #handshake(socket: Duplex, claim: () => boolean): void {
    const session = h2connect(this.#o.origin, { createConnection: () => socket });
    const s: Session = {
      session,
      active: 0,
      max: ASSUMED_STREAMS,
      draining: false,
      idle: undefined,
    };
    let ready = false;
    // Kept as the cause of a close before SETTINGS: a TLS alert (the backend refused
    // fedgate's client certificate) comes as the session's error, just before it closes.
    let failure: Error | undefined;
    session.on('error', (e: Error) => {
      failure ??= e;
    });
    // The alert reaches the socket, and Node 24.21 then neither errors nor closes a
    // session still waiting for SETTINGS, even once destroyed (observed): fail the
    // connect here, so the wait does not last until the connect timeout.
    socket.on('error', (e: Error) => {
      failure ??= e;
      if (ready || !claim()) return;
      session.destroy();
      this.#connectFailed(
        new PoolError(`the connection failed before SETTINGS: ${e.message}`, 'UND_ERR_SOCKET', e),
      );
    });
    session.on('remoteSettings', (settings) => {
      s.max = Math.max(1, settings.maxConcurrentStreams ?? ASSUMED_STREAMS);
      this.#expected = s.max;
      if (!ready) {
        if (!claim()) {
          session.destroy();
          return;
        }
        ready = true;
        this.#sessions.add(s);
        this.#idleLater(s);
      }
      this.#pump();
    });
    session.on('goaway', () => {
      s.draining = true;
      this.#pump();
    });
    session.once('close', () => {
      if (s.idle) clearTimeout(s.idle);
      this.#sessions.delete(s);
      if (!ready && claim()) {
        this.#connectFailed(
          new PoolError(
            'the backend closed the connection before its SETTINGS',
            'UND_ERR_SOCKET',
            failure,
          ),
        );
        return;
      }
      this.#pump();
      this.#notifyClosed();
    });
  }

  /** No session could be opened: the waiting requests fail, unless another session may take them. */
  #connectFailed(err: Error): void {
    if (this.#connecting > 0 || this.#roomy()) {
      this.#pump();
      return;
    }
    for (const r of this.#queue.splice(0)) r.fail(err);
    this.#notifyClosed();
  }

  /** ALPN picked http/1.1: this origin speaks HTTP/1.1 from now on. */
  #toHttp1(): void {
    const make = this.#o.fallback;
    if (!make) {
      this.#connectFailed(new PoolError('the backend does not offer h2 by ALPN', 'UND_ERR_SOCKET'));
      return;
    }
    this.#h1 = make();
    for (const r of this.#queue.splice(0)) {
      if (r.done) continue;
      try {
        this.#http1(r.opts).dispatch(r.opts, r.handler);
      } catch (e) {
        r.fail(e as Error);
      }
    }
  }

  /** Where a request goes once this origin speaks HTTP/1.1. */
  #http1(opts: UpstreamRequest): Dispatcher {
    const forTrailers = opts.trailersMayFollow ? this.#o.fallbackForTrailers : undefined;
    return forTrailers ? forTrailers() : (this.#h1 as Dispatcher);
  }

  #idleLater(s: Session): void {
    if (s.active > 0 || s.idle || this.#o.idleTimeoutMs <= 0) return;
    if (this.#closing) {
      s.session.close();
      return;
    }
    s.idle = setTimeout(() => {
      s.idle = undefined;
      if (s.active === 0) {
        s.draining = true;
        s.session.close();
      }
    }, this.#o.idleTimeoutMs);
    s.idle.unref();
  }

  #closeIdle(): void {
    for (const s of this.#sessions) {
      s.draining = true;
      if (s.active === 0) s.session.close();
    }
  }

  #notifyClosed(): void {
    if (!this.#closing && !this.#destroyed) return;
    if (this.#sessions.size > 0 || this.#connecting > 0) return;
    for (const w of this.#closedWaiters.splice(0)) w();
  }

  /** Takes no more requests; resolves once those in flight and waiting are done. */
  async close(): Promise<void> {
    this.#closing = true;
    const h1 = this.#h1?.close();
    const done = new Promise<void>((resolve) => this.#closedWaiters.push(resolve));
    this.#pump();
    this.#notifyClosed();
    await Promise.all([done, h1]);
  }

  /** Ends everything now: requests in flight and waiting fail. */
  async destroy(): Promise<void> {
    this.#destroyed = true;
    const err = new PoolError('the pool was destroyed', 'UND_ERR_DESTROYED');
    for (const r of this.#queue.splice(0)) r.fail(err);
    const h1 = this.#h1?.destroy();
    const done = new Promise<void>((resolve) => this.#closedWaiters.push(resolve));
    for (const s of this.#sessions) s.session.destroy();
    this.#notifyClosed();
    await Promise.all([done, h1]);
  }
}
