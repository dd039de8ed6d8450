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
