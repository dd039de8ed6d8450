// A plain request's tries through undici: the request body streams to the upstream
// (through body.ts, which times the client's silences), the answer streams back (relay.ts) with
// backpressure, and a failure is told to the attempt loop (attempts.ts), which
// retries or answers. An HTTP/1.1 answer keeps the connection only when the request
// body was whole by then; otherwise it says Connection: close, since the rest of
// the body is never read.
import type { IncomingMessage } from 'node:http';
import type { Http2ServerRequest } from 'node:http2';
import type { Readable } from 'node:stream';
import type { ErrorCode } from '../errors.ts';
import type { HeaderModifier } from '../watch/gateway-records.ts';
import { isHttp1, type ProxyRequest, type ProxyResponse } from './answers.ts';
import { IdleBody, type RequestBodyIdle } from './body.ts';
import type { Carrier } from './carrier.ts';
import { formatGrpcTimeout, type GrpcCall } from './grpc.ts';
import { takesTrailers } from './headers.ts';
import { ResponseRelay, type ResponseUnread } from './relay.ts';
import { withTraceHeaders } from './spans.ts';
import { clientTakesTrailers } from './trailers.ts';
import type { Try } from './try.ts';
import type { UpstreamRoute } from './upstreams.ts';

/** What a request's carrier needs from the forwarder. */
export interface RequestHooks {
  readonly upstream: (t: Try) => UpstreamRoute;
  readonly draining: (socket?: unknown) => boolean;
  /** http.timeouts.requestBodyIdle, read at each try. */
  readonly bodyIdleMs: () => number;
  /** http.timeouts.responseSendIdle, read at each answer. */
  readonly sendIdleMs: () => number;
  /** http.retries.grpcAnswerHold, read at each answer. */
  readonly answerHoldMs: () => number;
  /** fedgate's own answer (`grpc`: as a gRPC status); `close`: the connection closes after it. */
  readonly fail: (
    res: ProxyResponse,
    code: ErrorCode,
    detail: string,
    close: boolean,
    grpc: boolean,
  ) => void;
}

const ignore = () => {};

export class RequestCarrier implements Carrier {
  readonly upgrade = false;
  readonly hasBody: boolean;
  readonly grpc: GrpcCall | undefined;
  /** The client takes response trailers: HTTP/2, or HTTP/1.1 with `TE: trailers`. */
  readonly takesTrailers: boolean;
  /** A Gateway API rule's ResponseHeaderModifiers, applied to the answer's head in order. */
  responseHeaders: readonly HeaderModifier[] = [];
  /** Told each body chunk read from the client (a RequestMirror's copy of a small body). */
  tap: ((chunk: Buffer) => void) | undefined;
  readonly #req: ProxyRequest;
  readonly #res: ProxyResponse;
  readonly #path: string;
  readonly #headers: string[];
  readonly #hooks: RequestHooks;
  #body: IdleBody | undefined;
  #onIdle: ((err: RequestBodyIdle) => void) | undefined;
  #onSendIdle: ((err: ResponseUnread) => void) | undefined;

