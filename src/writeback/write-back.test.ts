import { describe, expect, it } from 'vitest';
import type { Config } from '../config/schema.ts';
import { leaseCluster } from './write-back.ts';

const config = (gateway: string[]) =>
  ({
    clusters: [{ name: 'alpha' }, { name: 'beta' }],
    gatewayAPI: { clusters: gateway },
  }) as unknown as Config;

describe('leaseCluster', () => {
  it('is the first config cluster of the Gateway API, else the first member', () => {
    expect(leaseCluster(config(['beta', 'alpha']))).toBe('beta');
    expect(leaseCluster(config([]))).toBe('alpha');
  });
});
