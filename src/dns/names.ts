// The names fedgate answers for, parsed into what they mean. Pure. A name is
// matched against our zones (longest first); inside a zone it is one of the
// shapes of the two schemes, or the apex, or nothing we serve.
//
//   MCS (clusterset zone):      <svc>.<ns>.svc
//                               _<port>._<proto>.<svc>.<ns>.svc            (SRV)
//                               <hostname>.<cluster>.<svc>.<ns>.svc        (headless)
//                               dns-version                                (TXT "1.0.0")
//   reverse (dns.reverseZones):  d.c.b.a.in-addr.arpa, 32 nibbles.ip6.arpa  (PTR)
//   federation (domain zone):   <svc>.<ns>.<federation>.svc                (global)
//                               <svc>.<ns>.<federation>.svc.<region>
//                               <svc>.<ns>.<federation>.svc.<zone>.<region>

export type ParsedName =
  | { readonly kind: 'apex' }
  | { readonly kind: 'dns-version' }
  | { readonly kind: 'mcs'; readonly service: string }
  | {
      readonly kind: 'mcs-srv';
      readonly service: string;
      readonly port: string;
      readonly proto: string;
    }
  | {
      readonly kind: 'mcs-host';
      readonly service: string;
      readonly hostname: string;
      readonly cluster: string;
    }
  /** A whole address's reverse name (in-addr.arpa or ip6.arpa): PTR. */
  | { readonly kind: 'ptr' }
  | {
      readonly kind: 'federation';
      readonly service: string;
      readonly level: 'global' | 'region' | 'zone';
      readonly region?: string | undefined;
      readonly zone?: string | undefined;
    }
  /** A name above service names, e.g. `svc.clusterset.local`: it exists if something below does. */
  | { readonly kind: 'interior'; readonly labels: readonly string[] }
  | { readonly kind: 'none' };

export type ZoneKind = 'clusterset' | 'federation' | 'reverse';

export interface Zone {
  readonly origin: string;
  readonly kind: ZoneKind;
}

export interface Match {
  readonly zone: Zone;
  /** Labels left of the zone origin, lower case, leftmost first. */
  readonly labels: readonly string[];
  readonly parsed: ParsedName;
}

export interface NameRules {
  readonly zones: readonly Zone[];
  readonly federation: string;
}

/** What the configuration names: the two zones' origins and the federation's name. */
export interface DnsZones {
  readonly clusterset: string;
  readonly domain: string;
  readonly federation: string;
  /** Reverse zones (`dns.reverseZones`) DNS answers PTR in; the proxy has none. */
  readonly reverse?: readonly string[] | undefined;
}

/** The rules names are matched by, from the configured zones. */
export function nameRules(z: DnsZones): NameRules {
  return {
    zones: [
      { origin: z.clusterset, kind: 'clusterset' },
      { origin: z.domain, kind: 'federation' },
      ...(z.reverse ?? []).map((origin): Zone => ({ origin, kind: 'reverse' })),
    ],
    federation: z.federation,
  };
}

/** The zone a name falls in (longest origin wins), or undefined: not ours, REFUSED. */
export function matchZone(name: string, rules: NameRules): Match | undefined {
  // The caller lower-cased it (ASCII only, RFC 4343).
  const lower = name.replace(/\.$/, '');
  let best: Zone | undefined;
  for (const z of rules.zones) {
    if (
      (lower === z.origin || lower.endsWith(`.${z.origin}`)) &&
      (!best || z.origin.length > best.origin.length)
    ) {
      best = z;
    }
  }
  if (!best) return undefined;
  const rest = lower === best.origin ? '' : lower.slice(0, -(best.origin.length + 1));
  const labels = rest === '' ? [] : rest.split('.');
  const parsed =
    best.kind === 'clusterset'
      ? parseMcs(labels)
      : best.kind === 'federation'
        ? parseFederation(labels, rules.federation)
        : parseReverse(lower, labels);
  return { zone: best, labels, parsed };
}

function parseMcs(l: readonly string[]): ParsedName {
  if (l.length === 0) return { kind: 'apex' };
  if (l.length === 1 && l[0] === 'dns-version') return { kind: 'dns-version' };
  if (l.at(-1) !== 'svc') return { kind: 'none' };
  const n = l.length;
  if (n <= 2) return { kind: 'interior', labels: l };
  const service = `${l[n - 2]}/${l[n - 3]}`;
  if (n === 3) return { kind: 'mcs', service };
  if (n === 5 && l[0]!.startsWith('_') && l[1]!.startsWith('_')) {
    return { kind: 'mcs-srv', service, port: l[0]!.slice(1), proto: l[1]!.slice(1) };
  }
  if (n === 5) return { kind: 'mcs-host', service, hostname: l[0]!, cluster: l[1]! };
  // _<proto>.<svc>.<ns>.svc (n = 4) and <cluster>.<svc>.<ns>.svc are empty non-terminals.
  if (n === 4) return { kind: 'interior', labels: l };
  return { kind: 'none' };
}

