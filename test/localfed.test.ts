// The local federation as a whole, on the simulator and on real kube-apiservers: scenario →
// clusters, real backends, and EndpointSlices that always match the backends really
// listening, through every action; then `fedgate demo --api real` as a user runs it.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { get as httpGet } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Backend } from '../src/localfed/backends.ts';
import { ACTIONS, dispatch } from '../src/localfed/control.ts';
import { LocalFederation } from '../src/localfed/federation.ts';
import { grpcEchoClient } from '../src/localfed/grpc-echo-client.ts';
import { ECHO_SERVICE } from '../src/localfed/grpc-echo-proto.ts';
import { API_KINDS, type ApiKind } from '../src/localfed/member.ts';
import { loadScenario } from '../src/localfed/scenario.ts';
import { simOf } from '../src/localfed/sim-member.ts';
import { CLI, fedgate, start } from './helpers/cli.ts';
import {
  apiRefuses,
  expectSlicesMatchBackends,
  getJson,
  getTls,
  mustGet,
  refuses,
  slices,
} from './helpers/localfed-checks.ts';
import { freePort } from './helpers/ports.ts';
import { requireTool } from './helpers/tools.ts';
import { waitFor } from './helpers/wait.ts';

/** 127.212–214: the real federation here and `fedgate demo --api real` below, one after the other. */
const REAL_BLOCK = 212;
/** Each API kind's federation gets its own addresses (three clusters from the block). */
const ADDRESS_BLOCK: Record<ApiKind, number> = { sim: 100, real: REAL_BLOCK };

