// A large Gateway API object set for the route benchmarks (routes.bench.ts, and the
// proxy benchmark's `fedgate-routes` row): one GatewayClass, one Gateway `shop/bench-edge`
// listening on port 80, and ROUTES HTTPRoutes of RULES rules each, every one sending to
// the federated service shop/web port 80. Seeded, so every run builds the same set.
// Varied as real tables are: hostnames from a pool of exact names and wildcards (1-3
// per route), Exact / PathPrefix / RegularExpression paths, header and query param
// matches, methods. Written as Kubernetes objects (what the simulator serves), trimmed
// into records by the watcher's own trimmers (what compilation reads), plus a request
// mix over those routes.
import type { MatchRequest } from '../src/gateway/conditions.ts';
import type { CompileInput } from '../src/gateway/inputs.ts';
import { seededRandom } from '../src/routing/random.ts';
import {
  GATEWAY_CONTROLLER,
  type GatewayClassRecord,
  type GatewayObjects,
  type GatewayRecord,
  type HTTPRouteRecord,
  type NamespaceRecord,
} from '../src/watch/gateway-records.ts';
import {
  trimGateway,
  trimGatewayClass,
  trimHTTPRoute,
  trimNamespace,
} from '../src/watch/gateway-trim.ts';

export const ROUTE_NAMESPACE = 'shop';
export const GATEWAY_NAME = 'bench-edge';
const API = 'gateway.networking.k8s.io/v1';
/** Where names live: no name under it is the proxy benchmark's Host, so its requests miss every hostname. */
const DOMAIN = 'bench.example.test';

// biome-ignore lint/suspicious/noExplicitAny: Kubernetes objects as the API serves them
export type KubeJson = any;

export interface RouteSetOptions {
  routes: number;
  rulesPerRoute: number;
  /** Host names in the pool; a fifth of them wildcards. */
  hosts: number;
  seed: number;
}

export const ROUTE_SET: RouteSetOptions = { routes: 1000, rulesPerRoute: 10, hosts: 100, seed: 20 };

/** The pool: `svc-N.DOMAIN` and, every fifth, `*.team-N.DOMAIN`. */
export function hostPool(n: number): string[] {
  return Array.from({ length: n }, (_, i) =>
    i % 5 === 4 ? `*.team-${i}.${DOMAIN}` : `svc-${i}.${DOMAIN}`,
  );
}

const METHODS = ['GET', 'POST', 'PUT', 'DELETE'];
/** Patterns (after `/rN`) and a path each matches (the request mix uses the sample). */
const REGEX_PATHS: [pattern: string, sample: string][] = [
  ['/api/v[0-9]+/items/[a-z0-9-]+', '/api/v2/items/abc-1'],
  ['/users/[0-9]+/orders(/[0-9]+)?', '/users/42/orders/7'],
  ['/static/.*\\.(css|js|png)', '/static/app/main.css'],
  ['/r[0-9]+/[a-z]+', '/r7/abc'],
  // Overlaps the route's Exact and PathPrefix paths: precedence decides between them.
  ['/s[0-9]+-[0-9]/.*', '/s1-0/x'],
];

const timestamp = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

/** Route `i`'s rule `j`: one match (a second one on every third rule), one backend. */
function ruleOf(i: number, j: number, random: () => number): KubeJson {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)] as T;
  const match = (k: number) => {
    const kind = random();
    const base = `/r${i}/s${j}-${k}`;
    const path =
      kind < 0.4
        ? { type: 'PathPrefix', value: random() < 0.3 ? `/r${i}` : base }
        : kind < 0.8
          ? { type: 'Exact', value: `${base}/x` }
          : { type: 'RegularExpression', value: `/r${i}${pick(REGEX_PATHS)[0]}` };
    const m: KubeJson = { path };
    if (random() < 0.4) {
      m.headers = [
        random() < 0.8
          ? { name: 'x-version', value: `v${1 + Math.floor(random() * 3)}` }
          : { type: 'RegularExpression', name: 'x-tenant', value: 't[0-9]+' },
      ];
    }
    if (random() < 0.25)
      m.queryParams = [{ name: 'page', value: String(Math.floor(random() * 5)) }];
    if (random() < 0.3) m.method = pick(METHODS);
    return m;
  };
  return {
    matches: j % 3 === 0 ? [match(0), match(1)] : [match(0)],
    backendRefs: [{ name: 'web', port: 80 }],
  };
}

