// Client addresses grouped into netblocks (an IPv4 /24, an IPv6 /56 by default): one
// host, NAT or home network usually holds many addresses of one prefix, so limits
// meant per client are kept per prefix. An IPv4-mapped IPv6 address (::ffff:a.b.c.d,
// the IPv4 client on a dual-stack socket) is the IPv4 client. DNS response rate
// limiting and the proxy's per-client share both key by it.

/** Dotted-quad IPv4 as an unsigned integer, or -1. Hand-rolled: this runs once per query. */
export function parseIpv4(text: string): number {
  let value = 0;
  let octet = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 46) {
      if (digits === 0 || dots === 3) return -1;
      value = value * 256 + octet;
      octet = 0;
      digits = 0;
      dots++;
    } else if (c >= 48 && c <= 57) {
      octet = octet * 10 + (c - 48);
      if (++digits > 3 || octet > 255) return -1;
    } else return -1;
  }
  return dots === 3 && digits > 0 ? value * 256 + octet : -1;
}

const HEXTET = /^[0-9a-f]{1,4}$/i;

function pushHextets(groups: string[], out: number[]): boolean {
  for (const group of groups) {
    if (!HEXTET.test(group)) return false;
    out.push(Number.parseInt(group, 16));
  }
  return true;
}

/** The eight 16-bit words of an IPv6 address ('::', zone ids and a dotted tail allowed), or undefined. */
export function parseIpv6(text: string): number[] | undefined {
  const zone = text.indexOf('%');
  let address = zone >= 0 ? text.slice(0, zone) : text;
  const lastColon = address.lastIndexOf(':');
  if (address.includes('.', lastColon)) {
    const v4 = parseIpv4(address.slice(lastColon + 1));
    if (v4 < 0) return undefined;
    address = `${address.slice(0, lastColon + 1)}${Math.floor(v4 / 65536).toString(16)}:${(v4 % 65536).toString(16)}`;
  }
  const gap = address.indexOf('::');
  const words: number[] = [];
  if (gap < 0)
    return pushHextets(address.split(':'), words) && words.length === 8 ? words : undefined;
  if (address.includes('::', gap + 1)) return undefined;
  const tail: number[] = [];
  if (gap > 0 && !pushHextets(address.slice(0, gap).split(':'), words)) return undefined;
  if (gap + 2 < address.length && !pushHextets(address.slice(gap + 2).split(':'), tail))
    return undefined;
  if (words.length + tail.length > 7) return undefined;
  while (words.length + tail.length < 8) words.push(0);
  return words.concat(tail);
}

/**
 * The netblock key of an address: `4:<first address of the IPv4 block>`, `6:<the
 * prefix's words>`, or `raw:<text>` for text that is not an address (kept apart,
 * never merged with another).
 */
export class Netblocks {
  // Masking by subtracting the remainder keeps IPv4 in plain doubles (no BigInt, no sign bit).
  readonly #ipv4Block: number;
  readonly #ipv6Words: number;
  readonly #ipv6PartialMask: number;

  constructor(ipv4Prefix: number, ipv6Prefix: number) {
    if (!Number.isInteger(ipv4Prefix) || ipv4Prefix < 0 || ipv4Prefix > 32)
      throw new RangeError('ipv4Prefix must be 0..32');
    if (!Number.isInteger(ipv6Prefix) || ipv6Prefix < 0 || ipv6Prefix > 128)
      throw new RangeError('ipv6Prefix must be 0..128');
    this.#ipv4Block = 2 ** (32 - ipv4Prefix);
    this.#ipv6Words = ipv6Prefix >> 4;
    this.#ipv6PartialMask = 0x10000 - 2 ** (16 - (ipv6Prefix & 15));
  }

  key(address: string): string {
    if (!address.includes(':')) return this.#ipv4(address);
    // The dual-stack socket's IPv4 client, as Node writes it: parsed as IPv4 at once.
    if (address.startsWith('::ffff:') && address.includes('.')) {
      const key = this.#ipv4(address.slice(7));
      if (!key.startsWith('raw:')) return key;
    }
    const words = parseIpv6(address);
    if (!words) return `raw:${address}`;
    if (
      words[5] === 0xffff &&
      words[0] === 0 &&
      words[1] === 0 &&
      words[2] === 0 &&
      words[3] === 0 &&
      words[4] === 0
    ) {
      const v4 = (words[6] ?? 0) * 65536 + (words[7] ?? 0);
      return `4:${v4 - (v4 % this.#ipv4Block)}`;
    }
    let key = '6:';
    for (let i = 0; i < this.#ipv6Words; i++) key += `${(words[i] ?? 0).toString(16)}:`;
    if (this.#ipv6Words < 8)
      key += ((words[this.#ipv6Words] ?? 0) & this.#ipv6PartialMask).toString(16);
    return key;
  }

  #ipv4(address: string): string {
    const v4 = parseIpv4(address);
    return v4 < 0 ? `raw:${address}` : `4:${v4 - (v4 % this.#ipv4Block)}`;
  }
}
