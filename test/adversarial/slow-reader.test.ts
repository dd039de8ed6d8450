// A client that asks for a large answer and stops reading it: with its socket's
// buffers full, fedgate's relay pauses the upstream, which would hold the endpoint's
// slot for as long as the client liked. Past http.timeouts.responseSendIdle the
// answer is cut, the slot freed at once, the endpoint not blamed, and the request
// counted. Raw sockets and node:http through a real ProxyServer to the local
// federation's /bytes backend.
import { request as httpRequest } from 'node:http';
import { connect as netConnect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Outcome } from '../../src/health/outlier.ts';
import { Metrics } from '../../src/observe/metrics.ts';
import { ProxyServer } from '../../src/proxy/server.ts';
import { DiscoveryEnv } from '../helpers/discovery-env.ts';
import {
  configBeside,
  ONE_ZONE_PROXY,
  oneZoneScenario,
  type ProxyBench,
  series,
  startProxy,
} from '../helpers/proxy-env.ts';
import { waitFor } from '../helpers/wait.ts';

const SCENARIO = oneZoneScenario({ big: 8080 });
const HOST = 'big.shop.testfed.svc.example.test';
const OVERRIDES = ONE_ZONE_PROXY;

/** One GET on its own connection: its status, or -1 when it failed. */
function get(port: number, path: string): Promise<number> {
  return new Promise((resolve) => {
    const r = httpRequest(
      { host: '127.0.0.1', port, path, headers: { host: HOST }, agent: false },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
        res.on('error', () => resolve(-1));
      },
    );
    r.setTimeout(20_000, () => r.destroy());
    r.on('error', () => resolve(-1));
    r.end();
  });
}

/** A client that asks for 1 GB, reads its first chunk, and then nothing. */
function stopReading(port: number) {
  const socket = netConnect({ host: '127.0.0.1', port });
  const state = { head: '', closed: false, got: 0 };
  socket.on('error', () => {});
  socket.on('close', () => {
    state.closed = true;
  });
  socket.on('data', (d: Buffer) => {
    if (state.got === 0) {
      state.head = d.toString('latin1', 0, 12);
      socket.pause();
    }
    state.got += d.length;
  });
  socket.write(`GET /bytes/1000000000 HTTP/1.1\r\nhost: ${HOST}\r\n\r\n`);
  return { socket, state };
}

describe('a client that stops reading its answer', () => {
  const env = new DiscoveryEnv();
  let bench: ProxyBench;

  beforeAll(async () => {
    bench = await startProxy(env, SCENARIO, 47, OVERRIDES);
    const port = Number(new URL(bench.url).port);
    await waitFor(async () => (await get(port, '/')) === 200, 15_000, 'big to answer');
  });

  afterAll(async () => {
    await bench?.proxy.stop();
    await env.cleanup();
    await bench?.fed.stop();
  });

  /**
   * A proxy of its own whose one endpoint takes one request at a time; `reports`
   * is what it told outlier detection and health.
   */
  async function oneSlot(responseSendIdle: string, metrics: Metrics) {
    const reports: Outcome[] = [];
    const proxy = await ProxyServer.start({
      config: await configBeside(env, bench, {
        limits: { maxRequestsPerEndpoint: 1, maxPendingPerService: 0, clientShare: 0 },
        timeouts: { responseSendIdle },
      }),
      catalog: bench.d.catalog,
      health: {
        report: (service, id, outcome) => {
          reports.push(outcome);
          bench.d.health.report(service, id, outcome);
        },
      },
      router: bench.d.router,
      log: env.log.logger,
      observer: metrics,
    });
    return { proxy, port: proxy.addresses().http[0]?.port ?? 0, reports };
  }

  it('cuts its answer after responseSendIdle, freeing the slot for others, counted and nobody blamed', async () => {
    const metrics = new Metrics({ worker: '0' });
    const { proxy, port, reports } = await oneSlot('1500ms', metrics);
    const slow = stopReading(port);
    try {
      await waitFor(() => slow.state.head !== '', 10_000, 'the answer to start');
      expect(slow.state.head).toBe('HTTP/1.1 200');
      // The slot is the slow reader's: another client overflows at once.
      expect(await get(port, '/')).toBe(503);
      await waitFor(async () => (await get(port, '/')) === 200, 15_000, 'the slot to be free');
      // The slow reader finds its answer cut short once it reads what was sent.
      slow.socket.resume();
      await waitFor(() => slow.state.closed, 15_000, 'the cut answer to end');
      expect(slow.state.got).toBeLessThan(1_000_000_000);
      const stalled = ['service="shop/big"', 'outcome="rejected"', 'code="2xx"'];
      expect(await series(metrics, 'fedgate_http_requests_total', ...stalled)).toBe(1);
      expect(await series(metrics, 'fedgate_http_retries_total')).toBe(0);
      // The endpoint is not blamed: the client's slowness is no upstream failure.
      expect(reports.filter((o) => o.origin === 'local')).toEqual([]);
    } finally {
      slow.socket.destroy();
      await proxy.stop();
    }
  });

  it('keeps a slow reader that still takes bytes within responseSendIdle', async () => {
    const metrics = new Metrics({ worker: '0' });
    const { proxy, port } = await oneSlot('1500ms', metrics);
    const socket = netConnect({ host: '127.0.0.1', port });
    let got = 0;
    let closed = false;
    socket.on('error', () => {});
    socket.on('close', () => {
      closed = true;
    });
    socket.on('data', (d: Buffer) => {
      got += d.length;
      // Reads a little every 300 ms: slow, but never silent for the timeout.
      socket.pause();
      setTimeout(() => socket.resume(), 300);
    });
    socket.write(`GET /bytes/4000000 HTTP/1.1\r\nhost: ${HOST}\r\n\r\n`);
    try {
      await waitFor(() => got > 0, 10_000, 'the answer to start');
      await new Promise((r) => setTimeout(r, 4000));
      expect(closed).toBe(false);
    } finally {
      socket.destroy();
      await proxy.stop();
    }
  });
});
