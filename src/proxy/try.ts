// One try of a proxied request or upgrade to one endpoint (attempts.ts runs the
// loop of them): the endpoint slot it holds, its per-try timer, its place in the
// retry budget, and what the carrier's undici handler tells it, passed on to its
// exchange and to outlier detection.
import type { Dispatcher } from 'undici';
import type { FederatedService, Snapshot } from '../catalog/model.ts';
import type { Outcome } from '../health/outlier.ts';
import { type ExhaustionSink, isDescriptorExhaustion } from '../observe/exhaustion.ts';
import type { Router } from '../routing/router.ts';
import type { Target } from '../routing/types.ts';
import type { ClientPlace, ClientShares } from './clients.ts';
import { classify, PerTryTimeout, type RetryReason, tlsDetail, tlsFailure } from './failures.ts';
import type { ProxyObserver, RequestOutcome } from './observer.ts';
import type { ServiceLoad } from './picks.ts';
import type { RetrySettings } from './route.ts';
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
}

/** What a try needs of the request it is a try of (attempts.ts's Exchange). */
export interface TryOwner {
  readonly service: FederatedService;
  /** Its place in its client's share (clients.ts): each try holds it too, until it lets go of its slot. */
  readonly place: ClientPlace | undefined;
  readonly clientGone: boolean;
  /** The request ended for the client's slowness: a try's failure is none of the endpoint's. */
  readonly stalledByClient: boolean;
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
  observe(target: Target | undefined, status: number, outcome: RequestOutcome): void;
}

const RETRY_STATUSES = new Set([502, 503, 504]);

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
  #released = false;
  /** dispatch() has returned: an error before that and before the start was thrown there. */
  #dispatched = false;

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
   * The upstream's final response head (or 101). 'retry': another try took over,
   * discard this answer; 'gone': the client left, nothing to relay; 'deliver'.
   */
  head(status: number): 'deliver' | 'retry' | 'gone' {
    if (this.#timer) clearTryTimer(this.#timer);
    this.#report({ origin: 'upstream', status });
    if (this.#ex.clientGone) {
      this.abort(new Error('client went away'));
      return 'gone';
    }
    if (RETRY_STATUSES.has(status) && this.#ex.failed('status')) {
      this.#discard = true;
      return 'retry';
    }
    this.#responded = true;
    this.#status = status;
    return 'deliver';
  }

  /** The answer was relayed whole (or the upgrade took): the request is over. */
  answered(): void {
    if (this.#discard) return;
    this.#ex.finish();
    this.#ex.observe(this.target, this.#status, 'relayed');
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
      if (!this.#ex.stalledByClient) this.#ex.observe(this.target, this.#status, 'failed');
      return 'cut';
    }
    if (this.#ex.stalledByClient) return 'handled';
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
