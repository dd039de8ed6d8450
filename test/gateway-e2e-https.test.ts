// The conformance case HTTPRouteHTTPSListener end to end (sigs.k8s.io/gateway-api
// conformance v1.6.3, tests/httproute-https-listener.go|yaml), as a user runs it: the
// certificate Secret made with `kubectl create secret tls`, the base Gateway
// same-namespace-with-https-listener and the case's two routes applied with kubectl to
// a local-federation member, a real `fedgate start` whose Gateway port 443 is mapped
// onto fedgate's TLS listener (gatewayAPI.listeners, http.tls), requests over TLS with
// the case's SNI names, the certificate verified against the Secret's CA, and the
// Gateway's listener status read back with `kubectl get -o json`. On the simulator and
// on a real kube-apiserver (test/helpers/gateway-e2e-env.ts).
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments, stringify } from 'yaml';
import { API_KINDS } from '../src/localfed/member.ts';
import { makeClusterPki } from '../src/localfed/pki.ts';
import {
  type Answer,
  CLASS,
  FIXTURES,
  type GatewayStatus,
  INFRA,
  readAnswer,
  useGatewayE2E,
} from './helpers/gateway-e2e-env.ts';
import { freePort } from './helpers/ports.ts';
import { waitFor } from './helpers/wait.ts';

/** 127.234/16: one member cluster, the simulator's federation first, then the real one. */
const ADDRESS_BLOCK = 234;
const GATEWAY = 'same-namespace-with-https-listener';
const SECRET = 'tls-validity-checks-certificate';
/** The names the case sends as SNI and Host, and a wildcard listener's, in the Secret's certificate. */
const NAMES = ['example.org', 'second-example.org', 'unknown-example.org', '*.wildcard.org'];

