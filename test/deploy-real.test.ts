// deploy/ checked by a real kube-apiserver (test/helpers/kube-control-plane.ts, one for
// the file): every manifest through a server-side dry run, and deploy/member-rbac
// applied for real, turned into a kubeconfig by make-kubeconfig.sh and used by
// fedgate's discovery, with the role complete and with endpointslices missing.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { parseConfig } from '../src/config/load.ts';
import { Discovery } from '../src/discovery.ts';
import { clustersJson } from '../src/observe/debug.ts';
import { EventJournal } from '../src/observe/events.ts';
import { Metrics } from '../src/observe/metrics.ts';
import {
  ADMIN_CONTEXT,
  applyReaderCopy,
  canIRows,
  fillTokenSecret,
  kustomizations,
  type Manifest,
  MEMBER_RBAC,
  makeKubeconfig,
  putInEtcd,
  render,
  run,
  toYaml,
} from './helpers/deploy-real.ts';
import {
  type EndpointSpec,
  LogCapture,
  namespace,
  node,
  service,
  serviceExport,
  slice,
} from './helpers/discovery-env.ts';
import { ControlPlane } from './helpers/kube-control-plane.ts';
import { waitFor } from './helpers/wait.ts';

/**
 * Kinds in deploy/ that a bare kube-apiserver does not serve, and why. The dry run
 * leaves them out; a test proves the server indeed refuses them and that each is
 * still in deploy/, so the list cannot go stale.
 */
const NOT_SERVED = [
  {
    apiVersion: 'monitoring.coreos.com/v1',
    kind: 'ServiceMonitor',
    why: "the Prometheus Operator's CRD, installed with the operator, not part of Kubernetes",
  },
  {
    apiVersion: 'monitoring.coreos.com/v1',
    kind: 'PrometheusRule',
    why: "the Prometheus Operator's CRD, installed with the operator, not part of Kubernetes",
  },
];
const notServed = (o: Manifest) =>
  NOT_SERVED.some((n) => n.apiVersion === o.apiVersion && n.kind === o.kind);

const READER_NS = 'fedgate-reader';
const READER = `system:serviceaccount:${READER_NS}:fedgate-reader`;

let cp: ControlPlane;
let work: string;

beforeAll(async () => {
  cp = await ControlPlane.start();
  work = await mkdtemp(join(tmpdir(), 'fedgate-deploy-real-'));
  // The MCS CRD fedgate's ClusterRole names, installed as in a member that has it.
  await cp.kubectl(['apply', '-f', cp.tools.serviceExportCrd]);
  await cp.kubectl([
    'wait',
    '--for=condition=Established',
    '--timeout=30s',
    'crd/serviceexports.multicluster.x-k8s.io',
  ]);
}, 120_000);

