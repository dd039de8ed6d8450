// One HTTP/1.1 connection must not hold more than its share of the proxy: a body
// that trickles one byte and goes silent loses its upstream slot after
// http.timeouts.requestBodyIdle; pipelined requests reach the upstream one at a
// time, in order; and a response that says keep-alive is never followed by a
// close the client was not told of. Raw sockets where the bytes matter, against a
// real ProxyServer on a local federation whose one pod is replaced by a backend of
// the test's own that counts its own concurrency.

import { writeFile } from 'node:fs/promises';
import {
  createServer,
  request as httpRequest,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { type ClientHttp2Stream, connect as h2connect } from 'node:http2';
import { connect as netConnect, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { makeClusterPki } from '../../src/localfed/pki.ts';
import { Metrics } from '../../src/observe/metrics.ts';
import { MAX_PIPELINED } from '../../src/proxy/pipeline.ts';
import type { ProxyServer } from '../../src/proxy/server.ts';
import { DiscoveryEnv } from '../helpers/discovery-env.ts';
import {
  configBeside,
  oneZoneScenario,
  type ProxyBench,
  proxyBeside,
  series,
  startProxy,
} from '../helpers/proxy-env.ts';
import { waitFor } from '../helpers/wait.ts';

const SCENARIO = oneZoneScenario({ web: 8080 });
const BLOCK = 43;
const WEB = 'web.shop.testfed.svc.example.test';
const BODY_IDLE = '400ms';

/** The pod's stand-in: answers in order, counting requests and its own concurrency. */
class CountingBackend {
  inFlight = 0;
  maxInFlight = 0;
  requests = 0;
  readonly paths: string[] = [];
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();

  constructor() {
    this.#server = createServer((req, res) => this.#answer(req, res));
    this.#server.on('connection', (s: Socket) => {
      this.#sockets.add(s);
      s.on('close', () => this.#sockets.delete(s));
    });
  }

  async listen(host: string, port: number): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(port, host, () => resolve());
    });
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    for (const s of this.#sockets) s.destroy();
    await closed;
  }

  #answer(req: IncomingMessage, res: ServerResponse): void {
    this.requests++;
    this.paths.push(req.url ?? '');
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    // Over when answered or abandoned (a request whose body never came is aborted).
    res.once('close', () => this.inFlight--);
    const end = (body: string) => {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length });
      res.end(body);
    };
    // /early: answers before reading the body (an upstream that refuses or ignores it).
    if (req.url === '/early') {
      end('early');
      return;
    }
    // Anything else: the whole body first, then the answer, a few ms later.
    req.resume();
    req.on('end', () => setTimeout(() => end(req.url ?? ''), 3));
  }
}

