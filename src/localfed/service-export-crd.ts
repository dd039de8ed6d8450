// The MCS API's ServiceExport CRD, as sigs.k8s.io/mcs-api publishes it (tools/kube/crds),
// installed on a real member and waited for until kube-apiserver serves every version.
import { installCrds, readCrds } from './crds.ts';
import type { KubeRest } from './kube-rest.ts';

export async function installServiceExportCrd(
  api: KubeRest,
  manifest: string,
  member: string,
): Promise<void> {
  const crds = await readCrds(manifest);
  if (crds.length === 0) throw new Error(`${manifest} holds no CustomResourceDefinition`);
  await installCrds(api, crds.slice(0, 1), member, 'the ServiceExport CRD');
}