/** A pod whose first port serves HTTP in clear (not gRPC, not TLS). */
/** A GET on a connection of its own: the status, or the error code it failed with. */
function statusOf(host: string, port: number | undefined): Promise<number | string> {
  return new Promise((resolve) => {
    const req = httpGet({ host, port, path: '/', agent: false, timeout: 5000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
  });
}

const servesPlainHttp = (b: Backend) => {
  const serving = b.info.serving?.[b.info.ports[0] ?? 0];
  return !serving || (serving.protocol === 'http' && serving.tls === 'none');
};

describe.each(API_KINDS)('local federation on %s API servers', (api) => {
  let fed: LocalFederation;

  beforeAll(async () => {
    const scenario = await loadScenario();
    const extra = {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: 'lf-objects', labels: { team: 'a' } },
    };
    fed = await LocalFederation.start(
      {
        ...scenario,
        terminationGraceSeconds: 0.3,
        objects: { ...scenario.objects, beta: [...(scenario.objects.beta ?? []), extra] },
      },
      { api, addressBlock: ADDRESS_BLOCK[api], apiPort: 0 },
    );
  }, 120_000);
  afterAll(async () => {
    await fed?.stop();
  }, 60_000);

  it("applies the scenario's objects to their cluster only", async () => {
    const ns = await fed.cluster('beta').get('v1', 'Namespace', undefined, 'lf-objects');
    expect(ns?.metadata.labels?.team).toBe('a');
    expect(
      await fed.cluster('alpha').get('v1', 'Namespace', undefined, 'lf-objects'),
    ).toBeUndefined();
  });

  it('runs every member on the API server asked for, listed in scenario order', async () => {
    expect(fed.clusters.map((c) => [c.name, c.api])).toEqual([
      ['alpha', api],
      ['beta', api],
      ['gamma', api],
    ]);
    const d = await fed.describe();
    expect(d.clusters.map((c) => c.apiKind)).toEqual([api, api, api]);
    expect(d.clusters[0]?.api).toMatch(new RegExp(`^https://127\\.${ADDRESS_BLOCK[api]}\\.0\\.1:`));
    for (const c of d.clusters) expect(c.revision).toMatch(/^\d+$/);
  });

  it('runs a real backend per pod that says where it runs', async () => {
    const backends = fed.backends();
    expect(backends.length).toBeGreaterThanOrEqual(20);
    expect(new Set(backends.map((b) => b.info.ip)).size).toBe(backends.length);
    // The pods that serve HTTP in clear on their first port; the gRPC and HTTPS ones below.
    for (const b of backends.filter(servesPlainHttp)) {
      const { status, body } = await getJson(`http://${b.info.ip}:${b.info.ports[0]}/some/path`);
      expect(status).toBe(200);
      expect(body).toMatchObject({
        cluster: b.info.cluster,
        zone: b.info.zone,
        node: b.info.node,
        pod: b.info.pod,
        service: b.info.service,
        path: '/some/path',
        host: `${b.info.ip}:${b.info.ports[0]}`,
      });
    }
  });

  it('publishes EndpointSlices that match the listening backends, as the EndpointSlice controller does', async () => {
    await expectSlicesMatchBackends(fed);
    const db = await slices(fed, 'beta', 'data', 'db');
    expect(db.map((e) => e.hostname).sort()).toEqual(['db-0', 'db-1']);
    const beta = fed.cluster('beta');
    const svc = await mustGet(beta, 'v1', 'Service', 'data', 'db');
    expect((svc.spec as { clusterIP: string }).clusterIP).toBe('None');
    const [slice] = (await beta.list('discovery.k8s.io/v1', 'EndpointSlice', 'data')).filter(
      (s) => s.metadata.labels?.['kubernetes.io/service-name'] === 'db',
    );
    expect(slice?.metadata.labels).toMatchObject({
      'endpointslice.kubernetes.io/managed-by': 'endpointslice-controller.k8s.io',
    });
    expect(slice?.metadata.ownerReferences).toEqual([
      expect.objectContaining({
        kind: 'Service',
        name: 'db',
        uid: svc.metadata.uid,
        controller: true,
      }),
    ]);
    const alpha = fed.cluster('alpha');
    const exportType = ['multicluster.x-k8s.io/v1alpha1', 'ServiceExport'] as const;
    expect(await alpha.get(...exportType, 'shop', 'web')).toBeDefined();
    expect(await alpha.get(...exportType, 'shop', 'internal')).toBeUndefined();
    const node = await mustGet(alpha, 'v1', 'Node', undefined, 'alpha-us-east-b-1');
    expect(node.metadata.labels).toMatchObject({
      'topology.kubernetes.io/region': 'us-east',
      'topology.kubernetes.io/zone': 'us-east-b',
    });
    expect((node.status as { addresses: unknown[] }).addresses).toContainEqual({
      type: 'InternalIP',
      address: expect.stringMatching(new RegExp(`^127\\.${ADDRESS_BLOCK[api]}\\.0\\.`)),
    });
  });

  it('fails and restores a zone: backends refuse, nodes and endpoints go not ready', async () => {
    await fed.failZone('us-east-a');
    const inZone = fed.backends().filter((b) => b.info.zone === 'us-east-a');
    expect(inZone.length).toBeGreaterThan(0);
    for (const b of inZone) expect(await refuses(b.info.ip, b.info.ports[0] ?? 0)).toBe(true);
    const node = await mustGet(fed.cluster('alpha'), 'v1', 'Node', undefined, 'alpha-us-east-a-1');
    expect(
      (node.status as { conditions: { type: string; status: string }[] }).conditions,
    ).toContainEqual(expect.objectContaining({ type: 'Ready', status: 'Unknown' }));
    await expectSlicesMatchBackends(fed);
    await fed.restoreZone('us-east-a');
    for (const b of inZone) expect(await refuses(b.info.ip, b.info.ports[0] ?? 0)).toBe(false);
    for (const b of inZone.filter(servesPlainHttp))
      expect((await getJson(`http://${b.info.ip}:${b.info.ports[0]}/`)).status).toBe(200);
    await expectSlicesMatchBackends(fed);
    await expect(fed.failZone('nowhere')).rejects.toThrow(/unknown zone "nowhere"/);
  });

  it('fails and restores a whole cluster: API and backends down, state kept', async () => {
    const beta = fed.cluster('beta');
    const before = await beta.revision();
    await fed.failCluster('beta');
    expect(await apiRefuses(beta)).toBe(true);
    for (const b of fed.backends().filter((x) => x.info.cluster === 'beta')) {
      expect(await refuses(b.info.ip, b.info.ports[0] ?? 0)).toBe(true);
    }
    expect(await beta.revision()).toBe(before);
    await fed.restoreCluster('beta');
    expect(await apiRefuses(beta)).toBe(false);
    await expectSlicesMatchBackends(fed);
  });

  it('scales up and down, with a terminating phase that still serves', async () => {
    const count = () =>
      fed.backends().filter((b) => b.info.service === 'web' && b.info.cluster === 'gamma').length;
    expect(count()).toBe(2);
    await fed.scale('shop/web', 'gamma', 'eu-west-a', 3);
    expect(count()).toBe(3);
    await expectSlicesMatchBackends(fed);
    await fed.scale('shop/web', 'gamma', 'eu-west-a', 1);
    const terminating = (await slices(fed, 'gamma', 'shop', 'web')).filter(
      (e) => e.conditions.terminating,
    );
    expect(terminating).toHaveLength(2);
    for (const e of terminating)
      expect(e.conditions).toEqual({ ready: false, serving: true, terminating: true });
    await waitFor(
      async () => (await slices(fed, 'gamma', 'shop', 'web')).length === 1,
      10_000,
      'terminated pods to go',
    );
    expect(count()).toBe(1);
    await expectSlicesMatchBackends(fed);
    // Deploying where the service was not: the Service appears there too.
    await fed.scale('data/db', 'alpha', 'us-east-b', 1);
    expect(await fed.cluster('alpha').get('v1', 'Service', 'data', 'db')).toBeDefined();
    expect(await slices(fed, 'alpha', 'data', 'db')).toHaveLength(1);
    await expect(fed.scale('shop/nope', 'alpha', 'us-east-a', 1)).rejects.toThrow(
      /unknown service/,
    );
  });

  it('publishes at most 100 endpoints per slice, and drops the slices no longer needed', async () => {
    const internal = async () =>
      (await fed.cluster('alpha').list('discovery.k8s.io/v1', 'EndpointSlice', 'shop'))
        .filter((x) => x.metadata.labels?.['kubernetes.io/service-name'] === 'internal')
        .map((x) => (x.endpoints as unknown[]).length)
        .sort((a, b) => b - a);
    await fed.scale('shop/internal', 'alpha', 'us-east-a', 120);
    expect(await internal()).toEqual([100, 21]);
    await fed.scale('shop/internal', 'alpha', 'us-east-a', 1);
    await waitFor(
      async () => (await fed.describe()).clusters.every((c) => c.pods.every((p) => !p.terminating)),
      20_000,
      'the scaled-down pods to go',
    );
    await fed.idle();
    expect(await internal()).toEqual([2]);
  });

  it('serializes the actions on one cluster: concurrent scales end as the last one asked', async () => {
    const sizes = [4, 2, 5, 3];
    await Promise.all(sizes.map((n) => fed.scale('shop/api', 'alpha', 'us-east-b', n)));
    const live = (await fed.describe()).clusters
      .find((c) => c.name === 'alpha')
      ?.pods.filter((p) => p.service === 'shop/api' && p.zone === 'us-east-b' && !p.terminating);
    expect(live).toHaveLength(3);
    const ready = (await slices(fed, 'alpha', 'shop', 'api')).filter(
      (e) => e.zone === 'us-east-b' && e.conditions.ready,
    );
    expect(ready).toHaveLength(3);
    // Checked once the pods scaled away have gone, so no grace period ends mid-check.
    await waitFor(
      async () => (await fed.describe()).clusters.every((c) => c.pods.every((p) => !p.terminating)),
      10_000,
      'the scaled-down pods to go',
    );
    await fed.idle();
    await expectSlicesMatchBackends(fed);
  });

  it('flips health without touching what Kubernetes says', async () => {
    const b = fed.backends().find((x) => x.info.service === 'api' && x.info.cluster === 'alpha');
    if (!b) throw new Error('no api pod in alpha');
    const alpha = fed.cluster('alpha');
    const revision = await alpha.revision();
    fed.setHealth(b.info.pod, false);
    expect((await getJson(`http://${b.info.ip}:${b.info.ports[0]}/healthz`)).status).toBe(503);
    expect((await getJson(`http://${b.info.ip}:${b.info.ports[0]}/`)).status).toBe(200);
    expect(await alpha.revision()).toBe(revision);
    fed.setHealth(b.info.ip, true);
    expect((await getJson(`http://${b.info.ip}:${b.info.ports[0]}/healthz`)).body).toMatchObject({
      status: 'ok',
    });
  });

  it('federates grpc-echo and secure with the appProtocols of their ports', async () => {
    for (const [cluster, name, appProtocol] of [
      ['beta', 'grpc-echo', 'grpc'],
      ['alpha', 'secure', 'https'],
      ['gamma', 'secure-mtls', 'https'],
    ] as const) {
      const m = fed.cluster(cluster);
      const svc = await mustGet(m, 'v1', 'Service', 'shop', name);
      expect((svc.spec as { ports: { appProtocol?: string }[] }).ports[0]?.appProtocol).toBe(
        appProtocol,
      );
      await mustGet(m, 'multicluster.x-k8s.io/v1alpha1', 'ServiceExport', 'shop', name);
      expect((await slices(fed, cluster, 'shop', name)).length).toBeGreaterThan(0);
    }
  });

  it('serves the gRPC echo on grpc-echo pods, naming where it runs', async () => {
    const pods = fed.backends().filter((b) => b.info.service === 'grpc-echo');
    expect(new Set(pods.map((b) => b.info.cluster))).toEqual(new Set(['alpha', 'beta', 'gamma']));
    for (const b of pods) {
      const client = grpcEchoClient(`${b.info.ip}:${b.info.ports[0]}`);
      try {
        const { value } = await client.unary({ message: 'hi' }, { deadlineMs: 5000 });
        expect(value.where).toMatchObject({
          cluster: b.info.cluster,
          zone: b.info.zone,
          pod: b.info.pod,
        });
      } finally {
        client.close();
      }
    }
  });

  it('flips gRPC health with localfed ctl health, as it flips /healthz', async () => {
    const b = fed
      .backends()
      .find((x) => x.info.service === 'grpc-echo' && x.info.cluster === 'gamma');
    if (!b) throw new Error('no grpc-echo pod in gamma');
    const client = grpcEchoClient(`${b.info.ip}:${b.info.ports[0]}`);
    try {
      expect(await client.health(ECHO_SERVICE)).toBe('SERVING');
      await dispatch(fed, 'health', [b.info.pod, 'fail']);
      expect(await client.health(ECHO_SERVICE)).toBe('NOT_SERVING');
      expect(await client.health('')).toBe('NOT_SERVING');
      // Only health: calls are still answered, as the HTTP pods' other paths are.
      expect((await client.unary({ message: 'still' })).value.message).toBe('still');
      await dispatch(fed, 'health', [b.info.ip, 'pass']);
      expect(await client.health(ECHO_SERVICE)).toBe('SERVING');
    } finally {
      client.close();
    }
  });

  it("serves HTTPS with certificates of the pod's own cluster CA, and mutual TLS where asked", async () => {
    const pki = fed.pki;
    if (!pki) throw new Error('no PKI');
    for (const b of fed.backends().filter((x) => x.info.service === 'secure')) {
      const at = [b.info.ip, b.info.ports[0] ?? 0] as const;
      const ca = pki.clusterCa(b.info.cluster);
      expect(await getTls(...at, { ca, servername: 'secure.shop.svc' })).toMatchObject({
        status: 200,
        body: { cluster: b.info.cluster, pod: b.info.pod },
      });
      // Another cluster's CA does not verify it.
      const other = b.info.cluster === 'alpha' ? 'beta' : 'alpha';
      expect(
        await getTls(...at, { ca: pki.clusterCa(other), servername: 'secure.shop.svc' }),
      ).toEqual({ error: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' });
    }
    const mtls = fed.backends().filter((x) => x.info.service === 'secure-mtls');
    expect(mtls.length).toBeGreaterThan(0);
    for (const b of mtls) {
      const at = [b.info.ip, b.info.ports[0] ?? 0] as const;
      const tls = { ca: pki.clusterCa(b.info.cluster), servername: 'secure-mtls.shop.svc' };
      expect(await getTls(...at, tls)).toEqual({
        error: 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED',
      });
      expect(await getTls(...at, { ...tls, ...pki.client })).toMatchObject({
        status: 200,
        body: { cluster: b.info.cluster, pod: b.info.pod },
      });
    }
  });

  it('serves a load balancer ingress that forwards to its own cluster', async () => {
    const svc = await mustGet(fed.cluster('beta'), 'v1', 'Service', 'shop', 'web');
    const ingress = (svc.status as { loadBalancer: { ingress: { ip: string }[] } }).loadBalancer
      .ingress;
    expect(ingress).toHaveLength(1);
    const seen = new Set<string>();
    for (let i = 0; i < 4; i++) {
      const { body } = await getJson(`http://${ingress[0]?.ip}:80/`);
      expect(body.cluster).toBe('beta');
      seen.add(String(body.pod));
    }
    expect(seen.size).toBe(2);
  });

  it('takes every localfed ctl action as the control channel runs it', async () => {
    const used = new Set<string>();
    const ctl = (name: string, ...args: string[]) => {
      used.add(name);
      return dispatch(fed, name, args);
    };
    const gamma = async () => {
      const c = (await fed.describe()).clusters.find((x) => x.name === 'gamma');
      if (!c) throw new Error('no gamma');
      return c;
    };
    for (const mode of ['hang', 'drop'] as const) {
      await ctl('api-down', 'gamma', mode);
      expect((await gamma()).apiMode).toBe(mode);
      await ctl('api-up', 'gamma');
      expect((await gamma()).apiMode).toBe('up');
    }
    await ctl('api-down', 'gamma');
    expect(await apiRefuses(fed.cluster('gamma'))).toBe(true);
    await ctl('api-up', 'gamma');
    expect(await apiRefuses(fed.cluster('gamma'))).toBe(false);
    expect(await ctl('compact', 'gamma')).toContain('gamma');
    await ctl('fail-cluster', 'gamma');
    expect((await gamma()).failed).toBe(true);
    await expect(ctl('api-up', 'gamma')).rejects.toThrow(/use restore-cluster/);
    await ctl('restore-cluster', 'gamma');
    expect(await gamma()).toMatchObject({ failed: false, apiMode: 'up' });
    await ctl('fail-zone', 'eu-west-a');
    expect((await gamma()).pods.every((p) => !p.listening)).toBe(true);
    await ctl('restore-zone', 'eu-west-a');
    expect((await gamma()).pods.every((p) => p.listening)).toBe(true);
    await ctl('scale', 'data/db', 'gamma', 'eu-west-a', '3');
    expect((await slices(fed, 'gamma', 'data', 'db')).map((e) => e.hostname).sort()).toEqual([
      'db-0',
      'db-1',
      'db-2',
    ]);
    await ctl('health', 'gamma', 'fail');
    expect((await gamma()).pods.every((p) => !p.healthy)).toBe(true);
    await ctl('health', 'gamma', 'pass');
    expect((await gamma()).pods.every((p) => p.healthy)).toBe(true);
    const web = fed.backends().find((b) => b.info.cluster === 'gamma' && b.info.service === 'web');
    const echo = fed
      .backends()
      .find((b) => b.info.cluster === 'gamma' && b.info.service === 'grpc-echo');
    if (!web || !echo) throw new Error('no web or grpc-echo pod in gamma');
    const client = grpcEchoClient(`${echo.info.ip}:${echo.info.ports[0]}`);
    try {
      const { ip, ports } = web.info;
      await ctl('mode', 'eu-west-a', '503');
      expect(await statusOf(ip, ports[0])).toBe(503);
      await expect(client.unary({})).rejects.toMatchObject({ code: 14, details: /is failing/ });
      await ctl('mode', 'eu-west-a', 'reset');
      expect(await statusOf(ip, ports[0])).toBe('ECONNRESET');
      await ctl('mode', echo.info.pod, 'ok');
      expect((await client.unary({ message: 'back' })).value.message).toBe('back');
      await ctl('mode', 'gamma', 'ok');
      expect(await statusOf(ip, ports[0])).toBe(200);
      await expect(ctl('mode', 'gamma', 'constructor')).rejects.toThrow(
        /must be one of ok, 503, reset/,
      );
    } finally {
      client.close();
    }
    await expect(ctl('api-down', 'gamma', 'sideways')).rejects.toThrow(/mode must be one of/);
    expect([...used].sort()).toEqual(ACTIONS.map((a) => a.name).sort());
    await expectSlicesMatchBackends(fed);
  });

  it('breaks and mends only the API, and compacts its history', async () => {
    const alpha = fed.cluster('alpha');
    await fed.apiDown('alpha', 'refuse');
    expect(await apiRefuses(alpha)).toBe(true);
    expect((await fed.describe()).clusters[0]?.apiMode).toBe('refuse');
    await fed.apiUp('alpha');
    expect(await apiRefuses(alpha)).toBe(false);
    expect((await fed.describe()).clusters[0]?.apiMode).toBe('up');
    expect(await fed.compact('alpha')).toMatch(/compact/);
  });
});

// What only the simulator can show: its store's compaction point.
describe('local federation on the simulator only', () => {
  let fed: LocalFederation;

  beforeAll(async () => {
    fed = await LocalFederation.start(await loadScenario(), {
      addressBlock: ADDRESS_BLOCK.sim,
      apiPort: 0,
    });
  });
  afterAll(async () => {
    await fed?.stop();
  });

  it('compacts the store at its current revision', async () => {
    const alpha = simOf(fed.cluster('alpha'));
    const before = alpha.store.compactedRevision;
    await fed.compact('alpha');
    expect(alpha.store.compactedRevision).toBeGreaterThan(before);
  });
});

/** Whether any process of the group led by `pid` is still alive. */
function groupAlive(pid: number): boolean {
  try {
    process.kill(-pid, 0);
    return true;
  } catch {
    return false;
  }
}

// The demo as a user runs it, on real API servers: a child process, its printed lines,
// and the proxy, DNS and `localfed ctl` working against kube-apiserver-backed members.
describe('fedgate demo --api real', () => {
  let dir: string;
  let run: ReturnType<typeof start>;
  let ports: { dns: number; http: number; admin: number };

  const sh = (file: string, args: string[]) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(file, args, { timeout: 15_000 }, (err, stdout, stderr) =>
        resolve({ code: err ? Number(err.code ?? 1) : 0, stdout, stderr }),
      );
    });
  const curl = requireTool('curl', 'the demo --api real test');
  const dig = requireTool('dig', 'the demo --api real test');
  const MCS = 'web.shop.svc.clusterset.local';
  /** The zone of the pod that answers one request through the proxy. */
  const proxiedZone = async () => {
    const r = await sh(curl, ['-s', '-H', `Host: ${MCS}`, `http://127.0.0.1:${ports.http}/`]);
    if (r.code !== 0) return undefined;
    return (JSON.parse(r.stdout) as { zone: string }).zone;
  };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fedgate-demo-real-'));
    ports = {
      dns: await freePort({ udp: true }),
      http: await freePort(),
      admin: await freePort(),
    };
    run = start(process.execPath, [
      CLI,
      'demo',
      '--api',
      'real',
      '--dir',
      dir,
      '--address-block',
      String(REAL_BLOCK),
      '--api-port',
      '0',
      '--dns',
      `127.0.0.1:${ports.dns}`,
      '--http',
      `127.0.0.1:${ports.http}`,
      '--admin',
      `127.0.0.1:${ports.admin}`,
    ]);
    await waitFor(
      () => run.out().includes('fedgate demo: ready, 7 federated service(s)'),
      120_000,
      'the demo on real API servers to say it is ready',
      200,
    );
  }, 180_000);

  afterAll(async () => {
    if (run?.child.pid && run.child.exitCode === null && run.child.signalCode === null) {
      process.kill(-run.child.pid, 'SIGKILL');
    }
    await rm(dir, { recursive: true, force: true });
  }, 30_000);

  it('prints the same guide as on the simulator, naming the real API servers', async () => {
    const out = run.out();
    expect(out).toContain('(alpha, beta, gamma; API servers: real) behind fedgate');
    expect(out).toContain(`status page  http://127.0.0.1:${ports.admin}/`);
    expect(out).toContain(`DNS          127.0.0.1:${ports.dns} (UDP and TCP)`);
    expect(out).toContain(`HTTP proxy   http://127.0.0.1:${ports.http}`);
    expect(out).toContain(`localfed ctl --dir ${dir} fail-zone us-east-a`);
    // The kubeconfigs name the cluster's own address, as on the simulator.
    const kubeconfig = await readFile(join(dir, 'alpha.kubeconfig'), 'utf8');
    expect(kubeconfig).toMatch(new RegExp(`server: https://127\\.${REAL_BLOCK}\\.0\\.1:\\d+`));
    expect(existsSync(join(dir, 'fedgate.yaml'))).toBe(true);
    const status = await fedgate(['localfed', 'ctl', '--dir', dir, 'status']);
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toMatch(
      /cluster alpha \(us-east\)\s+up\s+API real https:\/\/127\.212\.0\.1:/,
    );
  });

  it('answers through the proxy from a backend, and in DNS with pod addresses', async () => {
    expect(await proxiedZone()).toBe('us-east-a');
    const r = await sh(dig, ['@127.0.0.1', '-p', String(ports.dns), MCS, '+short']);
    expect(r.code, r.stderr).toBe(0);
    const addrs = r.stdout.trim().split('\n');
    expect(addrs.length).toBeGreaterThan(0);
    // fedgate's own zone is us-east-a, in alpha: 127.212.x.
    for (const a of addrs) expect(a).toMatch(new RegExp(`^127\\.${REAL_BLOCK}\\.`));
  });

  it('moves the proxy off a zone failed with localfed ctl, and back on restore', async () => {
    const fail = await fedgate(['localfed', 'ctl', '--dir', dir, 'fail-zone', 'us-east-a']);
    expect(fail.code, fail.stderr).toBe(0);
    await waitFor(
      async () => /^us-east-[bc]$/.test((await proxiedZone()) ?? ''),
      60_000,
      'traffic to leave the failed zone',
      200,
    );
    const restore = await fedgate(['localfed', 'ctl', '--dir', dir, 'restore-zone', 'us-east-a']);
    expect(restore.code, restore.stderr).toBe(0);
    await waitFor(
      async () => (await proxiedZone()) === 'us-east-a',
      60_000,
      'traffic to return to us-east-a',
      200,
    );
  }, 180_000);

  it('stops everything on Ctrl-C, kube-apiservers and etcds included', async () => {
    const pid = run.child.pid;
    if (!pid) throw new Error('the demo has no pid');
    process.kill(-pid, 'SIGINT');
    await run.exited;
    expect(run.out()).toContain('stopping the demo');
    expect(existsSync(join(dir, 'localfed.json'))).toBe(false);
    // etcd and kube-apiserver run in the demo's process group: none is left in it.
    await waitFor(() => !groupAlive(pid), 10_000, 'the process group to be empty');
    // Nothing of the federation listens: the API addresses refuse.
    for (let i = 0; i < 3; i++) {
      const kubeconfig = await readFile(
        join(dir, `${['alpha', 'beta', 'gamma'][i]}.kubeconfig`),
        'utf8',
      );
      const server = /server: https:\/\/([\d.]+):(\d+)/.exec(kubeconfig);
      expect(server).not.toBeNull();
      expect(await refuses(server?.[1] ?? '', Number(server?.[2]))).toBe(true);
    }
  });
});
