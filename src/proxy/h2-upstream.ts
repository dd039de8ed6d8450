// One request over an HTTP/2 stream to a backend, driving the same undici
// DispatchHandler calls undici makes (onRequestStart with a controller, onRequestSent,
// onResponseStart, onResponseData with pause/resume backpressure, onResponseEnd with
// the trailers, onResponseError), so the proxy's relays and attempt loop run
// unchanged over HTTP/1.1 and HTTP/2 alike. The session pool (h2-pool.ts) gives it
// a session; it tells the pool when its stream is done.
import {
  type ClientHttp2Session,
  type ClientHttp2Stream,
  constants,
  type IncomingHttpHeaders,
  type OutgoingHttpHeaders,
} from 'node:http2';
import type { Dispatcher } from 'undici';
import type { Wire } from './backend-protocol.ts';
import { REFUSED_STREAM_CODE } from './failures.ts';

/** undici's dispatch options, and the request trailers to send once the body is done. */
export type UpstreamRequest = Dispatcher.DispatchOptions & {
  /** Read when the body has been sent: the client's request trailers, if any. */
  readonly trailers?: (() => Record<string, string | string[] | undefined> | undefined) | undefined;
  /** The client sent `TE: trailers`: said again to the backend (gRPC servers need it). */
  readonly teTrailers?: boolean | undefined;
  /**
   * The body may end with trailers (it has no declared length, or announces them):
   * an HTTP/1.1 hop sends it chunked through node:http (h1-trailers.ts), which can
   * send them; undici's HTTP/1.1 client cannot.
   */
  readonly trailersMayFollow?: boolean | undefined;
};

/** Where and how a try reaches its endpoint (route.ts makes it, once per target). */
export interface UpstreamRoute {
  /** http://address:port */
  readonly origin: string;
  readonly wire: Wire;
}

/** What a request or an upgrade is sent through: an undici Pool or an HTTP/2 session pool. */
export interface Upstream {
  dispatch(opts: UpstreamRequest, handler: Dispatcher.DispatchHandler): boolean;
  /** Requests running, and waiting for a connection or a stream. */
  readonly stats: { readonly running: number; readonly pending: number };
  close(): Promise<void>;
  destroy(): Promise<void>;
}

/** Headers HTTP/2 forbids (RFC 9113 §8.2.2), and Host, which becomes :authority. */
const NOT_ON_H2 = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
  'http2-settings',
  'host',
]);

/** A stream the backend refused (REFUSED_STREAM, or past its GOAWAY): it did not process it. */
export class StreamRefused extends Error {
  readonly code = REFUSED_STREAM_CODE;
  constructor(detail: string) {
    super(`the backend refused the stream (${detail})`);
    this.name = 'StreamRefused';
  }
}

/** The stream ended other than by the backend's whole answer. */
class StreamFailed extends Error {
  readonly code: string;
  constructor(message: string, code: string) {
    super(message);
    this.code = code;
  }
}

/** The backend sent no response body byte for `bodyTimeoutMs` (undici's bodyTimeout). */
const BODY_TIMEOUT = 'UND_ERR_BODY_TIMEOUT';

/** The :authority and other HTTP/2 request headers from undici's flat list. */
export function h2RequestHeaders(
  opts: UpstreamRequest,
  scheme: 'http' | 'https',
  fallbackAuthority: string,
): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {
    ':method': opts.method,
    ':path': opts.path,
    ':scheme': scheme,
    ':authority': fallbackAuthority,
  };
  if (opts.teTrailers) out.te = 'trailers';
  const flat = opts.headers;
  if (!Array.isArray(flat)) return out;
  for (let i = 0; i + 1 < flat.length; i += 2) {
    const name = String(flat[i]).toLowerCase();
    const value = String(flat[i + 1]);
    if (name === 'host') out[':authority'] = value;
    if (NOT_ON_H2.has(name) || name === 'te') continue;
    const had = out[name];
    if (had === undefined) out[name] = value;
    else out[name] = Array.isArray(had) ? [...had, value] : [String(had), value];
  }
  return out;
}