/** A GET through the proxy on a fresh connection: status and body. */
function get(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: '127.0.0.1', port, path, headers: { host: WEB }, agent: false },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => {
          body += d;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** A raw client connection: what it received, parsed into responses as they complete. */
class RawClient {
  readonly socket: Socket;
  closed = false;
  #buf = Buffer.alloc(0);
  readonly responses: RawResponse[] = [];

  constructor(port: number) {
    this.socket = netConnect({ host: '127.0.0.1', port });
    this.socket.on('data', (d: Buffer) => {
      this.#buf = Buffer.concat([this.#buf, d]);
      this.#parse();
    });
    this.socket.on('error', () => {});
    this.socket.on('close', () => {
      this.closed = true;
    });
  }

  connected(): Promise<void> {
    return new Promise((resolve) => this.socket.once('connect', () => resolve()));
  }

  write(data: string | Buffer): void {
    this.socket.write(data);
  }

  /** Waits until `n` responses came or the connection closed. */
  async until(n: number, ms = 20_000): Promise<void> {
    await waitFor(() => this.responses.length >= n || this.closed, ms, `${n} responses or a close`);
  }

  #parse(): void {
    for (;;) {
      const end = this.#buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const lines = this.#buf.subarray(0, end).toString('latin1').split('\r\n');
      const headers: Record<string, string> = {};
      for (const line of lines.slice(1)) {
        const i = line.indexOf(':');
        headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
      }
      const length = Number(headers['content-length'] ?? 0);
      if (this.#buf.length < end + 4 + length) return;
      const body = this.#buf.subarray(end + 4, end + 4 + length).toString('latin1');
      this.#buf = this.#buf.subarray(end + 4 + length);
      this.responses.push({ status: Number(lines[0]?.split(' ')[1]), headers, body });
    }
  }
}

describe('one connection takes no more than its share', () => {
  const env = new DiscoveryEnv();
  let bench: ProxyBench;
  let port: number;
  const backend = new CountingBackend();
  const closers: Array<() => void> = [];
  const extra: ProxyServer[] = [];

  /** Another proxy on the same discovery with its own `http` block, counting into `metrics`. */
  async function proxyWith(http: Record<string, unknown>, metrics: Metrics): Promise<ProxyServer> {
    const proxy = await proxyBeside(env, bench, http, metrics);
    extra.push(proxy);
    return proxy;
  }

  beforeAll(async () => {
    bench = await startProxy(env, SCENARIO, BLOCK, {
      self: { region: 'us-east', zone: 'us-east-a' },
      health: {
        active: { enabled: false },
        outlier: { consecutive5xx: 1000, consecutiveGatewayFailure: 1000 },
      },
      http: { timeouts: { requestBodyIdle: BODY_IDLE } },
    });
    port = Number(new URL(bench.url).port);
    const pod = bench.fed.backends().find((b) => b.info.service === 'web');
    if (!pod) throw new Error('no web pod');
    await pod.stop();
    await backend.listen(pod.info.ip, pod.info.ports[0] ?? 0);
    await waitFor(
      async () => (await get(port, '/ready')).status === 200,
      15_000,
      'web to answer through the proxy',
    );
  });

  afterEach(async () => {
    for (const close of closers.splice(0)) close();
    // Until the proxy has let go of whatever the test left at the backend.
    await waitFor(() => backend.inFlight === 0, 10_000, 'the backend to be idle');
  });

  afterAll(async () => {
    for (const p of extra.splice(0)) await p.stop();
    await bench?.proxy.stop();
    await backend.close();
    await env.cleanup();
    await bench?.fed.stop();
  });

  it('frees the upstream slot of a body that goes silent: 408 after requestBodyIdle (set by a reload), counted once, nobody blamed', async () => {
    // One endpoint, one slot: the slow body holds the only one there is. The proxy
    // starts with a long body timeout and a reload shortens it, as operators would.
    const metrics = new Metrics({ worker: '0' });
    const one = { maxRequestsPerEndpoint: 1 };
    const proxy = await proxyWith({ timeouts: { requestBodyIdle: '10m' }, limits: one }, metrics);
    const next = await configBeside(env, bench, {
      timeouts: { requestBodyIdle: BODY_IDLE },
      limits: one,
    });
    (await proxy.stage(next, { observer: metrics })).commit();
    const port = proxy.addresses().http[0]?.port ?? 0;
    const rejected = await series(
      metrics,
      'fedgate_http_requests_total',
      'service="shop/web"',
      'outcome="rejected"',
      'code="4xx"',
    );
    const retries = await series(metrics, 'fedgate_http_retries_total');
    const before = backend.requests;
    const report = vi.spyOn(bench.d.health, 'report');
    const slow = new RawClient(port);
    // Whatever the outcome, the slow client lets go of the slot for the next test.
    closers.push(() => slow.socket.destroy());
    await slow.connected();
    slow.write(`POST /upload HTTP/1.1\r\nHost: ${WEB}\r\nContent-Length: 100\r\n\r\nx`);
    // The one slot of the one endpoint is the slow body's.
    await waitFor(() => backend.inFlight === 1, 10_000, 'the slow POST to reach the backend');
    // Another client: served once the slow body is given up, not after the request
    // timeout (without the body timer it waits for the slot, then gets 503).
    const other = await get(port, '/after');
    expect(other.status, other.body).toBe(200);
    await slow.until(1);
    expect(slow.responses[0]?.status).toBe(408);
    expect(slow.responses[0]?.headers['x-fedgate-error']).toBe('REQUEST_TIMEOUT');
    expect(slow.responses[0]?.headers.connection).toBe('close');
    await waitFor(() => slow.closed, 10_000, 'the slow connection to close');
    expect(backend.requests - before).toBe(2);
    expect(await series(metrics, 'fedgate_http_retries_total')).toBe(retries);
    expect(
      (await series(
        metrics,
        'fedgate_http_requests_total',
        'service="shop/web"',
        'outcome="rejected"',
        'code="4xx"',
      )) - rejected,
    ).toBe(1);
    // Only the upstream's own 200 for the other client reached outlier detection.
    expect(report.mock.calls.map((c) => c[2])).toEqual([{ origin: 'upstream', status: 200 }]);
    report.mockRestore();
  });

  it('gives up a silent HTTP/2 request body the same way, while the session serves other streams', async () => {
    const pki = await makeClusterPki('edge-web', [WEB]);
    const cert = join(await env.dir(), 'web.crt');
    const key = join(await env.dir(), 'web.key');
    await writeFile(cert, pki.serverCert);
    await writeFile(key, pki.serverKey);
    const metrics = new Metrics({ worker: '0' });
    const proxy = await proxyWith(
      {
        tls: { listen: ['127.0.0.1:0'], certificates: [{ cert, key }] },
        timeouts: { requestBodyIdle: BODY_IDLE },
        limits: { maxRequestsPerEndpoint: 1 },
      },
      metrics,
    );
    const rejected = () =>
      series(metrics, 'fedgate_http_requests_total', 'service="shop/web"', 'outcome="rejected"');
    const session = h2connect(`https://127.0.0.1:${proxy.addresses().https[0]?.port}`, {
      ca: pki.caCert,
      servername: WEB,
    });
    closers.push(() => session.destroy());
    session.on('error', () => {});
    const answer = (stream: ClientHttp2Stream) =>
      new Promise<{ status: number; error: string; body: string }>((resolve) => {
        let status = 0;
        let error = '';
        let body = '';
        stream.on('response', (h) => {
          status = Number(h[':status']);
          error = String(h['x-fedgate-error'] ?? '');
        });
        stream.setEncoding('utf8');
        stream.on('data', (d: string) => {
          body += d;
        });
        stream.on('error', () => {});
        // The answer ends our stream's readable side; the slow one's writable side stays open.
        stream.on('end', () => resolve({ status, error, body }));
        stream.on('close', () => resolve({ status, error, body }));
      });
    const slow = session.request({
      ':method': 'POST',
      ':path': '/upload',
      ':authority': WEB,
      'content-length': '100',
    });
    const slowAnswer = answer(slow);
    slow.write('x');
    await waitFor(() => backend.inFlight === 1, 10_000, 'the slow POST to reach the backend');
    const other = await answer(
      session.request(
        { ':method': 'GET', ':path': '/after-h2', ':authority': WEB },
        { endStream: true },
      ),
    );
    expect(other.status, other.body).toBe(200);
    const s = await slowAnswer;
    expect([s.status, s.error]).toEqual([408, 'REQUEST_TIMEOUT']);
    expect(await rejected()).toBe(1);
  });

  it('forwards 100 pipelined GETs one at a time, answering all in order', async () => {
    backend.maxInFlight = 0;
    const before = backend.paths.length;
    const c = new RawClient(port);
    closers.push(() => c.socket.destroy());
    await c.connected();
    let burst = '';
    for (let i = 0; i < 100; i++) burst += `GET /p/${i} HTTP/1.1\r\nHost: ${WEB}\r\n\r\n`;
    c.write(burst);
    await c.until(100, 30_000);
    expect(c.responses.map((r) => r.body)).toEqual(
      Array.from({ length: 100 }, (_, i) => `/p/${i}`),
    );
    expect(c.responses.every((r) => r.headers.connection === 'keep-alive')).toBe(true);
    expect(backend.paths.slice(before)).toEqual(Array.from({ length: 100 }, (_, i) => `/p/${i}`));
    expect(backend.maxInFlight).toBe(1);
    expect(c.closed).toBe(false);
  });

  it(`closes a connection that pipelines more than ${MAX_PIPELINED} waiting requests, after answering what it took`, async () => {
    backend.maxInFlight = 0;
    const count = (code: string) =>
      series(
        bench.metrics,
        'fedgate_http_requests_total',
        'service=""',
        'outcome="rejected"',
        code,
      );
    const [tooMany, dropped] = [await count('code="4xx"'), await count('code="other"')];
    const c = new RawClient(port);
    closers.push(() => c.socket.destroy());
    await c.connected();
    // One in progress, MAX_PIPELINED waiting, one refused, and ten dropped behind it.
    const taken = MAX_PIPELINED + 1;
    let burst = '';
    for (let i = 0; i < taken + 11; i++) burst += `GET /q/${i} HTTP/1.1\r\nHost: ${WEB}\r\n\r\n`;
    c.write(burst);
    await c.until(taken + 1, 30_000);
    await waitFor(() => c.closed, 10_000, 'the connection to close');
    expect(c.responses.slice(0, taken).map((r) => r.body)).toEqual(
      Array.from({ length: taken }, (_, i) => `/q/${i}`),
    );
    const refused = c.responses[taken];
    expect(refused?.status).toBe(429);
    expect(refused?.headers['x-fedgate-error']).toBe('TOO_MANY_PIPELINED');
    expect(refused?.headers.connection).toBe('close');
    expect(c.responses).toHaveLength(taken + 1);
    expect(backend.maxInFlight).toBe(1);
    await waitFor(
      async () => (await count('code="other"')) - dropped === 10,
      5000,
      'the dropped requests to be counted',
    );
    expect((await count('code="4xx"')) - tooMany).toBe(1);
  });

  it('answers a GET pipelined behind a POST the upstream answered before its body was read, or says Connection: close', async () => {
    const c = new RawClient(port);
    closers.push(() => c.socket.destroy());
    await c.connected();
    // The upstream answers while most of the body is still to come.
    const total = 2_000_000;
    const part = 65_536;
    c.write(`POST /early HTTP/1.1\r\nHost: ${WEB}\r\nContent-Length: ${total}\r\n\r\n`);
    c.write(Buffer.alloc(part, 'x'));
    await c.until(1);
    if (!c.closed) {
      c.write(Buffer.alloc(total - part, 'x'));
      c.write(`GET /behind HTTP/1.1\r\nHost: ${WEB}\r\n\r\n`);
    }
    await c.until(2);
    const [first, second] = c.responses;
    expect(first?.body).toBe('early');
    if (first?.headers.connection === 'keep-alive') expect(second?.body).toBe('/behind');
    else {
      expect(first?.headers.connection).toBe('close');
      await waitFor(() => c.closed, 10_000, 'the connection to close as announced');
    }
  });

  it('keeps the connection after a POST whose body was whole, and answers the GET behind it', async () => {
    const c = new RawClient(port);
    closers.push(() => c.socket.destroy());
    await c.connected();
    c.write(
      `POST /small HTTP/1.1\r\nHost: ${WEB}\r\nContent-Length: 5\r\n\r\nhello` +
        `GET /next HTTP/1.1\r\nHost: ${WEB}\r\n\r\n`,
    );
    await c.until(2);
    expect(c.responses.map((r) => [r.body, r.headers.connection])).toEqual([
      ['/small', 'keep-alive'],
      ['/next', 'keep-alive'],
    ]);
    expect(c.closed).toBe(false);
  });
});
