// gRPC calls through fedgate end to end: @grpc/grpc-js clients (and Node's http2 for
// what a client library hides) → the TLS listener (HTTP/2 by ALPN) → ProxyServer →
// fake gRPC backends over HTTP/1.1 answering trailers-only, and grpc-js health
// servers for the gRPC active check. Addresses: 127.202.x.x.
import { mkdtemp, rm } from 'node:fs/promises';
import { connect as h2connect, type IncomingHttpHeaders } from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Client, Server, ServerCredentials, status } from '@grpc/grpc-js';
import { HealthImplementation } from 'grpc-health-check';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { FederatedService } from '../src/catalog/model.ts';
import { ActiveChecker } from '../src/health/active.ts';
import { parseGrpcTimeout } from '../src/proxy/grpc.ts';
import { service } from './fixtures/services.ts';
import {
  emptyStream,
  FakeGrpcBackend,
  type GrpcProxy,
  grpcClient,
  startGrpcProxy,
  unary,
} from './helpers/grpc-proxy.ts';
import { CHECK_CONFIG } from './helpers/health.ts';
import { series } from './helpers/proxy-env.ts';
import { waitFor } from './helpers/wait.ts';

const HOST = '127.202.0.1';
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function backend(host: string): Promise<FakeGrpcBackend> {
  const b = await new FakeGrpcBackend().start(host);
  cleanups.push(() => b.stop());
  return b;
}

function client(p: GrpcProxy, authority: string): Client {
  const c = grpcClient(p, authority);
  cleanups.push(async () => c.close());
  return c;
}

async function failure(call: Promise<unknown>): Promise<{ code: number; details: string }> {
  try {
    await call;
  } catch (err) {
    const e = err as { code: number; details: string };
    return { code: e.code, details: e.details };
  }
  throw new Error('the call succeeded');
}

/** One call over Node's http2: the response head and its frame flags, and trailers if any. */
function rawCall(
  p: GrpcProxy,
  authority: string,
  headers: Record<string, string>,
): Promise<{
  head: IncomingHttpHeaders;
  flags: number;
  trailers?: IncomingHttpHeaders;
  data: number;
}> {
  return new Promise((resolve, reject) => {
    const session = h2connect(`https://${p.host}:${p.port}`, { ca: p.ca, servername: authority });
    session.on('error', reject);
    const s = session.request({
      ':method': 'POST',
      ':path': '/pkg.Echo/Say',
      ':authority': authority,
      'content-type': 'application/grpc',
      te: 'trailers',
      ...headers,
    });
    let head: IncomingHttpHeaders = {};
    let flags = 0;
    let trailers: IncomingHttpHeaders | undefined;
    let data = 0;
    s.on('response', (h, f) => {
      head = h;
      flags = f;
    });
    s.on('trailers', (t) => {
      trailers = t;
    });
    s.on('data', (c: Buffer) => {
      data += c.length;
    });
    s.on('error', reject);
    s.on('close', () => {
      session.close();
      resolve({ head, flags, data, ...(trailers ? { trailers } : {}) });
    });
    s.end(Buffer.from([0, 0, 0, 0, 0]));
  });
}

const ECHO = 'echo.test';
const EMPTY = 'empty.test';
const SLOW = 'slow.test';

