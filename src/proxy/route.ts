// Where a request goes, before its first try: host → federated service → policy
// (picker and affinity hash), the locality its plan is made for, and the service
// port, protocol and TLS settings its tries reach each endpoint with
// (backend-protocol.ts).
import type { FederatedService, Snapshot } from '../catalog/model.ts';
import type { ErrorCode } from '../errors.ts';
import { modifyFields } from '../gateway/filters.ts';
import { hostPort } from '../host-port.ts';
import type { Logger } from '../observe/log.ts';
import { affinityHash, type HashOn } from '../routing/affinity.ts';
import { createPicker, type Picker, type PickerKind } from '../routing/pickers.ts';
import { choosePolicy } from '../routing/policy.ts';
import type { Router } from '../routing/router.ts';
import type { Locality, Plan, Target } from '../routing/types.ts';
import type { ProxyRequest } from './answers.ts';
import { type BackendProtocol, chooseProtocol, proxiedPort, wireFor } from './backend-protocol.ts';
import type { BackendTlsSource } from './backend-tls.ts';
import type { ClientShareSettings } from './clients.ts';
import {
  type Arrival,
  decide,
  type GatewayRouted,
  type GatewayRoutes,
  routeLabel,
} from './gateway.ts';
import { upstreamRequestHeaders } from './headers.ts';
import { type HostRoute, type HostTable, normalizeHost } from './hosts.ts';
import type { ProxyObserver } from './observer.ts';
import type { UpstreamRoute } from './upstreams.ts';

export interface ForwardSettings {
  readonly locality: 'self' | 'client';
  readonly retries: RetrySettings;
  readonly maxHeaderCount: number;
  /** http.timeouts.requestBodyIdle: longest silence while a request body is read. */
  readonly requestBodyIdle: number;
  /** http.timeouts.responseSendIdle: longest a client may leave response bytes untaken. */
  readonly responseSendIdle: number;
  readonly picker: PickerKind;
  readonly hashOn: string | undefined;
  /** http.timeouts.tunnelIdle, ms; 0: never. */
  readonly tunnelIdle: number;
  readonly clients: ClientShareSettings;
  readonly services: Readonly<Record<string, ServiceSettings>>;
}

/** routing.services["ns/name"]: what one service overrides. */
export interface ServiceSettings {
  readonly picker?: PickerKind | undefined;
  readonly hashOn?: string | undefined;
  readonly tunnelIdle?: number | undefined;
}

export interface RetrySettings {
  readonly attempts: number;
  readonly budget: number;
  readonly minConcurrency: number;
  readonly perTryTimeout: number;
  /** gRPC statuses (numbers) a trailers-only answer is retried on; default UNAVAILABLE. */
  readonly grpcRetryOn?: ReadonlySet<number> | undefined;
  /** How long a gRPC answer is held whole before it streams (relay.ts); 0: not held. */
  readonly grpcAnswerHold?: number | undefined;
  /** HTTP statuses an answer is retried on (a Gateway API rule's retry.codes); default 502, 503, 504. */
  readonly retryOn?: ReadonlySet<number> | undefined;
  /** Wait before each retry, ms (a rule's retry.backoff); default none. */
  readonly backoffMs?: number | undefined;
  /** Retries may go to endpoints already tried once every one was (a rule with retry). */
  readonly reuseTried?: boolean | undefined;
}

/** Where a request goes, from its Host or absolute-form target. */
export interface RouteTarget {
  readonly route: HostRoute;
  readonly path: string;
  readonly authority: string;
  readonly absolute: boolean;
  /** Routed by a Gateway API rule (gateway.ts) rather than by its Host alone. */
  readonly gateway?: GatewayRouted | undefined;
}

/** Why a request routes nowhere: the code to answer, and the sentence that says why. */
export interface RouteMiss {
  readonly code: Extract<ErrorCode, 'BAD_REQUEST' | 'HOST_UNKNOWN' | 'ROUTE_BACKEND_INVALID'>;
  readonly detail: string;
  /** The Gateway API route that matched (`namespace/name`), when one did. */
  readonly route?: string;
}

/** A Gateway API rule's RequestRedirect: fedgate answers it. */
export interface RouteRedirect {
  readonly redirect: { readonly status: number; readonly location: string };
  readonly route: string;
}

