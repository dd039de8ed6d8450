// The admin listener's /debug views as plain JSON: clusters with their sync state
// and watch counters, services with endpoints by zone and health, and routing
// explained. Built on request from the latest snapshot; nothing here is cached
// except the host table, which rebuilds itself per snapshot as the proxy's does.
import { isIP } from 'node:net';
import type { FederatedService, Snapshot } from '../catalog/model.ts';
import type { Config } from '../config/schema.ts';
import { describeSelf, type ResolvedSelf } from '../config/self.ts';
import type { ActiveChecker } from '../health/active.ts';
import type { TlsFailureNote } from '../health/monitor.ts';
import type { HealthStore } from '../health/store.ts';
import type { GatewayRoutes } from '../proxy/gateway.ts';
import { type HostTable, normalizeHost } from '../proxy/hosts.ts';
import type { Explanation } from '../routing/explain.ts';
import { choosePolicy } from '../routing/policy.ts';
import type { Router } from '../routing/router.ts';
import { endpointId, type Locality } from '../routing/types.ts';
import type { ResourceKind } from '../watch/records.ts';
import type { WatchStats } from '../watch/resource-watch.ts';
import { explainRoute } from './debug-routes.ts';
import { type EndpointState, endpointState } from './endpoint-state.ts';

/** What /debug/clusters reads of a ClusterWatcher. */
export interface WatchSource {
  readonly name: string;
  watchStats(): ReadonlyMap<ResourceKind, WatchStats>;
  readonly lastContactAt?: number | undefined;
}

/** What the /debug builders read: a subset of AdminContext. */
export interface DebugSources {
  readonly config: Config;
  readonly router: Router;
  readonly health: {
    readonly store: HealthStore;
    readonly active?: Pick<ActiveChecker, 'serviceCheck'> | undefined;
    /** Each endpoint's last failed TLS handshake, as the proxy reported it. */
    readonly tlsFailures?: (service: string) => ReadonlyMap<string, TlsFailureNote> | undefined;
  };
  readonly watchers?: readonly WatchSource[] | undefined;
  /** The proxy's Gateway API routes (ProxyServer.gateway); absent: Host routing only. */
  readonly gateway?: GatewayRoutes | undefined;
  /** How this replica's locality was found (src/config/self.ts). */
  readonly selfFrom?: ResolvedSelf | undefined;
  /** What picks a weighted backend for explain (default Math.random). */
  readonly random?: (() => number) | undefined;
}

export type StateCounts = Record<EndpointState, number>;

const iso = (ms: number | undefined): string | null =>
  ms === undefined ? null : new Date(ms).toISOString();

function zeroCounts(): StateCounts {
  return { ready: 0, 'not-ready': 0, terminating: 0, ejected: 0, 'check-failing': 0 };
}

/** This replica's locality, as the router uses it (self.node and self.cluster left out). */
const selfOf = (config: Config): Locality => {
  const { region, zone, subzone } = config.self;
  return { region, zone, subzone };
};

/** Where each field of self came from (env, node, cluster, config) and the Node read. */
function selfFromJson(src: DebugSources): unknown {
  const r = src.selfFrom;
  if (!r) return null;
  return {
    ...r.from,
    node: r.node ? `${r.node.cluster}/${r.node.name}` : null,
    summary: describeSelf(r),
  };
}

// ---- /debug/clusters ------------------------------------------------------------

export function clustersJson(src: DebugSources, snapshot: Snapshot, now: number): unknown {
  const watchers = new Map((src.watchers ?? []).map((w) => [w.name, w]));
  return {
    now: iso(now),
    catalogVersion: snapshot.version,
    federation: { name: src.config.federation.name, domain: src.config.federation.domain },
    self: selfOf(src.config),
    selfFrom: selfFromJson(src),
    clusters: src.config.clusters.map((c) => {
      const s = snapshot.clusters.get(c.name);
      const w = watchers.get(c.name);
      return {
        name: c.name,
        region: c.region ?? null,
        weight: c.weight,
        state: s?.state ?? 'syncing',
        syncedOnce: s?.syncedOnce ?? false,
        lastSyncAt: iso(s?.lastSyncAt),
        secondsSinceSync:
          s?.lastSyncAt === undefined
            ? null
            : Math.max(0, Math.round((now - s.lastSyncAt) / 100) / 10),
        error: s?.error ? { code: s.error.code, message: s.error.message } : null,
        exportMode: s?.exportMode ?? 'unknown',
        lastContactAt: iso(w?.lastContactAt),
        // null: this admin listener was given no watchers (tests, or an older runtime).
        watches: w ? Object.fromEntries(w.watchStats()) : null,
      };
    }),
  };
}

