// Gateway API objects read from a config cluster of a local federation, end to end:
// applied with kubectl (the one tools/kube builds) to a member's API server, listed and
// watched by fedgate's Discovery through the member's kubeconfig, trimmed, and handed
// out as GatewayObjects; then a spec change (generation bump), a label change and
// deletes. What the API server defaulted must read as what the trimmer defaults from
// the manifest as written (test/fixtures/gateway-conformance: conformance manifests).
// On the real kube-apiserver (the Gateway API CRDs installed) and on the simulator
// (which serves Secrets too, with the `type` field selector).
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, parseAllDocuments, stringify } from 'yaml';
import { parseConfig } from '../src/config/load.ts';
import { Discovery } from '../src/discovery.ts';
import { LocalFederation } from '../src/localfed/federation.ts';
import { API_KINDS } from '../src/localfed/member.ts';
import { makeClusterPki } from '../src/localfed/pki.ts';
import { parseScenario } from '../src/localfed/scenario.ts';
import { EventJournal } from '../src/observe/events.ts';
import { Metrics } from '../src/observe/metrics.ts';
import type { GatewayObjects } from '../src/watch/gateway-records.ts';
import { trimGRPCRoute, trimHTTPRoute } from '../src/watch/gateway-trim.ts';
import type { Json } from '../src/watch/trim.ts';
import { LogCapture, REAL_WATCH } from './helpers/discovery-env.ts';
import { kubectlWith } from './helpers/kubectl.ts';
import { waitFor } from './helpers/wait.ts';

const TESTDATA = new URL('fixtures/gateway-conformance/', import.meta.url);
const INFRA = 'gateway-conformance-infra';
const WEB = 'gateway-conformance-web-backend';

const SCENARIO = `
federation: { name: gwfed, domain: example.test }
terminationGraceSeconds: 1
clusters:
  - { name: alpha, region: us-east, zones: [{ name: us-east-a, nodes: 1 }] }
services:
  - { name: web, namespace: shop, ports: [{ name: http, port: 80, targetPort: 8080 }], clusters: [alpha], replicasPerZone: 1 }
`;

async function testdata(file: string): Promise<string> {
  return (await readFile(new URL(file, TESTDATA), 'utf8')).replaceAll(
    '{GATEWAY_CLASS_NAME}',
    'fedgate',
  );
}

function docs(text: string): Json[] {
  return parseAllDocuments(text)
    .map((d) => d.toJS() as Json | null)
    .filter((o): o is Json => o !== null);
}

/** A record without what the API server alone sets (uid, times, generation, the cluster). */
function spec<T extends object>(
  r: T | undefined,
): Omit<T, 'uid' | 'createdAt' | 'generation' | 'cluster'> | undefined {
  if (!r) return undefined;
  const { uid: _u, createdAt: _c, generation: _g, cluster: _k, ...rest } = r as T & Json;
  return rest as Omit<T, 'uid' | 'createdAt' | 'generation' | 'cluster'>;
}

