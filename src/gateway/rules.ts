// A route's rules compiled once, whatever it attaches to: each backendRef resolved
// (refs.ts), durations parsed, filters checked. A rule fedgate cannot serve as
// written (a filter type it does not know, RequestRedirect with URLRewrite, a
// duration that does not parse) is dropped; the route stays Accepted with
// PartiallyInvalid when other rules remain, and is not Accepted when none does.
// An unresolvable backendRef keeps its place and weight (its share answers 500).
import type {
  GRPCRouteRecord,
  HTTPBackendRef,
  HTTPRouteFilter,
  HTTPRouteMatch,
  HTTPRouteRecord,
  HTTPRouteRule,
  ReferenceGrantRecord,
} from '../watch/gateway-records.ts';
import type { AttachedRule, ResolvedBackend, RouteId } from './attached.ts';
import { parseGatewayDuration } from './durations.ts';
import type { FederatedServiceLookup } from './inputs.ts';
import { resolveBackend } from './refs.ts';

export interface RuleProblem {
  readonly reason: string;
  readonly message: string;
}

export interface CompiledRules {
  readonly route: RouteId;
  /** The rules served, in the route's order. */
  readonly rules: readonly AttachedRule[];
  /** Rules dropped, by index, with why (Accepted's UnsupportedValue / IncompatibleFilters). */
  readonly dropped: readonly (RuleProblem & { readonly index: number })[];
  /** Every reference that did not resolve (ResolvedRefs False), in rule order. */
  readonly unresolved: readonly RuleProblem[];
}

/** One route kind's rule compiler. */
export type RulesCompiler<R> = (
  route: R,
  services: FederatedServiceLookup,
  grants: readonly ReferenceGrantRecord[],
) => CompiledRules;

const DEFAULT_MATCH: HTTPRouteMatch = {
  path: { type: 'PathPrefix', value: '/' },
  headers: [],
  queryParams: [],
};

interface RefContext {
  readonly route: RouteId;
  readonly services: FederatedServiceLookup;
  readonly grants: readonly ReferenceGrantRecord[];
}

/** Why the filters cannot be served as written, or undefined. */
function filterProblem(filters: readonly HTTPRouteFilter[]): RuleProblem | undefined {
  for (const f of filters) {
    if (f.type === 'Unknown') {
      return { reason: 'UnsupportedValue', message: `filter type ${f.written} is not supported` };
    }
  }
  const has = (t: HTTPRouteFilter['type']): boolean => filters.some((f) => f.type === t);
  if (has('RequestRedirect') && has('URLRewrite')) {
    return {
      reason: 'IncompatibleFilters',
      message: 'RequestRedirect and URLRewrite cannot be combined',
    };
  }
  return undefined;
}

/** References inside filters: ExtensionRefs (fedgate knows none) and mirror backends. */
function filterRefProblems(filters: readonly HTTPRouteFilter[], ctx: RefContext): RuleProblem[] {
  const out: RuleProblem[] = [];
  for (const f of filters) {
    if (f.type === 'ExtensionRef') {
      const { group, kind, name } = f.extensionRef;
      out.push({
        reason: 'InvalidKind',
        message: `ExtensionRef ${kind}.${group} ${name} is not supported: requests it applies to answer 500`,
      });
    } else if (f.type === 'RequestMirror') {
      const ref: HTTPBackendRef = { ...f.requestMirror.backendRef, weight: 1, filters: [] };
      const mirror = resolveBackend(ref, ctx.route, ctx.services, ctx.grants);
      if (mirror.problem !== undefined)
        out.push({ ...mirror.problem, message: `mirror: ${mirror.problem.message}` });
    }
  }
  return out;
}

