import { describe, expect, it } from 'vitest';
import { federationName, matchZone, mcsName, nameRules } from './names.ts';

describe('service names', () => {
  it('writes the MCS name under the clusterset zone', () => {
    expect(mcsName({ name: 'web', namespace: 'shop' }, 'clusterset.local')).toBe(
      'web.shop.svc.clusterset.local',
    );
  });

  it('writes the federation name globally, by region, and by zone', () => {
    expect(federationName('shop/web', 'galaxy', 'example.test')).toBe(
      'web.shop.galaxy.svc.example.test',
    );
    expect(federationName('shop/web', 'galaxy', 'example.test', { region: 'eu-west' })).toBe(
      'web.shop.galaxy.svc.eu-west.example.test',
    );
    expect(
      federationName('shop/web', 'galaxy', 'example.test', {
        region: 'us-east',
        zone: 'us-east-a',
      }),
    ).toBe('web.shop.galaxy.svc.us-east-a.us-east.example.test');
  });
});

describe('nameRules', () => {
  const rules = nameRules({
    clusterset: 'clusterset.local',
    domain: 'example.test',
    federation: 'galaxy',
  });

  it('matches names in either configured zone, and nothing outside them', () => {
    expect(matchZone('web.shop.svc.clusterset.local', rules)?.parsed).toEqual({
      kind: 'mcs',
      service: 'shop/web',
    });
    expect(matchZone('web.shop.galaxy.svc.eu-west.example.test', rules)?.parsed).toEqual({
      kind: 'federation',
      service: 'shop/web',
      level: 'region',
      region: 'eu-west',
    });
    expect(matchZone('web.shop.galaxy.svc.example.org', rules)).toBeUndefined();
  });
});

describe('reverse zones', () => {
  const rules = nameRules({
    clusterset: 'clusterset.local',
    domain: 'example.test',
    federation: 'galaxy',
    reverse: ['127.in-addr.arpa', '0.0.0.0.0.0.0.0.ip6.arpa'],
  });
  // ::<last> as a reverse name (in ::/32, the ip6.arpa zone above).
  const v6 = (last: string) => `${last}.${'0.'.repeat(31)}ip6.arpa`;

  it('parses a whole address as ptr, shorter runs as interior, and bad labels as none', () => {
    expect(matchZone('4.3.2.127.in-addr.arpa', rules)?.parsed).toEqual({ kind: 'ptr' });
    expect(matchZone('127.in-addr.arpa', rules)?.parsed).toEqual({ kind: 'apex' });
    expect(matchZone('2.127.in-addr.arpa', rules)?.parsed.kind).toBe('interior');
    expect(matchZone('256.3.2.127.in-addr.arpa', rules)?.parsed.kind).toBe('none');
    expect(matchZone('04.3.2.127.in-addr.arpa', rules)?.parsed.kind).toBe('none');
    expect(matchZone('5.4.3.2.127.in-addr.arpa', rules)?.parsed.kind).toBe('none');
    expect(matchZone(v6('1'), rules)?.parsed).toEqual({ kind: 'ptr' });
    expect(matchZone(v6('g'), rules)?.parsed.kind).toBe('none');
    expect(matchZone(`${'0.'.repeat(9)}ip6.arpa`, rules)?.parsed.kind).toBe('interior');
  });

  it('refuses reverse names outside the configured zones, and the proxy’s rules have none', () => {
    expect(matchZone('1.0.5.in-addr.arpa', rules)).toBeUndefined();
    const proxy = nameRules({
      clusterset: 'clusterset.local',
      domain: 'example.test',
      federation: 'galaxy',
    });
    expect(matchZone('1.0.0.127.in-addr.arpa', proxy)).toBeUndefined();
  });
});
