// Which attached rule a request takes on one fedgate listener. Built once per
// route table (matchers per hostname, every rule's matches compiled and sorted by
// the spec's precedence), then each request walks one sorted list and takes the
// first candidate whose checks all pass. The HTTP candidates are also indexed by
// path (Exact by value, PathPrefix by prefix; RegularExpression ones kept in a list),
// so a request tries only those its path can match, in the same order: at 1,000
// routes a host holds hundreds of candidates, and walking them all cost 70-100 µs a
// request on a loaded 2-core machine (bench/routes.bench.ts). explain still walks them all, to say why each failed.
//
// Hostname: an exact name beats a wildcard, a longer wildcard a shorter one, ''
// (any host) comes last; the most specific hostname that matches is the only one
// considered (as a virtual host: a path none of its rules match is not looked up
// under a wider name).
//
// HTTPRoute precedence (HTTPRouteRule.matches): Exact path, then RegularExpression
// paths (longer pattern first: fedgate's choice, the spec leaves it open), then
// PathPrefix by length; then a method match; then more header matches; then more
// query param matches; then the older route, then `namespace/name` alphabetically,
// then rule order, then match order. GRPCRoute (GRPCRouteRule.matches): more
// characters of service, then of method, then more header matches, then the same
// tie-breakers. A gRPC call is matched against GRPCRoutes first, then HTTPRoutes;
// any other request against HTTPRoutes only.
import type { GRPCRouteMatch, HTTPRouteMatch } from '../watch/gateway-records.ts';
import type { AttachedRule, ListenerTable } from './attached.ts';
import {
  type Check,
  type CompiledMatch,
  compileGrpcMatch,
  compileHttpMatch,
  type MatchRequest,
  prefixOf,
} from './conditions.ts';

export type { MatchRequest } from './conditions.ts';

/** A rule a request matched, and by which of its matches. */
export interface RuleMatch {
  readonly rule: AttachedRule;
  /** The HostRules hostname the request's host fell under. */
  readonly hostname: string;
  /** The index of the match in the rule's matches (-1: a GRPCRoute rule with none). */
  readonly match: number;
  /** The PathPrefix the request matched (ReplacePrefixMatch replaces it); absent otherwise. */
  readonly prefix?: string;
}

/** A candidate tried before the one that matched (or all, when none did), and why it failed. */
export interface RuleMiss {
  readonly rule: AttachedRule;
  readonly match: number;
  readonly why: string;
}

export interface MatchExplained {
  /** The hostname group the host fell under; undefined: none, Host routing. */
  readonly hostname: string | undefined;
  readonly matched: RuleMatch | undefined;
  readonly misses: readonly RuleMiss[];
}

/** A pattern that did not compile: its candidate never matches. */
export interface MatchProblem {
  readonly route: string;
  readonly rule: number;
  readonly message: string;
}

interface Candidate {
  /** The rule's place in its host's `rules` (candidates outlive the rule objects of one table). */
  readonly at: number;
  readonly match: number;
  readonly checks: readonly Check[];
  readonly readsQuery: boolean;
  readonly prefix: string | undefined;
}

/**
 * A candidate while its host's lists are built: its sort keys (most significant first,
 * lower first) and an HTTP match's path. Dropped once sorted and indexed: at 1,000
 * routes the keys of every candidate were a third of the matchers' heap.
 */
interface Sorting {
  readonly c: Candidate;
  readonly keys: readonly (number | string)[];
  readonly path?: HTTPRouteMatch['path'];
}

/** The HTTP candidates by what their path can match, each list in precedence order. */
interface PathIndex {
  readonly exact: ReadonlyMap<string, readonly Candidate[]>;
  readonly regex: readonly Candidate[];
  readonly prefix: ReadonlyMap<string, readonly Candidate[]>;
}

interface HostMatcher {
  readonly hostname: string;
  readonly rules: readonly AttachedRule[];
  /** Patterns of these rules that did not compile. */
  readonly problems: readonly MatchProblem[];
  readonly grpc: readonly Candidate[];
  readonly http: readonly Candidate[];
  readonly byPath: PathIndex;
}

const PATH_RANK = { Exact: 0, RegularExpression: 1, PathPrefix: 2 } as const;

/** A match compiled, with its sort keys before the tie-breakers. */
interface CompiledEntry extends CompiledMatch {
  readonly prefix: string | undefined;
  readonly keys: readonly number[];
}

// The records of routes that did not change are the same objects from one table to
// the next (the watchers keep them, compilation passes their matches on), and a route
// is under each of its hostnames: each match is compiled once, not per hostname and
// rebuild. Checks depend on the match alone.
const compiledHttp = new WeakMap<HTTPRouteMatch, CompiledEntry>();
const compiledGrpc = new WeakMap<GRPCRouteMatch, CompiledEntry>();