  constructor(
    req: ProxyRequest,
    res: ProxyResponse,
    path: string,
    headers: string[],
    hooks: RequestHooks,
    grpc?: GrpcCall,
  ) {
    this.grpc = grpc;
    this.#req = req;
    this.#res = res;
    this.#path = path;
    this.#headers = headers;
    this.#hooks = hooks;
    this.hasBody =
      'stream' in req
        ? !(req as Http2ServerRequest).stream.endAfterHeaders
        : (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0') ||
          req.headers['transfer-encoding'] !== undefined;
    this.takesTrailers = clientTakesTrailers(req);
    // undici reads the body as an iterable, which attaches no error listener of its own.
    if (this.hasBody) req.on('error', ignore);
  }

  /** Calls `idle` when the client sends no body bytes for http.timeouts.requestBodyIdle. */
  onBodyIdle(idle: (err: RequestBodyIdle) => void): void {
    this.#onIdle = idle;
  }

  /** Calls `idle` when the client takes no response bytes for http.timeouts.responseSendIdle. */
  onSendIdle(idle: (err: ResponseUnread) => void): void {
    this.#onSendIdle = idle;
  }

  /** The client left response bytes untaken too long: end the request, then cut its answer. */
  sendStalled(err: ResponseUnread): void {
    this.#onSendIdle?.(err);
    this.#res.destroy(err);
  }

  get sendIdleMs(): number {
    return this.#hooks.sendIdleMs();
  }

  get answerHoldMs(): number {
    return this.#hooks.answerHoldMs();
  }

  /**
   * HTTP/1.1: the connection cannot carry another request after this answer when
   * the body is not whole yet (its rest is never read) or the connection drains.
   */
  closesConnection(): boolean {
    const res = this.#res;
    if (!isHttp1(res)) return false;
    return (
      (this.hasBody && !(this.#req as IncomingMessage).complete) || this.#hooks.draining(res.socket)
    );
  }

  /**
   * The answer is whole: stop reading through the body, and drop what of it is left
   * buffered, so the next pipelined request can be parsed (when the body was not
   * whole, the answer said Connection: close and Node closes after it).
   */
  done(): void {
    this.#body?.close();
    if (this.hasBody && !this.#req.readableEnded) this.#req.resume();
  }

  /**
   * Calls `cancel` when the response closes: the exchange knows whether its answer
   * was whole by then. The response's own flags cannot say: on HTTP/2 a reset stream
   * closes its compatibility response with 'finish' and `writableFinished` true,
   * although nothing was written.
   */
  onClientGone(cancel: () => void): void {
    // A response closes once: `on` spares the wrapper `once` makes per request.
    this.#res.on('close', cancel);
  }

  bodyStarted(): boolean {
    return this.#req.readableDidRead;
  }

  send(t: Try): void {
    const route = this.#hooks.upstream(t);
    // undici's HTTP/1.1 client sends no request trailers: a body that may end with
    // some goes to an HTTP/1.1 backend through node:http (an https backend whose ALPN
    // picked HTTP/1.1 is told so below).
    const trailersMayFollow = this.#trailersMayFollow;
    const up =
      trailersMayFollow && !route.wire.h2
        ? t.endpoint.withTrailers(route)
        : t.endpoint.upstream(route);
    up.dispatch(
      {
        path: this.#path,
        method: this.#req.method ?? 'GET',
        headers: this.#headersFor(t),
        // undici takes an async iterable body too; its types list only streams.
        body: this.hasBody ? (this.#bodyFor(route.wire.h2) as unknown as Readable) : null,
        // The client's request trailers, once its body ended: HTTP/2 backends get them,
        // and HTTP/1.1 ones when the body may end with them (above).
        trailers: this.#requestTrailers,
        teTrailers: this.#teTrailers,
        trailersMayFollow,
      },
      new ResponseRelay(t, this.#res, this),
    );
  }

  answer(code: ErrorCode, detail: string, close = false): void {
    const closes = close || this.closesConnection();
    this.#hooks.fail(this.#res, code, detail, closes, this.grpc !== undefined);
    this.#res.once('finish', () => this.done());
  }

  /**
   * A gRPC call with a deadline tells each try's upstream the time left (grpc-timeout
   * rewritten, as Envoy does with max_grpc_timeout), so the server gives up when the
   * client will have. A traced try carries its own traceparent (spans.ts).
   */
  #headersFor(t: Try): string[] {
    const deadline = this.grpc?.deadline;
    const traced = t.traceHeaders && withTraceHeaders(this.#headers, t.traceHeaders);
    if (deadline === undefined) return traced ?? this.#headers;
    const out = traced ?? this.#headers.slice();
    for (let i = 0; i < out.length; i += 2) {
      if (out[i]?.toLowerCase() === 'grpc-timeout') {
        out[i + 1] = formatGrpcTimeout(Math.max(deadline - performance.now(), 0.001));
      }
    }
    return out;
  }

  readonly #requestTrailers = () => this.#req.trailers;
  /**
   * The body may end with trailers: it announces them (a Trailer header, RFC 9110
   * §6.6.2), or it has no declared length (HTTP/1.1 chunked, or an HTTP/2 stream
   * without content-length), so the hop to an HTTP/1.1 backend is chunked either way.
   * An HTTP/2 body with a length that sends trailers unannounced keeps its length,
   * and the trailers have no room on HTTP/1.1.
   */
  get #trailersMayFollow(): boolean {
    if (!this.hasBody) return false;
    const h = this.#req.headers;
    return h.trailer !== undefined || h['content-length'] === undefined;
  }
  /** `TE: trailers` from the client, for HTTP/2 backends (headers.ts drops TE). */
  get #teTrailers(): boolean {
    return takesTrailers(this.#req.headers.te);
  }

  /**
   * What was read of the body is kept: a refused try's request can go elsewhere.
   * `whole`: and the client has ended it, so it is all there (a gRPC call retried
   * after an answer: a streaming call whose body is still open is not).
   */
  canReplay(whole = false): boolean {
    return this.#body?.replayable() !== undefined && (!whole || this.#req.readableEnded);
  }

  /**
   * One per try: a retry comes while the body is unread, or with what was read of it
   * first (`canReplay`). HTTP/2 tries keep what they read (a refused stream), and so
   * do a gRPC call's (a trailers-only UNAVAILABLE, over any carrier).
   */
  #bodyFor(h2: boolean): IdleBody {
    const replay = this.#body?.replayable();
    this.#body?.close();
    this.#body = new IdleBody(
      this.#req,
      this.#hooks.bodyIdleMs(),
      (err) => this.#onIdle?.(err),
      replay,
      h2 || this.grpc !== undefined,
      this.tap,
    );
    return this.#body;
  }

  /** The backend answered: what was kept of the body for a replay can go. */
  answered(): void {
    this.#body?.forget();
  }
}