// ---- /debug/services ------------------------------------------------------------

/** The policy the proxy chooses for the service, and where it came from. */
function pickerOf(svc: FederatedService, config: Config) {
  const { text, source, problem } = choosePolicy(svc, config.routing);
  return { policy: text, source, problem: problem ?? null };
}

/** Endpoint counts by state, per cluster and zone, in catalog order. */
function endpointCounts(svc: FederatedService, store: HealthStore) {
  const verdicts = store.endpoints(svc.key);
  const total = zeroCounts();
  const clusters = svc.clusters.map((m) => {
    const zones = new Map<string, { zone: string | null; region: string | null } & StateCounts>();
    for (const e of m.endpoints) {
      const state = endpointState(e, verdicts?.get(endpointId(m.cluster, e.addresses[0] ?? '')));
      const key = `${e.locality.region ?? ''}/${e.locality.zone ?? ''}`;
      let z = zones.get(key);
      if (!z) {
        z = { zone: e.locality.zone ?? null, region: e.locality.region ?? null, ...zeroCounts() };
        zones.set(key, z);
      }
      z[state]++;
      total[state]++;
    }
    const sorted = [...zones.values()].sort((a, b) =>
      `${a.region}/${a.zone}`.localeCompare(`${b.region}/${b.zone}`),
    );
    return { cluster: m.cluster, sync: m.sync.state, zones: sorted };
  });
  return { total, clusters };
}

/** An explanation's tiers without the per-endpoint detail: what a list shows. */
function planSummary(x: Explanation) {
  return {
    summary: x.summary,
    client: x.client,
    panic: x.panic,
    servingFallback: x.servingFallback,
    healthyFraction: x.healthyFraction,
    normalizedHealth: x.normalizedHealth,
    tiers: x.tiers,
    excluded: x.excluded.length,
  };
}

function serviceHead(
  svc: FederatedService,
  src: DebugSources,
  snapshot: Snapshot,
  names: string[],
) {
  return {
    key: svc.key,
    namespace: svc.namespace,
    name: svc.name,
    type: svc.type,
    sessionAffinity: svc.sessionAffinity,
    ports: svc.ports,
    hosts: svc.hosts,
    names,
    lbPolicy: svc.lbPolicy ?? null,
    picker: pickerOf(svc, src.config),
    dnsMode: svc.dnsMode ?? null,
    addressing: svc.dnsMode ?? src.config.dns.addressing,
    // Active checks: whether on a schedule, what decided, and the interval they run at.
    healthCheck: src.health.active?.serviceCheck(svc) ?? null,
    conflicts: svc.conflicts,
    clusters: svc.clusters.map((m) => m.cluster),
    catalogVersion: snapshot.version,
  };
}

export function servicesJson(
  src: DebugSources,
  hosts: HostTable,
  snapshot: Snapshot,
  now: number,
): unknown {
  const self = selfOf(src.config);
  const services = [...snapshot.services.values()].sort((a, b) => a.key.localeCompare(b.key));
  return {
    now: iso(now),
    catalogVersion: snapshot.version,
    self,
    services: services.map((svc) => ({
      ...serviceHead(svc, src, snapshot, hosts.hostsOf(snapshot, svc.key)),
      endpoints: endpointCounts(svc, src.health.store),
      plan: planSummary(src.router.explain(svc, self, now)),
    })),
  };
}

// ---- /debug/services/<ns>/<name> ----------------------------------------------------

