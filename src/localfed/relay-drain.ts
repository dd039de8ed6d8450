// The relay's side of a graceful kube-apiserver restart (RealMember.compact): requests
// that arrive while it drains, and while kube-apiserver is down, are held rather than
// refused, and forwarded once kube-apiserver is ready again, as a front door in front of
// a restarting API server would. A request held past its limit gets 503.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ApiError } from './status.ts';

/** How long a request is held before it is answered 503. */
export const DRAIN_HOLD_LIMIT_MS = 60_000;

interface Held {
  req: IncomingMessage;
  timer: NodeJS.Timeout;
}

export class HeldRequests {
  readonly #limitMs: number;
  readonly #held = new Map<ServerResponse, Held>();

  constructor(limitMs = DRAIN_HOLD_LIMIT_MS) {
    this.#limitMs = limitMs;
  }

  get size(): number {
    return this.#held.size;
  }

  /** Holds `req` (its body stays unread, buffered) until release() or the limit. */
  hold(req: IncomingMessage, res: ServerResponse): void {
    const timer = setTimeout(() => {
      this.#held.delete(res);
      unavailable(res, this.#limitMs);
    }, this.#limitMs);
    this.#held.set(res, { req, timer });
    // A client that gives up (fedgate's watchdog) is forgotten.
    res.on('close', () => {
      clearTimeout(timer);
      this.#held.delete(res);
    });
  }

  /** Hands every held request to `forward`, in arrival order. */
  release(forward: (req: IncomingMessage, res: ServerResponse) => void): void {
    const held = [...this.#held];
    this.#held.clear();
    for (const [res, h] of held) {
      clearTimeout(h.timer);
      forward(h.req, res);
    }
  }

  /** Cuts every held connection (the relay stops). */
  cut(): void {
    for (const [res, h] of this.#held) {
      clearTimeout(h.timer);
      res.socket?.destroy();
    }
    this.#held.clear();
  }
}

/** A `Status` as kube-apiserver's ServiceUnavailable errors are shaped. */
function unavailable(res: ServerResponse, heldMs: number): void {
  const status = new ApiError(
    503,
    'ServiceUnavailable',
    `the API server did not become ready within ${heldMs / 1000} s; try again later`,
  ).toStatus();
  const body = JSON.stringify(status);
  res.writeHead(503, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
  });
  res.end(body);
}