/** The objects as Kubernetes would serve them (the simulator validates them on apply). */
export function routeSetObjects(o: RouteSetOptions = ROUTE_SET): KubeJson[] {
  const random = seededRandom(o.seed);
  const pool = hostPool(o.hosts);
  const created = Date.UTC(2026, 0, 1);
  const meta = (name: string, at: number, namespaced = true) => ({
    name,
    ...(namespaced && { namespace: ROUTE_NAMESPACE }),
    generation: 1,
    uid: `bench-${name}`,
    creationTimestamp: timestamp(created + at * 1000),
  });
  const objects: KubeJson[] = [
    { apiVersion: 'v1', kind: 'Namespace', metadata: meta(ROUTE_NAMESPACE, 0, false) },
    {
      apiVersion: API,
      kind: 'GatewayClass',
      metadata: meta('fedgate', 0, false),
      spec: { controllerName: GATEWAY_CONTROLLER },
    },
    {
      apiVersion: API,
      kind: 'Gateway',
      metadata: meta(GATEWAY_NAME, 1),
      spec: {
        gatewayClassName: 'fedgate',
        listeners: [{ name: 'http', port: 80, protocol: 'HTTP' }],
      },
    },
  ];
  for (let i = 0; i < o.routes; i++) {
    const hostnames = new Set<string>();
    const count = 1 + Math.floor(random() * 3);
    while (hostnames.size < count)
      hostnames.add(pool[Math.floor(random() * pool.length)] as string);
    objects.push({
      apiVersion: API,
      kind: 'HTTPRoute',
      metadata: meta(`route-${i}`, 2 + i),
      spec: {
        parentRefs: [{ name: GATEWAY_NAME }],
        hostnames: [...hostnames],
        rules: Array.from({ length: o.rulesPerRoute }, (_, j) => ruleOf(i, j, random)),
      },
    });
  }
  return objects;
}

/**
 * The objects as a client applies them to the simulator: the route set's Namespace is
 * left out (the member has it), and metadata is name and namespace (the API server
 * sets the rest).
 */
export function forApply(objects: readonly KubeJson[]): KubeJson[] {
  return objects
    .filter((o) => o.kind !== 'Namespace')
    .map((o) => ({
      ...o,
      metadata: {
        name: o.metadata.name,
        ...(o.metadata.namespace && { namespace: o.metadata.namespace }),
      },
    }));
}

/** The same objects as the watchers would hand them to compilation, read from `cluster`. */
export function routeSetRecords(objects: readonly KubeJson[], cluster = 'alpha'): GatewayObjects {
  const out = {
    gatewayClasses: [] as GatewayClassRecord[],
    gateways: [] as GatewayRecord[],
    httpRoutes: [] as HTTPRouteRecord[],
    namespaces: [] as NamespaceRecord[],
  };
  const need = <T>(r: T | undefined, o: KubeJson): T => {
    if (r === undefined) throw new Error(`route set: ${o.kind} ${o.metadata.name} did not trim`);
    return r;
  };
  for (const o of objects) {
    if (o.kind === 'Namespace') out.namespaces.push(need(trimNamespace(cluster, o), o));
    else if (o.kind === 'GatewayClass')
      out.gatewayClasses.push(need(trimGatewayClass(cluster, o), o));
    else if (o.kind === 'Gateway') out.gateways.push(need(trimGateway(cluster, o), o));
    else out.httpRoutes.push(need(trimHTTPRoute(cluster, o), o));
  }
  return { ...out, grpcRoutes: [], referenceGrants: [], secrets: [] };
}

/**
 * Route `i` (mod the count) with its first rule's first match now a PathPrefix alone, its
 * generation bumped by `edit`, trimmed: what the watcher hands on after an edit.
 */
