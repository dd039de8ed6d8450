import { describe, expect, it } from 'vitest';
import { Upstreams } from './upstreams.ts';

const opts = {
  maxRequestsPerEndpoint: 4,
  maxPendingPerService: 4,
  connectTimeoutMs: 1000,
  idleTimeoutMs: 1000,
  bodyTimeoutMs: 1000,
};
const ctx = (key: string) => ({ key, options: { servername: 'web.internal' } });

describe('UpstreamEndpoint over TLS', () => {
  it('keeps a pool per origin and profile, and replaces it (closing the old) when the key changes', async () => {
    const ups = new Upstreams(opts);
    const ep = ups.endpoint('alpha/127.206.0.1');
    const origin = 'http://127.206.0.1:8443';
    const plain = ep.pool(origin);
    const one = ep.pool(origin, ctx('mesh:aaaa'));
    expect(one).not.toBe(plain);
    expect(ep.pool(origin, ctx('mesh:aaaa'))).toBe(one);
    // Another profile on the same pods: a pool of its own, the first left open.
    const other = ep.pool(origin, ctx('edge:cccc'));
    expect(other).not.toBe(one);
    expect(one.closed).toBe(false);
    // The profile's files changed (a reload): a new pool, the old one closing.
    const two = ep.pool(origin, ctx('mesh:bbbb'));
    expect(two).not.toBe(one);
    expect(one.closed).toBe(true);
    expect(two.closed).toBe(false);
    expect(ep.pools()).toEqual(expect.arrayContaining([plain, two, other]));
    await ups.close(true);
  });
});