function durationsOf(
  rule: HTTPRouteRule,
): { ok: Pick<AttachedRule, 'timeouts' | 'retry'> } | { problem: RuleProblem } {
  const bad = (field: string, text: string) => ({
    problem: {
      reason: 'UnsupportedValue',
      message: `${field} ${JSON.stringify(text)} is not a Gateway API duration`,
    },
  });
  let timeouts: { requestMs?: number; backendRequestMs?: number } | undefined;
  if (rule.timeouts !== undefined) {
    timeouts = {};
    const { request, backendRequest } = rule.timeouts;
    if (request !== undefined) {
      const ms = parseGatewayDuration(request);
      if (ms === undefined) return bad('timeouts.request', request);
      timeouts.requestMs = ms;
    }
    if (backendRequest !== undefined) {
      const ms = parseGatewayDuration(backendRequest);
      if (ms === undefined) return bad('timeouts.backendRequest', backendRequest);
      timeouts.backendRequestMs = ms;
    }
    const { requestMs, backendRequestMs } = timeouts;
    // 0s disables a timeout; otherwise the backend's share must fit in the whole.
    if (requestMs && backendRequestMs && backendRequestMs > requestMs) {
      return {
        problem: {
          reason: 'UnsupportedValue',
          message: `timeouts.backendRequest ${backendRequest} exceeds timeouts.request ${request}`,
        },
      };
    }
  }
  let retry: AttachedRule['retry'];
  if (rule.retry !== undefined) {
    const { codes, attempts, backoff } = rule.retry;
    let backoffMs: number | undefined;
    if (backoff !== undefined) {
      backoffMs = parseGatewayDuration(backoff);
      if (backoffMs === undefined) return bad('retry.backoff', backoff);
    }
    retry = {
      codes,
      ...(attempts !== undefined ? { attempts } : {}),
      ...(backoffMs !== undefined ? { backoffMs } : {}),
    };
  }
  return {
    ok: {
      ...(timeouts !== undefined ? { timeouts } : {}),
      ...(retry !== undefined ? { retry } : {}),
    },
  };
}

interface RuleShape {
  readonly name?: string;
  readonly filters: readonly HTTPRouteFilter[];
  readonly backendRefs: readonly HTTPBackendRef[];
}

function compileRules<R extends RuleShape>(
  route: RouteId,
  createdAt: number,
  rules: readonly R[],
  ctx: RefContext,
  specific: (rule: R) => { ok: Partial<AttachedRule> } | { problem: RuleProblem },
): CompiledRules {
  const out: AttachedRule[] = [];
  const dropped: (RuleProblem & { index: number })[] = [];
  const unresolved: RuleProblem[] = [];
  rules.forEach((rule, index) => {
    const allFilters = [...rule.filters, ...rule.backendRefs.flatMap((b) => b.filters)];
    const bad =
      filterProblem(rule.filters) ??
      rule.backendRefs.map((b) => filterProblem(b.filters)).find((p) => p);
    const parts = specific(rule);
    const problem = bad ?? ('problem' in parts ? parts.problem : undefined);
    if (problem !== undefined || !('ok' in parts)) {
      dropped.push({
        index,
        ...(problem ?? { reason: 'UnsupportedValue', message: 'invalid rule' }),
      });
      return;
    }
    const backends: ResolvedBackend[] = rule.backendRefs.map((b) =>
      resolveBackend(b, route, ctx.services, ctx.grants),
    );
    for (const b of backends) if (b.problem !== undefined) unresolved.push(b.problem);
    unresolved.push(...filterRefProblems(allFilters, ctx));
    out.push({
      route,
      index,
      ...(rule.name !== undefined ? { name: rule.name } : {}),
      createdAt,
      filters: rule.filters,
      backends,
      ...parts.ok,
    });
  });
  return { route, rules: out, dropped, unresolved };
}

export function compileHttpRules(
  r: HTTPRouteRecord,
  services: FederatedServiceLookup,
  grants: readonly ReferenceGrantRecord[],
): CompiledRules {
  const route: RouteId = { kind: 'HTTPRoute', namespace: r.namespace, name: r.name };
  return compileRules(route, r.createdAt, r.rules, { route, services, grants }, (rule) => {
    const d = durationsOf(rule);
    if ('problem' in d) return d;
    const http = rule.matches.length > 0 ? rule.matches : [DEFAULT_MATCH];
    return { ok: { http, ...d.ok } };
  });
}

export function compileGrpcRules(
  r: GRPCRouteRecord,
  services: FederatedServiceLookup,
  grants: readonly ReferenceGrantRecord[],
): CompiledRules {
  const route: RouteId = { kind: 'GRPCRoute', namespace: r.namespace, name: r.name };
  return compileRules(route, r.createdAt, r.rules, { route, services, grants }, (rule) => ({
    ok: { grpc: rule.matches },
  }));
}
