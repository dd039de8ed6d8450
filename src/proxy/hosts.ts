// Host → federated service. Built once per catalog snapshot: every name of both DNS
// schemes (MCS and federation, global), the config's aliases and the services'
// fedgate.io/hosts. A regional or zonal federation name routes as a client in that
// place would be, when DNS has that name (the place exists: names.ts placesOf).
// Anything else is not ours: fedgate is never an open proxy.
import type { FederatedService, Snapshot } from '../catalog/model.ts';
import type { Config } from '../config/schema.ts';
import {
  type DnsZones,
  federationName,
  matchZone,
  mcsName,
  type NameRules,
  nameRules,
  type Place,
  type Places,
  placeExists,
  placesOf,
} from '../dns/names.ts';
import type { Locality } from '../routing/types.ts';

export interface HostRoute {
  readonly service: FederatedService;
  /** Set by a regional or zonal federation name: route from there rather than from the client. */
  readonly locality?: Locality;
}

/** Which of the accepted names a host is: what /debug/explain reports. */
export type HostKind = 'alias' | 'mcs' | 'federation' | 'annotation' | 'region' | 'zone';

export interface HostConflict {
  readonly host: string;
  /** The service that got the host, and the ones that also claimed it. */
  readonly winner: string;
  readonly losers: readonly string[];
}

export interface HostRules extends DnsZones {
  /** host → namespace/name, from config: wins over every other claim. */
  readonly aliases: Readonly<Record<string, string>>;
  /** fedgate's edges (`dns.proxyAddresses`): their places have regional and zonal names too. */
  readonly edges: readonly Place[];
}

/** The host rules a configuration gives: its zones, federation name and aliases. */
export function hostRules(config: Config): HostRules {
  return {
    clusterset: config.federation.clustersetZone,
    domain: config.federation.domain,
    federation: config.federation.name,
    aliases: config.http.aliases,
    edges: config.dns.proxyAddresses,
  };
}

/** An IP literal, or a reg-name (RFC 3986 §3.2.2), then an optional port of digits. */
const AUTHORITY =
  /^(\[[0-9A-Fa-f:.]+\]|\[v[0-9A-Fa-f]+\.[\w.~!$&'()*+,;=:-]+\]|(?:[\w.~!$&'()*+,;=-]|%[0-9A-Fa-f]{2})*)(?::(\d*))?$/;

/**
 * An authority's host and port (RFC 3986 §3.2: `host [":" port]`), or undefined when
 * it is not one or its port is above 65535. The host may be empty (RFC 9112 §3.2).
 */
export function splitAuthority(authority: string): { host: string; port: string } | undefined {
  const m = AUTHORITY.exec(authority);
  if (!m) return undefined;
  const port = m[2] ?? '';
  if (port.length > 5 || Number(port) > 65_535) return undefined;
  return { host: m[1] ?? '', port };
}

/**
 * The host part of a Host header or authority, lower case, without port or
 * trailing dot; undefined when it is not a plausible host name.
 */
export function normalizeHost(authority: string): string | undefined {
  const parts = splitAuthority(authority);
  if (!parts || parts.host.startsWith('[')) return undefined; // an IPv6 literal names no service
  let host = parts.host;
  if (host.endsWith('.')) host = host.slice(0, -1);
  if (host === '' || host.length > 253) return undefined;
  return host.toLowerCase();
}

export class HostTable {
  readonly #rules: HostRules;
  readonly #nameRules: NameRules;
  #snapshot: Snapshot | undefined;
  #places: Places = new Map();
  #exact = new Map<string, HostRoute>();
  #kinds = new Map<string, HostKind>();
  #conflicts: HostConflict[] = [];

  constructor(rules: HostRules) {
    this.#rules = rules;
    this.#nameRules = nameRules(rules);
  }

  /** Hosts that more than one service claims in the snapshot. */
  conflicts(snapshot: Snapshot): readonly HostConflict[] {
    if (snapshot !== this.#snapshot) this.#rebuild(snapshot);
    return this.#conflicts;
  }

  /** The route for a normalized host in this snapshot, or undefined: 404. */
  lookup(snapshot: Snapshot, host: string): HostRoute | undefined {
    if (snapshot !== this.#snapshot) this.#rebuild(snapshot);
    const hit = this.#exact.get(host);
    if (hit) return hit;
    const m = matchZone(host, this.#nameRules);
    if (m?.parsed.kind !== 'federation' || m.parsed.level === 'global') return undefined;
    const service = snapshot.services.get(m.parsed.service);
    // DNS answers NXDOMAIN for a place no endpoint or edge is in: so does the proxy (404).
    if (!service || !placeExists(this.#places, m.parsed)) return undefined;
    return { service, locality: { region: m.parsed.region, zone: m.parsed.zone } };
  }

  /** Which name `host` is, as lookup resolves it; undefined when lookup finds nothing. */
  kindOf(snapshot: Snapshot, host: string): HostKind | undefined {
    const route = this.lookup(snapshot, host);
    if (!route) return undefined;
    if (route.locality) return route.locality.zone !== undefined ? 'zone' : 'region';
    return this.#kinds.get(host);
  }

  /** Every host that routes to the service (exact names only), for the admin view. */
  hostsOf(snapshot: Snapshot, key: string): string[] {
    if (snapshot !== this.#snapshot) this.#rebuild(snapshot);
    return [...this.#exact].filter(([, r]) => r.service.key === key).map(([h]) => h);
  }

  #rebuild(snapshot: Snapshot): void {
    const exact = new Map<string, HostRoute>();
    const kinds = new Map<string, HostKind>();
    const claims = new Map<string, string[]>();
    const claim = (host: string, service: FederatedService | undefined, kind: HostKind) => {
      if (!service) return;
      const h = host.toLowerCase().replace(/\.$/, '');
      const seen = claims.get(h);
      if (seen) {
        if (!seen.includes(service.key)) seen.push(service.key);
        return;
      }
      claims.set(h, [service.key]);
      exact.set(h, { service });
      kinds.set(h, kind);
    };
    // Order is precedence: config aliases, then the schemes' names, then annotations.
    for (const [host, key] of Object.entries(this.#rules.aliases)) {
      claim(host, snapshot.services.get(key), 'alias');
    }
    const services = [...snapshot.services.values()].sort((a, b) => a.key.localeCompare(b.key));
    for (const svc of services) {
      claim(mcsName(svc, this.#rules.clusterset), svc, 'mcs');
      claim(federationName(svc.key, this.#rules.federation, this.#rules.domain), svc, 'federation');
    }
    for (const svc of services) for (const h of svc.hosts) claim(h, svc, 'annotation');
    this.#conflicts = [...claims]
      .filter(([, keys]) => keys.length > 1)
      .map(([host, [winner, ...losers]]) => ({ host, winner: winner!, losers }));
    this.#exact = exact;
    this.#kinds = kinds;
    this.#places = placesOf(this.#rules.edges, snapshot.services.values());
    this.#snapshot = snapshot;
  }
}
