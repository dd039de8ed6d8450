// Cancellation must release everything: a client that cancels, resets or drops its
// requests (HTTP/2 streams reset at once or later, HTTP/1.1 connections closed mid-
// request or mid-response) must leave no upstream request and no endpoint slot held,
// every such request is counted once as client_cancelled, and an HTTP/2 connection
// that resets abusively is closed. Real clients (node:http, node:http2) against a
// real ProxyServer with a TLS listener and the local federation's backends, whose
// /delay path holds a request as a hanging backend would.
import { writeFile } from 'node:fs/promises';
import { type ClientRequest, request as httpRequest } from 'node:http';
import {
  type ClientHttp2Session,
  type ClientHttp2Stream,
  constants as h2,
  connect as h2connect,
} from 'node:http2';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { effectiveConfig, parseConfig } from '../../src/config/load.ts';
import { makeClusterPki } from '../../src/localfed/pki.ts';
import { endpointId } from '../../src/routing/types.ts';
import { DiscoveryEnv } from '../helpers/discovery-env.ts';
import { type ProxyBench, startProxy } from '../helpers/proxy-env.ts';
import { sleep, waitFor } from '../helpers/wait.ts';

// One cluster on 127.41.x.x, one zone, one pod: every slot of the zone is that pod's.
const SCENARIO = `
federation: { name: cancelfed, domain: example.test }
terminationGraceSeconds: 1
clusters:
  - name: gamma
    region: eu-north
    zones: [{ name: eu-north-a, nodes: 1 }]
services:
  - { name: slow, namespace: edge, ports: [{ name: http, port: 80, targetPort: 8080 }], clusters: [gamma], replicasPerZone: 1 }
`;
const BLOCK = 41;
const HOST = 'slow.edge.cancelfed.svc.example.test';
const SERVICE = 'edge/slow';
/** Requests one endpoint takes at once: small, so a leak shows as 503 UPSTREAM_OVERFLOW. */
const SLOTS = 4;
/** Requests that may wait for a slot: the queue a cancelled request must leave. */
const PENDING = 2;
/** HTTP/2 streams a connection may have open at once. */
const STREAMS = 8;
/** A connection with half this many premature resets is closed. */
const RESET_STREAMS = 40;
const MAX_HEADER_COUNT = 10;
/** A request the backend holds for a minute: only a cancel can end it early. */
const HANG = '/delay/60000';