const OCTET = /^(0|[1-9][0-9]{0,2})$/;
const NIBBLE = /^[0-9a-f]$/;

/**
 * A name in a reverse zone: a whole address's name is `ptr`, a shorter run of valid
 * labels is interior (it exists if an address below it does), anything else `none`.
 */
function parseReverse(name: string, labels: readonly string[]): ParsedName {
  if (labels.length === 0) return { kind: 'apex' };
  const v4 = name.endsWith('.in-addr.arpa') || name === 'in-addr.arpa';
  const inside = name.split('.').slice(0, -2);
  const [ok, whole] = v4
    ? [inside.every((l) => OCTET.test(l) && Number(l) <= 255), 4]
    : [inside.every((l) => NIBBLE.test(l)), 32];
  if (!ok || inside.length > whole) return { kind: 'none' };
  return inside.length === whole ? { kind: 'ptr' } : { kind: 'interior', labels };
}

function parseFederation(l: readonly string[], federation: string): ParsedName {
  if (l.length === 0) return { kind: 'apex' };
  const svcAt = l.indexOf('svc');
  if (svcAt < 0) return { kind: 'interior', labels: l };
  const before = l.slice(0, svcAt);
  const after = l.slice(svcAt + 1);
  if (after.length > 2) return { kind: 'none' };
  if (before.length < 3) return { kind: 'interior', labels: l };
  if (before.length > 3 || before[2] !== federation) return { kind: 'none' };
  const service = `${before[1]}/${before[0]}`;
  if (after.length === 0) return { kind: 'federation', service, level: 'global' };
  if (after.length === 1) return { kind: 'federation', service, level: 'region', region: after[0] };
  return { kind: 'federation', service, level: 'zone', zone: after[0], region: after[1] };
}

/** A locality a regional or zonal name can name: an endpoint's, or an edge's (`dns.proxyAddresses`). */
export interface Place {
  readonly region?: string | undefined;
  readonly zone?: string | undefined;
}

/** Where regional and zonal federation names exist: region → its zones. */
export type Places = ReadonlyMap<string, ReadonlySet<string>>;

/**
 * Every region and zone of an edge or of any service's endpoint: the one rule for
 * which regional and zonal names exist, read by DNS (NXDOMAIN elsewhere) and the
 * proxy (404 elsewhere) alike. Structural, so this module still imports nothing.
 */
export function placesOf(
  edges: readonly Place[],
  services: Iterable<{
    readonly clusters: readonly { readonly endpoints: readonly { readonly locality: Place }[] }[];
  }>,
): Places {
  const regions = new Map<string, Set<string>>();
  const place = ({ region, zone }: Place) => {
    if (region === undefined) return;
    let zs = regions.get(region);
    if (!zs) {
      zs = new Set();
      regions.set(region, zs);
    }
    if (zone !== undefined) zs.add(zone);
  };
  for (const e of edges) place(e);
  for (const svc of services)
    for (const m of svc.clusters) for (const e of m.endpoints) place(e.locality);
  return regions;
}

/** Whether a federation name's region (and zone, in that region) is among `places`; global names always are. */
export function placeExists(places: Places, name: Place): boolean {
  if (name.region === undefined) return true;
  const zones = places.get(name.region);
  return zones !== undefined && (name.zone === undefined || zones.has(name.zone));
}

/** The MCS-scheme name of a service: `<svc>.<ns>.svc.<clusterset zone>`. */
export function mcsName(
  svc: { readonly name: string; readonly namespace: string },
  origin: string,
) {
  return `${svc.name}.${svc.namespace}.svc.${origin}`;
}

/** The federation-scheme name of a service at a level. */
export function federationName(
  service: string,
  federation: string,
  origin: string,
  where: { region?: string | undefined; zone?: string | undefined } = {},
): string {
  const [ns, name] = service.split('/') as [string, string];
  const scope = [where.zone, where.region].filter((x) => x !== undefined).join('.');
  return `${name}.${ns}.${federation}.svc${scope ? `.${scope}` : ''}.${origin}`;
}