/** The listener a request came in on: its Gateway API routes, and a redirect's defaults. */
export interface Entry extends Arrival {
  /** Its address as configured (host:port, port 0 kept): the RouteTables key. */
  readonly listener: string;
}

export interface Policy {
  readonly picker: Picker;
  readonly hashOn: HashOn | undefined;
}

/** A request routed: what it, plain or upgrade, takes from its route before the first try. */
export interface RoutedRequest {
  readonly policy: Policy;
  readonly locality: Locality | undefined;
  readonly plan: Plan;
  readonly hash: number | undefined;
  readonly headers: string[];
  /** The Gateway API route (`namespace/name`) it was routed by; '' or absent for Host routing. */
  readonly route?: string;
  readonly gateway?: GatewayRouted | undefined;
}

export interface RouteDeps {
  readonly catalog: { current(): Snapshot };
  readonly router: Router;
  readonly hosts: HostTable;
  readonly settings: ForwardSettings;
  readonly random: () => number;
  readonly log: Logger;
  /** Backend TLS profiles by service; absent: none (https still verified against the system CAs). */
  readonly backendTls?: BackendTlsSource | undefined;
  /** Gateway API routes, consulted before Host routing; absent: none. */
  readonly gateway?: GatewayRoutes | undefined;
  /** Told which Gateway API rule each request matched (the status page's shares). */
  readonly observer?: Pick<ProxyObserver, 'ruleMatched'> | undefined;
}

/** A service's port and protocol toward its endpoints. */
interface ServicePort {
  readonly port: string | number;
  readonly protocol: BackendProtocol;
}

export class Routes {
  #deps: RouteDeps;
  readonly #pickers = new Map<PickerKind, Picker>();
  #policies = new WeakMap<FederatedService, Policy>();
  readonly #ports = new WeakMap<FederatedService, ServicePort>();
  /** Ports a Gateway API backendRef names, by service: port number → its port and protocol. */
  readonly #named = new WeakMap<FederatedService, Map<number, ServicePort>>();
  readonly #upstreams = new WeakMap<
    Target,
    {
      svc: FederatedService;
      tlsKey: string | undefined;
      port: number | undefined;
      route: UpstreamRoute;
    }
  >();
  #selfLocality: Locality | undefined;
  /** Annotation values already warned about, so a bad one logs once. */
  readonly #warned = new Set<string>();

  constructor(deps: RouteDeps) {
    this.#deps = deps;
    this.#selfLocality = deps.router.self;
  }

  /** A reload: policies are chosen again, and this replica's locality looked up again. */
  reconfigure(deps: RouteDeps): void {
    this.#deps = deps;
    this.#policies = new WeakMap();
    this.#selfLocality = deps.router.self;
  }

