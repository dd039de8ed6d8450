// One try of a proxied request or upgrade to one endpoint (attempts.ts runs the
// loop of them): the endpoint slot it holds, its per-try timer, its place in the
// retry budget, and what the carrier's undici handler tells it, passed on to its
// exchange and to outlier detection.
import type { Dispatcher } from 'undici';
import type { FederatedService, Snapshot } from '../catalog/model.ts';
import { GRPC_STATUS } from '../errors.ts';
import type { Outcome } from '../health/outlier.ts';
import { type ExhaustionSink, isDescriptorExhaustion } from '../observe/exhaustion.ts';
import type { Router } from '../routing/router.ts';
import type { Target } from '../routing/types.ts';
import type { ClientPlace, ClientShares } from './clients.ts';
import { classify, PerTryTimeout, type RetryReason, tlsDetail, tlsFailure } from './failures.ts';
import { type GrpcCall, grpcStatusOf, grpcStatusOfHead } from './grpc.ts';
import type { ProxyObserver, RequestOutcome } from './observer.ts';
import type { ServiceLoad } from './picks.ts';
import type { RetrySettings } from './route.ts';
import type { ProxyTracing } from './spans.ts';
import { clearTryTimer, type Expiring, setTryTimer, type TryTimer } from './try-timers.ts';
import type { UpstreamEndpoint, Upstreams } from './upstreams.ts';

/** What the loop reads as it goes; a reload swaps it between one read and the next. */
export interface LoopDeps {
  readonly catalog: { current(): Snapshot };
  readonly router: Pick<Router, 'plan'>;
  readonly health: { report(service: string, id: string, outcome: Outcome): void };
  readonly upstreams: Upstreams;
  readonly clients: ClientShares;
  readonly retries: RetrySettings;
  readonly observer?: ProxyObserver | undefined;
  readonly exhaustion?: ExhaustionSink | undefined;
  /** Spans and trace context for each request (spans.ts); absent: tracing is off. */
  readonly tracing?: ProxyTracing | undefined;
}

/** What a try needs of the request it is a try of (attempts.ts's Exchange). */
export interface TryOwner {
  readonly service: FederatedService;
  /** The service port a Gateway API backendRef names; absent: the proxy's choice (backend-protocol.ts). */
  readonly servicePort?: number | undefined;
  /** Its place in its client's share (clients.ts): each try holds it too, until it lets go of its slot. */
  readonly place: ClientPlace | undefined;
  readonly clientGone: boolean;
  /** A gRPC call: its status decides retries and outlier outcomes, not the HTTP 200. */
  readonly grpc: GrpcCall | undefined;
  /**
   * The request ended for its client's reason (its slowness, its gRPC deadline): a
   * try's failure is none of the endpoint's.
   */
  readonly endedByClient: boolean;
  /**
   * A try failed before anything reached the client: retried (true), or answered.
   * `detail`: what failed, when the kind alone does not say (TLS).
   */
  failed(failure: RetryReason, detail?: string): boolean;
  /** No socket for the try: out of descriptors. */
  exhausted(err: Error): void;
  /** undici refused the request as it is, before sending it. */
  refused(err: Error): void;
  /** The request is over for the budget. */
  finish(): void;
  observe(
    target: Target | undefined,
    status: number,
    outcome: RequestOutcome,
    answered?: boolean,
    grpcStatus?: number,
  ): void;
}

type Fields = Record<string, string | string[] | undefined>;

const RETRY_STATUSES = new Set([502, 503, 504]);
const GRPC_UNAVAILABLE_ONLY: ReadonlySet<number> = new Set([GRPC_STATUS.UNAVAILABLE]);

/**
 * One try to one endpoint: holds its slot on the endpoint, its per-try timer and,
 * for a budgeted retry, its place in the service's retries in flight. The carrier's
 * undici handler tells it what happened.
 */
