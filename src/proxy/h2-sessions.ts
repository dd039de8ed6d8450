// HTTP/2 client connections: the rapid-reset guard. A client that opens streams and
// resets them at once makes fedgate route and dispatch each one for nothing; with
// cancellation freeing every slot at once (attempts.ts) that costs no upstream slot,
// but it still costs work, so a connection that does it a lot is closed, by Envoy's
// rule: a stream the client resets before its answer is whole and within
// PREMATURE_RESET_SECONDS of opening is premature; a connection with half of
// `prematureResetStreams` premature resets, or, past that many streams, with half of
// its streams premature, gets GOAWAY (ENHANCE_YOUR_CALM) and is closed.
//
// Node's own guard stays behind this one: nghttp2 (1.70 in Node 24) rate-limits
// incoming RST_STREAM frames (1000 at once, then 33 a second) and ends the session
// past that, without a word to the application.
import { constants, type ServerHttp2Session } from 'node:http2';
import type { ProxyObserver } from './observer.ts';

/** A reset sooner than this after the stream opened is premature (Envoy's default). */
export const PREMATURE_RESET_SECONDS = 1;

/** What a session's guard reads as it goes: a reload changes it in place. */
export interface ResetLimit {
  /** 0: never close a connection for its resets. */
  prematureResetStreams: number;
}

class ResetGuard {
  readonly #session: ServerHttp2Session;
  readonly #limit: ResetLimit;
  readonly #observer: () => ProxyObserver | undefined;
  #closed = 0;
  #premature = 0;
  #shut = false;

  constructor(
    session: ServerHttp2Session,
    limit: ResetLimit,
    observer: () => ProxyObserver | undefined,
  ) {
    this.#session = session;
    this.#limit = limit;
    this.#observer = observer;
  }

  readonly streamClosed = (): void => {
    this.#closed++;
    this.#check();
  };

  reset(ageSeconds: number): void {
    // Streams closed by their session's end (the client's, a drain's, ours) were not reset.
    if (this.#session.destroyed) return;
    this.#observer()?.http2StreamReset?.();
    if (ageSeconds >= PREMATURE_RESET_SECONDS) return;
    this.#premature++;
    this.#check();
  }

  #check(): void {
    const limit = this.#limit.prematureResetStreams;
    if (limit <= 0 || this.#shut) return;
    // Envoy's ConnectionManagerImpl::maybeDrainDueToPrematureResets.
    if (this.#premature * 2 < Math.max(limit, this.#closed)) return;
    this.#shut = true;
    this.#observer()?.connectionClosed?.('premature_resets');
    // GOAWAY with the code, and the session destroyed once it is written (Node's
    // destroy(undefined, code) sends NO_ERROR, checked on Node 24.21). The streams
    // still open close with it, which cancels their requests.
    const session = this.#session;
    session.goaway(constants.NGHTTP2_ENHANCE_YOUR_CALM);
    setImmediate(() => session.destroy());
  }
}

const guards = new WeakMap<ServerHttp2Session, ResetGuard>();

/** Watches a new session's streams for premature resets. */
export function guardSession(
  session: ServerHttp2Session,
  limit: ResetLimit,
  observer: () => ProxyObserver | undefined,
): void {
  const guard = new ResetGuard(session, limit, observer);
  guards.set(session, guard);
  session.on('stream', (stream) => stream.once('close', guard.streamClosed));
}

/**
 * The client reset a stream of `session` before its answer was whole, `ageSeconds`
 * after it opened (the proxy's exchange tells: only it knows whether it answered).
 */
export function noteClientReset(session: ServerHttp2Session | undefined, ageSeconds: number): void {
  if (session) guards.get(session)?.reset(ageSeconds);
}
