// Restart backoff for watches, as client-go's reflector: from 0.8 s, doubling,
// capped at 30 s, starting over after 2 minutes without an error. Pure: the
// clock and the random source are injected, so tests replay exactly.
import {
  BACKOFF_FACTOR,
  BACKOFF_INITIAL_MS,
  BACKOFF_JITTER,
  BACKOFF_MAX_MS,
  BACKOFF_RESET_AFTER_MS,
} from '../config/defaults.ts';

export interface BackoffOptions {
  initialMs?: number;
  factor?: number;
  maxMs?: number;
  resetAfterMs?: number;
  /** Each wait is cut by up to this fraction at random: never above the cap, never in step. */
  jitter?: number;
}

export class Backoff {
  readonly #initial: number;
  readonly #factor: number;
  readonly #max: number;
  readonly #resetAfter: number;
  readonly #jitter: number;
  readonly #now: () => number;
  readonly #random: () => number;
  #attempt = 0;
  #lastFailure: number | undefined;

  constructor(opts: BackoffOptions, now: () => number, random: () => number) {
    this.#initial = opts.initialMs ?? BACKOFF_INITIAL_MS;
    this.#factor = opts.factor ?? BACKOFF_FACTOR;
    this.#max = opts.maxMs ?? BACKOFF_MAX_MS;
    this.#resetAfter = opts.resetAfterMs ?? BACKOFF_RESET_AFTER_MS;
    this.#jitter = opts.jitter ?? BACKOFF_JITTER;
    this.#now = now;
    this.#random = random;
  }

  /** Records a failure and returns how long to wait before the next try. */
  next(): number {
    const now = this.#now();
    if (this.#lastFailure !== undefined && now - this.#lastFailure >= this.#resetAfter) {
      this.#attempt = 0;
    }
    this.#lastFailure = now;
    const base = Math.min(this.#max, this.#initial * this.#factor ** this.#attempt);
    if (base < this.#max) this.#attempt++;
    return base * (1 - this.#jitter * this.#random());
  }
}
