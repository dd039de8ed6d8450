// One host opening connections until the process runs out of descriptors would
// take every other client down with it. With http.limits.maxConnectionsPerClient a
// client's connection past its cap is closed as it is accepted, counted, while
// other clients connect and are served. Raw sockets bound to their own source
// addresses, through a real ProxyServer to the local federation's backends.
import { request as httpRequest } from 'node:http';
import { connect as netConnect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Metrics } from '../../src/observe/metrics.ts';
import { DiscoveryEnv } from '../helpers/discovery-env.ts';
import {
  ONE_ZONE_PROXY,
  oneZoneScenario,
  type ProxyBench,
  proxyBeside,
  series,
  startProxy,
} from '../helpers/proxy-env.ts';
import { waitFor } from '../helpers/wait.ts';

const SCENARIO = oneZoneScenario({ web: 8080 });
const HOST = 'web.shop.testfed.svc.example.test';
const OVERRIDES = ONE_ZONE_PROXY;
/** The hog and everyone else: two /24s. */
const HOG = '127.48.1.1';
const OTHER = '127.48.2.1';

/** One GET from `from` on its own connection: its status, or -1 when it failed. */
function get(port: number, from: string): Promise<number> {
  return new Promise((resolve) => {
    const r = httpRequest(
      {
        host: '127.0.0.1',
        port,
        path: '/',
        localAddress: from,
        headers: { host: HOST },
        agent: false,
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    r.setTimeout(10_000, () => r.destroy());
    r.on('error', () => resolve(-1));
    r.end();
  });
}

/** An idle connection from `from`, and whether the proxy has closed it. */
function idle(port: number, from: string): { socket: Socket; closed: () => boolean } {
  let closed = false;
  const socket = netConnect({ host: '127.0.0.1', port, localAddress: from });
  socket.on('error', () => {});
  socket.on('close', () => {
    closed = true;
  });
  return { socket, closed: () => closed };
}

describe('connections of one client', () => {
  const env = new DiscoveryEnv();
  let bench: ProxyBench;

  beforeAll(async () => {
    bench = await startProxy(env, SCENARIO, 48, OVERRIDES);
    const port = Number(new URL(bench.url).port);
    await waitFor(async () => (await get(port, OTHER)) === 200, 15_000, 'web to answer');
  });

  afterAll(async () => {
    await bench?.proxy.stop();
    await env.cleanup();
    await bench?.fed.stop();
  });

  it('closes a client connection past maxConnectionsPerClient as accepted, counted, while others are served', async () => {
    const metrics = new Metrics({ worker: '0' });
    const proxy = await proxyBeside(
      env,
      bench,
      { limits: { maxConnectionsPerClient: 3 }, timeouts: { idle: '30s', headers: '30s' } },
      metrics,
    );
    const port = proxy.addresses().http[0]?.port ?? 0;
    const held = [idle(port, HOG), idle(port, '127.48.1.2'), idle(port, HOG)];
    try {
      await Promise.all(held.map((h) => new Promise((r) => h.socket.once('connect', r))));
      // The fourth of that /24 is closed at once, and so is a request on it.
      const fourth = idle(port, '127.48.1.3');
      await waitFor(() => fourth.closed(), 5000, 'the fourth connection to be closed');
      expect(await get(port, HOG)).toBe(-1);
      expect(held.every((h) => !h.closed())).toBe(true);
      // Another client is served meanwhile.
      expect(await get(port, OTHER)).toBe(200);
      const closed = await series(
        metrics,
        'fedgate_http_connections_closed_total',
        'reason="client_connections"',
      );
      expect(closed).toBe(2);
      // One of the hog's closes: it may connect again.
      held[0]?.socket.destroy();
      await waitFor(async () => (await get(port, HOG)) === 200, 5000, 'a place to come free');
    } finally {
      for (const h of held) h.socket.destroy();
      await proxy.stop();
    }
  });
});
