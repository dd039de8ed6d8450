import { describe, expect, it } from 'vitest';
import { ResponseRateLimiter, type RrlConfig, type RrlVerdict } from './rrl.ts';

const BASE: RrlConfig = {
  enabled: true,
  responsesPerSecond: 5,
  slip: 2,
  ipv4Prefix: 24,
  ipv6Prefix: 56,
  dryRun: false,
  tableSize: 1000,
};

function limiter(over: Partial<RrlConfig> = {}) {
  const clock = { ms: 1_000_000 };
  const rrl = new ResponseRateLimiter({ ...BASE, ...over }, () => clock.ms);
  return { rrl, clock };
}

function burst(rrl: ResponseRateLimiter, address: string, n: number): RrlVerdict[] {
  return Array.from({ length: n }, () => rrl.check(address, 'positive'));
}

/** Spends the burst of `address`'s bucket, so its next response is limited. */
function exhaust(rrl: ResponseRateLimiter, address: string): void {
  expect(burst(rrl, address, BASE.responsesPerSecond)).toEqual(Array(5).fill('pass'));
}

describe('ResponseRateLimiter', () => {
  it('passes traffic under the rate', () => {
    const { rrl, clock } = limiter();
    for (let second = 0; second < 10; second++) {
      expect(burst(rrl, '127.192.2.1', 5)).toEqual(Array(5).fill('pass'));
      clock.ms += 1000;
    }
    expect(rrl.stats()).toMatchObject({ passed: 50, slipped: 0, dropped: 0, buckets: 1 });
  });

  it('limits a burst from one /24 with slip 2 alternating slip and drop; other /24s unaffected', () => {
    const { rrl } = limiter();
    exhaust(rrl, '127.192.2.1');
    expect(burst(rrl, '127.192.2.1', 6)).toEqual(['slip', 'drop', 'slip', 'drop', 'slip', 'drop']);
    expect(burst(rrl, '127.192.3.1', 5)).toEqual(Array(5).fill('pass'));
    expect(rrl.stats()).toMatchObject({ passed: 10, slipped: 3, dropped: 3, buckets: 2 });
  });

  it('shares one bucket between addresses in the same /24', () => {
    const { rrl } = limiter();
    expect(burst(rrl, '127.192.2.1', 3)).toEqual(['pass', 'pass', 'pass']);
    expect(burst(rrl, '127.192.2.254', 3)).toEqual(['pass', 'pass', 'slip']);
    expect(rrl.stats().buckets).toBe(1);
  });

  it('groups IPv6 clients by /56', () => {
    const { rrl } = limiter();
    exhaust(rrl, '2001:db8:0:1200::1');
    // Same first 56 bits (the /56 ends inside the fourth hextet: 12xx), written in other forms.
    expect(rrl.check('2001:db8:0:12ff:ffff:ffff:ffff:ffff', 'positive')).toBe('slip');
    expect(rrl.check('2001:0db8:0000:1234:0:0:0:1%eth0', 'positive')).toBe('drop');
    // Differs at bit 55 (0x13 vs 0x12) and in the third hextet: separate buckets.
    expect(rrl.check('2001:db8:0:1300::1', 'positive')).toBe('pass');
    expect(rrl.check('2001:db8:1:1200::1', 'positive')).toBe('pass');
    expect(rrl.check('::1', 'positive')).toBe('pass');
    expect(rrl.stats().buckets).toBe(4);
  });

  it('treats IPv4-mapped IPv6 as the IPv4 address', () => {
    const { rrl } = limiter();
    exhaust(rrl, '::ffff:127.2.3.4');
    expect(rrl.check('127.2.3.99', 'positive')).toBe('slip');
    expect(rrl.check('::ffff:7f02:0305', 'positive')).toBe('drop');
    expect(rrl.stats().buckets).toBe(1);
  });

  it('keys an unparseable address as itself', () => {
    const { rrl } = limiter();
    exhaust(rrl, 'not-an-ip');
    expect(rrl.check('not-an-ip', 'positive')).toBe('slip');
    expect(rrl.check('1.2.3.256', 'positive')).toBe('pass');
    expect(rrl.check('1:2:3', 'positive')).toBe('pass');
    expect(rrl.stats().buckets).toBe(3);
  });

  it('keeps a separate bucket per response class', () => {
    const { rrl } = limiter();
    exhaust(rrl, '127.192.2.1');
    expect(rrl.check('127.192.2.1', 'positive')).toBe('slip');
    for (const cls of ['nxdomain', 'nodata', 'referral', 'error'] as const) {
      expect(rrl.check('127.192.2.1', cls)).toBe('pass');
    }
    expect(rrl.stats().buckets).toBe(5);
  });

  it('refills at the rate as time passes, up to the burst', () => {
    const { rrl, clock } = limiter();
    exhaust(rrl, '127.192.2.1');
    expect(rrl.check('127.192.2.1', 'positive')).toBe('slip');
    clock.ms += 400; // 5/s: two tokens
    expect(burst(rrl, '127.192.2.1', 3)).toEqual(['pass', 'pass', 'drop']);
    clock.ms += 60_000; // long idle earns no more than the burst
    expect(burst(rrl, '127.192.2.1', 6)).toEqual(['pass', 'pass', 'pass', 'pass', 'pass', 'slip']);
  });

  it('answers everything in dry run but counts what would be limited', () => {
    const { rrl } = limiter({ dryRun: true });
    expect(burst(rrl, '127.192.2.1', 10)).toEqual(Array(10).fill('pass'));
    expect(rrl.stats()).toEqual({
      passed: 5,
      slipped: 0,
      dropped: 0,
      wouldSlip: 3,
      wouldDrop: 2,
      buckets: 1,
    });
  });

  it('passes everything when disabled, keeping no buckets', () => {
    const { rrl } = limiter({ enabled: false });
    expect(burst(rrl, '127.192.2.1', 100)).toEqual(Array(100).fill('pass'));
    expect(rrl.stats()).toMatchObject({ passed: 100, slipped: 0, dropped: 0, buckets: 0 });
  });

  it('bounds the table, evicting the least recently used bucket', () => {
    const { rrl } = limiter({ tableSize: 3 });
    exhaust(rrl, '127.10.1.1');
    rrl.check('127.10.2.1', 'positive');
    rrl.check('127.10.3.1', 'positive');
    rrl.check('127.10.1.1', 'positive'); // touch: 127.10.2.0/24 is now the oldest
    rrl.check('127.10.4.1', 'positive');
    expect(rrl.stats().buckets).toBe(3);
    // 127.10.1.0/24 survived with its spent bucket; 127.10.2.0/24 was evicted and starts full.
    expect(rrl.check('127.10.1.1', 'positive')).toBe('drop');
    expect(burst(rrl, '127.10.2.1', 5)).toEqual(Array(5).fill('pass'));
    expect(rrl.stats().buckets).toBe(3);
  });

  it('drops every limited response with slip 0 and slips every one with slip 1', () => {
    const dropAll = limiter({ slip: 0 }).rrl;
    exhaust(dropAll, '127.192.2.1');
    expect(burst(dropAll, '127.192.2.1', 4)).toEqual(Array(4).fill('drop'));
    const slipAll = limiter({ slip: 1 }).rrl;
    exhaust(slipAll, '127.192.2.1');
    expect(burst(slipAll, '127.192.2.1', 4)).toEqual(Array(4).fill('slip'));
  });

  it('slips one in `slip` limited responses even when passes interleave', () => {
    const { rrl, clock } = limiter({ slip: 3 });
    exhaust(rrl, '127.192.2.1');
    const verdicts: RrlVerdict[] = [];
    for (let i = 0; i < 6; i++) {
      clock.ms += 200; // one token per round: pass, then limited
      verdicts.push(...burst(rrl, '127.192.2.1', 2));
    }
    expect(verdicts.filter((v) => v !== 'pass')).toEqual([
      'slip',
      'drop',
      'drop',
      'slip',
      'drop',
      'drop',
    ]);
  });

  it('rejects nonsensical configuration', () => {
    expect(() => limiter({ responsesPerSecond: 0 })).toThrow(RangeError);
    expect(() => limiter({ slip: -1 })).toThrow(RangeError);
    expect(() => limiter({ ipv4Prefix: 33 })).toThrow(RangeError);
    expect(() => limiter({ ipv6Prefix: 129 })).toThrow(RangeError);
    expect(() => limiter({ tableSize: 0 })).toThrow(RangeError);
  });
});