describe.each(API_KINDS)('Gateway API objects from a config cluster (%s API)', (api) => {
  let fed: LocalFederation;
  let d: Discovery;
  let dir: string;
  let kubeconfig: string;
  const log = new LogCapture('info');
  const published: { objects: GatewayObjects; version: number }[] = [];
  let objects = (): GatewayObjects => d.gateway.current().objects;

  /** kubectl against the member, through the kubeconfig fedgate reads it with. */
  const kubectl = kubectlWith(() => kubeconfig);

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fedgate-gwwatch-'));
    fed = await LocalFederation.start(parseScenario(SCENARIO), {
      api,
      addressBlock: 222,
      apiPort: 0,
      bookmarkIntervalMs: 250,
    });
    kubeconfig = await fed.cluster('alpha').writeKubeconfig(dir);
    const raw = parse(fed.fedgateConfig({ alpha: kubeconfig })) as Record<string, unknown>;
    const config = parseConfig(
      stringify({ ...raw, watch: REAL_WATCH, gatewayAPI: { clusters: ['alpha'] } }),
      join(dir, 'fedgate.yaml'),
    );
    d = Discovery.start(config, log.logger);
    objects = () => d.gateway.current().objects;
    d.gateway.subscribe((o, version) => published.push({ objects: o, version }));
    await waitFor(
      () => d.gateway.statuses().get('alpha')?.state === 'synced',
      30_000,
      'the Gateway API watches of alpha synced',
      50,
    );
  }, 240_000);

  afterAll(async () => {
    await d?.stop();
    await fed?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('serves every kind, Secrets included: synced, nothing absent', () => {
    expect(d.gateway.statuses().get('alpha')).toEqual({
      cluster: 'alpha',
      state: 'synced',
      absent: [],
      error: undefined,
    });
    expect(log.find(/does not serve/)).toHaveLength(0);
  });

  it('applied manifests arrive trimmed, defaulted as the trimmer defaults them, from alpha', async () => {
    const pki = await makeClusterPki('gw', ['gw.example.test']);
    const b64 = (s: string) => Buffer.from(s).toString('base64');
    const manifests = [
      `apiVersion: v1\nkind: Namespace\nmetadata: { name: ${WEB}, labels: { team: web } }`,
      await testdata('base-gateways.yaml'),
      `apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: { name: fedgate }
spec: { controllerName: fedgate.io/gateway-controller }`,
      await testdata('httproute-matching.yaml'),
      await testdata('httproute-request-percentage-mirror.yaml'),
      await testdata('grpcroute-exact-method-matching.yaml'),
      await testdata('gateway-secret-reference-grant-specific.yaml'),
    ];
    const secretManifests = `apiVersion: v1
kind: Secret
metadata: { name: certificate, namespace: ${WEB} }
type: kubernetes.io/tls
data: { tls.crt: ${b64(pki.serverCert)}, tls.key: ${b64(pki.serverKey)} }
---
apiVersion: v1
kind: Secret
metadata: { name: not-tls, namespace: ${WEB} }
type: Opaque
data: { password: ${b64('hunter2')} }`;
    manifests.push(secretManifests);
    await kubectl(['apply', '-f', '-'], manifests.join('\n---\n'));

    const o = await waitFor(
      () => {
        const x = objects();
        return x.gateways.length === 5 &&
          x.httpRoutes.length === 2 &&
          x.grpcRoutes.length === 1 &&
          x.referenceGrants.length === 1 &&
          x.gatewayClasses.length === 1 &&
          x.secrets.length === 1
          ? x
          : undefined;
      },
      20_000,
      'the applied objects in GatewayObjects',
    );
    expect(o.gatewayClasses[0]).toMatchObject({
      cluster: 'alpha',
      name: 'fedgate',
      controllerName: 'fedgate.io/gateway-controller',
      generation: 1,
    });
    for (const r of [...o.gateways, ...o.httpRoutes, ...o.grpcRoutes]) {
      expect(r.cluster).toBe('alpha');
      expect(r.generation).toBe(1);
      expect(r.uid).toMatch(/^[0-9a-f-]{36}$/);
      expect(r.createdAt).toBeGreaterThan(Date.now() - 10 * 60_000);
    }
    // The API server applied the CRDs' defaults; the trimmer applies them to the manifest
    // as written: the records must read the same.
    const written = docs(await testdata('httproute-matching.yaml'))[0]!;
    const matching = o.httpRoutes.find((r) => r.name === 'matching');
    expect(spec(matching)).toEqual(spec(trimHTTPRoute('alpha', written)));
    const mirrorWritten = docs(await testdata('httproute-request-percentage-mirror.yaml'))[0]!;
    const mirror = o.httpRoutes.find((r) => r.name === 'request-percentage-mirror');
    expect(spec(mirror)).toEqual(spec(trimHTTPRoute('alpha', mirrorWritten)));
    const grpcWritten = docs(await testdata('grpcroute-exact-method-matching.yaml'))[0]!;
    expect(spec(o.grpcRoutes[0])).toEqual(spec(trimGRPCRoute('alpha', grpcWritten)));

    const https = o.gateways.find((g) => g.name === 'gateway-secret-reference-grant-specific');
    expect(https?.listeners[0]?.tls).toEqual({
      mode: 'Terminate',
      certificateRefs: [{ group: '', kind: 'Secret', namespace: WEB, name: 'certificate' }],
    });
    expect(
      o.gateways.find((g) => g.name === 'same-namespace')?.listeners[0]?.allowedRoutes,
    ).toEqual({
      from: 'Same',
      kinds: [],
    });
    expect(o.referenceGrants[0]?.to).toEqual([{ group: '', kind: 'Secret', name: 'certificate' }]);
    // Only the TLS Secret, decoded to PEM; the Opaque one is never listed.
    expect(o.secrets.map((s) => [s.namespace, s.name])).toEqual([[WEB, 'certificate']]);
    expect(o.secrets[0]?.cert).toBe(pki.serverCert);
    expect(o.secrets[0]?.key).toBe(pki.serverKey);
    expect(o.namespaces.find((n) => n.name === INFRA)?.labels).toMatchObject({
      'gateway-conformance': 'infra',
    });
    expect(o.namespaces.find((n) => n.name === WEB)?.labels).toMatchObject({ team: 'web' });
    // Counted as the member watches are, by cluster and resource.
    const text = await new Metrics({
      discovery: d,
      journal: new EventJournal(),
    }).registry.metrics();
    expect(text).toMatch(
      /^fedgate_watch_events_total\{cluster="alpha",resource="httproutes",type="ADDED"\} [1-9]/m,
    );
  });

  it('a spec change arrives with its generation bumped; a label change and deletes arrive too', async () => {
    const before = d.gateway.current().version;
    const changed = (await testdata('httproute-matching.yaml')).replace('value: /v2', 'value: /v3');
    await kubectl(['apply', '-f', '-'], changed);
    const updated = await waitFor(
      () => objects().httpRoutes.find((r) => r.name === 'matching' && r.generation === 2),
      20_000,
      'HTTPRoute matching at generation 2',
    );
    expect(updated.rules[1]?.matches[0]?.path).toEqual({ type: 'PathPrefix', value: '/v3' });
    expect(d.gateway.current().version).toBeGreaterThan(before);

    await kubectl(['label', 'namespace', WEB, 'gateway-conformance=backend']);
    await waitFor(
      () =>
        objects().namespaces.find((n) => n.name === WEB)?.labels['gateway-conformance'] ===
        'backend',
      20_000,
      'the namespace label in GatewayObjects',
    );

    await kubectl(['delete', 'httproute', '-n', INFRA, 'matching']);
    await kubectl(['delete', 'secret', '-n', WEB, 'certificate']);
    await waitFor(
      () =>
        !objects().httpRoutes.some((r) => r.name === 'matching') && objects().secrets.length === 0,
      20_000,
      'the deleted HTTPRoute and Secret gone from GatewayObjects',
    );
    expect(objects().httpRoutes.map((r) => r.name)).toEqual(['request-percentage-mirror']);
    // Each publication is a whole GatewayObjects, in order.
    const versions = published.map((p) => p.version);
    expect(versions).toEqual([...versions].sort((a, b) => a - b));
  });

  it('an API outage keeps the objects (stale), and the watch comes back with backoff and catches up', async () => {
    const alpha = fed.cluster('alpha');
    const from = log.entries.length;
    await alpha.setFault('refuse');
    await waitFor(
      () => d.gateway.statuses().get('alpha')?.state === 'stale',
      20_000,
      "alpha's Gateway API state stale",
    );
    expect(d.gateway.statuses().get('alpha')?.error?.code).toBe('CLUSTER_UNREACHABLE');
    expect(objects().httpRoutes.map((r) => r.name)).toEqual(['request-percentage-mirror']);
    // Written while fedgate cannot reach the member: localfed's writes go past the relay.
    await alpha.apply({
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: 'during-outage', labels: { written: 'offline' } },
    });
    await alpha.setFault('up');
    await waitFor(
      () =>
        d.gateway.statuses().get('alpha')?.state === 'synced' &&
        objects().namespaces.some((n) => n.labels.written === 'offline'),
      30_000,
      'alpha synced again, with the namespace written during the outage',
    );
    const lines = log.entries.slice(from).map((e) => e.msg);
    expect(
      lines.filter((m) => m === 'Gateway API reads failing: keeping the last known objects'),
    ).toHaveLength(1);
  });
});
