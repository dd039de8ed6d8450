// The attempt loop every proxied request and upgrade goes through: a place in its
// client's share (clients.ts), then pick a target (another cluster first), send a
// try, and when it fails before anything reached the client, retry by the table in
// src/proxy/README.md (within the service's retry budget for 5xx answers and
// timeouts) or answer. Two try errors are none of the endpoint's doing, so are not
// retried (any other endpoint would fare the same) nor reported to outlier
// detection: the process out of file descriptors (503 RESOURCE_EXHAUSTED), and
// undici refusing the request itself (400 REQUEST_UNFORWARDABLE).
//
// How a try is sent and its answer relayed is the Carrier's: dispatch.ts for
// requests, upgrade.ts for upgrades. Both report back through Try (try.ts).
import type { FederatedService } from '../catalog/model.ts';
import { type ErrorCode, GRPC_STATUS, grpcStatusFor, httpStatusFor } from '../errors.ts';
import { tierScopeOf } from '../routing/router.ts';
import type { Plan, Target } from '../routing/types.ts';
import type { ProxyRequest } from './answers.ts';
import type { Carrier } from './carrier.ts';
import type { ClientPlace } from './clients.ts';
import { gaveUp, nothingLeft, type RetryReason, refusalDetail } from './failures.ts';
import type { GrpcCall } from './grpc.ts';
import { CLIENT_CLOSED_REQUEST, outcomeOf, type RequestOutcome } from './observer.ts';
import { pickTarget, type RetryBudget, type ServiceLoad } from './picks.ts';
import { BUDGETED, isIdempotent, retryable } from './retry-rules.ts';
import type { Policy, RoutedRequest } from './route.ts';
import { armDeadline, deadlineDetail } from './route-rules.ts';
import { RequestTrace } from './spans.ts';
import { type LoopDeps, Try, type TryOwner } from './try.ts';

