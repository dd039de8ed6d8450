import { describe, expect, it } from 'vitest';
import { Netblocks } from './netblock.ts';

describe('Netblocks', () => {
  const n = new Netblocks(24, 56);

  it('groups IPv4 by /24 and IPv4-mapped IPv6 with it', () => {
    expect(n.key('127.44.1.1')).toBe(n.key('127.44.1.254'));
    expect(n.key('127.44.1.1')).not.toBe(n.key('127.44.2.1'));
    expect(n.key('::ffff:127.44.1.9')).toBe(n.key('127.44.1.1'));
    expect(n.key('::ffff:7f2c:109')).toBe(n.key('127.44.1.1'));
  });

  it('groups IPv6 by /56', () => {
    expect(n.key('2001:db8:0:ff::1')).toBe(n.key('2001:db8:0:1::2'));
    expect(n.key('2001:db8:0:100::1')).not.toBe(n.key('2001:db8:0:ff::1'));
    expect(n.key('::1')).toBe('6:0:0:0:0');
  });

  it('keeps text that is no address apart', () => {
    expect(n.key('')).toBe('raw:');
    expect(n.key('nonsense')).toBe('raw:nonsense');
  });

  it('takes other prefixes', () => {
    const wide = new Netblocks(16, 48);
    expect(wide.key('127.1.2.3')).toBe(wide.key('127.1.200.3'));
    expect(wide.key('2001:db8:1:ff::1')).toBe(wide.key('2001:db8:1:1::1'));
    expect(() => new Netblocks(33, 56)).toThrow(RangeError);
  });
});
