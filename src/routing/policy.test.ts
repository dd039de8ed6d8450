import { describe, expect, it } from 'vitest';
import { parseLbPolicy } from './policy.ts';

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
