// HTTPS Gateway listeners end to end: `fedgate start --workers 2` over a simulated
// local federation whose alpha is the config cluster. kubectl applies a TLS Secret, a
// Gateway with an HTTPS listener (hostname *.secure.example.test) that
// gatewayAPI.listeners maps onto fedgate's TLS listener, and an HTTPRoute to
// shop/web. A client sending SNI under that hostname gets the Secret's certificate
// (fingerprint checked, and verified by curl against the Secret's CA) and the
// route's backend; other names keep the configured certificate. Rotating the
// Secret changes the certificate of new handshakes; a Secret with bad PEM turns the
// listener's ResolvedRefs False (InvalidCertificateRef) and the TLS listener goes on
// serving the configured certificate.
//
// Addresses: the federation takes 127.228.0.0/16 (address block 228); fedgate listens
// on 127.228.250.1.
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, parseAllDocuments, stringify } from 'yaml';
import type { LocalFederation } from '../src/localfed/federation.ts';
import type { KubeObject } from '../src/localfed/objects.ts';
import { makeClusterPki } from '../src/localfed/pki.ts';
import { CLI, start } from './helpers/cli.ts';
import { FAST_WATCH, launchFederation } from './helpers/discovery-env.ts';
import { conformanceObjects } from './helpers/gateway-api.ts';
import { kubectlWith } from './helpers/kubectl.ts';
import { seriesTotal as total } from './helpers/prometheus.ts';
import { requireTool } from './helpers/tools.ts';
import { waitFor } from './helpers/wait.ts';

const HOST = '127.228.250.1';
const PORTS = { http: 18080, https: 18443, admin: 18090, dns: 18053 };
const NAME = 'app.secure.example.test';
const SCENARIO = `
federation: { name: httpsfed, domain: example.test }
terminationGraceSeconds: 1
clusters:
  - { name: alpha, region: us-east, zones: [{ name: us-east-a, nodes: 1 }] }
services:
  - { name: web, namespace: shop, ports: [{ name: http, port: 80, targetPort: 8080 }], clusters: [alpha], replicasPerZone: 1 }
  - { name: infra-backend-v1, namespace: gateway-conformance-infra, ports: [{ name: http, port: 8080, targetPort: 8080 }], clusters: [alpha], replicasPerZone: 1 }
  - { name: infra-backend-v2, namespace: gateway-conformance-infra, ports: [{ name: http, port: 8080, targetPort: 8080 }], clusters: [alpha], replicasPerZone: 1 }
`;

interface Pem {
  cert: string;
  key: string;
  ca: string;
}

async function pair(name: string, hosts: string[]): Promise<Pem> {
  const p = await makeClusterPki(name, hosts);
  return { cert: p.serverCert, key: p.serverKey, ca: p.caCert };
}

const fingerprint = (pem: string) => new X509Certificate(pem).fingerprint256;

interface Served {
  fingerprint: string;
  subject: string;
  status: number;
  body: string;
}

/**
 * One request on a new TLS connection (no agent: a new handshake) with this SNI;
 * with `ca`, the certificate must verify against it for that name.
 */
function get(servername: string, path = '/', ca?: string): Promise<Served> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: HOST,
        port: PORTS.https,
        path,
        servername,
        headers: { host: servername },
        agent: false,
        ...(ca !== undefined ? { ca } : { rejectUnauthorized: false }),
        timeout: 5000,
      },
      (res) => {
        const cert = (res.socket as TLSSocket).getPeerCertificate();
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => {
          body += d;
        });
        res.on('end', () =>
          resolve({
            fingerprint: cert.fingerprint256,
            subject: String(cert.subject?.CN ?? ''),
            status: res.statusCode ?? 0,
            body,
          }),
        );
      },
    );
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end();
  });
}

