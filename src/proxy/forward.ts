// The proxy's request path, put together: an HTTP/1.1 request waits for the one
// before it on its connection (pipeline.ts), is checked (CONNECT, header count,
// what makes it malformed or unsendable: request-problem.ts), routed (route.ts),
// and sent through the attempt loop (attempts.ts) by a carrier: dispatch.ts for
// plain requests, upgrade.ts for upgrades.
import type { ServerHttp2Session } from 'node:http2';
import type { Duplex } from 'node:stream';
import type { FederatedService, Snapshot } from '../catalog/model.ts';
import { type ErrorCode, grpcStatusFor, httpStatusFor } from '../errors.ts';
import type { Outcome } from '../health/outlier.ts';
import type { ExhaustionSink } from '../observe/exhaustion.ts';
import type { Logger } from '../observe/log.ts';
import type { Router } from '../routing/router.ts';
import {
  isHttp1,
  type ProxyRequest,
  type ProxyResponse,
  rawError,
  rawRedirect,
  sendError,
  sendRedirect,
} from './answers.ts';
import { Exchange } from './attempts.ts';
import type { BackendTlsSource } from './backend-tls.ts';
import type { Carrier } from './carrier.ts';
import { ClientShares } from './clients.ts';
import { RequestCarrier, type RequestHooks } from './dispatch.ts';
import type { GatewayRoutes } from './gateway.ts';
import { type GrpcCall, grpcCall } from './grpc.ts';
import { noteClientReset } from './h2-sessions.ts';
import type { HostTable } from './hosts.ts';
import { type MirrorResult, Mirrors } from './mirror.ts';
import type { ProxyObserver } from './observer.ts';
import { RetryBudget } from './picks.ts';
import { MAX_PIPELINED, Pipelines } from './pipeline.ts';
import { requestProblem } from './request-problem.ts';
import {
  entry,
  type ForwardSettings,
  headerCount,
  type RoutedRequest,
  type RouteRedirect,
  Routes,
} from './route.ts';
import { routeLoopDeps } from './route-rules.ts';
import type { ProxyTracing } from './spans.ts';
import type { LoopDeps, Try } from './try.ts';
import { UpgradeCarrier, type UpgradeHooks } from './upgrade.ts';
import type { Upstreams } from './upstreams.ts';

export type { ProxyRequest, ProxyResponse } from './answers.ts';
export type { ForwardSettings } from './route.ts';

export interface ForwardDeps {
  readonly catalog: { current(): Snapshot };
  readonly router: Router;
  readonly health: { report(service: string, id: string, outcome: Outcome): void };
  readonly upstreams: Upstreams;
  readonly hosts: HostTable;
  readonly settings: ForwardSettings;
  readonly random: () => number;
  readonly log: Logger;
  /**
   * True while the connection this answer goes out on is draining (all are on
   * SIGTERM; a removed listener's are after a reload): it asks the client to close.
   */
  readonly draining: (socket?: unknown) => boolean;
  /** Told of every finished request and every retry (metrics). */
  readonly observer?: ProxyObserver | undefined;
  /** Told when an upstream socket could not be opened for lack of descriptors. */
  readonly exhaustion?: ExhaustionSink | undefined;
  /** Backend TLS profiles by service (backend-tls.ts); absent: none. */
  readonly backendTls?: BackendTlsSource | undefined;
  /** Gateway API routes (gateway.ts), consulted before Host routing; absent: none. */
  readonly gateway?: GatewayRoutes | undefined;
  /** Spans and trace context per request (spans.ts); absent: tracing is off. */
  readonly tracing?: ProxyTracing | undefined;
}

/** What a reload may swap under a running Forwarder. */
export type ReloadableDeps = Pick<ForwardDeps, 'hosts' | 'settings' | 'upstreams' | 'observer'> &
  Partial<Pick<ForwardDeps, 'backendTls'>>;

