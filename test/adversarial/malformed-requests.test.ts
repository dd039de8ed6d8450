// A client's malformed request is never an endpoint's fault, end to end: raw sockets
// (node:net) for the shapes node:http lets through but undici refuses, and node:http2
// over TLS for HTTP/2's, against a real ProxyServer on a local federation. Each
// request is answered 400 by fedgate itself, counted once as rejected, and no
// endpoint hears of it: no connection, no outcome reported to outlier detection, no
// ejection. Also: regional and zonal names route only where DNS has them, and a 404
// names the authority the request was routed by.
import { writeFile } from 'node:fs/promises';
import { type ClientHttp2Session, connect as h2connect } from 'node:http2';
import { connect as netConnect } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../../src/config/schema.ts';
import type { Discovery } from '../../src/discovery.ts';
import type { Outcome } from '../../src/health/outlier.ts';
import type { LocalFederation } from '../../src/localfed/federation.ts';
import { type ClusterPki, makeClusterPki } from '../../src/localfed/pki.ts';
import { Metrics } from '../../src/observe/metrics.ts';
import { ProxyServer } from '../../src/proxy/server.ts';
import { DiscoveryEnv, startFederation } from '../helpers/discovery-env.ts';
import { waitFor } from '../helpers/wait.ts';

// One cluster on 127.42.0.0/16: web in us-east-a and us-east-b, one pod each.
const SCENARIO = `
federation: { name: testfed, domain: example.test }
terminationGraceSeconds: 1
clusters:
  - name: alpha
    region: us-east
    zones: [{ name: us-east-a, nodes: 1 }, { name: us-east-b, nodes: 1 }]
services:
  - { name: web, namespace: shop, ports: [{ name: http, port: 80, targetPort: 8080 }], clusters: [alpha], replicasPerZone: 1 }
`;
const BLOCK = 42;
const WEB = 'web.shop.testfed.svc.example.test';
const SERVICE = 'shop/web';
/**
 * Outlier detection as shipped (5 consecutive gateway failures eject), except that it
 * may eject every endpoint: a client's bad requests must not eject even one. No active
 * checks, so health moves by what the proxy reports alone.
 */
const OVERRIDES = {
  self: { region: 'us-east', zone: 'us-east-a' },
  health: { active: { enabled: false }, outlier: { maxEjectionPercent: 100 } },
};

interface RawReply {
  status: number;
  code: string | undefined;
  body: string;
  text: string;
}

/** Writes `payload` on a fresh connection and reads until the proxy closes it (5 s at most). */
function raw(port: number, payload: string): Promise<RawReply> {
  return new Promise((resolve) => {
    const socket = netConnect({ host: '127.0.0.1', port });
    const chunks: Buffer[] = [];
    const done = () => {
      clearTimeout(timer);
      socket.destroy();
      const text = Buffer.concat(chunks).toString('latin1');
      const [head = '', body = ''] = text.split('\r\n\r\n', 2);
      resolve({
        status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0),
        code: /\r\nx-fedgate-error: *([A-Z_]+)/i.exec(head)?.[1],
        body,
        text,
      });
    };
    const timer = setTimeout(done, 5000);
    socket.once('connect', () => socket.write(payload));
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', () => {});
    socket.on('close', done);
  });
}

/** One HTTP/2 request, bounded; a stream reset rejects. */
function h2request(
  session: ClientHttp2Session,
  headers: Record<string, string>,
): Promise<{ status: number; code: string | undefined; body: string }> {
  return new Promise((resolve, reject) => {
    const stream = session.request(headers, { endStream: true });
    let status = 0;
    let code: string | undefined;
    let body = '';
    stream.setTimeout(10_000, () => stream.close());
    stream.on('response', (h) => {
      status = Number(h[':status']);
      code = h['x-fedgate-error'] as string | undefined;
    });
    stream.on('data', (c: Buffer) => {
      body += c.toString();
    });
    stream.on('end', () => resolve({ status, code, body }));
    stream.on('error', reject);
    stream.on('close', () => reject(new Error(`stream closed, RST code ${stream.rstCode}`)));
  });
}

const get = (host: string, extra = '') =>
  `GET / HTTP/1.1\r\nHost: ${host}\r\n${extra}Connection: close\r\n\r\n`;

