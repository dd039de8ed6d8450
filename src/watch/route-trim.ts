// HTTPRoute and GRPCRoute rules, trimmed: matches, filters and backendRefs with the
// CRDs' defaults applied (gateway-api v1.6.3 config/crd/standard). A value outside an
// enum the CRD enforces marks the object malformed (undefined: skipped), as a missing
// required field does; a filter type this version does not know is kept as `Unknown`,
// so compilation can say the rule is not accepted rather than drop it silently.
import type {
  BackendRef,
  GRPCBackendRef,
  GRPCRouteFilter,
  GRPCRouteMatch,
  GRPCRouteRule,
  HeaderModifier,
  HTTPBackendRef,
  HTTPRouteFilter,
  HTTPRouteMatch,
  HTTPRouteRule,
  ObjectRef,
  PathModifier,
  StringMatch,
} from './gateway-records.ts';
import { arr, type Json, obj, str } from './trim.ts';

/** A malformed part: the whole object is skipped. */
export class Malformed extends Error {}

function need<T>(v: T | undefined, what: string): T {
  if (v === undefined) throw new Malformed(what);
  return v;
}

function oneOf<T extends string>(v: unknown, allowed: readonly T[], fallback: T, what: string): T {
  if (v === undefined || v === null) return fallback;
  const hit = allowed.find((a) => a === v);
  if (hit === undefined) throw new Malformed(`${what}: ${String(v)}`);
  return hit;
}

function int(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isInteger(v) ? v : undefined;
}

/** group/kind/namespace/name with the given defaults; group '' (core) is kept as ''. */
export function objectRef(o: Json, group: string, kind: string): ObjectRef {
  const namespace = str(o.namespace);
  return {
    group: typeof o.group === 'string' ? o.group : group,
    kind: str(o.kind) ?? kind,
    ...(namespace ? { namespace } : {}),
    name: need(str(o.name), 'a reference without a name'),
  };
}

function backendRef(o: Json): BackendRef {
  const port = int(o.port);
  return {
    ...objectRef(o, '', 'Service'),
    ...(port !== undefined ? { port } : {}),
    weight: int(o.weight) ?? 1,
  };
}

function headerModifier(v: unknown): HeaderModifier {
  const m = obj(v);
  const pairs = (x: unknown) =>
    arr(x)
      .map(obj)
      .map((h) => ({
        name: need(str(h.name), 'a header without a name'),
        value: String(h.value ?? ''),
      }));
  return {
    set: pairs(m.set),
    add: pairs(m.add),
    remove: arr(m.remove).filter((h): h is string => typeof h === 'string' && h !== ''),
  };
}

function pathModifier(v: unknown): PathModifier | undefined {
  if (v === undefined || v === null) return undefined;
  const p = obj(v);
  const type = oneOf(
    p.type,
    ['ReplaceFullPath', 'ReplacePrefixMatch'],
    'ReplaceFullPath',
    'path modifier',
  );
  const full = typeof p.replaceFullPath === 'string' ? p.replaceFullPath : undefined;
  const prefix = typeof p.replacePrefixMatch === 'string' ? p.replacePrefixMatch : undefined;
  return {
    type,
    ...(full !== undefined ? { replaceFullPath: full } : {}),
    ...(prefix !== undefined ? { replacePrefixMatch: prefix } : {}),
  };
}

/** One filter of either route kind; `grpc` limits it to the types GRPCRoute has. */
function filter(o: Json, grpc: boolean): HTTPRouteFilter {
  const type = need(str(o.type), 'a filter without a type');
  switch (type) {
    case 'RequestHeaderModifier':
      return { type, requestHeaderModifier: headerModifier(o.requestHeaderModifier) };
    case 'ResponseHeaderModifier':
      return { type, responseHeaderModifier: headerModifier(o.responseHeaderModifier) };
    case 'RequestMirror': {
      const m = obj(o.requestMirror);
      const { weight: _, ...ref } = backendRef(obj(m.backendRef));
      const percent = int(m.percent);
      const f = m.fraction === undefined ? undefined : obj(m.fraction);
      return {
        type,
        requestMirror: {
          backendRef: ref,
          ...(percent !== undefined ? { percent } : {}),
          ...(f
            ? {
                fraction: {
                  numerator: need(int(f.numerator), 'a mirror fraction without a numerator'),
                  denominator: int(f.denominator) ?? 100,
                },
              }
            : {}),
        },
      };
    }
    case 'ExtensionRef': {
      const e = obj(o.extensionRef);
      return { type, extensionRef: objectRef(e, typeof e.group === 'string' ? e.group : '', '') };
    }
  }
  if (!grpc && type === 'RequestRedirect') {
    const r = obj(o.requestRedirect);
    const scheme = str(r.scheme);
    const hostname = str(r.hostname);
    const path = pathModifier(r.path);
    const port = int(r.port);
    return {
      type,
      requestRedirect: {
        ...(scheme ? { scheme } : {}),
        ...(hostname ? { hostname } : {}),
        ...(path ? { path } : {}),
        ...(port !== undefined ? { port } : {}),
        statusCode: int(r.statusCode) ?? 302,
      },
    };
  }
  if (!grpc && type === 'URLRewrite') {
    const r = obj(o.urlRewrite);
    const hostname = str(r.hostname);
    const path = pathModifier(r.path);
    return { type, urlRewrite: { ...(hostname ? { hostname } : {}), ...(path ? { path } : {}) } };
  }
  return { type: 'Unknown', written: type };
}