function httpEntry(m: HTTPRouteMatch): CompiledEntry {
  let e = compiledHttp.get(m);
  if (e === undefined) {
    const prefix = m.path.type === 'PathPrefix' ? prefixOf(m.path.value) : undefined;
    const keys = [
      PATH_RANK[m.path.type],
      m.path.type === 'Exact' ? 0 : -(prefix ?? m.path.value).length,
      m.method === undefined ? 1 : 0,
      -new Set(m.headers.map((h) => h.name.toLowerCase())).size,
      -new Set(m.queryParams.map((q) => q.name)).size,
    ];
    e = { ...compileHttpMatch(m), prefix, keys };
    compiledHttp.set(m, e);
  }
  return e;
}

function grpcEntry(m: GRPCRouteMatch): CompiledEntry {
  let e = compiledGrpc.get(m);
  if (e === undefined) {
    const keys = [
      -(m.method?.service?.length ?? 0),
      -(m.method?.method?.length ?? 0),
      -m.headers.length,
    ];
    e = { ...compileGrpcMatch(m), prefix: undefined, keys };
    compiledGrpc.set(m, e);
  }
  return e;
}

function pathIndex(http: readonly Sorting[]): PathIndex {
  const exact = new Map<string, Candidate[]>();
  const prefix = new Map<string, Candidate[]>();
  const regex: Candidate[] = [];
  const add = (map: Map<string, Candidate[]>, key: string, c: Candidate) => {
    const list = map.get(key);
    if (list) list.push(c);
    else map.set(key, [c]);
  };
  for (const { c, path } of http) {
    if (path?.type === 'Exact') add(exact, path.value, c);
    else if (c.prefix !== undefined) add(prefix, c.prefix, c);
    else regex.push(c);
  }
  return { exact, regex, prefix };
}

const routeName = (r: AttachedRule): string => `${r.route.namespace}/${r.route.name}`;

const tieBreak = (r: AttachedRule, match: number): (number | string)[] => [
  r.createdAt,
  routeName(r),
  r.index,
  match,
];

function candidatesOf(hostname: string, rules: readonly AttachedRule[]): HostMatcher {
  const problems: MatchProblem[] = [];
  const grpc: Sorting[] = [];
  const http: Sorting[] = [];
  const note = (r: AttachedRule, list: readonly string[]) => {
    for (const message of list) problems.push({ route: routeName(r), rule: r.index, message });
  };
  const candidate = (r: AttachedRule, at: number, match: number, e: CompiledEntry): Sorting => ({
    c: { at, match, checks: e.checks, readsQuery: e.readsQuery, prefix: e.prefix },
    keys: [...e.keys, ...tieBreak(r, match)],
  });
  rules.forEach((r, at) => {
    if (r.route.kind === 'GRPCRoute') {
      const matches = r.grpc ?? [];
      if (matches.length === 0) {
        grpc.push({
          c: { at, match: -1, checks: [], readsQuery: false, prefix: undefined },
          keys: [0, 0, 0, ...tieBreak(r, 0)],
        });
      }
      matches.forEach((m, i) => {
        const e = grpcEntry(m);
        note(r, e.problems);
        grpc.push(candidate(r, at, i, e));
      });
      return;
    }
    (r.http ?? []).forEach((m, i) => {
      const e = httpEntry(m);
      note(r, e.problems);
      http.push({ ...candidate(r, at, i, e), path: m.path });
    });
  });
  const order = (a: Sorting, b: Sorting): number => {
    for (let i = 0; i < a.keys.length; i++) {
      const x = a.keys[i] as number | string;
      const y = b.keys[i] as number | string;
      if (x !== y) return x < y ? -1 : 1;
    }
    return 0;
  };
  http.sort(order);
  const only = (list: Sorting[]): Candidate[] => list.map((s) => s.c);
  return {
    hostname,
    rules,
    problems,
    grpc: only(grpc.sort(order)),
    http: only(http),
    byPath: pathIndex(http),
  };
}

/** One listener's rules, compiled: `match` per request. */
export class ListenerMatcher {
  readonly address: string;
  readonly tls: boolean;
  /** The Gateway listeners' port, when they share one (a redirect's default port). */
  readonly gatewayPort: number | undefined;
  /** Patterns that did not compile (their candidates never match). */
  readonly problems: readonly MatchProblem[];
  readonly #exact = new Map<string, HostMatcher>();
  /** `*.suffix` groups by suffix (with its dot), longest first. */
  readonly #wildcards: { suffix: string; m: HostMatcher }[] = [];
  readonly #any: HostMatcher | undefined;
  readonly #byName = new Map<string, HostMatcher>();

