// deploy/member-rbac checked by a real kube-apiserver (test/helpers/kube-control-plane.ts,
// one for the file): applied for real, compared with an unbound ServiceAccount by
// `kubectl auth can-i --list`, turned into a kubeconfig by make-kubeconfig.sh and used
// by fedgate's discovery, with the role complete, with endpointslices missing, and with
// them taken away while fedgate watches; and its token revoked by deleting its Secret.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { parseConfig } from '../src/config/load.ts';
import type { Config } from '../src/config/schema.ts';
import { Discovery } from '../src/discovery.ts';
import { clustersJson } from '../src/observe/debug.ts';
import { EventJournal } from '../src/observe/events.ts';
import { Metrics } from '../src/observe/metrics.ts';
import { WriteBack } from '../src/writeback/write-back.ts';
import {
  ADMIN_CONTEXT,
  applyReaderCopy,
  canIRows,
  fillTokenSecret,
  kubectlWith,
  MEMBER_RBAC,
  makeKubeconfig,
  putSliceInEtcd,
  type RuleLike,
  toYaml,
} from './helpers/deploy-real.ts';
import { LogCapture } from './helpers/discovery-env.ts';
import { ControlPlane } from './helpers/kube-control-plane.ts';
import {
  type EndpointSpec,
  namespace,
  node,
  service,
  serviceExport,
  slice,
} from './helpers/kube-objects.ts';
import { sleep, waitFor } from './helpers/wait.ts';

const READER_NS = 'fedgate-reader';
const READER = `system:serviceaccount:${READER_NS}:fedgate-reader`;

let cp: ControlPlane;
let work: string;

beforeAll(async () => {
  cp = await ControlPlane.start({ name: ADMIN_CONTEXT });
  work = await mkdtemp(join(tmpdir(), 'fedgate-deploy-real-'));
  // The MCS CRD fedgate's ClusterRole names, installed as in a member that has it.
  await cp.kubectl(['apply', '-f', cp.tools.serviceExportCrd]);
  await cp.kubectl(['apply', '-f', cp.tools.serviceImportCrd]);
  await cp.kubectl([
    'wait',
    '--for=condition=Established',
    '--timeout=30s',
    'crd/serviceexports.multicluster.x-k8s.io',
    'crd/serviceimports.multicluster.x-k8s.io',
  ]);
}, 120_000);

