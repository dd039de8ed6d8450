import { once } from 'node:events';
import { createServer, type Http2Session } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { Upstreams } from './upstreams.ts';

const OPTIONS = {
  maxRequestsPerEndpoint: 10,
  maxPendingPerService: 10,
  connectTimeoutMs: 2000,
  idleTimeoutMs: 60_000,
  bodyTimeoutMs: 10_000,
};

describe('Upstreams', () => {
  it('keeps one pool per origin and wire, and closes the HTTP/2 sessions of endpoints that left', async () => {
    const server = createServer((_req, res) => res.end('ok'));
    const sessions = new Set<Http2Session>();
    server.on('session', (s) => {
      sessions.add(s);
      s.on('close', () => sessions.delete(s));
    });
    server.listen(0, '127.200.3.1');
    await once(server, 'listening');
    const { port } = server.address() as AddressInfo;
    const u = new Upstreams(OPTIONS);
    try {
      const ep = u.endpoint('c0/127.200.3.1');
      const route = { origin: `http://127.200.3.1:${port}`, wire: { h2: true, tls: undefined } };
      const h2 = ep.upstream(route);
      expect(ep.upstream({ ...route })).toBe(h2);
      expect(ep.http1(route)).not.toBe(h2);
      await new Promise<void>((resolve, reject) =>
        h2.dispatch(
          { method: 'GET', path: '/', headers: ['host', 'x'] },
          { onResponseEnd: () => resolve(), onResponseError: (_c, e) => reject(e) },
        ),
      );
      expect(sessions.size).toBe(1);
      u.retain(new Set());
      await waitUntil(() => sessions.size === 0);
      expect(u.size).toBe(0);
    } finally {
      await u.close(true);
      server.close();
    }
  });
});

const route = (key: string) => ({
  origin: 'http://127.206.0.1:8443',
  wire: { h2: false, tls: { key, options: { servername: 'web.internal' } } },
});

describe('UpstreamEndpoint over TLS', () => {
  it('keeps a pool per origin and profile, and replaces it (the old one closing) when the key changes', async () => {
    const ups = new Upstreams(OPTIONS);
    const ep = ups.endpoint('alpha/127.206.0.1');
    const plain = ep.pool('http://127.206.0.1:8443');
    const one = ep.upstream(route('mesh:aaaa'));
    expect(one).not.toBe(plain);
    expect(ep.upstream(route('mesh:aaaa'))).toBe(one);
    // Another profile on the same pods: a pool of its own, the first left open.
    const other = ep.upstream(route('edge:cccc'));
    expect(other).not.toBe(one);
    expect(ep.pools()).toContain(one);
    // The profile's files changed (a reload): a new pool, the old one closing.
    const two = ep.upstream(route('mesh:bbbb'));
    expect(two).not.toBe(one);
    expect(ep.pools()).not.toContain(one);
    expect(ep.pools()).toEqual(expect.arrayContaining([plain, two, other]));
    await ups.close(true);
  });
});

async function waitUntil(ok: () => boolean): Promise<void> {
  for (let i = 0; i < 100 && !ok(); i++) await new Promise((r) => setTimeout(r, 20));
  expect(ok()).toBe(true);
}
