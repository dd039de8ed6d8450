// fedgate's HTTP edge proxy under hostile and failing conditions, end to end: real
// clients (raw sockets where the bytes matter, node:http, node:http2, node:tls)
// against the local federation's real backends through a real ProxyServer, and the
// CLI's drain on SIGTERM as a child process.
import { writeFile } from 'node:fs/promises';
import { Agent, request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { type ClientHttp2Session, connect as h2connect } from 'node:http2';
import { request as httpsRequest } from 'node:https';
import {
  type AddressInfo,
  createServer as createTcpServer,
  connect as netConnect,
  type Socket,
  type Server as TcpServer,
} from 'node:net';
import { join } from 'node:path';
import { type TLSSocket, connect as tlsConnect } from 'node:tls';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import type { Backend } from '../src/localfed/backends.ts';
import { type ClusterPki, makeClusterPki } from '../src/localfed/pki.ts';
import { Metrics } from '../src/observe/metrics.ts';
import { withAccessLog } from '../src/proxy/access-log.ts';
import type { ProxyObserver } from '../src/proxy/observer.ts';
import type { ProxyServer } from '../src/proxy/server.ts';
import { CLI, start } from './helpers/cli.ts';
import { DiscoveryEnv, FAST_WATCH, LogCapture } from './helpers/discovery-env.ts';
import { connectionRefused } from './helpers/ports.ts';
import {
  PROXY_ONLY_HEALTH,
  type ProxyBench,
  proxyBeside,
  series,
  startProxy,
  webSocketUpgrade,
} from './helpers/proxy-env.ts';
import { sleep, waitFor } from './helpers/wait.ts';

// alpha (127.225.x.x): web in us-east-a and us-east-b, solo (one pod) in us-east-a;
// beta (127.226.x.x): web in us-west-a. The proxy runs "in" us-east-a.
const SCENARIO = `
federation: { name: testfed, domain: example.test }
terminationGraceSeconds: 1
clusters:
  - name: alpha
    region: us-east
    zones: [{ name: us-east-a, nodes: 1 }, { name: us-east-b, nodes: 1 }]
  - name: beta
    region: us-west
    zones: [{ name: us-west-a, nodes: 1 }]
services:
  - { name: web, namespace: shop, ports: [{ name: http, port: 80, targetPort: 8080 }], clusters: [alpha, beta], replicasPerZone: 1 }
  - name: solo
    namespace: shop
    ports: [{ name: http, port: 80, targetPort: 8081 }]
    clusters: [alpha]
    replicasPerZone: 0
    replicas: { alpha/us-east-a: 1 }
`;
const BLOCK = 225;
const WEB = 'web.shop.testfed.svc.example.test';
const WEB_MCS = 'web.shop.svc.clusterset.local';
const SOLO = 'solo.shop.testfed.svc.example.test';
/** The bench proxy's small head limits. */
const MAX_HEADER_SIZE = 2048;
const MAX_HEADER_COUNT = 10;
/** Discovery for every proxy here: what it does with failing backends is its own retry logic alone. */
const OVERRIDES = { self: { region: 'us-east', zone: 'us-east-a' }, health: PROXY_ONLY_HEALTH };

interface PodJson {
  cluster: string;
  zone: string;
  pod: string;
  service: string;
  method: string;
  path: string;
  headers: Record<string, string>;
  status?: number;
}

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** One request, bounded: on its own connection (Connection: close) unless given an agent. */
function send(
  port: number,
  host: string,
  path: string,
  opts: { method?: string; body?: string; headers?: Record<string, string>; agent?: Agent } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port,
        path,
        method: opts.method ?? 'GET',
        headers: { host, ...opts.headers },
        agent: opts.agent ?? false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString(),
          }),
        );
        res.on('error', reject);
      },
    );
    req.setTimeout(15_000, () => req.destroy(new Error(`no answer to ${path} within 15 s`)));
    req.on('error', reject);
    req.end(opts.body);
  });
}

const pod = (r: Reply): PodJson => JSON.parse(r.body) as PodJson;

interface RawResult {
  text: string;
  /** The HTTP status of the first response, 0 when none came. */
  status: number;
  /** The proxy closed the connection within the wait. */
  closed: boolean;
}

/**
 * Writes `payload` once `socket` is connected (`ready` names the event) and reads until
 * the proxy closes it, or `waitMs`.
 */
function exchange(
  socket: Socket,
  ready: 'connect' | 'secureConnect',
  payload: string,
  waitMs: number,
): Promise<RawResult> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let closed = false;
    const done = () => {
      clearTimeout(timer);
      socket.destroy();
      const text = Buffer.concat(chunks).toString('latin1');
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);
      resolve({ text, status, closed });
    };
    const timer = setTimeout(done, waitMs);
    socket.once(ready, () => socket.write(payload));
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('end', () => {
      closed = true;
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      closed = true;
      done();
    });
  });
}

/** Writes `payload` on a fresh socket and reads until the proxy closes it, or `waitMs`. */
function raw(port: number, payload: string, waitMs = 5000): Promise<RawResult> {
  return exchange(netConnect({ host: '127.0.0.1', port }), 'connect', payload, waitMs);
}

/** Header value in a raw response text (first match), lower-cased name. */
function rawHeader(text: string, name: string): string | undefined {
  const head = text.split('\r\n\r\n')[0] ?? '';
  for (const line of head.split('\r\n').slice(1)) {
    const colon = line.indexOf(':');
    if (line.slice(0, colon).toLowerCase() === name) return line.slice(colon + 1).trim();
  }
  return undefined;
}

/** How many responses the text holds. */
const responseCount = (text: string) => text.match(/HTTP\/1\.1 \d{3} /g)?.length ?? 0;

