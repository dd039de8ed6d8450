import { describe, expect, it } from 'vitest';
import { LocalityTable, localityKey } from './locality.ts';

const table = new LocalityTable([
  { cidr: '127.0.0.0/16', region: 'lo' },
  { cidr: '127.1.0.0/16', region: 'us-east', zone: 'us-east-a' },
  { cidr: '127.1.2.0/24', region: 'us-east', zone: 'us-east-a', subzone: 'rack2' },
  { cidr: '127.1.2.0/24', region: 'shadowed' },
  { cidr: '127.128.0.0/9', region: 'eu-west', zone: 'eu-west-a' },
  { cidr: '0.0.0.0/0', region: 'anywhere' },
  { cidr: '2001:db8::/32', region: 'v6' },
  { cidr: '2001:db8:1::/48', region: 'v6', zone: 'v6-a' },
  { cidr: '::1/128', region: 'lo6' },
]);

describe('LocalityTable', () => {
  it.each([
    ['127.0.0.1', { region: 'lo' }],
    ['127.1.9.9', { region: 'us-east', zone: 'us-east-a' }],
    ['127.1.2.3', { region: 'us-east', zone: 'us-east-a', subzone: 'rack2' }],
    ['127.255.255.255', { region: 'eu-west', zone: 'eu-west-a' }],
    ['127.64.0.1', { region: 'anywhere' }],
    ['::ffff:127.1.2.3', { region: 'us-east', zone: 'us-east-a', subzone: 'rack2' }],
    ['2001:db8:1:2::5', { region: 'v6', zone: 'v6-a' }],
    ['2001:db8:ffff::1', { region: 'v6' }],
    ['2001:0DB8:0001::1', { region: 'v6', zone: 'v6-a' }],
    ['::1', { region: 'lo6' }],
    ['fe80::1%eth0', undefined],
    ['2002::1', undefined],
    ['not an address', undefined],
  ])('%s → %j (longest prefix wins, first rule on a tie)', (address, want) => {
    expect(table.lookup(address)).toEqual(want);
  });

  it('keys tell localities apart', () => {
    expect(localityKey(undefined)).not.toBe(localityKey({ region: '' }));
    expect(localityKey({ region: 'a', zone: 'b' })).not.toBe(localityKey({ region: 'a/b' }));
  });
});