export class Try implements Expiring {
  readonly #ex: TryOwner;
  readonly #deps: LoopDeps;
  readonly target: Target;
  readonly endpoint: UpstreamEndpoint;
  /** Set for a retry the budget counts: released with the try. */
  readonly #retryLoad: ServiceLoad | undefined;
  #controller: Pick<Dispatcher.DispatchController, 'abort'> | undefined;
  #pendingAbort: Error | undefined;
  #timer: TryTimer | undefined;
  /** The per-try timeout the timer was armed with, for its error. */
  #timeoutMs = 0;
  /** The answer is being thrown away: a retry took over. */
  #discard = false;
  #responded = false;
  #status = 0;
  /** A gRPC call's status, once known: from a trailers-only head, or the trailers. */
  #grpcStatus: number | undefined;
  /** A gRPC answer whose status comes in its trailers: outlier detection hears of it then. */
  #reportAtEnd = false;
  #released = false;
  /** dispatch() has returned: an error before that and before the start was thrown there. */
  #dispatched = false;
  /** traceparent/tracestate (name, value pairs) this try's request carries; absent: not traced. */
  traceHeaders: string[] | undefined;

  constructor(ex: TryOwner, deps: LoopDeps, target: Target, retryLoad: ServiceLoad | undefined) {
    this.#ex = ex;
    this.#deps = deps;
    this.target = target;
    this.endpoint = deps.upstreams.endpoint(target.id);
    deps.upstreams.acquire(this.endpoint, ex.service.key);
    ex.place?.hold();
    this.#retryLoad = retryLoad;
    if (retryLoad) retryLoad.retries++;
  }

  get service(): FederatedService {
    return this.#ex.service;
  }

  get servicePort(): number | undefined {
    return this.#ex.servicePort;
  }

  /** The status relayed to the client; 0 until a response head was delivered. */
  get status(): number {
    return this.#status;
  }

  /** The answer is thrown away (a retry took over): relay nothing of it. */
  get discarding(): boolean {
    return this.#discard;
  }

  /** Starts the per-try timer: at dispatch without a body, once the body is sent with one. */
  arm(): void {
    const ms = this.#deps.retries.perTryTimeout;
    if (ms > 0 && !this.#responded && !this.#released && this.#timer === undefined) {
      this.#timeoutMs = ms;
      this.#timer = setTryTimer(ms, this);
    }
  }