function filters(v: unknown): HTTPRouteFilter[] {
  return arr(v).map((f) => filter(obj(f), false));
}

function grpcFilters(v: unknown): GRPCRouteFilter[] {
  return arr(v).map((f) => filter(obj(f), true) as GRPCRouteFilter);
}

function stringMatches(v: unknown): StringMatch[] {
  return arr(v)
    .map(obj)
    .map((m) => ({
      type: oneOf(m.type, ['Exact', 'RegularExpression'], 'Exact', 'match type'),
      name: need(str(m.name), 'a header or query match without a name'),
      value: String(m.value ?? ''),
    }));
}

const MATCH_ALL: HTTPRouteMatch = {
  path: { type: 'PathPrefix', value: '/' },
  headers: [],
  queryParams: [],
};

function httpMatch(o: Json): HTTPRouteMatch {
  const p = obj(o.path);
  const method = str(o.method);
  return {
    path: {
      type: oneOf(p.type, ['Exact', 'PathPrefix', 'RegularExpression'], 'PathPrefix', 'path type'),
      value: typeof p.value === 'string' ? p.value : '/',
    },
    headers: stringMatches(o.headers),
    queryParams: stringMatches(o.queryParams),
    ...(method ? { method } : {}),
  };
}

function timeouts(v: unknown): HTTPRouteRule['timeouts'] {
  if (v === undefined || v === null) return undefined;
  const t = obj(v);
  const request = str(t.request);
  const backendRequest = str(t.backendRequest);
  return { ...(request ? { request } : {}), ...(backendRequest ? { backendRequest } : {}) };
}

function retry(v: unknown): HTTPRouteRule['retry'] {
  if (v === undefined || v === null) return undefined;
  const r = obj(v);
  const attempts = int(r.attempts);
  const backoff = str(r.backoff);
  return {
    codes: arr(r.codes).filter((c): c is number => typeof c === 'number'),
    ...(attempts !== undefined ? { attempts } : {}),
    ...(backoff ? { backoff } : {}),
  };
}

function ruleName(o: Json): { name?: string } {
  const name = str(o.name);
  return name ? { name } : {};
}

export function httpRules(spec: Json): HTTPRouteRule[] {
  // The CRD's default for an absent rules list: one rule matching every request.
  const rules = spec.rules === undefined || spec.rules === null ? [{}] : arr(spec.rules);
  return rules.map(obj).map((r) => {
    const matches = arr(r.matches).map(obj).map(httpMatch);
    const t = timeouts(r.timeouts);
    const rt = retry(r.retry);
    return {
      ...ruleName(r),
      // No matches: a prefix match on '/', matching every request (the spec's default).
      matches: matches.length > 0 ? matches : [MATCH_ALL],
      filters: filters(r.filters),
      backendRefs: arr(r.backendRefs)
        .map(obj)
        .map((b): HTTPBackendRef => ({ ...backendRef(b), filters: filters(b.filters) })),
      ...(t ? { timeouts: t } : {}),
      ...(rt ? { retry: rt } : {}),
    };
  });
}

function grpcMatch(o: Json): GRPCRouteMatch {
  const m = o.method === undefined || o.method === null ? undefined : obj(o.method);
  const service = m ? str(m.service) : undefined;
  const method = m ? str(m.method) : undefined;
  return {
    ...(m
      ? {
          method: {
            type: oneOf(m.type, ['Exact', 'RegularExpression'], 'Exact', 'method match type'),
            ...(service ? { service } : {}),
            ...(method ? { method } : {}),
          },
        }
      : {}),
    headers: stringMatches(o.headers),
  };
}

export function grpcRules(spec: Json): GRPCRouteRule[] {
  return arr(spec.rules)
    .map(obj)
    .map((r) => ({
      ...ruleName(r),
      matches: arr(r.matches).map(obj).map(grpcMatch),
      filters: grpcFilters(r.filters),
      backendRefs: arr(r.backendRefs)
        .map(obj)
        .map((b): GRPCBackendRef => ({ ...backendRef(b), filters: grpcFilters(b.filters) })),
    }));
}
