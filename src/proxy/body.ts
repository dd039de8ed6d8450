// A request body as undici reads it, with an inactivity timer (nginx's
// client_body_timeout): the timer runs only while undici waits for the client's
// next bytes, never while undici waits for the upstream to take what it has, so
// a slow upstream is not the client's fault. Read with read() and 'readable', not
// the stream's own async iterator, whose return() would destroy the request (and
// with it the client's connection) when undici stops early.
import type { Readable } from 'node:stream';
import { FedgateError } from '../errors.ts';

/** The client sent no body bytes for http.timeouts.requestBodyIdle. */
export class RequestBodyIdle extends FedgateError {
  constructor(ms: number) {
    super('REQUEST_TIMEOUT', `no request body bytes for ${ms} ms`);
    this.name = 'RequestBodyIdle';
  }
}

const EVENTS = ['readable', 'end', 'error', 'close'] as const;

export class IdleBody implements AsyncIterableIterator<Buffer> {
  readonly #req: Readable;
  readonly #idleMs: number;
  readonly #onIdle: (err: RequestBodyIdle) => void;
  #wake: (() => void) | undefined;
  #timer: NodeJS.Timeout | undefined;
  #idle: RequestBodyIdle | undefined;
  #closed = false;

  /** `idleMs` 0: no timer. */
  constructor(req: Readable, idleMs: number, onIdle: (err: RequestBodyIdle) => void) {
    this.#req = req;
    this.#idleMs = idleMs;
    this.#onIdle = onIdle;
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  async next(): Promise<IteratorResult<Buffer>> {
    const req = this.#req;
    for (;;) {
      if (this.#idle) throw this.#idle;
      if (this.#closed || req.readableEnded) return { value: undefined, done: true };
      if (req.errored) throw req.errored;
      if (req.destroyed) throw new Error('request body aborted');
      const chunk = req.read() as Buffer | null;
      if (chunk !== null) return { value: chunk, done: false };
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
    this.#closed = true;
    this.#wake?.();
  }

  #waitForClient(): Promise<void> {
    const req = this.#req;
    return new Promise((resolve) => {
      const wake = () => {
        this.#wake = undefined;
        if (this.#timer) clearTimeout(this.#timer);
        this.#timer = undefined;
        for (const e of EVENTS) req.off(e, wake);
        resolve();
      };
      this.#wake = wake;
      for (const e of EVENTS) req.on(e, wake);
      if (this.#idleMs > 0) {
        this.#timer = setTimeout(() => {
          const err = new RequestBodyIdle(this.#idleMs);
          this.#idle = err;
          wake();
          this.#onIdle(err);
        }, this.#idleMs);
      }
    });
  }
}