/** One HTTP/2 request on `session`, bounded; a stream reset rejects. */
function h2exchange(
  session: ClientHttp2Session,
  headers: Record<string, string>,
  body?: string,
): Promise<{ status: number; headers: IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const stream = session.request(headers, { endStream: body === undefined });
    let status = 0;
    let head: IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    stream.setTimeout(10_000, () => stream.close());
    stream.on('response', (h) => {
      status = Number(h[':status']);
      head = h;
    });
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () =>
      resolve({ status, headers: head, body: Buffer.concat(chunks).toString() }),
    );
    stream.on('error', reject);
    stream.on('close', () =>
      reject(new Error(`stream closed without an answer (RST code ${stream.rstCode})`)),
    );
    if (body !== undefined) stream.end(body);
  });
}

/**
 * A slowloris client: once connected, sends a partial request head and then one more
 * header byte every 300 ms, recording what comes back and when the socket closes.
 */
function slowHead(socket: Socket, ready: 'connect' | 'secureConnect') {
  const state = { closedAt: 0, byProxy: false, text: '' };
  let trickle: NodeJS.Timeout | undefined;
  socket.once(ready, () => {
    socket.write(`GET / HTTP/1.1\r\nHost: ${WEB}\r\nX-Slow: `);
    trickle = setInterval(() => {
      if (!socket.destroyed && socket.writable) socket.write('a');
    }, 300);
  });
  socket.on('data', (c: Buffer) => {
    state.text += c.toString('latin1');
  });
  socket.on('end', () => {
    state.byProxy = true;
  });
  socket.on('error', () => {});
  socket.on('close', () => {
    clearInterval(trickle);
    state.closedAt = Date.now();
  });
  return { socket, state, stop: () => clearInterval(trickle) };
}

/** Like raw(), over TLS with ALPN http/1.1. */
function tlsRaw(
  port: number,
  servername: string,
  ca: string,
  payload: string,
  waitMs = 5000,
): Promise<RawResult> {
  const socket = tlsConnect({
    host: '127.0.0.1',
    port,
    servername,
    ca,
    ALPNProtocols: ['http/1.1'],
  });
  return exchange(socket, 'secureConnect', payload, waitMs);
}

