// A plain request's tries through undici: the request body streams to the upstream,
// the answer streams back with backpressure, and a failure is told to the attempt
// loop (attempts.ts), which retries or answers.
import type { IncomingMessage } from 'node:http';
import type { Http2ServerRequest } from 'node:http2';
import type { Dispatcher } from 'undici';
import type { ErrorCode } from '../errors.ts';
import { isHttp1, type ProxyRequest, type ProxyResponse } from './answers.ts';
import type { Carrier } from './attempts.ts';
import { downstreamResponseHeaders } from './headers.ts';
import type { Try } from './try.ts';

/** What a request's carrier needs from the forwarder. */
export interface RequestHooks {
  readonly origin: (t: Try) => string;
  readonly draining: (socket?: unknown) => boolean;
  /** fedgate's own answer. */
  readonly fail: (res: ProxyResponse, code: ErrorCode, detail: string) => void;
}

export class RequestCarrier implements Carrier {
  readonly upgrade = false;
  readonly hasBody: boolean;
  readonly #req: ProxyRequest;
  readonly #res: ProxyResponse;
  readonly #path: string;
  readonly #headers: string[];
  readonly #hooks: RequestHooks;

  constructor(
    req: ProxyRequest,
    res: ProxyResponse,
    path: string,
    headers: string[],
    hooks: RequestHooks,
  ) {
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
    t.endpoint.pool(this.#hooks.origin(t)).dispatch(
      {
        path: this.#path,
        method: this.#req.method ?? 'GET',
        headers: this.#headers,
        body: this.hasBody ? (this.#req as IncomingMessage) : null,
      },
      new ResponseRelay(t, this.#res, this.hasBody, this.#hooks),
    );
  }

  answer(code: ErrorCode, detail: string): void {
    this.#hooks.fail(this.#res, code, detail);
  }
}

/** undici's handler for one try: relays the answer unless a retry took over. */
class ResponseRelay implements Dispatcher.DispatchHandler {
  readonly #try: Try;
  readonly #res: ProxyResponse;
  readonly #hasBody: boolean;
  readonly #hooks: RequestHooks;

  constructor(t: Try, res: ProxyResponse, hasBody: boolean, hooks: RequestHooks) {
    this.#try = t;
    this.#res = res;
    this.#hasBody = hasBody;
    this.#hooks = hooks;
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#try.started(controller);
  }

  onRequestSent(): void {
    if (this.#hasBody) this.#try.arm();
  }

  onResponseStart(
    _controller: Dispatcher.DispatchController,
    statusCode: number,
    headers: Record<string, string | string[] | undefined>,
    statusMessage?: string,
  ): void {
    if (statusCode < 200) return; // 1xx informational: the final answer follows
    if (this.#try.head(statusCode) !== 'deliver') return;
    const res = this.#res;
    const out = downstreamResponseHeaders(headers);
    const h1 = isHttp1(res);
    if (h1 && this.#hooks.draining(res.socket)) out.connection = 'close';
    if (h1 && statusMessage) res.writeHead(statusCode, statusMessage, out);
    else res.writeHead(statusCode, out);
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.#try.discarding) return;
    const res = this.#res;
    if (!res.write(chunk)) {
      controller.pause();
      res.once('drain', () => controller.resume());
    }
  }

  onResponseEnd(): void {
    this.#try.release();
    if (this.#try.discarding) return;
    this.#try.answered();
    this.#res.end();
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    // Too late to retry: cut the client's response short rather than end it as if whole.
    if (this.#try.error(err) === 'cut') this.#res.destroy(err);
  }
}
