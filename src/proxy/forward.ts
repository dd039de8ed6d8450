// One request through the proxy: Host → service → plan → target → undici, with
// retries to other endpoints (another cluster first) when a try fails before the
// response could reach the client. Every outcome is reported to outlier detection.
//
// A try may be retried when
//   - the connection failed, or was reset before any response byte, and the request
//     body has not started streaming (any method);
//   - the upstream answered 502, 503 or 504, or did not answer within the per-try
//     timeout, and the method is idempotent (GET, HEAD, OPTIONS, PUT, DELETE) with
//     its body not started;
// and the service's retry budget allows it. The last try's answer goes to the client.
// A try that cannot open its upstream socket because this process is out of file
// descriptors is none of the endpoint's doing: 503 RESOURCE_EXHAUSTED at once, not
// retried (any other endpoint needs a descriptor just the same) and not reported.
import { type IncomingMessage, ServerResponse } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import type { Dispatcher } from 'undici';
import type { FederatedService, Snapshot } from '../catalog/model.ts';
import { ERROR_TABLE, type ErrorCode } from '../errors.ts';
import type { Outcome } from '../health/outlier.ts';
import { type ExhaustionSink, isDescriptorExhaustion } from '../observe/exhaustion.ts';
import type { Logger } from '../observe/log.ts';
import type { ProxyObserver } from '../observe/metrics.ts';
import { affinityHash, type HashOn, parseHashOn } from '../routing/affinity.ts';
import { createPicker, type Picker, type PickerKind } from '../routing/pickers.ts';
import { type LbPolicy, parseLbPolicy } from '../routing/policy.ts';
import { type Router, tierScopeOf } from '../routing/router.ts';
import type { Locality, Plan, Target } from '../routing/types.ts';
import { downstreamResponseHeaders, upstreamRequestHeaders } from './headers.ts';
import { type HostRoute, type HostTable, normalizeHost } from './hosts.ts';
import type { UpstreamEndpoint, Upstreams } from './upstreams.ts';

export type ProxyRequest = IncomingMessage | Http2ServerRequest;
/**
 * Node's HTTP/1 response; an HTTP/2 compatibility response is used through the same
 * calls (writeHead, write, end, destroy, events), so it is passed as one.
 */
export type ProxyResponse = ServerResponse;

/** HTTP/1 answers can carry Connection: close and a reason phrase; HTTP/2 ones cannot. */
function isHttp1(res: ProxyResponse): boolean {
  return (res as ProxyResponse | Http2ServerResponse) instanceof ServerResponse;
}

export interface ForwardSettings {
  readonly locality: 'self' | 'client';
  readonly retries: {
    readonly attempts: number;
    readonly budget: number;
    readonly minConcurrency: number;
    readonly perTryTimeout: number;
  };
  readonly maxHeaderCount: number;
  readonly picker: PickerKind;
  readonly hashOn: string | undefined;
  readonly services: Readonly<
    Record<
      string,
      { readonly picker?: PickerKind | undefined; readonly hashOn?: string | undefined }
    >
  >;
}

/** Where a request goes, from its Host or absolute-form target. */
export interface RouteTarget {
  readonly route: HostRoute;
  readonly path: string;
  readonly authority: string;
  readonly absolute: boolean;
}

/** What every request, plain or upgrade, takes from its route before the first try. */
export interface Prepared {
  readonly policy: Policy;
  readonly locality: Locality | undefined;
  readonly plan: Plan;
  readonly hash: number | undefined;
  readonly headers: string[];
}

export type RetryReason = 'connect' | 'reset' | 'timeout' | 'status';

