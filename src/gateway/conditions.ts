// One route match compiled into checks, each with the sentence explain gives when
// it fails (built once, so a miss allocates nothing). RegularExpression values are
// ECMAScript RegExps anchored to the whole value, compiled once; a pattern that
// does not compile never matches and is reported, never thrown.
import type { GRPCRouteMatch, HTTPRouteMatch, StringMatch } from '../watch/gateway-records.ts';

/** What a route matches a request by. */
export interface MatchRequest {
  /** Lower case, without port or trailing dot. */
  readonly host: string;
  readonly method: string;
  /** The path, without the query. */
  readonly path: string;
  /** The query, without its `?` ('' when none). */
  readonly query: string;
  /** Header fields by lower-case name (Node's `req.headers`). */
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  /** A gRPC call: GRPCRoutes match it by its path `/service/method`. */
  readonly grpc: boolean;
}

/** A check: undefined when the request passes it, else why not. */
export type Check = (req: MatchRequest, query: URLSearchParams | undefined) => string | undefined;

export interface CompiledMatch {
  readonly checks: readonly Check[];
  /** Patterns that did not compile. */
  readonly problems: readonly string[];
  /** Reads the query: parsed once per request, only when some check needs it. */
  readonly readsQuery: boolean;
}

/** An anchored ECMAScript RegExp, or the reason it does not compile. */
export function anchored(pattern: string): RegExp | string {
  try {
    return new RegExp(`^(?:${pattern})$`);
  } catch (e) {
    return `invalid regular expression ${JSON.stringify(pattern)}: ${(e as Error).message}`;
  }
}

const REGEX_SYNTAX = new Set('\\^$.|?*+()[]{}');

/**
 * What every value an anchored pattern matches starts with: its characters up to
 * the first with a meaning in a pattern (without the last one when `*`, `?` or `{`
 * may take it away). '' when an alternative could start otherwise: a `|` outside
 * any group, or a `)` closing no group of its own. A path that does not start with
 * it is turned down without running the pattern (paths dominate a request's match
 * cost: bench/routes.bench.ts).
 */
export function literalPrefix(pattern: string): string {
  let depth = 0;
  let inClass = false;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '\\') i++;
    else if (inClass) inClass = c !== ']';
    else if (c === '[') inClass = true;
    else if (c === '(') depth++;
    else if (c === ')' && --depth < 0) return '';
    else if (c === '|' && depth === 0) return '';
  }
  let end = 0;
  while (end < pattern.length && !REGEX_SYNTAX.has(pattern[end] as string)) end++;
  const next = pattern[end];
  if (next === '*' || next === '?' || next === '{') end--;
  return pattern.slice(0, Math.max(end, 0));
}

/** A PathPrefix value as it matches: without trailing slashes ('/' stays '/'). */
export function prefixOf(value: string): string {
  const v = value.replace(/\/+$/, '');
  return v === '' ? '/' : v;
}

/** PathPrefix matches whole path segments: `/foo` matches `/foo` and `/foo/bar`, not `/foobar`. */
export function pathHasPrefix(path: string, prefix: string): boolean {
  if (prefix === '/') return true;
  return path.startsWith(prefix) && (path.length === prefix.length || path[prefix.length] === '/');
}

function headerValue(
  req: MatchRequest,
  _q: URLSearchParams | undefined,
  name: string,
): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v.join(',') : v;
}

/** Header or query matches: only the first entry of each name counts (the spec's rule). */
function stringChecks(
  matches: readonly StringMatch[],
  what: 'header' | 'query param',
  read: (req: MatchRequest, q: URLSearchParams | undefined, name: string) => string | undefined,
  fold: boolean,
  problems: string[],
): Check[] {
  const seen = new Set<string>();
  const out: Check[] = [];
  for (const m of matches) {
    const name = fold ? m.name.toLowerCase() : m.name;
    if (seen.has(name)) continue;
    seen.add(name);
    if (m.type === 'RegularExpression') {
      const re = anchored(m.value);
      if (typeof re === 'string') {
        problems.push(`${what} ${m.name}: ${re}`);
        const why = `${what} ${m.name}: ${re}`;
        out.push(() => why);
        continue;
      }
      const why = `${what} ${m.name} does not match /${m.value}/`;
      out.push((req, q) => {
        const v = read(req, q, name);
        return v !== undefined && re.test(v) ? undefined : why;
      });
    } else {
      const why = `${what} ${m.name} is not ${JSON.stringify(m.value)}`;
      out.push((req, q) => (read(req, q, name) === m.value ? undefined : why));
    }
  }
  return out;
}

/** An HTTPRoute match's checks: path, method, headers, query params, in that order. */
export function compileHttpMatch(m: HTTPRouteMatch): CompiledMatch {
  const problems: string[] = [];
  const checks: Check[] = [];
  const { type, value } = m.path;
  if (type === 'Exact') {
    const why = `path is not ${JSON.stringify(value)} (Exact)`;
    checks.push((req) => (req.path === value ? undefined : why));
  } else if (type === 'PathPrefix') {
    const prefix = prefixOf(value);
    if (prefix !== '/') {
      const why = `path is not under ${JSON.stringify(prefix)} (PathPrefix)`;
      checks.push((req) => (pathHasPrefix(req.path, prefix) ? undefined : why));
    }
  } else {
    const re = anchored(value);
    if (typeof re === 'string') {
      problems.push(`path: ${re}`);
      const why = `path: ${re}`;
      checks.push(() => why);
    } else {
      const why = `path does not match /${value}/ (RegularExpression)`;
      const literal = literalPrefix(value);
      checks.push((req) => (req.path.startsWith(literal) && re.test(req.path) ? undefined : why));
    }
  }
  if (m.method !== undefined) {
    const method = m.method;
    const why = `method is not ${method}`;
    checks.push((req) => (req.method === method ? undefined : why));
  }
  checks.push(...stringChecks(m.headers, 'header', headerValue, true, problems));
  const queryChecks = stringChecks(
    m.queryParams,
    'query param',
    (_req, q, name) => q?.get(name) ?? undefined,
    false,
    problems,
  );
  checks.push(...queryChecks);
  return { checks, problems, readsQuery: queryChecks.length > 0 };
}

/** `/service/method` of a gRPC call's path, or undefined when it is not that shape. */
export function grpcMethodOf(path: string): { service: string; method: string } | undefined {
  const slash = path.indexOf('/', 1);
  if (path[0] !== '/' || slash < 0) return undefined;
  return { service: path.slice(1, slash), method: path.slice(slash + 1) };
}

/** A GRPCRoute match's checks: service and method, then headers. */
export function compileGrpcMatch(m: GRPCRouteMatch): CompiledMatch {
  const problems: string[] = [];
  const checks: Check[] = [];
  const mm = m.method;
  for (const part of ['service', 'method'] as const) {
    const want = mm?.[part];
    if (want === undefined || mm === undefined) continue;
    const re = mm.type === 'RegularExpression' ? anchored(want) : undefined;
    if (typeof re === 'string') {
      problems.push(`${part}: ${re}`);
      const why = `${part}: ${re}`;
      checks.push(() => why);
      continue;
    }
    const why = re ? `${part} does not match /${want}/` : `${part} is not ${JSON.stringify(want)}`;
    checks.push((req) => {
      const got = grpcMethodOf(req.path)?.[part];
      if (got === undefined) return why;
      return (re ? re.test(got) : got === want) ? undefined : why;
    });
  }
  checks.push(...stringChecks(m.headers, 'header', headerValue, true, problems));
  return { checks, problems, readsQuery: false };
}
