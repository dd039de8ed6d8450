// One client against everyone else, end to end: a client (source 127.44.1.1) that
// opens many slow requests to a service with few slots, and WebSockets left idle.
// Real node:http requests and raw sockets, each bound to its own source address,
// through a real ProxyServer to the local federation's backends.
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { connect as netConnect } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { effectiveConfig, parseConfig } from '../../src/config/load.ts';
import type { Config } from '../../src/config/schema.ts';
import { Metrics } from '../../src/observe/metrics.ts';
import { ProxyServer } from '../../src/proxy/server.ts';
import { DiscoveryEnv } from '../helpers/discovery-env.ts';
import { seriesTotal } from '../helpers/prometheus.ts';
import {
  ONE_ZONE_PROXY,
  oneZoneScenario,
  type ProxyBench,
  startProxy,
  webSocketUpgrade,
} from '../helpers/proxy-env.ts';
import { sleep, waitFor } from '../helpers/wait.ts';

const SCENARIO = oneZoneScenario({ slow: 8080, ws: 8081 });
const BLOCK = 44;
const SLOW = 'slow.shop.testfed.svc.example.test';
const WS = 'ws.shop.testfed.svc.example.test';
/** The hog and everyone else: two /24s. */
const HOG = '127.44.1.1';
const OTHER = '127.44.2.1';
const OVERRIDES = ONE_ZONE_PROXY;

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** One request from source `from` on its own connection; `cancel` drops it. */
function send(port: number, host: string, path: string, from: string) {
  let cancel = () => {};
  const done = new Promise<Reply>((resolve, reject) => {
    const req = httpRequest(
      { host: '127.0.0.1', port, path, localAddress: from, headers: { host }, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: `${chunks}` }),
        );
        res.on('error', reject);
      },
    );
    req.setTimeout(45_000, () => req.destroy(new Error(`no answer to ${path} within 45 s`)));
    req.on('error', reject);
    req.end();
    cancel = () => req.destroy();
  });
  done.catch(() => {});
  return { done, cancel: () => cancel() };
}

/** A client's masked WebSocket text frame (payload under 126 bytes). */
function textFrame(text: string): Buffer {
  const payload = Buffer.from(text);
  const mask = [7, 1, 3, 5];
  const masked = payload.map((b, i) => b ^ (mask[i % 4] ?? 0));
  return Buffer.concat([Buffer.from([0x81, 0x80 | payload.length, ...mask]), masked]);
}

/** A WebSocket handshake from source `from`, over a raw socket: what comes back, and whether it closed. */
function openTunnel(port: number, host: string, from: string) {
  const socket = netConnect({ host: '127.0.0.1', port, localAddress: from });
  const state = { text: '', closed: false };
  socket.on('data', (d: Buffer) => {
    state.text += d.toString('latin1');
  });
  socket.on('error', () => {});
  socket.on('close', () => {
    state.closed = true;
  });
  socket.once('connect', () => socket.write(webSocketUpgrade(host)));
  const status = () => Number(/^HTTP\/1\.1 (\d{3})/.exec(state.text)?.[1] ?? 0);
  return { socket, state, status };
}

/** A counter as /metrics shows it: summed over the series with every label given. */
const series = async (metrics: Metrics, name: string, ...labels: string[]) =>
  seriesTotal(await metrics.registry.metrics(), name, ...labels);