/** Counters the admin server and metrics read. */
export class ProxyStats {
  requests = 0;
  /** Answers by status class: 2xx … 5xx, and the client going away first. */
  readonly responses = { '1xx': 0, '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 0, aborted: 0 };
  readonly retries: Record<RetryReason, number> = { connect: 0, reset: 0, timeout: 0, status: 0 };
  /** A retry was wanted but the budget said no. */
  budgetExhausted = 0;
  readonly errors: Partial<Record<ErrorCode, number>> = {};
  upgrades = 0;
}

export interface ForwardDeps {
  readonly catalog: { current(): Snapshot };
  readonly router: Router;
  readonly health: { report(service: string, id: string, outcome: Outcome): void };
  readonly upstreams: Upstreams;
  readonly hosts: HostTable;
  readonly settings: ForwardSettings;
  readonly random: () => number;
  readonly log: Logger;
  readonly stats: ProxyStats;
  /**
   * True while the connection this answer goes out on is draining (all are on
   * SIGTERM; a removed listener's are after a reload): it asks the client to close.
   */
  readonly draining: (socket?: unknown) => boolean;
  /** Told of every finished request and every retry (metrics). */
  readonly observer?: ProxyObserver | undefined;
  /** Told when an upstream socket could not be opened for lack of descriptors. */
  readonly exhaustion?: ExhaustionSink | undefined;
}

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);
const RETRY_STATUSES = new Set([502, 503, 504]);
/** Failures whose retries the budget limits, and which only idempotent methods retry. */
const BUDGETED: ReadonlySet<string> = new Set(['status', 'timeout']);
/** Connect errors: nothing reached the upstream. */
const CONNECT_ERRORS = new Set([
  'ECONNREFUSED',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EADDRNOTAVAIL',
  'UND_ERR_CONNECT_TIMEOUT',
  'ENOTFOUND',
]);

export interface Policy {
  readonly picker: Picker;
  readonly hashOn: HashOn | undefined;
}

interface ServiceLoad {
  active: number;
  retries: number;
}

/** Sends fedgate's own answer: plain text, the error code in a header. */
export function sendError(
  res: ProxyResponse,
  code: ErrorCode,
  detail: string,
  close = false,
): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = `fedgate: ${detail}\n`;
  const headers: Record<string, string | number> = {
    'content-type': 'text/plain; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'x-fedgate-error': code,
  };
  if (close && isHttp1(res)) headers.connection = 'close';
  res.writeHead(ERROR_TABLE[code].http, headers);
  res.end(body);
}

/** What a reload may swap under a running Forwarder. */
export type ReloadableDeps = Pick<ForwardDeps, 'hosts' | 'settings' | 'upstreams' | 'observer'>;

export class Forwarder {
  /** Replaced whole by reconfigure(); requests in flight read it as they go. */
  deps: ForwardDeps;
  readonly #pickers = new Map<PickerKind, Picker>();
  #policies = new WeakMap<FederatedService, Policy>();
  readonly #httpPorts = new WeakMap<FederatedService, string | number>();
  readonly #load = new Map<string, ServiceLoad>();
  #selfLocality: Locality | undefined;
  /** Annotation values already warned about, so a bad one logs once. */
  readonly #warned = new Set<string>();

  constructor(deps: ForwardDeps) {
    this.deps = deps;
    this.#selfLocality = deps.router.self;
  }

  /**
   * New settings, host table or upstreams (reload; the router was reconfigured
   * first). Policies are chosen again, and this replica's locality looked up again.
   */
  reconfigure(next: ReloadableDeps): void {
    this.deps = { ...this.deps, ...next };
    this.#policies = new WeakMap();
    this.#selfLocality = this.deps.router.self;
  }

  // ---- routing -----------------------------------------------------------------

  /** Where a request goes: its host's route, or the error to answer. */
  route(req: ProxyRequest): RouteTarget | ErrorCode {
    let url = req.url ?? '/';
    let absolute = false;
    let authority =
      (req.headers[':authority'] as string | undefined) ?? req.headers.host ?? undefined;
    if (url.charCodeAt(0) !== 47 /* / */ && url !== '*') {
      // Absolute form: the URL's authority wins over Host (RFC 9112 §3.2.2).
      let parsed: URL;
      try {
        parsed = new URL(url);
      } catch {
        return 'BAD_REQUEST';
      }
      if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') return 'HOST_UNKNOWN';
      authority = parsed.host;
      url = `${parsed.pathname}${parsed.search}`;
      absolute = true;
    }
    // HTTP/1.1 requires Host (RFC 9112 §3.2); HTTP/1.0 may omit it, and names nothing then.
    if (authority === undefined) return req.httpVersion === '1.1' ? 'BAD_REQUEST' : 'HOST_UNKNOWN';
    const host = normalizeHost(authority);
    const route =
      host === undefined ? undefined : this.deps.hosts.lookup(this.deps.catalog.current(), host);
    if (!route) return 'HOST_UNKNOWN';
    return { route, path: url, authority, absolute };
  }

