// HTTP/2 through fedgate end to end: clients speaking h2c (prior knowledge) and
// HTTP/1.1 on the one plain port, h2 and http/1.1 by ALPN on the TLS one; backends
// reached over HTTP/2 or HTTP/1.1 as their port's appProtocol (or the annotation)
// says; streams multiplexed within the backend's SETTINGS_MAX_CONCURRENT_STREAMS;
// GOAWAY and refused streams retried elsewhere; trailers both ways; a client's
// reset reaching the backend. Real clients (curl, node:http2, undici, raw sockets)
// and a real ProxyServer over a fixed catalog naming the test's own backends.
// Addresses: 127.200.0.x.
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import {
  type ClientHttp2Session,
  constants,
  connect as h2connect,
  type IncomingHttpHeaders,
  type OutgoingHttpHeaders,
} from 'node:http2';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { promisify } from 'node:util';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeClusterPki } from '../src/localfed/pki.ts';
import type { BackendTlsSource } from '../src/proxy/backend-tls.ts';
import { backend, rule, tables } from './helpers/gateway-rules.ts';
import { type Backend, h1Backend, h2Backend } from './helpers/h2-backends.ts';
import { series } from './helpers/proxy-env.ts';
import { hostOf, type StaticProxy, startStaticProxy } from './helpers/static-proxy.ts';
import { waitFor } from './helpers/wait.ts';

const run = promisify(execFile);

interface H2Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  trailers: IncomingHttpHeaders | undefined;
}

/** One request on `session`; `trailers` are sent after `body`. */
function h2request(
  session: ClientHttp2Session,
  headers: OutgoingHttpHeaders,
  body?: string,
  trailers?: OutgoingHttpHeaders,
): Promise<H2Answer> {
  return new Promise((resolve, reject) => {
    const s = session.request(headers, {
      endStream: body === undefined,
      waitForTrailers: trailers !== undefined,
    });
    if (trailers) s.on('wantTrailers', () => s.sendTrailers(trailers));
    if (body !== undefined) s.end(body);
    let status = 0;
    let got: IncomingHttpHeaders = {};
    let text = '';
    let tr: IncomingHttpHeaders | undefined;
    s.setEncoding('utf8');
    s.on('response', (h) => {
      status = Number(h[':status']);
      got = h;
    });
    s.on('data', (c: string) => {
      text += c;
    });
    s.on('trailers', (t) => {
      tr = t;
    });
    s.on('end', () => resolve({ status, headers: got, body: text, trailers: tr }));
    s.on('error', reject);
    s.setTimeout(20_000, () => s.close(constants.NGHTTP2_CANCEL));
  });
}

/** A raw HTTP/1.1 exchange on its own connection: everything the proxy sent until it closed. */
async function rawH1(port: number, text: string): Promise<string> {
  const socket = netConnect({ host: '127.0.0.1', port });
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  const closed = once(socket, 'close');
  const timer = setTimeout(() => socket.destroy(), 10_000);
  socket.write(text);
  await closed;
  clearTimeout(timer);
  return Buffer.concat(chunks).toString('latin1');
}

const H2 = 'shop/h2';
const H1 = 'shop/h1';
const GRPC = 'shop/grpc-port';
const ANNOTATED = 'shop/annotated';
const PAIR = 'shop/pair';
const MUX = 'shop/mux';
const TLS_H2 = 'shop/tls-h2';
const TLS_H1 = 'shop/tls-h1';
const UNTRUSTED = 'shop/untrusted';
const REFUSING = 'shop/refusing';
/** A Gateway API route to H1 that mirrors each request to H2 (h2c) and TLS_H2 (https). */
const MIRRORED = 'mirrored.example.test';
const mirrorTo = (key: string) => {
  const [namespace = '', name = ''] = key.split('/');
  return {
    type: 'RequestMirror' as const,
    requestMirror: { backendRef: { group: '', kind: 'Service', namespace, name } },
  };
};

