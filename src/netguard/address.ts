// Which IP literals the loopback-only guard lets through. Pure: it dials nothing.
import { isIPv4, isIPv6 } from 'node:net';

/**
 * Whether `ip` is an IP literal on loopback: 127.0.0.0/8, ::1, or IPv4-mapped
 * ::ffff:127.x.y.z. Anything else (0.0.0.0, ::, private, public, multicast,
 * broadcast, a name, a zone-scoped address) is not.
 */
export function isLoopbackAddress(ip: string): boolean {
  if (typeof ip !== 'string') return false;
  // net.isIPv4 takes only dotted-decimal without leading zeros, so the prefix is exact.
  if (isIPv4(ip)) return ip.startsWith('127.');
  if (!isIPv6(ip)) return false;
  let canonical: string;
  try {
    // WHATWG URL prints IPv6 in its one canonical form: lower case, `::` compressed,
    // an embedded IPv4 as two hex groups. It rejects zone ids, which we refuse too.
    canonical = new URL(`http://[${ip}]/`).hostname;
  } catch {
    return false;
  }
  return canonical === '[::1]' || /^\[::ffff:7f[0-9a-f]{2}:[0-9a-f]{1,4}\]$/.test(canonical);
}