  policy(svc: FederatedService): Policy {
    let p = this.#policies.get(svc);
    if (!p) {
      const s = this.deps.settings;
      const configured = s.services[svc.key];
      let lb: LbPolicy = {
        picker: s.picker,
        hashOn: s.hashOn === undefined ? undefined : parseHashOn(s.hashOn),
      };
      if (configured?.picker !== undefined || configured?.hashOn !== undefined) {
        lb = {
          picker: configured.picker ?? lb.picker,
          hashOn: configured.hashOn === undefined ? lb.hashOn : parseHashOn(configured.hashOn),
        };
      } else if (svc.lbPolicy !== undefined) {
        try {
          lb = parseLbPolicy(svc.lbPolicy);
        } catch (e) {
          const key = `${svc.key} ${svc.lbPolicy}`;
          if (!this.#warned.has(key)) {
            this.#warned.add(key);
            this.deps.log.warn(
              { service: svc.key, value: svc.lbPolicy },
              `fedgate.io/lb-policy ignored: ${(e as Error).message}`,
            );
          }
        }
      }
      p = { picker: this.#picker(lb.picker), hashOn: lb.hashOn };
      this.#policies.set(svc, p);
    }
    return p;
  }

  #picker(kind: PickerKind): Picker {
    let p = this.#pickers.get(kind);
    if (!p) {
      p = createPicker(kind, { random: this.deps.random });
      this.#pickers.set(kind, p);
    }
    return p;
  }

  locality(route: HostRoute, clientAddress: string): Locality | undefined {
    if (route.locality) return route.locality;
    if (this.deps.settings.locality === 'client') {
      return this.deps.router.locate(clientAddress).locality;
    }
    return this.#selfLocality;
  }

  /** The policy, plan, affinity hash and upstream headers of a routed request. */
  prepare(req: ProxyRequest, target: RouteTarget, proto: 'http' | 'https'): Prepared {
    const svc = target.route.service;
    const policy = this.policy(svc);
    const clientAddress = req.socket.remoteAddress ?? '';
    const locality = this.locality(target.route, clientAddress);
    return {
      policy,
      locality,
      plan: this.deps.router.plan(svc, locality),
      hash: policy.hashOn
        ? affinityHash(policy.hashOn, { headers: req.headers, clientAddress })
        : undefined,
      headers: upstreamRequestHeaders(req.rawHeaders, req.headers.connection, {
        clientAddress: clientAddress.startsWith('::ffff:') ? clientAddress.slice(7) : clientAddress,
        host: target.authority,
        proto,
        replaceHost: target.absolute,
      }),
    };
  }