  /**
   * `previous`: the matcher of the table before, whose hosts are taken over where
   * their rules are the same records in the same order (rebuilding a table after
   * one route changed then builds only that route's hosts).
   */
  constructor(table: ListenerTable, previous?: ListenerMatcher) {
    this.address = table.address;
    this.tls = table.tls;
    this.gatewayPort = table.gatewayPort;
    let any: HostMatcher | undefined;
    for (const h of table.hosts) {
      const before = previous ? previous.#byName.get(h.hostname) : undefined;
      // The same rules (compilation kept the host) need nothing; the same shape, new rules.
      const m =
        before === undefined
          ? candidatesOf(h.hostname, h.rules)
          : before.rules === h.rules
            ? before
            : sameShape(before.rules, h.rules)
              ? { ...before, rules: h.rules }
              : candidatesOf(h.hostname, h.rules);
      this.#byName.set(h.hostname, m);
      const name = h.hostname.toLowerCase();
      if (name === '') any = m;
      else if (name.startsWith('*.')) this.#wildcards.push({ suffix: name.slice(1), m });
      else this.#exact.set(name, m);
    }
    this.#wildcards.sort((a, b) => b.suffix.length - a.suffix.length);
    this.#any = any;
    this.problems = [...this.#byName.values()].flatMap((m) => m.problems);
  }

  /** The hostname group a host falls under: exact, then the longest wildcard, then ''. */
  #hostFor(host: string): HostMatcher | undefined {
    const exact = this.#exact.get(host);
    if (exact) return exact;
    for (const w of this.#wildcards) {
      // A wildcard stands for one label or more: `*.example.test` is not `example.test`.
      if (host.length > w.suffix.length && host.endsWith(w.suffix)) return w.m;
    }
    return this.#any;
  }

  /** Whether routes name this host (a hostname group it falls under has rules). */
  covers(host: string): boolean {
    return (this.#hostFor(host)?.rules.length ?? 0) > 0;
  }

  /** The rule a request takes, or undefined: no rule here, Host routing. */
  match(req: MatchRequest): RuleMatch | undefined {
    return this.#run(req, undefined);
  }

  /** As match, with every candidate tried before and why it failed (for /debug/explain). */
  explain(req: MatchRequest): MatchExplained {
    const misses: RuleMiss[] = [];
    const matched = this.#run(req, misses);
    return { hostname: this.#hostFor(req.host)?.hostname, matched, misses };
  }

  #run(req: MatchRequest, misses: RuleMiss[] | undefined): RuleMatch | undefined {
    const h = this.#hostFor(req.host);
    if (!h) return undefined;
    const q: QueryOnce = { req, parsed: undefined };
    if (req.grpc) {
      const m = first(h, h.grpc, q, misses);
      if (m) return m;
    }
    if (misses) return first(h, h.http, q, misses);
    const { exact, regex, prefix } = h.byPath;
    const path = req.path;
    let m = first(h, exact.get(path), q, undefined) ?? first(h, regex, q, undefined);
    if (m) return m;
    // Prefixes of the path at segment ends, longest first (as precedence orders them):
    // the path itself, before each '/', then '/'.
    m = first(h, prefix.get(path), q, undefined);
    for (let i = path.length - 1; i > 1 && !m; i--) {
      if (path.charCodeAt(i) === SLASH) m = first(h, prefix.get(path.slice(0, i)), q, undefined);
    }
    return m ?? (path === '/' ? undefined : first(h, prefix.get('/'), q, undefined));
  }
}

const SLASH = 0x2f;

/**
 * Rules that sort and match alike: the same match records (compiled checks, sort
 * keys) and the same tie-breakers, in the same order. Backends and filters may
 * differ: candidates reach them through the new rules.
 */
function sameShape(a: readonly AttachedRule[], b: readonly AttachedRule[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i] as AttachedRule;
    const y = b[i] as AttachedRule;
    if (
      x.createdAt !== y.createdAt ||
      x.index !== y.index ||
      x.route.kind !== y.route.kind ||
      x.route.namespace !== y.route.namespace ||
      x.route.name !== y.route.name ||
      !sameItems(x.http, y.http) ||
      !sameItems(x.grpc, y.grpc)
    ) {
      return false;
    }
  }
  return true;
}

function sameItems<T>(a: readonly T[] | undefined, b: readonly T[] | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** The request, and its query parsed once when a check first needs it. */
interface QueryOnce {
  readonly req: MatchRequest;
  parsed: URLSearchParams | undefined;
}

/** The first candidate of `list` whose checks all pass; `misses` gathers the others. */
function first(
  h: HostMatcher,
  list: readonly Candidate[] | undefined,
  q: QueryOnce,
  misses: RuleMiss[] | undefined,
): RuleMatch | undefined {
  if (list === undefined) return undefined;
  const req = q.req;
  for (const c of list) {
    if (c.readsQuery && q.parsed === undefined) q.parsed = new URLSearchParams(req.query);
    let why: string | undefined;
    for (const check of c.checks) {
      why = check(req, q.parsed);
      if (why !== undefined) break;
    }
    if (why === undefined) {
      const base = { rule: h.rules[c.at] as AttachedRule, hostname: h.hostname, match: c.match };
      return c.prefix === undefined ? base : { ...base, prefix: c.prefix };
    }
    misses?.push({ rule: h.rules[c.at] as AttachedRule, match: c.match, why });
  }
  return undefined;
}

/** Every listener's matcher, by the listener address as written in the configuration. */
export function listenerMatchers(
  tables: readonly ListenerTable[],
  key: (address: string) => string = (a) => a,
): Map<string, ListenerMatcher> {
  return new Map(tables.map((t) => [key(t.address), new ListenerMatcher(t)]));
}
