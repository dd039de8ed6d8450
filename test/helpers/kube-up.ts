// Starts a real control plane (test/helpers/kube-control-plane.ts), applies the MCS
// ServiceExport CRD with the built kubectl and shows the API answering:
//
//   node_modules/node/bin/node test/helpers/kube-up.ts          # prove it, then stop
//   node_modules/node/bin/node test/helpers/kube-up.ts --hold   # and stay up until ^C
import { ControlPlane } from './kube-control-plane.ts';
import { waitFor } from './wait.ts';

const hold = process.argv.includes('--hold');

function show(command: string, output: string): void {
  process.stdout.write(`$ ${command}\n${output.trimEnd()}\n\n`);
}

const t0 = Date.now();
const cp = await ControlPlane.start();
show('(started)', `etcd ${cp.etcdUrl}, kube-apiserver ${cp.url} ready in ${Date.now() - t0} ms`);
let failed = false;
try {
  show('kubectl version', await cp.kubectl(['version']));
  show(
    `kubectl apply -f ${cp.tools.serviceExportCrd}`,
    await cp.kubectl(['apply', '-f', cp.tools.serviceExportCrd]),
  );
  show(
    'kubectl wait --for=condition=Established crd/serviceexports.multicluster.x-k8s.io',
    await cp.kubectl([
      'wait',
      '--for=condition=Established',
      '--timeout=30s',
      'crd/serviceexports.multicluster.x-k8s.io',
    ]),
  );
  // Discovery of a new group can lag Established by a moment.
  const raw = await waitFor(
    () => cp.kubectl(['get', '--raw', '/apis/multicluster.x-k8s.io/v1alpha1']),
    30_000,
    'multicluster.x-k8s.io/v1alpha1 discovery',
    200,
  );
  show('kubectl get --raw /apis/multicluster.x-k8s.io/v1alpha1', raw);
  // -v=8 prints the request headers: the Content-Type shows what kubectl sent.
  const created = await cp.kubectlOutput(['create', 'namespace', 'x', '-v=8']);
  const sent = created.stderr
    .split('\n')
    .filter((l) => /verb="POST"|Accept:|Content-Type:/.test(l))
    .map((l) => l.trim().slice(0, 160))
    .join('\n');
  show(
    'kubectl create namespace x -v=8 (stdout, then the request lines of its log)',
    `${created.stdout}${sent}`,
  );
  show(
    'kubectl get namespace x -o name',
    await cp.kubectl(['get', 'namespace', 'x', '-o', 'name']),
  );
  show(
    'kubectl -n x create -f - (a ServiceExport)',
    await cp.kubectl(
      ['-n', 'x', 'create', '-f', '-'],
      'apiVersion: multicluster.x-k8s.io/v1alpha1\nkind: ServiceExport\nmetadata:\n  name: web\n',
    ),
  );
  show('kubectl -n x get serviceexports', await cp.kubectl(['-n', 'x', 'get', 'serviceexports']));
} catch (e) {
  failed = true;
  process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
}

if (hold && !failed) {
  process.stdout.write(`KUBECONFIG=${cp.kubeconfig}\n(up; ^C to stop)\n`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
}
await cp.stop();
process.exitCode = failed ? 1 : 0;