  /** The service port HTTP goes to: the one named http, else the first TCP one. */
  #httpPort(svc: FederatedService): string | number {
    let p = this.#httpPorts.get(svc);
    if (p === undefined) {
      const tcp = svc.ports.filter((x) => x.protocol === 'TCP');
      const named = tcp.find((x) => x.name === 'http' || x.appProtocol === 'http') ?? tcp[0];
      p = named ? named.name || named.port : 80;
      this.#httpPorts.set(svc, p);
    }
    return p;
  }

  /** `http://address:port` of the target's HTTP port. */
  origin(svc: FederatedService, t: Target): string {
    const want = this.#httpPort(svc);
    const ports = t.endpoint.ports;
    const port =
      (typeof want === 'string' ? ports.find((p) => p.name === want) : undefined) ?? ports[0];
    const n = port?.port ?? (typeof want === 'number' ? want : 80);
    return t.address.includes(':') ? `http://[${t.address}]:${n}` : `http://${t.address}:${n}`;
  }

  /**
   * A target not tried yet, in a cluster not tried yet if possible, with a free slot.
   * 'full' when every candidate is at its request cap.
   */
  pick(
    ex: { plan: Plan; hash: number | undefined; tried: Set<string>; clusters: Set<string> },
    policy: Policy,
  ): Target | 'full' | undefined {
    const up = this.deps.upstreams;
    const ctx = { hash: ex.hash, outstanding: up.outstanding };
    if (ex.tried.size === 0) {
      const t = policy.picker.pick(ex.plan, ctx);
      if (t && !up.isFull(t.id)) return t;
      if (!t) return undefined;
    }
    // Retries, or the first choice was full: a few more picks by the policy…
    let fallback: Target | undefined;
    let sawFull = false;
    /** The target when it is new in a new cluster; remembers a second best. */
    const consider = (t: Target): Target | undefined => {
      if (ex.tried.has(t.id)) return undefined;
      if (up.isFull(t.id)) {
        sawFull = true;
        return undefined;
      }
      if (!ex.clusters.has(t.cluster)) return t;
      fallback ??= t;
      return undefined;
    };
    for (let i = 0; i < 8; i++) {
      const t = policy.picker.pick(ex.plan, { outstanding: up.outstanding });
      if (!t) break;
      const ok = consider(t);
      if (ok) return ok;
    }
    // …then every target in priority order, so a retry finds one whenever one exists.
    for (const tier of ex.plan.tiers) {
      for (const t of tier.targets) {
        const ok = consider(t);
        if (ok) return ok;
      }
    }
    if (fallback) return fallback;
    return sawFull ? 'full' : undefined;
  }

  // ---- budget ---------------------------------------------------------------------

  load(service: string): ServiceLoad {
    let l = this.#load.get(service);
    if (!l) {
      l = { active: 0, retries: 0 };
      this.#load.set(service, l);
    }
    return l;
  }

  retryAllowed(l: ServiceLoad): boolean {
    const r = this.deps.settings.retries;
    return l.retries < Math.max(r.minConcurrency, r.budget * l.active);
  }

  endLoad(service: string, l: ServiceLoad): void {
    if (--l.active === 0 && l.retries === 0) this.#load.delete(service);
  }

  // ---- the request --------------------------------------------------------------------

  handle(req: ProxyRequest, res: ProxyResponse, proto: 'http' | 'https'): void {
    const stats = this.deps.stats;
    stats.requests++;
    if (req.method === 'CONNECT') {
      this.fail(
        res,
        'METHOD_NOT_ALLOWED',
        'CONNECT is not supported: fedgate is not a forward proxy',
      );
      return;
    }
    if (headerCount(req) > this.deps.settings.maxHeaderCount) {
      this.fail(
        res,
        'HEADERS_TOO_LARGE',
        `more than ${this.deps.settings.maxHeaderCount} request headers`,
        true,
      );
      return;
    }
    const r = this.route(req);
    if (typeof r === 'string') {
      this.fail(res, r, routeProblem(req, r), r === 'BAD_REQUEST');
      return;
    }
    new Exchange(this, req, res, r, proto).start();
  }

  fail(res: ProxyResponse, code: ErrorCode, detail: string, close = false): void {
    const errors = this.deps.stats.errors;
    errors[code] = (errors[code] ?? 0) + 1;
    this.count(ERROR_TABLE[code].http);
    sendError(res, code, detail, close || this.deps.draining(res.socket));
  }

  count(status: number): void {
    const r = this.deps.stats.responses;
    if (status < 200) r['1xx']++;
    else if (status < 300) r['2xx']++;
    else if (status < 400) r['3xx']++;
    else if (status < 500) r['4xx']++;
    else r['5xx']++;
  }
}

/** Header fields of a request: HTTP/2 pseudo-headers are the request line, not fields. */
export function headerCount(req: ProxyRequest): number {
  const raw = req.rawHeaders;
  let n = raw.length / 2;
  if (req.httpVersionMajor === 2) {
    for (let i = 0; i < raw.length; i += 2) if (raw[i]!.charCodeAt(0) === 58 /* : */) n--;
  }
  return n;
}