describe('cancellation releases every upstream request and slot', () => {
  const env = new DiscoveryEnv();
  let bench: ProxyBench;
  let plain: number;
  let tls: number;
  let ca: string;

  beforeAll(async () => {
    const pki = await makeClusterPki('edge-slow', [HOST]);
    ca = pki.caCert;
    const dir = await env.dir();
    const cert = join(dir, 'slow.crt');
    const key = join(dir, 'slow.key');
    await writeFile(cert, pki.serverCert);
    await writeFile(key, pki.serverKey);
    bench = await startProxy(env, SCENARIO, BLOCK, {
      self: { region: 'eu-north', zone: 'eu-north-a' },
      health: {
        active: { enabled: false },
        outlier: { consecutive5xx: 1000, consecutiveGatewayFailure: 1000 },
      },
      http: {
        listen: ['127.0.0.1:0'],
        tls: { listen: ['127.0.0.1:0'], certificates: [{ cert, key }] },
        limits: {
          maxRequestsPerEndpoint: SLOTS,
          maxPendingPerService: PENDING,
          maxHeaderCount: MAX_HEADER_COUNT,
          maxConcurrentStreams: STREAMS,
          prematureResetStreams: RESET_STREAMS,
        },
      },
    });
    plain = bench.proxy.addresses().http[0]!.port;
    tls = bench.proxy.addresses().https[0]!.port;
    await waitFor(async () => (await get(plain, '/')).status === 200, 15_000, 'slow to answer');
  });

  afterAll(async () => {
    await bench?.proxy.stop();
    await env.cleanup();
    await bench?.fed.stop();
  });

  const endpointIds = (): string[] =>
    (bench.d.catalog.current().services.get(SERVICE)?.clusters ?? []).flatMap((m) =>
      m.endpoints.map((e) => endpointId(m.cluster, e.addresses[0] ?? '')),
    );
  /** Requests in flight to the service's endpoints, as the proxy counts them (p2c's view). */
  const inFlight = (): number =>
    endpointIds().reduce((n, id) => n + bench.proxy.upstreams.outstanding(id), 0);
  /** Requests undici's pools still run or queue for the service's endpoints. */
  const undiciBusy = (): number =>
    endpointIds()
      .flatMap((id) => bench.proxy.upstreams.endpoint(id).pools())
      .reduce((n, p) => n + p.stats.running + p.stats.pending, 0);
  const pending = () => bench.proxy.upstreams.pendingCount(SERVICE);
  const backend = () => bench.fed.backends().find((b) => b.info.service === 'slow')!;

  /** Nothing held: no request in flight upstream, none waiting, and a new client is served. */
  async function released(what: string): Promise<void> {
    await waitFor(
      () => inFlight() === 0 && pending() === 0 && undiciBusy() === 0,
      5000,
      `${what}: in flight, pending and undici's running back to 0 (now ${inFlight()}, ${pending()}, ${undiciBusy()})`,
    );
    const fresh = await get(plain, '/');
    expect(fresh.status, fresh.body).toBe(200);
  }

  /** The sum of a series over the samples carrying every label given. */
  async function counted(name: string, labels: Record<string, string> = {}): Promise<number> {
    const metric = (await bench.metrics.json()).find((m) => m.name === name);
    let n = 0;
    for (const v of metric?.values ?? []) {
      const have = v.labels as Record<string, string | number>;
      if (Object.entries(labels).every(([k, want]) => String(have[k]) === want)) n += v.value;
    }
    return n;
  }
  const cancelled = () =>
    counted('fedgate_http_requests_total', {
      service: SERVICE,
      outcome: 'client_cancelled',
      code: '4xx',
    });

  const session = async (): Promise<ClientHttp2Session> => {
    const s = h2connect(`https://127.0.0.1:${tls}`, { ca, servername: HOST });
    s.on('error', () => {});
    await new Promise<void>((resolve, reject) => {
      s.once('remoteSettings', () => resolve());
      s.once('close', () => reject(new Error('session closed before its settings came')));
    });
    return s;
  };
  const open = (s: ClientHttp2Session, path = HANG): ClientHttp2Stream => {
    const st = s.request({ ':method': 'GET', ':path': path, ':authority': HOST });
    st.on('error', () => {});
    return st;
  };

  it('frees every slot a rapid-resetting HTTP/2 client took (HEADERS then RST_STREAM at once)', async () => {
    const s = await session();
    try {
      // More than the slots and the queue: without the fix the first SLOTS stay held.
      for (let i = 0; i < SLOTS * 3; i++) open(s).close(h2.NGHTTP2_CANCEL);
      // A PING answered: the proxy has read every frame before it.
      await new Promise<void>((resolve, reject) =>
        s.ping((err) => (err ? reject(err) : resolve())),
      );
      await released('after a burst of HEADERS + RST_STREAM');
      expect(s.destroyed).toBe(false);
    } finally {
      s.destroy();
    }
  });

  it('frees the slots of HTTP/2 requests cancelled while the backend holds them, counted once as client_cancelled (499)', async () => {
    const before = {
      cancelled: await cancelled(),
      resets: await counted(RESETS),
      seen: backend().requests,
    };
    const s = await session();
    try {
      const streams = Array.from({ length: SLOTS }, () => open(s));
      await waitFor(
        () => inFlight() === SLOTS && backend().requests - before.seen === SLOTS,
        5000,
        'every slot taken, the backend holding each request',
      );
      for (const st of streams) st.close(h2.NGHTTP2_CANCEL);
      await released('after NGHTTP2_CANCEL');
      expect((await cancelled()) - before.cancelled).toBe(SLOTS);
      expect((await counted(RESETS)) - before.resets).toBe(SLOTS);
    } finally {
      s.destroy();
    }
  });

  it('drops an HTTP/2 request waiting for a slot from the pending queue when it is reset', async () => {
    const before = await cancelled();
    const holders = Array.from({ length: SLOTS }, () => hold(plain, HANG));
    const s = await session();
    try {
      await waitFor(() => inFlight() === SLOTS, 5000, 'every slot held by HTTP/1.1 clients');
      const waiter = open(s);
      await waitFor(() => pending() === 1, 5000, 'the HTTP/2 request waiting for a slot');
      waiter.close(h2.NGHTTP2_CANCEL);
      await waitFor(() => pending() === 0, 5000, 'the pending queue empty again');
      expect(inFlight()).toBe(SLOTS);
      for (const h of holders) h.destroy();
      await released('after the holders left');
      expect((await cancelled()) - before).toBe(SLOTS + 1);
    } finally {
      for (const h of holders) h.destroy();
      s.destroy();
    }
  });

  /** The client leaves once its request is in flight upstream: freed and counted once. */
  async function leaveInFlight(client: { destroy(): void }, when: string): Promise<void> {
    const before = await cancelled();
    try {
      await waitFor(() => inFlight() === 1, 5000, `the request in flight upstream (${when})`);
    } finally {
      client.destroy();
    }
    await released(`after the client left ${when}`);
    expect((await cancelled()) - before).toBe(1);
  }

  it('frees the slot of an HTTP/1.1 client gone mid-request (body still streaming up), counted once', async () => {
    const req = httpRequest({
      host: '127.0.0.1',
      port: plain,
      method: 'POST',
      path: '/echo',
      headers: { host: HOST, 'content-length': String(1 << 20) },
      agent: false,
    });
    req.on('error', () => {});
    req.write(Buffer.alloc(64 * 1024, 'a'));
    await leaveInFlight(req, 'mid-body');
  });

  it('frees the slot of an HTTP/1.1 client gone mid-response, counted once', async () => {
    const before = await cancelled();
    // A response far larger than any buffer: it is still streaming when the client leaves.
    const got = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(
        {
          host: '127.0.0.1',
          port: plain,
          path: `/bytes/${2 ** 36}`,
          headers: { host: HOST },
          agent: false,
        },
        (res) => {
          res.once('data', () => {
            req.destroy();
            resolve(res.statusCode ?? 0);
          });
        },
      );
      req.setTimeout(10_000, () => req.destroy(new Error('no response within 10 s')));
      req.on('error', (e) => {
        if (!req.destroyed || e.message.includes('10 s')) reject(e);
      });
      req.end();
    });
    expect(got).toBe(200);
    await released('after the client left mid-response');
    expect((await cancelled()) - before).toBe(1);
  });

  it('frees the slot of an HTTP/1.1 client gone while the backend holds its request', async () => {
    await leaveInFlight(hold(plain, HANG), 'waiting for the response head');
  });

  it('advertises http.limits.maxConcurrentStreams and refuses a stream past it', async () => {
    const s = await session();
    expect(s.remoteSettings.maxConcurrentStreams).toBe(STREAMS);
    s.destroy();
    // A client that ignores the setting: STREAMS + 1 requests in one write.
    const frames = await rawH2(tls, ca, STREAMS + 1);
    const last = 2 * (STREAMS + 1) - 1;
    const refused =
      frames.some((f) => f.type === RST_STREAM && f.stream === last && f.code === REFUSED_STREAM) ||
      frames.some((f) => f.type === GOAWAY && (f.lastStream ?? last) < last);
    expect(refused, JSON.stringify(frames)).toBe(true);
    // Nothing of the refused stream was answered.
    expect(frames.some((f) => f.type === HEADERS && f.stream === last)).toBe(false);
    await released('after the raw client left');
  });

  it('closes an HTTP/2 connection that resets its streams abusively (GOAWAY), and counts it', async () => {
    const before = await counted(CLOSED, { reason: 'premature_resets' });
    const s = await session();
    const goaway = new Promise<number>((resolve) =>
      s.once('goaway', (code: number) => resolve(code)),
    );
    const closed = new Promise<void>((resolve) => s.once('close', () => resolve()));
    let sent = 0;
    // Bounded: at most RESET_STREAMS * 2 streams, and stop once the proxy closed it.
    while (sent < RESET_STREAMS * 2 && !s.destroyed && !s.closed) {
      try {
        open(s).close(h2.NGHTTP2_CANCEL);
      } catch {
        break;
      }
      sent++;
      if (sent % STREAMS === 0) await sleep(10);
    }
    await Promise.race([
      closed,
      sleep(5000).then(() => {
        throw new Error(`the connection is still open after ${sent} resets`);
      }),
    ]);
    expect(await Promise.race([goaway, sleep(100).then(() => -1)])).toBe(
      h2.NGHTTP2_ENHANCE_YOUR_CALM,
    );
    expect((await counted(CLOSED, { reason: 'premature_resets' })) - before).toBe(1);
    await released('after the abusive connection was closed');
  });

  it('keeps a connection whose client answers most of its streams and cancels a few', async () => {
    const before = await counted(CLOSED);
    const s = await session();
    try {
      for (let i = 0; i < RESET_STREAMS; i++) {
        const st = open(s, '/');
        await new Promise<void>((resolve) => {
          st.on('close', () => resolve());
          st.resume();
        });
        if (i % 4 === 0) open(s).close(h2.NGHTTP2_CANCEL);
      }
      expect(s.destroyed).toBe(false);
      expect(await counted(CLOSED)).toBe(before);
    } finally {
      s.destroy();
    }
    await released('after the polite connection');
  });

  it('answers 431 HEADERS_TOO_LARGE over HTTP/2 to many more header fields than maxHeaderCount', async () => {
    const s = await session();
    try {
      const headers: Record<string, string> = {
        ':method': 'GET',
        ':path': '/',
        ':authority': HOST,
      };
      for (let i = 0; i < MAX_HEADER_COUNT * 5; i++) headers[`x-field-${i}`] = String(i);
      const st = s.request(headers);
      const answer = await new Promise<{ status: number; code: string; rst?: number }>(
        (resolve) => {
          st.on('response', (h) =>
            resolve({ status: Number(h[':status']), code: String(h['x-fedgate-error']) }),
          );
          st.on('error', () => {});
          st.on('close', () => resolve({ status: 0, code: '', rst: st.rstCode }));
          st.end();
        },
      );
      expect(answer).toMatchObject({ status: 431, code: 'HEADERS_TOO_LARGE' });
    } finally {
      s.destroy();
    }
  });

  it('applies a reloaded maxConcurrentStreams to new connections and sends it to open ones', async () => {
    const kept = await session();
    const next = parseConfig(
      stringify({
        ...effectiveConfig(bench.config),
        http: {
          ...effectiveConfig(bench.config).http,
          limits: { ...bench.config.http.limits, maxConcurrentStreams: STREAMS * 2 },
        },
      }),
      join(await env.dir(), 'fedgate.yaml'),
    );
    const updated = new Promise<number | undefined>((resolve) =>
      kept.once('remoteSettings', (st) => resolve(st.maxConcurrentStreams)),
    );
    const staged = await bench.proxy.stage(next, { observer: bench.metrics });
    staged.commit();
    try {
      expect(await updated).toBe(STREAMS * 2);
      const fresh = await session();
      expect(fresh.remoteSettings.maxConcurrentStreams).toBe(STREAMS * 2);
      fresh.destroy();
    } finally {
      kept.destroy();
      const back = await bench.proxy.stage(bench.config, { observer: bench.metrics });
      back.commit();
    }
  });
});

