// Response rate limiting (RRL) for the authoritative DNS server, after Knot DNS's `rrl` module
// and BIND's RRL: a token bucket per (client netblock, response class). Spoofed-source floods
// aim at a victim netblock, so limiting per netblock caps the amplification fedgate lends them;
// "slipping" a truncated answer now and then lets a real client at that netblock retry over TCP.

export interface RrlConfig {
  readonly enabled: boolean;
  /** Responses per second allowed per client prefix and response class; also the burst. */
  readonly responsesPerSecond: number;
  /** Every slip-th limited response goes out truncated (TC=1); the rest are dropped. 0: drop all; 1: slip all. */
  readonly slip: number;
  readonly ipv4Prefix: number; // 24
  readonly ipv6Prefix: number; // 56
  /** Count and report what would be limited, but answer everything. */
  readonly dryRun: boolean;
  /** Most buckets kept; the least recently used go first. */
  readonly tableSize: number;
}
export type RrlVerdict = 'pass' | 'slip' | 'drop';
/** What kind of answer is being limited: limits apply per class, as Knot's do. */
export type RrlClass = 'positive' | 'nxdomain' | 'nodata' | 'referral' | 'error';
/** Every check lands in exactly one counter; in dry run limited ones land in the would* pair. */
export interface RrlStats {
  readonly passed: number;
  readonly slipped: number;
  readonly dropped: number;
  readonly wouldSlip: number;
  readonly wouldDrop: number;
  readonly buckets: number;
}

interface Bucket {
  tokens: number;
  refilledAt: number;
  /** Limited responses so far; picks which slip. Never reset by a pass, else a flood just over
   * the rate (pass, limited, pass, …) would slip every limited answer whatever `slip` says. */
  limited: number;
}

/** Dotted-quad IPv4 as an unsigned integer, or -1. Hand-rolled: this runs once per query. */
function parseIpv4(text: string): number {
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
function parseIpv6(text: string): number[] | undefined {
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

export class ResponseRateLimiter {
  private readonly config: RrlConfig;
  private readonly now: () => number;
  /** Insertion order is recency order: a touched bucket is re-inserted, so the first key is the LRU. */
  private readonly buckets = new Map<string, Bucket>();
  // Masking by subtracting the remainder keeps IPv4 in plain doubles (no BigInt, no sign bit).
  private readonly ipv4Block: number;
  private readonly ipv6Words: number;
  private readonly ipv6PartialMask: number;
  private passed = 0;
  private slipped = 0;
  private dropped = 0;
  private wouldSlip = 0;
  private wouldDrop = 0;

  constructor(config: RrlConfig, now: () => number = Date.now) {
    const { responsesPerSecond, slip, ipv4Prefix, ipv6Prefix, tableSize } = config;
    if (!(responsesPerSecond > 0)) throw new RangeError('rrl: responsesPerSecond must be > 0');
    if (!Number.isInteger(slip) || slip < 0)
      throw new RangeError('rrl: slip must be an integer >= 0');
    if (!Number.isInteger(ipv4Prefix) || ipv4Prefix < 0 || ipv4Prefix > 32)
      throw new RangeError('rrl: ipv4Prefix must be 0..32');
    if (!Number.isInteger(ipv6Prefix) || ipv6Prefix < 0 || ipv6Prefix > 128)
      throw new RangeError('rrl: ipv6Prefix must be 0..128');
    if (!Number.isInteger(tableSize) || tableSize < 1)
      throw new RangeError('rrl: tableSize must be >= 1');
    this.config = config;
    this.now = now;
    this.ipv4Block = 2 ** (32 - ipv4Prefix);
    this.ipv6Words = ipv6Prefix >> 4;
    this.ipv6PartialMask = 0x10000 - 2 ** (16 - (ipv6Prefix & 15));
  }

  /**
   * The verdict for one response to `clientAddress` (IPv4, IPv6 or IPv4-mapped IPv6
   * text). `name` narrows the bucket, as Knot and BIND key positive answers by the
   * name too, so a resolver asking for many names is not limited as one flood. In
   * dry run always 'pass' but counts would-be verdicts. Disabled: always 'pass'.
   */
  check(clientAddress: string, cls: RrlClass, name = ''): RrlVerdict {
    if (!this.config.enabled) {
      this.passed++;
      return 'pass';
    }
    const verdict = this.take(`${cls}|${name}|${this.netblock(clientAddress)}`);
    if (verdict === 'pass') this.passed++;
    else if (this.config.dryRun) {
      if (verdict === 'slip') this.wouldSlip++;
      else this.wouldDrop++;
      return 'pass';
    } else if (verdict === 'slip') this.slipped++;
    else this.dropped++;
    return verdict;
  }

  stats(): RrlStats {
    const { passed, slipped, dropped, wouldSlip, wouldDrop } = this;
    return { passed, slipped, dropped, wouldSlip, wouldDrop, buckets: this.buckets.size };
  }

  private take(key: string): RrlVerdict {
    const { responsesPerSecond: rate, slip, tableSize } = this.config;
    const now = this.now();
    let bucket = this.buckets.get(key);
    if (bucket) {
      this.buckets.delete(key);
      // max(0, …): a clock stepping backwards must not drain tokens.
      const earned = (Math.max(0, now - bucket.refilledAt) * rate) / 1000;
      bucket.tokens = Math.min(rate, bucket.tokens + earned);
      bucket.refilledAt = now;
    } else {
      bucket = { tokens: rate, refilledAt: now, limited: 0 };
      if (this.buckets.size >= tableSize) this.buckets.delete(this.buckets.keys().next().value!);
    }
    this.buckets.set(key, bucket);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return 'pass';
    }
    // A bucket's first limited response slips, so a real client learns to use TCP at once.
    return slip > 0 && bucket.limited++ % slip === 0 ? 'slip' : 'drop';
  }

  private netblock(address: string): string {
    if (!address.includes(':')) {
      const v4 = parseIpv4(address);
      return v4 < 0 ? `raw:${address}` : `4:${v4 - (v4 % this.ipv4Block)}`;
    }
    const words = parseIpv6(address);
    if (!words) return `raw:${address}`;
    // ::ffff:a.b.c.d is the IPv4 client on a dual-stack socket: one client, one bucket.
    if (
      words[5] === 0xffff &&
      words[0] === 0 &&
      words[1] === 0 &&
      words[2] === 0 &&
      words[3] === 0 &&
      words[4] === 0
    ) {
      const v4 = words[6]! * 65536 + words[7]!;
      return `4:${v4 - (v4 % this.ipv4Block)}`;
    }
    let key = '6:';
    for (let i = 0; i < this.ipv6Words; i++) key += `${words[i]!.toString(16)}:`;
    if (this.ipv6Words < 8) key += (words[this.ipv6Words]! & this.ipv6PartialMask).toString(16);
    return key;
  }
}