/** One client request (or upgrade) and its tries. */
export class Exchange implements TryOwner {
  readonly #deps: () => LoopDeps;
  readonly #budget: RetryBudget;
  readonly #carrier: Carrier;
  readonly #req: ProxyRequest;
  /** Read at the start: the request lets go of its socket once answered. */
  readonly #client: string;
  readonly #service: FederatedService;
  readonly #policy: Policy;
  readonly #routed: RoutedRequest;
  readonly #idempotent: boolean;
  readonly #load: ServiceLoad;
  readonly #started = performance.now();
  readonly #state: {
    plan: Plan;
    hash: number | undefined;
    tried: Set<string>;
    clusters: Set<string>;
  };
  #try: Try | undefined;
  #tries = 0;
  #done = false;
  #clientGone = false;
  #endedByClient = false;
  /** A gRPC call's deadline (grpc-timeout) or its rule's timeouts.request, while no answer has started. */
  #deadlineTimer: NodeJS.Timeout | undefined;
  /** The deadline is the rule's timeouts.request (not grpc-timeout). */
  #byRoute = false;
  #waiting: AbortController | undefined;
  /** The last try failed its TLS handshake (what failed), or timed out: what the client hears when nothing is left. */
  #last: { failure: 'tls' | 'timeout'; detail: string } | undefined;
  /** Its place in its client's share (clients.ts): held while it or a try of it holds anything. */
  place: ClientPlace | undefined;
  /** Its spans, when tracing is on (spans.ts). */
  readonly #trace: RequestTrace | undefined;
  /** Why the last try failed, when the next one is its retry. */
  #retryOf: RetryReason | undefined;

  constructor(
    deps: () => LoopDeps,
    budget: RetryBudget,
    service: FederatedService,
    routed: RoutedRequest,
    req: ProxyRequest,
    carrier: Carrier,
  ) {
    this.#deps = deps;
    this.#budget = budget;
    this.#carrier = carrier;
    this.#req = req;
    this.#client = req.socket?.remoteAddress ?? '';
    this.#service = service;
    this.#policy = routed.policy;
    this.#routed = routed;
    this.#state = {
      plan: routed.plan,
      hash: routed.hash,
      tried: new Set(),
      clusters: new Set(),
    };
    this.#idempotent = isIdempotent(req.method);
    this.#load = budget.load(service.key);
    this.#load.active++;
    const tracing = deps().tracing;
    this.#trace =
      tracing &&
      new RequestTrace(tracing, req, {
        service: service.key,
        picker: routed.policy.picker.kind,
        route: routed.route,
        rule: routed.gateway?.rule.index,
      });
  }

  get service(): FederatedService {
    return this.#service;
  }

  get servicePort(): number | undefined {
    return this.#routed.gateway?.backend.port;
  }

  get clientGone(): boolean {
    return this.#clientGone;
  }

  get grpc(): GrpcCall | undefined {
    return this.#carrier.grpc;
  }

  start(): void {
    const key = this.#service.key;
    if (this.#state.plan.empty) {
      this.#giveUp('NO_HEALTHY_UPSTREAM', `no endpoint of ${key} can take traffic`);
      return;
    }
    const deps = this.#deps();
    this.place = deps.clients.admit(key, this.#client, this.#state.plan);
    if (!this.place) {
      deps.observer?.clientOverShare?.(key);
      this.#giveUp('CLIENT_OVER_SHARE', `this client holds its share of ${key}'s request slots`);
      return;
    }
    const deadline = armDeadline(this.#started, this.grpc?.deadline, this.#routed.gateway, () =>
      this.#deadlinePassed(),
    );
    this.#byRoute = deadline.byRoute;
    this.#deadlineTimer = deadline.timer;
    this.#next(false);
  }

  /**
   * A gRPC call's deadline passed before an answer started: every try's timeout is
   * min(perTryTimeout, the call's time left), so none is retried now. The try is
   * aborted (not blamed on its endpoint: a client's short deadline must eject no
   * one) and the call answered UPSTREAM_TIMEOUT, DEADLINE_EXCEEDED. Once an answer
   * streams, the gRPC deadline is the client's and the upstream's (it got
   * grpc-timeout); a route's timeouts.request cuts it (Envoy's route timeout does).
   */
  #deadlinePassed(): void {
    this.#deadlineTimer = undefined;
    const t = this.#try;
    if (this.#done) return;
    if (t?.status) {
      if (this.#byRoute) this.#cutByRoute(t);
      return;
    }
    this.#endedByClient = true;
    this.#waiting?.abort();
    const waited = Math.round(this.age() * 1000);
    const key = this.#service.key;
    const detail = deadlineDetail(key, this.#routed.route, this.#byRoute, waited, this.#tries);
    this.#giveUp('UPSTREAM_TIMEOUT', detail);
    t?.abort(new Error("the call's deadline passed"));
  }

  /**
   * timeouts.request passed while the answer streamed: the answer is cut short (the
   * client never takes it for whole), counted failed with the status it began with,
   * and the endpoint is not blamed (the route chose the bound).
   */
  #cutByRoute(t: Try): void {
    this.#endedByClient = true;
    this.finish();
    this.observe(t.target, t.status ?? 0, 'failed');
    t.abort(new Error(`route ${this.#routed.route}'s timeouts.request passed mid-answer`));
  }

  /**
   * The client went away (closed, reset its stream, or its connection ended): a
   * no-op once the request is over. Otherwise the wait for a slot ends, the try
   * under way is aborted (undici then ends it, which frees its slot), and the
   * request is counted: client_cancelled, 499, at the endpoint it waited on.
   * true when this ended the request.
   */
  cancel(): boolean {
    this.#clientGone = true;
    if (this.#done) return false;
    const waiting = this.#waiting;
    const t = waiting ? undefined : this.#try;
    waiting?.abort();
    this.#try?.abort(new Error('client went away'));
    this.finish();
    this.observe(
      t?.target,
      CLIENT_CLOSED_REQUEST,
      'client_cancelled',
      false,
      this.grpc && GRPC_STATUS.CANCELLED,
    );
    return true;
  }

  /** Seconds since the request arrived. */
  age(): number {
    return (performance.now() - this.#started) / 1000;
  }

  /**
   * The client sent no body bytes for http.timeouts.requestBodyIdle: abort the try
   * (its slot freed at once; the endpoint is not blamed, nothing is retried) and
   * answer 408, closing the connection; a response already started is cut short.
   */
  bodyIdle(err: Error): void {
    if (this.#done) return;
    this.#stall(err);
    this.#carrier.answer('REQUEST_TIMEOUT', err.message, true);
  }

  /**
   * The client took no response bytes for http.timeouts.responseSendIdle: abort the
   * try (its slot freed at once; the endpoint is not blamed). The carrier cuts the
   * response it had started.
   */
  sendIdle(err: Error): void {
    if (this.#done) return;
    this.#stall(err);
  }

  /** Ends the request for its client's slowness, counted as rejected (a limit on the client). */
  #stall(err: Error): void {
    this.#endedByClient = true;
    this.finish();
    const t = this.#try;
    if (t?.status) this.observe(t.target, t.status, 'rejected');
    else {
      const grpc = this.grpc && grpcStatusFor('REQUEST_TIMEOUT');
      this.observe(undefined, httpStatusFor('REQUEST_TIMEOUT'), 'rejected', false, grpc);
    }
    t?.abort(err);
  }

  /**
   * The request ended for a reason not its endpoint's (the client's slowness or gRPC
   * deadline, the route's timeouts.request): a try's failure now is none of the endpoint's.
   */
  get endedByClient(): boolean {
    return this.#endedByClient;
  }

  /** Dispatches the next try, or answers when there is nothing to try. */
  #next(retry: boolean, budgeted = false): void {
    if (this.#clientGone || this.#done) return;
    const deps = this.#deps();
    const reuse = deps.retries.reuseTried === true;
    const picked = pickTarget(this.#state, this.#policy, deps.upstreams, reuse);
    if (picked === 'full') {
      void this.#waitForSlot(retry, budgeted);
      return;
    }
    if (!picked) {
      const { perTryTimeout } = deps.retries;
      const a = nothingLeft(this.#service.key, this.#tries, this.#last, perTryTimeout);
      this.#giveUp(a.code, a.detail);
      return;
    }
    this.#tries++;
    this.#state.tried.add(picked.id);
    this.#state.clusters.add(picked.cluster);
    const t = new Try(this, deps, picked, retry && budgeted ? this.#load : undefined);
    this.#try = t;
    if (this.#trace) {
      t.traceHeaders = this.#trace.tryStarted(
        picked,
        this.#tries,
        retry ? this.#retryOf : undefined,
      );
    }
    this.#carrier.send(t);
    t.dispatched();
    if (!this.#carrier.hasBody) t.arm();
  }

  async #waitForSlot(retry: boolean, budgeted: boolean): Promise<void> {
    this.#waiting = new AbortController();
    const deps = this.#deps();
    const ok = await deps.upstreams.waitForSlot(
      this.#service.key,
      this.place?.client ?? '',
      deps.retries.perTryTimeout,
      this.#waiting.signal,
    );
    this.#waiting = undefined;
    if (this.#clientGone || this.#done) return;
    if (!ok) {
      const detail = `every endpoint of ${this.#service.key} is at its request cap and the pending queue is full`;
      this.#giveUp('UPSTREAM_OVERFLOW', detail);
      return;
    }
    this.#next(retry, budgeted);
  }

  /** A try failed before anything reached the client: retry (true), or answer. */
  failed(failure: RetryReason, detail?: string): boolean {
    this.#trace?.tryFailed(this.#try?.status, failure);
    this.#last =
      failure === 'tls' || failure === 'timeout' ? { failure, detail: detail ?? '' } : undefined;
    const verdict = this.#mayRetry(failure);
    if (verdict === 'retry') {
      this.#retryOf = failure;
      const deps = this.#deps();
      deps.observer?.retry(this.#service.key, failure);
      const backoff = deps.retries.backoffMs ?? 0;
      // A Gateway API rule's retry.backoff: the wait ends early when the request does.
      if (backoff > 0) setTimeout(() => this.#next(true, BUDGETED.has(failure)), backoff).unref();
      else this.#next(true, BUDGETED.has(failure));
      return true;
    }
    // An answer not retried is relayed as it came; a failure left none.
    if (failure !== 'status' && failure !== 'grpc_status') {
      const { retries } = this.#deps();
      const why = {
        tries: this.#tries,
        budget: verdict === 'budget',
        ms: retries.perTryTimeout,
        detail,
      };
      const a = gaveUp(failure, this.#service.key, why);
      this.#giveUp(a.code, a.detail);
    }
    return false;
  }

  /** Out of descriptors: any endpoint would need one too, so no retry, and no blame. */
  exhausted(err: Error): void {
    this.#deps().exhaustion?.note('upstream_connect', err);
    this.#giveUp(
      'RESOURCE_EXHAUSTED',
      `out of file descriptors: no connection to ${this.#service.key} could be opened`,
    );
  }

  /** undici refused the request as it is, before sending it: the client's doing, a 400. */
  refused(err: Error): void {
    this.#giveUp('REQUEST_UNFORWARDABLE', refusalDetail(err));
  }

  #mayRetry(failure: RetryReason): 'retry' | 'no' | 'budget' {
    const deps = this.#deps();
    const retry = {
      clientGone: this.#clientGone,
      tries: this.#tries,
      attempts: deps.retries.attempts,
      idempotent: this.#idempotent,
      carrier: this.#carrier,
    };
    if (!retryable(failure, retry)) return 'no';
    // The budget holds back retries of answers a loaded upstream gives (5xx, slowness),
    // which would pile more load on it. A refused or reset connection is a dead
    // endpoint: retrying elsewhere adds nothing to it, and is what failover is.
    if (BUDGETED.has(failure) && !this.#budget.allowed(this.#load, deps.retries)) {
      deps.observer?.retryBudgetExhausted?.(this.#service.key, failure);
      return 'budget';
    }
    // Health may have changed since the plan was made: a fresh plan for the retry.
    const svc = deps.catalog.current().services.get(this.#service.key) ?? this.#service;
    this.#state.plan = deps.router.plan(svc, this.#routed.locality);
    return 'retry';
  }

  #giveUp(code: ErrorCode, detail: string): void {
    this.#trace?.answered(code);
    this.finish();
    const grpc = this.grpc && grpcStatusFor(code);
    this.observe(undefined, httpStatusFor(code), outcomeOf(code), false, grpc);
    if (!this.#clientGone) this.#carrier.answer(code, detail);
  }

  /** Tells the observer how the request ended; no target: fedgate answered itself. */
  observe(
    target: Target | undefined,
    status: number,
    outcome: RequestOutcome,
    answered = target !== undefined,
    grpcStatus?: number,
  ): void {
    // The served tier is the answering endpoint's: none when the client left first.
    const tier = (answered && target && tierScopeOf(this.#state.plan, target.id)) || '';
    this.#trace?.end({ status, outcome, target, tier, attempts: this.#tries, grpcStatus });
    const o = this.#deps().observer;
    if (!o) return;
    const req = this.#req;
    o.request({
      service: this.#service.key,
      route: this.#routed.route,
      outcome,
      cluster: target?.cluster ?? '',
      zone: target?.endpoint.locality.zone ?? '',
      tier,
      status,
      seconds: (performance.now() - this.#started) / 1000,
      locality: this.#routed.locality,
      method: req.method ?? '',
      target: req.url ?? '',
      client: this.#client,
      tries: this.#tries,
      endpoint: target?.address ?? '',
      upgrade: this.#carrier.upgrade,
      ...(this.grpc ? { grpc: true, grpcStatus } : {}),
    });
  }

  /** The request is over for the budget: answered, given up, or abandoned. */
  finish(): void {
    if (this.#done) return;
    this.#done = true;
    if (this.#deadlineTimer) clearTimeout(this.#deadlineTimer);
    this.#budget.end(this.#service.key, this.#load);
    this.place?.drop();
  }
}