const RESETS = 'fedgate_http2_stream_resets_total';
const CLOSED = 'fedgate_http_connections_closed_total';

/** A GET the backend holds, on its own connection; destroy() is the client leaving. */
function hold(port: number, path: string): ClientRequest {
  const req = httpRequest({ host: '127.0.0.1', port, path, headers: { host: HOST }, agent: false });
  req.on('error', () => {});
  req.end();
  return req;
}

async function get(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: '127.0.0.1', port, path, headers: { host: HOST }, agent: false },
      (res) => {
        let body = '';
        res.on('data', (c: Buffer) => {
          body += c.toString();
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.setTimeout(10_000, () => req.destroy(new Error(`no answer to ${path} within 10 s`)));
    req.on('error', reject);
    req.end();
  });
}

// ---- a raw HTTP/2 client: frames as bytes, for a client that ignores the settings ----

const HEADERS = 0x1;
const RST_STREAM = 0x3;
const SETTINGS = 0x4;
const GOAWAY = 0x7;
const REFUSED_STREAM = 0x7;

interface Frame {
  type: number;
  stream: number;
  code?: number;
  lastStream?: number;
}

function frame(type: number, flags: number, stream: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(stream, 5);
  return Buffer.concat([head, payload]);
}

/** A GET request's header block: static-table indexes and literals, no Huffman. */
function requestBlock(path: string): Buffer {
  const literal = (index: number, value: string) =>
    Buffer.concat([Buffer.from([index, value.length]), Buffer.from(value)]);
  // :method GET (2), :scheme https (7), :path (4), :authority (1): literal without indexing.
  return Buffer.concat([Buffer.from([0x82, 0x87]), literal(4, path), literal(1, HOST)]);
}

