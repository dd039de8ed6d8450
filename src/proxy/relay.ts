// undici's handler for one try: relays the answer to the client with backpressure,
// unless a retry took over. A gRPC answer is held back whole (head, messages) until
// its end, while the call's request is whole and kept, for at most
// http.retries.grpcAnswerHold and REPLAY_LIMIT bytes: a backend that dies before its
// trailers then has its call sent elsewhere, as if it had never answered, since
// nothing of it reached the client. A unary answer is one message and its trailers,
// so it is always held whole; a stream's first messages wait at most the hold.
import type { Dispatcher } from 'undici';
import { FedgateError } from '../errors.ts';
import { modifyRecord } from '../gateway/filters.ts';
import type { HeaderModifier } from '../watch/gateway-records.ts';
import { isHttp1, type ProxyResponse, respondHeadOnly } from './answers.ts';
import { REPLAY_LIMIT } from './body.ts';
import { grpcStatusOf } from './grpc.ts';
import { downstreamResponseHeaders } from './headers.ts';
import { addTrailers, relayableTrailers } from './trailers.ts';
import type { Try } from './try.ts';

/** The client took no response bytes for http.timeouts.responseSendIdle. */
export class ResponseUnread extends FedgateError {
  constructor(ms: number) {
    super('RESPONSE_UNREAD', `the client took no response bytes for ${ms} ms`);
    this.name = 'ResponseUnread';
  }
}

/** What the relay needs of its request's carrier (dispatch.ts). */
export interface RelayCarrier {
  readonly grpc: unknown;
  readonly hasBody: boolean;
  /** The client takes response trailers: HTTP/2, or HTTP/1.1 with `TE: trailers`. */
  readonly takesTrailers: boolean;
  /** http.timeouts.responseSendIdle. */
  readonly sendIdleMs: number;
  /** http.retries.grpcAnswerHold. */
  readonly answerHoldMs: number;
  /** A Gateway API rule's ResponseHeaderModifiers, in order. */
  readonly responseHeaders: readonly HeaderModifier[];
  /** The request's whole body is kept: another try could send it again. */
  canReplay(whole: boolean): boolean;
  /** The backend answered: the kept body can go. */
  answered(): void;
  closesConnection(): boolean;
  sendStalled(err: ResponseUnread): void;
  done(): void;
}

type Fields = Record<string, string | string[] | undefined>;

export class ResponseRelay implements Dispatcher.DispatchHandler {
  readonly #try: Try;
  readonly #res: ProxyResponse;
  readonly #carrier: RelayCarrier;
  #controller: Dispatcher.DispatchController | undefined;
  #sendTimer: NodeJS.Timeout | undefined;
  /** Waiting for the client's buffers to drain. */
  #stalled = false;
  /**
   * A gRPC trailers-only answer to an HTTP/2 client, sent whole at the end as one
   * HEADERS frame (END_STREAM): sent at once, its stream's close would come before the
   * exchange knows it answered, and read as the client going away.
   */
  #headOnly: { status: number; headers: Record<string, string | string[]> } | undefined;
  /** A gRPC head not yet sent (#flush sends it, then the held chunks). */
  #held: (() => void) | undefined;
  readonly #heldChunks: Buffer[] = [];
  #heldBytes = 0;
  #holdTimer: NodeJS.Timeout | undefined;

  constructor(t: Try, res: ProxyResponse, carrier: RelayCarrier) {
    this.#try = t;
    this.#res = res;
    this.#carrier = carrier;
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    this.#try.started(controller);
  }