describe('the HTTP edge proxy, hardened', () => {
  const env = new DiscoveryEnv();
  let bench: ProxyBench;
  let port: number;
  const extra: ProxyServer[] = [];
  /** Closes the test's own TCP servers, cutting their connections. */
  const closers: (() => Promise<void>)[] = [];

  beforeAll(async () => {
    bench = await startProxy(env, SCENARIO, BLOCK, {
      ...OVERRIDES,
      http: {
        listen: ['127.0.0.1:0'],
        limits: { maxHeaderSize: MAX_HEADER_SIZE, maxHeaderCount: MAX_HEADER_COUNT },
      },
    });
    port = Number(new URL(bench.url).port);
    // Both services known to the proxy before any test.
    await waitFor(
      async () => {
        const web = await send(port, WEB, '/');
        const solo = await send(port, SOLO, '/');
        return web.status === 200 && solo.status === 200;
      },
      15_000,
      'web and solo to answer through the proxy',
    );
  });

  afterAll(async () => {
    for (const p of extra.splice(0)) await p.stop();
    await bench?.proxy.stop();
    await env.cleanup();
    await bench?.fed.stop();
  });

  afterEach(async () => {
    for (const close of closers.splice(0)) await close();
    // Every backend back to normal and listening for the next test.
    for (const b of bench?.fed.backends() ?? []) {
      b.mode = 'ok';
      await b.start();
    }
  });

  /** A TCP server of the test's own on a loopback address; closed after the test. */
  async function tcpServer(
    host: string,
    at: number,
    onSocket: (s: Socket) => void,
  ): Promise<TcpServer> {
    const sockets = new Set<Socket>();
    const server = createTcpServer((s) => {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {});
      onSocket(s);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(at, host, () => resolve());
    });
    closers.push(
      () =>
        new Promise<void>((resolve) => {
          server.close(() => resolve());
          for (const s of sockets) s.destroy();
        }),
    );
    return server;
  }

  /** Another proxy on the same federation and discovery, with its own `http` block. */
  async function proxyWith(
    http: Record<string, unknown>,
    observer?: ProxyObserver,
  ): Promise<ProxyServer> {
    const proxy = await proxyBeside(env, bench, http, observer);
    extra.push(proxy);
    return proxy;
  }

  async function stopProxy(proxy: ProxyServer): Promise<void> {
    extra.splice(extra.indexOf(proxy), 1);
    await proxy.stop();
  }

  const plainPort = (p: ProxyServer) => p.addresses().http[0]!.port;
  const webPods = () => bench.fed.backends().filter((b) => b.info.service === 'web');
  const webIn = (zone: string): Backend => webPods().find((b) => b.info.zone === zone)!;
  const soloPod = (): Backend => bench.fed.backends().find((b) => b.info.service === 'solo')!;
  const counts = (pods: Backend[]) => pods.map((b) => b.requests);
  const totalRequests = () => bench.fed.backends().reduce((n, b) => n + b.requests, 0);

  // ---- 1. smuggling shapes and head limits -------------------------------------

  describe('malformed and ambiguous requests', () => {
    const expectRejected = (r: RawResult, status: number, code: string) => {
      expect(r.status, r.text).toBe(status);
      expect(rawHeader(r.text, 'x-fedgate-error')).toBe(code);
      expect(r.closed).toBe(true);
      // Nothing after the rejection was parsed as a request of its own.
      expect(responseCount(r.text)).toBe(1);
    };

    it('rejects Content-Length with Transfer-Encoding: chunked (400, closed, nothing forwarded)', async () => {
      const before = totalRequests();
      const r = await raw(
        port,
        `POST /echo HTTP/1.1\r\nHost: ${WEB}\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n` +
          `0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: ${WEB}\r\n\r\n`,
      );
      expectRejected(r, 400, 'BAD_REQUEST');
      expect(totalRequests()).toBe(before);
    });

    it('rejects two different Content-Length headers (400, closed)', async () => {
      const before = totalRequests();
      const r = await raw(
        port,
        `POST /echo HTTP/1.1\r\nHost: ${WEB}\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!`,
      );
      expectRejected(r, 400, 'BAD_REQUEST');
      expect(totalRequests()).toBe(before);
    });

    it('rejects obsolete line folding (400, closed)', async () => {
      const before = totalRequests();
      const r = await raw(
        port,
        `GET / HTTP/1.1\r\nHost: ${WEB}\r\nX-Folded: first\r\n second\r\nConnection: close\r\n\r\n`,
      );
      expectRejected(r, 400, 'BAD_REQUEST');
      expect(totalRequests()).toBe(before);
    });

    it('answers 431 to a request head over http.limits.maxHeaderSize, and serves one under it', async () => {
      const under = await raw(
        port,
        `GET / HTTP/1.1\r\nHost: ${WEB}\r\nX-Big: ${'a'.repeat(MAX_HEADER_SIZE / 2)}\r\nConnection: close\r\n\r\n`,
      );
      expect(under.status, under.text).toBe(200);
      const before = totalRequests();
      const over = await raw(
        port,
        `GET / HTTP/1.1\r\nHost: ${WEB}\r\nX-Big: ${'a'.repeat(MAX_HEADER_SIZE + 512)}\r\n\r\n`,
      );
      expectRejected(over, 431, 'HEADERS_TOO_LARGE');
      expect(totalRequests()).toBe(before);
    });

    it('answers 431 to more headers than http.limits.maxHeaderCount, and serves exactly that many', async () => {
      const head = (n: number) => {
        // Host and Connection count too.
        let h = `GET / HTTP/1.1\r\nHost: ${WEB}\r\nConnection: close\r\n`;
        for (let i = 1; i <= n - 2; i++) h += `X-H${i}: ${i}\r\n`;
        return `${h}\r\n`;
      };
      const at = await raw(port, head(MAX_HEADER_COUNT));
      expect(at.status, at.text).toBe(200);
      const before = totalRequests();
      const over = await raw(port, head(MAX_HEADER_COUNT + 1));
      expectRejected(over, 431, 'HEADERS_TOO_LARGE');
      expect(totalRequests()).toBe(before);
    });

    it('answers CONNECT with 405 and connects nowhere', async () => {
      let connected = 0;
      const target = await tcpServer('127.0.0.1', 0, (s) => {
        connected++;
        s.destroy();
      });
      const where = `127.0.0.1:${(target.address() as AddressInfo).port}`;
      const before = totalRequests();
      const r = await raw(port, `CONNECT ${where} HTTP/1.1\r\nHost: ${where}\r\n\r\n`);
      expectRejected(r, 405, 'METHOD_NOT_ALLOWED');
      // The same with a service's own name as the authority.
      const r2 = await raw(port, `CONNECT ${WEB}:80 HTTP/1.1\r\nHost: ${WEB}:80\r\n\r\n`);
      expectRejected(r2, 405, 'METHOD_NOT_ALLOWED');
      await sleep(100);
      expect(connected).toBe(0);
      expect(totalRequests()).toBe(before);
    });
  });

  // ---- 7. hosts ------------------------------------------------------------------

  describe('hosts', () => {
    it('answers 404 for a host that names no federated service', async () => {
      const r = await send(port, 'nope.example.test', '/');
      expect(r.status).toBe(404);
      expect(r.headers['x-fedgate-error']).toBe('HOST_UNKNOWN');
      const r2 = await send(port, 'www.example.com:8080', '/');
      expect(r2.status).toBe(404);
    });

    it('routes by the absolute-form authority: a foreign host is 404 even with our Host, ours is served', async () => {
      const before = totalRequests();
      const foreign = await raw(
        port,
        `GET http://example.com/ HTTP/1.1\r\nHost: ${WEB}\r\nConnection: close\r\n\r\n`,
      );
      expect(foreign.status, foreign.text).toBe(404);
      expect(rawHeader(foreign.text, 'x-fedgate-error')).toBe('HOST_UNKNOWN');
      expect(totalRequests()).toBe(before);
      const ours = await raw(
        port,
        `GET http://${WEB_MCS}/path?q=1 HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n`,
      );
      expect(ours.status, ours.text).toBe(200);
      const body = JSON.parse(ours.text.split('\r\n\r\n')[1]!) as PodJson;
      expect(body.service).toBe('web');
      expect(body.path).toBe('/path?q=1');
    });

    it('answers 400 to an HTTP/1.1 request without Host, and closes', async () => {
      const before = totalRequests();
      const r = await raw(port, 'GET / HTTP/1.1\r\nAccept: */*\r\n\r\n');
      expect(r.status, r.text).toBe(400);
      expect(r.closed).toBe(true);
      expect(totalRequests()).toBe(before);
    });
  });

  // ---- 2. slowloris ----------------------------------------------------------------

  it('closes slowloris connections after http.timeouts.headers while serving others', async () => {
    const proxy = await proxyWith({ timeouts: { headers: '1s' } });
    const p = plainPort(proxy);
    const SLOW = 20;
    const BOUND_MS = 3000;
    const opened = Date.now();
    const slow = Array.from({ length: SLOW }, () =>
      slowHead(netConnect({ host: '127.0.0.1', port: p }), 'connect'),
    );
    try {
      // Normal requests on other connections meanwhile, bounded in count and time.
      const answers: number[] = [];
      while (Date.now() - opened < BOUND_MS && answers.length < 40) {
        if (slow.every((s) => s.state.closedAt > 0)) break;
        answers.push((await send(p, WEB, '/')).status);
        await sleep(100);
      }
      await waitFor(
        () => slow.every((s) => s.state.closedAt > 0),
        Math.max(0, BOUND_MS - (Date.now() - opened)) + 50,
        `all ${SLOW} slowloris connections to be closed within ${BOUND_MS} ms`,
      );
      expect(answers.length).toBeGreaterThanOrEqual(3);
      expect(answers.every((s) => s === 200)).toBe(true);
      for (const s of slow) {
        expect(s.state.byProxy).toBe(true);
        expect(s.state.text).toMatch(/^HTTP\/1\.1 408 /);
      }
      await waitFor(() => proxy.connections === 0, 1000, 'the proxy to hold no connection');
    } finally {
      for (const s of slow) {
        s.stop();
        s.socket.destroy();
      }
      await stopProxy(proxy);
    }
  });

  // ---- 3. retries ------------------------------------------------------------------

  describe('retries', () => {
    let proxy: ProxyServer;
    let metrics: Metrics;
    let p: number;
    beforeAll(async () => {
      metrics = new Metrics({ worker: '0' });
      proxy = await proxyWith({ retries: { perTryTimeout: '300ms' } }, metrics);
      p = plainPort(proxy);
    });
    afterAll(async () => {
      await stopProxy(proxy);
    });

    it('retries GETs answered 503 in its own zone on another cluster', async () => {
      const local = webIn('us-east-a');
      const sameCluster = webIn('us-east-b');
      const other = webIn('us-west-a');
      local.mode = 'error503';
      const before = counts([local, sameCluster, other]);
      const retries = await series(metrics, 'fedgate_http_retries_total', 'reason="status"');
      const N = 6;
      for (let i = 0; i < N; i++) {
        const r = await send(p, WEB, `/try/${i}`);
        expect(r.status, r.body).toBe(200);
        expect(pod(r)).toMatchObject({ cluster: 'beta', path: `/try/${i}` });
      }
      const after = counts([local, sameCluster, other]);
      // Each GET: first to its own zone (503), then to the other cluster.
      expect(after[0]! - before[0]!).toBe(N);
      expect(after[1]! - before[1]!).toBe(0);
      expect(after[2]! - before[2]!).toBe(N);
      expect(
        (await series(metrics, 'fedgate_http_retries_total', 'reason="status"')) - retries,
      ).toBe(N);
    });

    it('retries GETs whose connection is reset before any response byte', async () => {
      const local = webIn('us-east-a');
      local.mode = 'reset';
      const before = local.requests;
      for (let i = 0; i < 4; i++) {
        const r = await send(p, WEB, '/');
        expect(r.status, r.body).toBe(200);
        expect(pod(r).cluster).toBe('beta');
      }
      expect(local.requests - before).toBe(4);
    });

    it('answers 503 from every endpoint as it is once the retries are used up', async () => {
      for (const b of webPods()) b.mode = 'error503';
      const before = counts(webPods());
      const r = await send(p, WEB, '/');
      expect(r.status).toBe(503);
      // The upstream's own answer, not fedgate's.
      expect(r.headers['x-fedgate-error']).toBeUndefined();
      expect(pod(r).status).toBe(503);
      // Three pods, attempts 2: each tried once.
      expect(counts(webPods()).map((n, i) => n - before[i]!)).toEqual([1, 1, 1]);
    });

    it('does not retry a 503 to a POST, even without a body; retries a DELETE', async () => {
      const local = webIn('us-east-a');
      local.mode = 'error503';
      const before = counts(webPods());
      const post = await send(p, WEB, '/status/200', {
        method: 'POST',
        headers: { 'content-length': '0' },
      });
      expect(post.status).toBe(503);
      expect(post.headers['x-fedgate-error']).toBeUndefined();
      expect(pod(post)).toMatchObject({ zone: 'us-east-a', method: 'POST' });
      const del = await send(p, WEB, '/status/200', { method: 'DELETE' });
      expect(del.status, del.body).toBe(200);
      expect(pod(del)).toMatchObject({ cluster: 'beta', method: 'DELETE' });
      const delta = counts(webPods()).map((n, i) => n - before[i]!);
      expect(delta[webPods().indexOf(local)]).toBe(2);
      expect(delta.reduce((a, b) => a + b, 0)).toBe(3);
    });

    it('does not retry a POST whose body had started when the upstream reset it: 502', async () => {
      const local = webIn('us-east-a');
      local.mode = 'reset';
      const before = counts(webPods());
      const r = await send(p, WEB, '/echo', {
        method: 'POST',
        body: 'x'.repeat(4096),
        headers: { 'content-type': 'text/plain' },
      });
      expect(r.status, r.body).toBe(502);
      expect(r.headers['x-fedgate-error']).toBe('UPSTREAM_UNREACHABLE');
      const delta = counts(webPods()).map((n, i) => n - before[i]!);
      expect(delta[webPods().indexOf(local)]).toBe(1);
      expect(delta.reduce((a, b) => a + b, 0)).toBe(1);
    });

    it('retries a POST whose connection was refused (its body never started)', async () => {
      const local = webIn('us-east-a');
      await local.stop();
      const connects = await series(metrics, 'fedgate_http_retries_total', 'reason="connect"');
      const before = counts(webPods());
      for (let i = 0; i < 3; i++) {
        const body = `payload ${i} ${'y'.repeat(1000)}`;
        const r = await send(p, WEB, '/echo', {
          method: 'POST',
          body,
          headers: { 'content-type': 'text/plain' },
        });
        expect(r.status, r.body).toBe(200);
        expect(r.body).toBe(body);
      }
      expect(
        (await series(metrics, 'fedgate_http_retries_total', 'reason="connect"')) - connects,
      ).toBe(3);
      // Each retried on the other cluster, body and all.
      expect(counts(webPods()).map((n, i) => n - before[i]!)).toEqual(
        webPods().map((b) => (b.info.cluster === 'beta' ? 3 : 0)),
      );
    });

    it('abandons a try after retries.perTryTimeout and retries a GET elsewhere', async () => {
      // The local pod accepts connections and never answers.
      const local = webIn('us-east-a');
      await local.stop();
      let held = 0;
      await tcpServer(local.info.ip, local.info.ports[0]!, (s) => {
        held++;
        s.resume();
      });
      const timeouts = await series(metrics, 'fedgate_http_retries_total', 'reason="timeout"');
      const before = counts(webPods());
      const r = await send(p, WEB, '/');
      expect(r.status, r.body).toBe(200);
      expect(pod(r).cluster).toBe('beta');
      expect(
        (await series(metrics, 'fedgate_http_retries_total', 'reason="timeout"')) - timeouts,
      ).toBe(1);
      // A POST (no body) that times out is not retried: 504 after its one try.
      const post = await send(p, WEB, '/', { method: 'POST', headers: { 'content-length': '0' } });
      expect(post.status, post.body).toBe(504);
      expect(post.headers['x-fedgate-error']).toBe('UPSTREAM_TIMEOUT');
      expect(held).toBeGreaterThanOrEqual(1);
      expect(counts(webPods()).map((n, i) => n - before[i]!)).toEqual(
        webPods().map((b) => (b.info.cluster === 'beta' ? 1 : 0)),
      );
    });

    it('answers 504 UPSTREAM_TIMEOUT when every try times out', async () => {
      const before = counts(webPods());
      const r = await send(p, WEB, '/delay/5000');
      expect(r.status, r.body).toBe(504);
      expect(r.headers['x-fedgate-error']).toBe('UPSTREAM_TIMEOUT');
      expect(counts(webPods()).map((n, i) => n - before[i]!)).toEqual([1, 1, 1]);
    });

    it('returns a 503 as it is when the retry budget is 0', async () => {
      const strictMetrics = new Metrics({ worker: '0' });
      const strict = await proxyWith({ retries: { budget: 0, minConcurrency: 0 } }, strictMetrics);
      const exhausted = () =>
        series(strictMetrics, 'fedgate_http_retry_budget_exhausted_total', 'reason="status"');
      try {
        const local = webIn('us-east-a');
        local.mode = 'error503';
        const before = counts(webPods());
        const before503 = await exhausted();
        const r = await send(plainPort(strict), WEB, '/');
        expect(r.status).toBe(503);
        expect(r.headers['x-fedgate-error']).toBeUndefined();
        expect(pod(r)).toMatchObject({ zone: 'us-east-a', status: 503 });
        const delta = counts(webPods()).map((n, i) => n - before[i]!);
        expect(delta.reduce((a, b) => a + b, 0)).toBe(1);
        expect((await exhausted()) - before503).toBe(1);
      } finally {
        await stopProxy(strict);
      }
    });
  });

  // ---- 3b. upgrades: the same attempt loop ------------------------------------------

  describe('upgrades', () => {
    let proxy: ProxyServer;
    let metrics: Metrics;
    /** http.accessLog: one `request` line per request. */
    const access = new LogCapture('info');
    let p: number;
    beforeAll(async () => {
      metrics = new Metrics({ worker: '0' });
      proxy = await proxyWith(
        { retries: { perTryTimeout: '300ms' } },
        withAccessLog(metrics, access.logger),
      );
      p = plainPort(proxy);
    });
    afterAll(async () => {
      await stopProxy(proxy);
    });

    const upgrade = (version = '13') => webSocketUpgrade(WEB, version);
    /** The cluster the backend's first WebSocket message names. */
    const tunnelCluster = (text: string) => /"cluster":"(\w+)"/.exec(text)?.[1];
    it('relays an upgrade the backend declines with a 4xx as it is, without a retry', async () => {
      const before = counts(webPods());
      const retries = await series(metrics, 'fedgate_http_retries_total');
      const declined = await series(
        metrics,
        'fedgate_http_requests_total',
        'code="4xx"',
        'cluster="alpha"',
      );
      const upgrades = await series(metrics, 'fedgate_http_upgrades_total', 'code="4xx"');
      const r = await raw(p, upgrade('99'), 3000);
      expect(r.status, r.text).toBe(400);
      // The backend's own answer (ws names the versions it speaks), not fedgate's.
      expect(rawHeader(r.text, 'x-fedgate-error')).toBeUndefined();
      expect(rawHeader(r.text, 'sec-websocket-version')).toBe('13, 8');
      expect(r.closed).toBe(true);
      const delta = counts(webPods()).map((n, i) => n - before[i]!);
      expect(delta[webPods().indexOf(webIn('us-east-a'))]).toBe(1);
      expect(delta.reduce((a, b) => a + b, 0)).toBe(1);
      expect(await series(metrics, 'fedgate_http_retries_total')).toBe(retries);
      // Counted like a request: by the cluster that answered, and its status class.
      expect(
        await series(metrics, 'fedgate_http_requests_total', 'code="4xx"', 'cluster="alpha"'),
      ).toBe(declined + 1);
      expect(await series(metrics, 'fedgate_http_upgrades_total', 'code="4xx"')).toBe(upgrades + 1);
    });

    it('fails an upgrade answered 503 over to another cluster', async () => {
      const local = webIn('us-east-a');
      local.mode = 'error503';
      const before = counts(webPods());
      const retries = await series(metrics, 'fedgate_http_retries_total', 'reason="status"');
      const switched = await series(
        metrics,
        'fedgate_http_requests_total',
        'code="1xx"',
        'cluster="beta"',
      );
      const upgrades = await series(metrics, 'fedgate_http_upgrades_total', 'code="1xx"');
      const r = await raw(p, upgrade(), 1000);
      expect(r.status, r.text).toBe(101);
      expect(tunnelCluster(r.text)).toBe('beta');
      expect(await series(metrics, 'fedgate_http_upgrades_total', 'code="1xx"')).toBe(upgrades + 1);
      expect(access.find(/^request$/).at(-1)).toMatchObject({
        method: 'GET',
        target: '/chat',
        status: 101,
        cluster: 'beta',
        tries: 2,
        upgrade: true,
      });
      const delta = counts(webPods()).map((n, i) => n - before[i]!);
      expect(delta[webPods().indexOf(local)]).toBe(1);
      expect(await series(metrics, 'fedgate_http_retries_total', 'reason="status"')).toBe(
        retries + 1,
      );
      expect(
        await series(metrics, 'fedgate_http_requests_total', 'code="1xx"', 'cluster="beta"'),
      ).toBe(switched + 1);
    });

    it('fails an upgrade whose connection was refused or reset over to another cluster', async () => {
      const local = webIn('us-east-a');
      local.mode = 'reset';
      const resets = await series(metrics, 'fedgate_http_retries_total', 'reason="reset"');
      const reset = await raw(p, upgrade(), 1000);
      expect(reset.status, reset.text).toBe(101);
      expect(tunnelCluster(reset.text)).toBe('beta');
      expect(await series(metrics, 'fedgate_http_retries_total', 'reason="reset"')).toBe(
        resets + 1,
      );
      await local.stop();
      const connects = await series(metrics, 'fedgate_http_retries_total', 'reason="connect"');
      const refused = await raw(p, upgrade(), 1000);
      expect(refused.status, refused.text).toBe(101);
      expect(tunnelCluster(refused.text)).toBe('beta');
      expect(await series(metrics, 'fedgate_http_retries_total', 'reason="connect"')).toBe(
        connects + 1,
      );
    });

    it('answers 504 UPSTREAM_TIMEOUT when no try switches protocols within perTryTimeout', async () => {
      for (const b of webPods()) {
        await b.stop();
        await tcpServer(b.info.ip, b.info.ports[0]!, (s) => s.resume());
      }
      const r = await raw(p, upgrade(), 5000);
      expect(r.status, r.text).toBe(504);
      expect(rawHeader(r.text, 'x-fedgate-error')).toBe('UPSTREAM_TIMEOUT');
    });
  });

  // ---- 4. limits -------------------------------------------------------------------

  describe('request caps per endpoint and the pending queue', () => {
    const concurrent = async (proxyPort: number, n: number) => {
      const finished: { status: number; code: string | undefined }[] = [];
      await Promise.all(
        Array.from({ length: n }, async () => {
          const r = await send(proxyPort, SOLO, '/delay/500');
          finished.push({
            status: r.status,
            code: r.headers['x-fedgate-error'] as string | undefined,
          });
        }),
      );
      return finished;
    };

    it('answers 503 UPSTREAM_OVERFLOW at once past the cap when nothing may wait', async () => {
      const proxy = await proxyWith({
        limits: { maxRequestsPerEndpoint: 1, maxPendingPerService: 0 },
      });
      try {
        const before = soloPod().requests;
        const finished = await concurrent(plainPort(proxy), 4);
        expect(finished.map((f) => f.status).sort()).toEqual([200, 503, 503, 503]);
        for (const f of finished.filter((x) => x.status === 503))
          expect(f.code).toBe('UPSTREAM_OVERFLOW');
        // The overflow answers did not wait for the request in flight.
        expect(finished.at(-1)!.status).toBe(200);
        expect(soloPod().requests - before).toBe(1);
      } finally {
        await stopProxy(proxy);
      }
    });

    it('lets requests past the cap wait in the pending queue and serves them all', async () => {
      const proxy = await proxyWith({
        limits: { maxRequestsPerEndpoint: 1, maxPendingPerService: 10 },
      });
      try {
        const before = soloPod().requests;
        const finished = await concurrent(plainPort(proxy), 4);
        expect(finished.map((f) => f.status)).toEqual([200, 200, 200, 200]);
        expect(soloPod().requests - before).toBe(4);
      } finally {
        await stopProxy(proxy);
      }
    });

    it('lets an upgrade past the cap wait in the pending queue while a tunnel holds the slot', async () => {
      const proxy = await proxyWith({
        limits: { maxRequestsPerEndpoint: 1, maxPendingPerService: 10 },
      });
      const open = () => {
        const socket = netConnect({ host: '127.0.0.1', port: plainPort(proxy) });
        let text = '';
        socket.on('data', (d: Buffer) => {
          text += d.toString('latin1');
        });
        socket.on('error', () => {});
        socket.once('connect', () => socket.write(webSocketUpgrade(SOLO)));
        return { socket, text: () => text };
      };
      try {
        const first = open();
        await waitFor(() => first.text().startsWith('HTTP/1.1 101'), 5000, 'the first tunnel');
        const second = open();
        await sleep(300);
        // Waiting for the slot, not refused.
        expect(second.text()).toBe('');
        first.socket.destroy();
        await waitFor(
          () => second.text().startsWith('HTTP/1.1 101'),
          5000,
          'the second tunnel once the first closed',
        );
        second.socket.destroy();
      } finally {
        await stopProxy(proxy);
      }
    });
  });

  // ---- 5. TLS ----------------------------------------------------------------------

  describe('TLS: SNI, ALPN, HTTP/2 and HTTP/1.1', () => {
    let webPki: ClusterPki;
    let soloPki: ClusterPki;
    let proxy: ProxyServer;
    let tlsPort: number;

    beforeAll(async () => {
      webPki = await makeClusterPki('edge-web', [WEB, WEB_MCS]);
      soloPki = await makeClusterPki('edge-solo', [SOLO]);
      const dir = await env.dir();
      const files = [];
      for (const [name, pki] of [
        ['web', webPki],
        ['solo', soloPki],
      ] as const) {
        const cert = join(dir, `${name}.crt`);
        const key = join(dir, `${name}.key`);
        await writeFile(cert, pki.serverCert);
        await writeFile(key, pki.serverKey);
        files.push({ cert, key });
      }
      // The same small head limits and headers timeout as the plain listeners' tests.
      proxy = await proxyWith({
        tls: { listen: ['127.0.0.1:0'], certificates: files },
        timeouts: { headers: '1s' },
        limits: { maxHeaderSize: MAX_HEADER_SIZE, maxHeaderCount: MAX_HEADER_COUNT },
      });
      tlsPort = proxy.addresses().https[0]!.port;
    });
    afterAll(async () => {
      if (proxy) await stopProxy(proxy);
    });

    const handshake = (
      servername: string,
      ca: string,
      alpn: string[] = ['h2', 'http/1.1'],
    ): Promise<{ san: string; authorized: boolean; alpn: string | false; error?: string }> =>
      new Promise((resolve, reject) => {
        const socket: TLSSocket = tlsConnect({
          host: '127.0.0.1',
          port: tlsPort,
          servername,
          ca,
          ALPNProtocols: alpn,
          rejectUnauthorized: false,
        });
        socket.setTimeout(5000, () => socket.destroy(new Error('TLS handshake timed out')));
        socket.once('secureConnect', () => {
          const out = {
            san: socket.getPeerCertificate().subjectaltname ?? '',
            authorized: socket.authorized,
            alpn: socket.alpnProtocol ?? false,
            ...(socket.authorizationError ? { error: String(socket.authorizationError) } : {}),
          };
          socket.end();
          resolve(out);
        });
        socket.once('error', reject);
      });

    it('picks the certificate by SNI, the first one for unknown names', async () => {
      const web = await handshake(WEB, webPki.caCert);
      expect(web.san).toContain(`DNS:${WEB}`);
      expect(web.san).toContain(`DNS:${WEB_MCS}`);
      expect(web.authorized).toBe(true);
      const mcs = await handshake(WEB_MCS.toUpperCase(), webPki.caCert);
      expect(mcs.san).toContain(`DNS:${WEB_MCS}`);
      expect(mcs.authorized).toBe(true);
      const solo = await handshake(SOLO, soloPki.caCert);
      expect(solo.san).toContain(`DNS:${SOLO}`);
      expect(solo.san).not.toContain(WEB);
      expect(solo.authorized).toBe(true);
      // The web CA does not vouch for solo's certificate: they really are different.
      expect((await handshake(SOLO, webPki.caCert)).authorized).toBe(false);
      const unknown = await handshake('other.example.test', webPki.caCert);
      expect(unknown.san).toContain(`DNS:${WEB}`);
    });

    it('offers h2 and http/1.1 by ALPN', async () => {
      expect((await handshake(WEB, webPki.caCert, ['h2', 'http/1.1'])).alpn).toBe('h2');
      expect((await handshake(WEB, webPki.caCert, ['http/1.1'])).alpn).toBe('http/1.1');
    });

    it('routes an HTTP/2 request to the service and passes the JSON back', async () => {
      const session = h2connect(`https://127.0.0.1:${tlsPort}`, {
        ca: webPki.caCert,
        servername: WEB,
      });
      try {
        const exchange = (headers: Record<string, string>, body?: string) =>
          h2exchange(session, headers, body);
        const r = await exchange({ ':method': 'GET', ':path': '/h2?x=1', ':authority': WEB });
        expect(r.status, r.body).toBe(200);
        const body = JSON.parse(r.body) as PodJson;
        expect(body).toMatchObject({ service: 'web', method: 'GET', path: '/h2?x=1' });
        expect(body.headers['x-forwarded-proto']).toBe('https');
        expect(session.alpnProtocol).toBe('h2');
        // A body over HTTP/2 reaches the backend too.
        const echo = await exchange(
          { ':method': 'POST', ':path': '/echo', ':authority': WEB, 'content-type': 'text/plain' },
          'over h2',
        );
        expect(echo.status, echo.body).toBe(200);
        expect(echo.body).toBe('over h2');
        const missing = await exchange({
          ':method': 'GET',
          ':path': '/',
          ':authority': 'nope.example.test',
        });
        expect(missing.status).toBe(404);
      } finally {
        session.close();
      }
    });

    it('routes an HTTPS/1.1 request by Host, on the SNI-chosen certificate', async () => {
      let version = '';
      const r = await new Promise<Reply>((resolve, reject) => {
        const req = httpsRequest(
          {
            host: '127.0.0.1',
            port: tlsPort,
            servername: SOLO,
            ca: soloPki.caCert,
            path: '/over-tls',
            headers: { host: SOLO },
            // No ALPN at all: the HTTP/1.1 fallback.
            agent: false,
          },
          (res) => {
            version = res.httpVersion;
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () =>
              resolve({
                status: res.statusCode ?? 0,
                headers: res.headers,
                body: Buffer.concat(chunks).toString(),
              }),
            );
          },
        );
        req.setTimeout(10_000, () => req.destroy(new Error('no HTTPS answer within 10 s')));
        req.on('error', reject);
        req.end();
      });
      expect(r.status, r.body).toBe(200);
      expect(version).toBe('1.1');
      const body = JSON.parse(r.body) as PodJson;
      expect(body).toMatchObject({ service: 'solo', path: '/over-tls' });
      expect(body.headers['x-forwarded-proto']).toBe('https');
    });

    it('applies http.limits.maxHeaderSize to HTTP/1.1 over TLS: 431', async () => {
      const under = await tlsRaw(
        tlsPort,
        WEB,
        webPki.caCert,
        `GET / HTTP/1.1\r\nHost: ${WEB}\r\nX-Big: ${'a'.repeat(MAX_HEADER_SIZE / 2)}\r\nConnection: close\r\n\r\n`,
      );
      expect(under.status, under.text).toBe(200);
      const before = totalRequests();
      const over = await tlsRaw(
        tlsPort,
        WEB,
        webPki.caCert,
        `GET / HTTP/1.1\r\nHost: ${WEB}\r\nX-Big: ${'a'.repeat(MAX_HEADER_SIZE + 512)}\r\nConnection: close\r\n\r\n`,
      );
      expect(over.status, over.text.slice(0, 200)).toBe(431);
      expect(rawHeader(over.text, 'x-fedgate-error')).toBe('HEADERS_TOO_LARGE');
      expect(over.closed).toBe(true);
      expect(totalRequests()).toBe(before);
    });

    it('closes slowloris connections over TLS (HTTP/1.1) after http.timeouts.headers', async () => {
      const SLOW = 5;
      const BOUND_MS = 3000;
      const slow = Array.from({ length: SLOW }, () =>
        slowHead(
          tlsConnect({
            host: '127.0.0.1',
            port: tlsPort,
            servername: WEB,
            ca: webPki.caCert,
            ALPNProtocols: ['http/1.1'],
          }),
          'secureConnect',
        ),
      );
      try {
        await waitFor(
          () => slow.every((s) => s.state.closedAt > 0),
          BOUND_MS,
          `all ${SLOW} TLS slowloris connections to be closed within ${BOUND_MS} ms`,
        );
        for (const s of slow) expect(s.state.text).toMatch(/^HTTP\/1\.1 408 /);
      } finally {
        for (const s of slow) {
          s.stop();
          s.socket.destroy();
        }
      }
    });

    it('counts HTTP/2 header fields, not pseudo-headers, against maxHeaderCount: 431 past it', async () => {
      const session = h2connect(`https://127.0.0.1:${tlsPort}`, {
        ca: webPki.caCert,
        servername: WEB,
      });
      session.on('error', () => {});
      const withFields = (n: number) => {
        const h: Record<string, string> = { ':method': 'GET', ':path': '/', ':authority': WEB };
        for (let i = 1; i <= n; i++) h[`x-h${i}`] = String(i);
        return h;
      };
      try {
        // :authority stands for Host: with it, exactly maxHeaderCount fields.
        const failed = (what: string) => (e: Error) => ({
          status: 0,
          headers: {} as IncomingHttpHeaders,
          body: `${what}: ${e.message}`,
        });
        const at = await h2exchange(session, withFields(MAX_HEADER_COUNT - 1)).catch(
          failed(`:authority and ${MAX_HEADER_COUNT - 1} header fields`),
        );
        expect(at.status, at.body).toBe(200);
        const over = await h2exchange(session, withFields(MAX_HEADER_COUNT + 1)).catch(
          failed(`:authority and ${MAX_HEADER_COUNT + 1} header fields`),
        );
        expect(over.status, over.body).toBe(431);
        expect(over.headers['x-fedgate-error']).toBe('HEADERS_TOO_LARGE');
      } finally {
        session.close();
      }
    });
  });

  // ---- 6. draining -------------------------------------------------------------------

  it('drains on SIGTERM: requests in flight finish, new connections are refused, exit 0', async () => {
    const dir = await env.dir();
    const kubeconfigs: Record<string, string> = {};
    for (const c of bench.fed.clusters) kubeconfigs[c.name] = await c.writeKubeconfig(dir);
    const base = parse(bench.fed.fedgateConfig(kubeconfigs, '127.0.0.1:0')) as Record<
      string,
      unknown
    >;
    const file = join(dir, 'drain.yaml');
    await writeFile(
      file,
      stringify({
        ...base,
        dns: { listen: ['127.0.0.1:0'] },
        http: { listen: ['127.0.0.1:0'], drainTimeout: '5s' },
        watch: FAST_WATCH,
      }),
    );
    const child = start(process.execPath, [CLI, 'start', '--config', file]);
    const keepAlive = new Agent({ keepAlive: true });
    let grace: NodeJS.Timeout | undefined;
    try {
      await waitFor(
        () => /ready, \d+ federated service/.test(child.out()),
        20_000,
        'fedgate ready',
      );
      const at = Number(/HTTP http:\/\/127\.0\.0\.1:(\d+)/.exec(child.out())?.[1]);
      expect(at).toBeGreaterThan(0);
      await waitFor(
        async () => (await send(at, WEB, '/')).status === 200,
        10_000,
        'web through the child',
      );

      const N = 10;
      let finished = 0;
      // Keep-alive clients, so that an answer asking to close says something.
      const inflight = Array.from({ length: N }, () =>
        send(at, WEB, '/delay/1500', { agent: keepAlive }).then((r) => {
          finished++;
          return r;
        }),
      );
      // Catch the rejection here; it is checked below.
      const settled = Promise.allSettled(inflight);
      await sleep(300);
      child.child.kill('SIGTERM');

      // New connections are refused while the old requests are still running.
      const refused = await waitFor(
        () => connectionRefused(at),
        2000,
        'new connections to be refused after SIGTERM',
        25,
      );
      expect(refused).toBe(true);
      expect(finished).toBeLessThan(N);

      const results = await settled;
      for (const r of results) {
        expect(r.status).toBe('fulfilled');
        if (r.status !== 'fulfilled') continue;
        expect(r.value.status, r.value.body).toBe(200);
        expect(pod(r.value).service).toBe('web');
        // Answers during the drain ask the client to close.
        expect(r.value.headers.connection).toBe('close');
      }

      // Out within the 5 s grace period (and a little for the rest of the shutdown).
      const code = await Promise.race([
        child.exited,
        new Promise<string>((resolve) => {
          grace = setTimeout(() => resolve('still running'), 5000 + 2000);
        }),
      ]);
      expect(code).toBe(0);
      expect(child.out()).not.toMatch(/were cut/);
      expect(child.out()).not.toMatch(/"level":50/);
    } finally {
      clearTimeout(grace);
      keepAlive.destroy();
      if (child.child.exitCode === null && child.child.signalCode === null) {
        child.child.kill('SIGKILL');
      }
    }
  });
});
