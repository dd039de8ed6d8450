// HTTP/1.1 to a backend for a request body that may end with trailers (it
// announces them with a `Trailer` header, as RFC 9110 §6.6.2 asks a sender to, or
// has no declared length, so its hop is chunked anyway): undici 8 cannot send
// request trailers (it ends a chunked body with `0\r\n\r\n`), node:http's client
// can (`addTrailers` on a chunked request). It drives the same handler calls undici
// makes, as the HTTP/2 client does, so the relay and the attempt loop are
// unchanged. Bodies with a length, and requests without a body, stay on undici.
import { Agent, type ClientRequest, type IncomingMessage, request } from 'node:http';
import { Agent as TlsAgent, request as tlsRequest } from 'node:https';
import type { ConnectionOptions } from 'node:tls';
import type { Dispatcher } from 'undici';
import type { Upstream, UpstreamRequest } from './h2-upstream.ts';

export interface H1TrailerOptions {
  /** http://host:port */
  readonly origin: string;
  /** The backend TLS profile's options (servername pinned), or undefined: in clear. */
  readonly tls?: ConnectionOptions | undefined;
  readonly maxSockets: number;
  readonly idleTimeoutMs: number;
  readonly bodyTimeoutMs: number;
}

/** Fields HTTP/1.1 forbids in trailers, or that frame the message (RFC 9110 §6.5.1). */
const NOT_IN_TRAILERS = new Set([
  'content-length',
  'transfer-encoding',
  'host',
  'connection',
  'te',
  'trailer',
  'content-type',
]);

export class H1TrailerUpstream implements Upstream {
  readonly #opts: H1TrailerOptions;
  readonly #agent: Agent;
  readonly #url: URL;
  #running = 0;

  constructor(opts: H1TrailerOptions) {
    this.#opts = opts;
    this.#url = new URL(opts.origin);
    const agentOpts = {
      keepAlive: true,
      maxSockets: opts.maxSockets,
      timeout: opts.idleTimeoutMs,
    };
    this.#agent = opts.tls ? new TlsAgent({ ...agentOpts, ...opts.tls }) : new Agent(agentOpts);
  }

  get stats() {
    return { running: this.#running, pending: 0 };
  }

  dispatch(opts: UpstreamRequest, handler: Dispatcher.DispatchHandler): boolean {
    const headers: Record<string, string | string[]> = {};
    const flat = Array.isArray(opts.headers) ? opts.headers : [];
    for (let i = 0; i + 1 < flat.length; i += 2) {
      const name = String(flat[i]).toLowerCase();
      // Chunked framing carries the trailers: a length would leave them no room.
      if (name === 'content-length' || name === 'transfer-encoding') continue;
      const value = String(flat[i + 1]);
      const had = headers[name];
      headers[name] = had === undefined ? value : [...(Array.isArray(had) ? had : [had]), value];
    }
    const send = this.#opts.tls ? tlsRequest : request;
    const u = this.#url;
    const req = send({
      host: u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname,
      port: Number(u.port),
      method: opts.method,
      path: opts.path,
      headers,
      agent: this.#agent,
    });
    this.#running++;
    new H1TrailerExchange(req, opts, handler, this.#opts.bodyTimeoutMs, () => this.#running--);
    return true;
  }

  async close(): Promise<void> {
    this.#agent.destroy();
  }

  async destroy(): Promise<void> {
    this.#agent.destroy();
  }
}

/** One request: its controller, its body up with backpressure, the answer down. */
class H1TrailerExchange implements Dispatcher.DispatchController {
  readonly #req: ClientRequest;
  readonly #handler: Dispatcher.DispatchHandler;
  #res: IncomingMessage | undefined;
  #done = false;
  #paused = false;
  #reason: Error | null = null;
  readonly #ended: () => void;

  constructor(
    req: ClientRequest,
    opts: UpstreamRequest,
    handler: Dispatcher.DispatchHandler,
    bodyTimeoutMs: number,
    ended: () => void,
  ) {
    this.#req = req;
    this.#handler = handler;
    this.#ended = ended;
    req.on('error', (err) => this.#fail(err));
    req.on('response', (res) => {
      this.#res = res;
      if (this.#paused) res.pause();
      if (bodyTimeoutMs > 0) {
        res.setTimeout(bodyTimeoutMs, () =>
          res.destroy(new Error(`no response body bytes for ${bodyTimeoutMs} ms`)),
        );
      }
      res.on('error', (err) => this.#fail(err));
      res.on('aborted', () => this.#fail(new Error('the backend closed the answer short')));
      handler.onResponseStart?.(this, res.statusCode ?? 502, res.headers, res.statusMessage);
      res.on('data', (chunk: Buffer) => {
        if (!this.#done) handler.onResponseData?.(this, chunk);
      });
      res.on('end', () => {
        if (this.#done) return;
        if (!res.complete) {
          this.#fail(new Error('the backend closed the answer short'));
          return;
        }
        this.#finish();
        handler.onResponseEnd?.(this, res.trailers);
      });
    });
    handler.onRequestStart?.(this, {});
    void this.#sendBody(opts);
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

  abort(reason: Error): void {
    if (this.#done) return;
    this.#reason = reason;
    this.#req.destroy(reason);
  }

  pause(): void {
    this.#paused = true;
    this.#res?.pause();
  }

  resume(): void {
    this.#paused = false;
    this.#res?.resume();
  }

  async #sendBody(opts: UpstreamRequest): Promise<void> {
    const req = this.#req;
    try {
      const body = opts.body as AsyncIterable<Buffer> | string | Uint8Array | null | undefined;
      if (typeof body === 'string' || body instanceof Uint8Array) req.write(body);
      else if (body) {
        for await (const chunk of body) {
          if (this.#done || req.destroyed) return;
          if (!req.write(chunk)) {
            await new Promise<void>((resolve) => {
              req.once('drain', resolve);
              req.once('close', resolve);
            });
          }
        }
      }
      if (this.#done || req.destroyed) return;
      const trailers = sendableTrailers(opts.trailers?.());
      if (Object.keys(trailers).length > 0) req.addTrailers(trailers);
      req.end();
      this.#handler.onRequestSent?.();
    } catch (e) {
      // The client's body failed (it left, or went silent): the backend must not wait for it.
      req.destroy(e as Error);
      this.#fail(e as Error);
    }
  }

  #finish(): void {
    if (this.#done) return;
    this.#done = true;
    this.#ended();
  }

  #fail(err: Error): void {
    if (this.#done) return;
    this.#finish();
    queueMicrotask(() => this.#handler.onResponseError?.(this, err));
  }
}

/** The client's trailers fit for an HTTP/1.1 request: none of the framing fields. */
function sendableTrailers(
  t: Record<string, string | string[] | undefined> | undefined,
): Record<string, string> {
  const out: Record<string, string> = {};
  if (!t) return out;
  for (const [name, value] of Object.entries(t)) {
    const lower = name.toLowerCase();
    if (value === undefined || lower.charCodeAt(0) === 58 || NOT_IN_TRAILERS.has(lower)) continue;
    out[lower] = Array.isArray(value) ? value.join(', ') : value;
  }
  return out;
}