afterAll(async () => {
  await cp?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

// ---- server-side dry run ------------------------------------------------------------

/** Applies the Namespaces among `objects` for real; returns them. */
async function applyNamespaces(objects: readonly Manifest[]): Promise<Manifest[]> {
  const namespaces = objects.filter((o) => o.kind === 'Namespace');
  if (namespaces.length > 0) await cp.kubectl(['apply', '-f', '-'], toYaml(namespaces));
  return namespaces;
}

describe('deploy/: every manifest through a real API server (apply --dry-run=server)', () => {
  it('renders every kustomization, and the server accepts every object of a kind it serves, without a warning', async () => {
    const dirs = await kustomizations();
    expect(dirs).toEqual(
      expect.arrayContaining(['deploy/member-rbac', 'deploy/kubernetes/overlays/example']),
    );
    for (const dir of dirs) {
      const objects = (await render(cp, dir)).filter((o) => !notServed(o));
      // Namespaces for real: the objects in them need them to exist, and PodSecurity
      // admission reads their labels (fedgate's is `restricted`).
      const namespaces = await applyNamespaces(objects);
      const r = await cp.kubectlOutput(
        ['apply', '--dry-run=server', '-f', '-'],
        toYaml(objects.filter((o) => o.kind !== 'Namespace')),
      );
      // Field validation is strict (kubectl's default) and PodSecurity warns of a pod
      // template its namespace's level forbids: a warning is a finding too.
      expect(r.stderr, `${dir}: warnings`).toBe('');
      const lines = r.stdout.trim().split('\n');
      expect(lines, dir).toHaveLength(objects.length - namespaces.length);
      for (const l of lines) expect(l, dir).toMatch(/ \(server dry run\)$/);
    }
  });

  it('leaves out only kinds this server does not serve, each still in deploy/', async () => {
    const all = (await Promise.all((await kustomizations()).map((d) => render(cp, d)))).flat();
    for (const n of NOT_SERVED) {
      const objects = all.filter((o) => o.apiVersion === n.apiVersion && o.kind === n.kind);
      expect(objects.length, `${n.kind} in deploy/ (${n.why})`).toBeGreaterThan(0);
      const r = await run(
        cp.tools.kubectl,
        [`--kubeconfig=${cp.kubeconfig}`, 'apply', '--dry-run=server', '-f', '-'],
        process.env,
        toYaml(objects),
      );
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain(`no matches for kind "${n.kind}" in version "${n.apiVersion}"`);
    }
  });

  it('has teeth: an unknown field is rejected, a pod template below `restricted` draws a warning', async () => {
    const objects = await render(cp, 'deploy/kubernetes/overlays/example');
    await applyNamespaces(objects);
    const deployment = objects.find((o) => o.kind === 'Deployment');
    if (!deployment) throw new Error('no Deployment in the example overlay');
    const dryRun = (o: object) =>
      run(
        cp.tools.kubectl,
        [`--kubeconfig=${cp.kubeconfig}`, 'apply', '--dry-run=server', '-f', '-'],
        process.env,
        toYaml([o]),
      );
    const typo = structuredClone(deployment) as Manifest & { spec: { replica?: number } };
    typo.spec.replica = 3;
    const rejected = await dryRun(typo);
    expect(rejected.code).not.toBe(0);
    expect(rejected.stderr).toContain('strict decoding error: unknown field "spec.replica"');

    const escalating = structuredClone(deployment) as Manifest & {
      spec: { template: { spec: { containers: { securityContext: Record<string, unknown> }[] } } };
    };
    for (const c of escalating.spec.template.spec.containers) {
      c.securityContext.allowPrivilegeEscalation = true;
    }
    const warned = await dryRun(escalating);
    expect(warned.code).toBe(0);
    expect(warned.stderr).toContain('would violate PodSecurity "restricted:latest"');
  });
});

// ---- member RBAC, for real -------------------------------------------------------------

/** The four resources fedgate reads, as `kubectl auth can-i --list` names them. */
const FEDGATE_READS = [
  'services',
  'endpointslices.discovery.k8s.io',
  'nodes',
  'serviceexports.multicluster.x-k8s.io',
].map((r) => `${r} [] [] [get list watch]`);

const ENDPOINTS: EndpointSpec[] = [1, 2].map((i) => ({
  address: `127.80.0.${i}`,
  conditions: { ready: true, serving: true, terminating: false },
  nodeName: 'node-a',
}));

/** A fedgate configuration with one member, alpha, reached through `kubeconfig`. */
function fedgateConfig(kubeconfig: string) {
  return parseConfig(
    stringify({
      federation: { name: 'testfed', domain: 'example.test' },
      clusters: [{ name: 'alpha', kubeconfig }],
      health: { active: { enabled: false } },
    }),
    join(work, 'fedgate.yaml'),
  );
}

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
    await putInEtcd(cp, 'endpointslices', slice('shop', 'web', 'web-1', ENDPOINTS) as Manifest);
  }, 120_000);

  it('grants the reader exactly get, list and watch on the four resources, beyond what an unbound ServiceAccount may', async () => {
    const canI = async (account: string) =>
      canIRows(
        await cp.kubectl([
          'auth',
          'can-i',
          '--list',
          `--as=system:serviceaccount:${READER_NS}:${account}`,
        ]),
      );
    const reader = await canI('fedgate-reader');
    const unbound = await canI('unbound');
    expect([...unbound].filter((r) => !reader.has(r))).toEqual([]);
    expect([...reader].filter((r) => !unbound.has(r)).sort()).toEqual([...FEDGATE_READS].sort());
  });

  it("make-kubeconfig.sh's kubeconfig carries the reader's token: it may list what fedgate reads and nothing else", async () => {
    const kubectl = (args: string[]) =>
      run(cp.tools.kubectl, [`--kubeconfig=${readerKubeconfig}`, ...args], {
        ...process.env,
        KUBECONFIG: '',
      });
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
    const r = await run(
      cp.tools.kubectl,
      [`--kubeconfig=${cp.kubeconfig}`, 'create', '--dry-run=server', '-f', '-'],
      process.env,
      toYaml([slice('shop', 'web', 'web-2', ENDPOINTS)]),
    );
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

  it('without endpointslices in its role: CLUSTER_FORBIDDEN naming them, the rest still read, and in sync once the role is fixed, without a restart', async () => {
    const name = 'fedgate-partial';
    const { role, original } = await applyReaderCopy(cp, name, (rules) =>
      rules.filter((r) => !r.resources.includes('endpointslices')),
    );
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
      const metrics = new Metrics({ discovery: d, journal: new EventJournal() });
      const alpha = () => d.catalog.current().clusters.get('alpha');
      const debugAlpha = () =>
        (
          clustersJson(
            { config, router: d.router, health: d.health, watchers: d.watchers },
            d.catalog.current(),
            Date.now(),
          ) as { clusters: { name: string; state: string; error: unknown }[] }
        ).clusters.find((c) => c.name === 'alpha');

      const error = await waitFor(() => alpha()?.error, 30_000, 'alpha reporting an error');
      expect(error.code).toBe('CLUSTER_FORBIDDEN');
      expect(error.message).toContain('list /apis/discovery.k8s.io/v1/endpointslices');
      expect(error.message).toContain('403 Forbidden');
      expect(error.message).toContain(
        `User "system:serviceaccount:${READER_NS}:${name}" cannot list resource "endpointslices"`,
      );
      expect(alpha()?.state).toBe('syncing');
      expect(debugAlpha()).toMatchObject({
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
      expect(await metrics.registry.metrics()).toContain(
        'fedgate_cluster_up{cluster="alpha",state="syncing"} 0',
      );
      // What the other three resources say is in the catalog: the exported service,
      // with no endpoints yet.
      const held = d.catalog.current().services.get('shop/web')?.clusters[0];
      expect(held).toMatchObject({ cluster: 'alpha', endpoints: [] });
      expect(alpha()?.exportMode).toBe('ServiceExport');

      // The role fixed: the same watcher lists endpointslices at its next retry.
      await cp.kubectl(['apply', '-f', '-'], toYaml([original]));
      await waitFor(
        () => alpha()?.state === 'synced',
        90_000,
        'alpha synced after the role was fixed',
        100,
      );
      const member = d.catalog.current().services.get('shop/web')?.clusters[0];
      expect(member?.endpoints.map((e) => e.addresses[0]).sort()).toEqual([
        '127.80.0.1',
        '127.80.0.2',
      ]);
      expect(alpha()?.error).toBeUndefined();
      expect(debugAlpha()).toMatchObject({ state: 'synced', error: null });
      expect(await metrics.registry.metrics()).toContain(
        'fedgate_cluster_up{cluster="alpha",state="synced"} 1',
      );
      expect(log.find(/member cluster synced/, 'alpha')).toHaveLength(1);
    } finally {
      await d.stop();
    }
  });

  it('deleting the token Secret revokes the token, as deploy/member-rbac says', async () => {
    const { secret } = await applyReaderCopy(cp, 'fedgate-revoked');
    const kubeconfig = await kubeconfigFrom(secret, 'revoked.kubeconfig');
    const nodes = () =>
      run(cp.tools.kubectl, [`--kubeconfig=${kubeconfig}`, 'get', 'nodes', '-o', 'name'], {
        ...process.env,
        KUBECONFIG: '',
      });
    expect((await nodes()).stdout).toContain('node/node-a');
    await cp.kubectl(['delete', 'secret', secret, `--namespace=${READER_NS}`]);
    // kube-apiserver caches a token's authentication for a while (about 10 s here).
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