/** Why a request could not be routed, in a sentence. */
export function routeProblem(req: ProxyRequest, code: ErrorCode): string {
  const host = req.headers[':authority'] ?? req.headers.host;
  if (code !== 'BAD_REQUEST') return `no federated service is served at host "${host ?? ''}"`;
  return host === undefined
    ? 'an HTTP/1.1 request needs a Host header'
    : 'the request target is not a valid URL';
}

type Failure = 'connect' | 'reset' | 'timeout';

class PerTryTimeout extends Error {
  constructor(ms: number) {
    super(`no response within ${ms} ms`);
    this.name = 'PerTryTimeout';
  }
}

/** One client request and its tries. */
class Exchange {
  readonly f: Forwarder;
  readonly req: ProxyRequest;
  readonly res: ProxyResponse;
  readonly service: FederatedService;
  readonly policy: Policy;
  readonly locality: Locality | undefined;
  readonly path: string;
  readonly method: string;
  readonly headers: string[];
  readonly hasBody: boolean;
  readonly idempotent: boolean;
  readonly load: ServiceLoad;
  readonly started = performance.now();
  plan: Plan;
  readonly hash: number | undefined;
  readonly tried = new Set<string>();
  readonly clusters = new Set<string>();
  attempt: Attempt | undefined;
  tries = 0;
  retrying = false;
  /** The retry under way counts against the service's retry budget. */
  budgeted = false;
  done = false;
  clientGone = false;
  #waiting: AbortController | undefined;