/** Response headers without the pseudo-headers, as undici gives them. */
function plainHeaders(h: IncomingHttpHeaders): Record<string, string | string[] | undefined> {
  const out: Record<string, string | string[] | undefined> = {};
  for (const name in h) if (name.charCodeAt(0) !== 58 /* : */) out[name] = h[name];
  return out;
}

/** Trailers fit for HTTP/2: no pseudo-headers, none of the connection-specific fields. */
function sendableTrailers(t: Record<string, string | string[] | undefined> | undefined) {
  const out: OutgoingHttpHeaders = {};
  if (!t) return out;
  for (const [name, value] of Object.entries(t)) {
    const lower = name.toLowerCase();
    if (value === undefined || lower.charCodeAt(0) === 58 || NOT_ON_H2.has(lower)) continue;
    if (lower === 'te' || lower === 'content-length' || lower === 'trailer') continue;
    out[lower] = value;
  }
  return out;
}

/** One request, from dispatch to its stream's close. */
export class H2Request implements Dispatcher.DispatchController {
  readonly opts: UpstreamRequest;
  readonly handler: Dispatcher.DispatchHandler;
  readonly #scheme: 'http' | 'https';
  readonly #authority: string;
  readonly #bodyTimeoutMs: number;
  #stream: ClientHttp2Stream | undefined;
  #reason: Error | null = null;
  #paused = false;
  #responded = false;
  /** No more handler calls: ended, failed or aborted. */
  #done = false;
  #trailers: IncomingHttpHeaders | undefined;
  #error: Error | undefined;

  constructor(
    opts: UpstreamRequest,
    handler: Dispatcher.DispatchHandler,
    scheme: 'http' | 'https',
    authority: string,
    bodyTimeoutMs: number,
  ) {
    this.opts = opts;
    this.handler = handler;
    this.#scheme = scheme;
    this.#authority = authority;
    this.#bodyTimeoutMs = bodyTimeoutMs;
  }

  get aborted(): boolean {
    return this.#reason !== null;
  }

  get paused(): boolean {
    return this.#paused;
  }

  get reason(): Error | null {
    return this.#reason;
  }

  /** Over for the pool: it takes no stream any more. */
  get done(): boolean {
    return this.#done;
  }

