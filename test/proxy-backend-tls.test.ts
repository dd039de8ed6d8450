// TLS and mutual TLS from the proxy to backends (routing.backendTLS): real HTTPS
// backends on the endpoints' addresses, certificates from two test CAs, and a real
// ProxyServer on a local federation. What is verified, what fails closed (502
// UPSTREAM_TLS), a retry to a good endpoint, a CA rotation picked up by a reload.
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { createSecureServer, type Http2SecureServer, connect as http2Connect } from 'node:http2';
import { createServer, type Server } from 'node:https';
import { connect } from 'node:net';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HealthMonitor } from '../src/health/monitor.ts';
import type { Backend } from '../src/localfed/backends.ts';
import { type CertificateAuthority, type Issued, issue, makeCa } from '../src/localfed/pki.ts';
import { explainHost } from '../src/observe/debug.ts';
import { BackendTlsProfiles } from '../src/proxy/backend-tls-profiles.ts';
import { endpointId } from '../src/routing/types.ts';
import { DiscoveryEnv } from './helpers/discovery-env.ts';
import {
  configBeside,
  type ProxyBench,
  series,
  startProxy,
  webSocketUpgrade,
} from './helpers/proxy-env.ts';
import { waitFor } from './helpers/wait.ts';

const BLOCK = 206;
const one = (name: string, port: number, extra = '') =>
  `  - { name: ${name}, namespace: shop, ports: [{ name: http, port: 80, targetPort: ${port} }], clusters: [alpha], replicasPerZone: 1${extra} }`;
const SCENARIO = `
federation: { name: testfed, domain: example.test }
terminationGraceSeconds: 1
clusters:
  - name: alpha
    region: us-east
    zones: [{ name: us-east-a, nodes: 1 }]
  - name: beta
    region: us-west
    zones: [{ name: us-west-a, nodes: 1 }]
services:
${one('good', 9001)}
${one('wrongca', 9002)}
${one('wrongname', 9003)}
${one('sans', 9004)}
${one('sansbad', 9005)}
${one('mtls', 9006)}
${one('mtlsmissing', 9007)}
${one('missing', 9008, ', annotations: { fedgate.io/backend-tls: nosuch }')}
${one('rotate', 9009)}
  - { name: h2tls, namespace: shop, ports: [{ name: https, port: 443, targetPort: 9011, appProtocol: https }], clusters: [alpha], replicasPerZone: 1 }
  - { name: h2mtls, namespace: shop, ports: [{ name: https, port: 443, targetPort: 9012, appProtocol: https }], clusters: [alpha], replicasPerZone: 1 }
  - { name: h2mtlsmissing, namespace: shop, ports: [{ name: https, port: 443, targetPort: 9013, appProtocol: https }], clusters: [alpha], replicasPerZone: 1 }
  - { name: alpnh1, namespace: shop, ports: [{ name: https, port: 443, targetPort: 9014, appProtocol: https }], clusters: [alpha], replicasPerZone: 1 }
  - { name: twoeps, namespace: shop, ports: [{ name: http, port: 80, targetPort: 9010 }], clusters: [alpha, beta], replicasPerZone: 1 }
`;
const host = (svc: string) => `${svc}.shop.testfed.svc.example.test`;
const SPIFFE = 'spiffe://testfed/ns/shop/sa/web';