describe.each(API_KINDS)('HTTPRouteHTTPSListener end to end on %s API servers', (api) => {
  let certs = '';
  let tlsPort = 0;
  let ca = '';
  // Registered before the harness's hooks, so it runs first: the configured
  // certificate (fedgate's TLS listener needs one) and the Secret's, on disk.
  beforeAll(async () => {
    certs = await mkdtemp(join(tmpdir(), 'gateway-e2e-https-'));
    tlsPort = await freePort();
    const configured = await makeClusterPki('configured', ['configured.example.test']);
    await writeFile(join(certs, 'configured.crt'), configured.serverCert);
    await writeFile(join(certs, 'configured.key'), configured.serverKey);
    const secret = await makeClusterPki('conformance', NAMES);
    await writeFile(join(certs, 'tls.crt'), secret.serverCert);
    await writeFile(join(certs, 'tls.key'), secret.serverKey);
    ca = secret.caCert;
  });
  afterAll(async () => {
    if (certs) await rm(certs, { recursive: true, force: true });
  });

  const tlsAddress = () => `127.0.0.1:${tlsPort}`;
  const e2e = useGatewayE2E(api, {
    addressBlock: ADDRESS_BLOCK,
    // One cluster: a federation's cluster i takes 127.(block + i)/16.
    clusters: ['alpha'],
    // The HTTPS Gateway is applied by the test, after its Secret.
    gateways: [],
    config: ({ listen }) => ({
      http: {
        listen: [listen],
        tls: {
          listen: [tlsAddress()],
          certificates: [
            { cert: join(certs, 'configured.crt'), key: join(certs, 'configured.key') },
          ],
        },
      },
    }),
    listeners: () => [{ port: 443, protocol: 'HTTPS', address: tlsAddress() }],
  });

  /** GET / on a new TLS connection with this SNI and Host, verified against the Secret's CA. */
  const getTls = (host: string): Promise<Answer> =>
    new Promise((resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          port: tlsPort,
          path: '/',
          servername: host,
          headers: { host },
          ca,
          agent: false,
          timeout: 5000,
        },
        (res) => readAnswer(res, resolve),
      );
      req.on('timeout', () => req.destroy(new Error(`GET https://${host}/: no answer in 5 s`)));
      req.on('error', reject);
      req.end();
    });

  it('HTTPRouteHTTPSListener', async () => {
    const { kubectl, status, routeConditions, accepted } = e2e;
    // `kubectl create secret tls` makes it; apply sends it (the simulator speaks JSON
    // only, and kubectl's generators send protobuf: src/localfed/README.md).
    const made = await kubectl([
      'create',
      'secret',
      'tls',
      SECRET,
      '-n',
      INFRA,
      `--cert=${join(certs, 'tls.crt')}`,
      `--key=${join(certs, 'tls.key')}`,
      '--dry-run=client',
      '-o',
      'yaml',
    ]);
    expect(made.code, made.stderr).toBe(0);
    const secretFile = join(e2e.dir, 'secret.yaml');
    await writeFile(secretFile, made.stdout);
    const secret = await kubectl(['apply', '-f', secretFile]);
    expect(secret.code, secret.stderr).toBe(0);
    // The base Gateway, as the suite applies it (base.yaml), then the case's routes.
    const gateway = parseAllDocuments(await readFile(join(FIXTURES, 'base.yaml'), 'utf8'))
      .map((d) => d.toJSON() as { kind: string; metadata: { name: string } })
      .find((o) => o.kind === 'Gateway' && o.metadata.name === GATEWAY);
    const gatewayFile = join(e2e.dir, 'https-gateway.yaml');
    await writeFile(gatewayFile, stringify(gateway).replaceAll('{GATEWAY_CLASS_NAME}', CLASS));
    const applied = await kubectl(['apply', '-f', gatewayFile]);
    expect(applied.code, applied.stderr).toBe(0);
    await e2e.apply('httproute-https-listener');

    // GatewayAndHTTPRoutesMustBeAccepted, HTTPRouteMustHaveResolvedRefsConditionsTrue.
    await e2e.programmed(GATEWAY);
    await accepted('httproute-https-test');
    await accepted('httproute-https-test-no-hostname');
    for (const route of ['httproute-https-test', 'httproute-https-test-no-hostname']) {
      const c = await routeConditions(route, 'httproute', GATEWAY);
      expect(c.find((x) => x.type === 'Accepted')?.status, route).toBe('True');
    }

    // Every listener took the Secret; the routes attach where their hostnames meet
    // the listener's: example.org on the one without a hostname, the route with
    // sectionName on https-with-hostname, none on the two under wildcard.org.
    const want = {
      https: 1,
      'https-with-hostname': 1,
      'https-with-wildcard-hostname': 0,
      'https-with-hostname-matching-wildcard': 0,
    } as Record<string, number>;
    let listeners: NonNullable<GatewayStatus['listeners']> = [];
    const counted = () => Object.fromEntries(listeners.map((l) => [l.name, l.attachedRoutes]));
    await waitFor(
      async () => {
        listeners = (await status<GatewayStatus>('gateway', GATEWAY))?.listeners ?? [];
        return JSON.stringify(counted()) === JSON.stringify(want);
      },
      30_000,
      'the listeners to count their attached routes',
      200,
    ).catch(() => expect(counted()).toEqual(want));
    for (const l of listeners) {
      for (const type of ['Accepted', 'ResolvedRefs', 'Programmed']) {
        expect(l.conditions.find((c) => c.type === type)?.status, `${l.name} ${type}`).toBe('True');
      }
    }

    // The case's requests: each over TLS with its name as SNI and Host, the certificate
    // verified against the Secret's CA for that name (a wrong certificate is an error).
    for (const [host, code, backend] of [
      ['example.org', 200, 'infra-backend-v1'],
      ['unknown-example.org', 404, undefined],
      ['second-example.org', 200, 'infra-backend-v2'],
    ] as const) {
      const r = await waitFor(
        async () => {
          const got = await getTls(host).catch(() => undefined);
          return got?.status === code ? got : undefined;
        },
        30_000,
        `${host} answered ${code} over TLS`,
        100,
      );
      if (backend !== undefined) {
        expect([r.body.service, r.body.namespace], host).toEqual([backend, INFRA]);
      }
    }
    await e2e.remove('httproute-https-listener');
  }, 120_000);
});