/**
 * Opens `n` streams in one write on a fresh TLS connection, once the settings are
 * exchanged, and returns the frames that came back within a second (RST_STREAM and
 * GOAWAY with their codes).
 */
function rawH2(port: number, ca: string, n: number): Promise<Frame[]> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({
      host: '127.0.0.1',
      port,
      ca,
      servername: HOST,
      ALPNProtocols: ['h2'],
    });
    const frames: Frame[] = [];
    let buf = Buffer.alloc(0);
    let sent = false;
    const done = () => {
      socket.destroy();
      resolve(frames);
    };
    socket.setTimeout(10_000, () => socket.destroy(new Error('raw HTTP/2 client timed out')));
    socket.on('error', reject);
    socket.once('secureConnect', () => {
      socket.write(Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'));
      socket.write(frame(SETTINGS, 0, 0, Buffer.alloc(0)));
    });
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 9) {
        const len = buf.readUIntBE(0, 3);
        if (buf.length < 9 + len) break;
        const type = buf[3]!;
        const flags = buf[4]!;
        const stream = buf.readUInt32BE(5) & 0x7fffffff;
        const payload = buf.subarray(9, 9 + len);
        buf = buf.subarray(9 + len);
        const f: Frame = { type, stream };
        if (type === RST_STREAM) f.code = payload.readUInt32BE(0);
        if (type === GOAWAY) {
          f.lastStream = payload.readUInt32BE(0) & 0x7fffffff;
          f.code = payload.readUInt32BE(4);
        }
        frames.push(f);
        if (type === SETTINGS && (flags & 1) === 0 && !sent) {
          sent = true;
          // Acknowledge the server's settings, then open every stream at once.
          const out = [frame(SETTINGS, 1, 0, Buffer.alloc(0))];
          for (let i = 0; i < n; i++) out.push(frame(HEADERS, 0x5, 2 * i + 1, requestBlock(HANG)));
          socket.write(Buffer.concat(out));
          setTimeout(done, 1000);
        }
      }
    });
  });
}
