// Hand-built attached rules for tests (match, filters, the proxy's end-to-end
// tests): what route compilation would hand over, with the CRDs' defaults.

import type { AttachedRule, ResolvedBackend, RouteTables } from '../../src/gateway/attached.ts';
import type {
  GRPCRouteMatch,
  HTTPRouteFilter,
  HTTPRouteMatch,
  StringMatch,
} from '../../src/watch/gateway-records.ts';

export interface HttpMatchSpec {
  readonly path?: HTTPRouteMatch['path'];
  readonly method?: string;
  readonly headers?: Record<string, string> | readonly StringMatch[];
  readonly query?: Record<string, string> | readonly StringMatch[];
}

const exacts = (m: Record<string, string> | readonly StringMatch[] | undefined): StringMatch[] =>
  Array.isArray(m)
    ? [...(m as readonly StringMatch[])]
    : Object.entries(m ?? {}).map(([name, value]) => ({ type: 'Exact' as const, name, value }));

/** An HTTPRoute match with the CRD's defaults (PathPrefix '/'). */
export function httpMatch(s: HttpMatchSpec = {}): HTTPRouteMatch {
  return {
    path: s.path ?? { type: 'PathPrefix', value: '/' },
    headers: exacts(s.headers),
    queryParams: exacts(s.query),
    ...(s.method ? { method: s.method } : {}),
  };
}

/** A backend naming a federated service, weight 1 unless given. */
export function backend(
  serviceKey: string,
  weight = 1,
  more: Partial<ResolvedBackend> = {},
): ResolvedBackend {
  return { serviceKey, weight, filters: [], ...more };
}

export interface RuleSpec {
  /** `namespace/name` of the route. */
  readonly route: string;
  readonly kind?: 'HTTPRoute' | 'GRPCRoute';
  readonly index?: number;
  readonly createdAt?: number;
  readonly matches?: readonly HTTPRouteMatch[];
  readonly grpc?: readonly GRPCRouteMatch[];
  readonly filters?: readonly HTTPRouteFilter[];
  readonly backends?: readonly ResolvedBackend[];
  readonly timeouts?: AttachedRule['timeouts'];
  readonly retry?: AttachedRule['retry'];
}

export function rule(s: RuleSpec): AttachedRule {
  const [namespace = '', name = ''] = s.route.split('/');
  const kind = s.kind ?? (s.grpc ? 'GRPCRoute' : 'HTTPRoute');
  return {
    route: { kind, namespace, name },
    index: s.index ?? 0,
    createdAt: s.createdAt ?? 0,
    ...(kind === 'HTTPRoute' ? { http: s.matches ?? [httpMatch()] } : { grpc: s.grpc ?? [] }),
    filters: s.filters ?? [],
    backends: s.backends ?? [],
    ...(s.timeouts ? { timeouts: s.timeouts } : {}),
    ...(s.retry ? { retry: s.retry } : {}),
  };
}

/** One listener's tables: hostname → rules. */
export function tables(
  address: string,
  hosts: Record<string, readonly AttachedRule[]>,
  tls = false,
): RouteTables {
  return {
    listeners: [
      {
        address,
        tls,
        hosts: Object.entries(hosts).map(([hostname, rules]) => ({ hostname, rules })),
      },
    ],
  };
}
