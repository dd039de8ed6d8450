// The attempt loop every proxied request and upgrade goes through: a place in its
// client's share (clients.ts), then pick a target (another cluster first), send a
// try, and when it fails before anything reached the client, retry by the table in
// src/proxy/README.md or answer. A try that finds the process out of descriptors is
// answered 503 RESOURCE_EXHAUSTED at once: not retried, not reported to outlier
// detection. The Carrier sends a try and relays its answer (dispatch.ts for
// requests, upgrade.ts for upgrades), reporting back through Try.
import type { Dispatcher } from 'undici';
import type { FederatedService, Snapshot } from '../catalog/model.ts';
import { type ErrorCode, httpStatusFor } from '../errors.ts';
import type { Outcome } from '../health/outlier.ts';
import { type ExhaustionSink, isDescriptorExhaustion } from '../observe/exhaustion.ts';
import { type Router, tierScopeOf } from '../routing/router.ts';
import type { Plan, Target } from '../routing/types.ts';
import type { ProxyRequest } from './answers.ts';
import type { ClientPlace, ClientShares } from './clients.ts';
import { classify, gaveUp, PerTryTimeout, type RetryReason } from './failures.ts';
import { outcomeOf, type ProxyObserver, type RequestOutcome } from './observer.ts';
import { pickTarget, type RetryBudget, type ServiceLoad } from './picks.ts';
import type { Policy, RetrySettings, RoutedRequest } from './route.ts';
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

/** The side of an exchange that talks to the client and to undici. */
export interface Carrier {
  /** An Upgrade request: counted as one too (fedgate_http_upgrades_total). */
  readonly upgrade: boolean;
  /** The request has a body, which streams to the upstream of the first try. */
  readonly hasBody: boolean;
  /** The body has started streaming: no other try could send it again. */
  bodyStarted(): boolean;
  /** Sends one try; its handler reports what happens to `t`. */
  send(t: Try): void;
  /** fedgate's own answer: nothing to try, or no try succeeded. */
  answer(code: ErrorCode, detail: string): void;
}

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);
const RETRY_STATUSES = new Set([502, 503, 504]);
/** Failures whose retries the budget limits, and which only idempotent methods retry. */
const BUDGETED: ReadonlySet<RetryReason> = new Set(['status', 'timeout']);

/** One client request (or upgrade) and its tries. */
export class Exchange {
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
  #waiting: AbortController | undefined;
  /** Its place in its client's share (clients.ts): held while it or a try of it holds anything. */
  place: ClientPlace | undefined;

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
    this.#idempotent = IDEMPOTENT.has(req.method ?? 'GET');
    this.#load = budget.load(service.key);
    this.#load.active++;
  }

  get service(): FederatedService {
    return this.#service;
  }

  get clientGone(): boolean {
    return this.#clientGone;
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
    this.#next(false);
  }

  /** The client went away: stop waiting, abort the try under way. */
  cancel(): void {
    this.#clientGone = true;
    if (this.#done) return;
    this.#waiting?.abort();
    this.#try?.abort(new Error('client went away'));
    this.finish();
  }

  /** Dispatches the next try, or answers when there is nothing to try. */
  #next(retry: boolean, budgeted = false): void {
    if (this.#clientGone || this.#done) return;
    const deps = this.#deps();
    const picked = pickTarget(this.#state, this.#policy, deps.upstreams);
    if (picked === 'full') {
      void this.#waitForSlot(retry, budgeted);
      return;
    }
    if (!picked) {
      this.#giveUp(
        this.#tries === 0 ? 'NO_HEALTHY_UPSTREAM' : 'UPSTREAM_UNREACHABLE',
        this.#tries === 0
          ? `no endpoint of ${this.#service.key} can take traffic`
          : `no other endpoint of ${this.#service.key} to try`,
      );
      return;
    }
    this.#tries++;
    this.#state.tried.add(picked.id);
    this.#state.clusters.add(picked.cluster);
    const t = new Try(this, deps, picked, retry && budgeted ? this.#load : undefined);
    this.#try = t;
    this.#carrier.send(t);
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
  failed(failure: RetryReason): boolean {
    const verdict = this.#mayRetry(failure);
    if (verdict === 'retry') {
      this.#deps().observer?.retry(this.#service.key, failure);
      this.#next(true, BUDGETED.has(failure));
      return true;
    }
    if (failure !== 'status') {
      const { retries } = this.#deps();
      const why = { tries: this.#tries, budget: verdict === 'budget', ms: retries.perTryTimeout };
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

  #mayRetry(failure: RetryReason): 'retry' | 'no' | 'budget' {
    const deps = this.#deps();
    if (this.#clientGone || this.#tries > deps.retries.attempts) return 'no';
    if (this.#carrier.hasBody && this.#carrier.bodyStarted()) return 'no';
    if (BUDGETED.has(failure) && !this.#idempotent) return 'no';
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
    this.finish();
    this.observe(undefined, httpStatusFor(code), outcomeOf(code));
    if (!this.#clientGone) this.#carrier.answer(code, detail);
  }

  /** Tells the observer how the request ended; no target: fedgate answered itself. */
  observe(target: Target | undefined, status: number, outcome: RequestOutcome): void {
    const o = this.#deps().observer;
    if (!o) return;
    const req = this.#req;
    o.request({
      service: this.#service.key,
      outcome,
      cluster: target?.cluster ?? '',
      zone: target?.endpoint.locality.zone ?? '',
      tier: (target && tierScopeOf(this.#state.plan, target.id)) ?? '',
      status,
      seconds: (performance.now() - this.#started) / 1000,
      method: req.method ?? '',
      target: req.url ?? '',
      client: this.#client,
      tries: this.#tries,
      endpoint: target?.address ?? '',
      upgrade: this.#carrier.upgrade,
    });
  }

  /** The request is over for the budget: answered, given up, or abandoned. */
  finish(): void {
    if (this.#done) return;
    this.#done = true;
    this.#budget.end(this.#service.key, this.#load);
    this.place?.drop();
  }
}

/**
 * One try to one endpoint: holds its slot on the endpoint, its per-try timer and,
 * for a budgeted retry, its place in the service's retries in flight. The carrier's
 * undici handler tells it what happened.
 */
export class Try implements Expiring {
  readonly #ex: Exchange;
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

  constructor(ex: Exchange, deps: LoopDeps, target: Target, retryLoad: ServiceLoad | undefined) {
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
      return 'cut';
    }
    if (isDescriptorExhaustion(err)) {
      this.#ex.exhausted(err);
      return 'handled';
    }
    const failure = classify(err);
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