describe('TLS from the proxy to backends', () => {
  const env = new DiscoveryEnv();
  let bench: ProxyBench;
  let caA: CertificateAuthority;
  let caB: CertificateAuthority;
  let dir: string;
  const servers: Server[] = [];
  const h2servers: Http2SecureServer[] = [];
  /** Which certificate each backend (by service, and cluster for twoeps) serves. */
  const certs = new Map<string, Issued>();
  const seen = new Map<string, number>();

  /** An HTTP/2 (and HTTP/1.1) server over TLS on the backend's own address and port. */
  async function serveH2(b: Backend, cert: Issued, mtls: boolean): Promise<void> {
    await b.stop();
    const s = createSecureServer(
      {
        ...cert,
        allowHTTP1: true,
        ...(mtls ? { requestCert: true, rejectUnauthorized: true, ca: caA.cert } : {}),
      },
      (req, res) => {
        const k = `${b.info.service}/${b.info.cluster}`;
        seen.set(k, (seen.get(k) ?? 0) + 1);
        res.end(`${b.info.service} HTTP/${req.httpVersion}`);
      },
    );
    s.on('tlsClientError', () => {});
    s.listen(b.info.ports[0], b.info.ip);
    await once(s, 'listening');
    h2servers.push(s);
  }

  /** An HTTPS server on the backend's own address and port, in its place. */
  async function serveTls(b: Backend, cert: Issued, mtls: boolean): Promise<void> {
    await b.stop();
    const s = createServer(
      { ...cert, ...(mtls ? { requestCert: true, rejectUnauthorized: true, ca: caA.cert } : {}) },
      (req, res) => {
        const k = `${b.info.service}/${b.info.cluster}`;
        seen.set(k, (seen.get(k) ?? 0) + 1);
        const said = `${b.info.service} ${b.info.cluster} ${(req.socket as TLSSocket).servername || ''}`;
        // A body's end, with its trailers: what came through the profile's TLS.
        if (req.method === 'POST') {
          req.resume();
          req.on('end', () => res.end(`${said} x-sum=${req.trailers['x-sum'] ?? ''}`));
          return;
        }
        res.end(said);
      },
    );
    s.on('tlsClientError', () => {});
    // An upgrade over TLS: switch, then echo what comes (wss to the backend).
    s.on('upgrade', (_req, socket: Duplex) => {
      socket.write(
        'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n',
      );
      socket.pipe(socket);
    });
    s.listen(b.info.ports[0], b.info.ip);
    await once(s, 'listening');
    servers.push(s);
  }

  const get = async (svc: string) => {
    const port = Number(new URL(bench.url).port);
    const r = await request(`http://127.0.0.1:${port}/`, { headers: { host: host(svc) } });
    return {
      status: r.statusCode,
      error: r.headers['x-fedgate-error'],
      body: await r.body.text(),
    };
  };

  const tlsFailures = (svc: string, reason: string) =>
    series(
      bench.metrics,
      'fedgate_upstream_tls_failures_total',
      `service="shop/${svc}"`,
      `reason="${reason}"`,
    );

  beforeAll(async () => {
    caA = await makeCa('test-ca-a');
    caB = await makeCa('test-ca-b');
    dir = await env.dir();
    const files: Record<string, string> = {
      'ca-a.pem': caA.cert,
      'ca-b.pem': caB.cert,
      'ca-rotating.pem': caA.cert,
    };
    const client = await issue(caA, { name: 'fedgate', usage: 'client' });
    files['client.crt'] = client.cert;
    files['client.key'] = client.key;
    for (const [f, text] of Object.entries(files)) await writeFile(join(dir, f), text);
    const a = (cn: string, dns: string[], uris?: string[]) =>
      issue(caA, { name: cn, hosts: dns, usage: 'server', ...(uris ? { uris } : {}) });
    certs.set('good', await a('good', ['good.internal']));
    certs.set(
      'wrongca',
      await issue(caB, { name: 'wrongca', hosts: ['good.internal'], usage: 'server' }),
    );
    certs.set('wrongname', await a('other', ['other.internal']));
    certs.set('sans', await a('sans', ['pod.internal'], [SPIFFE]));
    certs.set('sansbad', await a('sans', ['pod.internal'], [SPIFFE]));
    certs.set('mtls', await a('mtls', ['good.internal']));
    certs.set('mtlsmissing', await a('mtls', ['good.internal']));
    certs.set('missing', await a('missing', ['good.internal']));
    certs.set('alpnh1', await a('alpnh1', ['good.internal']));
    certs.set(
      'rotate',
      await issue(caB, { name: 'rotate', hosts: ['good.internal'], usage: 'server' }),
    );
    certs.set(
      'twoeps/alpha',
      await issue(caB, { name: 'bad', hosts: ['good.internal'], usage: 'server' }),
    );
    certs.set('twoeps/beta', await a('twoeps', ['good.internal']));
    const profile = (ca: string, extra: Record<string, unknown> = {}) => ({
      caFiles: [ca],
      hostname: 'good.internal',
      ...extra,
    });
    bench = await startProxy(env, SCENARIO, BLOCK, {
      self: { region: 'us-east', zone: 'us-east-a' },
      health: {
        active: { enabled: false },
        outlier: { consecutive5xx: 1000, consecutiveGatewayFailure: 1000 },
      },
      routing: {
        backendTLS: {
          internal: profile('ca-a.pem'),
          sans: profile('ca-a.pem', {
            hostname: 'sni.internal',
            subjectAltNames: [
              { type: 'Hostname', hostname: 'nope.internal' },
              { type: 'URI', uri: SPIFFE },
            ],
          }),
          sansbad: profile('ca-a.pem', {
            subjectAltNames: [{ type: 'Hostname', hostname: 'good.internal' }],
          }),
          mtls: profile('ca-a.pem', {
            clientCertificate: { certFile: 'client.crt', keyFile: 'client.key' },
          }),
          rotating: profile('ca-rotating.pem'),
        },
        services: Object.fromEntries(
          [
            ['good', 'internal'],
            ['wrongca', 'internal'],
            ['wrongname', 'internal'],
            ['sans', 'sans'],
            ['sansbad', 'sansbad'],
            ['mtls', 'mtls'],
            ['mtlsmissing', 'internal'],
            ['rotate', 'rotating'],
            ['twoeps', 'internal'],
            ['h2tls', 'internal'],
            ['h2mtls', 'mtls'],
            ['h2mtlsmissing', 'internal'],
            ['alpnh1', 'internal'],
          ].map(([svc, tls]) => [`shop/${svc}`, { tls }]),
        ),
      },
    });
    for (const b of bench.fed.backends()) {
      if (b.info.service.startsWith('h2')) {
        const cert = await issue(caA, {
          name: b.info.service,
          hosts: ['good.internal'],
          usage: 'server',
        });
        await serveH2(b, cert, b.info.service !== 'h2tls');
        continue;
      }
      const cert = certs.get(`${b.info.service}/${b.info.cluster}`) ?? certs.get(b.info.service);
      if (cert) await serveTls(b, cert, b.info.service.startsWith('mtls'));
    }
    await waitFor(async () => (await get('good')).status === 200, 15_000, 'good to answer');
  });

  afterAll(async () => {
    await bench?.proxy.stop();
    for (const s of servers) s.closeAllConnections();
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
    await Promise.all(h2servers.map((s) => new Promise((r) => s.close(r))));
    await env.cleanup();
    await bench?.fed.stop();
  });

  it('verifies the backend against the profile and sends the profile hostname as SNI', async () => {
    const r = await get('good');
    expect(r.status).toBe(200);
    expect(r.body).toBe('good alpha good.internal');
  });

  it('tunnels an upgrade (WebSocket) to the backend over TLS', async () => {
    const socket = connect({ host: '127.0.0.1', port: Number(new URL(bench.url).port) });
    socket.on('error', () => {});
    let text = '';
    socket.on('data', (c: Buffer) => {
      text += c.toString('latin1');
    });
    await once(socket, 'connect');
    socket.write(webSocketUpgrade(host('good')));
    await waitFor(() => text.includes('\r\n\r\n'), 5000, 'the 101');
    expect(text).toMatch(/^HTTP\/1\.1 101 /);
    text = '';
    socket.write('ping over tls');
    await waitFor(() => text === 'ping over tls', 5000, 'the echo');
    socket.destroy();
  });

  it('speaks HTTP/2 to a backend that offers it by ALPN, verified and with mutual TLS by the profile', async () => {
    expect(await get('h2tls')).toMatchObject({ status: 200, body: 'h2tls HTTP/2.0' });
    expect(await get('h2mtls')).toMatchObject({ status: 200, body: 'h2mtls HTTP/2.0' });
    const r = await get('h2mtlsmissing');
    expect(r).toMatchObject({ status: 502, error: 'UPSTREAM_TLS' });
    expect(seen.get('h2mtlsmissing/alpha')).toBeUndefined();
  });

  it('answers 502 UPSTREAM_TLS when the certificate is not from a trusted CA', async () => {
    const r = await get('wrongca');
    expect(r).toMatchObject({ status: 502, error: 'UPSTREAM_TLS' });
    expect(r.body).toContain('UNABLE_TO_VERIFY_LEAF_SIGNATURE');
    expect(seen.get('wrongca/alpha')).toBeUndefined();
    expect(await tlsFailures('wrongca', 'untrusted')).toBeGreaterThan(0);
  });

  it('answers 502 UPSTREAM_TLS when the certificate is for another name', async () => {
    const r = await get('wrongname');
    expect(r).toMatchObject({ status: 502, error: 'UPSTREAM_TLS' });
    expect(r.body).toContain('ERR_TLS_CERT_ALTNAME_INVALID');
  });

  it('accepts a certificate carrying one of subjectAltNames (URI), hostname then only SNI', async () => {
    const r = await get('sans');
    expect(r.status).toBe(200);
    expect(r.body).toBe('sans alpha sni.internal');
  });

  it('refuses a certificate carrying none of subjectAltNames', async () => {
    // sansbad's certificate names pod.internal and the SPIFFE URI; its profile wants good.internal.
    const r = await get('sansbad');
    expect(r).toMatchObject({ status: 502, error: 'UPSTREAM_TLS' });
    expect(r.body).toContain('carry none of DNS:good.internal');
  });

  it('presents the client certificate to a backend that requires one', async () => {
    expect((await get('mtls')).status).toBe(200);
  });

  /** POSTs 'body' over h2c to `svc` with `x-sum` as a request trailer; the answer's body. */
  async function postWithTrailer(svc: string, sum: string, announce: boolean): Promise<string> {
    const port = Number(new URL(bench.url).port);
    const session = http2Connect(`http://127.0.0.1:${port}`);
    try {
      const stream = session.request(
        {
          ':method': 'POST',
          ':path': '/',
          ':authority': host(svc),
          ...(announce ? { trailer: 'x-sum' } : {}),
        },
        { waitForTrailers: true },
      );
      stream.on('wantTrailers', () => stream.sendTrailers({ 'x-sum': sum }));
      stream.end('body');
      let body = '';
      stream.setEncoding('utf8');
      stream.on('data', (c: string) => {
        body += c;
      });
      await once(stream, 'end');
      return body;
    } finally {
      session.close();
    }
  }

  it("sends announced request trailers over the profile's TLS and client certificate (node:http path)", async () => {
    expect(await postWithTrailer('mtls', '7', true)).toBe('mtls alpha good.internal x-sum=7');
  });

  it('sends unannounced request trailers of a body without a length to an https backend whose ALPN picked HTTP/1.1', async () => {
    // alpnh1 says appProtocol https (h2 offered by ALPN); its backend speaks only HTTP/1.1.
    // Twice: the first finds out by ALPN, the second goes straight to HTTP/1.1.
    for (const sum of ['8', '9']) {
      expect(await postWithTrailer('alpnh1', sum, false)).toBe(
        `alpnh1 alpha good.internal x-sum=${sum}`,
      );
    }
  });

  it('answers 502 UPSTREAM_TLS when the backend requires a client certificate and none is given', async () => {
    const r = await get('mtlsmissing');
    expect(r).toMatchObject({ status: 502, error: 'UPSTREAM_TLS' });
    expect(r.body).toMatch(/ALERT_CERTIFICATE_REQUIRED|PEER_DID_NOT_RETURN/);
    expect(await tlsFailures('mtlsmissing', 'client_certificate')).toBeGreaterThan(0);
  });

  it('fails closed for a profile that does not exist: 502 naming it, nothing dialled', async () => {
    const r = await get('missing');
    expect(r).toMatchObject({ status: 502, error: 'UPSTREAM_TLS' });
    expect(r.body).toContain('"nosuch"');
    expect((await get('missing')).status).toBe(502);
    expect(seen.get('missing/alpha')).toBeUndefined();
    // Said once, however many requests.
    expect(env.log.find(/backend TLS profile "nosuch" does not exist/)).toHaveLength(1);
  });

  it('retries a TLS failure on another endpoint, which answers', async () => {
    for (let i = 0; i < 5; i++) {
      const r = await get('twoeps');
      expect(r.status).toBe(200);
      expect(r.body).toMatch(/^twoeps beta/);
    }
    expect(seen.get('twoeps/alpha')).toBeUndefined();
    expect(
      await series(
        bench.metrics,
        'fedgate_http_retries_total',
        'service="shop/twoeps"',
        'reason="tls"',
      ),
    ).toBeGreaterThanOrEqual(5);
  });

  it("says in /debug/explain which profile a service uses and its endpoints' last TLS failure", async () => {
    await get('wrongca');
    const body = explainHost(
      { config: bench.config, router: bench.d.router, health: bench.d.health },
      bench.proxy.hosts,
      bench.d.catalog.current(),
      new URLSearchParams({ host: host('wrongca') }),
      Date.now(),
    ).body as { backendTls: { profile: string; lastFailures: { detail: string; at: string }[] } };
    expect(body.backendTls.profile).toBe('internal');
    expect(body.backendTls.lastFailures).toHaveLength(1);
    expect(body.backendTls.lastFailures[0]?.detail).toContain('UNABLE_TO_VERIFY_LEAF_SIGNATURE');
    expect(Date.parse(body.backendTls.lastFailures[0]?.at ?? '')).toBeGreaterThan(0);
  });

  it.each(['http', 'tcp'] as const)(
    'the %s active check goes over TLS with the profile: a wrong-CA endpoint is down, a good one up',
    async (type) => {
      const tls = new BackendTlsProfiles(bench.config, env.log.logger);
      const monitor = new HealthMonitor({
        config: {
          ...bench.config.health,
          active: {
            ...bench.config.health.active,
            enabled: true,
            scope: 'all',
            type,
            path: '/',
            interval: 200,
            timeout: 2000,
            healthyThreshold: 1,
            unhealthyThreshold: 1,
          },
        },
        addressing: 'endpoints',
        log: env.log.logger,
        tls: (svc) => tls.forService(svc),
      });
      monitor.start(bench.d.catalog);
      try {
        const check = (svc: string) => {
          const b = bench.fed.backends().find((x) => x.info.service === svc);
          return monitor.store.endpoint(`shop/${svc}`, endpointId('alpha', b?.info.ip ?? ''));
        };
        await waitFor(
          () => check('wrongca')?.check === 'unhealthy' && check('good')?.check === 'healthy',
          10_000,
          'the wrong-CA endpoint down and the good one up',
        );
        expect(check('wrongca')?.checkDetail).toBe('TLS UNABLE_TO_VERIFY_LEAF_SIGNATURE');
        // mtls needs the client certificate: the check presents the profile's.
        await waitFor(() => check('mtls')?.check === 'healthy', 10_000, 'mtls up');
        // A profile that does not exist is not probed: no verdict.
        expect(check('missing')?.check ?? 'unknown').toBe('unknown');
      } finally {
        await monitor.stop();
      }
    },
  );

  it('a reload with a rotated CA file fixes a failing service, no restart', async () => {
    expect((await get('rotate')).status).toBe(502);
    await writeFile(join(dir, 'ca-rotating.pem'), caB.cert);
    const next = await configBeside(env, bench, { listen: [] });
    const staged = await bench.proxy.stage({ ...next, http: bench.config.http });
    staged.commit();
    const r = await get('rotate');
    expect(r.status).toBe(200);
    expect(r.body).toBe('rotate alpha good.internal');
  });
});
