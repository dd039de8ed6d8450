// The DNS benchmark's query mix and the check that every server answers it alike:
// the names fedgate serves for a federation, the anchors' zones mirrored from
// fedgate's own answers to them, and a name-by-name comparison with dig.
import type { Snapshot } from '../src/catalog/model.ts';
import type { Config } from '../src/config/schema.ts';
import { type DigResult, dig } from '../test/helpers/tools.ts';
import { type MirroredAnswer, type ZoneFile, zoneFiles } from './dns-zonefile.ts';

export interface Query {
  name: string;
  type: string;
}

interface Address {
  host: string;
  port: number;
}

/** The names fedgate serves for this federation, from the synced catalog. */
export function queryMix(snapshot: Snapshot, config: Config): Query[] {
  const cs = config.federation.clustersetZone;
  const domain = config.federation.domain;
  const fed = config.federation.name;
  const queries: Query[] = [
    { name: `dns-version.${cs}`, type: 'TXT' },
    { name: cs, type: 'SOA' },
    { name: domain, type: 'SOA' },
  ];
  for (const svc of [...snapshot.services.values()].sort((a, b) => a.key.localeCompare(b.key))) {
    const mcs = `${svc.name}.${svc.namespace}.svc.${cs}`;
    queries.push({ name: mcs, type: 'A' });
    for (const p of svc.ports.filter((x) => x.name !== '')) {
      queries.push({ name: `_${p.name}._${p.protocol.toLowerCase()}.${mcs}`, type: 'SRV' });
    }
    const base = `${svc.name}.${svc.namespace}.${fed}.svc`;
    queries.push({ name: `${base}.${domain}`, type: 'A' });
    const zonesByRegion = new Map<string, Set<string>>();
    for (const m of svc.clusters) {
      for (const e of m.endpoints) {
        const { region, zone } = e.locality;
        if (region === undefined) continue;
        const zs = zonesByRegion.get(region) ?? new Set<string>();
        if (zone !== undefined) zs.add(zone);
        zonesByRegion.set(region, zs);
      }
    }
    for (const [region, zones] of [...zonesByRegion].sort()) {
      queries.push({ name: `${base}.${region}.${domain}`, type: 'A' });
      for (const zone of [...zones].sort()) {
        queries.push({ name: `${base}.${zone}.${region}.${domain}`, type: 'A' });
      }
    }
  }
  return queries;
}

const DIG_PLAIN = ['+noedns']; // dnsperf sends no OPT record unless -e: compare what it gets
const msgSize = (r: DigResult) => Number(/;; MSG SIZE {2}rcvd: (\d+)/.exec(r.stdout)?.[1] ?? NaN);

/**
 * The anchors' zone files, with the owner names and record sets fedgate answers the
 * mix with (plus each apex's NS): see zoneFiles.
 */
export async function mirrorZones(
  fedgate: Address,
  queries: Query[],
  origins: string[],
): Promise<ZoneFile[]> {
  const answers: MirroredAnswer[] = [];
  for (const q of [...queries, ...origins.map((o) => ({ name: o, type: 'NS' }))]) {
    const r = await dig(fedgate, [...DIG_PLAIN, q.name, q.type]);
    if (r.status !== 'NOERROR' || !r.flags.includes('aa') || r.answers.length === 0) {
      throw new Error(`fedgate gave no authoritative answer to ${q.name} ${q.type}:\n${r.stdout}`);
    }
    answers.push({ ...q, records: r.answers });
  }
  return zoneFiles(answers, origins);
}

export interface MixCheck {
  name: string;
  type: string;
  fedgateBytes: number;
  anchorBytes: number;
  sameRecords: boolean;
}

/**
 * Asks fedgate and an anchor every query once and compares: the same rcode, AA,
 * answer count and types (throws otherwise); whether the record data match too
 * (fedgate rotates and may pick a subset; reported, not fatal); and the response sizes.
 */
export async function checkMirror(
  fedgate: Address,
  anchor: Address & { name: string },
  queries: Query[],
): Promise<MixCheck[]> {
  const out: MixCheck[] = [];
  for (const q of queries) {
    const f = await dig(fedgate, [...DIG_PLAIN, q.name, q.type]);
    const a = await dig(anchor, [...DIG_PLAIN, q.name, q.type]);
    const shape = (r: DigResult) =>
      `${r.status} aa=${r.flags.includes('aa')} ${r.answers
        .map((x) => x.type)
        .sort()
        .join(',')}`;
    if (shape(f) !== shape(a)) {
      throw new Error(
        `${anchor.name} does not answer ${q.name} ${q.type} as fedgate does:\n--- fedgate\n${f.stdout}\n--- ${anchor.name}\n${a.stdout}`,
      );
    }
    const data = (r: DigResult) =>
      r.answers
        .map((x) => `${x.name.toLowerCase()} ${x.type} ${x.data}`)
        .sort()
        .join('\n');
    out.push({
      name: q.name,
      type: q.type,
      fedgateBytes: msgSize(f),
      anchorBytes: msgSize(a),
      sameRecords: data(f) === data(a),
    });
  }
  return out;
}
