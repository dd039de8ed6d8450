// Upgrade requests (WebSocket and any other protocol switch over HTTP/1.1), routed
// as other requests are and sent through the same attempt loop (attempts.ts), with
// undici's upgrade on the endpoint's own pool: the tunnel counts as a request in
// flight to that endpoint while it is open, and an upstream that declines the
// upgrade has its answer passed back as it is, unless the loop retries it. A tunnel
// that carries no byte either way for its idle timeout (http.timeouts.tunnelIdle, or
// the service's routing.services entry) is closed, both sides, freeing its slot.
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { ErrorCode } from '../errors.ts';
import { type ProxyRequest, rawError, writeRawResponse } from './answers.ts';
import type { Carrier } from './carrier.ts';
import { downstreamResponseHeaders } from './headers.ts';
import { withTraceHeaders } from './spans.ts';
import type { Try } from './try.ts';
import type { UpstreamRoute } from './upstreams.ts';

const REFUSAL_BODY_LIMIT = 65_536;
/** The idle timeout is read again at least this often, so a reload that changes it reaches open tunnels within a minute. */
const IDLE_RECHECK_MS = 60_000;

/** What an upgrade's carrier needs from the forwarder. */
export interface UpgradeHooks {
  /** Where the try goes; an upgrade always speaks HTTP/1.1 there (over TLS when the wire says). */
  readonly upstream: (t: Try) => UpstreamRoute;
  /** The tunnel idle timeout for the try's service, ms (0: never); read at each check. */
  readonly tunnelIdle: (t: Try) => number;
  /** A tunnel was closed for idling. */
  readonly idleClosed: (t: Try) => void;
}

export class UpgradeCarrier implements Carrier {
  readonly upgrade = true;
  readonly hasBody = false;
  readonly #req: ProxyRequest;
  readonly #socket: Duplex;
  readonly #head: Buffer;
  readonly #path: string;
  readonly #headers: string[];
  readonly #hooks: UpgradeHooks;
  #tunnelled = false;

  constructor(
    req: ProxyRequest,
    socket: Duplex,
    head: Buffer,
    path: string,
    headers: string[],
    hooks: UpgradeHooks,
  ) {
    this.#req = req;
    this.#socket = socket;
    this.#head = head;
    this.#path = path;
    this.#headers = headers;
    this.#hooks = hooks;
  }

