import { once } from 'node:events';
import {
  constants,
  createServer,
  type Http2Server,
  type Http2Session,
  type ServerHttp2Stream,
} from 'node:http2';
import { createServer as createHttps } from 'node:https';
import { type AddressInfo, connect as netConnect } from 'node:net';
import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { makeClusterPki } from '../localfed/pki.ts';
import { classify } from './failures.ts';
import { type Dial, H2Pool } from './h2-pool.ts';
import { dialer, tlsPool } from './upstream-tls.ts';

const HOST = '127.200.1.1';

/** What a handler heard, and a promise of the end (trailers) or the error. */
function recorder() {
  const heard = {
    starts: 0,
    status: 0,
    body: '',
    sent: false,
    trailers: undefined as Record<string, unknown> | undefined,
    error: undefined as Error | undefined,
    controller: undefined as Dispatcher.DispatchController | undefined,
  };
  let settle: () => void = () => {};
  const settled = new Promise<void>((r) => {
    settle = r;
  });
  const handler: Dispatcher.DispatchHandler = {
    onRequestStart: (c) => {
      heard.starts++;
      heard.controller = c;
    },
    onRequestSent: () => {
      heard.sent = true;
    },
    onResponseStart: (_c, status) => {
      heard.status = status;
    },
    onResponseData: (_c, chunk) => {
      heard.body += chunk.toString();
    },
    onResponseEnd: (_c, trailers) => {
      heard.trailers = trailers as Record<string, unknown>;
      settle();
    },
    onResponseError: (_c, err) => {
      heard.error = err;
      settle();
    },
  };
  return { heard, handler, settled };
}

const servers: { close(): void }[] = [];
const pools: H2Pool[] = [];
afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => p.destroy()));
  for (const s of servers.splice(0)) s.close();
});

/** An h2c server; `onStream` answers (default: 200 "ok" with a trailer). */
async function h2c(
  onStream: (s: ServerHttp2Stream) => void = (s) => {
    s.respond({ ':status': 200 }, { waitForTrailers: true });
    s.on('wantTrailers', () => s.sendTrailers({ 'grpc-status': '0' }));
    s.end('ok');
  },
  maxConcurrentStreams = 100,
) {
  const server: Http2Server = createServer({ settings: { maxConcurrentStreams } });
  const sessions = new Set<Http2Session>();
  const seen = { sessions: 0, maxOpen: 0 };
  server.on('session', (session) => {
    seen.sessions++;
    sessions.add(session);
    session.on('close', () => sessions.delete(session));
  });
  server.on('stream', (s) => {
    s.on('error', () => {});
    onStream(s);
  });
  server.listen(0, HOST);
  await once(server, 'listening');
  servers.push({
    close: () => {
      for (const s of sessions) s.destroy();
      server.close();
    },
  });
  return { port: (server.address() as AddressInfo).port, sessions, seen };
}

const tcp =
  (port: number): Dial =>
  () =>
    new Promise((resolve, reject) => {
      const s = netConnect({ host: HOST, port });
      s.once('error', reject);
      s.once('connect', () => resolve(s));
    });

function pool(port: number, over: Partial<ConstructorParameters<typeof H2Pool>[0]> = {}) {
  const p = new H2Pool({
    origin: `http://${HOST}:${port}`,
    dial: tcp(port),
    connectTimeoutMs: 2000,
    idleTimeoutMs: 10_000,
    bodyTimeoutMs: 10_000,
    ...over,
  });
  pools.push(p);
  return p;
}

const get = (path = '/') => ({ method: 'GET', path, headers: ['host', 'svc.example'] });