export class Forwarder {
  /** Replaced whole by reconfigure(); requests in flight read it as they go. */
  #deps: ForwardDeps;
  #loop: LoopDeps;
  readonly #routes: Routes;
  readonly #budget = new RetryBudget();
  /** Kept through reloads, as the budget is: places held stay counted. */
  readonly #clients: ClientShares;
  readonly #hooks: RequestHooks;
  readonly #upgradeHooks: UpgradeHooks;
  readonly #pipelines = new Pipelines();
  readonly #mirrors = new Mirrors();

  constructor(deps: ForwardDeps) {
    this.#deps = deps;
    this.#clients = new ClientShares(deps.settings.clients);
    this.#loop = loopDeps(deps, this.#clients);
    this.#routes = new Routes(deps);
    this.#hooks = {
      upstream: (t: Try) => this.#routes.upstream(t.service, t.target, t.servicePort),
      draining: (socket) => this.#deps.draining(socket),
      bodyIdleMs: () => this.#deps.settings.requestBodyIdle,
      sendIdleMs: () => this.#deps.settings.responseSendIdle,
      answerHoldMs: () => this.#deps.settings.retries.grpcAnswerHold ?? 0,
      fail: (res, code, detail, close, grpc) => this.#fail(res, code, detail, close, grpc),
    };
    this.#upgradeHooks = {
      upstream: this.#hooks.upstream,
      tunnelIdle: (t: Try) => {
        const s = this.#deps.settings;
        return s.services[t.service.key]?.tunnelIdle ?? s.tunnelIdle;
      },
      idleClosed: (t: Try) => this.#deps.observer?.tunnelIdleClosed?.(t.service.key),
    };
  }

  /**
   * New settings, host table or upstreams (reload; the router was reconfigured
   * first). Policies are chosen again, and this replica's locality looked up again.
   */
  reconfigure(next: ReloadableDeps): void {
    this.#deps = { ...this.#deps, ...next };
    this.#clients.reconfigure(next.settings.clients);
    this.#loop = loopDeps(this.#deps, this.#clients);
    this.#routes.reconfigure(this.#deps);
  }

  readonly #loopDeps = (): LoopDeps => this.#loop;

  /** `listener`: the address (as configured) it came in on, whose Gateway API routes apply. */
  handle(req: ProxyRequest, res: ProxyResponse, proto: 'http' | 'https', listener?: string): void {
    if (!isHttp1(res)) {
      this.#handle(req, res, proto, listener);
      return;
    }
    const admitted = this.#pipelines.admit(req.socket, res, (go) => {
      if (go) this.#handle(req, res, proto, listener);
      else this.#rejected(req, undefined, false, undefined);
    });
    if (admitted === 'over') {
      this.#reject(
        grpcCall(req.headers),
        req,
        res,
        'TOO_MANY_PIPELINED',
        `more than ${MAX_PIPELINED} requests pipelined on one connection`,
        true,
      );
    } else if (admitted === 'dropped') this.#rejected(req, undefined, false, undefined);
  }

  #handle(
    req: ProxyRequest,
    res: ProxyResponse,
    proto: 'http' | 'https',
    listener: string | undefined,
  ): void {
    const deps = this.#deps;
    // Read once: fedgate's own answers to a gRPC call are gRPC statuses, from here on.
    const grpc = grpcCall(req.headers);
    if (grpc?.badTimeout !== undefined) {
      deps.log.debug({ value: grpc.badTimeout.slice(0, 40) }, 'malformed grpc-timeout ignored');
    }
    if (req.method === 'CONNECT') {
      this.#reject(
        grpc,
        req,
        res,
        'METHOD_NOT_ALLOWED',
        'CONNECT is not supported: fedgate is not a forward proxy',
      );
      return;
    }
    if (headerCount(req) > deps.settings.maxHeaderCount) {
      this.#reject(
        grpc,
        req,
        res,
        'HEADERS_TOO_LARGE',
        `more than ${deps.settings.maxHeaderCount} request headers`,
        true,
      );
      return;
    }
    // Before routing: a request undici would refuse is the client's fault, never an endpoint's.
    const problem = requestProblem(req);
    if (problem) {
      this.#reject(grpc, req, res, problem.code, problem.detail, true);
      return;
    }
    const r = this.#routes.resolve(req, entry(req, proto, listener), grpc !== undefined);
    if ('redirect' in r) {
      this.#redirected(req, r, false);
      sendRedirect(res, r.redirect.status, r.redirect.location, this.#deps.draining(res.socket));
      return;
    }
    if ('code' in r) {
      this.#reject(grpc, req, res, r.code, r.detail, r.code === 'BAD_REQUEST', r.route);
      return;
    }
    const tlsProblem = this.#tlsProblem(r.route.service);
    if (tlsProblem !== undefined) {
      this.#failed(req, r.route.service.key, 'UPSTREAM_TLS', false, grpc, r.gateway?.route);
      this.#fail(res, 'UPSTREAM_TLS', tlsProblem, false, grpc !== undefined);
      return;
    }
    const routed = this.#routes.route(req, r, proto);
    const carrier = new RequestCarrier(req, res, r.path, routed.headers, this.#hooks, grpc);
    if (routed.gateway) carrier.responseHeaders = routed.gateway.responseHeaders;
    const ex = this.#exchange(req, r.route.service, routed, carrier);
    // HTTP/2: a stream gone before its answer was whole, its session still up, was
    // reset by the client; the session's guard counts it.
    const session = 'stream' in req ? (req.stream.session as ServerHttp2Session) : undefined;
    carrier.onClientGone(() => {
      if (ex.cancel() && session) noteClientReset(session, ex.age());
    });
    carrier.onBodyIdle((err) => ex.bodyIdle(err));
    carrier.onSendIdle((err) => ex.sendIdle(err));
    // Before the first try, which reads the body a copy may carry.
    this.#mirror(req, carrier, r.path, routed);
    ex.start();
  }

  #exchange(
    req: ProxyRequest,
    service: FederatedService,
    routed: RoutedRequest,
    carrier: Carrier,
  ): Exchange {
    return new Exchange(this.#loopsOf(routed), this.#budget, service, routed, req, carrier);
  }

  /** The loop a request's tries read: the proxy's, or its rule's timeouts and retry over it. */
  #loopsOf(routed: RoutedRequest): () => LoopDeps {
    const rule = routed.gateway?.rule;
    if (!rule || (rule.timeouts?.backendRequestMs === undefined && !rule.retry))
      return this.#loopDeps;
    return () => routeLoopDeps(this.#loop, rule);
  }

  /**
   * Sends the request's mirrored copies (mirror.ts) after the real request is under
   * way: at once without a body, else once its tries have read the (small) body.
   */
  #mirror(req: ProxyRequest, carrier: RequestCarrier, path: string, routed: RoutedRequest): void {
    const keys = routed.gateway?.mirrors ?? [];
    if (keys.length === 0) return;
    const setTap = (tap: (chunk: Buffer) => void) => {
      carrier.tap = tap;
    };
    Mirrors.body(req, carrier.hasBody, setTap, (body) => {
      for (const key of keys) {
        const done = (result: MirrorResult) => this.#deps.observer?.mirrored?.(key, result);
        const target = this.#routes.mirrorTarget(key, req);
        if (target === undefined) done('failed');
        else this.#mirrors.send(target, req.method ?? 'GET', path, routed.headers, body, done);
      }
    });
  }

  /** Counts a request answered by a rule's RequestRedirect. */
  #redirected(req: ProxyRequest, r: RouteRedirect, upgrade: boolean): void {
    this.#deps.observer?.request({
      service: '',
      route: r.route,
      outcome: 'redirected',
      cluster: '',
      zone: '',
      tier: '',
      status: r.redirect.status,
      seconds: 0,
      method: req.method ?? '',
      target: req.url ?? '',
      client: req.socket?.remoteAddress ?? '',
      upgrade,
    });
  }

  /** Closes what the forwarder holds of its own (the mirrors' connections). */
  async close(): Promise<void> {
    await this.#mirrors.close();
  }

  /** An Upgrade request (WebSocket and the like): the same route and loop, over the raw socket. */
  upgrade(
    req: ProxyRequest,
    socket: Duplex,
    head: Buffer,
    proto: 'http' | 'https',
    listener?: string,
  ): void {
    socket.on('error', () => socket.destroy());
    const r = requestProblem(req) ?? this.#routes.resolve(req, entry(req, proto, listener));
    if ('redirect' in r) {
      this.#redirected(req, r, true);
      rawRedirect(socket, r.redirect.status, r.redirect.location);
      return;
    }
    if ('code' in r) {
      const outcome = r.code === 'ROUTE_BACKEND_INVALID' ? 'failed' : 'rejected';
      this.#counted(req, '', outcome, r.code, true, undefined, 'route' in r ? r.route : undefined);
      rawError(socket, r.code, r.detail);
      return;
    }
    const tlsProblem = this.#tlsProblem(r.route.service);
    if (tlsProblem !== undefined) {
      this.#failed(req, r.route.service.key, 'UPSTREAM_TLS', true, undefined, r.gateway?.route);
      rawError(socket, 'UPSTREAM_TLS', tlsProblem);
      return;
    }
    const routed = this.#routes.route(req, r, proto);
    const carrier = new UpgradeCarrier(
      req,
      socket,
      head,
      r.path,
      routed.headers,
      this.#upgradeHooks,
    );
    const ex = this.#exchange(req, r.route.service, routed, carrier);
    carrier.onClientGone(() => ex.cancel());
    ex.start();
  }

  /**
   * Fail closed: a service naming a backend TLS profile that does not exist is
   * dialled neither in clear nor over TLS.
   */
  #tlsProblem(svc: FederatedService): string | undefined {
    const problem = this.#deps.backendTls?.forService(svc)?.problem;
    return problem === undefined ? undefined : `${svc.key}: ${problem}`;
  }

  #fail(res: ProxyResponse, code: ErrorCode, detail: string, close: boolean, grpc: boolean): void {
    sendError(res, code, detail, close || this.#deps.draining(res.socket), grpc);
  }

  /** Answers a request refused before it reached a service, and counts it. */
  #reject(
    grpc: GrpcCall | undefined,
    req: ProxyRequest,
    res: ProxyResponse,
    code: ErrorCode,
    detail: string,
    close = false,
    route?: string,
  ): void {
    // A rule that cannot serve is the route's failure, not the client's.
    const outcome = code === 'ROUTE_BACKEND_INVALID' ? 'failed' : 'rejected';
    this.#counted(req, '', outcome, code, false, grpc, route);
    this.#fail(res, code, detail, close, grpc !== undefined);
  }

  /** Counts a request refused before routing; no code: dropped unanswered (status 0). */
  #rejected(
    req: ProxyRequest,
    code: ErrorCode | undefined,
    upgrade: boolean,
    grpc: GrpcCall | undefined,
  ): void {
    this.#counted(req, '', 'rejected', code, upgrade, grpc);
  }

  /** Counts a request to a service that fedgate answered before any try. */
  #failed(
    req: ProxyRequest,
    service: string,
    code: ErrorCode,
    upgrade: boolean,
    grpc: GrpcCall | undefined,
    route?: string,
  ): void {
    this.#counted(req, service, 'failed', code, upgrade, grpc, route);
  }

  #counted(
    req: ProxyRequest,
    service: string,
    outcome: 'rejected' | 'failed',
    code: ErrorCode | undefined,
    upgrade: boolean,
    grpc: GrpcCall | undefined,
    route = '',
  ): void {
    this.#deps.observer?.request({
      service,
      route,
      outcome,
      cluster: '',
      zone: '',
      tier: '',
      status: code ? httpStatusFor(code) : 0,
      seconds: 0,
      method: req.method ?? '',
      target: req.url ?? '',
      client: req.socket?.remoteAddress ?? '',
      upgrade,
      ...(grpc ? { grpc: true, grpcStatus: code && grpcStatusFor(code) } : {}),
    });
  }
}

function loopDeps(d: ForwardDeps, clients: ClientShares): LoopDeps {
  return {
    catalog: d.catalog,
    router: d.router,
    health: d.health,
    upstreams: d.upstreams,
    clients,
    retries: d.settings.retries,
    observer: d.observer,
    exhaustion: d.exhaustion,
    tracing: d.tracing,
  };
}