  onRequestSent(): void {
    // Without a body the per-try timer was armed at dispatch.
    if (this.#carrier.hasBody) this.#try.arm();
  }

  onResponseStart(
    _controller: Dispatcher.DispatchController,
    statusCode: number,
    headers: Fields,
    statusMessage?: string,
  ): void {
    if (statusCode < 200) return; // 1xx informational: the final answer follows
    const carrier = this.#carrier;
    const verdict = this.#try.head(statusCode, carrier.grpc ? headers : undefined);
    if (verdict === 'gone') carrier.answered();
    if (verdict !== 'deliver') return;
    let out = downstreamResponseHeaders(headers);
    for (const mod of carrier.responseHeaders) out = modifyRecord(out, mod);
    if (!isHttp1(this.#res) && carrier.grpc && grpcStatusOf(headers) !== undefined) {
      carrier.answered();
      this.#headOnly = { status: statusCode, headers: out };
      return;
    }
    // A call still sending its request could not be sent again; and its client may
    // wait for this answer before it sends more.
    const holdMs = carrier.answerHoldMs;
    if (carrier.grpc && holdMs > 0 && carrier.canReplay(true)) {
      this.#try.holdHead();
      this.#held = () => this.#sendHead(statusCode, headers, out, statusMessage);
      this.#holdTimer = setTimeout(() => this.#flush(), holdMs);
      return;
    }
    this.#sendHead(statusCode, headers, out, statusMessage);
  }

  /** Sends what is held, if anything: from here the answer has reached the client. */
  #flush(): void {
    const held = this.#held;
    if (!held) return;
    this.#held = undefined;
    if (this.#holdTimer) clearTimeout(this.#holdTimer);
    held();
    const chunks = this.#heldChunks.splice(0);
    this.#heldBytes = 0;
    let more = true;
    for (const chunk of chunks) more = this.#res.write(chunk);
    if (!more) this.#pauseUntilDrained();
  }

  #sendHead(
    statusCode: number,
    headers: Fields,
    out: Record<string, string | string[]>,
    statusMessage: string | undefined,
  ): void {
    // Answered, not retried: what was kept of the body for a replay can go. (A retry
    // has taken it into the next try's body already.)
    this.#carrier.answered();
    this.#try.headSent();
    const res = this.#res;
    const h1 = isHttp1(res);
    if (h1 && this.#carrier.closesConnection()) out.connection = 'close';
    const announced = headers.trailer;
    if (announced !== undefined && this.#carrier.takesTrailers) {
      // Trailers need a chunked answer on HTTP/1.1: the length goes.
      out.trailer = announced;
      if (h1) delete out['content-length'];
    }
    if (h1 && statusMessage) res.writeHead(statusCode, statusMessage, out);
    else res.writeHead(statusCode, out);
  }

  onResponseData(_controller: Dispatcher.DispatchController, chunk: Buffer): void {
    // A trailers-only answer has no body (the gRPC spec): whatever comes is dropped.
    if (this.#try.discarding || this.#headOnly) return;
    if (this.#held) {
      this.#heldChunks.push(chunk);
      this.#heldBytes += chunk.length;
      if (this.#heldBytes > REPLAY_LIMIT) this.#flush();
      return;
    }
    if (!this.#res.write(chunk)) this.#pauseUntilDrained();
  }

  #pauseUntilDrained(): void {
    const controller = this.#controller;
    if (!controller || controller.paused) return;
    controller.pause();
    this.#armSendTimer();
    this.#res.once('drain', () => {
      this.#stalled = false;
      controller.resume();
    });
  }

  /**
   * While the client's buffers are full, a timer of http.timeouts.responseSendIdle
   * (nginx's send_timeout): a client that stops reading must not hold the upstream
   * slot for as long as it likes. One timer per answer, re-armed (refresh, which
   * also wakes a timer that has fired) at each stall; a drain only marks the stall
   * over, so a timer that fires after it does nothing.
   */
  #armSendTimer(): void {
    const ms = this.#carrier.sendIdleMs;
    if (ms <= 0) return;
    this.#stalled = true;
    if (this.#sendTimer) {
      this.#sendTimer.refresh();
      return;
    }
    this.#sendTimer = setTimeout(() => {
      if (this.#stalled) this.#carrier.sendStalled(new ResponseUnread(ms));
    }, ms);
  }

  onResponseEnd(_controller: Dispatcher.DispatchController, trailers?: Fields): void {
    if (this.#sendTimer) clearTimeout(this.#sendTimer);
    this.#try.release();
    if (this.#try.discarding) return;
    this.#flush();
    this.#try.answered(this.#carrier.grpc ? trailers : undefined);
    const res = this.#res;
    const headOnly = this.#headOnly;
    if (headOnly) {
      respondHeadOnly(res, headOnly.status, headOnly.headers);
      this.#carrier.done();
      return;
    }
    // HTTP/1.1 answers sent with a length have no room for trailers.
    if (this.#carrier.takesTrailers && (!isHttp1(res) || chunked(res))) {
      addTrailers(res, relayableTrailers(trailers));
    }
    res.end();
    this.#carrier.done();
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    if (this.#sendTimer) clearTimeout(this.#sendTimer);
    // Held and never sent: the try failed before its answer reached the client.
    if (this.#held) {
      this.#held = undefined;
      if (this.#holdTimer) clearTimeout(this.#holdTimer);
      this.#heldChunks.length = 0;
    }
    // Too late to retry: cut the client's response short rather than end it as if whole.
    if (this.#try.error(err) === 'cut') this.#res.destroy(err);
  }
}

/** Node writes the HTTP/1.1 answer chunked (no Content-Length was given): trailers fit. */
function chunked(res: ProxyResponse): boolean {
  return (res as unknown as { chunkedEncoding?: boolean }).chunkedEncoding === true;
}