  /** Calls `cancel` when the client goes away before the tunnel is up. */
  onClientGone(cancel: () => void): void {
    this.#socket.once('close', () => {
      if (!this.#tunnelled) cancel();
    });
  }

  bodyStarted(): boolean {
    return false;
  }

  send(t: Try): void {
    const relay = new UpgradeRelay(t, this.#socket, this.#head, this.#hooks, () => {
      this.#tunnelled = true;
    });
    t.endpoint.http1(this.#hooks.upstream(t)).dispatch(
      {
        path: this.#path,
        method: this.#req.method ?? 'GET',
        headers: t.traceHeaders ? withTraceHeaders(this.#headers, t.traceHeaders) : this.#headers,
        upgrade: String(this.#req.headers.upgrade ?? 'websocket'),
        body: null,
      },
      relay,
    );
  }

  answer(code: ErrorCode, detail: string): void {
    rawError(this.#socket, code, detail);
  }
}

/** undici's handler for one upgrade try: the tunnel, or the upstream's refusal. */
class UpgradeRelay implements Dispatcher.DispatchHandler {
  readonly #try: Try;
  readonly #client: Duplex;
  readonly #head: Buffer;
  readonly #hooks: UpgradeHooks;
  readonly #tunnelled: () => void;
  #refusal:
    | { status: number; headers: Record<string, string | string[]>; chunks: Buffer[]; size: number }
    | undefined;

  constructor(t: Try, client: Duplex, head: Buffer, hooks: UpgradeHooks, tunnelled: () => void) {
    this.#try = t;
    this.#client = client;
    this.#head = head;
    this.#hooks = hooks;
    this.#tunnelled = tunnelled;
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#try.started(controller);
  }

  onRequestUpgrade(
    controller: Dispatcher.DispatchController,
    statusCode: number,
    _headers: Record<string, string | string[] | undefined>,
    upstream: Duplex,
  ): void {
    const client = this.#client;
    if (this.#try.head(statusCode) !== 'deliver' || client.destroyed) {
      upstream.destroy();
      this.#try.release();
      return;
    }
    this.#tunnelled();
    // The upstream's own header lines, as sent: the handshake's accept key must pass unchanged.
    const raw = (controller.rawHeaders ?? []) as (Buffer | string)[];
    let head = `HTTP/1.1 ${statusCode} ${STATUS_CODES[statusCode] ?? ''}\r\n`;
    for (let i = 0; i + 1 < raw.length; i += 2) head += `${raw[i]}: ${raw[i + 1]}\r\n`;
    client.write(`${head}\r\n`);
    if (this.#head.length > 0) upstream.write(this.#head);
    // Counted as answered at the switch; the endpoint's slot is held until the tunnel closes.
    this.#try.answered();
    const t = this.#try;
    const idle = new IdleWatch(
      () => this.#hooks.tunnelIdle(t),
      () => {
        this.#hooks.idleClosed(t);
        close();
      },
    );
    const close = () => {
      idle.stop();
      client.destroy();
      upstream.destroy();
      t.release();
    };
    upstream.on('error', close).on('close', close);
    client.on('error', close).on('close', close);
    upstream.pipe(client);
    client.pipe(upstream);
    upstream.on('data', idle.touch);
    client.on('data', idle.touch);
  }

  onResponseStart(
    _controller: Dispatcher.DispatchController,
    statusCode: number,
    headers: Record<string, string | string[] | undefined>,
  ): void {
    if (statusCode < 200) return;
    if (this.#try.head(statusCode) !== 'deliver') return;
    // Declined: its answer is passed on once whole, then the connection closes.
    const out = downstreamResponseHeaders(headers);
    delete out['content-length'];
    this.#refusal = { status: statusCode, headers: out, chunks: [], size: 0 };
  }

  onResponseData(_controller: Dispatcher.DispatchController, chunk: Buffer): void {
    const r = this.#refusal;
    // A refusal's body is short; past 64 KiB it is cut.
    if (r && r.size < REFUSAL_BODY_LIMIT) r.chunks.push(chunk);
    if (r) r.size += chunk.length;
  }

  onResponseEnd(): void {
    this.#try.release();
    const r = this.#refusal;
    if (!r) return;
    this.#try.answered();
    const body = Buffer.concat(r.chunks).subarray(0, REFUSAL_BODY_LIMIT);
    writeRawResponse(this.#client, r.status, r.headers, body);
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    if (this.#try.error(err) === 'cut') this.#client.destroy();
  }
}

/**
 * A tunnel's idle timer: one Node timer, not reset per chunk; a chunk only notes the
 * time, and the timer, when it fires early, waits out the rest. The limit is read at
 * each check, at least once a minute, so a reload reaches tunnels already open.
 */
class IdleWatch {
  readonly #limit: () => number;
  readonly #expired: () => void;
  #last = performance.now();
  #timer: NodeJS.Timeout | undefined;

  constructor(limit: () => number, expired: () => void) {
    this.#limit = limit;
    this.#expired = expired;
    this.#arm(limit());
  }

  readonly touch = (): void => {
    this.#last = performance.now();
  };

  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** Checks again in `ms`, or sooner: within IDLE_RECHECK_MS whatever the timeout (0: off). */
  #arm(ms: number): void {
    const wait = ms > 0 ? Math.min(ms, IDLE_RECHECK_MS) : IDLE_RECHECK_MS;
    this.#timer = setTimeout(this.#check, Math.max(1, Math.ceil(wait)));
    this.#timer.unref();
  }

  readonly #check = (): void => {
    if (this.#timer === undefined) return;
    const limit = this.#limit();
    const quiet = performance.now() - this.#last;
    if (limit > 0 && quiet >= limit) this.#expired();
    else this.#arm(limit > 0 ? limit - quiet : 0);
  };
}
