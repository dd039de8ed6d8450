// Reverse names (RFC 1035 §3.5 in-addr.arpa, RFC 3596 §2.5 ip6.arpa) of endpoint
// addresses, and which configured reverse zone holds one: what PTR answers are
// indexed by.
import { parseIpv4, parseIpv6 } from '../netblock.ts';

/** `d.c.b.a.in-addr.arpa` or the 32 nibbles of `ip6.arpa`, lower case; undefined for no address. */
export function reverseName(address: string): string | undefined {
  const v4 = parseIpv4(address);
  if (v4 >= 0) {
    const octets = [v4 >>> 24, (v4 >>> 16) & 255, (v4 >>> 8) & 255, v4 & 255];
    return `${octets.reverse().join('.')}.in-addr.arpa`;
  }
  const words = parseIpv6(address);
  if (!words) return undefined;
  const nibbles = words.flatMap((w) => w.toString(16).padStart(4, '0').split(''));
  return `${nibbles.reverse().join('.')}.ip6.arpa`;
}

/** The longest of `zones` that holds `name` (equal to it or below it), if any. */
export function zoneOf(name: string, zones: readonly string[]): string | undefined {
  let best: string | undefined;
  for (const z of zones) {
    if ((name === z || name.endsWith(`.${z}`)) && (!best || z.length > best.length)) best = z;
  }
  return best;
}
