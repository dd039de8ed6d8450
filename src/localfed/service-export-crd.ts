// The MCS API's CRDs, as sigs.k8s.io/mcs-api publishes them (tools/kube/crds): the
// ServiceExport, and the ServiceImport fedgate's write-back fills; installed on a real
// member together and waited for until kube-apiserver serves every version.
import { installCrds, readCrds } from './crds.ts';
import type { KubeRest } from './kube-rest.ts';

export async function installServiceExportCrd(
  api: KubeRest,
  manifest: string,
  member: string,
): Promise<void> {
  await installMcsCrds(api, [manifest], member);
}

/** The first CRD of each manifest, installed at once. */
export async function installMcsCrds(
  api: KubeRest,
  manifests: readonly string[],
  member: string,
): Promise<void> {
  const crds = await Promise.all(
    manifests.map(async (manifest) => {
      const found = await readCrds(manifest);
      if (!found[0]) throw new Error(`${manifest} holds no CustomResourceDefinition`);
      return found[0];
    }),
  );
  await installCrds(api, crds, member, 'the MCS API CRDs');
}
