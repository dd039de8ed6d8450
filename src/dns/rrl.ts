// Response rate limiting (RRL) for the authoritative DNS server, after Knot DNS's `rrl` module
// and BIND's RRL: a token bucket per (client netblock, response class). Spoofed-source floods
// aim at a victim netblock, so limiting per netblock caps the amplification fedgate lends them;
// "slipping" a truncated answer now and then lets a real client at that netblock retry over TCP.
import { Netblocks } from '../netblock.ts';

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

export class ResponseRateLimiter {
  private readonly config: RrlConfig;
  private readonly now: () => number;
  /** Insertion order is recency order: a touched bucket is re-inserted, so the first key is the LRU. */
  private readonly buckets = new Map<string, Bucket>();
  private readonly netblocks: Netblocks;
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
    this.netblocks = new Netblocks(ipv4Prefix, ipv6Prefix);
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
    const verdict = this.take(`${cls}|${name}|${this.netblocks.key(clientAddress)}`);
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
}
