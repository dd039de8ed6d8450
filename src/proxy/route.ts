// Where a request goes, before its first try: host → federated service → policy
// (picker and affinity hash), the locality its plan is made for, and the service
// port HTTP goes to on each endpoint.
import type { FederatedService, Snapshot } from '../catalog/model.ts';
import type { ErrorCode } from '../errors.ts';
import { hostPort } from '../host-port.ts';
import type { Logger } from '../observe/log.ts';
import { affinityHash, type HashOn } from '../routing/affinity.ts';
import { createPicker, type Picker, type PickerKind } from '../routing/pickers.ts';
import { choosePolicy } from '../routing/policy.ts';
import type { Router } from '../routing/router.ts';
import type { Locality, Plan, Target } from '../routing/types.ts';
import type { ProxyRequest } from './answers.ts';
import type { ClientShareSettings } from './clients.ts';
import { upstreamRequestHeaders } from './headers.ts';
import { type HostRoute, type HostTable, normalizeHost } from './hosts.ts';

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
}

/** Where a request goes, from its Host or absolute-form target. */
export interface RouteTarget {
  readonly route: HostRoute;
  readonly path: string;
  readonly authority: string;
  readonly absolute: boolean;
}

/** Why a request routes nowhere: the code to answer, and the sentence that says why. */
export interface RouteMiss {
  readonly code: Extract<ErrorCode, 'BAD_REQUEST' | 'HOST_UNKNOWN'>;
  readonly detail: string;
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
}

export interface RouteDeps {
  readonly catalog: { current(): Snapshot };
  readonly router: Router;
  readonly hosts: HostTable;
  readonly settings: ForwardSettings;
  readonly random: () => number;
  readonly log: Logger;
}

export class Routes {
  #deps: RouteDeps;
  readonly #pickers = new Map<PickerKind, Picker>();
  #policies = new WeakMap<FederatedService, Policy>();
  readonly #httpPorts = new WeakMap<FederatedService, string | number>();
  readonly #origins = new WeakMap<Target, { svc: FederatedService; origin: string }>();
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

  /** Where a request goes: its host's route, or why it goes nowhere. */
  resolve(req: ProxyRequest): RouteTarget | RouteMiss {
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
    const route =
      host === undefined ? undefined : this.#deps.hosts.lookup(this.#deps.catalog.current(), host);
    // The authority the request was routed by: an absolute-form URL's, else Host's.
    if (!route) {
      return {
        code: 'HOST_UNKNOWN',
        detail: `no federated service is served at host "${authority}"`,
      };
    }
    return { route, path: url, authority, absolute };
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

  /** Routes a request to its target: the policy, plan, affinity hash and upstream headers. */
  route(req: ProxyRequest, target: RouteTarget, proto: 'http' | 'https'): RoutedRequest {
    const svc = target.route.service;
    const policy = this.policy(svc);
    const clientAddress = req.socket.remoteAddress ?? '';
    const locality = this.#locality(target.route, clientAddress);
    return {
      policy,
      locality,
      plan: this.#deps.router.plan(svc, locality),
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

  /**
   * `http://address:port` of the target's HTTP port. Kept per target (a plan's, so as
   * long-lived as the plan): the same string each time, which the endpoint's pool
   * lookup then finds by its kept hash instead of hashing a fresh one.
   */
  origin(svc: FederatedService, t: Target): string {
    const kept = this.#origins.get(t);
    if (kept?.svc === svc) return kept.origin;
    const origin = this.#originOf(svc, t);
    this.#origins.set(t, { svc, origin });
    return origin;
  }

  #originOf(svc: FederatedService, t: Target): string {
    const want = this.#httpPort(svc);
    const ports = t.endpoint.ports;
    const port =
      (typeof want === 'string' ? ports.find((p) => p.name === want) : undefined) ?? ports[0];
    const n = port?.port ?? (typeof want === 'number' ? want : 80);
    return `http://${hostPort({ host: t.address, port: n })}`;
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