export function editedRoute(
  objects: readonly KubeJson[],
  i: number,
  edit: number,
): HTTPRouteRecord {
  const routes = objects.filter((o) => o.kind === 'HTTPRoute');
  const o = structuredClone(routes[i % routes.length]);
  o.metadata.generation += edit;
  o.spec.rules[0].matches[0] = { path: { type: 'PathPrefix', value: `/edited-${edit}` } };
  const r = trimHTTPRoute('alpha', o);
  if (r === undefined) throw new Error('the edited route did not trim');
  return r;
}

/** A host only probeRoute names: a request for it is answered by the pod once the table is in force. */
export const PROBE_HOST = `probe.${DOMAIN}`;

/** An HTTPRoute sending every request for PROBE_HOST to shop/web. */
export function probeRoute(): KubeJson {
  return {
    apiVersion: API,
    kind: 'HTTPRoute',
    metadata: { namespace: ROUTE_NAMESPACE, name: 'bench-probe' },
    spec: {
      parentRefs: [{ name: GATEWAY_NAME }],
      hostnames: [PROBE_HOST],
      rules: [{ backendRefs: [{ name: 'web', port: 80 }] }],
    },
  };
}

/** The plain fedgate listener the Gateway's port 80 maps onto, in compilation's input. */
export const BENCH_LISTENER = '127.227.0.1:8080';

/** What compileGateways reads: the records, shop/web on port 80, port 80 mapped to BENCH_LISTENER. */
export function routeSetInput(objects: GatewayObjects): CompileInput {
  return {
    objects,
    services: (ns, name) =>
      ns === ROUTE_NAMESPACE && name === 'web'
        ? { ports: [{ name: 'http', port: 80 }] }
        : undefined,
    listeners: [{ port: 80, protocol: 'HTTP', address: BENCH_LISTENER }],
    addresses: [{ type: 'IPAddress', value: '127.227.0.1' }],
  };
}

/** The path a request takes to hit match `m` (a KubeJson match) of a rule. */
function pathFor(m: KubeJson, i: number): string {
  const p = m.path;
  if (p.type === 'Exact') return p.value;
  if (p.type === 'PathPrefix') return `${p.value}/more`;
  const sample = REGEX_PATHS.find(([pattern]) => p.value === `/r${i}${pattern}`)?.[1] ?? '/';
  return `/r${i}${sample}`;
}

/**
 * `n` requests over the route set: 90 % aimed at a route's rule (its host, one of its
 * matches' path; its header, query and method conditions met three times in four),
 * 10 % for a host no route names (Host routing). Aimed requests that miss, or that an
 * earlier rule takes, are part of the mix on purpose.
 */
export function requestMix(objects: readonly KubeJson[], n: number, seed: number): MatchRequest[] {
  const random = seededRandom(seed);
  const routes = objects.filter((o) => o.kind === 'HTTPRoute');
  const out: MatchRequest[] = [];
  for (let k = 0; k < n; k++) {
    if (random() < 0.1 || routes.length === 0) {
      out.push({
        host: `web-${k % 7}.elsewhere.test`,
        method: 'GET',
        path: '/',
        query: '',
        headers: {},
        grpc: false,
      });
      continue;
    }
    const i = Math.floor(random() * routes.length);
    const spec = routes[i].spec;
    const hostname: string = spec.hostnames[Math.floor(random() * spec.hostnames.length)];
    const host = hostname.startsWith('*.') ? `h${k % 13}${hostname.slice(1)}` : hostname;
    const rule = spec.rules[Math.floor(random() * spec.rules.length)];
    const m = rule.matches[Math.floor(random() * rule.matches.length)];
    const meet = random() < 0.75;
    const headers: Record<string, string> = {};
    for (const h of m.headers ?? [])
      headers[h.name] = meet ? (h.type === 'RegularExpression' ? 't17' : h.value) : 'other';
    const query = (m.queryParams ?? [])
      .map((q: KubeJson) => `${q.name}=${meet ? q.value : 'x'}`)
      .join('&');
    out.push({
      host,
      method: meet && m.method ? m.method : 'GET',
      path: pathFor(m, i),
      query,
      headers,
      grpc: false,
    });
  }
  return out;
}
