// /debug/explain for a request a Gateway API route would take: the listener's rules
// matched as the proxy matches them (method, path, headers), why each rule tried
// before the one taken did not match, what the rule makes of the request (a
// redirect, a 500, or a backend chosen by weight), and the service whose plan
// follows. Hosts no route covers are explained by Host alone, as before.
import type { FederatedService, Snapshot } from '../catalog/model.ts';
import type { Config } from '../config/schema.ts';
import type { AttachedRule } from '../gateway/attached.ts';
import { hostPort } from '../host-port.ts';
import { decide, type GatewayRoutes, listenerKey, routeLabel } from '../proxy/gateway.ts';

export interface RouteExplained {
  /** What /debug/explain shows under `gateway`. */
  readonly body: Record<string, unknown>;
  /** The service the chosen backend names: its plan follows. */
  readonly service?: FederatedService;
}

const ruleJson = (r: AttachedRule, match: number) => ({
  route: routeLabel(r),
  kind: r.route.kind,
  rule: r.index,
  name: r.name ?? null,
  match,
});

/** The listener explained: `listener=` (host:port as configured), else the first plain one. */
function listenerOf(config: Config, params: URLSearchParams): { key: string; tls: boolean } {
  const given = params.get('listener');
  const tls = (config.http.tls?.listen ?? []).map(hostPort);
  if (given !== null) {
    const key = listenerKey(given);
    return { key, tls: tls.includes(key) };
  }
  const plain = config.http.listen[0];
  return plain ? { key: hostPort(plain), tls: false } : { key: tls[0] ?? '', tls: true };
}

/** `header=name:value`, repeated; names lower case, as Node gives them. */
function headersOf(params: URLSearchParams): Record<string, string> {
  const out: Record<string, string> = {};
  for (const h of params.getAll('header')) {
    const colon = h.indexOf(':');
    if (colon <= 0) continue;
    const name = h.slice(0, colon).trim().toLowerCase();
    const value = h.slice(colon + 1).trim();
    out[name] = out[name] === undefined ? value : `${out[name]}, ${value}`;
  }
  return out;
}

/**
 * The route a request for `host` would take, or undefined when no route on the
 * listener covers the host (Host routing explains it). `random` picks the backend
 * as the proxy's does, so a weighted rule shows one choice and every weight.
 */
export function explainRoute(
  gateway: GatewayRoutes,
  config: Config,
  snapshot: Snapshot,
  host: string,
  params: URLSearchParams,
  random: () => number,
): RouteExplained | undefined {
  const listener = listenerOf(config, params);
  const target = params.get('path') ?? '/';
  const q = target.indexOf('?');
  const headers = headersOf(params);
  const req = {
    host,
    method: (params.get('method') ?? 'GET').toUpperCase(),
    path: q < 0 ? target : target.slice(0, q),
    query: q < 0 ? '' : target.slice(q + 1),
    headers,
    grpc: /^application\/grpc($|[+;])/.test(headers['content-type'] ?? ''),
  };
  const e = gateway.explain(listener.key, req);
  if (e?.hostname === undefined) return undefined;
  const body: Record<string, unknown> = {
    listener: listener.key,
    hostname: e.hostname,
    request: { method: req.method, path: target, headers, grpc: req.grpc },
    misses: e.misses.map((m) => ({ ...ruleJson(m.rule, m.match), why: m.why })),
    matched: e.matched ? ruleJson(e.matched.rule, e.matched.match) : null,
  };
  if (!e.matched) {
    body.decision = { kind: 'none', note: 'no rule matches: the proxy falls back to Host routing' };
    return { body };
  }
  const port = Number(/:(\d+)$/.exec(listener.key)?.[1] ?? 0);
  const arrival = {
    scheme: listener.tls ? ('https' as const) : ('http' as const),
    listenerPort: port,
  };
  const d = decide(e.matched, req, arrival, snapshot, random);
  const weights = e.matched.rule.backends.map((b) => ({
    service: b.serviceKey ?? null,
    weight: b.weight,
    problem: b.problem ?? null,
  }));
  if (d.kind === 'redirect') {
    body.decision = { kind: 'redirect', status: d.status, location: d.location };
    return { body };
  }
  if (d.kind === 'invalid') {
    body.decision = { kind: 'invalid', code: 'ROUTE_BACKEND_INVALID', detail: d.detail, weights };
    return { body };
  }
  body.decision = {
    kind: 'backend',
    chosen: d.service.key,
    weights,
    path: d.path,
    mirrors: d.routed.mirrors,
    timeouts: e.matched.rule.timeouts ?? null,
    retry: e.matched.rule.retry ?? null,
  };
  return { body, service: d.service };
}
