// Gateway API routes in the proxy: the matchers of the RouteTables handed over last
// (setRoutes swaps them whole, so a request sees one table or the next, never a
// mix), and what a matched rule makes of a request before Host routing would
// have: a redirect, a 500 for a backend that cannot be used, or a federated
// service with the path, headers and mirrors its filters give. A host with no
// matching rule keeps Host routing.
import type { FederatedService, Snapshot } from '../catalog/model.ts';
import type { AttachedRule, ResolvedBackend, RouteTables } from '../gateway/attached.ts';
import { chooseBackend, mirrors, modifiedPath, redirectLocation } from '../gateway/filters.ts';
import {
  ListenerMatcher,
  type MatchExplained,
  type MatchRequest,
  type RuleMatch,
} from '../gateway/match.ts';
import { hostPort } from '../host-port.ts';
import type { HeaderModifier, HTTPRouteFilter } from '../watch/gateway-records.ts';

/** What a request routed by a rule carries to its tries and its answer. */
export interface GatewayRouted {
  /** `namespace/name`: the `route` label. */
  readonly route: string;
  readonly rule: AttachedRule;
  readonly backend: ResolvedBackend;
  /** In order: the rule's, then the backend's (a URLRewrite hostname is a set of Host). */
  readonly requestHeaders: readonly HeaderModifier[];
  readonly responseHeaders: readonly HeaderModifier[];
  /** Services this request is mirrored to (chosen by percent or fraction already). */
  readonly mirrors: readonly string[];
}

export type GatewayDecision =
  | {
      readonly kind: 'redirect';
      readonly route: string;
      readonly status: number;
      readonly location: string;
    }
  | { readonly kind: 'invalid'; readonly route: string; readonly detail: string }
  | {
      readonly kind: 'backend';
      readonly routed: GatewayRouted;
      readonly service: FederatedService;
      /** The path to send, with its query: rewritten or as it came. */
      readonly path: string;
    };

/** Where and how the request came in, for a redirect's Location. */
export interface Arrival {
  readonly scheme: 'http' | 'https';
  readonly listenerPort: number;
}

const LISTEN = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/;

/** A listen address as the listeners key it (`host-port.ts`), so tables and listeners agree. */
export function listenerKey(address: string): string {
  const m = LISTEN.exec(address);
  return m ? hostPort({ host: m[1] ?? m[2] ?? '', port: Number(m[3]) }) : address;
}

export const routeLabel = (r: AttachedRule): string => `${r.route.namespace}/${r.route.name}`;

export class GatewayRoutes {
  #matchers = new Map<string, ListenerMatcher>();