export function serviceJson(
  src: DebugSources,
  hosts: HostTable,
  snapshot: Snapshot,
  key: string,
  now: number,
): unknown | undefined {
  const svc = snapshot.services.get(key);
  if (!svc) return undefined;
  const store = src.health.store;
  const tlsFailures = src.health.tlsFailures?.(svc.key);
  const self = selfOf(src.config);
  return {
    ...serviceHead(svc, src, snapshot, hosts.hostsOf(snapshot, svc.key)),
    endpoints: endpointCounts(svc, store),
    members: svc.clusters.map((m) => ({
      cluster: m.cluster,
      weight: m.weight,
      exportedAt: iso(m.exportedAt),
      sync: m.sync.state,
      ingress: m.ingress,
      endpoints: m.endpoints.map((e) => {
        const id = endpointId(m.cluster, e.addresses[0] ?? '');
        // Every verdict, passing ones too (the routing view keeps only those that matter).
        const h = store.endpoint(svc.key, id);
        const tls = tlsFailures?.get(id);
        return {
          id,
          address: e.addresses[0] ?? null,
          addresses: e.addresses,
          addressType: e.addressType,
          region: e.locality.region ?? null,
          zone: e.locality.zone ?? null,
          subzone: e.locality.subzone ?? null,
          node: e.nodeName ?? null,
          hostname: e.hostname ?? null,
          ports: e.ports,
          conditions: e.conditions,
          state: endpointState(e, h),
          health: h
            ? {
                check: h.check,
                checkDetail: h.checkDetail ?? null,
                ejectedUntil: iso(h.ejectedUntil),
                ejectionReason: h.ejectionReason ?? null,
              }
            : null,
          lastTlsFailure: tls ? { detail: tls.detail, at: iso(tls.at) } : null,
        };
      }),
    })),
    plans: {
      self: { locality: self, explanation: src.router.explain(svc, self, now) },
      localities: src.config.localities.map((rule) => {
        const locality: Locality = { region: rule.region, zone: rule.zone, subzone: rule.subzone };
        return { rule, explanation: src.router.explain(svc, locality, now) };
      }),
    },
  };
}

// ---- /debug/explain ---------------------------------------------------------------

export type Answer =
  | { status: 200; body: unknown }
  | { status: 400 | 404; body: { error: string } };

/**
 * Where a request for `host` would go, and why: the Gateway API rule it takes on
 * the listener (`listener`, `method`, `path`, `header=name:value`) when a route
 * covers the host, else the host resolved as the proxy resolves it; then the plan
 * for the client (by address), or for the locality a regional or zonal name names,
 * or for this replica.
 */
export function explainHost(
  src: DebugSources,
  hosts: HostTable,
  snapshot: Snapshot,
  params: URLSearchParams,
  now: number,
): Answer {
  const raw = params.get('host');
  if (raw === null || raw === '') return { status: 400, body: { error: 'host is required' } };
  const client = params.get('client');
  if (client !== null && isIP(client) === 0) {
    return { status: 400, body: { error: `client must be an IP address, not "${client}"` } };
  }
  const host = normalizeHost(raw);
  if (host === undefined) {
    return { status: 400, body: { error: `"${raw}" is not a host name the proxy would route` } };
  }
  const gw = src.gateway
    ? explainRoute(src.gateway, src.config, snapshot, host, params, src.random ?? Math.random)
    : undefined;
  if (gw && !gw.service) return { status: 200, body: { host, gateway: gw.body } };
  const route = gw?.service ? { service: gw.service } : hosts.lookup(snapshot, host);
  if (!route) {
    return {
      status: 404,
      body: { error: `no federated service answers to "${host}": the proxy would say 404` },
    };
  }
  const svc = route.service;
  const self = selfOf(src.config);
  const from = route.locality ? 'route' : client !== null ? 'client' : 'self';
  const explanation = src.router.explain(
    svc,
    route.locality ?? (client !== null ? client : self),
    now,
  );
  let note: string | null = null;
  if (from === 'client' && src.config.http.locality === 'self') {
    note =
      "the proxy routes every request from its own locality (http.locality: self); this is the client's view, as DNS answers it";
  } else if (from === 'route' && client !== null) {
    note = 'a regional or zonal name routes from the place it names, whoever the client is';
  }
  return {
    status: 200,
    body: {
      ...explanation,
      host,
      service: svc.key,
      backendTls: backendTlsOf(src, svc),
      route: {
        kind: gw ? 'gateway' : hosts.kindOf(snapshot, host),
        locality: route.locality ?? null,
      },
      from,
      ...(from === 'self' ? { self, selfFrom: selfFromJson(src) } : {}),
      proxyLocality: src.config.http.locality,
      note,
      ...(gw ? { gateway: gw.body } : {}),
    },
  };
}

/**
 * The service's backend TLS profile (routing.services, else the annotation), and
 * the last failed handshake of each endpoint that had one: why TLS tries fail.
 */
function backendTlsOf(src: DebugSources, svc: FederatedService): unknown {
  const profile = src.config.routing.services[svc.key]?.tls ?? svc.backendTls;
  const failures = src.health.tlsFailures?.(svc.key);
  return {
    profile: profile ?? null,
    exists: profile === undefined ? null : Object.hasOwn(src.config.routing.backendTLS, profile),
    lastFailures: [...(failures ?? [])].map(([id, f]) => ({ id, detail: f.detail, at: iso(f.at) })),
  };
}