afterAll(async () => {
  await cp?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

// ---- member RBAC, for real -------------------------------------------------------------

/** The four resources fedgate reads, as `kubectl auth can-i --list` names them. */
const FEDGATE_READS = [
  'services',
  'endpointslices.discovery.k8s.io',
  'nodes',
  'serviceexports.multicluster.x-k8s.io',
].map((r) => `${r} [] [] [get list watch]`);

/** What the write-back may do cluster-wide (fedgate-writer.yaml), as can-i lists it. */
const GW = 'gateway.networking.k8s.io';
const FEDGATE_WRITES = [
  'serviceexports.multicluster.x-k8s.io/status [] [] [update patch]',
  'serviceimports.multicluster.x-k8s.io [] [] [get list watch create update patch delete]',
  'serviceimports.multicluster.x-k8s.io/status [] [] [update patch]',
  ...['gatewayclasses', 'gateways', 'httproutes', 'grpcroutes', 'referencegrants'].map(
    (r) => `${r}.${GW} [] [] [get list watch]`,
  ),
  ...['gatewayclasses', 'gateways', 'httproutes', 'grpcroutes'].map(
    (r) => `${r}.${GW}/status [] [] [get update patch]`,
  ),
  'namespaces [] [] [get list watch]',
];
/** And in the Lease's namespace only. */
const LEASE_RULE = 'leases.coordination.k8s.io [] [] [get create update]';

const ENDPOINTS: EndpointSpec[] = [1, 2].map((i) => ({
  address: `127.80.0.${i}`,
  conditions: { ready: true, serving: true, terminating: false },
  nodeName: 'node-a',
}));

/** A fedgate configuration with one member, alpha, reached through `kubeconfig`. */
function fedgateConfig(kubeconfig: string, watch: Record<string, string> = {}) {
  return parseConfig(
    stringify({
      federation: { name: 'testfed', domain: 'example.test' },
      clusters: [{ name: 'alpha', kubeconfig }],
      health: { active: { enabled: false } },
      watch,
    }),
    join(work, 'fedgate.yaml'),
  );
}

/** Where an operator sees alpha: the catalog, /debug/clusters, /metrics, shop/web's endpoints. */
function viewsOf(d: Discovery, config: Config) {
  const metrics = new Metrics({ discovery: d, journal: new EventJournal() });
  return {
    cluster: () => d.catalog.current().clusters.get('alpha'),
    debug: () =>
      (
        clustersJson(
          { config, router: d.router, health: d.health, watchers: d.watchers },
          d.catalog.current(),
          Date.now(),
        ) as { clusters: { name: string }[] }
      ).clusters.find((c) => c.name === 'alpha'),
    metrics: () => metrics.registry.metrics(),
    endpoints: () =>
      (d.catalog.current().services.get('shop/web')?.clusters[0]?.endpoints ?? [])
        .map((e) => e.addresses[0])
        .sort(),
  };
}

const withoutSlices = (rules: RuleLike[]) =>
  rules.filter((r) => !r.resources.includes('endpointslices'));

/** Runs make-kubeconfig.sh for `secret` into work/<file>, failing with its stderr. */
async function kubeconfigFrom(secret: string, file: string, extra: string[] = []) {
  const out = join(work, file);
  const r = await makeKubeconfig(cp, ['--secret', secret, ...extra, ADMIN_CONTEXT, 'alpha', out]);
  if (r.code !== 0) throw new Error(`make-kubeconfig.sh failed (${r.code}): ${r.stderr}`);
  return out;
}

describe('deploy/member-rbac applied to a real API server', () => {
  let readerKubeconfig: string;

  beforeAll(async () => {
    await cp.kubectl(['apply', '-k', MEMBER_RBAC]);
    // An identity with no binding at all: what every authenticated one may do.
    await cp.kubectl(['create', 'serviceaccount', 'unbound', `--namespace=${READER_NS}`]);
    await fillTokenSecret(cp, READER_NS, 'fedgate-reader', 'fedgate-reader-token');
    readerKubeconfig = await kubeconfigFrom('fedgate-reader-token', 'alpha.kubeconfig');

    // What discovery reads, created with the admin's kubeconfig.
    await cp.kubectl(
      ['apply', '-f', '-'],
      toYaml([
        namespace('shop'),
        node('node-a', {
          'topology.kubernetes.io/region': 'us-east',
          'topology.kubernetes.io/zone': 'us-east-a',
        }),
        service('shop', 'web'),
        serviceExport('shop', 'web'),
      ]),
    );
    await putSliceInEtcd(cp, slice('shop', 'web', 'web-1', ENDPOINTS));
  }, 120_000);

  it('grants the reader exactly get, list and watch on the four resources and the write-back its writes, beyond what an unbound ServiceAccount may', async () => {
    const canI = async (account: string, namespace = 'default') =>
      canIRows(
        await cp.kubectl([
          'auth',
          'can-i',
          '--list',
          `--namespace=${namespace}`,
          `--as=system:serviceaccount:${READER_NS}:${account}`,
        ]),
      );
    const reader = await canI('fedgate-reader');
    const unbound = await canI('unbound');
    expect([...unbound].filter((r) => !reader.has(r))).toEqual([]);
    expect([...reader].filter((r) => !unbound.has(r)).sort()).toEqual(
      [...FEDGATE_READS, ...FEDGATE_WRITES].sort(),
    );
    // The Lease: get, create and update in the Lease's namespace, and nowhere else.
    const inLeaseNs = await canI('fedgate-reader', READER_NS);
    const unboundThere = await canI('unbound', READER_NS);
    expect([...inLeaseNs].filter((r) => !unboundThere.has(r)).sort()).toEqual(
      [...FEDGATE_READS, ...FEDGATE_WRITES, LEASE_RULE].sort(),
    );
  });

  it("make-kubeconfig.sh's kubeconfig carries the reader's token: it may list what fedgate reads and nothing else", async () => {
    const kubectl = (args: string[]) => kubectlWith(cp, args, { kubeconfig: readerKubeconfig });
    const whoami = await kubectl(['auth', 'whoami', '-o', 'jsonpath={.status.userInfo.username}']);
    expect(whoami.stdout).toBe(READER);
    const rows = canIRows((await kubectl(['auth', 'can-i', '--list'])).stdout);
    for (const r of FEDGATE_READS) expect(rows).toContain(r);
    expect((await kubectl(['get', 'endpointslices', '-A', '-o', 'name'])).stdout).toContain(
      'endpointslice.discovery.k8s.io/web-1',
    );
    const pods = await kubectl(['get', 'pods', '-A']);
    expect(pods.code).not.toBe(0);
    expect(pods.stderr).toContain(`User "${READER}" cannot list resource "pods"`);
    const secrets = await kubectl(['get', 'secrets', `--namespace=${READER_NS}`]);
    expect(secrets.code).not.toBe(0);
    expect(secrets.stderr).toContain('cannot list resource "secrets"');
  });

  it('the API refuses a loopback endpoint address, so the fixture slice went into etcd', async () => {
    const r = await kubectlWith(cp, ['create', '--dry-run=server', '-f', '-'], {
      input: toYaml([slice('shop', 'web', 'web-2', ENDPOINTS)]),
    });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('may not be in the loopback range');
  });

  it("fedgate's discovery syncs through that kubeconfig: the exported service, its endpoints and their zone", async () => {
    const d = Discovery.start(fedgateConfig(readerKubeconfig), new LogCapture().logger);
    try {
      const ready = await d.catalog.whenReady(30_000);
      expect(ready).toMatchObject({ ready: true, missing: [] });
      const snap = await waitFor(
        () => {
          const s = d.catalog.current();
          return (s.services.get('shop/web')?.clusters[0]?.endpoints.length ?? 0) === 2
            ? s
            : undefined;
        },
        30_000,
        'shop/web with two endpoints in alpha',
      );
      const cluster = snap.clusters.get('alpha');
      expect(cluster).toMatchObject({
        state: 'synced',
        exportMode: 'ServiceExport',
        error: undefined,
      });
      const member = snap.services.get('shop/web')?.clusters.find((c) => c.cluster === 'alpha');
      expect(member?.endpoints.map((e) => e.addresses[0]).sort()).toEqual([
        '127.80.0.1',
        '127.80.0.2',
      ]);
      for (const e of member?.endpoints ?? []) {
        expect(e.locality).toEqual({ region: 'us-east', zone: 'us-east-a', subzone: undefined });
        expect(e.conditions.ready).toBe(true);
      }
    } finally {
      await d.stop();
    }
  });

  it("the write-back works through that kubeconfig: the Lease, the export's conditions and the ServiceImport, on kube-apiserver", async () => {
    const config = parseConfig(
      stringify({
        federation: { name: 'testfed', domain: 'example.test' },
        clusters: [{ name: 'alpha', kubeconfig: readerKubeconfig }],
        health: { active: { enabled: false } },
        writeBack: {
          enabled: true,
          identity: 'replica-1',
          lease: { duration: '3s', renewDeadline: '2s', retryPeriod: '500ms' },
        },
      }),
      join(work, 'fedgate.yaml'),
    );
    const log = new LogCapture();
    const d = Discovery.start(config, log.logger);
    const wb = WriteBack.start({ config, catalog: d.catalog, log: log.logger });
    const get = async (args: string[]) =>
      JSON.parse((await cp.kubectl(['get', ...args, '-o', 'json'])) || '{}') as {
        spec?: Record<string, unknown>;
        status?: { conditions?: { type: string; status: string; reason: string }[] };
        metadata?: { labels?: Record<string, string> };
      };
    try {
      const exported = await waitFor(
        async () => {
          const o = await get(['serviceexport', 'web', '-n', 'shop']);
          return o.status?.conditions?.length === 3 ? o : undefined;
        },
        30_000,
        "shop/web's ServiceExport conditions",
      );
      expect(exported.status?.conditions?.map((c) => [c.type, c.status, c.reason])).toEqual([
        ['Valid', 'True', 'Valid'],
        ['Ready', 'True', 'Exported'],
        ['Conflict', 'False', 'NoConflicts'],
      ]);
      const imported = await waitFor(
        async () => {
          const o = await get(['serviceimport', 'web', '-n', 'shop']).catch(() => undefined);
          return o?.status ? o : undefined;
        },
        30_000,
        'the ServiceImport shop/web',
      );
      expect(imported.metadata?.labels?.['app.kubernetes.io/managed-by']).toBe('fedgate');
      expect(imported.spec).toMatchObject({ type: 'ClusterSetIP', sessionAffinity: 'None' });
      expect(imported.status).toEqual({ clusters: [{ cluster: 'alpha' }] });
      const lease = await get(['lease', 'fedgate-writer', '-n', READER_NS]);
      expect(lease.spec).toMatchObject({
        holderIdentity: 'replica-1',
        leaseDurationSeconds: 3,
        leaseTransitions: 0,
      });
      expect(wb.stats()).toMatchObject({ leading: true, transitions: 1, failures: 0 });
      // What kube-apiserver hands back compares equal: nothing is written again.
      const total = () => [...wb.stats().writes.values()].reduce((n, w) => n + w.count, 0);
      const settled = total();
      await sleep(1500);
      expect(total()).toBe(settled);
      expect(
        [...wb.stats().writes.values()].map((w) => `${w.resource} ${w.verb} ${w.count}`).sort(),
      ).toEqual([
        'serviceexports update_status 1',
        'serviceimports create 1',
        'serviceimports update_status 1',
      ]);
      expect(log.entries.filter((e) => e.level >= 40)).toEqual([]);
    } finally {
      await wb.stop();
      await d.stop();
    }
    // Stopped: the lease is released for the next replica.
    const released = await get(['lease', 'fedgate-writer', '-n', READER_NS]);
    expect(released.spec).toMatchObject({ holderIdentity: '', leaseDurationSeconds: 1 });
  });

  it('without endpointslices in its role: CLUSTER_FORBIDDEN naming them, the rest still read, and in sync once the role is fixed, without a restart', async () => {
    const name = 'fedgate-partial';
    const { role, original } = await applyReaderCopy(cp, name, withoutSlices);
    expect((role.rules as unknown[]).length).toBe((original.rules as unknown[]).length - 1);

    // make-kubeconfig.sh's own check refuses it; --no-verify writes it anyway.
    const refused = await makeKubeconfig(cp, [
      '--secret',
      `${name}-token`,
      ADMIN_CONTEXT,
      'alpha',
      join(work, 'refused.kubeconfig'),
    ]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('cannot list /apis/discovery.k8s.io/v1/endpointslices');
    const kubeconfig = await kubeconfigFrom(`${name}-token`, 'partial.kubeconfig', ['--no-verify']);

    const log = new LogCapture();
    const config = fedgateConfig(kubeconfig);
    const d = Discovery.start(config, log.logger);
    try {
      const v = viewsOf(d, config);
      const watcher = d.watchers[0];
      const error = await waitFor(() => v.cluster()?.error, 30_000, 'alpha reporting an error');
      expect(error.code).toBe('CLUSTER_FORBIDDEN');
      expect(error.message).toContain('list /apis/discovery.k8s.io/v1/endpointslices');
      expect(error.message).toContain('403 Forbidden');
      expect(error.message).toContain(
        `User "system:serviceaccount:${READER_NS}:${name}" cannot list resource "endpointslices"`,
      );
      expect(v.cluster()?.state).toBe('syncing');
      expect(v.debug()).toMatchObject({
        state: 'syncing',
        error: { code: 'CLUSTER_FORBIDDEN', message: error.message },
      });
      expect(
        log
          .find(/member API failing/, 'alpha')
          .filter(
            (e) => e.code === 'CLUSTER_FORBIDDEN' && String(e.err).includes('endpointslices'),
          ),
      ).not.toHaveLength(0);
      expect(await v.metrics()).toContain('fedgate_cluster_up{cluster="alpha",state="syncing"} 0');
      // What the other three resources say is in the catalog: the exported service,
      // with no endpoints yet.
      const held = await waitFor(
        () => d.catalog.current().services.get('shop/web')?.clusters[0],
        30_000,
        'shop/web published from alpha',
      );
      expect(held).toMatchObject({ cluster: 'alpha', endpoints: [] });
      expect(v.cluster()?.exportMode).toBe('ServiceExport');

      // The role fixed: the same watcher lists endpointslices at its next retry.
      await cp.kubectl(['apply', '-f', '-'], toYaml([original]));
      await waitFor(
        () => v.cluster()?.state === 'synced',
        90_000,
        'alpha synced after the role was fixed',
        100,
      );
      expect(v.endpoints()).toEqual(['127.80.0.1', '127.80.0.2']);
      expect(v.cluster()?.error).toBeUndefined();
      expect(v.debug()).toMatchObject({ state: 'synced', error: null });
      expect(await v.metrics()).toContain('fedgate_cluster_up{cluster="alpha",state="synced"} 1');
      expect(log.find(/member cluster synced/, 'alpha')).toHaveLength(1);
      expect(d.watchers).toEqual([watcher]);
    } finally {
      await d.stop();
    }
  });

  it('endpointslices taken from the role while fedgate watches: stale with CLUSTER_FORBIDDEN, its endpoints kept, in sync again once restored', async () => {
    const { role, secret } = await applyReaderCopy(cp, 'fedgate-revoking');
    const kubeconfig = await kubeconfigFrom(secret, 'revoking.kubeconfig');
    const log = new LogCapture();
    // kube-apiserver authorizes a watch when it opens. A 2 s silence limit reopens quiet
    // watches that often, so the change in the role is met within seconds.
    const config = fedgateConfig(kubeconfig, { silenceLimit: '2s' });
    const d = Discovery.start(config, log.logger);
    try {
      const v = viewsOf(d, config);
      await waitFor(() => v.endpoints().length === 2, 30_000, 'alpha synced, two endpoints');
      const rules = withoutSlices(role.rules as RuleLike[]);
      await cp.kubectl(['apply', '-f', '-'], toYaml([{ ...role, rules }]));

      const error = await waitFor(
        () => (v.cluster()?.state === 'stale' ? v.cluster()?.error : undefined),
        60_000,
        'alpha stale after endpointslices left its role',
        100,
      );
      expect(error.code).toBe('CLUSTER_FORBIDDEN');
      expect(error.message).toContain('/apis/discovery.k8s.io/v1/endpointslices');
      expect(v.endpoints()).toEqual(['127.80.0.1', '127.80.0.2']);
      expect(v.debug()).toMatchObject({ state: 'stale', error: { code: 'CLUSTER_FORBIDDEN' } });
      expect(await v.metrics()).toContain('fedgate_cluster_up{cluster="alpha",state="stale"} 0');
      expect(log.find(/keeping its last known endpoints, marked stale/, 'alpha')).toHaveLength(1);

      await cp.kubectl(['apply', '-f', '-'], toYaml([role]));
      await waitFor(() => v.cluster()?.state === 'synced', 90_000, 'alpha in sync again', 100);
      expect(v.endpoints()).toEqual(['127.80.0.1', '127.80.0.2']);
      expect(log.find(/member API back in sync/, 'alpha')).toHaveLength(1);
    } finally {
      await d.stop();
    }
  });

  it('deleting the token Secret revokes the token, as deploy/member-rbac says', async () => {
    const { secret } = await applyReaderCopy(cp, 'fedgate-revoked');
    const kubeconfig = await kubeconfigFrom(secret, 'revoked.kubeconfig');
    const nodes = () => kubectlWith(cp, ['get', 'nodes', '-o', 'name'], { kubeconfig });
    expect((await nodes()).stdout).toContain('node/node-a');
    await cp.kubectl(['delete', 'secret', secret, `--namespace=${READER_NS}`]);
    // kube-apiserver caches a token's authentication: refused about 10 s after the delete.
    const refused = await waitFor(
      async () => {
        const r = await nodes();
        return r.code === 0 ? undefined : r;
      },
      60_000,
      'the token refused once its Secret is gone',
      1000,
    );
    expect(refused.stderr).toContain('Unauthorized');
  });
});
