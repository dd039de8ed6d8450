// Which names exist in a snapshot, and where services can be: built once per
// snapshot. A name exists when it owns records or has a descendant that does
// (RFC 8020: an empty non-terminal answers NODATA, never NXDOMAIN).
import type { FederatedService, Snapshot } from '../catalog/model.ts';
import { type DnsZones, federationName, mcsName, type Places, placesOf } from './names.ts';

export interface NameIndex {
  readonly names: ReadonlySet<string>;
  /** region → its zones, over every endpoint and edge (names.ts placesOf). */
  readonly regions: Places;
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
  addWithAncestors(names, zones.clusterset, zones.clusterset);
  addWithAncestors(names, zones.domain, zones.domain);
  addWithAncestors(names, `dns-version.${zones.clusterset}`, zones.clusterset);
  for (const ns of extra.nameServers) {
    for (const origin of [zones.clusterset, zones.domain]) {
      if (ns.endsWith(`.${origin}`)) addWithAncestors(names, ns, origin);
    }
  }
  for (const svc of snapshot.services.values()) {
    const mcs = mcsName(svc, zones.clusterset);
    addWithAncestors(names, mcs, zones.clusterset);
    for (const n of srvNames(svc, zones.clusterset)) addWithAncestors(names, n, zones.clusterset);
    if (svc.type === 'Headless') {
      for (const m of svc.clusters) {
        for (const e of m.endpoints) {
          if (e.hostname)
            addWithAncestors(names, `${e.hostname}.${m.cluster}.${mcs}`, zones.clusterset);
        }
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
  return { names, regions };
}