  constructor(
    f: Forwarder,
    req: ProxyRequest,
    res: ProxyResponse,
    target: RouteTarget,
    proto: 'http' | 'https',
  ) {
    const { route, path } = target;
    this.f = f;
    this.req = req;
    this.res = res;
    this.service = route.service;
    const prepared = f.prepare(req, target, proto);
    this.policy = prepared.policy;
    this.locality = prepared.locality;
    this.plan = prepared.plan;
    this.hash = prepared.hash;
    this.headers = prepared.headers;
    this.path = path;
    this.method = req.method ?? 'GET';
    this.idempotent = IDEMPOTENT.has(this.method);
    const h2 = 'stream' in req;
    this.hasBody = h2
      ? !(req as Http2ServerRequest).stream.endAfterHeaders
      : (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0') ||
        req.headers['transfer-encoding'] !== undefined;
    this.load = f.load(route.service.key);
    this.load.active++;
    res.once('close', this.#onClose);
  }

  get bodyStarted(): boolean {
    return this.hasBody && this.req.readableDidRead;
  }

  start(): void {
    if (this.plan.empty) {
      this.finish();
      this.f.fail(
        this.res,
        'NO_HEALTHY_UPSTREAM',
        `no endpoint of ${this.service.key} can take traffic`,
      );
      return;
    }
    this.next();
  }

  /** Dispatches the next try, or answers when there is nothing to try. */
  next(): void {
    if (this.clientGone || this.done) return;
    const picked = this.f.pick(this, this.policy);
    if (picked === 'full') {
      void this.#waitForSlot();
      return;
    }
    if (!picked) {
      this.#giveUp(
        this.tries === 0 ? 'NO_HEALTHY_UPSTREAM' : 'UPSTREAM_UNREACHABLE',
        this.tries === 0
          ? `no endpoint of ${this.service.key} can take traffic`
          : `no other endpoint of ${this.service.key} to try`,
      );
      return;
    }
    this.tries++;
    this.tried.add(picked.id);
    this.clusters.add(picked.cluster);
    const deps = this.f.deps;
    const ep = deps.upstreams.endpoint(picked.id);
    deps.upstreams.acquire(ep, this.service.key);
    const attempt = new Attempt(this, ep, picked);
    this.attempt = attempt;
    ep.pool(this.f.origin(this.service, picked)).dispatch(
      {
        path: this.path,
        method: this.method,
        headers: this.headers,
        body: this.hasBody ? (this.req as IncomingMessage) : null,
      },
      attempt,
    );
    if (!this.hasBody) attempt.arm();
  }

  async #waitForSlot(): Promise<void> {
    this.#waiting = new AbortController();
    const ok = await this.f.deps.upstreams.waitForSlot(
      this.service.key,
      this.f.deps.settings.retries.perTryTimeout,
      this.#waiting.signal,
    );
    this.#waiting = undefined;
    if (this.clientGone || this.done) return;
    if (!ok) {
      this.#giveUp(
        'UPSTREAM_OVERFLOW',
        `every endpoint of ${this.service.key} is at its request cap and the pending queue is full`,
      );
      return;
    }
    this.next();
  }

  /** A try failed before anything reached the client: retry, or answer. */
  failed(failure: Failure | 'status'): boolean {
    const verdict = this.#mayRetry(failure);
    if (verdict === 'retry') {
      this.f.deps.stats.retries[failure]++;
      this.f.deps.observer?.retry(this.service.key, failure);
      this.retrying = true;
      this.budgeted = BUDGETED.has(failure);
      this.next();
      return true;
    }
    if (failure !== 'status') {
      const why = `${this.tries} ${this.tries === 1 ? 'try' : 'tries'}${verdict === 'budget' ? ', retry budget exhausted' : ''}`;
      this.#giveUp(
        failure === 'timeout' ? 'UPSTREAM_TIMEOUT' : 'UPSTREAM_UNREACHABLE',
        failure === 'timeout'
          ? `${this.service.key} did not answer within ${this.f.deps.settings.retries.perTryTimeout} ms (${why})`
          : `could not reach ${this.service.key} (${failure}, ${why})`,
      );
    }
    return false;
  }

  /**
   * No socket for the try: the process is out of descriptors. Every endpoint would
   * need one too, so nothing is retried, and the endpoint is not blamed.
   */
  exhausted(err: Error): void {
    this.f.deps.exhaustion?.note('upstream_connect', err);
    this.#giveUp(
      'RESOURCE_EXHAUSTED',
      `out of file descriptors: no connection to ${this.service.key} could be opened`,
    );
  }

  #mayRetry(failure: Failure | 'status'): 'retry' | 'no' | 'budget' {
    if (this.clientGone || this.tries > this.f.deps.settings.retries.attempts) return 'no';
    if (this.bodyStarted) return 'no';
    if (BUDGETED.has(failure) && !this.idempotent) return 'no';
    // The budget holds back retries of answers a loaded upstream gives (5xx, slowness),
    // which would pile more load on it. A refused or reset connection is a dead
    // endpoint: retrying elsewhere adds nothing to it, and is what failover is.
    if (BUDGETED.has(failure) && !this.f.retryAllowed(this.load)) {
      this.f.deps.stats.budgetExhausted++;
      return 'budget';
    }
    // Health may have changed since the plan was made: a fresh plan for the retry.
    const svc = this.f.deps.catalog.current().services.get(this.service.key) ?? this.service;
    this.plan = this.f.deps.router.plan(svc, this.locality);
    return 'retry';
  }

  #giveUp(code: ErrorCode, detail: string): void {
    this.finish();
    this.observe(undefined, ERROR_TABLE[code].http);
    if (!this.clientGone) this.f.fail(this.res, code, detail);
  }

  /** Tells the observer how the request ended; no target: fedgate answered itself. */
  observe(target: Target | undefined, status: number): void {
    const o = this.f.deps.observer;
    if (!o) return;
    o.request({
      service: this.service.key,
      cluster: target?.cluster ?? '',
      zone: target?.endpoint.locality.zone ?? '',
      tier: (target && tierScopeOf(this.plan, target.id)) ?? '',
      status,
      seconds: (performance.now() - this.started) / 1000,
      method: this.req.method ?? '',
      target: this.req.url ?? '',
      client: this.req.socket.remoteAddress ?? '',
      tries: this.tries,
      endpoint: target?.address ?? '',
    });
  }

  finish(): void {
    if (this.done) return;
    this.done = true;
    this.f.endLoad(this.service.key, this.load);
  }

  #onClose = (): void => {
    if (this.res.writableFinished) return;
    this.clientGone = true;
    this.f.deps.stats.responses.aborted++;
    this.#waiting?.abort();
    this.attempt?.abort(new Error('client went away'));
    this.finish();
  };
}