describe("one client against a service's slots", () => {
  const env = new DiscoveryEnv();
  let bench: ProxyBench;

  beforeAll(async () => {
    bench = await startProxy(env, SCENARIO, BLOCK, OVERRIDES);
    const port = Number(new URL(bench.url).port);
    await waitFor(
      async () =>
        (await send(port, SLOW, '/', OTHER).done).status === 200 &&
        (await send(port, WS, '/', OTHER).done).status === 200,
      15_000,
      'slow and ws to answer through the proxy',
    );
  });

  afterAll(async () => {
    await bench?.proxy.stop();
    await env.cleanup();
    await bench?.fed.stop();
  });

  type Over = { http?: Record<string, unknown>; routing?: Record<string, unknown> };

  /** The bench config with `http` and `routing` over it. */
  async function configWith(over: Over): Promise<Config> {
    const eff = effectiveConfig(bench.config);
    return parseConfig(
      stringify({
        ...eff,
        http: { listen: ['127.0.0.1:0'], ...over.http },
        routing: { ...eff.routing, ...over.routing },
      }),
      join(await env.dir(), 'fedgate.yaml'),
    );
  }

  /** A proxy of its own on the bench's discovery, on configWith(over). */
  async function proxyWith(
    over: Over,
    metrics: Metrics,
  ): Promise<{ proxy: ProxyServer; port: number }> {
    const proxy = await ProxyServer.start({
      config: await configWith(over),
      catalog: bench.d.catalog,
      health: bench.d.health,
      router: bench.d.router,
      log: env.log.logger,
      observer: metrics,
    });
    return { proxy, port: proxy.addresses().http[0]?.port ?? 0 };
  }

  it("refuses a hog's excess 429 at once, counted, while another client is served", async () => {
    const metrics = new Metrics({ worker: '0' });
    // One endpoint of 4 slots, half of them per client: the hog's share is 2.
    const { proxy, port } = await proxyWith(
      {
        http: {
          limits: {
            maxRequestsPerEndpoint: 4,
            maxPendingPerService: 16,
            clientShare: 0.5,
            clientShareFloor: 1,
          },
          // Were the excess queued, it would wait this long before any answer.
          retries: { perTryTimeout: '20s', attempts: 0 },
        },
      },
      metrics,
    );
    const hog = Array.from({ length: 6 }, () => send(port, SLOW, '/delay/30000', HOG));
    try {
      const answered: Reply[] = [];
      for (const h of hog)
        void h.done.then(
          (r) => answered.push(r),
          () => {},
        );
      await waitFor(() => answered.length >= 4, 10_000, "the hog's excess to be answered");
      expect(answered.map((r) => r.status)).toEqual([429, 429, 429, 429]);
      expect(answered.map((r) => r.headers['x-fedgate-error'])).toEqual(
        Array(4).fill('CLIENT_OVER_SHARE'),
      );
      // Another client is served while the hog's share is still in flight.
      const other = await send(port, SLOW, '/', OTHER).done;
      expect(other.status).toBe(200);
      expect(answered).toHaveLength(4);
      const refused = ['service="shop/slow"', 'outcome="rejected"', 'code="4xx"'];
      expect(await series(metrics, 'fedgate_http_requests_total', ...refused)).toBe(4);
      expect(
        await series(metrics, 'fedgate_http_client_over_share_total', 'service="shop/slow"'),
      ).toBe(4);
    } finally {
      for (const h of hog) h.cancel();
      await proxy.stop();
    }
  });

  it("serves the pending queue's clients in turn, and counts waiting requests in the share", async () => {
    const metrics = new Metrics({ worker: '0' });
    // 2 slots; the floor lets the hog hold 6: 2 in flight, 4 waiting.
    const { proxy, port } = await proxyWith(
      {
        http: {
          limits: {
            maxRequestsPerEndpoint: 2,
            maxPendingPerService: 16,
            clientShare: 0.5,
            clientShareFloor: 6,
          },
          retries: { perTryTimeout: '20s', attempts: 0 },
        },
      },
      metrics,
    );
    const hog = Array.from({ length: 6 }, () => send(port, SLOW, '/delay/1500', HOG));
    try {
      let hogDone = 0;
      for (const h of hog)
        void h.done.then(
          () => hogDone++,
          () => {},
        );
      await waitFor(
        () => proxy.upstreams.pendingCount('shop/slow') === 4,
        10_000,
        "the hog's 4 requests to wait",
      );
      // Waiting ones count: a 7th is refused at once.
      const seventh = await send(port, SLOW, '/', HOG).done;
      expect(seventh.status).toBe(429);
      // The other client's request waits too, but not behind the hog's 4: it takes
      // the first slots freed with the hog, in turn.
      const other = await send(port, SLOW, '/', OTHER).done;
      expect(other.status).toBe(200);
      expect(hogDone).toBe(2);
      await waitFor(() => hogDone === 6, 15_000, "the hog's requests to finish");
    } finally {
      for (const h of hog) h.cancel();
      await proxy.stop();
    }
  });

  it('closes an idle tunnel after tunnelIdle, freeing its slot, counted; an active one stays', async () => {
    const metrics = new Metrics({ worker: '0' });
    // One slot, nothing may wait: a held tunnel shuts out the next upgrade.
    const { proxy, port } = await proxyWith(
      {
        http: {
          timeouts: { tunnelIdle: '500ms' },
          limits: { maxRequestsPerEndpoint: 1, maxPendingPerService: 0 },
        },
      },
      metrics,
    );
    const idle = ['fedgate_http_tunnels_idle_closed_total', 'service="shop/ws"'] as const;
    try {
      const first = openTunnel(port, WS, HOG);
      await waitFor(() => first.state.text.includes('"cluster"'), 5000, 'the first tunnel');
      expect(first.status()).toBe(101);
      const refused = openTunnel(port, WS, OTHER);
      await waitFor(() => refused.state.closed, 5000, 'the second upgrade to be refused');
      expect(refused.status()).toBe(503);
      // Nothing sent either way: closed by the proxy.
      await waitFor(() => first.state.closed, 10_000, 'the idle tunnel to be closed');
      expect(await series(metrics, ...idle)).toBe(1);
      // Its slot is free: the next upgrade gets through, and stays while it talks.
      const next = openTunnel(port, WS, OTHER);
      await waitFor(() => next.state.text.includes('"cluster"'), 5000, 'the next tunnel');
      expect(next.status()).toBe(101);
      for (let i = 0; i < 8; i++) {
        next.socket.write(textFrame(`ping ${i}`));
        await sleep(200);
      }
      expect(next.state.closed).toBe(false);
      expect(next.state.text).toContain('ping 7');
      await waitFor(() => next.state.closed, 10_000, 'the quiet tunnel to be closed');
      expect(await series(metrics, ...idle)).toBe(2);
    } finally {
      await proxy.stop();
    }
  });

  it("takes a service's own tunnelIdle from routing.services over http.timeouts.tunnelIdle", async () => {
    const metrics = new Metrics({ worker: '0' });
    const { proxy, port } = await proxyWith(
      {
        http: { timeouts: { tunnelIdle: '1h' } },
        routing: { services: { 'shop/ws': { tunnelIdle: '400ms' } } },
      },
      metrics,
    );
    try {
      const ws = openTunnel(port, WS, HOG);
      const slow = openTunnel(port, SLOW, HOG);
      await waitFor(
        () => ws.state.text.includes('"cluster"') && slow.state.text.includes('"cluster"'),
        5000,
        'both tunnels',
      );
      await waitFor(() => ws.state.closed, 10_000, "shop/ws's tunnel to be closed");
      // Well past shop/ws's 400 ms, shop/slow's tunnel (1 h) is still open.
      await sleep(1200);
      expect(slow.state.closed).toBe(false);
      expect(
        await series(metrics, 'fedgate_http_tunnels_idle_closed_total', 'service="shop/ws"'),
      ).toBe(1);
      expect(
        await series(metrics, 'fedgate_http_tunnels_idle_closed_total', 'service="shop/slow"'),
      ).toBe(0);
      slow.socket.destroy();
    } finally {
      await proxy.stop();
    }
  });

  it('takes a new clientShare at a reload', async () => {
    const limits = { maxRequestsPerEndpoint: 4, maxPendingPerService: 16, clientShareFloor: 1 };
    // A quarter of 4 slots: the hog's share is 1.
    const { proxy, port } = await proxyWith(
      { http: { limits: { ...limits, clientShare: 0.25 } } },
      new Metrics({ worker: '0' }),
    );
    const pod = bench.fed.backends().find((b) => b.info.service === 'slow');
    const seen = pod?.requests ?? 0;
    const held = send(port, SLOW, '/delay/30000', HOG);
    try {
      await waitFor(() => (pod?.requests ?? 0) > seen, 5000, 'the held request at the pod');
      expect((await send(port, SLOW, '/', HOG).done).status).toBe(429);
      const staged = await proxy.stage(
        await configWith({ http: { limits: { ...limits, clientShare: 1 } } }),
      );
      staged.commit();
      expect((await send(port, SLOW, '/', HOG).done).status).toBe(200);
    } finally {
      held.cancel();
      await proxy.stop();
    }
  });
});