  /** The per-try timer ran out before the response head came. */
  expired(): void {
    this.abort(new PerTryTimeout(this.#timeoutMs));
  }

  abort(reason: Error): void {
    if (this.#controller) this.#controller.abort(reason);
    else this.#pendingAbort = reason;
  }

  dispatched(): void {
    this.#dispatched = true;
  }

  /** undici started the request: what aborts it from now on. */
  started(controller: Pick<Dispatcher.DispatchController, 'abort'>): void {
    this.#controller = controller;
    if (this.#pendingAbort) controller.abort(this.#pendingAbort);
    else if (this.#ex.clientGone) controller.abort(new Error('client went away'));
  }

  /**
   * The upstream's final response head (or 101), with its fields for a gRPC call.
   * 'retry': another try took over, discard this answer; 'gone': the client left,
   * nothing to relay; 'deliver'.
   */
  head(status: number, headers?: Fields): 'deliver' | 'retry' | 'gone' {
    if (this.#timer) clearTryTimer(this.#timer);
    const grpc = this.#ex.grpc !== undefined;
    // A gRPC head without grpc-status has it in its trailers: judged at the end.
    const grpcStatus = grpc ? grpcStatusOfHead(status, headers) : undefined;
    if (grpc && grpcStatus === undefined) this.#reportAtEnd = true;
    else this.#report({ origin: 'upstream', status, grpcStatus });
    if (this.#ex.clientGone) {
      this.abort(new Error('client went away'));
      return 'gone';
    }
    if (this.#retries(status, grpcStatus)) {
      this.#discard = true;
      return 'retry';
    }
    this.#responded = true;
    this.#status = status;
    this.#grpcStatus = grpcStatus;
    return 'deliver';
  }

  /**
   * A gRPC answer is held back (relay.ts): nothing has reached the client yet, so a
   * failure before it is sent (a backend killed before its trailers) is retried as
   * if no answer had come.
   */
  holdHead(): void {
    this.#responded = false;
  }

  /** The held answer goes to the client now: from here a failure cuts it. */
  headSent(): void {
    if (!this.#released) this.#responded = true;
  }

  /**
   * A gRPC call is retried by its status (a trailers-only answer: nothing was
   * streamed), never by its HTTP status; other requests by a 502, 503 or 504.
   */
  #retries(status: number, grpcStatus: number | undefined): boolean {
    if (this.#ex.grpc === undefined) {
      const on = this.#deps.retries.retryOn ?? RETRY_STATUSES;
      return on.has(status) && this.#ex.failed('status');
    }
    if (grpcStatus === undefined) return false;
    const on = this.#deps.retries.grpcRetryOn ?? GRPC_UNAVAILABLE_ONLY;
    return on.has(grpcStatus) && this.#ex.failed('grpc_status');
  }

  /**
   * The answer was relayed whole (or the upgrade took): the request is over. A gRPC
   * answer's trailers carry its status.
   */
  answered(trailers?: Fields): void {
    if (this.#reportAtEnd) {
      this.#reportAtEnd = false;
      this.#grpcStatus = grpcStatusOf(trailers);
      // No grpc-status at all (or trailers the carrier did not deliver): the HTTP 200 stands.
      this.#report({ origin: 'upstream', status: this.#status, grpcStatus: this.#grpcStatus });
    }
    if (this.#discard) return;
    this.#ex.finish();
    this.#ex.observe(this.target, this.#status, 'relayed', true, this.#grpcStatus);
  }

  /**
   * The try ended in an error. 'cut': the response had started, so the client's must
   * be cut short (never passed off as complete); 'handled': retried or answered.
   */
  error(err: Error): 'cut' | 'handled' {
    this.release();
    if (this.#discard || this.#ex.clientGone) return 'handled';
    if (this.#responded) {
      this.#ex.finish();
      // Counted with the status the endpoint began with, as failed: the client saw it
      // cut short. A request its client stalled was counted when it was given up.
      if (!this.#ex.endedByClient) {
        // A gRPC answer cut before its trailers: the stream broke, the endpoint's doing.
        if (this.#reportAtEnd) this.#report({ origin: 'local', failure: 'reset' });
        this.#ex.observe(this.target, this.#status, 'failed');
      }
      this.#reportAtEnd = false;
      return 'cut';
    }
    if (this.#ex.endedByClient) return 'handled';
    if (isDescriptorExhaustion(err)) {
      this.#ex.exhausted(err);
      return 'handled';
    }
    const failure = classify(err, !this.#dispatched && this.#controller === undefined);
    if (failure === 'request') {
      this.#ex.refused(err);
      return 'handled';
    }
    // Never processed: retried, and the endpoint's health hears nothing of it.
    if (failure === 'refused') {
      this.#ex.failed(failure);
      return 'handled';
    }
    if (failure === 'tls') {
      const detail = tlsDetail(err);
      const reason = tlsFailure(err)?.reason ?? 'handshake';
      this.#deps.observer?.tlsFailure?.(this.#ex.service.key, this.target.cluster, reason);
      this.#report({ origin: 'local', failure, detail });
      this.#ex.failed(failure, detail);
      return 'handled';
    }
    this.#report({ origin: 'local', failure });
    this.#ex.failed(failure);
    return 'handled';
  }

  /** Frees the endpoint slot (and the budgeted retry's place); once. */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    if (this.#timer) clearTryTimer(this.#timer);
    if (this.#retryLoad) this.#retryLoad.retries--;
    this.#ex.place?.drop();
    this.#deps.upstreams.release(this.endpoint);
  }

  #report(outcome: Outcome): void {
    this.#deps.health.report(this.#ex.service.key, this.target.id, outcome);
  }
}
