// /debug/gateway: the Gateway API as the last compilation left it. Gateways with
// their listeners, conditions and attached routes (the status report), and routes
// with their parents' conditions and the rules in force (the tables: a route that
// was not accepted has none), each rule with its matches in short, its backends
// and weights, and how many requests it matched (counted where the proxy matches
// it) with its share of its route's.
import type { AttachedRule, RouteTables } from '../gateway/attached.ts';
import type { Condition, StatusReport } from '../gateway/status.ts';
import type { GRPCRouteMatch, HTTPRouteMatch, StringMatch } from '../watch/gateway-records.ts';

/** What the admin reads of the Gateway API (GatewayFeed's report and tables). */
export interface GatewayApiReader {
  readonly report: StatusReport | undefined;
  readonly tables: RouteTables;
}

const conditionJson = (c: Condition) => ({
  type: c.type,
  status: c.status,
  reason: c.reason,
  message: c.message,
});

const strings = (kind: string, ms: readonly StringMatch[]): string[] =>
  ms.map((m) => `${kind} ${m.name}${m.type === 'Exact' ? '=' : '~'}${m.value}`);

/** One match in short: `PathPrefix /api`, `header x-version=v2` (`~` for a regular expression). */
export function matchText(m: HTTPRouteMatch | GRPCRouteMatch): string {
  const parts: string[] = [];
  if ('path' in m) {
    if (m.method !== undefined) parts.push(m.method);
    parts.push(`${m.path.type} ${m.path.value}`);
    parts.push(...strings('header', m.headers), ...strings('query', m.queryParams));
  } else {
    const method = m.method;
    if (method) {
      const name = `${method.service ?? '*'}/${method.method ?? '*'}`;
      parts.push(method.type === 'Exact' ? name : `~${name}`);
    }
    parts.push(...strings('header', m.headers));
  }
  return parts.length === 0 ? 'any' : parts.join(' ');
}

/** The rules in force, each once (a rule is in the tables once per listener and hostname). */
function rulesByRoute(tables: RouteTables): Map<string, AttachedRule[]> {
  const out = new Map<string, Map<number, AttachedRule>>();
  for (const l of tables.listeners) {
    for (const h of l.hosts) {
      for (const r of h.rules) {
        const key = `${r.route.kind} ${r.route.namespace}/${r.route.name}`;
        const rules = out.get(key) ?? new Map<number, AttachedRule>();
        rules.set(r.index, r);
        out.set(key, rules);
      }
    }
  }
  return new Map(
    [...out].map(([k, rules]) => [k, [...rules.values()].sort((a, b) => a.index - b.index)]),
  );
}

/**
 * The Gateways and routes as JSON. `counts`: requests by `namespace/name#index`
 * (Metrics.ruleRequests); a rule's share is of its route's counted requests, null
 * before any.
 */
export function gatewayJson(
  api: GatewayApiReader,
  counts: ReadonlyMap<string, number>,
): Record<string, unknown> {
  const objects = api.report?.objects ?? [];
  const gateways = objects.flatMap((o) =>
    o.kind === 'Gateway'
      ? [
          {
            cluster: o.cluster,
            namespace: o.namespace,
            name: o.name,
            addresses: o.status.addresses.map((a) => a.value),
            conditions: o.status.conditions.map(conditionJson),
            listeners: o.status.listeners.map((l) => ({
              name: l.name,
              attachedRoutes: l.attachedRoutes,
              conditions: l.conditions.map(conditionJson),
            })),
          },
        ]
      : [],
  );
  const rules = rulesByRoute(api.tables);
  const routes = objects.flatMap((o) => {
    if (o.kind !== 'HTTPRoute' && o.kind !== 'GRPCRoute') return [];
    const label = `${o.namespace}/${o.name}`;
    const own = rules.get(`${o.kind} ${label}`) ?? [];
    const requests = own.map((r) => counts.get(`${label}#${r.index}`) ?? 0);
    const total = requests.reduce((a, b) => a + b, 0);
    return [
      {
        kind: o.kind,
        cluster: o.cluster,
        namespace: o.namespace,
        name: o.name,
        parents: o.status.parents.map((p) => ({
          gateway: `${p.parentRef.namespace ?? o.namespace}/${p.parentRef.name}`,
          sectionName: p.parentRef.sectionName ?? null,
          conditions: p.conditions.map(conditionJson),
        })),
        rules: own.map((r, i) => ({
          index: r.index,
          name: r.name ?? null,
          matches: (r.http ?? r.grpc ?? []).map(matchText),
          filters: r.filters.map((f) => (f.type === 'Unknown' ? f.written : f.type)),
          backends: r.backends.map((b) => ({
            service: b.serviceKey ?? null,
            port: b.port ?? null,
            weight: b.weight,
            problem: b.problem ? `${b.problem.reason}: ${b.problem.message}` : null,
          })),
          requests: requests[i] ?? 0,
          share: total === 0 ? null : (requests[i] ?? 0) / total,
        })),
      },
    ];
  });
  return { gateways, routes };
}