  /**
   * New tables: every listener's matchers built (hosts whose rules did not change taken
   * over from the matcher before), then swapped in at once.
   */
  set(tables: RouteTables): void {
    const next = new Map<string, ListenerMatcher>();
    for (const t of tables.listeners) {
      const key = listenerKey(t.address);
      next.set(key, new ListenerMatcher(t, this.#matchers.get(key)));
    }
    this.#matchers = next;
  }

  get empty(): boolean {
    return this.#matchers.size === 0;
  }

  matcher(listener: string): ListenerMatcher | undefined {
    return this.#matchers.get(listener);
  }

  /** Patterns that did not compile, by listener. */
  problems(): { listener: string; route: string; rule: number; message: string }[] {
    return [...this.#matchers].flatMap(([listener, m]) =>
      m.problems.map((p) => ({ listener, ...p })),
    );
  }

  explain(listener: string, req: MatchRequest): MatchExplained | undefined {
    return this.#matchers.get(listener)?.explain(req);
  }

  /** The rule a request takes on `listener`, or undefined: Host routing. */
  match(listener: string, req: MatchRequest): RuleMatch | undefined {
    return this.#matchers.get(listener)?.match(req);
  }
}

const UNSUPPORTED = (f: HTTPRouteFilter): string =>
  f.type === 'Unknown' ? `filter type ${f.written}` : `filter ${f.type}`;

interface Applied {
  requestHeaders: HeaderModifier[];
  responseHeaders: HeaderModifier[];
  mirrors: string[];
  path: string;
}

/**
 * A filter list applied in order: a redirect, or why the rule cannot serve, ends it;
 * otherwise `into` gathers the headers, path and mirrors.
 */
function applyFilters(
  filters: readonly HTTPRouteFilter[],
  into: Applied,
  m: RuleMatch,
  req: MatchRequest,
  arrival: Arrival,
  random: () => number,
): Extract<GatewayDecision, { kind: 'redirect' | 'invalid' }> | undefined {
  const route = routeLabel(m.rule);
  for (const f of filters) {
    switch (f.type) {
      case 'RequestHeaderModifier':
        into.requestHeaders.push(f.requestHeaderModifier);
        break;
      case 'ResponseHeaderModifier':
        into.responseHeaders.push(f.responseHeaderModifier);
        break;
      case 'RequestRedirect': {
        const r = f.requestRedirect;
        const from = {
          scheme: arrival.scheme,
          host: req.host,
          listenerPort: arrival.listenerPort,
          path: req.path,
          search: req.query === '' ? '' : `?${req.query}`,
        };
        return {
          kind: 'redirect',
          route,
          // 302 is the CRD's default, should a record come without it.
          status: r.statusCode ?? 302,
          location: redirectLocation(from, r, m.prefix),
        };
      }
      case 'URLRewrite': {
        const u = f.urlRewrite;
        if (u.path) into.path = modifiedPath(into.path, u.path, m.prefix);
        if (u.hostname !== undefined) {
          into.requestHeaders.push({
            set: [{ name: 'host', value: u.hostname }],
            add: [],
            remove: [],
          });
        }
        break;
      }
      case 'RequestMirror': {
        const mm = f.requestMirror;
        if (mirrors(mm, random)) {
          into.mirrors.push(
            `${mm.backendRef.namespace ?? m.rule.route.namespace}/${mm.backendRef.name}`,
          );
        }
        break;
      }
      default:
        return {
          kind: 'invalid',
          route,
          detail: `route ${route} uses ${UNSUPPORTED(f)}, which fedgate does not implement`,
        };
    }
  }
  return undefined;
}

/**
 * What a matched rule makes of a request: its filters in order, then a backend by
 * weight and that backend's filters. 500 (`invalid`) when no backend has weight,
 * the chosen one cannot be used, or its service is not in the catalog.
 */
export function decide(
  m: RuleMatch,
  req: MatchRequest,
  arrival: Arrival,
  snapshot: Snapshot,
  random: () => number,
): GatewayDecision {
  const route = routeLabel(m.rule);
  const applied: Applied = { requestHeaders: [], responseHeaders: [], mirrors: [], path: req.path };
  const ended = applyFilters(m.rule.filters, applied, m, req, arrival, random);
  if (ended) return ended;
  const backend = chooseBackend(m.rule.backends, random);
  if (!backend) {
    const detail =
      m.rule.backends.length === 0
        ? `route ${route} rule ${m.rule.index} has no backend`
        : `every backend of route ${route} rule ${m.rule.index} has weight 0`;
    return { kind: 'invalid', route, detail };
  }
  if (backend.problem || backend.serviceKey === undefined) {
    const why = backend.problem
      ? `${backend.problem.reason}: ${backend.problem.message}`
      : 'names no service';
    return { kind: 'invalid', route, detail: `a backend of route ${route} cannot be used: ${why}` };
  }
  const endedByBackend = applyFilters(backend.filters, applied, m, req, arrival, random);
  if (endedByBackend) return endedByBackend;
  const service = snapshot.services.get(backend.serviceKey);
  if (!service) {
    return {
      kind: 'invalid',
      route,
      detail: `route ${route} names ${backend.serviceKey}, which is no federated service`,
    };
  }
  return {
    kind: 'backend',
    service,
    path: req.query === '' ? applied.path : `${applied.path}?${req.query}`,
    routed: {
      route,
      rule: m.rule,
      backend,
      requestHeaders: applied.requestHeaders,
      responseHeaders: applied.responseHeaders,
      mirrors: applied.mirrors,
    },
  };
}