describe("gRPC: fedgate's own failures as gRPC statuses", () => {
  let dir: string;
  let p: GrpcProxy;
  let slow: FakeGrpcBackend;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fedgate-grpc-'));
    slow = await new FakeGrpcBackend().start('127.202.1.1');
    slow.answer = 'hang';
    p = await startGrpcProxy({
      dir,
      host: HOST,
      services: [
        service([{ cluster: 'a', endpoints: [] }], 'shop/empty'),
        service(
          [{ cluster: 'a', endpoints: [{ address: '127.202.1.1', port: slow.port }] }],
          'shop/slow',
        ),
      ],
      aliases: { [EMPTY]: 'shop/empty', [SLOW]: 'shop/slow' },
      names: ['nowhere.test'],
      http: {
        limits: { maxRequestsPerEndpoint: 1, maxPendingPerService: 0 },
        retries: { perTryTimeout: '30s' },
      },
    });
  });

  afterAll(async () => {
    await p?.close();
    await slow?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('answers a call to a service with no endpoint UNAVAILABLE, NO_HEALTHY_UPSTREAM in the details', async () => {
    const err = await failure(unary(client(p, EMPTY), '/pkg.Echo/Say').done);
    expect(err.code).toBe(status.UNAVAILABLE);
    expect(err.details).toMatch(/^NO_HEALTHY_UPSTREAM: no endpoint of shop\/empty/);
    expect(
      await series(
        p.metrics,
        'fedgate_grpc_requests_total',
        'service="shop/empty"',
        'grpc_status="14"',
        'outcome="failed"',
      ),
    ).toBe(1);
  });

  it('answers the same over h2c on the plain listener', async () => {
    const c = grpcClient(p, EMPTY, true);
    cleanups.push(async () => c.close());
    const err = await failure(unary(c, '/pkg.Echo/Say').done);
    expect(err.code).toBe(status.UNAVAILABLE);
    expect(err.details).toMatch(/^NO_HEALTHY_UPSTREAM: no endpoint of shop\/empty/);
  });

  it('answers a call to an unknown host UNIMPLEMENTED, HOST_UNKNOWN in the details', async () => {
    const err = await failure(unary(client(p, 'nowhere.test'), '/pkg.Echo/Say').done);
    expect(err.code).toBe(status.UNIMPLEMENTED);
    expect(err.details).toMatch(/^HOST_UNKNOWN: /);
    expect(
      await series(
        p.metrics,
        'fedgate_grpc_requests_total',
        'service=""',
        'grpc_status="12"',
        'outcome="rejected"',
      ),
    ).toBe(1);
  });

  it('sends its answer trailers-only: one HEADERS frame with END_STREAM, HTTP 200, grpc-message percent-encoded', async () => {
    const r = await rawCall(p, EMPTY, {});
    expect(r.flags & 0x1).toBe(0x1); // END_STREAM on the HEADERS frame itself
    expect(r.data).toBe(0);
    expect(r.trailers).toBeUndefined();
    expect(r.head).toMatchObject({
      ':status': 200,
      'content-type': 'application/grpc',
      'grpc-status': '14',
      'x-fedgate-error': 'NO_HEALTHY_UPSTREAM',
    });
    expect(decodeURIComponent(String(r.head['grpc-message']))).toMatch(/^NO_HEALTHY_UPSTREAM: /);
  });

  it('answers RESOURCE_EXHAUSTED when every slot is taken and nothing may wait; a cancelled call aborts its upstream try at once', async () => {
    const c = client(p, SLOW);
    const first = unary(c, '/pkg.Echo/Say');
    await waitFor(() => slow.calls.length === 1, 5000, 'the first call at the backend');
    const err = await failure(unary(c, '/pkg.Echo/Say').done);
    expect(err.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(err.details).toMatch(/^UPSTREAM_OVERFLOW: /);
    first.cancel();
    expect((await failure(first.done)).code).toBe(status.CANCELLED);
    await waitFor(() => slow.aborted === 1, 5000, 'the backend to see its request closed');
    await waitFor(
      async () =>
        (await series(
          p.metrics,
          'fedgate_grpc_requests_total',
          'service="shop/slow"',
          'grpc_status="1"',
          'outcome="client_cancelled"',
        )) === 1,
      5000,
      'the cancel counted',
    );
  });

  it('answers DEADLINE_EXCEEDED when grpc-timeout passes first, aborts the try and tells the upstream the time left', async () => {
    const before = slow.calls.length;
    const aborted = slow.aborted;
    const r = await rawCall(p, SLOW, { 'grpc-timeout': '300m' });
    expect(r.flags & 0x1).toBe(0x1);
    expect(r.head['grpc-status']).toBe('4');
    expect(decodeURIComponent(String(r.head['grpc-message']))).toMatch(
      /^UPSTREAM_TIMEOUT: .*deadline/,
    );
    expect(slow.calls).toHaveLength(before + 1);
    const forwarded = parseGrpcTimeout(String(slow.calls.at(-1)?.['grpc-timeout']));
    expect(forwarded).toBeGreaterThan(0);
    expect(forwarded).toBeLessThanOrEqual(300);
    await waitFor(() => slow.aborted === aborted + 1, 5000, 'the try aborted');
  });

  it("ignores a malformed grpc-timeout: forwarded as it came, no deadline of fedgate's", async () => {
    slow.answer = { grpcStatus: 0 };
    try {
      const r = await rawCall(p, SLOW, { 'grpc-timeout': 'soon' });
      expect(r.head['grpc-status']).toBe('0');
      expect(slow.calls.at(-1)?.['grpc-timeout']).toBe('soon');
    } finally {
      slow.answer = 'hang';
    }
  });
});

describe('gRPC: retries by grpc-status', () => {
  let dir: string;
  let p: GrpcProxy;
  let down: FakeGrpcBackend;
  let up: FakeGrpcBackend;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fedgate-grpc-'));
    down = await new FakeGrpcBackend().start('127.202.2.1');
    up = await new FakeGrpcBackend().start('127.202.2.2');
    p = await startGrpcProxy({
      dir,
      host: HOST,
      services: [
        service(
          [
            { cluster: 'a', endpoints: [{ address: '127.202.2.1', port: down.port }] },
            { cluster: 'b', endpoints: [{ address: '127.202.2.2', port: up.port }] },
          ],
          'shop/echo',
        ),
      ],
      aliases: { [ECHO]: 'shop/echo' },
      // Enough budget that no retry is held back: the test is about which are retried.
      http: { retries: { minConcurrency: 100 } },
    });
  });

  afterAll(async () => {
    await p?.close();
    await down?.stop();
    await up?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('retries a trailers-only UNAVAILABLE in the other cluster; relays INTERNAL as it came', async () => {
    down.answer = { grpcStatus: status.UNAVAILABLE, message: 'going away' };
    const c = client(p, ECHO);
    const results = [];
    for (let i = 0; i < 20; i++) results.push(await emptyStream(c, '/pkg.Echo/List'));
    expect(results.map((r) => r.code)).toEqual(Array(20).fill(status.OK));
    // p2c picks either first; those that began at the failing one were retried.
    expect(down.calls.length).toBeGreaterThan(0);
    expect(up.calls).toHaveLength(20);
    // Every call's message reached the endpoint that answered, retried or not.
    const message = Buffer.from([0, 0, 0, 0, 4, ...Buffer.from('ping')]);
    expect(up.bodies.map((b) => b.equals(message))).toEqual(Array(20).fill(true));
    expect(down.bodies.every((b) => b.equals(message))).toBe(true);
    expect(await series(p.metrics, 'fedgate_http_retries_total', 'reason="grpc_status"')).toBe(
      down.calls.length,
    );

    down.answer = { grpcStatus: status.INTERNAL, message: 'broken' };
    const downBefore = down.calls.length;
    const upBefore = up.calls.length;
    const second = [];
    for (let i = 0; i < 20; i++) second.push(await emptyStream(c, '/pkg.Echo/List'));
    const internal = second.filter((r) => r.code === status.INTERNAL);
    expect(internal.length).toBe(down.calls.length - downBefore);
    expect(internal.length).toBeGreaterThan(0);
    expect(internal[0]?.details).toBe('broken');
    expect(up.calls.length - upBefore).toBe(20 - internal.length);
    expect(await series(p.metrics, 'fedgate_http_retries_total', 'reason="grpc_status"')).toBe(
      downBefore,
    );
    expect(
      await series(
        p.metrics,
        'fedgate_grpc_requests_total',
        'service="shop/echo"',
        'grpc_status="13"',
        'outcome="relayed"',
      ),
    ).toBe(internal.length);
  });
});

describe('gRPC: the gRPC active health check', () => {
  let dir: string;
  let p: GrpcProxy;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fedgate-grpc-'));
  });
  afterAll(async () => {
    await p?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('takes an endpoint that stops SERVING out of the plan, and back when it serves again', async () => {
    const hosts = ['127.202.3.1', '127.202.3.2', '127.202.3.3'];
    const backends = await Promise.all(hosts.map((h) => backend(h)));
    const health = hosts.map(() => new HealthImplementation({ 'pkg.Echo': 'SERVING' }));
    const healthPorts = await Promise.all(
      hosts.map(async (h, i) => {
        const server = new Server();
        health[i]!.addToServer(server);
        const port = await new Promise<number>((resolve, reject) =>
          server.bindAsync(`${h}:0`, ServerCredentials.createInsecure(), (err, n) =>
            err ? reject(err) : resolve(n),
          ),
        );
        cleanups.push(() => new Promise((r) => server.tryShutdown(() => r())));
        return port;
      }),
    );
    // Each endpoint serves calls on `http` and its health on `grpc`, as a sidecar port would.
    const base = service(
      hosts.map((h, i) => ({
        cluster: `c${i}`,
        endpoints: [{ address: h, port: backends[i]!.port }],
      })),
      'shop/echo',
    );
    const svc: FederatedService = {
      ...base,
      ports: [...base.ports, { name: 'grpc', protocol: 'TCP', port: 81 }],
      clusters: base.clusters.map((m, i) => ({
        ...m,
        endpoints: m.endpoints.map((ep) => ({
          ...ep,
          ports: [...ep.ports, { name: 'grpc', protocol: 'TCP', port: healthPorts[i]! }],
        })),
      })),
    };
    p = await startGrpcProxy({
      dir,
      host: HOST,
      services: [svc],
      aliases: { [ECHO]: 'shop/echo' },
    });
    const checker = new ActiveChecker({
      config: { ...CHECK_CONFIG, type: 'grpc', grpcService: 'pkg.Echo', port: 'grpc' },
      addressing: 'endpoints',
      store: p.store,
      log: pino({ level: 'silent' }),
    });
    cleanups.push(() => checker.stop());
    checker.update({
      version: 1,
      createdAt: 0,
      services: new Map([[svc.key, svc]]),
      clusters: new Map(),
    } as never);
    const id = `c0/${hosts[0]}`;
    await waitFor(() => p.store.endpoint('shop/echo', id)?.check === 'healthy', 5000, 'healthy');

    const c = client(p, ECHO);
    const calls = async (n: number) => {
      const before = backends.map((b) => b.calls.length);
      for (let i = 0; i < n; i++)
        expect((await emptyStream(c, '/pkg.Echo/List')).code).toBe(status.OK);
      return backends.map((b, i) => b.calls.length - before[i]!);
    };
    health[0]!.setStatus('pkg.Echo', 'NOT_SERVING');
    await waitFor(
      () => p.store.endpoint('shop/echo', id)?.check === 'unhealthy',
      5000,
      'unhealthy',
    );
    expect(p.store.endpoint('shop/echo', id)?.checkDetail).toBe('gRPC NOT_SERVING');
    const out = await calls(30);
    expect(out[0]).toBe(0);
    expect(out[1]! + out[2]!).toBe(30);

    health[0]!.setStatus('pkg.Echo', 'SERVING');
    await waitFor(
      () => p.store.endpoint('shop/echo', id)?.check === 'healthy',
      5000,
      'healthy again',
    );
    const back = await calls(30);
    expect(back[0]).toBeGreaterThan(0);
  });
});
