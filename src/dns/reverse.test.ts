import { describe, expect, it } from 'vitest';
import { reverseName, zoneOf } from './reverse.ts';

describe('reverseName', () => {
  it('writes IPv4 under in-addr.arpa, octets reversed', () => {
    expect(reverseName('127.1.2.3')).toBe('3.2.1.127.in-addr.arpa');
    expect(reverseName('127.0.0.1')).toBe('1.0.0.127.in-addr.arpa');
  });

  it('writes IPv6 under ip6.arpa as 32 nibbles, whatever form the address is in', () => {
    const want = `1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa`;
    expect(reverseName('::1')).toBe(want);
    expect(reverseName('0:0:0:0:0:0:0:1')).toBe(want);
    expect(reverseName('::ffff:127.0.0.1')).toBe(reverseName('::ffff:7f00:1'));
  });

  it('gives nothing for text that is no address', () => {
    expect(reverseName('example')).toBeUndefined();
    expect(reverseName('1.2.3')).toBeUndefined();
  });
});

describe('zoneOf', () => {
  it('picks the longest zone holding the name, or none', () => {
    const zones = ['127.in-addr.arpa', '12.127.in-addr.arpa'];
    expect(zoneOf('3.2.12.127.in-addr.arpa', zones)).toBe('12.127.in-addr.arpa');
    expect(zoneOf('3.2.13.127.in-addr.arpa', zones)).toBe('127.in-addr.arpa');
    expect(zoneOf('3.2.112.127.in-addr.arpa', ['12.127.in-addr.arpa'])).toBeUndefined();
  });
});