describe('HTTPS Gateway listeners: certificates from certificateRefs Secrets', () => {
  let fed: LocalFederation;
  let dir: string;
  let kubeconfig: string;
  let fedgate: ReturnType<typeof start> | undefined;
  let configured: Pem;
  let secret: Pem;

  const kubectl = kubectlWith(() => kubeconfig);

  const applySecret = (pem: { cert: string; key: string }) =>
    kubectl(
      ['apply', '-f', '-'],
      stringify({
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'secure-cert', namespace: 'shop' },
        type: 'kubernetes.io/tls',
        stringData: { 'tls.crt': pem.cert, 'tls.key': pem.key },
      }),
    );

  /** The Gateway's listener conditions, as fedgate's write-back set them. */
  const listenerConditions = async () => {
    const g = JSON.parse(await kubectl(['get', 'gateway', '-n', 'shop', 'secure', '-o', 'json']));
    const l = (g.status?.listeners ?? [])[0] as
      | { conditions: { type: string; status: string; reason: string; message: string }[] }
      | undefined;
    return Object.fromEntries((l?.conditions ?? []).map((c) => [c.type, c]));
  };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fedgate-gw-https-'));
    const launched = await launchFederation(SCENARIO, 228, dir);
    fed = launched.fed;
    kubeconfig = launched.kubeconfigs.alpha ?? '';
    // The configured certificate covers the Gateway's names too: the Gateway's wins there.
    configured = await pair('configured', ['configured.example.test', '*.secure.example.test']);
    secret = await pair('gateway', ['*.secure.example.test']);
    await writeFile(join(dir, 'tls.crt'), configured.cert);
    await writeFile(join(dir, 'tls.key'), configured.key);
    const raw = parse(fed.fedgateConfig(launched.kubeconfigs)) as Record<string, unknown>;
    const file = join(dir, 'fedgate.yaml');
    await writeFile(
      file,
      stringify({
        ...raw,
        dns: { listen: [`${HOST}:${PORTS.dns}`], rrl: { enabled: false } },
        http: {
          listen: [`${HOST}:${PORTS.http}`],
          tls: {
            listen: [`${HOST}:${PORTS.https}`],
            certificates: [{ cert: join(dir, 'tls.crt'), key: join(dir, 'tls.key') }],
          },
        },
        admin: { listen: `${HOST}:${PORTS.admin}` },
        health: { active: { enabled: false } },
        watch: FAST_WATCH,
        gatewayAPI: {
          clusters: ['alpha'],
          listeners: [{ port: 443, protocol: 'HTTPS', address: `${HOST}:${PORTS.https}` }],
        },
        writeBack: {
          enabled: true,
          identity: 'https-test',
          lease: { namespace: 'shop', duration: '3s', renewDeadline: '2s', retryPeriod: '500ms' },
        },
      }),
    );
    await applySecret(secret);
    await kubectl(
      ['apply', '-f', '-'],
      [
        {
          apiVersion: 'gateway.networking.k8s.io/v1',
          kind: 'GatewayClass',
          metadata: { name: 'fedgate' },
          spec: { controllerName: 'fedgate.io/gateway-controller' },
        },
        {
          apiVersion: 'gateway.networking.k8s.io/v1',
          kind: 'Gateway',
          metadata: { name: 'secure', namespace: 'shop' },
          spec: {
            gatewayClassName: 'fedgate',
            listeners: [
              {
                name: 'https',
                protocol: 'HTTPS',
                port: 443,
                hostname: '*.secure.example.test',
                tls: { certificateRefs: [{ name: 'secure-cert' }] },
              },
            ],
          },
        },
        {
          apiVersion: 'gateway.networking.k8s.io/v1',
          kind: 'HTTPRoute',
          metadata: { name: 'secure', namespace: 'shop' },
          spec: {
            parentRefs: [{ name: 'secure' }],
            rules: [{ backendRefs: [{ name: 'web', port: 80 }] }],
          },
        },
      ]
        .map((o) => stringify(o))
        .join('---\n'),
    );
    fedgate = start(process.execPath, [CLI, 'start', '--config', file, '--workers', '2']);
    await waitFor(
      async () =>
        (await fetch(`http://${HOST}:${PORTS.admin}/readyz`).catch(() => undefined))?.status ===
        200,
      60_000,
      'fedgate ready',
      200,
    );
  }, 240_000);

  afterAll(async () => {
    if (fedgate && fedgate.child.exitCode === null && fedgate.child.signalCode === null) {
      process.kill(-(fedgate.child.pid ?? 0), 'SIGTERM');
      await Promise.race([fedgate.exited, new Promise((r) => setTimeout(r, 10_000))]);
      if (fedgate.child.exitCode === null) process.kill(-(fedgate.child.pid ?? 0), 'SIGKILL');
    }
    await fed?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** The requests /debug/gateway counts for every rule of every route. */
  const ruleRequests = async () => {
    const page = (await (await fetch(`http://${HOST}:${PORTS.admin}/debug/gateway`)).json()) as {
      routes: { rules: { requests: number }[] }[];
    };
    return page.routes.flatMap((r) => r.rules).reduce((n, r) => n + r.requests, 0);
  };

  it('serves the Secret for names under the listener hostname, on every worker, and routes to the backend', async () => {
    await waitFor(
      async () => (await get(NAME)).fingerprint === fingerprint(secret.cert),
      20_000,
      'the Secret served',
      100,
    );
    const before = await ruleRequests();
    // New connections land on either worker: each handshake gets the Secret's certificate.
    for (let i = 0; i < 20; i++) {
      const served = await get(i % 2 === 0 ? NAME : `deep.${NAME}`);
      expect(served.fingerprint).toBe(fingerprint(secret.cert));
      expect(served.subject).toBe('kube-apiserver-gateway');
      expect(served.status).toBe(200);
      expect(JSON.parse(served.body)).toMatchObject({ cluster: 'alpha' });
    }
    // Both workers took some of those handshakes.
    const text = await (await fetch(`http://${HOST}:${PORTS.admin}/metrics`)).text();
    for (const w of [0, 1]) {
      expect(
        total(text, 'fedgate_worker_requests_total', `worker="${w}"`, 'protocol="http"'),
        `requests on worker ${w}`,
      ).toBeGreaterThan(0);
    }
    // A name the Gateway listener does not match keeps the configured certificate.
    expect((await get('configured.example.test')).fingerprint).toBe(fingerprint(configured.cert));
    // curl verifies the chain against the Secret's CA, and reaches the route's backend.
    const caFile = join(dir, 'gateway-ca.crt');
    await writeFile(caFile, secret.ca);
    const body = await new Promise<string>((resolve, reject) =>
      execFile(
        requireTool('curl'),
        [
          '-sS',
          '--fail',
          '--cacert',
          caFile,
          '--resolve',
          `${NAME}:${PORTS.https}:${HOST}`,
          `https://${NAME}:${PORTS.https}/`,
        ],
        { timeout: 10_000 },
        (err, stdout, stderr) => (err ? reject(new Error(stderr || err.message)) : resolve(stdout)),
      ),
    );
    expect(JSON.parse(body)).toMatchObject({ cluster: 'alpha' });
    // The status page's rule counts add up both workers' requests: every one of the 21.
    expect((await ruleRequests()) - before).toBe(21);
    const conditions = await waitFor(
      async () => {
        const c = await listenerConditions();
        return c.Programmed?.status === 'True' ? c : undefined;
      },
      15_000,
      'the listener Programmed',
      200,
    );
    expect(conditions.ResolvedRefs).toMatchObject({ status: 'True', reason: 'ResolvedRefs' });
  }, 60_000);

  it('a rotated Secret is served on new handshakes', async () => {
    const rotated = await pair('rotated', ['*.secure.example.test']);
    await applySecret(rotated);
    await waitFor(
      async () => (await get(NAME)).fingerprint === fingerprint(rotated.cert),
      20_000,
      'the rotated Secret served',
      100,
    );
    for (let i = 0; i < 10; i++) {
      expect((await get(NAME)).fingerprint).toBe(fingerprint(rotated.cert));
    }
    secret = rotated;
  }, 60_000);

  it('bad PEM: ResolvedRefs False InvalidCertificateRef, and the configured certificate still served', async () => {
    await applySecret({ cert: 'not a certificate', key: secret.key });
    const conditions = await waitFor(
      async () => {
        const c = await listenerConditions();
        return c.ResolvedRefs?.status === 'False' ? c : undefined;
      },
      15_000,
      'ResolvedRefs False',
      200,
    );
    expect(conditions.ResolvedRefs).toMatchObject({ reason: 'InvalidCertificateRef' });
    expect(conditions.ResolvedRefs?.message).toContain('tls.crt is not a PEM certificate');
    expect(conditions.Programmed).toMatchObject({ status: 'False' });
    await waitFor(
      async () => (await get(NAME)).fingerprint === fingerprint(configured.cert),
      20_000,
      'the configured certificate served',
      100,
    );
    for (let i = 0; i < 10; i++) {
      expect((await get(NAME)).fingerprint).toBe(fingerprint(configured.cert));
    }
    expect((await get('configured.example.test')).status).toBeGreaterThan(0);
    // Fixed again, the Secret comes back.
    await applySecret(secret);
    await waitFor(
      async () => (await get(NAME)).fingerprint === fingerprint(secret.cert),
      20_000,
      'the Secret served again',
      100,
    );
  }, 60_000);

  // HTTPRouteHTTPSListener (sigs.k8s.io/gateway-api/conformance v1.6.3): the base
  // Gateway with HTTPS listeners and the case's two routes, requests verified against
  // the certificate Secret the suite makes (here for the case's three names). Last:
  // that Gateway's listener without a hostname takes every other name's SNI.
  it('conformance HTTPRouteHTTPSListener: routes on HTTPS listeners, certificate verified per host', async () => {
    const pem = await pair('conformance', [
      'example.org',
      'second-example.org',
      'unknown-example.org',
      '*.wildcard.org',
    ]);
    const base = parseAllDocuments(
      await readFile(
        new URL('fixtures/gateway-conformance/base-gateways.yaml', import.meta.url),
        'utf8',
      ),
    )
      .map((d) => d.toJS() as KubeObject)
      .filter(
        (o) =>
          o.kind === 'Namespace' ||
          (o.kind === 'Gateway' && o.metadata.name === 'same-namespace-with-https-listener'),
      );
    const docs = [...base, ...conformanceObjects('httproute-https-listener')];
    await kubectl(
      ['apply', '-f', '-'],
      docs.map((o) => stringify(o).replaceAll('{GATEWAY_CLASS_NAME}', 'fedgate')).join('---\n'),
    );
    await kubectl(
      ['apply', '-f', '-'],
      stringify({
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: {
          name: 'tls-validity-checks-certificate',
          namespace: 'gateway-conformance-infra',
        },
        type: 'kubernetes.io/tls',
        stringData: { 'tls.crt': pem.cert, 'tls.key': pem.key },
      }),
    );
    const cases = [
      { host: 'example.org', status: 200, backend: 'infra-backend-v1' },
      { host: 'unknown-example.org', status: 404 },
      { host: 'second-example.org', status: 200, backend: 'infra-backend-v2' },
    ];
    for (const c of cases) {
      const served = await waitFor(
        async () => {
          const r = await get(c.host, '/', pem.ca).catch(() => undefined);
          return r?.status === c.status ? r : undefined;
        },
        20_000,
        `${c.host} answered ${c.status} with a verified certificate`,
        100,
      );
      expect(served.fingerprint).toBe(fingerprint(pem.cert));
      if (c.backend !== undefined) {
        expect((JSON.parse(served.body) as { pod: string }).pod).toContain(c.backend);
      }
    }
  }, 60_000);
});