  /** Resets the stream with CANCEL (or drops the request before it has one). */
  abort(reason: Error): void {
    if (this.#done) return;
    this.#reason = reason;
    this.#stream?.close(constants.NGHTTP2_CANCEL);
    this.#fail(reason);
  }

  pause(): void {
    this.#paused = true;
    this.#stream?.pause();
    this.#stream?.setTimeout(0);
  }

  resume(): void {
    this.#paused = false;
    const s = this.#stream;
    if (!s) return;
    s.resume();
    if (this.#responded) this.#armBodyTimeout(s);
  }

  /** Fails the request before it got a stream (connect failed, pool destroyed). */
  fail(err: Error): void {
    this.#fail(err);
  }

  /**
   * Opens its stream on `session`; `closed` is called once when the stream is gone.
   * false: the session takes no new stream (GOAWAY, closing); the request waits for another.
   */
  run(session: ClientHttp2Session, closed: () => void): boolean {
    const opts = this.opts;
    const hasBody = opts.body !== null && opts.body !== undefined;
    const sendsTrailers = hasBody && opts.trailers !== undefined;
    let stream: ClientHttp2Stream;
    try {
      stream = session.request(h2RequestHeaders(opts, this.#scheme, this.#authority), {
        endStream: !hasBody,
        waitForTrailers: sendsTrailers,
      });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? '';
      if (code === 'ERR_HTTP2_GOAWAY_SESSION' || code === 'ERR_HTTP2_INVALID_SESSION') return false;
      // A header Node will not send: the request's own shape, as undici's refusals are.
      closed();
      this.#fail(new StreamFailed((e as Error).message, 'UND_ERR_INVALID_ARG'));
      return true;
    }
    this.#stream = stream;
    if (this.#paused) stream.pause();
    stream.once('close', () => {
      closed();
      this.#closed(stream);
    });
    stream.on('error', (err) => {
      this.#error ??= err;
    });
    stream.once('response', (headers) => {
      if (this.#done) return;
      this.#responded = true;
      this.#armBodyTimeout(stream);
      const status = Number(headers[':status']);
      this.handler.onResponseStart?.(this, status, plainHeaders(headers));
    });
    stream.on('data', (chunk: Buffer) => {
      if (!this.#done) this.handler.onResponseData?.(this, chunk);
    });
    stream.once('trailers', (t) => {
      this.#trailers = t;
    });
    stream.once('end', () => {
      if (this.#done) return;
      // Node ends the readable side of a stream the backend reset too (RST_STREAM,
      // a session torn down): an answer cut short, never one passed off as whole.
      const reset = stream.rstCode;
      if (reset !== undefined && reset !== constants.NGHTTP2_NO_ERROR) {
        this.#closed(stream);
        return;
      }
      this.#done = true;
      stream.setTimeout(0);
      // Answered before the body was all sent: the rest is not sent, and the stream
      // must close for its session to count it gone.
      if (!stream.writableEnded) stream.close(constants.NGHTTP2_NO_ERROR);
      this.handler.onResponseEnd?.(this, plainHeaders(this.#trailers ?? {}));
    });
    if (sendsTrailers) {
      stream.once('wantTrailers', () => {
        try {
          stream.sendTrailers(sendableTrailers(opts.trailers?.()));
        } catch {
          stream.sendTrailers({});
        }
      });
    }
    if (hasBody) void this.#sendBody(stream, opts.body);
    else this.handler.onRequestSent?.();
    return true;
  }

  #armBodyTimeout(stream: ClientHttp2Stream): void {
    const ms = this.#bodyTimeoutMs;
    if (ms <= 0 || this.#paused) return;
    stream.setTimeout(ms, () => {
      const err = new StreamFailed(`no response body bytes for ${ms} ms`, BODY_TIMEOUT);
      stream.close(constants.NGHTTP2_CANCEL);
      this.#fail(err);
    });
  }

  /** Streams the body up with backpressure; the stream's end sends the trailers, if any. */
  async #sendBody(stream: ClientHttp2Stream, body: UpstreamRequest['body']): Promise<void> {
    try {
      if (typeof body === 'string' || body instanceof Uint8Array) {
        stream.end(body);
      } else {
        for await (const chunk of body as AsyncIterable<Buffer>) {
          if (this.#done || stream.destroyed) return;
          if (!stream.write(chunk)) await drained(stream);
        }
        if (this.#done || stream.destroyed) return;
        stream.end();
      }
      this.handler.onRequestSent?.();
    } catch (e) {
      // The client's body failed (it left, or went silent): the backend must not wait for it.
      stream.close(constants.NGHTTP2_CANCEL);
      this.#fail(e as Error);
    }
  }

  #closed(stream: ClientHttp2Stream): void {
    if (this.#done) return;
    const code = stream.rstCode ?? constants.NGHTTP2_NO_ERROR;
    if (code === constants.NGHTTP2_REFUSED_STREAM && !this.#responded) {
      this.#fail(new StreamRefused(`stream ${stream.id ?? '?'}`));
      return;
    }
    this.#fail(
      this.#error ??
        new StreamFailed(`the backend's stream closed (code ${code})`, 'UND_ERR_SOCKET'),
    );
  }

  #fail(err: Error): void {
    if (this.#done) return;
    this.#done = true;
    this.#stream?.setTimeout(0);
    // Never inside the caller's own call (an abort from the handler itself).
    queueMicrotask(() => this.handler.onResponseError?.(this, err));
  }
}

/** Resolves when the stream can take more, or is gone. */
function drained(stream: ClientHttp2Stream): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      stream.off('drain', done);
      stream.off('close', done);
      resolve();
    };
    stream.on('drain', done);
    stream.on('close', done);
  });
}