/** One try: undici's handler for a dispatch to one endpoint. */
class Attempt implements Dispatcher.DispatchHandler {
  readonly ex: Exchange;
  readonly ep: UpstreamEndpoint;
  readonly target: Target;
  controller: Dispatcher.DispatchController | undefined;
  timer: NodeJS.Timeout | undefined;
  /** The response is being thrown away (a retry took over). */
  discard = false;
  responded = false;
  status = 0;
  released = false;
  /** Retries in flight count against the service's budget. */
  readonly countsAsRetry: boolean;
  #pendingAbort: Error | undefined;

  constructor(ex: Exchange, ep: UpstreamEndpoint, target: Target) {
    this.ex = ex;
    this.ep = ep;
    this.target = target;
    this.countsAsRetry = ex.retrying && ex.budgeted;
    if (this.countsAsRetry) ex.load.retries++;
  }

  /** Starts the per-try timer: at dispatch without a body, once the body is sent with one. */
  arm(): void {
    const ms = this.ex.f.deps.settings.retries.perTryTimeout;
    if (ms > 0 && !this.responded && !this.released) {
      this.timer = setTimeout(() => this.abort(new PerTryTimeout(ms)), ms);
    }
  }

  abort(reason: Error): void {
    if (this.controller) this.controller.abort(reason);
    else this.#pendingAbort = reason;
  }

  #release(): void {
    if (this.released) return;
    this.released = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.countsAsRetry) this.ex.load.retries--;
    this.ex.f.deps.upstreams.release(this.ep);
  }

  #report(outcome: Outcome): void {
    this.ex.f.deps.health.report(this.ex.service.key, this.target.id, outcome);
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    if (this.#pendingAbort) controller.abort(this.#pendingAbort);
  }

  onRequestSent(): void {
    if (this.ex.hasBody) this.arm();
  }

  onResponseStart(
    controller: Dispatcher.DispatchController,
    statusCode: number,
    headers: Record<string, string | string[] | undefined>,
    statusMessage?: string,
  ): void {
    if (statusCode < 200) return; // 1xx informational: the final answer follows
    if (this.timer) clearTimeout(this.timer);
    this.#report({ origin: 'upstream', status: statusCode });
    const ex = this.ex;
    if (ex.clientGone) {
      controller.abort(new Error('client went away'));
      return;
    }
    if (RETRY_STATUSES.has(statusCode) && ex.failed('status')) {
      this.discard = true;
      return;
    }
    this.responded = true;
    this.status = statusCode;
    const res = ex.res;
    const out = downstreamResponseHeaders(headers);
    const h1 = isHttp1(res);
    if (h1 && ex.f.deps.draining(res.socket)) out.connection = 'close';
    if (h1 && statusMessage) res.writeHead(statusCode, statusMessage, out);
    else res.writeHead(statusCode, out);
    ex.f.count(statusCode);
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.discard) return;
    const res = this.ex.res;
    if (!res.write(chunk)) {
      controller.pause();
      res.once('drain', () => controller.resume());
    }
  }

  onResponseEnd(): void {
    this.#release();
    if (this.discard) return;
    this.ex.finish();
    this.ex.res.end();
    this.ex.observe(this.target, this.status);
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    this.#release();
    const ex = this.ex;
    if (this.discard || ex.clientGone) return;
    if (this.responded) {
      // Too late to retry: cut the client's response short rather than end it as if whole.
      ex.finish();
      ex.res.destroy(err);
      return;
    }
    if (isDescriptorExhaustion(err)) {
      ex.exhausted(err);
      return;
    }
    const failure = classify(err);
    this.#report({ origin: 'local', failure });
    ex.failed(failure);
  }
}

function classify(err: Error): Failure {
  if (err instanceof PerTryTimeout) return 'timeout';
  const code = (err as NodeJS.ErrnoException).code;
  if (code !== undefined && CONNECT_ERRORS.has(code)) return 'connect';
  const cause = (err as { cause?: NodeJS.ErrnoException }).cause;
  if (cause?.code !== undefined && CONNECT_ERRORS.has(cause.code)) return 'connect';
  return 'reset';
}
