import { describe, expect, it } from 'vitest';
import { choosePolicy, type PolicySettings, parseLbPolicy } from './policy.ts';

describe('parseLbPolicy', () => {
  it('reads a picker alone, or maglev with its key', () => {
    expect(parseLbPolicy('round-robin')).toEqual({ picker: 'round-robin' });
    expect(parseLbPolicy(' P2C ')).toEqual({ picker: 'p2c' });
    expect(parseLbPolicy('maglev:header:X-User')).toEqual({
      picker: 'maglev',
      hashOn: { kind: 'header', name: 'x-user' },
    });
    expect(parseLbPolicy('maglev:cookie:sid')).toEqual({
      picker: 'maglev',
      hashOn: { kind: 'cookie', name: 'sid' },
    });
    expect(parseLbPolicy('maglev:client-address')).toEqual({
      picker: 'maglev',
      hashOn: { kind: 'client-address' },
    });
  });

  it('says what is wrong', () => {
    expect(() => parseLbPolicy('least-conn')).toThrow(/unknown picker "least-conn"/);
    expect(() => parseLbPolicy('p2c:header:x')).toThrow(/only maglev takes a key/);
    expect(() => parseLbPolicy('maglev:body')).toThrow(/expected header:NAME/);
  });
});

describe('choosePolicy', () => {
  const settings: PolicySettings = {
    picker: 'p2c',
    hashOn: undefined,
    services: { 'shop/cart': { hashOn: 'cookie:sid' }, 'shop/api': { picker: 'random' } },
  };

  it('takes routing.services first, filling what it leaves out from the defaults', () => {
    const cart = choosePolicy({ key: 'shop/cart', lbPolicy: 'round-robin' }, settings);
    expect(cart).toEqual({
      policy: { picker: 'p2c', hashOn: { kind: 'cookie', name: 'sid' } },
      text: 'p2c:cookie:sid',
      source: 'config',
    });
    expect(choosePolicy({ key: 'shop/api' }, { ...settings, hashOn: 'client-address' })).toEqual({
      policy: { picker: 'random', hashOn: { kind: 'client-address' } },
      text: 'random:client-address',
      source: 'config',
    });
  });

  it('then the annotation, as written', () => {
    expect(choosePolicy({ key: 'shop/web', lbPolicy: ' maglev:header:X-User ' }, settings)).toEqual(
      {
        policy: { picker: 'maglev', hashOn: { kind: 'header', name: 'x-user' } },
        text: 'maglev:header:X-User',
        source: 'annotation',
      },
    );
  });

  it('then the defaults, saying why an annotation was ignored', () => {
    expect(choosePolicy({ key: 'shop/web' }, settings)).toEqual({
      policy: { picker: 'p2c', hashOn: undefined },
      text: 'p2c',
      source: 'default',
    });
    expect(choosePolicy({ key: 'shop/web', lbPolicy: 'least-conn' }, settings)).toEqual({
      policy: { picker: 'p2c', hashOn: undefined },
      text: 'p2c',
      source: 'default',
      problem: expect.stringMatching(/^fedgate.io\/lb-policy ignored: unknown picker "least-conn"/),
    });
  });
});