describe('HTTP/2 through fedgate', () => {
  let h2: Backend;
  let h1: Backend;
  let grpcPort: Backend;
  let annotated: Backend;
  let pairA: Backend;
  let pairB: Backend;
  let mux: Backend;
  let tlsH2: Backend;
  let tlsH1: Backend;
  let refuser: Backend;
  let taker: Backend;
  let fg: StaticProxy;
  let ca = '';
  const backends: Backend[] = [];

  beforeAll(async () => {
    h2 = await h2Backend('127.200.0.1');
    h1 = await h1Backend('127.200.0.2');
    grpcPort = await h2Backend('127.200.0.3');
    annotated = await h2Backend('127.200.0.4');
    pairA = await h2Backend('127.200.0.5');
    pairB = await h2Backend('127.200.0.6');
    mux = await h2Backend('127.200.0.7', 10);
    // Backends over TLS, their certificate for backend.internal from a CA only the profile trusts.
    const backendPki = await makeClusterPki('backend', ['backend.internal']);
    const creds = { cert: backendPki.serverCert, key: backendPki.serverKey };
    tlsH2 = await h2Backend('127.200.0.8', 100, { ...creds, allowHTTP1: true });
    tlsH1 = await h1Backend('127.200.0.9', creds);
    refuser = await h2Backend('127.200.0.10');
    refuser.log.refuse = true;
    taker = await h2Backend('127.200.0.11');
    backends.push(h2, h1, grpcPort, annotated, pairA, pairB, mux, tlsH2, tlsH1, refuser, taker);
    const profile = {
      key: 'backend-ca',
      options: { ca: backendPki.caCert, servername: 'backend.internal' },
    };
    const backendTls = {
      forService: (svc: { key: string }) =>
        svc.key === TLS_H2 || svc.key === TLS_H1 ? profile : undefined,
    };
    const pki = await makeClusterPki('edge', [hostOf(H2), hostOf(H1)]);
    ca = pki.caCert;
    const dir = tmpdir();
    const cert = join(dir, `fedgate-h2-${process.pid}.crt`);
    const key = join(dir, `fedgate-h2-${process.pid}.key`);
    await writeFile(cert, pki.serverCert);
    await writeFile(key, pki.serverKey);
    fg = await startStaticProxy(
      [
        {
          key: H2,
          appProtocol: 'kubernetes.io/h2c',
          endpoints: [{ address: '127.200.0.1', port: h2.port }],
        },
        { key: H1, appProtocol: 'http', endpoints: [{ address: '127.200.0.2', port: h1.port }] },
        {
          key: GRPC,
          portName: 'grpc',
          appProtocol: 'grpc',
          endpoints: [{ address: '127.200.0.3', port: grpcPort.port }],
        },
        {
          key: ANNOTATED,
          appProtocol: 'http',
          backendProtocol: 'h2c',
          endpoints: [{ address: '127.200.0.4', port: annotated.port }],
        },
        {
          key: PAIR,
          appProtocol: 'kubernetes.io/h2c',
          endpoints: [
            { address: '127.200.0.5', port: pairA.port },
            { address: '127.200.0.6', port: pairB.port },
          ],
        },
        {
          key: MUX,
          appProtocol: 'kubernetes.io/h2c',
          endpoints: [{ address: '127.200.0.7', port: mux.port }],
        },
        {
          key: TLS_H2,
          appProtocol: 'https',
          endpoints: [{ address: '127.200.0.8', port: tlsH2.port }],
        },
        {
          key: TLS_H1,
          appProtocol: 'https',
          endpoints: [{ address: '127.200.0.9', port: tlsH1.port }],
        },
        {
          key: REFUSING,
          appProtocol: 'kubernetes.io/h2c',
          endpoints: [
            { address: '127.200.0.10', port: refuser.port },
            { address: '127.200.0.11', port: taker.port },
          ],
        },
        {
          key: UNTRUSTED,
          appProtocol: 'https',
          endpoints: [{ address: '127.200.0.8', port: tlsH2.port }],
        },
      ],
      {
        tls: { listen: ['127.0.0.1:0'], certificates: [{ cert, key }] },
        limits: { maxRequestsPerEndpoint: 500, clientShare: 0, maxConcurrentStreams: 200 },
      },
      backendTls as unknown as BackendTlsSource,
      undefined,
      tables('127.0.0.1:0', {
        [MIRRORED]: [
          rule({
            route: 'shop/mirrored',
            filters: [mirrorTo(H2), mirrorTo(TLS_H2)],
            backends: [backend(H1)],
          }),
        ],
      }),
    );
  }, 30_000);

  afterAll(async () => {
    await fg?.stop();
    for (const b of backends) await b.stop();
  });

  const port = () => Number(new URL(fg.url).port);

  describe('clients: h2c and HTTP/1.1 on the plain port, ALPN on the TLS one', () => {
    it('curl --http2-prior-knowledge is answered over HTTP/2', async () => {
      const host = hostOf(H1);
      const { stdout } = await run('curl', [
        '-sS',
        '--http2-prior-knowledge',
        '--resolve',
        `${host}:${port()}:127.0.0.1`,
        '-w',
        '\n%{http_version} %{http_code}',
        `http://${host}:${port()}/`,
      ]);
      const [body, tail] = stdout.split('\n');
      expect(tail).toBe('2 200');
      expect(JSON.parse(body!).path).toBe('/');
    });

    it('node:http2 with prior knowledge and HTTP/1.1 share the port', async () => {
      const session = h2connect(fg.url);
      try {
        const a = await h2request(session, { ':path': '/x', ':authority': hostOf(H1) });
        expect(a.status).toBe(200);
        expect(JSON.parse(a.body).path).toBe('/x');
      } finally {
        session.close();
      }
      const r = await request(`${fg.url}/y`, { headers: { host: hostOf(H1) } });
      expect(r.statusCode).toBe(200);
      expect(((await r.body.json()) as { path: string }).path).toBe('/y');
    });

    it('the TLS listener still negotiates h2 and http/1.1', async () => {
      const tlsPort = fg.httpsPort ?? 0;
      const alpn = async (protocols: string[]) => {
        const s = tlsConnect({
          host: '127.0.0.1',
          port: tlsPort,
          servername: hostOf(H1),
          ca,
          ALPNProtocols: protocols,
        });
        await once(s, 'secureConnect');
        const picked = s.alpnProtocol;
        s.destroy();
        return picked;
      };
      expect(await alpn(['h2', 'http/1.1'])).toBe('h2');
      expect(await alpn(['http/1.1'])).toBe('http/1.1');
      const session = h2connect(`https://127.0.0.1:${tlsPort}`, { ca, servername: hostOf(H1) });
      try {
        const a = await h2request(session, { ':path': '/', ':authority': hostOf(H1) });
        expect(a.status).toBe(200);
      } finally {
        session.close();
      }
    });
  });

  describe('the protocol to a backend', () => {
    it('follows appProtocol: kubernetes.io/h2c and grpc get HTTP/2, http gets HTTP/1.1', async () => {
      for (const [key, version] of [
        [H2, '2.0'],
        [GRPC, '2.0'],
        [H1, '1.1'],
      ] as const) {
        const r = await request(`${fg.url}/`, { headers: { host: hostOf(key) } });
        expect(r.statusCode).toBe(200);
        expect(((await r.body.json()) as { version: string }).version, key).toBe(version);
      }
    });

    it('https: h2 when the backend offers it by ALPN, else HTTP/1.1, verified by the profile', async () => {
      for (const [key, version] of [
        [TLS_H2, '2.0'],
        [TLS_H1, '1.1'],
        [TLS_H1, '1.1'],
      ] as const) {
        const r = await request(`${fg.url}/`, { headers: { host: hostOf(key) } });
        expect(r.statusCode, key).toBe(200);
        expect(((await r.body.json()) as { version: string }).version, key).toBe(version);
      }
    });

    it('https without a profile is verified against the system CAs: a private CA is refused', async () => {
      const r = await request(`${fg.url}/`, { headers: { host: hostOf(UNTRUSTED) } });
      expect(r.statusCode).toBe(502);
      await r.body.dump();
    });

    it('fedgate.io/backend-protocol overrides the port appProtocol', async () => {
      const r = await request(`${fg.url}/`, { headers: { host: hostOf(ANNOTATED) } });
      expect(((await r.body.json()) as { version: string }).version).toBe('2.0');
    });
  });

  it('a mirrored copy speaks its service’s protocol: HTTP/2 in clear to h2c, TLS under its profile to https', async () => {
    const before = { h2: h2.log.versions.length, tls: tlsH2.log.versions.length };
    const r = await request(`${fg.url}/mirrored`, { headers: { host: MIRRORED } });
    expect(r.statusCode).toBe(200);
    expect((await r.body.json()) as { version: string }).toMatchObject({ version: '1.1' });
    await waitFor(
      () => h2.log.versions.length > before.h2 && tlsH2.log.versions.length > before.tls,
      5000,
      'both copies to arrive',
    );
    // Both over HTTP/2 (TLS: by ALPN), as real tries to those services go.
    expect(h2.log.versions.slice(before.h2)).toEqual(['2.0']);
    expect(tlsH2.log.versions.slice(before.tls)).toEqual(['2.0']);
  });

  it('multiplexes within the backend stream cap: 100 requests at once, at most 10 per session', async () => {
    const session = h2connect(fg.url);
    try {
      const all = await Promise.all(
        Array.from({ length: 100 }, (_, i) =>
          h2request(session, { ':path': `/slow/200?i=${i}`, ':authority': hostOf(MUX) }),
        ),
      );
      expect(all.map((a) => a.status)).toEqual(Array(100).fill(200));
    } finally {
      session.close();
    }
    expect(mux.log.maxPerSession).toBeLessThanOrEqual(10);
    expect(mux.log.maxPerSession).toBeGreaterThan(1);
    expect(mux.log.sessions).toBeGreaterThan(1);
  });

  it('loses no request when a backend sends GOAWAY and then closes under load', async () => {
    const session = h2connect(fg.url);
    const statuses: number[] = [];
    let sent = 0;
    const loop = async () => {
      while (sent < 300) {
        sent++;
        const a = await h2request(session, { ':path': '/slow/20', ':authority': hostOf(PAIR) });
        statuses.push(a.status);
      }
    };
    const loops = Array.from({ length: 20 }, loop);
    await waitFor(() => pairA.sessions.size > 0 && pairA.log.requests > 20, 10_000, 'A to serve');
    // GOAWAY naming an old stream: every stream past it was never processed.
    for (const s of pairA.sessions) s.goaway(constants.NGHTTP2_NO_ERROR, 1);
    await waitFor(() => sent > 150, 10_000, 'more requests');
    await pairA.stop();
    await Promise.all(loops);
    session.close();
    expect(statuses.length).toBe(300);
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
    expect(
      await series(fg.metrics, 'fedgate_http_retries_total', 'reason="refused"'),
    ).toBeGreaterThan(0);
    // Refused streams are no fault of the endpoint.
    expect(fg.reports.filter((r) => r.includes('refused'))).toEqual([]);
  }, 30_000);

  it('sends a refused stream elsewhere with the body it had read, whatever the method', async () => {
    const session = h2connect(fg.url);
    try {
      for (let i = 0; i < 12; i++) {
        const body = `payload-${i}`;
        const a = await h2request(
          session,
          { ':method': 'POST', ':path': '/echo', ':authority': hostOf(REFUSING) },
          body,
        );
        expect(a.status).toBe(200);
        expect((JSON.parse(a.body) as { bytes: number }).bytes).toBe(body.length);
      }
    } finally {
      session.close();
    }
    // p2c sent some first tries to the refusing endpoint: each went again to the other.
    expect(refuser.log.refused).toBeGreaterThan(0);
    expect(taker.log.requests).toBe(12);
  });

  describe('trailers', () => {
    it('reach an HTTP/2 client from HTTP/2 and HTTP/1.1 backends', async () => {
      const session = h2connect(fg.url);
      try {
        for (const key of [H2, H1]) {
          const a = await h2request(session, { ':path': '/trailers', ':authority': hostOf(key) });
          expect(a.body).toBe('body');
          expect(a.trailers?.['x-checksum'], key).toBe('abc');
          expect(a.trailers?.['grpc-status'], key).toBe('0');
        }
      } finally {
        session.close();
      }
    });

    it('reach an HTTP/1.1 client that sent TE: trailers, and not one that did not', async () => {
      const ask = (te: string) =>
        rawH1(
          port(),
          `GET /trailers HTTP/1.1\r\nHost: ${hostOf(H2)}\r\n${te}Connection: close\r\n\r\n`,
        );
      const with_ = await ask('TE: trailers\r\nConnection: TE\r\n');
      expect(with_).toMatch(/transfer-encoding: chunked/i);
      expect(with_).toMatch(/\r\n0\r\nx-checksum: abc\r\n/i);
      const without = await ask('');
      expect(without).toContain('body');
      expect(without).not.toMatch(/x-checksum/i);
    });

    it('request trailers from an HTTP/2 client reach an HTTP/2 backend, and TE: trailers too', async () => {
      const session = h2connect(fg.url);
      try {
        const a = await h2request(
          session,
          { ':method': 'POST', ':path': '/echo', ':authority': hostOf(H2) },
          'hello',
          { 'x-request-trailer': 'yes' },
        );
        const echo = JSON.parse(a.body) as { bytes: number; trailers: Record<string, string> };
        expect(echo.bytes).toBe(5);
        expect(echo.trailers['x-request-trailer']).toBe('yes');
        const b = await h2request(session, {
          ':path': '/',
          ':authority': hostOf(H2),
          te: 'trailers',
        });
        expect((JSON.parse(b.body) as { te: string }).te).toBe('trailers');
      } finally {
        session.close();
      }
    });
  });

  describe('request trailers to an HTTP/1.1 backend', () => {
    it('pass when the request announces them (Trailer), from an HTTP/2 and an HTTP/1.1 client', async () => {
      const session = h2connect(fg.url);
      try {
        const a = await h2request(
          session,
          { ':method': 'POST', ':path': '/echo', ':authority': hostOf(H1), trailer: 'x-sum' },
          'hello',
          { 'x-sum': '42' },
        );
        const echo = JSON.parse(a.body) as {
          bytes: number;
          trailers: Record<string, string>;
          version: string;
        };
        expect(echo).toMatchObject({ bytes: 5, version: '1.1' });
        expect(echo.trailers['x-sum']).toBe('42');
      } finally {
        session.close();
      }
      const raw = await rawH1(
        port(),
        `POST /echo HTTP/1.1\r\nHost: ${hostOf(H1)}\r\nTransfer-Encoding: chunked\r\nTrailer: x-sum\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\nx-sum: 43\r\n\r\n`,
      );
      const body = raw.slice(raw.indexOf('{'), raw.lastIndexOf('}') + 1);
      const echo = JSON.parse(body) as { bytes: number; trailers: Record<string, string> };
      expect(echo.bytes).toBe(5);
      expect(echo.trailers['x-sum']).toBe('43');
    });

    it('pass unannounced when the body has no declared length (HTTP/2 without content-length, HTTP/1.1 chunked)', async () => {
      const session = h2connect(fg.url);
      try {
        const a = await h2request(
          session,
          { ':method': 'POST', ':path': '/echo', ':authority': hostOf(H1) },
          'hello',
          { 'x-sum': '44' },
        );
        const echo = JSON.parse(a.body) as { bytes: number; trailers: Record<string, string> };
        expect(echo.bytes).toBe(5);
        expect(echo.trailers['x-sum']).toBe('44');
      } finally {
        session.close();
      }
      const raw = await rawH1(
        port(),
        `POST /echo HTTP/1.1\r\nHost: ${hostOf(H1)}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\nx-sum: 45\r\n\r\n`,
      );
      const body = raw.slice(raw.indexOf('{'), raw.lastIndexOf('}') + 1);
      const echo = JSON.parse(body) as { bytes: number; trailers: Record<string, string> };
      expect(echo.bytes).toBe(5);
      expect(echo.trailers['x-sum']).toBe('45');
    });

    it('a body with a length keeps it: the backend gets content-length, not chunks', async () => {
      const session = h2connect(fg.url);
      try {
        const a = await h2request(
          session,
          { ':method': 'POST', ':path': '/echo', ':authority': hostOf(H1), 'content-length': '5' },
          'hello',
        );
        const echo = JSON.parse(a.body) as { bytes: number; framing: unknown };
        expect(echo).toMatchObject({ bytes: 5, framing: { length: '5', chunked: null } });
      } finally {
        session.close();
      }
    });
  });

  it('h2c connections count against the per-client cap, and a drain sends them GOAWAY', async () => {
    const own = await startStaticProxy(
      [{ key: H1, appProtocol: 'http', endpoints: [{ address: '127.200.0.2', port: h1.port }] }],
      { limits: { maxConnectionsPerClient: 1 } },
    );
    const first = h2connect(own.url);
    first.on('error', () => {});
    let second: ClientHttp2Session | undefined;
    try {
      const a = await h2request(first, { ':path': '/', ':authority': hostOf(H1) });
      expect(a.status).toBe(200);
      second = h2connect(own.url);
      second.on('error', () => {});
      // The second connection is closed as accepted: its client holds its one.
      await once(second, 'close');
      const goaway = once(first, 'goaway');
      const drained = own.proxy.drain(5000);
      await goaway;
      first.close();
      expect((await drained).cut).toBe(0);
    } finally {
      first.destroy();
      second?.destroy();
      await own.stop();
    }
  });

  it('a reload sends its stream cap to h2c connections already open', async () => {
    const session = h2connect(fg.url);
    try {
      await h2request(session, { ':path': '/', ':authority': hostOf(H1) });
      expect(session.remoteSettings.maxConcurrentStreams).toBe(200);
      const next = fg.withHttp({
        limits: { maxRequestsPerEndpoint: 500, clientShare: 0, maxConcurrentStreams: 7 },
      });
      const settings = once(session, 'remoteSettings');
      const staged = await fg.proxy.stage(next, { observer: fg.metrics });
      staged.commit();
      const [got] = (await settings) as [{ maxConcurrentStreams: number }];
      expect(got.maxConcurrentStreams).toBe(7);
    } finally {
      session.close();
    }
  });

  it('a client resetting its stream resets the upstream stream', async () => {
    const session = h2connect(fg.url);
    try {
      const before = h2.log.hangsClosed;
      const s = session.request({ ':path': '/hang', ':authority': hostOf(H2) });
      s.on('error', () => {});
      await waitFor(() => h2.log.hangsOpen > before, 10_000, 'the backend to see the stream');
      s.close(constants.NGHTTP2_CANCEL);
      await waitFor(() => h2.log.hangsClosed > before, 5_000, 'the backend stream to close');
    } finally {
      session.close();
    }
  });
});
