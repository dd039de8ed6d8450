// Client address → locality, by longest prefix match over the configured CIDR table.
// One hash map per prefix length, longest first: a lookup costs one mask and one
// map probe per distinct length in the table (a handful), not one per entry.
import { isIPv4, isIPv6 } from 'node:net';
import type { Locality } from './types.ts';

export interface LocalityRule {
  readonly cidr: string;
  readonly region: string;
  readonly zone?: string | undefined;
  readonly subzone?: string | undefined;
}

interface Family {
  readonly bits: number;
  /** Prefix lengths present, longest first. */
  lengths: number[];
  /** By length: masked network (as bigint) → locality. */
  readonly byLength: Map<number, Map<bigint, Locality>>;
}

function v4ToBig(addr: string): bigint {
  let n = 0n;
  for (const part of addr.split('.')) n = (n << 8n) | BigInt(Number(part));
  return n;
}

function v6ToBig(addr: string): bigint {
  let text = addr;
  // An embedded IPv4 tail (::ffff:a.b.c.d) becomes two hextets.
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const n = Number(v4ToBig(v4[1]!));
    text = `${text.slice(0, -v4[1]!.length)}${(n >>> 16).toString(16)}:${(n & 0xffff).toString(16)}`;
  }
  const [head, tail] = text.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups =
    tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  let n = 0n;
  for (const g of groups) n = (n << 16n) | BigInt(Number.parseInt(g, 16));
  return n;
}

const V4_MAPPED = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i;

/** The family and value of an address; IPv4-mapped IPv6 (what dual-stack sockets report) counts as IPv4. */
function parse(address: string): { v6: boolean; value: bigint } | undefined {
  const bare = address.replace(/%.*$/, '');
  const mapped = V4_MAPPED.exec(bare);
  if (mapped) return { v6: false, value: v4ToBig(mapped[1]!) };
  if (isIPv4(bare)) return { v6: false, value: v4ToBig(bare) };
  if (isIPv6(bare)) return { v6: true, value: v6ToBig(bare) };
  return undefined;
}

function mask(value: bigint, bits: number, length: number): bigint {
  const host = BigInt(bits - length);
  return (value >> host) << host;
}

export class LocalityTable {
  readonly #v4: Family = { bits: 32, lengths: [], byLength: new Map() };
  readonly #v6: Family = { bits: 128, lengths: [], byLength: new Map() };

  constructor(rules: readonly LocalityRule[]) {
    for (const r of rules) {
      const [addr, len] = r.cidr.split('/') as [string, string];
      const p = parse(addr);
      if (!p) throw new Error(`not an IP network: ${r.cidr}`);
      const fam = p.v6 ? this.#v6 : this.#v4;
      const length = Number(len);
      let m = fam.byLength.get(length);
      if (!m) {
        m = new Map();
        fam.byLength.set(length, m);
      }
      const net = mask(p.value, fam.bits, length);
      // The first rule for a network wins, as in a routing table read top down.
      if (!m.has(net)) {
        m.set(net, {
          region: r.region,
          ...(r.zone ? { zone: r.zone } : {}),
          ...(r.subzone ? { subzone: r.subzone } : {}),
        });
      }
    }
    for (const fam of [this.#v4, this.#v6])
      fam.lengths = [...fam.byLength.keys()].sort((a, b) => b - a);
  }

  /** The most specific rule's locality, or undefined when none matches (or the text is no address). */
  lookup(address: string): Locality | undefined {
    return this.match(address)?.locality;
  }

  /** The most specific rule's locality and prefix length (ECS answers say how far they hold). */
  match(address: string): { locality: Locality; length: number } | undefined {
    const p = parse(address);
    if (!p) return undefined;
    const fam = p.v6 ? this.#v6 : this.#v4;
    for (const length of fam.lengths) {
      const hit = fam.byLength.get(length)!.get(mask(p.value, fam.bits, length));
      if (hit) return { locality: hit, length };
    }
    return undefined;
  }
}

/** A stable text key for a locality, for caches and explain. */
export function localityKey(l: Locality | undefined): string {
  if (!l) return '';
  // A request's locality is one of a few long-lived objects (this replica's, a CIDR
  // row's): its key is built once, not a fresh string to hash on every plan lookup.
  let key = localityKeys.get(l);
  if (key === undefined) {
    key = `${l.region ?? ''}/${l.zone ?? ''}/${l.subzone ?? ''}`;
    localityKeys.set(l, key);
  }
  return key;
}

/** Localities are never changed once made (their fields are readonly). */
const localityKeys = new WeakMap<Locality, string>();
