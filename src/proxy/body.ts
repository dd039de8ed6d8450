// A request body as undici reads it, with an inactivity timer (nginx's
// client_body_timeout): the timer runs only while undici waits for the client's
// next bytes, never while undici waits for the upstream to take what it has, so
// a slow upstream is not the client's fault. Read by 'data' events (the parser's
// own buffers, no copy; the request paused while a chunk waits for undici, so
// backpressure holds), not the stream's own async iterator, whose return() would
// destroy the request (and with it the client's connection) when undici stops early.
import type { Readable } from 'node:stream';
import { FedgateError } from '../errors.ts';

/** The client sent no body bytes for http.timeouts.requestBodyIdle. */
export class RequestBodyIdle extends FedgateError {
  constructor(ms: number) {
    super('REQUEST_TIMEOUT', `no request body bytes for ${ms} ms`);
    this.name = 'RequestBodyIdle';
  }
}

const EVENTS = ['end', 'error', 'close'] as const;

/**
 * Body bytes kept for a try's replay: a stream the backend refused (REFUSED_STREAM,
 * or past its GOAWAY) was never processed, so its request may go to another
 * endpoint with what was already read, when that is no more than this.
 */
export const REPLAY_LIMIT = 64 * 1024;

export class IdleBody implements AsyncIterableIterator<Buffer> {
  readonly #req: Readable;
  readonly #idleMs: number;
  readonly #onIdle: (err: RequestBodyIdle) => void;
  /** Resolves the read waiting for the client; set only while one waits. */
  #wake: (() => void) | undefined;
  readonly #onEvent = () => {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  };
  /** One timer for the body's life, re-armed (refresh) at each wait: no timer per chunk. */
  #timer: NodeJS.Timeout | undefined;
  #idle: RequestBodyIdle | undefined;
  #listening = false;
  #closed = false;
  /** Chunks the client sent that undici has not taken yet: the request pauses while any wait. */
  readonly #queue: Buffer[] = [];
  /** Read before this body (a refused try's), given again first. */
  readonly #replay: Buffer[];
  /** What this body gave, while kept and within REPLAY_LIMIT; undefined otherwise. */
  #given: Buffer[] | undefined;
  #givenBytes = 0;
  /** Told each chunk the client sends (a RequestMirror's copy); references, no copy. */
  readonly #tap: ((chunk: Buffer) => void) | undefined;
  readonly #onData = (chunk: Buffer) => {
    this.#tap?.(chunk);
    this.#queue.push(chunk);
    if (!this.#wake) this.#req.pause();
    this.#onEvent();
  };

  /**
   * `idleMs` 0: no timer. `replay`: a refused try's bytes, given before the client's
   * next. `keep`: keep what is given (within REPLAY_LIMIT) for another try; only
   * HTTP/2 streams are refused unprocessed. `tap`: told each chunk read from the client.
   */
  constructor(
    req: Readable,
    idleMs: number,
    onIdle: (err: RequestBodyIdle) => void,
    replay: Buffer[] = [],
    keep = false,
    tap?: (chunk: Buffer) => void,
  ) {
    this.#tap = tap;
    this.#req = req;
    this.#idleMs = idleMs;
    this.#onIdle = onIdle;
    this.#replay = replay;
    if (keep) this.#given = [];
  }

  /** The backend answered: the try was processed, nothing of it will be sent again. */
  forget(): void {
    this.#given = undefined;
  }

  /**
   * Everything read from the client through this body (given, or waiting to be), when
   * within REPLAY_LIMIT: what another try must send first. undefined: too much to keep.
   */
  replayable(): Buffer[] | undefined {
    return this.#given && [...this.#given, ...this.#replay, ...this.#queue];
  }

  #give(chunk: Buffer): IteratorResult<Buffer> {
    if (this.#given) {
      this.#givenBytes += chunk.length;
      if (this.#givenBytes <= REPLAY_LIMIT) this.#given.push(chunk);
      else this.#given = undefined;
    }
    return { value: chunk, done: false };
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  async next(): Promise<IteratorResult<Buffer>> {
    const req = this.#req;
    for (;;) {
      if (this.#idle) throw this.#idle;
      const again = this.#replay.shift();
      if (again !== undefined) return this.#give(again);
      const chunk = this.#queue.shift();
      if (chunk !== undefined) {
        if (this.#queue.length === 0 && !this.#closed) req.resume();
        return this.#give(chunk);
      }
      if (this.#closed || req.readableEnded) return { value: undefined, done: true };
      if (req.errored) throw req.errored;
      if (req.destroyed) throw new Error('request body aborted');
      await this.#waitForClient();
    }
  }

  /** undici stopped reading: leave the request as it is (never destroy it). */
  async return(): Promise<IteratorResult<Buffer>> {
    this.close();
    return { value: undefined, done: true };
  }

  /** No more reading through this body: its timer and listeners go; a waiting next() ends. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    if (this.#listening) {
      for (const e of EVENTS) this.#req.off(e, this.#onEvent);
      this.#req.off('data', this.#onData);
    }
    this.#onEvent();
  }

  #waitForClient(): Promise<void> {
    if (!this.#listening) {
      this.#listening = true;
      for (const e of EVENTS) this.#req.on(e, this.#onEvent);
      this.#req.on('data', this.#onData);
      // A body before this one (a refused try's) may have left the request paused.
      this.#req.resume();
    }
    if (this.#idleMs > 0) {
      if (this.#timer) this.#timer.refresh();
      else this.#timer = setTimeout(() => this.#expired(), this.#idleMs);
    }
    return new Promise((resolve) => {
      this.#wake = resolve;
    });
  }

  /** idleMs after the latest wait began: the client is still silent only if that wait goes on. */
  #expired(): void {
    if (!this.#wake || this.#closed) return;
    this.#idle = new RequestBodyIdle(this.#idleMs);
    this.#onEvent();
    this.#onIdle(this.#idle);
  }
}