describe('H2Pool', () => {
  it('drives undici handler calls: start, sent, head, body, end with trailers', async () => {
    const { port } = await h2c();
    const r = recorder();
    pool(port).dispatch(get(), r.handler);
    await r.settled;
    expect(r.heard).toMatchObject({ starts: 1, sent: true, status: 200, body: 'ok' });
    expect(r.heard.trailers).toEqual({ 'grpc-status': '0' });
  });

  it('keeps to the peer stream cap and opens another session when every one is full', async () => {
    let open = 0;
    let most = 0;
    const { port, seen } = await h2c((s) => {
      open++;
      most = Math.max(most, open);
      s.on('close', () => open--);
      setTimeout(() => {
        s.respond({ ':status': 200 });
        s.end('x');
      }, 100);
    }, 2);
    const p = pool(port);
    const all = Array.from({ length: 6 }, () => recorder());
    for (const r of all) p.dispatch(get(), r.handler);
    await Promise.all(all.map((r) => r.settled));
    expect(all.map((r) => r.heard.status)).toEqual(Array(6).fill(200));
    expect(seen.sessions).toBeGreaterThanOrEqual(2);
    // Per session at most 2: with 6 at once over at least 2 sessions, more than 2 overall.
    expect(most).toBeGreaterThan(2);
  });

  it('fails a stream the backend refuses as never processed, and a GOAWAY past it too', async () => {
    const { port } = await h2c((s) => s.close(constants.NGHTTP2_REFUSED_STREAM));
    const r = recorder();
    pool(port).dispatch(get(), r.handler);
    await r.settled;
    expect(r.heard.error).toBeDefined();
    expect(classify(r.heard.error!)).toBe('refused');

    // Node reads a last stream id of 0 as the last one it processed: 1 keeps stream 1.
    const slow = await h2c(() => {});
    const p = pool(slow.port);
    const three = Array.from({ length: 3 }, () => recorder());
    for (const r of three) p.dispatch(get(), r.handler);
    await new Promise((res) => setTimeout(res, 100));
    for (const s of slow.sessions) s.goaway(constants.NGHTTP2_NO_ERROR, 1);
    await Promise.all(three.slice(1).map((r) => r.settled));
    expect(three.slice(1).map((r) => classify(r.heard.error!))).toEqual(['refused', 'refused']);
    expect(three[0]!.heard.error).toBeUndefined();
  });

  it('fails a stream the backend resets, before or after its head, rather than ending it as whole', async () => {
    const before = await h2c((s) => s.close(constants.NGHTTP2_CANCEL));
    const r1 = recorder();
    pool(before.port).dispatch(get(), r1.handler);
    await r1.settled;
    expect(r1.heard.trailers).toBeUndefined();
    expect(classify(r1.heard.error!)).toBe('reset');

    const after = await h2c((s) => {
      s.respond({ ':status': 200, 'content-type': 'application/grpc' });
      // The backend's connection cut mid-answer (a killed pod); Node's own close()
      // would end the stream cleanly first.
      s.write('part', () => setTimeout(() => s.session?.socket.destroy(), 20));
    });
    const r2 = recorder();
    pool(after.port).dispatch(get(), r2.handler);
    await r2.settled;
    expect(r2.heard.status).toBe(200);
    expect(r2.heard.trailers).toBeUndefined();
    expect(r2.heard.error).toBeDefined();
  });

  it('fails with a connect error when nothing listens, and a connect timeout when the dial hangs', async () => {
    const { port } = await h2c();
    for (const s of servers.splice(0)) s.close();
    const r = recorder();
    pool(port).dispatch(get(), r.handler);
    await r.settled;
    expect(classify(r.heard.error!)).toBe('connect');

    const hung = recorder();
    pool(1, { dial: () => new Promise(() => {}), connectTimeoutMs: 100 }).dispatch(
      get(),
      hung.handler,
    );
    await hung.settled;
    expect((hung.heard.error as NodeJS.ErrnoException).code).toBe('UND_ERR_CONNECT_TIMEOUT');
    expect(classify(hung.heard.error!)).toBe('connect');
  });

  it('resets the stream with CANCEL when the controller aborts', async () => {
    let rst = -1;
    const closed = new Promise<void>((resolve) => {
      void h2c((s) =>
        s.on('close', () => {
          rst = s.rstCode;
          resolve();
        }),
      ).then(({ port }) => {
        const r = recorder();
        pool(port).dispatch(get(), r.handler);
        setTimeout(() => r.heard.controller?.abort(new Error('client went away')), 100);
      });
    });
    await closed;
    expect(rst).toBe(constants.NGHTTP2_CANCEL);
  });

  it('closes a stream answered before its body was all sent, freeing its place on the session', async () => {
    const { port } = await h2c((s) => {
      s.respond({ ':status': 413 });
      s.end('too big');
    });
    const p = pool(port);
    let stop: () => void = () => {};
    const stopped = new Promise<void>((r) => {
      stop = r;
    });
    async function* endless() {
      yield Buffer.from('first');
      await stopped;
    }
    const r = recorder();
    p.dispatch({ ...get(), method: 'POST', body: endless() as unknown as Readable }, r.handler);
    await r.settled;
    expect(r.heard.status).toBe(413);
    await new Promise((res) => setTimeout(res, 50));
    expect(p.stats.running).toBe(0);
    stop();
  });

  it('closes a session idle past the idle timeout', async () => {
    const { port, sessions } = await h2c();
    const p = pool(port, { idleTimeoutMs: 100 });
    const r = recorder();
    p.dispatch(get(), r.handler);
    await r.settled;
    expect(sessions.size).toBe(1);
    await new Promise((res) => setTimeout(res, 400));
    expect(sessions.size).toBe(0);
    expect(p.sessions).toBe(0);
  });

  it('sends to the HTTP/1.1 fallback when ALPN picks http/1.1, and keeps doing so', async () => {
    const pki = await makeClusterPki('h2-pool', [HOST]);
    const server = createHttps({ cert: pki.serverCert, key: pki.serverKey }, (req, res) =>
      res.end(`h1 ${req.httpVersion}`),
    );
    server.listen(0, HOST);
    await once(server, 'listening');
    servers.push({ close: () => server.close() });
    const { port } = server.address() as AddressInfo;
    const route = {
      origin: `http://${HOST}:${port}`,
      wire: { h2: true, tls: { key: 'test', options: { ca: pki.caCert } } },
    };
    let dials = 0;
    const dial = dialer(route);
    // undici's Pool over TLS, named by the route, not by the request's Host (svc.example).
    const fallback = tlsPool(route.origin, {}, route.wire.tls);
    const p = pool(port, {
      origin: `https://${HOST}:${port}`,
      dial: () => {
        dials++;
        return dial();
      },
      fallback: () => fallback as unknown as Dispatcher,
    });
    for (let i = 0; i < 2; i++) {
      const r = recorder();
      p.dispatch(get(), r.handler);
      await r.settled;
      expect(r.heard.error).toBeUndefined();
      expect(r.heard.body).toBe('h1 1.1');
    }
    expect(dials).toBe(1);
    await fallback.close();
  });
});
