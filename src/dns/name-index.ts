// Which names exist in a snapshot, where services can be, and the PTR records of
// the reverse zones: built once per snapshot. A name exists when it owns records or
// has a descendant that does (RFC 8020: an empty non-terminal answers NODATA, never
// NXDOMAIN).
import type { FederatedService, Snapshot } from '../catalog/model.ts';
import { headlessView, hostName } from './mcs-headless.ts';
import { type DnsZones, federationName, mcsName, type Places, placesOf } from './names.ts';
import { reverseName, zoneOf } from './reverse.ts';

export interface NameIndex {
  readonly names: ReadonlySet<string>;
  /** region → its zones, over every endpoint and edge (names.ts placesOf). */
  readonly regions: Places;
  /** Reverse name → the per-endpoint names of headless services at that address (`dns.reverseZones`). */
  readonly ptr: ReadonlyMap<string, readonly string[]>;
}

/** Names of a service's MCS SRV records: one per named port. */
export function srvNames(svc: FederatedService, origin: string): string[] {
  return svc.ports
    .filter((p) => p.name !== '')
    .map((p) => `_${p.name}._${p.protocol.toLowerCase()}.${mcsName(svc, origin)}`);
}

function addWithAncestors(names: Set<string>, name: string, origin: string): void {
  let n = name;
  while (!names.has(n)) {
    names.add(n);
    if (n === origin) return;
    n = n.slice(n.indexOf('.') + 1);
  }
}

export function buildIndex(
  snapshot: Snapshot,
  zones: DnsZones,
  extra: {
    regions: readonly { region: string; zone?: string | undefined }[];
    nameServers: readonly string[];
  },
): NameIndex {
  const regions = placesOf(extra.regions, snapshot.services.values());
  const names = new Set<string>();
  const reverse = zones.reverse ?? [];
  const ptr = new Map<string, string[]>();
  for (const origin of [zones.clusterset, zones.domain, ...reverse])
    addWithAncestors(names, origin, origin);
  addWithAncestors(names, `dns-version.${zones.clusterset}`, zones.clusterset);
  for (const ns of extra.nameServers) {
    for (const origin of [zones.clusterset, zones.domain, ...reverse]) {
      if (ns.endsWith(`.${origin}`)) addWithAncestors(names, ns, origin);
    }
  }
  for (const svc of snapshot.services.values()) {
    const mcs = mcsName(svc, zones.clusterset);
    // A headless service with no ready endpoint has no names at all: NXDOMAIN (§2.4.1).
    const hosts = svc.type === 'Headless' ? headlessView(svc).hosts : undefined;
    if (hosts === undefined || hosts.length > 0) {
      addWithAncestors(names, mcs, zones.clusterset);
      for (const n of srvNames(svc, zones.clusterset)) addWithAncestors(names, n, zones.clusterset);
    }
    for (const h of hosts ?? []) {
      const target = hostName(h, mcs);
      addWithAncestors(names, target, zones.clusterset);
      if (reverse.length === 0) continue;
      for (const address of [...h.ipv4, ...h.ipv6]) {
        const r = reverseName(address);
        const origin = r === undefined ? undefined : zoneOf(r, reverse);
        if (r === undefined || origin === undefined) continue;
        addWithAncestors(names, r, origin);
        const targets = ptr.get(r);
        if (!targets) ptr.set(r, [target]);
        else if (!targets.includes(target)) targets.push(target);
      }
    }
    const at = (where: { region?: string; zone?: string }) =>
      addWithAncestors(
        names,
        federationName(svc.key, zones.federation, zones.domain, where),
        zones.domain,
      );
    at({});
    for (const [region, zs] of regions) {
      at({ region });
      for (const zone of zs) at({ region, zone });
    }
  }
  return { names, regions, ptr };
}