  /**
   * Where a request goes: the Gateway API rule its listener's routes match (`at`),
   * else its host's route; or why it goes nowhere.
   */
  resolve(req: ProxyRequest, at?: Entry, grpc = false): RouteTarget | RouteMiss | RouteRedirect {
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
        return { code: 'BAD_REQUEST', detail: 'the request target is not a valid URL' };
      }
      if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
        return {
          code: 'HOST_UNKNOWN',
          detail: `no federated service is served over ${parsed.protocol}`,
        };
      }
      authority = parsed.host;
      url = `${parsed.pathname}${parsed.search}`;
      absolute = true;
    }
    if (authority === undefined) {
      // HTTP/1.1 requires Host (RFC 9112 §3.2); HTTP/1.0 may omit it, and names nothing then.
      return req.httpVersion === '1.1'
        ? { code: 'BAD_REQUEST', detail: 'an HTTP/1.1 request needs a Host header' }
        : { code: 'HOST_UNKNOWN', detail: 'the request names no host' };
    }
    const host = normalizeHost(authority);
    const gw = this.#deps.gateway;
    if (gw && at && host !== undefined && !gw.empty) {
      const routed = this.#byGateway(gw, req, at, host, url, grpc);
      if (routed) return { ...routed, authority, absolute };
    }
    const route =
      host === undefined ? undefined : this.#deps.hosts.lookup(this.#deps.catalog.current(), host);
    // The authority the request was routed by: an absolute-form URL's, else Host's.
    if (!route) {
      // A host routes name, but no rule of theirs took the request: say so (the spec's 404).
      const routed =
        gw && at && host !== undefined && gw.matcher(at.listener)?.covers(host) === true;
      return {
        code: 'HOST_UNKNOWN',
        detail: routed
          ? `no rule of the routes for host "${authority}" matches this request`
          : `no federated service is served at host "${authority}"`,
      };
    }
    return { route, path: url, authority, absolute };
  }

  #byGateway(
    gw: GatewayRoutes,
    req: ProxyRequest,
    at: Entry,
    host: string,
    url: string,
    grpc: boolean,
  ): Omit<RouteTarget, 'authority' | 'absolute'> | RouteMiss | RouteRedirect | undefined {
    const q = url.indexOf('?');
    const m = {
      host,
      method: req.method ?? 'GET',
      path: q < 0 ? url : url.slice(0, q),
      query: q < 0 ? '' : url.slice(q + 1),
      headers: req.headers,
      grpc,
    };
    const hit = gw.match(at.listener, m);
    if (!hit) return undefined;
    this.#deps.observer?.ruleMatched?.(routeLabel(hit.rule), hit.rule.index);
    let d: ReturnType<typeof decide>;
    try {
      // A redirect without a port keeps the Gateway listener's, which clients see.
      const gatewayPort = gw.matcher(at.listener)?.gatewayPort;
      const arrival = gatewayPort === undefined ? at : { ...at, listenerPort: gatewayPort };
      d = decide(hit, m, arrival, this.#deps.catalog.current(), this.#deps.random);
    } catch (e) {
      // A rule of a shape no check foresaw answers 500 rather than leaving the request unanswered.
      const route = `${hit.rule.route.namespace}/${hit.rule.route.name}`;
      const detail = `route ${route} could not be applied: ${(e as Error).message}`;
      this.#deps.log.warn({ route, err: e }, 'a Gateway API rule could not be applied');
      return { code: 'ROUTE_BACKEND_INVALID', detail, route };
    }
    if (d.kind === 'redirect') {
      return { redirect: { status: d.status, location: d.location }, route: d.route };
    }
    if (d.kind === 'invalid')
      return { code: 'ROUTE_BACKEND_INVALID', detail: d.detail, route: d.route };
    return { route: { service: d.service }, path: d.path, gateway: d.routed };
  }

  /** The picker and affinity: routing.services, then the annotation, then routing.picker. */
  policy(svc: FederatedService): Policy {
    let p = this.#policies.get(svc);
    if (!p) {
      const { policy, problem } = choosePolicy(svc, this.#deps.settings);
      // A bad annotation is logged once per value, not once per snapshot.
      const key = `${svc.key} ${svc.lbPolicy}`;
      if (problem !== undefined && !this.#warned.has(key)) {
        this.#warned.add(key);
        this.#deps.log.warn({ service: svc.key, value: svc.lbPolicy }, problem);
      }
      p = { picker: this.#picker(policy.picker), hashOn: policy.hashOn };
      this.#policies.set(svc, p);
    }
    return p;
  }

  #picker(kind: PickerKind): Picker {
    let p = this.#pickers.get(kind);
    if (!p) {
      p = createPicker(kind, { random: this.#deps.random });
      this.#pickers.set(kind, p);
    }
    return p;
  }

  #locality(route: HostRoute, clientAddress: string): Locality | undefined {
    if (route.locality) return route.locality;
    if (this.#deps.settings.locality === 'client') {
      return this.#deps.router.locate(clientAddress).locality;
    }
    return this.#selfLocality;
  }

  /**
   * One endpoint of service `key` and how to speak to it, picked by its policy as a
   * first try would be (a mirrored copy's); undefined when it has none to pick or is unknown.
   */
  mirrorTarget(key: string, req: ProxyRequest): UpstreamRoute | undefined {
    const svc = this.#deps.catalog.current().services.get(key);
    if (!svc) return undefined;
    const policy = this.policy(svc);
    const clientAddress = req.socket?.remoteAddress ?? '';
    const plan = this.#deps.router.plan(svc, this.#locality({ service: svc }, clientAddress));
    const hash = policy.hashOn
      ? affinityHash(policy.hashOn, { headers: req.headers, clientAddress })
      : undefined;
    const t = policy.picker.pick(plan, { hash, outstanding: () => 0 });
    return t && this.upstream(svc, t);
  }

  /** Routes a request to its target: the policy, plan, affinity hash and upstream headers. */
  route(req: ProxyRequest, target: RouteTarget, proto: 'http' | 'https'): RoutedRequest {
    const svc = target.route.service;
    const policy = this.policy(svc);
    const clientAddress = req.socket.remoteAddress ?? '';
    const locality = this.#locality(target.route, clientAddress);
    let headers = upstreamRequestHeaders(req.rawHeaders, req.headers.connection, {
      clientAddress: clientAddress.startsWith('::ffff:') ? clientAddress.slice(7) : clientAddress,
      host: target.authority,
      proto,
      replaceHost: target.absolute,
    });
    const gw = target.gateway;
    if (gw) for (const mod of gw.requestHeaders) headers = modifyFields(headers, mod);
    return {
      policy,
      locality,
      plan: this.#deps.router.plan(svc, locality),
      hash: policy.hashOn
        ? affinityHash(policy.hashOn, { headers: req.headers, clientAddress })
        : undefined,
      headers,
      route: gw?.route ?? '',
      gateway: gw,
    };
  }

  /**
   * The service port the proxy sends to and its protocol (backend-protocol.ts); a
   * backendRef's port (`want`) when the service has it, else the proxy's choice.
   */
  #servicePort(svc: FederatedService, want?: number): ServicePort {
    if (want !== undefined) {
      let byNumber = this.#named.get(svc);
      if (!byNumber) {
        byNumber = new Map();
        this.#named.set(svc, byNumber);
      }
      let named = byNumber.get(want);
      const port = named ? undefined : svc.ports.find((p) => p.port === want);
      if (port) {
        named = { port: port.name || port.port, protocol: chooseProtocol(svc, port).protocol };
        byNumber.set(want, named);
      }
      if (named) return named;
    }
    let p = this.#ports.get(svc);
    if (p === undefined) {
      const port = proxiedPort(svc.ports);
      const { protocol, unknown } = chooseProtocol(svc, port);
      // A bad annotation is logged once per value, not once per snapshot.
      const key = `${svc.key} backend-protocol ${unknown}`;
      if (unknown !== undefined && !this.#warned.has(key)) {
        this.#warned.add(key);
        this.#deps.log.warn(
          { service: svc.key, value: unknown },
          "fedgate.io/backend-protocol: unknown protocol, the port's appProtocol is used",
        );
      }
      p = { port: port ? port.name || port.port : 80, protocol };
      this.#ports.set(svc, p);
    }
    return p;
  }

  /**
   * Where and how a try reaches target `t`: its origin (`http://address:port` of the
   * service port), the protocol, and TLS. Kept per target (a plan's, so as long-lived
   * as the plan) and TLS key: the same object each time, whose strings the endpoint's
   * pool lookup hashes once.
   */
  upstream(svc: FederatedService, t: Target, port?: number): UpstreamRoute {
    const profile = this.#deps.backendTls?.forService(svc);
    const kept = this.#upstreams.get(t);
    if (kept?.svc === svc && kept.tlsKey === profile?.key && kept.port === port) return kept.route;
    const sp = this.#servicePort(svc, port);
    const route = { origin: this.#originOf(sp.port, t), wire: wireFor(sp.protocol, svc, profile) };
    this.#upstreams.set(t, { svc, tlsKey: profile?.key, port, route });
    return route;
  }

  #originOf(want: string | number, t: Target): string {
    const ports = t.endpoint.ports;
    const port =
      (typeof want === 'string' ? ports.find((p) => p.name === want) : undefined) ?? ports[0];
    const n = port?.port ?? (typeof want === 'number' ? want : 80);
    return `http://${hostPort({ host: t.address, port: n })}`;
  }
}

/** The listener a request came in on, when the listeners say (tests may not). */
export function entry(
  req: ProxyRequest,
  proto: 'http' | 'https',
  listener: string | undefined,
): Entry | undefined {
  if (listener === undefined) return undefined;
  return { listener, scheme: proto, listenerPort: req.socket?.localPort ?? 0 };
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
