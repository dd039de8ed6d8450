// deploy/ checked by a real kube-apiserver (test/helpers/kube-control-plane.ts, one for
// the file): every kustomization rendered by the built kubectl and sent through
// `kubectl apply --dry-run=server`, with strict field validation and PodSecurity
// admission; the kinds a bare API server does not serve are listed, and proved so.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  kubectlWith,
  kustomizations,
  type Manifest,
  render,
  toYaml,
} from './helpers/deploy-real.ts';
import { ControlPlane } from './helpers/kube-control-plane.ts';

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

let cp: ControlPlane;

// No manifest in deploy/ is of a kind from a CRD the tools carry (the MCS ServiceExport
// is only named in the member ClusterRole), so nothing is installed first.
beforeAll(async () => {
  cp = await ControlPlane.start();
}, 120_000);

afterAll(async () => {
  await cp?.stop();
});

// ---- server-side dry run ------------------------------------------------------------

/** `kubectl apply --dry-run=server` of `objects`. */
const dryRun = (objects: readonly object[]) =>
  kubectlWith(cp, ['apply', '--dry-run=server', '-f', '-'], { input: toYaml(objects) });

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
      const r = await dryRun(objects.filter((o) => o.kind !== 'Namespace'));
      expect(r.code, `${dir}: ${r.stderr}`).toBe(0);
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
      const r = await dryRun(objects);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain(`no matches for kind "${n.kind}" in version "${n.apiVersion}"`);
    }
  });

  it('has teeth: an unknown field is rejected, a pod template below `restricted` draws a warning', async () => {
    const objects = await render(cp, 'deploy/kubernetes/overlays/example');
    await applyNamespaces(objects);
    const deployment = objects.find((o) => o.kind === 'Deployment');
    if (!deployment) throw new Error('no Deployment in the example overlay');
    const typo = structuredClone(deployment) as Manifest & { spec: { replica?: number } };
    typo.spec.replica = 3;
    const rejected = await dryRun([typo]);
    expect(rejected.code).not.toBe(0);
    expect(rejected.stderr).toContain('strict decoding error: unknown field "spec.replica"');

    const escalating = structuredClone(deployment) as Manifest & {
      spec: { template: { spec: { containers: { securityContext: Record<string, unknown> }[] } } };
    };
    for (const c of escalating.spec.template.spec.containers) {
      c.securityContext.allowPrivilegeEscalation = true;
    }
    const warned = await dryRun([escalating]);
    expect(warned.code).toBe(0);
    expect(warned.stderr).toContain('would violate PodSecurity "restricted:latest"');
  });
});