describe('malformed requests are the client’s fault, never an endpoint’s', () => {
  const env = new DiscoveryEnv();
  let fed: LocalFederation;
  let d: Discovery;
  let config: Config;
  let proxy: ProxyServer;
  let metrics: Metrics;
  let port: number;
  let tlsPort: number;
  let pki: ClusterPki;
  /** Every outcome the proxy reported to health, as outlier detection heard it. */
  const reports: { id: string; outcome: Outcome }[] = [];

  beforeAll(async () => {
    pki = await makeClusterPki('malformed-web', [WEB]);
    const dir = await env.dir();
    const cert = join(dir, 'web.crt');
    const key = join(dir, 'web.key');
    await writeFile(cert, pki.serverCert);
    await writeFile(key, pki.serverKey);
    ({ fed, d, config } = await startFederation(env, SCENARIO, BLOCK, {
      ...OVERRIDES,
      http: {
        listen: ['127.0.0.1:0'],
        tls: { listen: ['127.0.0.1:0'], certificates: [{ cert, key }] },
      },
    }));
    metrics = new Metrics({ worker: '0' });
    proxy = await ProxyServer.start({
      config,
      catalog: d.catalog,
      health: {
        report: (service, id, outcome) => {
          reports.push({ id, outcome });
          d.health.report(service, id, outcome);
        },
      },
      router: d.router,
      log: env.log.logger,
      observer: metrics,
    });
    port = proxy.addresses().http[0]!.port;
    tlsPort = proxy.addresses().https[0]!.port;
    await waitFor(
      async () => (await raw(port, get(WEB))).status === 200,
      15_000,
      'web to answer through the proxy',
    );
  });

  afterAll(async () => {
    await proxy?.stop();
    await env.cleanup();
    await fed?.stop();
  });

  const backendRequests = () => fed.backends().reduce((n, b) => n + b.requests, 0);
  /** The requests counted with outcome "rejected", over every service. */
  async function rejected(): Promise<number> {
    const text = await metrics.registry.metrics();
    let n = 0;
    for (const line of text.split('\n')) {
      if (line.startsWith('fedgate_http_requests_total{') && line.includes('outcome="rejected"'))
        n += Number(line.slice(line.lastIndexOf(' ') + 1));
    }
    return n;
  }
  /** Endpoints of web ejected or failing, by health as routing reads it. */
  const unhealthy = () => [...(d.health.store.endpoints(SERVICE)?.keys() ?? [])];

  /**
   * Sends each request, expects fedgate's own 400 with `code`, and checks that no
   * endpoint heard of any of them and each was counted once as rejected.
   */
  async function expectRefused(payloads: string[], code: string): Promise<RawReply[]> {
    const reportsBefore = reports.length;
    const backendBefore = backendRequests();
    const rejectedBefore = await rejected();
    const replies: RawReply[] = [];
    for (const p of payloads) {
      const r = await raw(port, p);
      expect(r.status, r.text).toBe(400);
      expect(r.code, r.text).toBe(code);
      replies.push(r);
    }
    expect(reports.slice(reportsBefore)).toEqual([]);
    expect(backendRequests()).toBe(backendBefore);
    expect(await rejected()).toBe(rejectedBefore + payloads.length);
    return replies;
  }

  it('answers a dozen requests with two Host headers 400, and leaves every endpoint healthy', async () => {
    const payloads = Array.from({ length: 12 }, (_, i) =>
      i % 3 === 0
        ? get(WEB, `Host: ${WEB}\r\n`) // the same Host twice is still two (RFC 9112 §3.2)
        : i % 3 === 1
          ? get(WEB, 'Host: other.example.test\r\n')
          : `GET / HTTP/1.0\r\nHost: ${WEB}\r\nHost: ${WEB}\r\n\r\n`,
    );
    const replies = await expectRefused(payloads, 'BAD_REQUEST');
    expect(replies[0]!.body).toContain('more than one Host');
    expect(unhealthy()).toEqual([]);
    // Both endpoints still serve: each zone's own name routes to its pod.
    for (const zone of ['us-east-a', 'us-east-b']) {
      const r = await raw(port, get(`web.shop.testfed.svc.${zone}.us-east.example.test`));
      expect(r.status, r.text).toBe(200);
      expect((JSON.parse(r.body) as { zone: string }).zone).toBe(zone);
    }
  });

  it('answers a WebSocket upgrade with two Host headers 400 too', async () => {
    const upgrade =
      `GET /chat HTTP/1.1\r\nHost: ${WEB}\r\nHost: ${WEB}\r\nConnection: Upgrade\r\n` +
      'Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n' +
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n';
    await expectRefused([upgrade, upgrade], 'BAD_REQUEST');
    expect(unhealthy()).toEqual([]);
  });

  it('answers asterisk-form (OPTIONS *) 400 REQUEST_UNFORWARDABLE, forwarding nothing', async () => {
    const [r] = await expectRefused(
      [`OPTIONS * HTTP/1.1\r\nHost: ${WEB}\r\nConnection: close\r\n\r\n`],
      'REQUEST_UNFORWARDABLE',
    );
    expect(r!.body).toContain('asterisk-form');
    await expectRefused(
      [`GET * HTTP/1.1\r\nHost: ${WEB}\r\nConnection: close\r\n\r\n`],
      'REQUEST_UNFORWARDABLE',
    );
    expect(unhealthy()).toEqual([]);
  });

  it('answers a Host with a port above 65535, or that is no host and port, 400', async () => {
    await expectRefused(
      [get(`${WEB}:70000`), get(`${WEB}:65536`), get('[::1'), get(`${WEB} x`)],
      'BAD_REQUEST',
    );
  });

  it('answers an HTTP/2 request whose Host and :authority disagree 400 (RFC 9113 §8.3.1)', async () => {
    const session = h2connect(`https://127.0.0.1:${tlsPort}`, { ca: pki.caCert, servername: WEB });
    try {
      const reportsBefore = reports.length;
      const backendBefore = backendRequests();
      const rejectedBefore = await rejected();
      const base = { ':method': 'GET', ':path': '/', ':authority': WEB };
      const mismatch = await h2request(session, { ...base, host: 'other.example.test' });
      expect(mismatch.status, mismatch.body).toBe(400);
      expect(mismatch.code).toBe('BAD_REQUEST');
      const port = await h2request(session, { ...base, ':authority': `${WEB}:70000` });
      expect(port.status, port.body).toBe(400);
      const star = await h2request(session, { ...base, ':method': 'OPTIONS', ':path': '*' });
      expect(star.status, star.body).toBe(400);
      expect(star.code).toBe('REQUEST_UNFORWARDABLE');
      expect(reports.slice(reportsBefore)).toEqual([]);
      expect(backendRequests()).toBe(backendBefore);
      expect(await rejected()).toBe(rejectedBefore + 3);
      // The same host in both, by another spelling of the default port, is served.
      const same = await h2request(session, { ...base, host: `${WEB.toUpperCase()}:443` });
      expect(same.status, same.body).toBe(200);
      expect(session.alpnProtocol).toBe('h2');
    } finally {
      session.close();
    }
  });

  it('answers regional and zonal names of places that do not exist 404, as DNS answers NXDOMAIN', async () => {
    const at = (scope: string) => `web.shop.testfed.svc.${scope}.example.test`;
    for (const known of ['us-east', 'us-east-a.us-east', 'us-east-b.us-east']) {
      const r = await raw(port, get(at(known)));
      expect(r.status, `${known}: ${r.text}`).toBe(200);
    }
    const rejectedBefore = await rejected();
    const backendBefore = backendRequests();
    const unknown = ['eu-north', 'us-east-z.us-east', 'us-east-a.eu-north', 'us-east-a.us-west'];
    for (const scope of unknown) {
      const r = await raw(port, get(at(scope)));
      expect(r.status, `${scope}: ${r.text}`).toBe(404);
      expect(r.code).toBe('HOST_UNKNOWN');
    }
    expect(backendRequests()).toBe(backendBefore);
    expect(await rejected()).toBe(rejectedBefore + unknown.length);
  });

  it("names the absolute-form URL's authority in its 404, not the Host header", async () => {
    const rejectedBefore = await rejected();
    const r = await raw(
      port,
      `GET http://nope.example/ HTTP/1.1\r\nHost: ${WEB}\r\nConnection: close\r\n\r\n`,
    );
    expect(r.status, r.text).toBe(404);
    expect(r.code).toBe('HOST_UNKNOWN');
    expect(r.body).toContain('"nope.example"');
    expect(r.body).not.toContain(WEB);
    expect(await rejected()).toBe(rejectedBefore + 1);
  });
});
